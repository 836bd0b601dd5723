"""TLS records (SSL 3.0 to TLS 1.3) cut out of one direction's reassembled byte stream.

Public API: `looks_like_tls(data) -> bool`, `RecordReader` (`feed(data) -> list[Record]`, `skip_gap()`),
`Record`, content-type constants.
"""

from __future__ import annotations

from typing import Final, NamedTuple

CHANGE_CIPHER_SPEC: Final = 20
ALERT: Final = 21
HANDSHAKE: Final = 22
APPLICATION_DATA: Final = 23
HEARTBEAT: Final = 24
KEEP_REJECTED: Final = 64  # bytes kept of what came instead of a record (enough for an HTTP status line)
MAX_RECORD: Final = (1 << 14) + 2048  # the largest ciphertext RFC 5246 allows; TLS 1.3 allows less


class Record(NamedTuple):
    """One record: its outer content type, record-layer version, 5-byte header and body."""

    content_type: int
    version: int
    header: bytes
    body: bytes


def plausible_header(data: bytes | bytearray, pos: int = 0) -> bool:
    """True when 5 bytes at `pos` read as a record header: known type, version 3.x (x ≤ 4), legal length."""
    return (
        20 <= data[pos] <= 24
        and data[pos + 1] == 3
        and data[pos + 2] <= 4
        and 0 < (data[pos + 3] << 8 | data[pos + 4]) <= MAX_RECORD
    )


def looks_like_tls(data: bytes) -> bool:
    """True when a direction's first bytes start a TLS conversation (a handshake or alert record)."""
    if len(data) < 5:  # a tiny first segment: judge by what is there
        return len(data) >= 2 and data[0] in (HANDSHAKE, ALERT) and data[1] == 3
    return data[0] in (HANDSHAKE, ALERT) and plausible_header(data)


# Records are made with tuple.__new__ on the hot path: NamedTuple's own __new__ is a Python-level call.
_new_tuple = tuple.__new__


class RecordReader:
    """Collects stream bytes and returns each record once complete; after a gap it finds the next header.

    Attributes:
        broken: True once the stream stopped looking like TLS (unknown type or impossible length).
        rejected: the first `KEEP_REJECTED` bytes from where the stream stopped looking like TLS (``b""``
            until then).
        skip_bodies: records longer than 2 bytes come out with an empty body, their bytes skipped by length
            and never buffered (set while nobody can read the bodies: sealed records without keys). A record
            of 2 bytes or fewer keeps its body (a 2-byte alert is plaintext even there).
    """

    __slots__ = ("_buf", "_resync", "_skip", "_skipped", "broken", "rejected", "skip_bodies")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._resync = False
        self.broken = False
        self.rejected = b""
        self.skip_bodies = False
        self._skip = 0  # body bytes of `_skipped` still to come
        self._skipped: Record | None = None

    def skip_gap(self) -> None:
        """Bytes went missing: drop the partial record and look for the next plausible header."""
        self._buf.clear()
        self._resync = True
        self._skip, self._skipped = 0, None

    def feed(self, data: bytes) -> list[Record]:
        """Add stream bytes; return the records they complete."""
        if self.broken:
            return []
        records: list[Record] = []
        if self._skip:  # inside a record whose body is not kept
            if len(data) < self._skip:
                self._skip -= len(data)
                return records
            data = data[self._skip :]
            records.append(self._skipped)  # type: ignore[arg-type]  # set together with _skip
            self._skip, self._skipped = 0, None
            if not data:
                return records
        buf = self._buf
        if buf or self._resync:
            buf += data
            if self._resync and not self._find_header():
                return records
            if len(buf) < 5:
                return records
            length = buf[3] << 8 | buf[4]
            if (not self.skip_bodies and 5 + length > len(buf)
                    and 20 <= buf[0] <= 24 and buf[1] == 3 and length <= MAX_RECORD):
                return records  # a record still arriving: the buffer is copied once, when it is whole
            source = bytes(buf)  # cut from bytes, as a segment read in place is
        else:  # the common case, a segment starting with a header: read it in place, keep only its tail
            source = data
        pos, size = 0, len(source)
        skip_bodies = self.skip_bodies
        while size - pos >= 5:
            length = source[pos + 3] << 8 | source[pos + 4]
            if not (20 <= source[pos] <= 24 and source[pos + 1] == 3 and length <= MAX_RECORD):
                self.broken = True
                self.rejected = source[pos : pos + KEEP_REJECTED]
                buf.clear()
                return records
            end = pos + 5 + length
            if skip_bodies and length > 2:
                record = _new_tuple(Record, (source[pos], source[pos + 1] << 8 | source[pos + 2],
                                             source[pos : pos + 5], b""))
                if end > size:
                    self._skip, self._skipped = end - size, record
                    buf.clear()
                    return records
                records.append(record)
                pos = end
                continue
            if end > size:
                break
            records.append(_new_tuple(Record, (source[pos], source[pos + 1] << 8 | source[pos + 2],
                                               source[pos : pos + 5], source[pos + 5 : end])))
            pos = end
        if buf:
            del buf[:pos]
        elif pos < size:
            buf += memoryview(source)[pos:]
        return records

    def _find_header(self) -> bool:
        """Drop bytes up to a header that is followed by another header or by the end of the buffer."""
        buf = self._buf
        for pos in range(max(0, len(buf) - 4)):
            if not plausible_header(buf, pos):
                continue
            after = pos + 5 + (buf[pos + 3] << 8 | buf[pos + 4])
            if after + 5 > len(buf) or plausible_header(buf, after):
                del buf[:pos]
                self._resync = False
                return True
        del buf[: max(0, len(buf) - 4)]
        return False

"""Classic pcap files (both byte orders, micro- and nanosecond): a lazy stream of (link type, frame bytes).

Public API: `PCAP_MAGICS`, `PcapReader(stream, file)` (iterate it; read `notes` afterwards; `frame_time()` is
the capture time of the frame last yielded, `frame_length()` its length on the wire; or hand it a `Consumer`
of whole buffers with `read_into`, for the capture reader's hot loop), `BufferedInput`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO, Final

from collector.errors import CaptureFormatError

CHUNK = 1 << 20
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",  # nanosecond timestamps
    b"\xa1\xb2\x3c\x4d": ">",
}
_NANOSECOND_MAGICS = (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
MAX_FRAME: Final = 1 << 24  # no link layer frames are this large; a bigger length means the file is damaged


# (buffer, position of the first record to read) -> (position of the first record not read, records read)
Consumer = Callable[[bytes, int], tuple[int, int]]


class BufferedInput:
    """Reads a stream in large chunks and hands out byte ranges without one read() call per packet.

    A range that runs past the buffer is not made by joining what is left with the whole next chunk (a copy
    of every byte of the file, ~5 % of reading a capture): only the range is joined, into a small buffer,
    and the rest of the chunk waits in `_ahead` to become the buffer itself, uncopied, once the small one is
    read to its end."""

    def __init__(self, stream: BinaryIO, initial: bytes = b"") -> None:
        self._stream = stream
        self.buf = initial
        self.pos = 0
        self.consumed = 0  # the stream offset of buf[0], for offsets in messages
        self._ahead = b""  # read from the stream, not yet in buf: _ahead[_ahead_pos:] follows buf's last byte
        self._ahead_pos = 0

    def ensure(self, size: int) -> bool:
        """Make `size` bytes available at `pos`; False when the stream ends first (buf holds the rest)."""
        if self.pos + size <= len(self.buf):
            return True
        left = len(self.buf) - self.pos
        if not self._ahead:
            self._ahead, self._ahead_pos = self._stream.read(max(CHUNK, size - left)), 0
        ahead, at = self._ahead, self._ahead_pos
        if left == 0 and len(ahead) - at >= size:  # buf was read to its end: the chunk becomes buf
            self.consumed += len(self.buf) - at
            self.buf, self.pos, self._ahead = ahead, at, b""
            return True
        if left + len(ahead) - at >= size:  # join only the range
            self.consumed += self.pos
            self.buf, self.pos = self.buf[self.pos :] + ahead[at : at + size - left], 0
            self._ahead_pos = at + size - left
            if self._ahead_pos == len(ahead):
                self._ahead = b""
            return True
        parts = [self.buf[self.pos :], ahead[at:]]  # a range longer than what was read: read on for it
        self._ahead = b""
        have = left + len(ahead) - at
        while have < size:
            chunk = self._stream.read(max(CHUNK, size - have))
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        self.consumed += self.pos
        self.buf = b"".join(parts)
        self.pos = 0
        return have >= size

    @property
    def offset(self) -> int:
        return self.consumed + self.pos

    def remaining(self) -> int:
        return len(self.buf) - self.pos


class PcapReader:
    """Iterates the frames of a classic pcap file; defects after the header end the stream with a note."""

    def __init__(self, stream: BinaryIO, file: str, head: bytes = b"") -> None:
        self._input = BufferedInput(stream, head)
        self.stream = stream
        self._file = file
        self.notes: list[str] = []
        if not self._input.ensure(24):
            raise CaptureFormatError(
                file, f"ends inside the pcap file header ({self._input.remaining()} of 24 bytes)"
            )
        buf = self._input.buf
        self._order = PCAP_MAGICS[buf[0:4]]
        self.linktype = struct.unpack_from(self._order + "I", buf, 20)[0] & 0x0FFFFFFF
        self._input.pos = 24
        self._fraction_ns = 1 if buf[0:4] in _NANOSECOND_MAGICS else 1000
        self._stamp = struct.Struct(self._order + "II")
        self._length_at = struct.Struct(self._order + "I").unpack_from
        # where the last yielded frame's record header is: its time is decoded only when someone asks
        self._last_buf, self._last_pos = b"", -1

    def frame_time(self) -> int | None:
        """Capture time of the frame last yielded, in nanoseconds since the Unix epoch (UTC)."""
        if self._last_pos < 0:
            return None
        return self.time_at(self._last_buf, self._last_pos)

    def frame_length(self) -> int | None:
        """The original length (on the wire) of the frame last yielded, as its record header states it: more
        than its data when the snap length cut it."""
        if self._last_pos < 0:
            return None
        return int(self._length_at(self._last_buf, self._last_pos + 12)[0])

    def time_at(self, buf: bytes, pos: int) -> int:
        """Capture time (ns since the Unix epoch) of the record whose header starts at `pos` of `buf`."""
        seconds, fraction = self._stamp.unpack_from(buf, pos)
        return int(seconds) * 1_000_000_000 + int(fraction) * self._fraction_ns

    @property
    def caplen_order(self) -> str:
        """The byte order of the record headers, for a consumer's `struct` format (``<`` or ``>``)."""
        return self._order

    def read_into(self, consume: Consumer) -> None:
        """Hand the file to `consume` a buffer at a time: it reads the whole records from `pos` on (record
        header, then frame) and returns where the first one it did not read starts and how many it read. The
        same frames and notes as iterating, without a slice and a yield per frame."""
        source = self._input
        caplen_at = struct.Struct(self._order + "I").unpack_from
        frame = 0
        while True:
            pos, count = consume(source.buf, source.pos)
            source.pos, frame = pos, frame + count
            if not source.ensure(16):
                if source.remaining():
                    self.notes.append(f"the file ends inside the header of packet {frame + 1} (ignored)")
                return
            (caplen,) = caplen_at(source.buf, source.pos + 8)
            if source.remaining() >= 16 + caplen:
                continue  # `consume` stopped at the end of a record it could still read: ask again
            if not self._read_whole(frame, caplen):
                return

    def _read_whole(self, frame: int, caplen: int) -> bool:
        """Buffer packet `frame + 1` (its 16-byte header at the input's position) whole; False, with a note
        saying why, when the capture cannot give it and reading stops (both readers word damage alike)."""
        source = self._input
        if caplen > MAX_FRAME:
            self.notes.append(
                f"packet {frame + 1} at byte {source.offset} has an impossible length {caplen}; "
                "reading stopped there"
            )
            return False
        if not source.ensure(16 + caplen):
            self.notes.append(
                f"the last packet ({frame + 1}) is truncated: {source.remaining() - 16} of {caplen} bytes "
                "(ignored)"
            )
            return False
        return True

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        source, linktype = self._input, self.linktype
        caplen_at = struct.Struct(self._order + "I").unpack_from
        frame = 0
        buf, pos = source.buf, source.pos
        while True:
            if pos + 16 > len(buf):  # only touch the stream when the buffer runs out
                source.pos = pos
                if not source.ensure(16):
                    if source.remaining():
                        self.notes.append(f"the file ends inside the header of packet {frame + 1} (ignored)")
                    return
                buf, pos = source.buf, source.pos
            (caplen,) = caplen_at(buf, pos + 8)
            end = pos + 16 + caplen
            if end > len(buf):
                source.pos = pos
                if not self._read_whole(frame, caplen):
                    return
                buf, pos = source.buf, source.pos
                end = pos + 16 + caplen
            frame += 1
            self._last_buf, self._last_pos = buf, pos
            yield linktype, buf[pos + 16 : end]
            pos = end

"""Captures (pcap, pcapng, gzip of either) read lazily into the TLS handshakes they hold.

Public API:
    is_capture(head: bytes) -> bool
    read_handshakes(path: Path, keylog: KeyLog | None = None) -> CaptureResult
    CaptureResult(handshakes, packets, tls_connections, notes)
`read_handshakes` raises `CaptureFormatError(file, defect)` for anything that is not a readable capture; damage
after the file header ends the reading with a note instead.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from collector.errors import CaptureFormatError
from collector.tls.handshake import Handshake
from collector.tls.keylog import KeyLog
from collector.tls.packets import SUPPORTED_LINKTYPES, TCP_ACK, TCP_SYN, decode_segment
from collector.tls.pcap import PCAP_MAGICS, PcapReader
from collector.tls.pcapng import PCAPNG_MAGIC, PcapngReader
from collector.tls.session import Session

_GZIP_MAGIC = b"\x1f\x8b"
_STREAM_ERRORS = (OSError, EOFError, zlib.error)  # what gzip raises for damaged or cut compressed data


@dataclass(frozen=True)
class CaptureResult:
    """Everything one capture file showed.

    Attributes:
        handshakes: one per TLS connection, in the order their first record appeared.
        packets: frames in the file (the frame numbers Wireshark shows run from 1 to this).
        tls_connections: TCP connections recognised as TLS by their first bytes.
        notes: facts about the file itself (truncation, unsupported link types, damage).
    """

    handshakes: tuple[Handshake, ...]
    packets: int
    tls_connections: int
    notes: tuple[str, ...]


def is_capture(head: bytes) -> bool:
    """True when `head` (the file's first bytes) starts a pcap or pcapng file, gzip-compressed or not."""
    if head[:2] == _GZIP_MAGIC:
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 8)
        except zlib.error:
            return False
    return head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC


def read_handshakes(path: Path, keylog: KeyLog | None = None) -> CaptureResult:
    """Read a capture and reconstruct every TLS handshake in it (TLS 1.3 decrypted when `keylog` has its secrets)."""
    with _open(path) as raw:
        reader = _reader(path, *_uncompressed(raw, path))
        tracker = _Tracker(keylog, path.name)
        notes: list[str] = []
        try:
            for linktype, data in reader:
                tracker.add_frame(linktype, data)
        except _STREAM_ERRORS as error:
            notes.append(
                f"the file cannot be read past packet {tracker.frames} ({error}); reading stopped there"
            )
        notes[:0] = reader.notes
        if isinstance(raw_stream := reader.stream, _Gunzip) and raw_stream.cut:
            notes.append(
                f"the gzip data is cut short after packet {tracker.frames}: the rest of the file is missing"
            )
    return tracker.result(notes)


def _reader(path: Path, stream: BinaryIO, head: bytes) -> PcapReader | PcapngReader:
    """The reader for the format `head` announces; its constructor reads the file header."""
    try:
        if head[:4] in PCAP_MAGICS:
            return PcapReader(stream, str(path), head)
        if head[:4] == PCAPNG_MAGIC:
            return PcapngReader(stream, str(path), head)
    except _STREAM_ERRORS as error:
        raise CaptureFormatError(
            path, f"is gzip-compressed but its compressed data is damaged ({error})"
        ) from error
    raise CaptureFormatError(path, f"is not a pcap or pcapng capture (it starts with 0x{head[:8].hex()})")


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError as error:
        raise CaptureFormatError(path, "does not exist") from error
    except IsADirectoryError as error:
        raise CaptureFormatError(path, "is a directory, not a capture file") from error
    except OSError as error:
        raise CaptureFormatError(path, f"cannot be read ({error.strerror or error})") from error


def _uncompressed(raw: BinaryIO, path: Path) -> tuple[BinaryIO, bytes]:
    """The stream to parse (gunzipped when needed) and its first bytes."""
    try:
        head = raw.read(8)
    except OSError as error:  # e.g. a directory on some platforms, or an I/O error
        raise CaptureFormatError(path, f"cannot be read ({error.strerror or error})") from error
    if not head:
        raise CaptureFormatError(path, "is empty, not a capture file")
    if head[:2] != _GZIP_MAGIC:
        return raw, head
    raw.seek(0)
    stream = _Gunzip(raw)
    try:
        head = stream.read(8)
    except _STREAM_ERRORS as error:
        raise CaptureFormatError(
            path, f"is gzip-compressed but its compressed data is damaged ({error})"
        ) from error
    if not head and stream.cut:
        raise CaptureFormatError(path, "is gzip-compressed but cut short before any data")
    if not head:
        raise CaptureFormatError(path, "is gzip-compressed but holds no data, not a capture file")
    return stream, head  # type: ignore[return-value]


class _Gunzip:
    """A gzip reader that hands over everything before a cut instead of failing (tcpdump output copied while it
    was still being written is cut); `cut` tells afterwards. Reads members one after another, like gzip does."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._input = b""
        self._in_member = False
        self.cut = False

    def read(self, size: int) -> bytes:
        out: list[bytes] = []
        have = 0
        while have < size:
            if self._inflate.eof:  # a member ended: what follows may be another member
                self._input = self._inflate.unused_data + self._input
                self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._in_member = False
            if not self._input:
                self._input = self._raw.read(1 << 16)
                if not self._input:
                    self.cut = self._in_member
                    break
            self._in_member = True
            piece = self._inflate.decompress(self._input, size - have)  # bounded: no decompression bomb
            self._input = b"" if self._inflate.eof else self._inflate.unconsumed_tail
            out.append(piece)
            have += len(piece)
        return b"".join(out)


class _Settled:
    """Stands in for a connection whose handshake can no longer change: its later packets cost a dict lookup."""

    done = True
    seen_record = True


_SETTLED = (_Settled(), 0)


class _Tracker:
    """Routes TCP segments to their connection's Session; connections are created on first sight and retired
    (their Handshake built, their buffers dropped) as soon as nothing about them can change."""

    def __init__(self, keylog: KeyLog | None, source: str) -> None:
        self.keylog = keylog
        self.source = source
        self.frames = 0
        self.connections: dict[tuple[bytes, int, bytes, int], tuple[Session | _Settled, int]] = {}
        self.finished: list[Session] = []  # replaced by a new connection on the same port pair
        self.handshakes: list[Handshake] = []  # of retired TLS connections
        self.unsupported: Counter[int] = Counter()

    def add_frame(self, linktype: int, data: bytes) -> None:
        self.frames += 1
        segment = decode_segment(linktype, data) if len(data) >= 20 else None
        if segment is None:
            if linktype not in SUPPORTED_LINKTYPES:
                self.unsupported[linktype] += 1
            return
        key = (segment.src, segment.sport, segment.dst, segment.dport)
        entry = self.connections.get(key)
        flags = segment.flags
        if entry is not None and flags & TCP_SYN and not flags & TCP_ACK and entry[0].seen_record:
            if isinstance(entry[0], Session):
                self.finished.append(entry[0])  # the port pair is reused by a new connection
            entry = None
        if entry is None:
            entry = self._open_connection(key)
        session, index = entry
        if session.done:
            return
        assert isinstance(session, Session)
        session.add_segment(
            index, segment.seq, flags, segment.data[segment.start : segment.end], segment.missing, self.frames
        )
        if session.done:
            self._retire(key, session)

    def _open_connection(self, key: tuple[bytes, int, bytes, int]) -> tuple[Session, int]:
        session = Session(self.frames, (_endpoint(key[0], key[1]), _endpoint(key[2], key[3])), self.keylog)
        self.connections[key] = (session, 0)
        self.connections[(key[2], key[3], key[0], key[1])] = (session, 1)
        return session, 0

    def _retire(self, key: tuple[bytes, int, bytes, int], session: Session) -> None:
        if session.tls:
            self.handshakes.append(session.to_handshake(self.source))
        self.connections[key] = self.connections[(key[2], key[3], key[0], key[1])] = _SETTLED

    def live_sessions(self) -> list[Session]:
        found = {id(s): s for s, _ in self.connections.values() if isinstance(s, Session)}
        return self.finished + list(found.values())

    def result(self, notes: list[str]) -> CaptureResult:
        tls = [s for s in self.live_sessions() if s.tls]
        for session in tls:
            session.flush(self.frames)
        handshakes = sorted(
            [*self.handshakes, *(s.to_handshake(self.source) for s in tls)], key=lambda h: h.frames or (0, 0)
        )
        for linktype, count in sorted(self.unsupported.items()):
            if linktype < 0:
                notes.append(f"{count} packets name an interface the file never described; they were skipped")
            else:
                notes.append(
                    f"{count} packets have link type {linktype}, which is not supported; they were skipped"
                )
        return CaptureResult(tuple(handshakes), self.frames, len(handshakes), tuple(notes))


def _endpoint(address: bytes, port: int) -> str:
    if len(address) == 4:
        return f"{address[0]}.{address[1]}.{address[2]}.{address[3]}:{port}"
    return f"[{ipaddress.IPv6Address(address).compressed}]:{port}"

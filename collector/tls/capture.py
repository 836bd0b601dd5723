"""Captures (pcap, pcapng, gzip of either) read lazily into the TLS handshakes they hold.

Public API:
    is_capture(head: bytes) -> bool
    read_handshakes(path: Path, keylog: KeyLog | None = None, limits: Limits = Limits()) -> CaptureResult
    open_frames(path: Path) -> context manager of the file's frame reader (pcap or pcapng, gunzipped)
    CaptureResult(handshakes, packets, tls_connections, notes, connection_attempts)  (from `connections`)
`read_handshakes` raises `CaptureFormatError(file, defect)` for anything that is not a readable capture;
damage after the file header ends the reading with a note instead.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from collector.errors import CaptureFormatError
from collector.tls.connections import DEFAULT_LIMITS, CaptureResult, ConnectionTable, Limits
from collector.tls.keylog import KeyLog
from collector.tls.pcap import PCAP_MAGICS, Consumer, PcapReader
from collector.tls.pcapng import PCAPNG_MAGIC, ConsumerFor, PcapngReader

__all__ = ["CaptureResult", "Limits", "is_capture", "open_frames", "read_handshakes"]

_GZIP_MAGIC = b"\x1f\x8b"
_STREAM_ERRORS = (OSError, EOFError, zlib.error)  # what gzip raises for damaged or cut compressed data


def is_capture(head: bytes) -> bool:
    """True when `head` (the file's first bytes) starts a pcap or pcapng file, gzip-compressed or not."""
    if head[:2] == _GZIP_MAGIC:
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 8)
        except zlib.error:
            return False
    return head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC


Progress = Callable[[int, int], None]  # (bytes of the file read so far, its size)


def read_handshakes(
    path: Path,
    keylog: KeyLog | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> CaptureResult:
    """Read a capture and reconstruct every TLS handshake in it (TLS 1.3 decrypted when `keylog` has its
    secrets); `limits` bound the connections held at once (see `collector.tls.connections`); `progress`, when
    given, is told now and then how far into the file the reading is."""
    with _open(path) as raw:
        reader = _reader(path, *_uncompressed(raw, path))
        tracker = ConnectionTable(keylog, path.name, reader.frame_time, limits)
        notes: list[str] = []
        add_frame = tracker.add_frame
        try:
            if isinstance(reader, PcapReader):
                consume = tracker.pcap_consumer(reader.linktype, reader.caplen_order, reader.time_at)
                if progress is not None:
                    consume = _told(consume, progress, raw)
                reader.read_into(consume)
            else:
                consumer_for: ConsumerFor = tracker.pcapng_consumer
                if progress is not None:
                    consumer_for = _told_each(consumer_for, progress, raw)
                for linktype, data in reader.read_into(consumer_for):
                    add_frame(linktype, data)
            if progress is not None:
                size = _size(raw)
                progress(size, size)
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


@contextmanager
def open_frames(path: Path) -> Iterator[PcapReader | PcapngReader]:
    """The frame reader of a capture (gunzipped when needed), frames numbered as `read_handshakes` numbers
    them; raises `CaptureFormatError` like it. Damaged gzip data raises OSError, EOFError or zlib.error
    while iterating; any other damage ends the frames with a note in the reader's `notes`."""
    with _open(path) as raw:
        yield _reader(path, *_uncompressed(raw, path))


def _told(consume: Consumer, progress: Progress, raw: BinaryIO) -> Consumer:
    """`consume`, telling `progress` how far into the file the reading is after each buffer."""
    size = _size(raw)
    told = [-1]

    def consume_and_tell(buf: bytes, pos: int) -> tuple[int, int]:
        done = consume(buf, pos)
        # once per chunk the reader fetches, however often it calls: a pcapng reader calls at every block
        # its consumer does not take (a simple packet block, a packet of another link type)
        if (here := raw.tell()) != told[0]:
            told[0] = here
            progress(here, size)
        return done

    return consume_and_tell


def _told_each(consumer_for: ConsumerFor, progress: Progress, raw: BinaryIO) -> ConsumerFor:
    """`consumer_for`, its consumers telling `progress` how far into the file the reading is."""

    def told_consumer_for(*made_for: Any) -> Consumer:
        return _told(consumer_for(*made_for), progress, raw)

    return told_consumer_for


def _size(raw: BinaryIO) -> int:
    try:
        return os.fstat(raw.fileno()).st_size
    except (OSError, ValueError):
        return 0


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
    return stream, head  # type: ignore[return-value]  # _Gunzip reads like the binary stream it wraps


class _Gunzip:
    """A gzip reader that hands over everything before a cut instead of failing (tcpdump output copied while
    it was still being written is cut); `cut` tells afterwards. Reads members one after another, like gzip."""

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

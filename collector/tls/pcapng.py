"""pcapng files: sections of either byte order, interfaces with their own link types, EPB/SPB/PB blocks.

Public API: `PCAPNG_MAGIC`, `PcapngReader(stream, file)` (iterate it for (link type, frame bytes); read
`notes`; `frame_time()` is the capture time of the packet last yielded, `frame_length()` its length on the
wire; or iterate `read_into(consumer_for)`, which hands runs of enhanced packet blocks of one link type to a
`pcap.Consumer` and yields the other packets, for the capture reader's hot loop), `ConsumerFor`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from typing import BinaryIO

from collector.errors import CaptureFormatError
from collector.tls.pcap import MAX_FRAME, BufferedInput, Consumer

# (link type, the interfaces besides 0 that have it, byte order, time_at(buf, pos) of a block) -> a consumer
# of those interfaces' enhanced packet blocks; the set grows as later interface blocks describe more
ConsumerFor = Callable[[int, AbstractSet[int], str, Callable[[bytes, int], int | None]], Consumer]

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_SHB, _IDB, _PB, _SPB, _EPB = 0x0A0D0D0A, 1, 2, 3, 6
_BYTE_ORDER = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
_IF_TSRESOL, _IF_TSOFFSET = 9, 14
_MICROSECONDS = (1_000, 1)  # the default if_tsresol (10^-6 s): one tick is 1000/1 nanoseconds


class PcapngReader:
    """Iterates the packets of a pcapng file; unknown blocks are skipped, defects end it with a note."""

    def __init__(self, stream: BinaryIO, file: str, head: bytes = b"") -> None:
        self._input = BufferedInput(stream, head)
        self.stream = stream
        self.notes: list[str] = []
        if not self._input.ensure(12):
            raise CaptureFormatError(
                file, f"ends inside the pcapng section header ({self._input.remaining()} bytes)"
            )
        if self._input.buf[8:12] not in _BYTE_ORDER:
            raise CaptureFormatError(file, "has a pcapng section header with an unknown byte-order magic")
        self._order = _BYTE_ORDER[self._input.buf[8:12]]
        self._linktypes: list[int] = []
        # the interfaces besides 0 with interface 0's link type (a set that grows: a consumer holds it)
        self._like_first: set[int] = set()
        # per interface: a timestamp unit is numerator / denominator nanoseconds, plus an offset in seconds
        self._clocks: list[tuple[int, int, int]] = []
        self._last_time: tuple[int, int] | None = None  # (raw timestamp, interface) of the last packet
        self._last_length: int | None = None  # its original length (on the wire)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return self.read_into(None)

    def read_into(self, consumer_for: ConsumerFor | None) -> Iterator[tuple[int, bytes]]:
        """The packets, as iterating gives them, except those a consumer takes: `consumer_for(link type,
        interfaces, byte order, time_at)` makes one per section, for the link type of its first interface and
        the other interfaces that have it (a set that grows with the section's interface blocks). It is
        handed the buffer at each block, reads those interfaces' enhanced packet blocks from there, and says
        where it stopped and how many it read (see `pcap.Consumer`). The notes are the same either way."""
        source = self._input
        frame = 0
        consume: Consumer | None = None
        while source.ensure(8):
            if consumer_for is not None and self._linktypes:
                if consume is None:
                    consume = consumer_for(self._linktypes[0], self._like_first, self._order, self._time_at)
                source.pos, count = consume(source.buf, source.pos)
                frame += count
                if not source.ensure(8):
                    break
            buf, pos = source.buf, source.pos
            if buf[pos : pos + 4] == PCAPNG_MAGIC:  # a section header may switch the byte order
                if not source.ensure(12) or source.buf[source.pos + 8 : source.pos + 12] not in _BYTE_ORDER:
                    self.notes.append(
                        f"a section header at byte {source.offset} is damaged; reading stopped there"
                    )
                    return
                buf, pos = source.buf, source.pos
                self._order = _BYTE_ORDER[buf[pos + 8 : pos + 12]]
            block_type, length = struct.unpack_from(self._order + "II", buf, pos)
            if length < 12 or length % 4 or length > MAX_FRAME:
                self.notes.append(
                    f"block at byte {source.offset} has an impossible length {length}; reading stopped there"
                )
                return
            if not source.ensure(length):
                self.notes.append(
                    f"the last block (after packet {frame}) is truncated: {source.remaining()} of "
                    f"{length} bytes (ignored)"
                )
                return
            buf, pos = source.buf, source.pos
            source.pos = pos + length
            if block_type == _SHB:
                consume = None  # a new section: its own byte order and interfaces
            packet = self._packet(block_type, buf, pos, length)
            if packet is not None:
                frame += 1
                yield packet

    def _packet(self, block_type: int, buf: bytes, pos: int, length: int) -> tuple[int, bytes] | None:
        """The (link type, data) of a packet block; None for other blocks (they may update the interfaces)."""
        order = self._order
        if block_type == _EPB:
            interface, high, low, caplen, self._last_length = struct.unpack_from(
                order + "IIIII", buf, pos + 8
            )
            self._last_time = (high << 32 | low, interface)
            return self._linktype(interface), buf[pos + 28 : pos + 28 + min(caplen, length - 32)]
        if block_type == _SPB:
            (origlen,) = struct.unpack_from(order + "I", buf, pos + 8)
            self._last_time = None  # a simple packet block carries no timestamp
            self._last_length = origlen
            return self._linktype(0), buf[pos + 12 : pos + 12 + min(origlen, length - 16)]
        if block_type == _PB:
            interface, _, high, low, caplen, self._last_length = struct.unpack_from(
                order + "HHIIII", buf, pos + 8
            )
            self._last_time = (high << 32 | low, interface)
            return self._linktype(interface), buf[pos + 28 : pos + 28 + min(caplen, length - 32)]
        if block_type == _SHB:
            self._linktypes, self._clocks, self._like_first = [], [], set()
        elif block_type == _IDB:
            linktype = struct.unpack_from(order + "H", buf, pos + 8)[0]
            if self._linktypes and linktype == self._linktypes[0]:
                self._like_first.add(len(self._linktypes))
            self._linktypes.append(linktype)
            self._clocks.append(self._clock(buf, pos + 16, pos + length - 4))
        return None

    def _time_at(self, buf: bytes, pos: int) -> int | None:
        """Capture time (ns since the Unix epoch) of the enhanced packet block at `pos` of `buf`."""
        interface, high, low = struct.unpack_from(self._order + "III", buf, pos + 8)
        return self._nanoseconds(high << 32 | low, interface)

    def frame_time(self) -> int | None:
        """Capture time of the packet last yielded, in nanoseconds since the Unix epoch (UTC); None when its
        block has no timestamp or names an interface the file never described."""
        if self._last_time is None:
            return None
        return self._nanoseconds(*self._last_time)

    def _nanoseconds(self, raw: int, interface: int) -> int | None:
        """A raw timestamp of `interface` in nanoseconds since the Unix epoch; None for an interface the
        file never described."""
        if interface >= len(self._clocks):
            return None
        numerator, denominator, offset = self._clocks[interface]
        return raw * numerator // denominator + offset * 1_000_000_000

    def frame_length(self) -> int | None:
        """The original length (on the wire) of the packet last yielded, as its block states it: more than
        its data when the snap length cut it."""
        return self._last_length

    def _clock(self, buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
        """The interface's timestamp unit (if_tsresol, default microseconds) and offset (if_tsoffset, s)."""
        numerator, denominator = _MICROSECONDS
        offset = 0
        while pos + 4 <= end:
            code, size = struct.unpack_from(self._order + "HH", buf, pos)
            value = buf[pos + 4 : pos + 4 + size]
            if code == 0 or len(value) < size:  # end of options, or an option running past the block
                break
            if code == _IF_TSRESOL and size == 1:
                exponent = value[0] & 0x7F
                unit = 2 if value[0] & 0x80 else 10
                # one tick is 10^9 / unit^exponent nanoseconds
                numerator, denominator = (10**9, unit**exponent)
            elif code == _IF_TSOFFSET and size == 8:
                (offset,) = struct.unpack_from(self._order + "q", value)
            pos += 4 + (size + 3) // 4 * 4
        return numerator, denominator, offset

    def _linktype(self, interface: int) -> int:
        # -1 is no link type at all: the packet is counted as a frame and otherwise ignored
        return self._linktypes[interface] if interface < len(self._linktypes) else -1

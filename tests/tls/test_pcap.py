"""PcapReader: frames of classic pcap files, both byte orders and timestamp precisions, damage after
the header."""

from __future__ import annotations

import io
import random
import struct

import pytest

from collector.errors import CaptureFormatError
from collector.tls.pcap import BufferedInput, PcapReader

FRAMES = [b"a" * 60, b"b" * 1500, b"", b"c" * 70000]


def _pcap(order: str, nanos: bool, frames: list[bytes], linktype: int = 1) -> bytes:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)
    return out + b"".join(struct.pack(order + "IIII", 0, 0, len(f), len(f)) + f for f in frames)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanos", [False, True])
def test_frames_come_out_with_their_link_type(order: str, nanos: bool) -> None:
    data = _pcap(order, nanos, FRAMES, 276)
    reader = PcapReader(io.BytesIO(data[4:]), "f.pcap", data[:4])
    assert list(reader) == [(276, f) for f in FRAMES] and reader.notes == []


def test_truncated_last_packet_and_header_are_notes() -> None:
    data = _pcap("<", False, FRAMES[:2])
    cut_body = PcapReader(io.BytesIO(data[:-100]), "f.pcap")
    assert len(list(cut_body)) == 1
    assert cut_body.notes == ["the last packet (2) is truncated: 1400 of 1500 bytes (ignored)"]
    cut_header = PcapReader(io.BytesIO(data + b"\x00" * 7), "f.pcap")
    assert len(list(cut_header)) == 2
    assert cut_header.notes == ["the file ends inside the header of packet 3 (ignored)"]


def test_impossible_length_stops_reading_with_a_note() -> None:
    data = _pcap("<", False, FRAMES[:1]) + struct.pack("<IIII", 0, 0, 1 << 30, 1 << 30)
    reader = PcapReader(io.BytesIO(data), "f.pcap")
    assert len(list(reader)) == 1
    assert reader.notes == [
        (f"packet 2 at byte {len(data) - 16} has an impossible length {1 << 30}; reading stopped there")
    ]


def test_short_header_is_a_format_error() -> None:
    with pytest.raises(CaptureFormatError, match="ends inside the pcap file header \\(10 of 24 bytes\\)"):
        PcapReader(io.BytesIO(_pcap("<", False, [])[:10]), "f.pcap")


def test_buffered_input_reads_across_chunks() -> None:
    source = BufferedInput(io.BytesIO(bytes(range(256)) * 10000))
    assert source.ensure(10) and source.buf[:3] == b"\x00\x01\x02"
    source.pos = len(source.buf) - 100  # a record that starts near the end of the first chunk
    start = source.offset
    assert source.ensure(600_000) and source.offset == start
    assert (
        source.buf[source.pos : source.pos + 600_000] == (bytes(range(256)) * 10000)[start : start + 600_000]
    )
    assert not source.ensure(3_000_000)  # more than the whole stream


class _Trickle(io.BytesIO):
    """A stream that gives at most `most` bytes a read, as a pipe or a gzip stream may."""

    def __init__(self, data: bytes, most: int) -> None:
        super().__init__(data)
        self._most = most

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self._most if size is None or size < 0 else min(size, self._most))


@pytest.mark.parametrize("chunk", [1, 7, 100, 4096])
@pytest.mark.parametrize("most", [3, 50, 1 << 30])
def test_buffered_input_gives_every_range_of_the_stream_at_its_offset(
    monkeypatch: pytest.MonkeyPatch, chunk: int, most: int
) -> None:
    # Given a stream read in chunks of any size, and a reader that asks for ranges of any size and moves on
    # by any amount within them (as the readers do: a header, then the record it announces)
    monkeypatch.setattr("collector.tls.pcap.CHUNK", chunk)
    data = random.Random(chunk * most).randbytes(100_000)
    source = BufferedInput(_Trickle(data[5:], most), data[:5])
    draw = random.Random(most)
    offset = 0
    while offset < len(data):
        size = draw.choice([1, 4, 16, 16, 28, 28, 60, 300, 1500, 5000])
        # Then each range holds the stream's bytes at the reader's offset, and ranges past the end say so
        available = source.ensure(size)
        assert available == (offset + size <= len(data))
        assert source.offset == offset
        assert source.buf[source.pos : source.pos + size] == data[offset : offset + size]
        if not available:
            assert source.remaining() == len(data) - offset  # what is left, for the reader's note
            break
        step = size if draw.random() < 0.5 else draw.randrange(size + 1)  # often a whole record
        source.pos += step
        offset += step

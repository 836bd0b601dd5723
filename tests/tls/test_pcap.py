"""PcapReader: frames of classic pcap files, both byte orders and timestamp precisions, damage after
the header."""

from __future__ import annotations

import io
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

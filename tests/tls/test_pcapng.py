"""PcapngReader: sections of either byte order, interfaces with their own link types, EPB/SPB/PB,
unknown blocks."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from collector.errors import CaptureFormatError
from collector.tls.pcapng import PcapngReader
from tests.tls import rewrite


def _read(data: bytes) -> PcapngReader:
    return PcapngReader(io.BytesIO(data), "f.pcapng")


@pytest.mark.parametrize("order", ["<", ">"])
def test_enhanced_packets_on_several_interfaces(order: str, tmp_path: Path) -> None:
    packets = [(0, b"eth" * 20), (1, b"sll2" * 10), (0, b"x" * 3)]
    data = rewrite.write_pcapng(tmp_path / "a.pcapng", packets, [1, 276], order=order).read_bytes()
    reader = _read(data)
    assert list(reader) == [(1, b"eth" * 20), (276, b"sll2" * 10), (1, b"x" * 3)] and reader.notes == []


def test_simple_packets_and_a_second_section_in_the_other_byte_order(tmp_path: Path) -> None:
    first = rewrite.write_pcapng(tmp_path / "a", [(0, b"one")], [113], simple=True).read_bytes()
    second = rewrite.write_pcapng(tmp_path / "b", [(0, b"two")], [101], order=">").read_bytes()
    assert list(_read(first + second)) == [(113, b"one"), (101, b"two")]


def test_obsolete_packet_block_and_packet_before_any_interface(tmp_path: Path) -> None:
    shb = rewrite.write_pcapng(tmp_path / "a", [], [], unknown_block=False).read_bytes()
    body = struct.pack("<HHIIII", 0, 0, 0, 0, 4, 4) + b"abcd"
    block = struct.pack("<II", 2, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    assert list(_read(shb + block)) == [(-1, b"abcd")]


def test_truncated_and_impossible_blocks_end_reading_with_a_note(tmp_path: Path) -> None:
    data = rewrite.write_pcapng(tmp_path / "a", [(0, b"p" * 100), (0, b"q" * 100)], [1]).read_bytes()
    cut = _read(data[:-50])
    assert len(list(cut)) == 1 and cut.notes[0].startswith("the last block (after packet 1) is truncated")
    bad = _read(data + struct.pack("<II", 6, 13))
    assert len(list(bad)) == 2
    assert bad.notes == [f"block at byte {len(data)} has an impossible length 13; reading stopped there"]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x0a\x0d\x0d\x0a\x1c\x00", "ends inside the pcapng section header (6 bytes)"),
        (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x00\x00\x00\x00", "unknown byte-order magic"),
    ],
)
def test_bad_section_header_is_a_format_error(data: bytes, message: str) -> None:
    with pytest.raises(CaptureFormatError, match=message.replace("(", "\\(").replace(")", "\\)")):
        _read(data)

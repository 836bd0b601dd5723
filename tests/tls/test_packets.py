"""decode_segment: every supported link type, VLAN tags, IPv4/IPv6 (extension headers), and what is
not TCP."""

from __future__ import annotations

import struct

import pytest

from collector.tls.packets import decode_segment
from tests.tls import rewrite

SEG = rewrite.Seg(
    b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 40000, 443, 0x01020304, 0, 0x18, b"\x16\x03\x01hello"
)
V6_SRC = b"\xfd\x00" + b"\x00" * 10 + SEG.src

CASES = [
    ("ethernet", 1, {}, False),
    ("802.1Q", 1, {"vlans": 1}, False),
    ("QinQ", 1, {"vlans": 2}, False),
    ("sll", 113, {}, False),
    ("sll2", 276, {}, False),
    ("raw", 101, {}, False),
    ("ipv4", 228, {}, False),
    ("null little-endian", 0, {"null_order": "<"}, False),
    ("null big-endian", 0, {"null_order": ">"}, False),
    ("loop", 108, {}, False),
    ("ethernet ipv6", 1, {}, True),
    ("ipv6 link type", 229, {}, True),
    ("sll2 ipv6", 276, {}, True),
    ("null ipv6", 0, {}, True),
]


@pytest.mark.parametrize("case, linktype, options, ipv6", CASES, ids=[c[0] for c in CASES])
def test_segment_is_found_behind_every_link_header(
    case: str, linktype: int, options: dict, ipv6: bool
) -> None:
    # Given one TCP segment wrapped for this link type, When decoded, Then addresses, ports, seq and
    # payload match
    frame = rewrite.link_frame(linktype, rewrite.ip_packet(SEG, ipv6=ipv6), **options)
    segment = decode_segment(linktype, frame)
    assert segment is not None
    assert segment.src == (V6_SRC if ipv6 else SEG.src)
    assert (segment.sport, segment.dport, segment.seq, segment.flags) == (40000, 443, 0x01020304, 0x18)
    assert segment.data[segment.start : segment.end] == SEG.payload and segment.missing == 0


def test_ipv6_extension_headers_are_skipped() -> None:
    frame = rewrite.ip_packet(SEG, ipv6=True, hop_by_hop=True)
    segment = decode_segment(229, frame)
    assert segment is not None and segment.data[segment.start : segment.end] == SEG.payload


def test_ethernet_padding_is_not_payload_and_snap_cut_bytes_are_missing() -> None:
    frame = rewrite.link_frame(1, rewrite.ip_packet(SEG))
    padded = decode_segment(1, frame + b"\x00" * 6)
    cut = decode_segment(1, frame[:-4])
    assert padded is not None and padded.data[padded.start : padded.end] == SEG.payload
    assert cut is not None and cut.data[cut.start : cut.end] == SEG.payload[:-4] and cut.missing == 4


def _udp(packet: bytes) -> bytes:
    return packet[:9] + b"\x11" + packet[10:]


def _fragment(packet: bytes) -> bytes:
    return packet[:6] + struct.pack(">H", 0x2000) + packet[8:]


@pytest.mark.parametrize(
    "linktype, frame",
    [
        (1, b"\xff" * 12 + b"\x08\x06" + b"\x00" * 28),  # ARP
        (1, rewrite.link_frame(1, _udp(rewrite.ip_packet(SEG)))),
        (1, rewrite.link_frame(1, _fragment(rewrite.ip_packet(SEG)))),
        (113, b"\x00" * 14 + b"\x08\x06" + b"\x00" * 28),
        (0, struct.pack("<I", 7) + rewrite.ip_packet(SEG)),
        (147, rewrite.ip_packet(SEG)),
        (101, b"\x45" + b"\x00" * 10),
        (229, b"\x60" + b"\x00" * 20),
        (101, b"\x50" * 40),
    ],
    ids=[
        "arp",
        "udp",
        "fragment",
        "sll arp",
        "null unknown family",
        "unsupported link type",
        "short ipv4",
        "short ipv6",
        "ip version 5",
    ],
)
def test_frames_without_tcp_give_none(linktype: int, frame: bytes) -> None:
    assert decode_segment(linktype, frame) is None

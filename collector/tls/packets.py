"""Link, IP and TCP header decoding: a captured frame becomes a TCP segment, or nothing.

Public API: `decode_segment(linktype, data) -> Segment | None` and `SUPPORTED_LINKTYPES`.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

ETHERNET: Final = 1
NULL: Final = 0
RAW: Final = 101
LOOP: Final = 108
LINUX_SLL: Final = 113
IPV4: Final = 228
IPV6: Final = 229
LINUX_SLL2: Final = 276
SUPPORTED_LINKTYPES = frozenset({ETHERNET, NULL, RAW, LOOP, LINUX_SLL, IPV4, IPV6, LINUX_SLL2})

_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
_IPV6_FAMILIES = (10, 24, 28, 30)  # AF_INET6 differs between Linux and the BSDs
_IPV6_SKIPPABLE = (0, 43, 60, 135, 139, 140)  # hop-by-hop, routing, destination options, mobility, HIP, shim6
TCP_FIN: Final = 0x01
TCP_SYN: Final = 0x02
TCP_RST: Final = 0x04
TCP_ACK: Final = 0x10
_IPV4 = struct.Struct(
    ">BxHxxHxB2x4s4s"
)  # version/IHL, total length, flags/fragment offset, protocol, src, dst
_TCP = struct.Struct(">HHI4xBB")  # ports, sequence number, data offset, flags


class Segment(NamedTuple):
    """One TCP segment; the payload is ``data[start:end]`` (not copied until someone needs it).

    Attributes:
        src / dst: raw address bytes (4 for IPv4, 16 for IPv6).
        missing: payload bytes the IP header announces but the capture did not keep (snap length).
    """

    src: bytes
    sport: int
    dst: bytes
    dport: int
    seq: int
    flags: int
    data: bytes
    start: int
    end: int
    missing: int


def decode_segment(linktype: int, data: bytes) -> Segment | None:
    """The TCP segment inside one frame; None for anything else (ARP, UDP, fragments, short frames)."""
    if linktype == ETHERNET and data[12:14] == b"\x08\x00":  # the common case, without the general lookup
        offset: int | None = 14
    else:
        offset = _network_offset(linktype, data)
    if offset is None or offset >= len(data):
        return None
    version = data[offset] >> 4
    if version == 4:
        return _decode_ipv4(data, offset)
    if version == 6:
        return _decode_ipv6(data, offset)
    return None


def _network_offset(linktype: int, data: bytes) -> int | None:
    """Where the IP header starts for this link type; None when the frame carries no IP."""
    if linktype == ETHERNET:
        offset, ethertype = 14, int.from_bytes(data[12:14], "big")
        while ethertype in _VLAN_TYPES:
            ethertype = int.from_bytes(data[offset + 2 : offset + 4], "big")
            offset += 4
        return offset if ethertype in (0x0800, 0x86DD) else None
    if linktype == LINUX_SLL2:
        return 20 if data[0:2] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == LINUX_SLL:
        return 16 if data[14:16] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype in (RAW, IPV4, IPV6):
        return 0
    if linktype in (NULL, LOOP):
        family = int.from_bytes(data[0:4], "little" if linktype == NULL else "big")
        if family > 0xFFFF:  # written on a host of the other byte order
            family = int.from_bytes(data[0:4], "big" if linktype == NULL else "little")
        return 4 if family == 2 or family in _IPV6_FAMILIES else None
    return None


def _decode_ipv4(data: bytes, offset: int) -> Segment | None:
    if len(data) < offset + 20:
        return None
    version_ihl, total, fragment, protocol, src, dst = _IPV4.unpack_from(data, offset)
    header_len = (version_ihl & 0x0F) * 4
    if protocol != 6 or header_len < 20 or fragment & 0x3FFF:  # not TCP, or a fragment: not reassembled
        return None
    end = offset + total if total else len(data)  # total 0: TSO capture, the frame is the packet
    return _decode_tcp(data, src, dst, offset + header_len, end)


def _decode_ipv6(data: bytes, offset: int) -> Segment | None:
    if len(data) < offset + 40:
        return None
    payload_len = int.from_bytes(data[offset + 4 : offset + 6], "big")
    end = offset + 40 + payload_len if payload_len else len(data)
    src, dst = data[offset + 8 : offset + 24], data[offset + 24 : offset + 40]
    next_header, cursor = data[offset + 6], offset + 40
    while next_header != 6:
        if cursor + 8 > len(data):
            return None
        if next_header in _IPV6_SKIPPABLE:
            next_header, cursor = data[cursor], cursor + (data[cursor + 1] + 1) * 8
        elif next_header == 51:  # authentication header counts in 4-byte units
            next_header, cursor = data[cursor], cursor + (data[cursor + 1] + 2) * 4
        elif next_header == 44 and int.from_bytes(data[cursor + 2 : cursor + 4], "big") == 0:
            next_header, cursor = data[cursor], cursor + 8  # atomic fragment: the whole packet
        else:
            return None
    return _decode_tcp(data, src, dst, cursor, end)


def _decode_tcp(data: bytes, src: bytes, dst: bytes, offset: int, end: int) -> Segment | None:
    if len(data) < offset + 20:
        return None
    sport, dport, seq, data_offset, flags = _TCP.unpack_from(data, offset)
    start = offset + (data_offset >> 4) * 4
    captured_end = min(end, len(data))
    start = min(start, captured_end)
    return Segment(src, sport, dst, dport, seq, flags, data, start, captured_end, max(0, end - captured_end))

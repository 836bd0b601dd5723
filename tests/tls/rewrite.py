"""Test-side capture rewriting: read the real fixtures' TCP segments and write them back changed.

Independent of collector/tls on purpose (its own tiny parser and writers), so that a bug in the code under
test cannot hide itself in the inputs. Supports what the fixtures use (Ethernet or SLL2, IPv4 or IPv6) and
writes pcap (any byte order, µs or ns), pcapng (several interfaces, either byte order), and every link type
we read.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Seg:
    """One TCP segment (or a non-TCP frame, kept as raw bytes in `other`)."""

    src: bytes = b""
    dst: bytes = b""
    sport: int = 0
    dport: int = 0
    seq: int = 0
    ack: int = 0
    flags: int = 0
    payload: bytes = b""
    other: bytes | None = None


def read_pcap(path: Path) -> tuple[int, list[bytes]]:
    """(link type, frames) of a little- or big-endian classic pcap."""
    data = path.read_bytes()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack_from(order + "I", data, 20)[0]
    frames, pos = [], 24
    while pos + 16 <= len(data):
        caplen = struct.unpack_from(order + "I", data, pos + 8)[0]
        frames.append(data[pos + 16 : pos + 16 + caplen])
        pos += 16 + caplen
    return linktype, frames


def segments(path: Path) -> list[Seg]:
    """The TCP segments of a fixture, in capture order."""
    linktype, frames = read_pcap(path)
    offset = {1: 14, 276: 20, 113: 16}[linktype]
    found = []
    for frame in frames:
        ip = frame[offset:]
        if ip[0] >> 4 == 4:
            header, proto, total = (ip[0] & 15) * 4, ip[9], struct.unpack_from(">H", ip, 2)[0]
            src, dst, tcp = ip[12:16], ip[16:20], ip[header:total]
        else:
            proto, total = ip[6], 40 + struct.unpack_from(">H", ip, 4)[0]
            src, dst, tcp = ip[8:24], ip[24:40], ip[40:total]
        if proto != 6:
            found.append(Seg(other=frame[offset:]))
            continue
        sport, dport, seq, ack, off_flags = struct.unpack_from(">HHIIH", tcp)
        found.append(Seg(src, dst, sport, dport, seq, ack, off_flags & 0x3F, tcp[(off_flags >> 12) * 4 :]))
    return found


def ip_packet(seg: Seg, *, ipv6: bool = False, hop_by_hop: bool = False) -> bytes:
    """IPv4 or IPv6 (optionally with a hop-by-hop extension header) + TCP, checksums left zero."""
    if seg.other is not None:
        return seg.other
    tcp = struct.pack(">HHIIBBHHH", seg.sport, seg.dport, seg.seq, seg.ack, 5 << 4, seg.flags, 65535, 0, 0)
    tcp += seg.payload
    if not ipv6:
        return (
            struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, seg.src, seg.dst) + tcp
        )
    src, dst = _v6(seg.src), _v6(seg.dst)
    if hop_by_hop:
        ext = bytes([6, 0, 1, 4, 0, 0, 0, 0])  # next header TCP, PadN option filling 8 bytes
        return struct.pack(">IHBB16s16s", 0x60000000, len(ext) + len(tcp), 0, 64, src, dst) + ext + tcp
    return struct.pack(">IHBB16s16s", 0x60000000, len(tcp), 6, 64, src, dst) + tcp


def _v6(address: bytes) -> bytes:
    return address if len(address) == 16 else b"\xfd\x00" + b"\x00" * 10 + address


def link_frame(linktype: int, packet: bytes, *, vlans: int = 0, null_order: str = "<") -> bytes:
    """Wrap an IP packet in the link header of `linktype`."""
    v6 = packet[0] >> 4 == 6
    ethertype = b"\x86\xdd" if v6 else b"\x08\x00"
    if linktype == 1:
        tags = b"".join(
            struct.pack(">HH", 0x88A8 if i == 0 and vlans > 1 else 0x8100, 100 + i) for i in range(vlans)
        )
        return b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb" + tags + ethertype + packet
    if linktype == 113:
        return struct.pack(">HHH8s", 0, 772, 6, b"\x00" * 8) + ethertype + packet
    if linktype == 276:
        return ethertype + b"\x00\x00" + struct.pack(">IHBB8s", 1, 772, 0, 6, b"\x00" * 8) + packet
    if linktype in (101, 228, 229):
        return packet
    if linktype == 0:
        return struct.pack(null_order + "I", 30 if v6 else 2) + packet
    if linktype == 108:
        return struct.pack(">I", 30 if v6 else 2) + packet
    raise ValueError(linktype)


def frames_for(segs: Iterable[Seg], linktype: int = 1, **options: object) -> list[bytes]:
    ipv6 = bool(options.pop("ipv6", False))
    hop = bool(options.pop("hop_by_hop", False))
    return [link_frame(linktype, ip_packet(s, ipv6=ipv6, hop_by_hop=hop), **options) for s in segs]  # type: ignore


def write_pcap(
    path: Path,
    linktype: int,
    frames: Sequence[bytes],
    *,
    order: str = "<",
    nanos: bool = False,
    snaplen: int = 262144,
) -> Path:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for number, frame in enumerate(frames):
        kept = frame[:snaplen]
        out.append(struct.pack(order + "IIII", 1700000000 + number, 0, len(kept), len(frame)) + kept)
    path.write_bytes(b"".join(out))
    return path


def write_pcapng(
    path: Path,
    packets: Sequence[tuple[int, bytes]],
    linktypes: Sequence[int],
    *,
    order: str = "<",
    simple: bool = False,
    unknown_block: bool = True,
    stamps: Sequence[int] | None = None,
    tsresol: int | None = None,
    tsoffset: int | None = None,
) -> Path:
    """pcapng with one IDB per link type; packets are (interface index, frame); `simple` uses SPBs
    (interface 0).

    `stamps` are the raw EPB timestamps (0 when absent); `tsresol` / `tsoffset` become every IDB's
    if_tsresol / if_tsoffset options.
    """

    def block(kind: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        return (
            struct.pack(order + "II", kind, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)
        )

    out = [block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))]
    options = b""
    if tsresol is not None:
        options += struct.pack(order + "HH", 9, 1) + bytes([tsresol, 0, 0, 0])
    if tsoffset is not None:
        options += struct.pack(order + "HHq", 14, 8, tsoffset)
    options += struct.pack(order + "HH", 0, 0) if options else b""
    out += [block(1, struct.pack(order + "HHI", linktype, 0, 0) + options) for linktype in linktypes]
    if unknown_block:
        out.append(block(0x0BAD, b"custom block we must skip"))
    for number, (interface, frame) in enumerate(packets):
        if simple:
            out.append(block(3, struct.pack(order + "I", len(frame)) + frame))
        else:
            stamp = stamps[number] if stamps else 0
            high, low = stamp >> 32, stamp & 0xFFFFFFFF
            header = struct.pack(order + "IIIII", interface, high, low, len(frame), len(frame))
            out.append(block(6, header + frame))
    path.write_bytes(b"".join(out))
    return path


def resegment(segs: Iterable[Seg], mss: int) -> list[Seg]:
    """Split every payload into `mss`-byte segments, as a path with a small MSS would."""
    out = []
    for seg in segs:
        if seg.other is not None or len(seg.payload) <= mss:
            out.append(seg)
            continue
        for start in range(0, len(seg.payload), mss):
            flags = (
                seg.flags if start + mss >= len(seg.payload) else seg.flags & ~0x01
            )  # FIN on the last piece
            out.append(
                dataclasses.replace(
                    seg,
                    seq=(seg.seq + start) & 0xFFFFFFFF,
                    flags=flags,
                    payload=seg.payload[start : start + mss],
                )
            )
    return out


def reorder(segs: Sequence[Seg]) -> list[Seg]:
    """Swap each pair of consecutive data segments and retransmit every third one, with an
    overlapping copy."""
    out = list(segs)
    index = 0
    while index + 1 < len(out):
        a, b = out[index], out[index + 1]
        if (
            a.payload
            and b.payload
            and a.other is None
            and b.other is None
            and (a.src, a.sport) == (b.src, b.sport)
        ):
            out[index], out[index + 1] = b, a
            index += 2
        else:
            index += 1
    extra = []
    for number, seg in enumerate(out):
        extra.append(seg)
        if seg.payload and number % 3 == 0:
            extra.append(seg)  # exact duplicate
            if len(seg.payload) > 20:  # a retransmission starting inside already-delivered bytes
                extra.append(
                    dataclasses.replace(seg, seq=(seg.seq + 10) & 0xFFFFFFFF, payload=seg.payload[10:])
                )
    return extra


LATENCY_NS = 40_000  # how much later the backend's copy of each packet is stamped


def stamps_ns(path: Path) -> list[int]:
    """The frames' timestamps of a little-endian microsecond pcap (the fixtures), in nanoseconds."""
    data, pos, stamps = path.read_bytes(), 24, []
    while pos + 16 <= len(data):
        seconds, micros, caplen = struct.unpack_from("<III", data, pos)
        stamps.append(seconds * 1_000_000_000 + micros * 1000)
        pos += 16 + caplen
    return stamps


def backend_side_copy(source: Path, folder: Path) -> Path:
    """The same packets as the backend's `tcpdump -i any` would keep them: SLL2 frames in a pcapng with
    nanosecond timestamps, the first half on an Ethernet interface, the rest on an SLL2 one."""
    segs = segments(source)
    half = len(segs) // 2
    ether, cooked = frames_for(segs[:half], 1), frames_for(segs[half:], 276)
    packets = [(0, f) for f in ether] + [(1, f) for f in cooked]
    stamps = [s + LATENCY_NS for s in stamps_ns(source)]
    return write_pcapng(folder / "backend.pcapng", packets, [1, 276], stamps=stamps, tsresol=9)

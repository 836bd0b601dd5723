"""The capture reader's fast path (a classic pcap, or a pcapng's enhanced packet blocks, handed to the
connection table a buffer at a time, common packets decided inline, sealed records counted in place) reads
exactly what the general path reads: the frames one by one through `ConnectionTable.add_frame` and
`Session.add_segment`."""

from __future__ import annotations

import io
import struct
from collections.abc import Set as AbstractSet
from pathlib import Path

import pytest

from collector.tls.capture import CaptureResult, open_frames, read_handshakes
from collector.tls.connections import ConnectionTable
from collector.tls.pcap import Consumer, PcapReader
from collector.tls.pcapng import PcapngReader
from tests.tls import rewrite
from tests.tls.conftest import ALL_CAPTURES, PLAIN_CAPTURES, capture_path, keylog_for

HEALTHY = "healthy-openssl-tls12.pcap"


def _general(path: Path, name: str) -> CaptureResult:
    with open_frames(path) as reader:
        table = ConnectionTable(keylog_for(name), path.name, reader.frame_time)
        for linktype, data in reader:
            table.add_frame(linktype, data)
        return table.result(list(reader.notes))


def _same(fast: CaptureResult, general: CaptureResult) -> None:
    assert fast == general  # every field of every handshake, the notes, the attempts, the frame count
    for mine, theirs in zip(fast.handshakes, general.handshakes, strict=True):  # fields left out of ==
        assert mine.server_chain_der == theirs.server_chain_der
        assert (mine.server_hello_frame, mine.server_chain_frame) == (
            theirs.server_hello_frame, theirs.server_chain_frame)


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_every_fixture_reads_the_same_both_ways(name: str) -> None:
    path = capture_path(name)
    _same(read_handshakes(path, keylog_for(name)), _general(path, name))


@pytest.mark.parametrize("chunk", [1, 300, 4096])
def test_every_fixture_reads_the_same_whatever_the_chunk_size(
    monkeypatch: pytest.MonkeyPatch, chunk: int, tmp_path: Path
) -> None:
    # Given the fixtures read as usual, and as pcapng
    expected = {name: read_handshakes(capture_path(name), keylog_for(name)) for name in PLAIN_CAPTURES}
    as_pcapng = {name: _as_pcapng(capture_path(name), tmp_path / f"{name}ng") for name in PLAIN_CAPTURES}
    # When the file is read in chunks so small that records and blocks run across them all the time
    monkeypatch.setattr("collector.tls.pcap.CHUNK", chunk)
    for name in PLAIN_CAPTURES:
        # Then both formats read what one large chunk gave
        _same(read_handshakes(capture_path(name), keylog_for(name)), expected[name])
        pcapng = read_handshakes(as_pcapng[name], keylog_for(name))
        assert [h.to_json() | {"source": ""} for h in pcapng.handshakes] == [
            h.to_json() | {"source": ""} for h in expected[name].handshakes
        ]
        assert (pcapng.packets, pcapng.notes) == (expected[name].packets, expected[name].notes)


def _as_pcapng(source: Path, path: Path) -> Path:
    """The fixture's frames and times as a pcapng (one interface, enhanced packet blocks)."""
    linktype, frames = rewrite.read_pcap(source)
    packets = [(0, frame) for frame in frames]
    return rewrite.write_pcapng(path, packets, [linktype], stamps=rewrite.stamps_ns(source), tsresol=9)


@pytest.mark.parametrize("name", PLAIN_CAPTURES)
def test_every_fixture_as_pcapng_reads_the_same_both_ways(name: str, tmp_path: Path) -> None:
    # Given a fixture saved as pcapng, as Wireshark saves it
    path = _as_pcapng(capture_path(name), tmp_path / "capture.pcapng")
    # Then the fast path reads what the general path reads, and what the pcap gave (but the file's name)
    fast = read_handshakes(path, keylog_for(name))
    _same(fast, _general(path, name))
    from_pcap = read_handshakes(capture_path(name), keylog_for(name))
    assert [h.to_json() | {"source": ""} for h in fast.handshakes] == [
        h.to_json() | {"source": ""} for h in from_pcap.handshakes
    ]
    assert (fast.packets, fast.notes) == (from_pcap.packets, from_pcap.notes)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_blocks_the_fast_path_leaves_to_the_reader_read_the_same_both_ways(
    tmp_path: Path, order: str
) -> None:
    # Given a real handshake in small segments, its frames spread over three interfaces in turn (Ethernet,
    # Linux cooked, Ethernet again), then a second section in the other byte order whose packets are simple
    # packet blocks: every kind of block the fast path stops at, between runs of blocks it takes
    name = "ca-mismatch-java-tls12.pcap"
    segs = rewrite.resegment(rewrite.segments(capture_path(name)), 100)
    ethernet, cooked = rewrite.frames_for(segs, 1), rewrite.frames_for(segs, 276)
    half = len(segs) // 2
    mixed = [(n % 3, (ethernet, cooked, ethernet)[n % 3][n]) for n in range(half)]
    first = rewrite.write_pcapng(tmp_path / "first", mixed, [1, 276, 1], order=order).read_bytes()
    other = ">" if order == "<" else "<"
    rest = [(0, frame) for frame in cooked[half:]]
    second = rewrite.write_pcapng(tmp_path / "second", rest, [276], order=other, simple=True).read_bytes()
    path = tmp_path / "mixed.pcapng"
    path.write_bytes(first + second)
    # Then the fast path reads what the general path reads, frame numbers included
    fast = read_handshakes(path)
    _same(fast, _general(path, name))
    assert fast.packets == len(segs) and len(fast.handshakes) == 1


def test_pcapng_progress_is_told_once_per_chunk_read(tmp_path: Path) -> None:
    # Given a pcapng of ~3 MB of simple packet blocks (none taken by the fast path: the reader calls its
    # consumer at each)
    frames = rewrite.frames_for(rewrite.resegment(rewrite.segments(capture_path(HEALTHY)), 1448), 1) * 300
    path = rewrite.write_pcapng(tmp_path / "simple.pcapng", [(0, f) for f in frames], [1], simple=True)
    told: list[tuple[int, int]] = []
    # When read with a progress callback
    result = read_handshakes(path, progress=lambda done, size: told.append((done, size)))
    # Then it is told as the file is read, not at every packet, and ends at the file's size
    size = path.stat().st_size
    assert result.packets == len(frames)
    assert 2 <= len(told) <= size // (1 << 20) + 3
    assert told[-1] == (size, size) and [done for done, _ in told] == sorted(done for done, _ in told)


@pytest.mark.parametrize("linktype", [1, 113, 276])  # Ethernet; Linux cooked v1 and v2, what `-i any` writes
@pytest.mark.parametrize("mss", [3, 7, 100, 1448])
@pytest.mark.parametrize(
    "name", ["healthy-openssl-tls12.pcap", "ca-mismatch-java-tls12.pcap", "healthy-nginx-tls13.pcap"]
)
def test_small_segments_and_reordering_read_the_same_both_ways(
    tmp_path: Path, name: str, mss: int, linktype: int
) -> None:
    # Given sealed records spread over many segments: record headers cut by segment ends (mss 3 and 7),
    # segments ending a record and starting the next, and the same again reordered and retransmitted
    segs = rewrite.resegment(rewrite.segments(capture_path(name)), mss)
    for label, flow in (("inorder", segs), ("reordered", rewrite.reorder(segs))):
        path = rewrite.write_pcap(tmp_path / f"{label}.pcap", linktype, rewrite.frames_for(flow, linktype))
        # Then the fast path finds what the general path finds, frame numbers and counts included
        _same(read_handshakes(path, keylog_for(name)), _general(path, name))


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("linktype", [1, 113, 276])
def test_common_frames_take_the_fast_path_in_either_byte_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linktype: int, order: str
) -> None:
    # Given a capture of IPv4 frames without options, written in either byte order
    frames = rewrite.frames_for(rewrite.segments(capture_path(HEALTHY)), linktype)
    path = rewrite.write_pcap(tmp_path / "capture.pcap", linktype, frames, order=order)
    general = _general(path, HEALTHY)
    # When read
    handed: list[int] = []
    add_frame = ConnectionTable.add_frame

    def counted(self: ConnectionTable, *args: object, **kwargs: object) -> None:
        handed.append(1)
        add_frame(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ConnectionTable, "add_frame", counted)
    fast = read_handshakes(path)
    # Then none goes frame by frame through the general path, and the result is the general path's
    assert handed == [] and fast.packets == len(frames)
    _same(fast, general)


def test_read_into_hands_over_the_frames_and_notes_iterating_gives() -> None:
    # Given frames around the reader's 1 MB chunks, then each kind of damage after the header
    frames = [bytes([n % 251]) * (n * 997 % 70_001) for n in range(80)]  # ~2.8 MB: several chunks
    header = b"\xd4\xc3\xb2\xa1" + bytes(20)
    records = b"".join(bytes(8) + len(f).to_bytes(4, "little") * 2 + f for f in frames)
    cut_body = (10).to_bytes(4, "little") * 4 + b"x"
    impossible = bytes(8) + (1 << 30).to_bytes(4, "little") * 2
    for damage in (b"", b"\x00" * 7, cut_body, impossible):
        data = header + records + damage
        iterated = PcapReader(io.BytesIO(data), "f.pcap")
        expected = [frame for _, frame in iterated]
        handed = PcapReader(io.BytesIO(data), "f.pcap")
        got: list[bytes] = []

        def consume(buf: bytes, pos: int, got: list[bytes] = got) -> tuple[int, int]:
            count = 0
            while pos + 16 <= len(buf):
                end = pos + 16 + int.from_bytes(buf[pos + 8 : pos + 12], "little")
                if end > len(buf):
                    break
                got.append(buf[pos + 16 : end])
                pos, count = end, count + 1
            return pos, count

        handed.read_into(consume)
        # Then the same frames and the same notes
        assert got == expected and handed.notes == iterated.notes and bool(handed.notes) == bool(damage)


def test_pcapng_read_into_hands_one_link_type_to_the_consumer_and_yields_the_rest(tmp_path: Path) -> None:
    # Given ~2.8 MB of enhanced packet blocks (across the reader's 1 MB chunks) on three interfaces, the first
    # and the third Ethernet, the second Linux cooked; then a second section in the other byte order holding
    # simple packet blocks
    frames = [bytes([n % 251]) * (n * 997 % 70_001) for n in range(80)]
    first = [(n % 3, frame) for n, frame in enumerate(frames[:60])]
    one = rewrite.write_pcapng(tmp_path / "a", first, [1, 276, 1]).read_bytes()
    two = rewrite.write_pcapng(tmp_path / "b", [(0, f) for f in frames[60:]], [113], order=">", simple=True)
    data = one + two.read_bytes()
    expected = [frame for _, frame in PcapngReader(io.BytesIO(data), "f.pcapng")]
    got: list[bytes] = []
    taken: list[bytes] = []
    made_for: list[tuple[int, AbstractSet[int], str]] = []

    def consumer_for(linktype: int, also: AbstractSet[int], order: str, time_at: object) -> Consumer:
        made_for.append((linktype, also, order))

        def consume(buf: bytes, pos: int) -> tuple[int, int]:
            count = 0
            while pos + 28 <= len(buf):
                kind, length, interface, caplen = struct.unpack_from(order + "III8xI", buf, pos)
                if kind != 6 or (interface and interface not in also) or pos + length > len(buf):
                    break
                taken.append(buf[pos + 28 : pos + 28 + caplen])
                got.append(taken[-1])
                pos, count = pos + length, count + 1
            return pos, count

        return consume

    reader = PcapngReader(io.BytesIO(data), "f.pcapng")
    got.extend(frame for _, frame in reader.read_into(consumer_for))  # interleaved with what it takes
    # Then every frame once, in file order; the consumer took the Ethernet interfaces' enhanced packet blocks
    # but those cut by a chunk's end; a consumer was made for each section, told of the later Ethernet one
    assert got == expected and reader.notes == []
    ethernet = [frame for interface, frame in first if interface != 1]
    third = {frame for interface, frame in first if interface == 2}
    assert len(ethernet) - 3 <= len(taken) <= len(ethernet) and set(taken) <= set(ethernet)
    assert third & set(taken)
    assert made_for == [(1, {2}, "<"), (113, set(), ">")]

"""The capture reader's fast path (a classic pcap handed to the connection table a buffer at a time, common
packets decided inline, sealed records counted in place) reads exactly what the general path reads: the
frames one by one through `ConnectionTable.add_frame` and `Session.add_segment`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from collector.tls.capture import CaptureResult, open_frames, read_handshakes
from collector.tls.connections import ConnectionTable
from collector.tls.pcap import PcapReader
from tests.tls import rewrite
from tests.tls.conftest import ALL_CAPTURES, capture_path, keylog_for


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

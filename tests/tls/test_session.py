"""Session: outcomes decided from what both directions showed, and bounded work once nothing can change."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from collector.tls.capture import read_handshakes
from collector.tls.handshake import Outcome
from collector.tls.session import SETTLED_RECORDS, Session
from tests.tls import rewrite
from tests.tls.conftest import capture_path


def _feed(session: Session, segs: list[rewrite.Seg]) -> None:
    client = (segs[0].src, segs[0].sport)
    for frame, seg in enumerate(segs, start=1):
        if seg.other is None:
            index = 0 if (seg.src, seg.sport) == client else 1
            session.add_segment(index, seg.seq, seg.flags, seg.payload, 0, frame)


def _bulk(segs: list[rewrite.Seg], records: int) -> list[rewrite.Seg]:
    """The healthy capture with `records` 16 KB application-data records each way inserted before the FINs."""
    fin = next(i for i, s in enumerate(segs) if s.flags & 0x01)
    out, next_seq = segs[:fin], {}
    for seg in segs[:fin]:
        next_seq[(seg.src, seg.sport)] = (seg.seq + len(seg.payload)) & 0xFFFFFFFF
    record = b"\x17\x03\x03\x40\x00" + b"\xee" * 0x4000
    for _ in range(records):
        for seg in segs[:2]:  # the SYN (client) and SYN/ACK (server) give the two directions
            key = (seg.src, seg.sport)
            out.append(dataclasses.replace(seg, seq=next_seq[key], flags=0x18, payload=record))
            next_seq[key] = (next_seq[key] + len(record)) & 0xFFFFFFFF
    return out + segs[fin:]


def test_bulk_traffic_settles_a_sealed_session_and_stops_buffering() -> None:
    # Given a TLS 1.3 connection without keys (its handshake sealed), then bulk application data both ways
    segs = _bulk(rewrite.segments(capture_path("healthy-java-tls13.pcap")), 200)
    session = Session(1, ("c", "s"), None)
    _feed(session, segs)
    # Then the session settled after a dozen records each way, holds nothing, and the outcome stands
    assert session.done
    assert all(side.stream.next_seq is None and not side.records.feed(b"") for side in session.sides)
    assert session.outcome() is Outcome.OPAQUE
    assert SETTLED_RECORDS <= session.sides[0].after <= SETTLED_RECORDS + 10


def test_an_established_tls12_session_settles_at_the_second_finished() -> None:
    # Given an established TLS 1.2 connection followed by bulk application data both ways
    segs = _bulk(rewrite.segments(capture_path("healthy-java-tls12.pcap")), 200)
    session = Session(1, ("c", "s"), None)
    _feed(session, segs)
    # Then reading stopped at the second Finished (one sealed record each way), before any application data
    assert session.done and session.outcome() is Outcome.ESTABLISHED
    assert (session.sides[0].after, session.sides[1].after) == (1, 1)
    assert all(side.stream.next_seq is None for side in session.sides)


def test_a_tls12_handshake_s_frames_end_at_the_server_s_finished() -> None:
    # Given a healthy TLS 1.2 capture as tshark shows it: ClientHello in frame 4, the server's
    # NewSessionTicket, ChangeCipherSpec and Finished in frame 18, application data from frame 20 on
    handshake = read_handshakes(capture_path("healthy-openssl-tls12.pcap")).handshakes[0]
    # Then the handshake is cited by its own frames, not the application data's
    assert handshake.frames == (4, 18) and handshake.outcome is Outcome.ESTABLISHED


def test_bulk_capture_reads_the_same_handshake(tmp_path: Path) -> None:
    segs = _bulk(rewrite.segments(capture_path("healthy-java-tls12.pcap")), 50)
    path = rewrite.write_pcap(tmp_path / "bulk.pcap", 1, rewrite.frames_for(segs))
    handshake = read_handshakes(path).handshakes[0]
    assert handshake.outcome is Outcome.ESTABLISHED and handshake.client_certificate.sent

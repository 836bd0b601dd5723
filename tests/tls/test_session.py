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


def test_bulk_traffic_settles_the_session_and_stops_buffering() -> None:
    # Given an established TLS 1.2 connection followed by bulk application data both ways
    segs = _bulk(rewrite.segments(capture_path("healthy-java-tls12.pcap")), 200)
    session = Session(1, ("c", "s"), None)
    _feed(session, segs)
    # Then the session settled after a dozen records each way, holds nothing, and the outcome stands
    assert session.done
    assert all(side.stream.next_seq is None and not side.records.feed(b"") for side in session.sides)
    assert session.outcome() is Outcome.ESTABLISHED
    assert session.sides[0].after <= SETTLED_RECORDS + 10


def test_bulk_capture_reads_the_same_handshake(tmp_path: Path) -> None:
    segs = _bulk(rewrite.segments(capture_path("healthy-java-tls12.pcap")), 50)
    path = rewrite.write_pcap(tmp_path / "bulk.pcap", 1, rewrite.frames_for(segs))
    handshake = read_handshakes(path).handshakes[0]
    assert handshake.outcome is Outcome.ESTABLISHED and handshake.client_certificate.sent


def _cut_after(name: str, predicate: object, extra: list[rewrite.Seg] | None = None) -> list[rewrite.Seg]:
    segs = rewrite.segments(capture_path(name))
    stop = next(i for i, s in enumerate(segs) if predicate(s)) + 1  # type: ignore[operator]
    return segs[:stop] + (extra or [])


def test_capture_ending_mid_handshake_is_incomplete() -> None:
    # Given the TLS 1.2 exchange cut right after the server's CertificateRequest flight
    segs = _cut_after("ca-mismatch-openssl-tls12.pcap", lambda s: len(s.payload) > 1000)
    session = Session(1, ("c", "s"), None)
    _feed(session, segs)
    handshake = session.to_handshake("x")
    assert handshake.outcome is Outcome.INCOMPLETE and handshake.certificate_request is not None


def test_server_closing_during_the_handshake_is_a_failure() -> None:
    # Given the same cut, then the server's FIN with no alert (a backend that just hangs up)
    segs = _cut_after("ca-mismatch-openssl-tls12.pcap", lambda s: len(s.payload) > 1000)
    server = segs[1]
    last = segs[-1]
    fin = dataclasses.replace(
        server, seq=(last.seq + len(last.payload)) & 0xFFFFFFFF, flags=0x11, payload=b""
    )
    session = Session(1, ("c", "s"), None)
    _feed(session, segs + [fin])
    handshake = session.to_handshake("x")
    assert handshake.outcome is Outcome.FAILED
    assert handshake.notes[-1].startswith("the server closed the connection at frame")


def test_tls13_without_keys_closed_before_any_answer_is_a_failure() -> None:
    # Given JSSE's TLS 1.3 failure without keys, cut after the client's flight, then a server RST
    name = "missing-client-certificate-java-tls13.pcap"
    segs = rewrite.segments(capture_path(name))
    client = (segs[0].src, segs[0].sport)
    sealed = next(i for i, s in enumerate(segs) if s.payload[:1] == b"\x17" and (s.src, s.sport) == client)
    cut = segs[: sealed + 1]  # up to the client's first encrypted record
    server_last = [s for s in cut if (s.src, s.sport) != client][-1]
    rst = dataclasses.replace(
        server_last, seq=(server_last.seq + len(server_last.payload)) & 0xFFFFFFFF, flags=0x04, payload=b""
    )
    session = Session(1, ("c", "s"), None)
    _feed(session, cut + [rst])
    assert session.to_handshake("x").outcome is Outcome.FAILED

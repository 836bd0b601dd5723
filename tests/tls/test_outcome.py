"""decide_outcome / summarize_session: failed, established, opaque and incomplete from what a Session saw."""

from __future__ import annotations

import dataclasses

from collector.tls.handshake import Outcome
from collector.tls.outcome import decide_outcome, summarize_session
from collector.tls.session import Session
from tests.tls import rewrite
from tests.tls.conftest import capture_path


def _feed(session: Session, segs: list[rewrite.Seg]) -> None:
    client = (segs[0].src, segs[0].sport)
    for frame, seg in enumerate(segs, start=1):
        if seg.other is None:
            index = 0 if (seg.src, seg.sport) == client else 1
            session.add_segment(index, seg.seq, seg.flags, seg.payload, 0, frame)


def _cut_after(name: str, predicate: object, extra: list[rewrite.Seg] | None = None) -> list[rewrite.Seg]:
    segs = rewrite.segments(capture_path(name))
    stop = next(i for i, s in enumerate(segs) if predicate(s)) + 1  # type: ignore[operator]
    return segs[:stop] + (extra or [])


def test_capture_ending_mid_handshake_is_incomplete() -> None:
    # Given the TLS 1.2 exchange cut right after the server's CertificateRequest flight
    segs = _cut_after("ca-mismatch-openssl-tls12.pcap", lambda s: len(s.payload) > 1000)
    session = Session(1, ("c", "s"), None)
    _feed(session, segs)
    handshake = summarize_session(session, "x")
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
    handshake = summarize_session(session, "x")
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
    _feed(session, [*cut, rst])
    assert decide_outcome(session) is Outcome.FAILED


def test_summary_carries_source_frames_and_mid_connection_note() -> None:
    # Given the Java TLS 1.2 failure seen from its second data packet on (no SYN)
    segs = rewrite.segments(capture_path("ca-mismatch-java-tls12.pcap"))
    session = Session(1, ("c", "s"), None)
    _feed(session, [s for s in segs if s.payload][1:])
    handshake = summarize_session(session, "mp1.pcap")
    assert handshake.source == "mp1.pcap" and handshake.frames is not None
    assert handshake.notes[0] == "the capture starts in the middle of this connection (no SYN)"
    assert handshake.outcome is Outcome.FAILED  # the plaintext alert 42 is still there

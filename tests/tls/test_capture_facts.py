"""What the capture reader keeps beside the handshake messages: capture time, the ClientHello's offer, the
backend chain's DER, non-TLS replies, connection attempts without data, and the bounds on connections held."""

from __future__ import annotations

import base64
import datetime
import json
import os
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from cryptography import x509

from collector.tls.capture import CaptureResult, Limits, read_handshakes
from collector.tls.handshake import AttemptEnd, Outcome, iso_time
from tests.tls import rewrite
from tests.tls.conftest import capture_path, read_fixture

UTC = datetime.timezone.utc
HEALTHY = "healthy-java-tls12.pcap"
C, S = b"\x7f\x00\x00\x0b", b"\x7f\x00\x00\x15"  # 127.0.0.11 (the MP) and 127.0.0.21 (the backend)
SYN, SYN_ACK, ACK, PSH_ACK, FIN_ACK, RST_ACK, RST = 0x02, 0x12, 0x10, 0x18, 0x11, 0x14, 0x04


def _client_hello() -> bytes:
    """The first payload the JSSE client sent in a real capture: its ClientHello record(s)."""
    segs = rewrite.segments(capture_path(HEALTHY))
    return next(s.payload for s in segs if s.payload and s.sport == segs[0].sport)


def _seg(from_client: bool, seq: int, flags: int, payload: bytes = b"", port: int = 40000) -> rewrite.Seg:
    if from_client:
        return rewrite.Seg(C, S, port, 443, seq, 0, flags, payload)
    return rewrite.Seg(S, C, 443, port, seq, 0, flags, payload)


def _read(tmp_path: Path, segs: list[rewrite.Seg], limits: Limits | None = None) -> CaptureResult:
    path = rewrite.write_pcap(tmp_path / "made.pcap", 1, rewrite.frames_for(segs))
    return read_handshakes(path, limits=limits or Limits())


# -- capture time --------------------------------------------------------------------------------------------

def _first_frame_time(name: str) -> datetime.datetime:
    data = capture_path(name).read_bytes()
    seconds, micros = struct.unpack_from("<II", data, 24)
    return datetime.datetime.fromtimestamp(seconds, UTC) + datetime.timedelta(microseconds=micros)


def test_capture_time_is_the_connections_first_packet() -> None:
    # Given a real capture, When read, Then the handshake's time is its SYN's timestamp in UTC
    handshake = read_fixture(HEALTHY).handshakes[0]
    assert handshake.captured_at == _first_frame_time(HEALTHY)
    assert handshake.captured_at.tzinfo is UTC
    assert handshake.to_json()["captured_at"] == handshake.captured_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(
    "when,text",
    [
        (datetime.datetime(2026, 12, 2, 5, 18, 0, 123456, UTC), "2026-12-02T05:18:00.123456Z"),
        (datetime.datetime(2026, 12, 2, 5, 18, 0, 0, UTC), "2026-12-02T05:18:00.000000Z"),  # zeros kept
        (datetime.datetime(999, 1, 2, 3, 4, 5, 6, UTC), "0999-01-02T03:04:05.000006Z"),  # four-digit year
    ],
)
def test_capture_times_are_written_iso_8601_utc(when: datetime.datetime, text: str) -> None:
    # Given a capture time, When written, Then ISO 8601 in UTC with a Z, as JSON readers parse it
    assert iso_time(when) == text


STAMP = 1_700_000_000  # rewrite.write_pcap stamps frame n with STAMP + n seconds
PCAPNG_CLOCKS = {
    # name: (raw EPB timestamp, if_tsresol, if_tsoffset, expected time)
    "default microseconds": (STAMP * 10**6 + 250_000, None, None, (STAMP, 250_000)),
    "nanoseconds": (STAMP * 10**9 + 123_456_789, 9, None, (STAMP, 123_456)),
    "milliseconds": (STAMP * 10**3 + 7, 3, None, (STAMP, 7_000)),
    "binary 2^-10": (STAMP * 1024 + 512, 0x80 | 10, None, (STAMP, 500_000)),
    "offset in seconds": (5 * 10**6, None, STAMP, (STAMP + 5, 0)),
    "beyond year 9999 (damaged)": ((1 << 64) - 1, 9, 1 << 62, None),
}


@pytest.mark.parametrize("raw,tsresol,tsoffset,expected", PCAPNG_CLOCKS.values(), ids=PCAPNG_CLOCKS.keys())
def test_pcapng_timestamps_follow_the_interface_resolution(
    raw: int, tsresol: int | None, tsoffset: int | None, expected: tuple[int, int] | None, tmp_path: Path
) -> None:
    # Given a pcapng whose interface names its timestamp unit (and offset)
    frames = rewrite.frames_for(rewrite.segments(capture_path(HEALTHY)))
    path = rewrite.write_pcapng(
        tmp_path / "t.pcapng", [(0, f) for f in frames], [1], stamps=[raw] * len(frames), tsresol=tsresol,
        tsoffset=tsoffset,
    )
    # Then the handshake's time is read in that unit (unknown when no date can hold it)
    if expected is None:
        assert read_handshakes(path).handshakes[0].captured_at is None
        return
    seconds, micros = expected
    when = datetime.datetime.fromtimestamp(seconds, UTC) + datetime.timedelta(microseconds=micros)
    assert read_handshakes(path).handshakes[0].captured_at == when


@pytest.mark.parametrize("nanos", [False, True])
def test_pcap_timestamps_in_both_precisions(nanos: bool, tmp_path: Path) -> None:
    frames = rewrite.frames_for(rewrite.segments(capture_path(HEALTHY)))
    path = rewrite.write_pcap(tmp_path / "t.pcap", 1, frames, nanos=nanos)
    assert read_handshakes(path).handshakes[0].captured_at == datetime.datetime.fromtimestamp(STAMP, UTC)


def test_simple_packet_blocks_have_no_time(tmp_path: Path) -> None:
    frames = rewrite.frames_for(rewrite.segments(capture_path(HEALTHY)))
    path = rewrite.write_pcapng(tmp_path / "s.pcapng", [(0, f) for f in frames], [1], simple=True)
    handshake = read_handshakes(path).handshakes[0]
    assert handshake.captured_at is None and handshake.to_json()["captured_at"] is None


# -- ClientHello offer and backend chain ---------------------------------------------------------------------

def test_offer_and_chain_of_a_real_jsse_handshake() -> None:
    # Given the JSSE client's TLS 1.2 handshake, When read
    handshake = read_fixture(HEALTHY).handshakes[0]
    offer = handshake.client_hello
    # Then the offer lists JDK 17's versions and suites in order, and the selected ones are among them
    assert offer is not None and offer.legacy_version == "TLSv1.2"
    assert offer.supported_versions == ("TLSv1.3", "TLSv1.2") == offer.versions
    assert offer.cipher_suites[0] == "TLS_AES_256_GCM_SHA384" and handshake.cipher in offer.cipher_suites
    assert handshake.version in offer.versions
    # And the backend chain's DER decodes to the certificates the summaries describe
    chain = [x509.load_der_x509_certificate(der) for der in handshake.server_chain_der]
    assert [c.subject.rfc4514_string() for c in chain] == [c.subject for c in handshake.server_chain]
    data = json.loads(json.dumps(handshake.to_json()))
    assert [base64.b64decode(d) for d in data["server_chain_der"]] == list(handshake.server_chain_der)
    assert data["client_hello"]["versions"] == ["TLSv1.3", "TLSv1.2"]


def test_tls13_chain_comes_from_the_key_log() -> None:
    name = "healthy-openssl-tls13.pcap"
    assert len(read_fixture(name).handshakes[0].server_chain_der) == 2
    assert read_fixture(name, with_keys=False).handshakes[0].server_chain_der == ()


def test_to_json_keeps_every_existing_field() -> None:
    # Old bundles and tests read these names: new facts are added beside them, never instead of them
    data = read_fixture(HEALTHY).handshakes[0].to_json()
    old = {"client", "server", "sni", "version", "cipher", "server_chain", "certificate_request",
           "client_certificate", "alerts", "outcome", "source", "frames", "notes"}
    new = {"client_hello", "server_chain_der", "captured_at", "non_tls_reply"}
    assert set(data) == old | new


# -- replies that are not TLS --------------------------------------------------------------------------------

HTTP_400 = b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\n\r\n<html>\x00</html>"
NOT_TLS = {
    # name: (server's bytes before the ClientHello, server's bytes after it, expected first bytes)
    "plaintext HTTP port answers the ClientHello": (
        b"", HTTP_400, "HTTP/1.1 400 Bad Request\\r\\nServer: nginx\\r\\nContent-Type: text/html"  # 64 bytes
    ),
    "a banner before the ClientHello": (b"SSH-2.0-OpenSSH_9.2\r\n", b"", "SSH-2.0-OpenSSH_9.2\\r\\n"),
    "binary bytes": (b"", b"\x00\xff\x10garbage", "\\x00\\xff\\x10garbage"),
}


@pytest.mark.parametrize("before,after,expected", NOT_TLS.values(), ids=NOT_TLS.keys())
def test_a_reply_that_is_not_tls_is_kept(before: bytes, after: bytes, expected: str, tmp_path: Path) -> None:
    # Given a client that sends a real ClientHello and a server that answers with bytes that are no TLS record
    hello = _client_hello()
    segs = [_seg(True, 100, SYN), _seg(False, 500, SYN_ACK), _seg(True, 101, ACK)]
    seq = 501
    if before:
        segs.append(_seg(False, seq, PSH_ACK, before))
        seq += len(before)
    segs.append(_seg(True, 101, PSH_ACK, hello))
    if after:
        segs.append(_seg(False, seq, PSH_ACK, after))
        seq += len(after)
    segs += [_seg(False, seq, FIN_ACK), _seg(True, 101 + len(hello), FIN_ACK)]
    result = _read(tmp_path, segs)
    # Then the handshake is failed, and says who sent what, escaped, and that it was not TLS
    (handshake,) = result.handshakes
    reply = handshake.non_tls_reply
    assert reply is not None and reply.sender == "server" and reply.first_bytes == expected
    assert handshake.outcome is Outcome.FAILED and handshake.client_hello is not None
    assert handshake.to_json()["non_tls_reply"] == {"from": "server", "tls": False, "first_bytes": expected}


def test_a_connection_whose_client_speaks_no_tls_is_no_handshake(tmp_path: Path) -> None:
    segs = [
        _seg(True, 100, SYN), _seg(False, 500, SYN_ACK), _seg(False, 501, PSH_ACK, b"220 smtp ready\r\n"),
        _seg(True, 101, PSH_ACK, b"EHLO mp\r\n"),
    ]
    result = _read(tmp_path, segs)
    assert (result.handshakes, result.connection_attempts) == ((), ())


def test_tls_handshakes_carry_no_non_tls_reply() -> None:
    assert read_fixture(HEALTHY).handshakes[0].non_tls_reply is None


# -- connection attempts without data ------------------------------------------------------------------------

ATTEMPTS = {
    # name: (packets as (from the client, flags), how the attempt ends, the frame that ends it)
    "SYN answered by RST: refused": ([(True, SYN), (False, RST_ACK)], AttemptEnd.REFUSED, 2),
    "connected, closed by the client, then the server": (
        [(True, SYN), (False, SYN_ACK), (True, ACK), (True, FIN_ACK), (False, FIN_ACK), (True, ACK)],
        AttemptEnd.CLOSED_WITHOUT_DATA,
        5,
    ),
    "connected, reset by the server": (
        [(True, SYN), (False, SYN_ACK), (True, ACK), (False, RST)], AttemptEnd.CLOSED_WITHOUT_DATA, 4
    ),
    "SYN retransmitted, never answered": ([(True, SYN), (True, SYN), (True, SYN)], AttemptEnd.UNANSWERED, 3),
    "connected and idle until the capture ends": ([(True, SYN), (False, SYN_ACK), (True, ACK)], None, 0),
    "only the middle of a connection": ([(True, ACK), (False, ACK)], None, 0),
}


@pytest.mark.parametrize("packets,end,last", ATTEMPTS.values(), ids=ATTEMPTS.keys())
def test_connection_attempts_without_data(
    packets: list, end: AttemptEnd | None, last: int, tmp_path: Path
) -> None:
    # Given a TCP connection that never carries a byte
    segs = [_seg(from_client, 100 if from_client else 500, flags) for from_client, flags in packets]
    result = _read(tmp_path, segs)
    # Then it is no handshake, and an attempt when it ended in a way worth telling
    assert result.handshakes == ()
    if end is None:
        assert result.connection_attempts == ()
        return
    (attempt,) = result.connection_attempts
    assert (attempt.client, attempt.server, attempt.end) == ("127.0.0.11:40000", "127.0.0.21:443", end)
    assert attempt.captured_at == datetime.datetime.fromtimestamp(STAMP, UTC)
    assert attempt.frames == (1, last)
    assert attempt.to_json()["end"] == end.value


def test_refused_attempts_beside_a_handshake_keep_capture_order(tmp_path: Path) -> None:
    # Given a refused attempt, then a real handshake, then another refused attempt
    handshake = rewrite.segments(capture_path(HEALTHY))
    refused = [_seg(True, 100, SYN, port=41000), _seg(False, 0, RST_ACK, port=41000)]
    again = [_seg(True, 100, SYN, port=41001), _seg(False, 0, RST_ACK, port=41001)]
    result = _read(tmp_path, refused + handshake + again)
    # Then both attempts and the handshake are there, in capture order
    assert len(result.handshakes) == 1 and result.handshakes[0].outcome is Outcome.ESTABLISHED
    assert [a.client for a in result.connection_attempts] == ["127.0.0.11:41000", "127.0.0.11:41001"]
    after = len(handshake) + 2
    assert [a.frames for a in result.connection_attempts] == [(1, 2), (after + 1, after + 2)]


# -- bounded connection state --------------------------------------------------------------------------------

def _syn_flood(path: Path, count: int) -> Path:
    """`count` one-packet connections (a SYN each, from distinct ports and addresses), written fast."""
    ether = b"\x00" * 12 + b"\x08\x00"
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for n in range(count):
        source = struct.pack(">I", 0x0A000000 + (n >> 14))
        tcp = struct.pack(">HHIIBBHHH", 1024 + (n & 0x3FFF), 443, n, 0, 0x50, SYN, 65535, 0, 0)
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0, source, S)
        frame = ether + ip + tcp
        out.append(struct.pack("<IIII", STAMP + n // 1000, n % 1000, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def _peak_bytes(path: Path, limits: Limits) -> tuple[int, object]:
    tracemalloc.start()
    try:
        result = read_handshakes(path, limits=limits)
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def test_a_flood_of_one_packet_connections_keeps_memory_bounded(tmp_path: Path) -> None:
    # Given floods of SYN-only connections, one twice the other's size, and small limits to show the policy
    limits = Limits(connections=1_000, settled=2_000, attempts=50)
    small, large = _syn_flood(tmp_path / "small.pcap", 10_000), _syn_flood(tmp_path / "large.pcap", 20_000)
    # When each is read under tracemalloc
    small_peak, _ = _peak_bytes(small, limits)
    large_peak, result = _peak_bytes(large, limits)
    # Then memory does not grow with the number of connections (an unbounded table needs ~1.4 KB per Session)
    assert large_peak < 1.25 * small_peak and large_peak < 4_000_000
    # And the attempts are listed up to the limit, the rest counted, and the letting go is said
    assert len(result.connection_attempts) == 50  # type: ignore[attr-defined]
    assert {a.end for a in result.connection_attempts} == {AttemptEnd.UNANSWERED}  # type: ignore[attr-defined]
    assert result.notes == (  # type: ignore[attr-defined]
        "more than 1000 connections were open at once: the reader let go of 19000 idle ones early "
        "(a TLS one's handshake shows what was seen until then)",
        "19950 more connection attempts without data are not listed (the first 50 are)",
    )


# VmHWM, not ru_maxrss: the latter keeps the forking parent's (pytest's) peak across exec.
_CHILD = """
import sys
from pathlib import Path
from collector.tls.capture import read_handshakes
result = read_handshakes(Path(sys.argv[1]))
status = Path("/proc/self/status").read_text().splitlines()
peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
print(len(result.connection_attempts), peak)
"""


def test_200k_connections_at_the_default_limits_stay_small(tmp_path: Path) -> None:
    # Given 200,000 one-packet connections (the unbounded reader held ~470 MB for these)
    path = _syn_flood(tmp_path / "flood.pcap", 200_000)
    # When a fresh process reads them with the default limits
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[2], env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )
    attempts, peak_kb = map(int, done.stdout.split())
    # Then its peak resident memory stays far below that
    assert attempts == 1_000 and peak_kb < 120_000


def test_idle_tls_connections_let_go_keep_their_handshake(tmp_path: Path) -> None:
    # Given three real handshakes whose packets interleave, and room to follow only two connections at once
    segs = rewrite.segments(capture_path(HEALTHY))
    copies = [_relabel(segs, 50000 + n) for n in range(3)]
    interleaved = [s for trio in zip(*copies, strict=True) for s in trio]
    result = _read(tmp_path, interleaved, Limits(connections=2))
    # Then every handshake is still reported, one of them with a note that the reader let it go early
    assert len(result.handshakes) == 3
    let_go = [h for h in result.handshakes if any("the reader stopped following" in n for n in h.notes)]
    assert let_go
    assert any("connections were open at once" in note for note in result.notes)


def _relabel(segs: list[rewrite.Seg], port: int) -> list[rewrite.Seg]:
    client = segs[0].sport
    out = []
    for s in segs:
        if s.sport == client:
            out.append(rewrite.Seg(s.src, s.dst, port, s.dport, s.seq, s.ack, s.flags, s.payload))
        else:
            out.append(rewrite.Seg(s.src, s.dst, s.sport, port, s.seq, s.ack, s.flags, s.payload))
    return out

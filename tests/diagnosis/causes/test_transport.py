"""The transport causes on real captures: backend-not-tls, connection-refused (and its unanswered variant),
no-tls-handshake's connected-without-ClientHello variant, and the precedence rules that keep a stray attempt
to another port from becoming the cause.

Captures: tests/fixtures/captures/failures/ (tests/fixtures/failure_captures.py) and
tests/fixtures/captures/transport/ (tests/fixtures/transport_captures.py), all real JSSE / OpenSSL / nginx /
kernel behaviour recorded by tcpdump.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from collector import layout
from collector.diagnosis.analyze import analyze_paths
from collector.diagnosis.causes import backend_not_tls, connection_refused, no_tls_handshake
from collector.diagnosis.causes.registry import spec_for
from collector.diagnosis.diagnose import diagnose
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.verdict import Cause, Diagnosis
from collector.tls.capture import read_handshakes
from collector.tls.handshake import AttemptEnd, ConnectionAttempt, Handshake, NonTlsReply, Outcome
from tests.diagnosis.builders import BACKEND, MP, empty_cert_failed, handshake
from tests.diagnosis.conftest import CAPTURES, BundleMaker, resolution

FAILURES = CAPTURES / "failures"
TRANSPORT = CAPTURES / "transport"
NOT_TLS = FAILURES / "backend-not-tls-java-nginx.pcap"
REFUSED = FAILURES / "connection-refused-java.pcap"
UNANSWERED = TRANSPORT / "unanswered-java.pcap"
CLOSED = TRANSPORT / "closed-without-data-java.pcap"
ELSEWHERE = TRANSPORT / "healthy-and-refused-elsewhere-java-openssl-tls12.pcap"
AFTER_HEALTHY = TRANSPORT / "refused-after-healthy-java-openssl-tls12.pcap"
MIXED = FAILURES / "mixed-java-openssl-tls13.pcap"


def _servers(capture: Path) -> tuple[str, str]:
    """(the server the capture's TLS handshakes went to, the server of its first connection attempt); the
    lab picked free ports, so the tests read them rather than repeat them."""
    result = read_handshakes(capture)
    tls = result.handshakes[0].server if result.handshakes else ""
    attempt = result.connection_attempts[0].server if result.connection_attempts else ""
    return tls, attempt


def _resolution_naming(endpoint: str, target_server: str = "ts1") -> dict:
    """A saved resolution whose one target server is `endpoint` (an IP literal: no lookup needed)."""
    host, _, port = endpoint.rpartition(":")
    data = resolution()
    data["targets"] = [
        {
            "name": "default",
            "url": None,
            "host": host,
            "port": int(port),
            "target_server": target_server,
            "ssl_enabled": True,
            "client_auth_enabled": False,
        }
    ]
    return data


def _analyzed(tmp_path: Path, captures: list[Path], data: dict | None = None) -> Diagnosis:
    files = list(captures)
    if data is not None:
        files.append(tmp_path / "resolution.json")
        files[-1].write_text(json.dumps(data))
    return analyze_paths(files).diagnosis


@dataclass(frozen=True)
class Case:
    """Real captures (and a resolution naming the handshakes' server or the attempt's), and what to expect.

    Attributes:
        target: ``tls`` (the server the handshakes went to), ``attempt`` (the attempt's server), another
            ``ip:port``, or "" (no resolution).
        said: phrases the summary and resolution contain. evidence: phrases some evidence line contains.
        unsaid: phrases neither the summary nor the resolution may contain.
    """

    captures: tuple[Path, ...]
    cause: Cause
    target: str = ""
    said: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    unsaid: tuple[str, ...] = field(default=())


CASES = {
    "plaintext HTTP port answers the ClientHello": Case(
        (NOT_TLS,),
        Cause.BACKEND_NOT_TLS,
        said=(
            '"HTTP/1.1 400 Bad Request" from nginx/1.22.1',
            "plaintext HTTP",
            "TargetServer's port",
            "<Enabled>false</Enabled>",
            "TLS-terminating proxy",
        ),
        evidence=(
            "frame 4 (backend-not-tls-java-nginx.pcap): ClientHello from",
            'frame 6: the backend answered "HTTP/1.1 400 Bad Request\\r\\nServer: nginx/1.22.1',
        ),
    ),
    "plaintext port, its target known": Case(
        (NOT_TLS,),
        Cause.BACKEND_NOT_TLS,
        target="tls",
        said=("Point TargetServer ts1 (127.0.0.1:",),
        evidence=(
            "resolution.json: TargetServer ts1 (127.0.0.1:",
            "is this backend; its SSLInfo enables TLS",
        ),
    ),
    "SYN answered by RST": Case(
        (REFUSED,),
        Cause.CONNECTION_REFUSED,
        said=(
            "answered by RST (1 attempt(s))",
            "Start the backend service on 127.0.0.1:",
            "TargetServer's host",
        ),
        evidence=(
            "frame 1 (connection-refused-java.pcap): SYN from 127.0.0.1:",
            "answered by RST at frame 2",
            "no resolution (edge/resolution.json) in the input",
        ),
    ),
    "refused, its target server known": Case(
        (REFUSED,),
        Cause.CONNECTION_REFUSED,
        target="attempt",
        said=("correct TargetServer ts1 (127.0.0.1:",),
        evidence=("resolution.json: TargetServer ts1",),
    ),
    "refused, the target is another port": Case(
        (REFUSED,),
        Cause.NO_TLS_HANDSHAKE,
        target="127.0.0.1:1",
        evidence=("connection attempt(s) refused", "not a target of this proxy", "noted, not judged"),
    ),
    "SYNs dropped on the way: unanswered, not refused": Case(
        (UNANSWERED,),
        Cause.CONNECTION_REFUSED,
        said=("got no answer at all", "this is not a refused connection", "firewall, security group"),
        evidence=("got no answer (no SYN-ACK, no RST); it was sent again",),
        unsaid=("answered by RST", "Start the backend service"),
    ),
    "connected, no ClientHello (JSSE allows only TLSv1.1)": Case(
        (CLOSED,),
        Cause.NO_TLS_HANDSHAKE,
        said=("sent no ClientHello", "No appropriate protocol", "<Protocols>"),
        evidence=(
            "TCP connected, no ClientHello; the backend answered the silence with fatal alert"
            " decode_error (50)",
        ),
    ),
    "healthy calls and a refused one elsewhere, no resolution": Case(
        (ELSEWHERE,), Cause.HANDSHAKE_OK, evidence=("no TLS handshake went there, so noted, not judged",)
    ),
    "healthy calls and a refused one elsewhere, target known": Case(
        (ELSEWHERE,),
        Cause.HANDSHAKE_OK,
        target="tls",
        evidence=("not a target of this proxy (TargetServer ts1", "2 established"),
    ),
    "healthy calls, and the refused one's port is the target": Case(
        (ELSEWHERE,), Cause.CONNECTION_REFUSED, target="attempt", said=("answered by RST (1 attempt(s))",)
    ),
    "refused after a healthy call to the same backend: the failure wins": Case(
        (AFTER_HEALTHY,),
        Cause.CONNECTION_REFUSED,
        evidence=("1 established (TLS handshakes to the backend in the same input)",),
    ),
    "a plaintext reply beats a refused attempt elsewhere": Case(
        (NOT_TLS, REFUSED), Cause.BACKEND_NOT_TLS, evidence=("no TLS handshake went there",)
    ),
    "an empty client certificate beats a refused attempt": Case(
        (CAPTURES / "ca-mismatch-java-tls12.pcap", REFUSED), Cause.CLIENT_CERTIFICATE_NOT_SENT
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_transport_causes_on_real_captures(case: Case, tmp_path: Path) -> None:
    # Given real captures, and maybe a resolution whose target is the TLS server or the attempt's server
    tls, attempt = _servers(case.captures[0])
    named = {"tls": tls, "attempt": attempt}.get(case.target, case.target)
    data = _resolution_naming(named) if case.target else None
    # When analyzed like `collect analyze`
    diagnosis = _analyzed(tmp_path, list(case.captures), data)
    # Then the cause, its words, and the evidence lines citing frames and documents are the expected ones
    assert diagnosis.cause is case.cause, diagnosis.evidence
    texts = diagnosis.summary + " " + diagnosis.resolution
    for phrase in case.said:
        assert phrase in texts, (phrase, texts)
    for phrase in case.unsaid:
        assert phrase not in texts, (phrase, texts)
    for phrase in case.evidence:
        assert any(phrase in line for line in diagnosis.evidence), (phrase, diagnosis.evidence)


def test_the_mixed_capture_is_named_by_its_failing_handshake_not_the_refused_attempt(tmp_path: Path) -> None:
    # Given healthy calls, an untrusted-chain call and a refused attempt to another port (TLS 1.3 with keys)
    diagnosis = _analyzed(tmp_path, [MIXED.with_suffix(".keys"), MIXED])
    # Then the failing handshake names the cause: neither the stray attempt nor the successes do
    assert diagnosis.cause not in (Cause.CONNECTION_REFUSED, Cause.HANDSHAKE_OK, Cause.NO_TLS_HANDSHAKE)
    assert diagnosis.backend is not None and diagnosis.backend.startswith(_servers(MIXED)[0])


# -- the MP's log: corroboration, and the only witness when no capture shows the connection ---------------

LOGS = {
    # name: (captures in the bundle, the MP's log line, cause, words in the summary, evidence phrase)
    "refused, and JSSE says so": (
        [REFUSED],
        "java.net.ConnectException: Connection refused",
        Cause.CONNECTION_REFUSED,
        "answered by RST",
        "MP system.log (hosts/mp1/system.log.excerpt): ",
    ),
    "unanswered, and JSSE's connect timed out": (
        [UNANSWERED],
        "java.net.SocketTimeoutException: Connect timed out",
        Cause.CONNECTION_REFUSED,
        "got no answer at all",
        "MP system.log (hosts/mp1/system.log.excerpt): ",
    ),
    "no capture, JSSE says refused": (
        [],
        "java.net.ConnectException: Connection refused",
        Cause.CONNECTION_REFUSED,
        "log says its connection to backend.lab:8443 was refused",
        "the message processor's log is the only",
    ),
    "no capture, JSSE says the connect timed out: unanswered, not refused": (
        [],
        "java.net.SocketTimeoutException: Connect timed out",
        Cause.CONNECTION_REFUSED,
        "timed out (java.net.SocketTimeoutException: Connect timed out): nothing answered its SYN, which is"
        " not a refused connection",
        "Connect timed out",
    ),
    "no capture, JSSE says not TLS": (
        [],
        "javax.net.ssl.SSLException: Unsupported or unrecognized SSL message",
        Cause.BACKEND_NOT_TLS,
        "did not answer in TLS",
        "Unsupported or unrecognized SSL message",
    ),
    "plaintext reply, and JSSE says so": (
        [NOT_TLS],
        "javax.net.ssl.SSLException: Unsupported or unrecognized SSL message",
        Cause.BACKEND_NOT_TLS,
        "with HTTP instead of TLS",
        "MP system.log (hosts/mp1/system.log.excerpt): ",
    ),
    "no capture, no sign: nothing to judge": (
        [],
        "handshake failed, message: Read timed out",
        Cause.NO_TLS_HANDSHAKE,
        "no TLS handshake",
        "no TLS",
    ),
}


@pytest.mark.parametrize("captures,line,cause,words,phrase", LOGS.values(), ids=LOGS.keys())
def test_the_mps_log_corroborates_or_names_the_cause(
    make_bundle: BundleMaker, captures: list[Path], line: str, cause: Cause, words: str, phrase: str
) -> None:
    # Given a bundle with the resolution (the captured server, else backend.lab:8443 of unknown address), the
    # MP's log line for the message id, and maybe a capture
    tls, attempt = _servers(captures[0]) if captures else ("", "")
    data = _resolution_naming(tls or attempt) if captures else resolution()
    root = make_bundle(captures={"mp1": captures[0]} if captures else {}, resolution=data)
    excerpt = root / layout.host_file("mp1", layout.HOST_LOG_EXCERPT)
    excerpt.parent.mkdir(parents=True, exist_ok=True)
    excerpt.write_text(f"2026-12-02 05:28:57,813 org:org env:env messageid:m1 ERROR HTTP.CLIENT - {line}\n")
    # When analyzed
    diagnosis = analyze_paths([root]).diagnosis
    # Then the cause is named (by the capture, else by the log), the log line quoted with where it was read
    assert diagnosis.cause is cause, diagnosis.evidence
    assert words in diagnosis.summary
    assert any(phrase in e for e in diagnosis.evidence), diagnosis.evidence


def test_the_mps_words_are_quoted_only_when_they_tell_the_same_ending(make_bundle: BundleMaker) -> None:
    # Given a refused attempt in the capture, and an MP log line saying a connect timed out (another ending)
    root = make_bundle(captures={"mp1": REFUSED})
    excerpt = root / layout.host_file("mp1", layout.HOST_LOG_EXCERPT)
    excerpt.parent.mkdir(parents=True, exist_ok=True)
    excerpt.write_text("messageid:m1 ERROR java.net.SocketTimeoutException: Connect timed out\n")
    # When analyzed
    diagnosis = analyze_paths([root]).diagnosis
    # Then the capture names the refusal and the log line is not quoted as if it agreed
    assert diagnosis.cause is Cause.CONNECTION_REFUSED and "answered by RST" in diagnosis.summary
    assert not any("system.log" in line for line in diagnosis.evidence), diagnosis.evidence


def test_an_attempt_captured_on_both_ends_counts_once(make_bundle: BundleMaker) -> None:
    # Given the same refused attempt in the MP's capture and in the backend's
    root = make_bundle(captures={"mp1": REFUSED, "backend1": REFUSED})
    # When analyzed
    analysis = analyze_paths([root])
    # Then it is one attempt, a note says where else it was seen, and the verdict counts it once
    assert len(analysis.evidence.connection_attempts) == 1
    assert (
        "hosts/mp1/capture.pcap: 1 connection attempt(s) also captured in hosts/backend1/capture.pcap,"
        " counted once" in analysis.evidence.notes
    )
    assert "(1 attempt(s))" in analysis.diagnosis.summary


# -- precedence on built evidence: the registry order and the rules' edges --------------------------------

PLAIN = NonTlsReply("server", "HTTP/1.1 400 Bad Request\\r\\nServer: nginx\\r\\n", frame=6)
SSH = NonTlsReply("server", "SSH-2.0-OpenSSH_9.2p1 Debian-2\\r\\n", frame=6)
OTHER_PORT = "127.0.0.21:9443"


def _attempt(
    end: AttemptEnd = AttemptEnd.REFUSED, frames: tuple[int, int] = (1, 2), server: str = BACKEND
) -> ConnectionAttempt:
    return ConnectionAttempt(MP, server, end, frames=frames, source="lab.pcap")


def _replied(reply: NonTlsReply = PLAIN, version: str | None = None) -> Handshake:
    return replace(handshake(outcome=Outcome.FAILED), version=version, non_tls_reply=reply)


def _ok() -> Handshake:
    return handshake(outcome=Outcome.ESTABLISHED, http_status=200)


PRECEDENCE = {
    # name: (handshakes, attempts, cause, variant whose summary it must be ("" = the cause's own))
    "not TLS beats a success": ([_ok(), _replied()], [], Cause.BACKEND_NOT_TLS, ""),
    "not TLS beats a refused attempt to the same backend": (
        [_replied()],
        [_attempt()],
        Cause.BACKEND_NOT_TLS,
        "",
    ),
    "a non-HTTP reply is its own variant": (
        [_replied(SSH)],
        [],
        Cause.BACKEND_NOT_TLS,
        backend_not_tls.OTHER,
    ),
    "non-TLS bytes after a ServerHello are not this cause": (
        [_replied(version="TLSv1.2")],
        [],
        Cause.HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH,
        "",
    ),
    "the client's non-TLS bytes are not the backend's": (
        [_replied(NonTlsReply("client", "GET / HTTP/1.1", 5))],
        [],
        Cause.HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH,
        "",
    ),
    "refused beats a success to the same backend": ([_ok()], [_attempt()], Cause.CONNECTION_REFUSED, ""),
    "client-auth causes come first": (
        [empty_cert_failed("CN=Partner CA")],
        [_attempt()],
        Cause.CLIENT_CERTIFICATE_NOT_SENT,
        "",
    ),
    "a refused attempt to another port is no failure": (
        [_ok()],
        [_attempt(server=OTHER_PORT)],
        Cause.HANDSHAKE_OK,
        "",
    ),
    "a retransmitted unanswered SYN beats a success": (
        [_ok()],
        [_attempt(AttemptEnd.UNANSWERED, (1, 3))],
        Cause.CONNECTION_REFUSED,
        connection_refused.UNANSWERED,
    ),
    "one SYN at the capture's end does not outweigh a success": (
        [_ok()],
        [_attempt(AttemptEnd.UNANSWERED, (30, 30))],
        Cause.HANDSHAKE_OK,
        "",
    ),
    "one unanswered SYN and nothing else is still told": (
        [],
        [_attempt(AttemptEnd.UNANSWERED, (1, 1))],
        Cause.CONNECTION_REFUSED,
        connection_refused.UNANSWERED,
    ),
    "refused beats unanswered": (
        [],
        [_attempt(AttemptEnd.UNANSWERED, (1, 3)), _attempt(frames=(4, 5))],
        Cause.CONNECTION_REFUSED,
        "",
    ),
    "closed without data: connected, no ClientHello": (
        [],
        [_attempt(AttemptEnd.CLOSED_WITHOUT_DATA, (1, 6))],
        Cause.NO_TLS_HANDSHAKE,
        no_tls_handshake.CONNECTED,
    ),
    "nothing at all: no-tls-handshake's own texts": ([], [], Cause.NO_TLS_HANDSHAKE, ""),
}


@pytest.mark.parametrize("handshakes,attempts,cause,variant", PRECEDENCE.values(), ids=PRECEDENCE.keys())
def test_precedence(
    handshakes: list[Handshake], attempts: list[ConnectionAttempt], cause: Cause, variant: str
) -> None:
    # Given handshakes and connection attempts as a capture shows them (no resolution: the TLS servers decide)
    evidence = Evidence(
        handshakes=tuple(handshakes), connection_attempts=tuple(attempts), sources=("lab.pcap",)
    )
    # When diagnosed
    diagnosis = diagnose(evidence)
    # Then the expected cause answers, with the texts of the expected variant
    assert diagnosis.cause is cause, diagnosis.evidence
    spec = spec_for(cause)
    expected = spec.texts_for(variant).summary.split("{", 1)[0]
    assert diagnosis.summary.startswith(expected), (diagnosis.summary, expected)


@pytest.mark.parametrize(
    "first_bytes,quoted",
    [
        (
            "HTTP/1.1 400 Bad Request\\r\\nServer: nginx/1.22.1\\r\\nDate: Wed, 02 De",
            '"HTTP/1.1 400 Bad Request" from nginx/1.22.1',
        ),
        (
            "HTTP/1.1 400 Bad Request\\r\\nServer: ngi",
            '"HTTP/1.1 400 Bad Request"',
        ),  # a cut header is not quoted
        ("A" * 46 + "\\x00\\x01", '"' + "A" * 46 + '…"'),  # an escape is never cut in half
    ],
)
def test_the_reply_is_quoted_short_and_whole(first_bytes: str, quoted: str) -> None:
    diagnosis = diagnose(Evidence(handshakes=(_replied(NonTlsReply("server", first_bytes, 6)),)))
    assert f"({quoted})" in diagnosis.summary

"""collector/diagnosis/citations.py on the real failure captures: for each cause, the frames the annotated
capture comments and what it says there; tshark confirms each commented frame carries the message named."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from collector.diagnosis.analyze import analyze_paths
from collector.diagnosis.causes.registry import REGISTRY
from collector.diagnosis.citations import MAX_HANDSHAKES, plan_annotation
from collector.diagnosis.evidence import Evidence
from collector.tls.handshake import Alert, Handshake, Outcome

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"

# fixture, cause, the comments expected (each a substring of one comment), the message tshark must see there
CASES = [
    ("ca-mismatch-java-tls12.pcap", "client-certificate-not-sent", [
        ("CertificateRequest: acceptable CA names CN=Lab CA A", "13"),
        ("empty client Certificate", "11"),
        ("fatal alert bad_certificate (42) from the backend", "alert:42")]),
    ("client-certificate-rejected-openssl-tls12.pcap", "client-certificate-rejected", [
        ("client Certificate chain of 1: leaf CN=client-wrongca", "11"),
        ("fatal alert unknown_ca (48) from the backend", "alert:48")]),
    ("failures/server-certificate-expired-java-openssl-tls12.pcap", "server-certificate-expired", [
        ("backend Certificate chain of 2: leaf CN=backend.lab", "11"),
        ("verdict: expired", "11"),
        ("fatal alert certificate_expired (45) from the message processor", "alert:45")]),
    ("failures/server-hostname-mismatch-java-openssl-tls12.pcap", "server-hostname-mismatch", [
        ("ClientHello with SNI other.lab", "1"),
        ("verdict: name-mismatch (the message processor checks the name other.lab)", "11")]),
    ("failures/sni-required-java-nginx-tls12.pcap", "sni-required", [
        ("ClientHello without SNI", "1"),
        ("fatal alert unrecognized_name (112) from the backend", "alert:112")]),
    ("failures/protocol-mismatch-java12-openssl13.pcap", "protocol-mismatch", [
        ("ClientHello without SNI (no server_name extension): offers TLSv1.2 and", "1"),
        ("fatal alert protocol_version (70) from the backend", "alert:70")]),
    ("failures/backend-not-tls-java-nginx.pcap", "backend-not-tls", [
        ("not TLS: the backend answered with HTTP/1.1 400 Bad Request", "")]),
    ("failures/connection-refused-java.pcap", "connection-refused", [
        ("SYN from 127.0.0.1:39388 to 127.0.0.1:34329: refused", ""),
        ("RST from 127.0.0.1:34329: nothing accepts connections there", "")]),
    ("healthy-java-tls12.pcap", "handshake-ok", [
        ("ServerHello: the backend chose TLSv1.2, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "2")]),
]


def _messages(path: Path) -> dict[int, set[str]]:
    """Frame -> handshake types and ``alert:CODE``s tshark sees in it."""
    done = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-E", "occurrence=a", "-E",
                           "aggregator=,", "-e", "frame.number", "-e", "tls.handshake.type",
                           "-e", "tls.alert_message.desc"], capture_output=True, text=True, timeout=60,
                          check=True)
    found: dict[int, set[str]] = {}
    for line in done.stdout.splitlines():
        number, types, alerts = line.split("\t")
        kinds = {t for t in types.split(",") if t}
        found[int(number)] = kinds | {f"alert:{a}" for a in alerts.split(",") if a}
    return found


@pytest.mark.parametrize("fixture, cause, expected", CASES, ids=[c[1] for c in CASES])
def test_each_cause_comments_the_frames_it_rests_on(fixture: str, cause: str,
                                                    expected: list[tuple[str, str]]) -> None:
    # Given a real capture of the failure, When the annotation is planned from its diagnosis
    path = CAPTURES / fixture
    analysis = analyze_paths([path])
    assert analysis.diagnosis.cause.value == cause
    plan = plan_annotation(analysis.diagnosis, analysis.evidence)
    # Then the backend is the one the capture shows, and each expected comment sits on a frame that
    # carries that message (as tshark reads the file)
    assert plan.backends == (analysis.evidence.handshakes[0].server if analysis.evidence.handshakes
                             else analysis.evidence.connection_attempts[0].server,)
    messages = _messages(path)
    for text, message in expected:
        frames = [frame for (source, frame), comments in plan.comments.items()
                  if source == path.name and any(text in c for c in comments)]
        assert len(frames) == 1, (text, plan.comments)
        if message:
            assert message in messages[frames[0]], (text, frames[0], messages[frames[0]])


def test_every_cause_names_what_it_rests_on() -> None:
    # Given the registry, Then every cause cites something on the wire (a capture of it has comments)
    assert all(spec.cites for spec in REGISTRY)


def test_only_the_diagnosed_backends_handshakes_are_commented_and_at_most_the_limit() -> None:
    # Given many failed handshakes to the diagnosed backend and one to another backend
    alert = Alert("server", "fatal", "bad_certificate", 42, frame=3)
    failing = [Handshake(f"10.0.0.1:{40000 + n}", "10.0.9.20:8443", alerts=(alert,), outcome=Outcome.FAILED,
                         source=f"mp{n}.pcap") for n in range(MAX_HANDSHAKES + 5)]
    other = Handshake("10.0.0.1:50000", "10.0.9.30:443", alerts=(alert,), outcome=Outcome.FAILED,
                      source="other.pcap")
    evidence = Evidence(handshakes=(*failing, other))
    diagnosis = analyze_paths([CAPTURES / "failures/sni-required-java-nginx-tls12.pcap"]).diagnosis
    diagnosis = type(diagnosis)(diagnosis.cause, "", (), "", backend="10.0.9.20:8443")
    # When planned
    plan = plan_annotation(diagnosis, evidence)
    # Then the diagnosed backend comes first, its first MAX_HANDSHAKES handshakes are commented, the other
    # backend gets a file without comments
    assert plan.backends == ("10.0.9.20:8443", "10.0.9.30:443")
    assert len(plan.comments) == MAX_HANDSHAKES
    assert ("other.pcap", 3) not in plan.comments

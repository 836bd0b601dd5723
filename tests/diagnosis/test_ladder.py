"""The text view: a Wireshark-like ladder per connection, counts, then the diagnosis; no colours."""

from __future__ import annotations

from dataclasses import replace

from collector.diagnosis.analyze import analyze_evidence
from collector.diagnosis.ladder import LADDERS_PER_BACKEND, render_analysis, render_ladder
from collector.tls.handshake import CertificateSummary, Outcome
from tests.diagnosis.builders import (
    CA_A,
    JAVA_CA_B,
    alert,
    alias_entry,
    empty_cert_failed,
    evidence,
    handshake,
    opaque_tls13,
    request,
)


def test_ladder_shows_the_playbooks_reading_with_frame_numbers() -> None:
    # Given the playbook's failing handshake
    hs = empty_cert_failed(CA_A)
    # When drawn
    lines = render_ladder(hs)
    # Then each step carries its frame and direction
    assert lines[1] == "  [   4] MP 127.0.0.11:53122 → backend 127.0.0.21:8443  ClientHello (SNI backend.lab)"
    assert lines[2] == ("  [   7] ← ServerHello (TLSv1.2), CertificateRequest (acceptable CA names: "
                        "CN=Lab CA A,OU=caA,O=Lab Org,C=US)")
    assert lines[3] == "  [   9] → Certificate (length 0: no client certificate)"
    assert lines[4] == "  [  10] ← Alert fatal bad_certificate (42)"
    assert lines[5] == "  outcome: failed"


def test_ladder_of_a_sent_certificate_and_server_chain() -> None:
    # Given a handshake with a server chain and a client certificate that was rejected
    leaf = CertificateSummary("CN=client,O=Lab Org,C=US", CA_A)
    server = CertificateSummary("CN=backend.lab,O=Lab Org,C=US", CA_A)
    hs = handshake(cr=request(CA_A), sent=True, client_chain=(leaf,), alerts=(alert(48),))
    hs = replace(hs, server_chain=(server,))
    text = "\n".join(render_ladder(hs))
    # Then both certificates and ServerHelloDone appear
    assert "Certificate (CN=backend.lab,O=Lab Org,C=US, issued by CN=Lab CA A" in text
    assert "ServerHelloDone" in text
    assert "→ Certificate (CN=client,O=Lab Org,C=US, issued by CN=Lab CA A,OU=caA,O=Lab Org,C=US)" in text


def test_ladder_of_tls13_without_keys_says_encrypted() -> None:
    text = "\n".join(render_ladder(opaque_tls13()))
    assert "5 encrypted record(s)" in text and "opaque (TLS 1.3 without a key log" in text


def test_render_analysis_counts_and_diagnoses_without_drawing_every_connection() -> None:
    # Given many identical failures and one success
    many = [empty_cert_failed(CA_A) for _ in range(LADDERS_PER_BACKEND + 2)]
    ok = handshake(cr=request(CA_A), sent=True, outcome=Outcome.ESTABLISHED, http_status=200)
    text = render_analysis(analyze_evidence(evidence(*many, ok, keystores=(alias_entry(JAVA_CA_B),))))
    # Then only some ladders are drawn, the rest counted, and the diagnosis follows
    assert text.count("ClientHello") == LADDERS_PER_BACKEND
    assert "(3 more handshake(s) to 127.0.0.21:8443 (backend.lab) not drawn)" in text
    assert "127.0.0.21:8443 (backend.lab): 5 failed, 1 established" in text
    assert "Cause: ca-mismatch  (backend 127.0.0.21:8443 (backend.lab))" in text
    assert text.index("Evidence:") < text.index("Resolution:")
    assert "\x1b[" not in text


def test_render_analysis_of_nothing() -> None:
    text = render_analysis(analyze_evidence(evidence()))
    assert text.startswith("Cause: no-tls-handshake")

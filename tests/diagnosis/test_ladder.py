"""The text view: a Wireshark-like ladder per connection, counts, then the diagnosis; no colours."""

from __future__ import annotations

from dataclasses import replace

import pytest

from collector.diagnosis.analyze import analyze_evidence
from collector.diagnosis.ladder import (
    LADDERS_PER_BACKEND,
    Sender,
    Step,
    build_ladder,
    ladders_per_backend,
    render_analysis,
    render_ladder,
)
from collector.tls.handshake import CertificateSummary, Handshake, Outcome
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


def test_ladders_per_backend_draw_failures_first_and_count_the_rest() -> None:
    # Given, to one backend, two completed handshakes captured before two failed ones; one to another backend
    ok = handshake(cr=request(CA_A), sent=True, outcome=Outcome.ESTABLISHED, http_status=200)
    failed = empty_cert_failed(CA_A)
    other = replace(ok, server="127.0.0.22:443", sni="other.lab")
    # When the model picks at most 3 ladders per backend
    groups = ladders_per_backend([ok, ok, failed, failed, other], limit=3)
    # Then backends keep their first-seen order, failures come first, and the rest is counted
    assert [g.backend for g in groups] == ["127.0.0.21:8443 (backend.lab)", "127.0.0.22:443 (other.lab)"]
    assert [lad.handshake.outcome for lad in groups[0].ladders] == [Outcome.FAILED, Outcome.FAILED,
                                                                      Outcome.ESTABLISHED]
    assert (groups[0].more, groups[1].more) == (1, 0)


MP, BE = Sender.MESSAGE_PROCESSOR, Sender.BACKEND
LADDER_STEPS = {
    "playbook failure": (empty_cert_failed(CA_A), [
        (Step.CLIENT_HELLO, MP, False), (Step.SERVER_HELLO, BE, False),
        (Step.CERTIFICATE_REQUEST, BE, False), (Step.CLIENT_CERTIFICATE, MP, True),
        (Step.ALERT, BE, True)]),
    "nginx answers HTTP 400": (
        handshake(cr=request(CA_A), sent=False, outcome=Outcome.ESTABLISHED, http_status=400), [
        (Step.CLIENT_HELLO, MP, False), (Step.SERVER_HELLO, BE, False),
        (Step.CERTIFICATE_REQUEST, BE, False), (Step.CLIENT_CERTIFICATE, MP, True),
        (Step.HTTP_RESPONSE, BE, False)]),
    "tls 1.3 without keys": (opaque_tls13(), [
        (Step.CLIENT_HELLO, MP, False), (Step.SERVER_HELLO, BE, False),
        (Step.ENCRYPTED_RECORDS, BE, False)]),
    "nothing answered": (handshake(version=None), [
        (Step.CLIENT_HELLO, MP, False), (Step.NO_SERVER_HELLO, BE, False)]),
}


@pytest.mark.parametrize(("hs", "expected"), LADDER_STEPS.values(), ids=LADDER_STEPS.keys())
def test_ladder_model_lists_the_messages_in_order(hs: Handshake,
                                                  expected: list[tuple[Step, Sender, bool]]) -> None:
    # Given a handshake, When its ladder is built, Then the messages, their senders and alarms are in order
    assert [(s.step, s.sender, s.alarm) for s in build_ladder(hs).steps] == expected

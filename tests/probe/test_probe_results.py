"""collector/tls/probe_results.py: alert names, reaction sentences, the results.json round trip, the text
view."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from collector.errors import InputError
from collector.tls.handshake import (
    Alert,
    CertificateRequest,
    CertificateSummary,
    ClientCertificate,
    Handshake,
    Outcome,
    ProbeResult,
)
from collector.tls.probe_results import (
    alert_name,
    describe_reaction,
    make_alert,
    probe_result_to_json,
    probe_results_from_json,
    probe_results_to_json,
    render_probe_result,
)

CA_A = "CN=Lab CA A,OU=caA,O=Lab Org,C=US"
CA_A_DER = bytes.fromhex("3041310b3009060355040613025553")  # any bytes: the round trip must keep them exactly

RESULT = ProbeResult(
    target="backend.lab:8443",
    sni="backend.lab",
    via="mp1",
    handshake=Handshake(
        client="mp1",
        server="backend.lab:8443",
        sni="backend.lab",
        version="TLSv1.3",
        cipher="TLS_AES_256_GCM_SHA384",
        server_chain=(CertificateSummary("CN=backend.lab,O=Lab Org,C=US", CA_A, "2026-11-26T10:24:30+00:00",
                                         "2029-03-01T10:24:30+00:00"),),
        certificate_request=CertificateRequest(ca_names=(CA_A,), ca_names_der=(CA_A_DER,)),
        client_certificate=ClientCertificate(sent=False),
        alerts=(Alert("server", "fatal", "certificate_required", 116),),
        outcome=Outcome.FAILED,
        source="probe",
        notes=("server certificate not verified",),
    ),
    reaction="fatal alert certificate_required (116)",
)


@pytest.mark.parametrize(("code", "name"), [
    (42, "bad_certificate"),
    (40, "handshake_failure"),
    (116, "certificate_required"),
    (48, "unknown_ca"),
    (200, "unknown_200"),
])
def test_alert_name(code: int, name: str) -> None:
    # Given an alert code When named Then it is the RFC name (or alert_<code>)
    assert alert_name(code) == name


@pytest.mark.parametrize(("alerts", "completed", "status", "ended", "expected"), [
    ((make_alert("server", 2, 42),), False, None, "", "fatal alert bad_certificate (42)"),
    ((make_alert("server", 1, 0), make_alert("server", 2, 116)), True, None, "",
     "fatal alert certificate_required (116)"),
    ((make_alert("client", 2, 80),), False, None, "", "the probe sent fatal alert internal_error (80)"),
    ((), True, 400, "", "handshake completed, HTTP 400"),
    ((), True, None, "", "handshake completed"),
    ((make_alert("server", 1, 0),), True, None, "then the server closed the connection",
     "handshake completed, then the server closed the connection"),
    ((), False, None, "the connection was reset", "handshake did not complete: the connection was reset"),
])
def test_describe_reaction(alerts: tuple[Alert, ...], completed: bool, status: int | None, ended: str,
                           expected: str) -> None:
    # Given what the probe saw When described Then the sentence is the documented one
    assert describe_reaction(alerts, completed, status, ended) == expected


def test_probe_results_round_trip_through_json() -> None:
    # Given a result with DER CA names and an HTTP status
    result = replace(RESULT, handshake=replace(RESULT.handshake, http_status=400))

    # When written as results.json text and read back
    data = json.loads(json.dumps(probe_results_to_json([result, RESULT])))
    back = probe_results_from_json(data)

    # Then nothing is lost, the DER included
    assert back == (result, RESULT)
    assert back[0].handshake.certificate_request is not None
    assert back[0].handshake.certificate_request.ca_names_der == (CA_A_DER,)
    assert back[0].handshake.http_status == 400


def test_probe_result_to_json_extends_to_json() -> None:
    # Given a result When serialized Then it is ProbeResult.to_json() plus the DER and the HTTP status
    data = probe_result_to_json(RESULT)
    plain = RESULT.to_json()
    assert {k: v for k, v in data.items() if k != "handshake"} == {
        k: v for k, v in plain.items() if k != "handshake"
    }
    assert data["handshake"]["certificate_request"]["ca_names_der"] == [CA_A_DER.hex()]
    assert data["handshake"]["http_status"] is None


def test_probe_results_from_json_reads_plain_to_json() -> None:
    # Given plain ProbeResult.to_json() output (no DER) When read Then the strings come back, the DER is empty
    back = probe_results_from_json([RESULT.to_json()])
    assert back[0].handshake.certificate_request is not None
    assert back[0].handshake.certificate_request.ca_names == (CA_A,)
    assert back[0].handshake.certificate_request.ca_names_der == ()


@pytest.mark.parametrize(("data", "defect"), [
    ({"target": "x"}, "expected a JSON list of probe results, found dict"),
    ([{"target": "x"}], "probe result #1 is malformed (KeyError"),
    ([{"target": "x", "reaction": "r", "handshake": {"client": "c", "server": "s", "outcome": "nope"}}],
     "probe result #1 is malformed (ValueError"),
    ([probe_result_to_json(RESULT), 7], "probe result #2 is malformed (TypeError"),
])
def test_probe_results_from_json_names_the_defect(data: object, defect: str) -> None:
    # Given a damaged results.json When read Then the error names the file and the defect
    with pytest.raises(InputError) as error:
        probe_results_from_json(data, "bundle/probe/results.json")
    assert str(error.value).startswith(f"bundle/probe/results.json: {defect}")


def _with_request(request: CertificateRequest | None, **changes: object) -> ProbeResult:
    handshake = replace(RESULT.handshake, certificate_request=request, **changes)
    return replace(RESULT, handshake=handshake, via=None)


@pytest.mark.parametrize(("result", "lines"), [
    (RESULT, ["Target:   backend.lab:8443 (SNI backend.lab)", "Via:      mp1 (openssl s_client)",
              "TLS:      TLSv1.3, TLS_AES_256_GCM_SHA384", "Server chain (server certificate not verified):",
              "Acceptable client certificate CA names:", f"  {CA_A}",
              "Reaction to no client certificate: fatal alert certificate_required (116)"]),
    (_with_request(CertificateRequest(ca_names=())),
     ["Via:      this machine (pyOpenSSL)",
      "The server named no acceptable CAs (it asked for a client certificate; any issuer may do)."]),
    (_with_request(None), ["The server did not ask for a client certificate."]),
    (_with_request(CertificateRequest(ca_names=(CA_A,)), client_certificate=ClientCertificate(sent=True),
                   outcome=Outcome.ESTABLISHED, http_status=200),
     ["Reaction to the client certificate: fatal alert certificate_required (116)",
      "The server accepted the client certificate."]),
    (_with_request(CertificateRequest(ca_names=(CA_A,)), client_certificate=ClientCertificate(sent=True)),
     ["The server rejected the client certificate."]),
])
def test_render_probe_result(result: ProbeResult, lines: list[str]) -> None:
    # Given a probe result When rendered Then the readable view carries these lines
    text = render_probe_result(result).splitlines()
    for line in lines:
        assert line in text

"""The must-gather checklist states and the playbook sections each verdict implies."""

from __future__ import annotations

import pytest

from collector import layout
from collector.bundle.checklist import (
    CHECKLISTS,
    SECTION_CA_MISMATCH,
    SECTION_COMMON,
    SECTION_NO_CLIENT_CERTIFICATE,
    ChecklistItem,
    Cloud,
    ItemState,
    Symptom,
    build_checklist,
    build_sections,
)
from collector.diagnosis.causes import Cause
from collector.diagnosis.causes.registry import report_for


def test_private_cloud_checklist_states() -> None:
    # Given what a private cloud run has: two MP logs, a missing trace, no keystore (one-way TLS)
    present = {"error-message": layout.REQUEST_RESPONSE, "proxy-bundle": layout.EDGE_PROXY_BUNDLE,
               "trace": None,
               "mp-log": [layout.host_file("mp1", layout.HOST_LOG), layout.host_file("mp2", layout.HOST_LOG)],
               "capture": layout.host_file("mp1", layout.HOST_CAPTURE), "curl": layout.REQUEST_COMMAND}
    reasons = {"trace": "the debug session failed (403)", "keystore-cert": "the target uses no keystore"}
    # When the checklist is built
    items = build_checklist("private", present, reasons)
    # Then every private item is there in the playbook's order, with its state, paths and why
    assert items == [
        ChecklistItem("error-message", "Complete error message observed", ItemState.COLLECTED,
                      (layout.REQUEST_RESPONSE,)),
        ChecklistItem("proxy-bundle", "API proxy bundle", ItemState.COLLECTED, (layout.EDGE_PROXY_BUNDLE,)),
        ChecklistItem("trace", "Trace file showing the error", ItemState.MISSING, (),
                      "the debug session failed (403)"),
        ChecklistItem("mp-log", CHECKLISTS[Cloud.PRIVATE][3][1], ItemState.COLLECTED,
                      (layout.host_file("mp1", layout.HOST_LOG), layout.host_file("mp2", layout.HOST_LOG))),
        ChecklistItem("capture", CHECKLISTS[Cloud.PRIVATE][4][1], ItemState.COLLECTED,
                      (layout.host_file("mp1", layout.HOST_CAPTURE),)),
        ChecklistItem("keystore-cert", "Output of the Get cert for keystore API", ItemState.NOT_APPLICABLE,
                      (), "the target uses no keystore"),
    ]


def test_public_cloud_checklist_and_default_reason() -> None:
    items = build_checklist("public",
                            {"org": layout.MANIFEST, "env": layout.MANIFEST, "proxy": layout.MANIFEST,
                             "curl": None, "trace": ()},
                            {})
    states = {i.key: (i.state, i.reason) for i in items}
    assert [i.key for i in items] == ["org", "env", "proxy", "curl", "trace", "backend-capture"]
    assert states["curl"] == (ItemState.MISSING, "not collected")
    assert states["trace"] == (ItemState.MISSING, "not collected")
    assert states["backend-capture"] == (ItemState.NOT_APPLICABLE, "")


def test_unknown_cloud_is_refused() -> None:
    with pytest.raises(ValueError):
        build_checklist("hybrid", {}, {})


# (cause, No Client Certificate ran, CA Mismatch ran, a word of each finding)
SECTIONS = [
    (Cause.MISSING_CLIENT_CERTIFICATE, True, False, "this is the cause", "not reached"),
    (Cause.CA_MISMATCH, True, True, "ruled out", "this is the cause"),
    (Cause.CLIENT_CERTIFICATE_NOT_SENT, False, False, "undecided", "Get cert for keystore"),
    (Cause.CLIENT_CERTIFICATE_REJECTED, True, True, "ruled out", "ruled out"),
    (Cause.SERVER_CERTIFICATE_UNTRUSTED, False, False, "not applicable", "Incomplete or invalid certificate"),
    (Cause.SERVER_CERTIFICATE_EXPIRED, False, False, "not applicable", "Incorrect or expired certificate"),
    (Cause.SERVER_HOSTNAME_MISMATCH, False, False, "not applicable", "Incorrect Certificate (host name)"),
    (Cause.PROTOCOL_MISMATCH, False, False, "TLS version", "TLS version"),
    (Cause.CIPHER_MISMATCH, False, False, "refused the ClientHello", "refused the ClientHello"),
    (Cause.SNI_REQUIRED, False, False, "server name", "server name"),
    (Cause.BACKEND_NOT_TLS, False, False, "did not answer in TLS", "did not answer in TLS"),
    (Cause.CONNECTION_REFUSED, False, False, "TCP connection failed", "TCP connection failed"),
    (Cause.HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH, False, False, "not applicable", "not applicable"),
    (Cause.ENCRYPTED_HANDSHAKE, False, False, "TLS 1.3", "collect probe"),
    (Cause.HANDSHAKE_OK, False, False, "completed", "completed"),
    (Cause.NO_TLS_HANDSHAKE, False, False, "no handshake", "no handshake"),
]


def test_every_cause_has_sections() -> None:
    assert {row[0] for row in SECTIONS} == set(Cause)


@pytest.mark.parametrize(("cause", "no_cert_ran", "mismatch_ran", "no_cert_word", "mismatch_word"), SECTIONS,
                         ids=[row[0].value for row in SECTIONS])
def test_sections_follow_the_verdict(cause: Cause, no_cert_ran: bool, mismatch_ran: bool, no_cert_word: str,
                                     mismatch_word: str) -> None:
    # Given a verdict and the symptom of a reproduced failure
    symptom = Symptom(http_status=503, error_cause="Received fatal alert: bad_certificate", message_id="m1",
                      mp_log_line="... handshake failed")
    # When the sections are built
    common, no_cert, mismatch = build_sections(report_for(cause), symptom)
    # Then the common steps list what was seen, and each cause section says whether it ran and what it found
    assert (common.section, no_cert.section, mismatch.section) == (
        SECTION_COMMON, SECTION_NO_CLIENT_CERTIFICATE, SECTION_CA_MISMATCH)
    assert common.ran and "HTTP 503" in common.finding and "X-Apigee.Message-ID m1" in common.finding
    assert (no_cert.ran, mismatch.ran) == (no_cert_ran, mismatch_ran)
    assert no_cert_word in no_cert.finding and mismatch_word in mismatch.finding


def test_sections_without_a_diagnosis() -> None:
    common, no_cert, mismatch = build_sections(None, Symptom())
    assert "could not be analyzed" in common.finding
    assert not common.ran and not no_cert.ran and not mismatch.ran
    assert build_sections(None, Symptom(http_status=503))[0].ran

"""read_jsse_signs on the texts real JSSE clients logged (shared/reference/tls-failure-family.md)."""

from __future__ import annotations

import pytest

from collector.diagnosis.jsse_messages import read_jsse_signs, signs_for

MP_LINE = ("2026-11-27 10:28:58,101 org:acme env:prod api:payments rev:3 messageid:rrt-1-2 NIOThread@0 ERROR "
           "HTTP.CLIENT - HTTPClient$Context.handshakeFailed() : SSLClientChannel[C:127.0.0.21:8443 Remote "
           "host:127.0.0.21:8443]@1 useCount=1 bytesRead=0 bytesWritten=0 age=12ms lastIO=12ms "
           "handshake failed, message: {}")

CASES = [
    ("untrusted", "PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: "
     "unable to find valid certification path to requested target", "server-certificate-untrusted"),
    ("expired", "PKIX path validation failed: java.security.cert.CertPathValidatorException: validity check "
     "failed", "server-certificate-expired"),
    ("dns name", "No subject alternative DNS name matching backend.other found.", "server-hostname-mismatch"),
    ("ip name", "No subject alternative names matching IP address 127.0.0.21 found",
     "server-hostname-mismatch"),
    ("protocol alert", "Received fatal alert: protocol_version", "protocol-mismatch"),
    ("protocol disabled", "No appropriate protocol (protocol is disabled or cipher suites are inappropriate)",
     "protocol-mismatch"),
    ("sni", "Received fatal alert: unrecognized_name", "sni-required"),
    ("plaintext", "Unsupported or unrecognized SSL message", "backend-not-tls"),
    ("refused", "java.net.ConnectException: Connection refused", "connection-refused"),
    ("connect timeout", "java.net.SocketTimeoutException: Connect timed out", "connection-refused"),
    ("bad_certificate", "Received fatal alert: bad_certificate", "client-certificate-not-sent"),
    ("newer JDK prefix",
     "(certificate_unknown) PKIX path building failed: unable to find valid certification path",
     "server-certificate-untrusted"),
]


@pytest.mark.parametrize(("message", "cause"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_jsse_text_is_a_sign_of_its_cause(message: str, cause: str) -> None:
    # Given the MP's handshakeFailed line with JSSE's message, When it is read, Then the sign fits the cause
    # first and quotes the line.
    (sign,) = read_jsse_signs([MP_LINE.format(message)])
    assert sign.causes[0] == cause
    assert sign.line.endswith(message.strip())


def test_handshake_failure_is_ambiguous_and_lines_without_jsse_text_are_no_sign() -> None:
    failure = MP_LINE.format("Received fatal alert: handshake_failure")
    signs = read_jsse_signs(["INFO nothing to see", failure])
    assert len(signs) == 1
    assert {"cipher-mismatch", "client-certificate-not-sent"} <= set(signs[0].causes)
    assert signs_for("cipher-mismatch", signs) == signs
    assert signs_for("sni-required", signs) == ()

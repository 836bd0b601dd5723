"""handshake-failed-before-client-auth: the fallback for a failure before any CertificateRequest that no more
specific cause explains."""

from __future__ import annotations

from collector.diagnosis.backends import (
    Facts,
    backend_label,
    first_fatal,
    frame_prefix,
    is_encrypted,
    sent_no_client_hello,
    server_reaction,
)
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.findings import count_lines, reaction_line
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)
from collector.tls.handshake import Outcome

_NOT_APPLICABLE = "not applicable: the handshake failed before client authentication"


def handshake_failed_before_client_auth(facts: Facts) -> Finding | None:
    failed = [h for h in facts.evidence.handshakes if h.client_certificate is None and not is_encrypted(h)
              and (h.outcome == Outcome.FAILED or first_fatal(h) is not None)
              and not sent_no_client_hello(h)]  # no ClientHello: no-tls-handshake tells that case
    if not failed:
        return None
    first = failed[0]
    lines = [frame_prefix(first.frames[0] if first.frames else None, first, True)
             + f"ClientHello from {first.client} to {first.server}"
             + (f" (SNI {first.sni})" if first.sni else " (no SNI)")]
    if first.version:
        lines.append(f"negotiated {first.version}" + (f", {first.cipher}" if first.cipher else ""))
    lines.append(reaction_line(first) if first_fatal(first)
                 else "the connection closed before a CertificateRequest")
    label = backend_label(first)
    lines.extend(count_lines(facts, label, len([h for h in failed if backend_label(h) == label])))
    values = {"backend": label, "reaction": server_reaction(first), "sni": first.sni or ""}
    return Finding(label, tuple(lines), values)


SPEC = CauseSpec(
    cause=Cause.HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH,
    rule=handshake_failed_before_client_auth,
    cites=(Cited.CLIENT_HELLO, Cited.SERVER_HELLO, Cited.ALERT),
    texts=Texts(
        "The TLS handshake with {backend} failed before any client certificate was asked for ({reaction}).",
        "This is not a client certificate problem: compare the TLS versions and cipher suites both sides"
        " allow,"
        " the SNI sent ({sni}), and whether the message processor trusts the backend's certificate chain (the"
        " target's TrustStore); see the playbook \"SSL Handshake Failures\".",
    ),
    defaults={"sni": "none"},
    report=CauseReport(
        cause=Cause.HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH,
        title="The handshake failed before client authentication",
        body=("The handshake stopped before the backend asked for a client certificate (protocol version,"
              " cipher"
              " suite, SNI, or\n"
              "the backend's own certificate chain). This is not the bad client certificate playbook's"
              " case; see"
              " the TLS/SSL\n"
              "Handshake Failures playbook."),
        wire="the handshake failed before the backend asked for a client certificate",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False, _NOT_APPLICABLE),
            SectionResult(SECTION_CA_MISMATCH, False, _NOT_APPLICABLE),
        ),
    ),
)

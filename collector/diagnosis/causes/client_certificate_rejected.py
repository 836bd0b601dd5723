"""client-certificate-rejected: the MP sent a certificate and the backend refused it (neither playbook
cause)."""

from __future__ import annotations

from collector.diagnosis.backends import Facts, backend_label, first_fatal, frame_prefix, server_reaction
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.findings import count_lines, reaction_line
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)
from collector.tls.handshake import Handshake, Outcome


def client_certificate_rejected(facts: Facts) -> Finding | None:
    rejected = [h for h in facts.evidence.handshakes if _sent_and_refused(h)]
    if not rejected:
        return None
    first = rejected[0]
    cert = first.client_certificate
    assert cert is not None
    leaf = cert.chain[0] if cert.chain else None
    lines = [frame_prefix(cert.frame, first, True) + "client Certificate sent"
             + (f": {leaf.subject}, issued by {leaf.issuer}" if leaf else "")]
    lines.append(reaction_line(first))
    label = backend_label(first)
    lines.extend(count_lines(facts, label, len([h for h in rejected if backend_label(h) == label])))
    return Finding(label, tuple(lines), {
        "backend": label, "reaction": server_reaction(first),
        "client_leaf": leaf.subject if leaf else "", "client_issuer": leaf.issuer if leaf else ""})


def _sent_and_refused(handshake: Handshake) -> bool:
    cert = handshake.client_certificate
    if cert is None or not cert.sent:
        return False
    alert = first_fatal(handshake)
    server_alert = alert is not None and alert.sender == "server"
    return server_alert or handshake.http_status == 400 or handshake.outcome == Outcome.FAILED


SPEC = CauseSpec(
    cause=Cause.CLIENT_CERTIFICATE_REJECTED,
    rule=client_certificate_rejected,
    cites=(Cited.CERTIFICATE_REQUEST, Cited.CLIENT_CERTIFICATE, Cited.ALERT),
    texts=Texts(
        "The message processor sent a client certificate ({client_leaf}) and {backend} rejected it"
        " ({reaction}).",
        "Make the backend trust the certificate: add its issuer ({client_issuer}) to the backend's"
        " truststore and"
        " check that the certificate is valid (dates, key usage); the backend's log says why it refused it.",
    ),
    defaults={"client_leaf": "subject unknown", "client_issuer": "unknown"},
    report=CauseReport(
        cause=Cause.CLIENT_CERTIFICATE_REJECTED,
        title="The backend rejected the client certificate",
        body=("The Message Processor did send a client certificate and the backend refused it (expired,"
              " untrusted"
              " chain, wrong\n"
              "usage, or revoked). This is neither of the playbook's two causes: check the backend's"
              " truststore"
              " and logs."),
        wire="the Message Processor sent a certificate and the backend rejected it",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, True,
                           "ruled out: the Message Processor did send a certificate"),
            SectionResult(SECTION_CA_MISMATCH, True,
                           "ruled out: the certificate was sent, so its CA was acceptable to the Message"
                           " Processor"),
        ),
    ),
)

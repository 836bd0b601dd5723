"""no-tls-handshake: nothing to judge (no ClientHello in the input); the last rule, which always answers."""

from __future__ import annotations

from collector.diagnosis.backends import Facts
from collector.diagnosis.causes.spec import CauseSpec, Finding, Texts
from collector.diagnosis.findings import outcome_phrase
from collector.diagnosis.keymanager import check_keystore
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)

_NOT_RUN = "not run: no handshake to examine"


def no_tls_handshake(facts: Facts) -> Finding | None:
    lines = [f"{label}: " + outcome_phrase(per) for label, per in facts.counts.items()]
    if not facts.evidence.handshakes:
        lines.append("no TLS handshake in: " + (", ".join(facts.evidence.sources) or "the input"))
    # What the keystore alone says is still worth reading (an empty keystore needs no capture to be seen).
    ev = facts.evidence
    lines.extend(check_keystore(ev.keystores, ev.key_alias, ev.keystore, None).evidence)
    return Finding(None, tuple(lines))


SPEC = CauseSpec(
    cause=Cause.NO_TLS_HANDSHAKE,
    rule=no_tls_handshake,
    texts=Texts(
        "The input holds no TLS handshake to analyze.",
        "Capture while the 503 is reproduced (tcpdump -i any -s 0 host BACKEND_IP -w FILE on the message"
        " processor or the backend) and give collect analyze that file with the keystore documents.",
    ),
    report=CauseReport(
        cause=Cause.NO_TLS_HANDSHAKE,
        title="No TLS handshake was captured",
        body=("Nothing in the captures is a TLS handshake between a Message Processor and the backend."
              " Check the"
              " capture hosts,\n"
              "the backend address and port, and that the reproduction ran during the capture window."),
        wire="no TLS handshake was captured",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False, _NOT_RUN),
            SectionResult(SECTION_CA_MISMATCH, False, _NOT_RUN),
        ),
    ),
)

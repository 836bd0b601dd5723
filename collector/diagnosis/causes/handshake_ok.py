"""handshake-ok: the handshakes completed; nothing to fix at the TLS layer in this input."""

from __future__ import annotations

from collector.diagnosis.backends import Facts
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.findings import outcome_phrase
from collector.diagnosis.targets import attempts_elsewhere_lines, backend_scope
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)
from collector.tls.handshake import Outcome

_NOT_NEEDED = "not needed: the handshakes completed"


def handshake_ok(facts: Facts) -> Finding | None:
    completed = [h for h in facts.evidence.handshakes if h.outcome == Outcome.ESTABLISHED]
    if not completed:
        return None
    lines = [f"{label}: " + outcome_phrase(per) for label, per in facts.counts.items()]
    # Attempts towards the backend would have made it a failure (connection-refused); others are only noted.
    ev = facts.evidence
    lines.extend(attempts_elsewhere_lines(backend_scope(ev.targets, ev.handshakes), ev.connection_attempts))
    return Finding(None, tuple(lines), {"count": str(len(completed))})


SPEC = CauseSpec(
    cause=Cause.HANDSHAKE_OK,
    rule=handshake_ok,
    cites=(Cited.CLIENT_HELLO, Cited.SERVER_HELLO),
    texts=Texts(
        "All {count} TLS handshake(s) in the input completed and no client certificate was refused.",
        "Nothing to fix at the TLS layer in this input: capture again while reproducing the 503, and check"
        " the"
        " backend's HTTP answers.",
    ),
    defaults={"count": "0"},
    report=CauseReport(
        cause=Cause.HANDSHAKE_OK,
        title="The TLS handshakes completed",
        body=("Every captured handshake between the Message Processor and the backend completed, so this"
              " capture"
              " does not show\n"
              "the failure. Reproduce the error during the capture window and collect"
              " again."),
        wire="the handshakes completed",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False, _NOT_NEEDED),
            SectionResult(SECTION_CA_MISMATCH, False, _NOT_NEEDED),
        ),
        healthy=True,
    ),
)

"""evidence -> cause: run the rules in order and render the first finding with its summary and resolution."""

from __future__ import annotations

from collections.abc import Callable

from collector.diagnosis import playbook, rules
from collector.diagnosis.backends import Facts, assess
from collector.diagnosis.causes import Diagnosis
from collector.diagnosis.evidence import Evidence

Rule = Callable[[Facts], "rules.Finding | None"]

# The one ordered list of rules: client-auth causes first (failures beat successes: DESIGN's close calls),
# then the other failures, then "nothing wrong", then "nothing to judge", which always answers.
RULES: tuple[Rule, ...] = (
    rules.missing_client_certificate,
    rules.ca_mismatch,
    rules.client_certificate_not_sent,
    rules.client_certificate_rejected,
    rules.handshake_failed_before_client_auth,
    rules.encrypted_handshake,
    rules.handshake_ok,
    rules.no_tls_handshake,
)


def diagnose(evidence: Evidence) -> Diagnosis:
    """The verdict for the evidence; thin evidence is a cause of its own, never an exception."""
    facts = assess(evidence)
    finding = next(f for f in (rule(facts) for rule in RULES) if f is not None)
    template = playbook.template_for(finding.cause, finding.variant)
    return Diagnosis(
        cause=finding.cause,
        summary=playbook.render(template.summary, finding.values),
        evidence=finding.evidence,
        resolution=playbook.render(template.resolution, finding.values),
        backend=finding.backend,
        counts=facts.counts,
    )

"""evidence -> cause: try each cause's rule in registry order and render the first finding with its texts."""

from __future__ import annotations

from collector.diagnosis.backends import assess
from collector.diagnosis.causes.registry import REGISTRY
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.probed import CAUSE_KINDS, fact_line, probed_facts
from collector.diagnosis.verdict import Diagnosis

NAMED_FROM_PROBE = "Named from a probe, not a capture (no capture shows the failure): "


def diagnose(evidence: Evidence) -> Diagnosis:
    """The verdict for the evidence; thin evidence is a cause of its own, never an exception."""
    facts = assess(evidence)
    for spec in REGISTRY:
        finding = spec.rule(facts)
        if finding is None:
            continue
        texts = spec.texts_for(finding.variant)
        summary = spec.render(texts.summary, finding.values)
        if finding.from_probe:
            summary = NAMED_FROM_PROBE + summary
        probed = probed_facts(evidence)
        # Each probed fact is an evidence line too, marked, unless the finding's own lines already show it.
        lines = list(finding.evidence)
        shown = CAUSE_KINDS.get(spec.cause.value, set()) if finding.from_probe else set()
        lines += [fact_line(f) for f in probed if f.kind not in shown]
        return Diagnosis(
            cause=spec.cause,
            summary=summary,
            evidence=tuple(lines),
            resolution=spec.render(texts.resolution, finding.values),
            backend=finding.backend,
            counts=facts.counts,
            chain=finding.chain,
            probed=probed,
            named_from_probe=finding.from_probe,
        )
    # The registry ends with no-tls-handshake, whose rule always answers.
    raise AssertionError("the last cause of the registry must always answer")

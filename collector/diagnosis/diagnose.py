"""evidence -> cause: try each cause's rule in registry order and render the first finding with its texts."""

from __future__ import annotations

from collector.diagnosis.backends import assess
from collector.diagnosis.causes.registry import REGISTRY
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.verdict import Diagnosis


def diagnose(evidence: Evidence) -> Diagnosis:
    """The verdict for the evidence; thin evidence is a cause of its own, never an exception."""
    facts = assess(evidence)
    for spec in REGISTRY:
        finding = spec.rule(facts)
        if finding is None:
            continue
        texts = spec.texts_for(finding.variant)
        return Diagnosis(
            cause=spec.cause,
            summary=spec.render(texts.summary, finding.values),
            evidence=finding.evidence,
            resolution=spec.render(texts.resolution, finding.values),
            backend=finding.backend,
            counts=facts.counts,
            chain=finding.chain,
        )
    # The registry ends with no-tls-handshake, whose rule always answers.
    raise AssertionError("the last cause of the registry must always answer")

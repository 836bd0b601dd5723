"""diagnose(): one rule per cause (the registry's order), every cause with its texts, never an exception."""

from __future__ import annotations

import re

import pytest

from collector.diagnosis.causes import Cause
from collector.diagnosis.causes.registry import REGISTRY, spec_for
from collector.diagnosis.diagnose import diagnose
from collector.tls.handshake import Alert, Handshake, Outcome
from tests.diagnosis.builders import evidence


@pytest.mark.parametrize("cause", list(Cause), ids=lambda c: c.value)
def test_every_cause_has_a_summary_and_a_resolution(cause: Cause) -> None:
    # Given a cause, When its texts render with no values, Then both are non-empty and fully filled in
    spec = spec_for(cause)
    template = spec.texts
    for text in (template.summary, template.resolution):
        rendered = spec.render(text, {})
        assert rendered.strip() and not re.search(r"\{\w+\}", rendered)


VARIANTS = [(spec.cause, name) for spec in REGISTRY for name in spec.variants]


@pytest.mark.parametrize("key", VARIANTS, ids=lambda k: f"{k[0].value}:{k[1]}")
def test_every_variant_renders_fully(key: tuple[Cause, str]) -> None:
    # Given a cause's variant texts, When rendered with no values, Then nothing is left unfilled
    spec = spec_for(key[0])
    template = spec.texts_for(key[1])
    assert template is spec.variants[key[1]]
    for text in (template.summary, template.resolution):
        assert not re.search(r"\{\w+\}", spec.render(text, {}))


@pytest.mark.parametrize("cause", list(Cause), ids=lambda c: c.value)
def test_every_cause_has_exactly_one_rule(cause: Cause) -> None:
    # Given the ordered registry, Then each cause has its own rule function named after it
    names = [spec.rule.__name__ for spec in REGISTRY]
    assert names.count(cause.value.replace("-", "_")) == 1
    assert len(REGISTRY) == len(Cause)


def test_last_rule_always_answers() -> None:
    # Given no evidence at all, When diagnosed, Then the last rule answers rather than raising
    assert diagnose(evidence()).cause is Cause.NO_TLS_HANDSHAKE


ODD = {
    "no sni, no version, no frames": Handshake(client="a:1", server="b:2"),
    "warning alert only": Handshake(client="a:1", server="b:2",
                                    alerts=(Alert("server", "warning", "close_notify", 0),),
                                    outcome=Outcome.ESTABLISHED),
    "ipv6 endpoints": Handshake(client="[::1]:5", server="[::1]:443", outcome=Outcome.FAILED),
}


@pytest.mark.parametrize("handshake", ODD.values(), ids=ODD.keys())
def test_diagnose_never_raises_on_odd_handshakes(handshake: Handshake) -> None:
    # Given a handshake with most fields unknown, When diagnosed, Then a cause comes back
    diagnosis = diagnose(evidence(handshake))
    assert diagnosis.cause in set(Cause) and diagnosis.summary and diagnosis.resolution

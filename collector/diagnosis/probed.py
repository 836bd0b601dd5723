"""What the probes established, as evidence marked *probed* (never captured): the backend chain judged against
the MP truststore the evidence holds, the versions and suites it accepts of the MP's offer, whether it needs
SNI; and when the capture cannot decide, so that a cause may rest on a probe alone.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from cryptography import x509

from collector.diagnosis.backends import is_encrypted
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.truststores import anchors_of
from collector.diagnosis.verdict import ProbedFact
from collector.tls.handshake import Outcome, ProbeResult
from collector.tls.trust import ChainVerdict, judge_chain

if TYPE_CHECKING:  # imported where a probe needs it: a capture alone never loads the survey model
    from collector.tls.survey import ProbeSurvey

PROBED_PREFIX = "probed, not captured"
PROBED = "probed"  # the variant of a cause named from a probe alone


def capture_undecided(evidence: Evidence) -> bool:
    """The captures cannot show why the connection failed: none holds a handshake, or every handshake is TLS
    1.3 without a key log and one of them did not complete."""
    handshakes = evidence.handshakes
    if not handshakes:
        return True
    return all(is_encrypted(h) for h in handshakes) and any(h.outcome != Outcome.ESTABLISHED
                                                            for h in handshakes)


# The probed facts a cause's own evidence lines already show, so they are not listed twice.
CAUSE_KINDS = {"protocol-mismatch": {"protocols"}, "cipher-mismatch": {"protocols", "ciphers"},
               "sni-required": {"sni"}, "server-certificate-untrusted": {"chain"},
               "server-certificate-expired": {"chain"}, "server-hostname-mismatch": {"chain"}}


def where(probe: ProbeResult) -> str:
    """``probe of host:port via mp1`` (or ``… from the collector``)."""
    return _where(probe.target, probe.via)


def _where(target: str, via: str | None) -> str:
    return f"probe of {target}" + (f" via {via}" if via else " from the collector")


def fact_line(fact: ProbedFact) -> str:
    """A probed fact as an evidence line, marked."""
    return f"{PROBED_PREFIX} ({_where(fact.target, fact.via)}): {fact.detail}"


def probed_line(probe: ProbeResult, text: str) -> str:
    """An evidence line marked as a probe's finding."""
    return f"{PROBED_PREFIX} ({where(probe)}): {text}"


def version_lines(probe: ProbeResult, survey: ProbeSurvey) -> list[str]:
    """One marked line per version the survey tried: how the backend answered it, and why."""
    return [probed_line(probe, f"{r.version}: {r.status.value} ({r.detail})") for r in survey.protocols]


def surveyed(evidence: Evidence) -> list[tuple[ProbeResult, ProbeSurvey]]:
    return [(p, p.survey) for p in evidence.probes if p.survey is not None]


def probe_chain_verdict(probe: ProbeResult, evidence: Evidence, *, check_name: bool) -> ChainVerdict | None:
    """The probe's backend chain judged against the evidence's MP truststore (``None``: no readable chain).

    The name is checked only when asked: Edge checks it only when SSLInfo sets <CommonName>, which a probe
    cannot know, so a name mismatch alone never names a cause.
    """
    from collector.tls.survey import MAX_CHAIN

    try:
        chain = [x509.load_der_x509_certificate(der) for der in probe.handshake.server_chain_der[:MAX_CHAIN]]
    except ValueError:
        return None
    if not chain:
        return None
    anchors = anchors_of(evidence.truststore) if evidence.truststore else None
    name = (probe.sni or probe.target.rsplit(":", 1)[0].strip("[]")) if check_name else None
    return judge_chain(chain, anchors or None, datetime.now(timezone.utc), name)


def probed_facts(evidence: Evidence) -> tuple[ProbedFact, ...]:
    """Every probe's findings as typed facts (the report's rows), in input order."""
    return tuple(fact for probe in evidence.probes for fact in probe_facts(probe, evidence))


def probe_facts(probe: ProbeResult, evidence: Evidence) -> tuple[ProbedFact, ...]:
    """One probe's findings as typed facts: its chain judged against the evidence's truststore, then what its
    survey found (the report's per-backend rows read these, one backend's probes at a time)."""
    facts: list[ProbedFact] = []
    store = (f"truststore {evidence.truststore_name}" if evidence.truststore_name
             else "the truststore given") if evidence.truststore else None
    verdict = probe_chain_verdict(probe, evidence, check_name=True)
    if verdict is not None:
        from collector.tls.survey import chain_reason
        facts.append(ProbedFact("chain", probe.target, probe.via, verdict.status.value,
                                "backend chain: " + chain_reason(verdict, store), verdict.to_json()))
    elif probe.survey is not None and probe.survey.chain is not None:
        check = probe.survey.chain
        facts.append(ProbedFact("chain", probe.target, probe.via, check.status,
                                "backend chain: " + check.reason, check.verdict))
    if probe.survey is not None:
        facts.extend(_survey_facts(probe, probe.survey))
    return tuple(facts)


def _survey_facts(probe: ProbeResult, survey: ProbeSurvey) -> list[ProbedFact]:
    offer = survey.offer
    accepted = survey.accepted_protocols
    facts = [ProbedFact(
        "protocols", probe.target, probe.via, "mismatch" if survey.protocol_mismatch else "accepted",
        f"the MP offers {', '.join(offer.protocols)} ({offer.protocols_source}); the backend accepts "
        + (", ".join(accepted) if accepted else "none of them")
        + "; " + "; ".join(f"{p.version} {p.status.value} ({p.detail})" for p in survey.protocols),
        {"offered": list(offer.protocols), "source": offer.protocols_source, "accepted": list(accepted),
         "results": [p.to_json() for p in survey.protocols]})]
    listed = ", ".join(survey.accepted_ciphers) or "none of them"
    facts.append(ProbedFact(
        "ciphers", probe.target, probe.via, "mismatch" if survey.cipher_mismatch else
        ("accepted" if survey.accepted_ciphers else "none-accepted"),
        f"the MP offers {len(offer.ciphers)} cipher suite(s) ({offer.ciphers_source}); the backend accepts"
        f" {listed}" + ("" if survey.ciphers_complete else " (at least: the handshake budget ran out)"),
        {"offered": list(offer.ciphers), "source": offer.ciphers_source,
         "accepted": list(survey.accepted_ciphers), "refused": list(survey.refused_ciphers),
         "untested": list(survey.untested_ciphers), "complete": survey.ciphers_complete}))
    if survey.sni is not None:
        required = survey.sni.required
        status = "undecided" if required is None else ("required" if required else "not-required")
        detail = (f"SNI {status}: {survey.sni.with_name}; {survey.sni.without_name}" if survey.sni.name
                  else f"SNI {status}: {survey.sni.without_name}")
        facts.append(ProbedFact("sni", probe.target, probe.via, status, detail, survey.sni.to_json()))
    return facts

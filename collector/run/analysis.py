"""Probe the backend when the capture cannot show its CA names, then analyze the staging bundle like
`collect analyze`, and annotate the captures for Wireshark."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Protocol

from cryptography import x509

from collector import layout
from collector.diagnosis.causes import Diagnosis
from collector.diagnosis.diagnose import diagnose
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.inputs import evidence_from_bundle
from collector.diagnosis.truststores import anchors_of
from collector.probe import survey_backend
from collector.progress import Stage
from collector.remote.host_steps import PROBE_HANDSHAKE_SECONDS
from collector.run.annotation import annotate_captures
from collector.run.context import LOCAL_HOST, RunContext
from collector.run.package import import_raw
from collector.run.stages import offer_for, write_json, write_raw_json
from collector.settings import Backend
from collector.steps import Step, StepStatus
from collector.tls.handshake import AttemptEnd, ConnectionAttempt, Handshake, Outcome, ProbeResult
from collector.tls.probe_results import probe_results_to_json
from collector.tls.survey import MAX_HANDSHAKES, Offer

SURVEY_SECONDS = PROBE_HANDSHAKE_SECONDS  # each probe handshake from here, as through an MP


def read_evidence(root: Path) -> Evidence:
    """Evidence from a bundle directory through `collector/layout.py` (the same path as
    `collect analyze BUNDLE`)."""
    return evidence_from_bundle(root)


class _HasHandshakes(Protocol):
    """What the probe decision reads of the evidence (the handshakes the captures show)."""

    @property
    def handshakes(self) -> Sequence[Handshake]: ...

    @property
    def connection_attempts(self) -> Sequence[ConnectionAttempt]: ...


def probe_reasons(ctx: RunContext, evidence: _HasHandshakes | None) -> str | None:
    """Why a probe is needed (``None``: it is not); `--probe` forces it and `--no-probe` forbids it."""
    setting = ctx.settings.probe
    if setting is False:
        return None
    if setting is True:
        return "--probe was given"
    if not ctx.captured:
        return "no capture was possible"
    handshakes = list(evidence.handshakes) if evidence is not None else []
    if not handshakes and not _refused(evidence):
        return "the captures hold no TLS handshake"
    if not handshakes:
        return None  # the capture decides: nothing listens, and a probe would only be refused too
    if any(h.version == "TLSv1.3" or h.outcome is Outcome.OPAQUE for h in handshakes):
        return "the handshakes are TLS 1.3, which encrypts the CertificateRequest"
    return None


def _refused(evidence: _HasHandshakes | None) -> bool:
    """Every connection the captures hold was refused (RST to the SYN): the capture names connection-refused
    by itself, and probing a port nothing listens on would only fail and make the bundle partial."""
    attempts = list(evidence.connection_attempts) if evidence is not None else []
    return bool(attempts) and all(a.end is AttemptEnd.REFUSED for a in attempts)


def probe_backends(ctx: RunContext, reason: str, evidence: Evidence | None = None) -> None:
    """Ask each backend what the capture could not show: its acceptable CA names, its chain judged against
    the MP truststore (from `evidence`, the bundle so far), the versions and suites it accepts of those the
    target's SSLInfo offers (JSSE's defaults when it sets none) and whether it needs SNI. From here first,
    then through the first MP over SSH."""
    if not ctx.backend_targets:
        ctx.skip(LOCAL_HOST, Step.PROBE, "no-backend",
                 f"a probe was wanted ({reason}) but no backend is known")
        return
    ctx.observer.stage_started(Stage.PROBE, f"{reason}: asking {len(ctx.backend_targets)} backend(s) for"
                                            " their CA names, chain, versions, suites and SNI (at most"
                                            f" {MAX_HANDSHAKES} handshakes each)")
    anchors, store = _truststore(evidence)
    results: list[ProbeResult] = []
    for backend in ctx.backend_targets:
        offer = offer_for(ctx, backend)
        result = ctx.attempt(LOCAL_HOST, Step.PROBE, partial(_probe_local, backend, offer, anchors, store))
        if result is None and ctx.fleet is not None:
            result = _probe_via_mp(ctx, backend, anchors, store)
        if result is not None:
            results.append(result)
    if results:
        ctx.probe_results = results
        write_raw_json(ctx, layout.PROBE_RESULTS, probe_results_to_json(results))


def _truststore(evidence: Evidence | None) -> tuple[list[x509.Certificate] | None, str | None]:
    """The MP truststore's verifying certificates from the bundle so far, and its name for the verdict."""
    if evidence is None or not evidence.truststore:
        return None, None
    anchors = anchors_of(evidence.truststore)
    if not anchors:
        return None, None
    name = evidence.truststore_name
    label = f"truststore {name}" if name else "the MP truststore"
    return anchors, f"{label} ({len(anchors)} certificate(s))"


def _probe_local(backend: Backend, offer: Offer, anchors: list[x509.Certificate] | None,
                 store: str | None) -> ProbeResult:
    return survey_backend(backend.host, backend.port or 443, sni=backend.sni, offer=offer, anchors=anchors,
                          truststore=store, timeout=SURVEY_SECONDS)


def _probe_via_mp(ctx: RunContext, backend: Backend, anchors: list[x509.Certificate] | None = None,
                  store: str | None = None) -> ProbeResult | None:
    """`openssl s_client` on the first MP (a fresh connection, audited into that host's commands.log): the
    probe and its survey, whose first commands the dry-run plan shows (`host_steps.plan_host`)."""
    fleet = ctx.fleet
    mps = fleet.inventory.message_processors if fleet is not None else ()
    if fleet is None or not mps:
        return None
    offer = offer_for(ctx, backend)
    return ctx.attempt(mps[0].name, Step.PROBE,
                       lambda: fleet.probe(mps[0], backend, offer=offer, anchors=anchors, truststore=store))


def write_analysis(ctx: RunContext, evidence: Evidence) -> Diagnosis:
    """diagnose(evidence), then analysis/handshakes.json and analysis/diagnosis.json."""
    diagnosis = diagnose(evidence)
    write_json(ctx, layout.ANALYSIS_HANDSHAKES, {
        "handshakes": [h.to_json() for h in evidence.handshakes],
        # TCP connections that carried no byte (refused, unanswered): the facts connection-refused rests on
        "connection_attempts": [a.to_json() for a in evidence.connection_attempts],
    })
    write_json(ctx, layout.ANALYSIS_DIAGNOSIS, diagnosis.to_json())
    ctx.diagnosis = diagnosis
    ctx.analysis = evidence
    return diagnosis


def analyze(ctx: RunContext) -> None:
    """Probe if the captures cannot show the CA names, import everything into the bundle, analyze
    the bundle."""
    ctx.observer.stage_started(Stage.ANALYZE, "reading the captures, keystore documents and probe results")
    first = ctx.attempt_quiet(LOCAL_HOST, Step.ANALYZE_CAPTURES, lambda: read_evidence(ctx.staging))
    reason = probe_reasons(ctx, first)
    if reason is not None:
        probe_backends(ctx, reason, first)
    elif ctx.settings.probe is None:
        why = ("the captures show the backend refusing the connection" if first is not None
               and not first.handshakes and _refused(first)
               else "the TLS 1.2 captures show the acceptable CA names")
        ctx.skip(LOCAL_HOST, Step.PROBE, "not-needed", why, StepStatus.NOT_APPLICABLE)
    else:
        ctx.skip(LOCAL_HOST, Step.PROBE, "disabled", "--no-probe was given")
    import_raw(ctx)
    evidence = ctx.attempt(LOCAL_HOST, Step.ANALYZE, lambda: read_evidence(ctx.bundle_root))
    if evidence is None:
        return
    diagnosis = ctx.attempt(LOCAL_HOST, Step.DIAGNOSE, lambda: write_analysis(ctx, evidence))
    if diagnosis is not None:
        annotate_captures(ctx, evidence, diagnosis)

"""Probe the backend when the capture cannot show its CA names, then analyze the staging bundle like `collect analyze`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collector import layout
from collector.progress import Stage
from collector.run.context import LOCAL_HOST, RunContext
from collector.run.stages import write_json, write_raw_json
from collector.steps import StepStatus
from collector.tls.handshake import Outcome


def read_evidence(root: Path) -> Any:
    """Evidence from a bundle directory through `collector/layout.py` (the same path as `collect analyze BUNDLE`)."""
    from collector.diagnosis.inputs import evidence_from_bundle

    return evidence_from_bundle(root)


def probe_reasons(ctx: RunContext, evidence: Any) -> str | None:
    """Why a probe is needed (``None``: it is not); `--probe` forces it and `--no-probe` forbids it."""
    setting = ctx.settings.probe
    if setting is False:
        return None
    if setting is True:
        return "--probe was given"
    if not ctx.captured:
        return "no capture was possible"
    handshakes = list(evidence.handshakes) if evidence is not None else []
    if not handshakes:
        return "the captures hold no TLS handshake"
    if any(h.version == "TLSv1.3" or h.outcome is Outcome.OPAQUE for h in handshakes):
        return "the handshakes are TLS 1.3, which encrypts the CertificateRequest"
    return None


def probe_backends(ctx: RunContext, reason: str) -> None:
    """Ask each backend for its acceptable CA names: from here first, then through the first MP over SSH."""
    if not ctx.backend_targets:
        ctx.skip(LOCAL_HOST, "probe", "no-backend", f"a probe was wanted ({reason}) but no backend is known")
        return
    ctx.observer.stage_started(Stage.PROBE, f"{reason}: asking {len(ctx.backend_targets)} backend(s) for their "
                                            "acceptable client CA names")
    results = []
    for host, port, sni in ctx.backend_targets:
        result = ctx.attempt(LOCAL_HOST, "probe", lambda h=host, p=port, s=sni: _probe_local(h, p, s))
        if result is None and ctx.fleet is not None:
            result = _probe_via_mp(ctx, host, port, sni)
        if result is not None:
            results.append(result)
    if results:
        from collector.tls.probe_results import probe_results_to_json

        ctx.probe_results = results
        write_raw_json(ctx, layout.PROBE_RESULTS, probe_results_to_json(results))


def _probe_local(host: str, port: int, sni: str | None) -> Any:
    from collector.probe import probe_backend

    return probe_backend(host, port, sni=sni)


def _probe_via_mp(ctx: RunContext, host: str, port: int, sni: str | None) -> Any:
    """`openssl s_client` on the first MP (a fresh connection, audited into that host's commands.log)."""
    from collector.remote.connection import opened
    from collector.remote.sclient import probe_via_host

    mps = ctx.fleet.inventory.message_processors
    if not mps:
        return None
    mp = mps[0]

    def work() -> Any:
        with opened(mp, ctx.fleet.settings) as connection:
            return probe_via_host(connection, host, port, sni)

    return ctx.attempt(mp.name, "probe", work)


def write_analysis(ctx: RunContext, evidence: Any) -> Any:
    """diagnose(evidence), then analysis/handshakes.json and analysis/diagnosis.json."""
    from collector.diagnosis.diagnose import diagnose

    diagnosis = diagnose(evidence)
    write_json(ctx, layout.ANALYSIS_HANDSHAKES, {"handshakes": [h.to_json() for h in evidence.handshakes]})
    write_json(ctx, layout.ANALYSIS_DIAGNOSIS, diagnosis.to_json())
    ctx.diagnosis = diagnosis
    ctx.analysis = evidence
    return diagnosis


def analyze(ctx: RunContext) -> None:
    """Probe if the captures cannot show the CA names, import everything into the bundle, analyze the bundle."""
    from collector.run.package import import_raw

    ctx.observer.stage_started(Stage.ANALYZE, "reading the captures, keystore documents and probe results")
    first = ctx.attempt_quiet(LOCAL_HOST, "analyze-captures", lambda: read_evidence(ctx.staging))
    reason = probe_reasons(ctx, first)
    if reason is not None:
        probe_backends(ctx, reason)
    elif ctx.settings.probe is None:
        ctx.skip(LOCAL_HOST, "probe", "not-needed", "the TLS 1.2 captures show the acceptable CA names",
                 StepStatus.NOT_APPLICABLE)
    else:
        ctx.skip(LOCAL_HOST, "probe", "disabled", "--no-probe was given")
    import_raw(ctx)
    evidence = ctx.attempt(LOCAL_HOST, "analyze", lambda: read_evidence(ctx.bundle_root))
    if evidence is not None:
        ctx.attempt(LOCAL_HOST, "diagnose", lambda: write_analysis(ctx, evidence))

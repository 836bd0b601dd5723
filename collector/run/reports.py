"""SUMMARY.md and report.html for the bundle, from the run's steps, settings and diagnosis."""

from __future__ import annotations

from collector.bundle import layout
from collector.run.context import RunContext


def render_reports(ctx: RunContext) -> dict[str, str]:
    """Bundle path -> text of each report."""
    # SHIM until collector/bundle/report.py lands (render_summary/render_report/ReportContext).
    lines = [f"# apigee-collector: {ctx.settings.org}/{ctx.settings.env}/{ctx.settings.proxy}", ""]
    if ctx.diagnosis is not None:
        lines += [f"**Cause:** `{ctx.diagnosis.cause.value}`: {ctx.diagnosis.summary}", ""]
    lines += ["| host | step | status | reason |", "|---|---|---|---|"]
    lines += [f"| {s.host} | {s.step} | {s.status.value} | {s.reason or ''} |" for s in ctx.steps]
    return {layout.SUMMARY: "\n".join(lines) + "\n"}

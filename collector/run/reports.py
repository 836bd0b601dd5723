"""SUMMARY.md and report.html for the bundle: the run's facts turned into the bundle helper's
ReportContext."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from collector import layout
from collector.bundle import checklist as ck
from collector.bundle.report import ReportContext, render_report, render_summary
from collector.diagnosis.backend_view import backend_views
from collector.diagnosis.causes.registry import report_for
from collector.edge.client import is_public_cloud
from collector.run.context import RunContext
from collector.steps import StepStatus


def render_reports(ctx: RunContext) -> dict[str, str]:
    """Bundle path -> text of each report."""
    context = report_context(ctx)
    return {layout.SUMMARY: render_summary(context), layout.REPORT: render_report(context)}


def cloud_of(ctx: RunContext) -> str:
    """Which must-gather list applies: public with --public-cloud or Apigee's own management API URL."""
    s = ctx.settings
    return "public" if s.public_cloud or (not s.no_api and is_public_cloud(s.mgmt_url)) else "private"


def report_context(ctx: RunContext) -> ReportContext:
    root = ctx.bundle_root
    handshakes = tuple(ctx.analysis.handshakes) if ctx.analysis is not None else ()
    present, reasons = checklist_inputs(ctx, root)
    return ReportContext(
        org=ctx.settings.org,
        env=ctx.settings.env,
        proxy=ctx.settings.proxy,
        cloud=cloud_of(ctx),
        diagnosis=ctx.diagnosis,
        cause_report=report_for(ctx.diagnosis.cause) if ctx.diagnosis else None,
        symptom=symptom_of(ctx, root),
        case_id=ctx.settings.case,
        handshakes=handshakes,
        backend_views=backend_views(ctx.analysis) if ctx.analysis is not None else (),
        checklist=tuple(ck.build_checklist(cloud_of(ctx), present, reasons)),
        steps=tuple(ctx.steps),
        redactions=tuple(ctx.bundle_writer.redactions),
        bundle_name=ctx.bundle_writer.name,
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        annotated_captures=tuple(ctx.annotated_captures),
    )


def checklist_inputs(ctx: RunContext, root: Path) -> tuple[dict[str, list[str] | None], dict[str, str]]:
    """What the bundle holds for each must-gather item (paths), and why an item is missing."""

    def have(*patterns: str) -> list[str]:
        found: list[str] = []
        for pattern in patterns:
            found += sorted(p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file())
        return found

    reasons: dict[str, str] = {}
    present: dict[str, list[str] | None] = {}
    for key in (ck.ORG, ck.ENV, ck.PROXY):
        present[key] = [layout.MANIFEST]
    present[ck.CURL] = have(layout.REQUEST_COMMAND) or None
    reasons[ck.CURL] = _why(ctx, ("reproduce",),
                            "no --reproduce or --url was given: reproduced by hand, if at all")
    present[ck.ERROR_MESSAGE] = have(layout.REQUEST_RESPONSE,
                                     f"{layout.HOSTS_DIR}/*/{layout.HOST_LOG_EXCERPT}") or None
    reasons[ck.ERROR_MESSAGE] = _why(ctx, ("reproduce", "logs"),
                                     "no reproduction response and no MP log excerpt")
    traces = [p for p in have(f"{layout.TRACE_DIR}/*.json") if p != layout.TRACE_SESSION]
    present[ck.TRACE] = traces or None
    reasons[ck.TRACE] = _why(ctx, ("start-trace", "fetch-trace", "trace"),
                             "the debug session captured no transaction")
    present[ck.PROXY_BUNDLE] = have(layout.EDGE_PROXY_BUNDLE) or None
    reasons[ck.PROXY_BUNDLE] = _why(ctx, ("resolve",), "the management API was not used (--no-api)")
    present[ck.MP_LOG] = have(f"{layout.HOSTS_DIR}/*/{layout.HOST_LOG_EXCERPT}",
                              f"{layout.HOSTS_DIR}/*/{layout.HOST_LOG}") or None
    reasons[ck.MP_LOG] = _why(ctx, ("logs", "connect"), "no message processor in the inventory")
    captures = have(f"{layout.HOSTS_DIR}/*/{layout.HOST_CAPTURE}")
    present[ck.CAPTURE] = captures or None
    reasons[ck.CAPTURE] = _why(ctx, ("start-capture", "stop-capture", "fetch-capture", "connect"),
                               "no SSH host to capture on (give --inventory)")
    backend_names = {h.name for h in ctx.inventory.backends} if ctx.inventory is not None else set()
    present[ck.BACKEND_CAPTURE] = [c for c in captures if c.split("/")[1] in backend_names] or None
    reasons[ck.BACKEND_CAPTURE] = _why(ctx, ("start-capture", "stop-capture", "fetch-capture", "connect"),
                                       "no backend host in the inventory")
    present[ck.KEYSTORE_CERT] = have(f"{layout.EDGE_KEYSTORES_DIR}/**/*.json") or None
    reasons[ck.KEYSTORE_CERT] = _why(ctx, ("resolve",), "the management API was not used (--no-api)")
    return present, reasons


def _why(ctx: RunContext, steps: Sequence[str], default: str) -> str:
    """The first failure or skip among `steps` (its message), else `default`."""
    for result in ctx.steps:
        if result.step in steps and result.status is StepStatus.FAILED:
            return result.message or f"{result.host} -> {result.step} failed"
    for result in ctx.steps:
        if result.step in steps and result.status is not StepStatus.OK and result.message:
            return result.message
    return default


def symptom_of(ctx: RunContext, root: Path) -> ck.Symptom:
    """What the failing request showed: status and fault of the reproduction, trace cause, id, MP log line."""
    status = ctx.reproduction.status if ctx.reproduction else None
    errorcode = faultstring = None
    if ctx.reproduction is not None:
        errorcode, faultstring = _fault_of(ctx.reproduction.response)
    causes = list(ctx.trace_result.error_causes) if ctx.trace_result is not None else []
    message_id = ctx.message_ids[0] if ctx.message_ids else None
    return ck.Symptom(http_status=status, errorcode=errorcode, faultstring=faultstring,
                      error_cause=causes[0] if causes else None, message_id=message_id,
                      mp_log_line=_mp_log_line(root, message_id))


def _fault_of(response: str) -> tuple[str | None, str | None]:
    start = response.find('{"fault"')
    if start < 0:
        return None, None
    try:
        fault = json.JSONDecoder().raw_decode(response[start:])[0]["fault"]
    except (ValueError, KeyError, TypeError):
        return None, None
    detail = fault.get("detail") if isinstance(fault, dict) else None
    code = detail.get("errorcode") if isinstance(detail, dict) else None
    return code, fault.get("faultstring") if isinstance(fault, dict) else None


def _mp_log_line(root: Path, message_id: str | None) -> str | None:
    if not message_id:
        return None
    for excerpt in sorted(root.glob(f"{layout.HOSTS_DIR}/*/{layout.HOST_LOG_EXCERPT}")):
        for line in excerpt.read_text(encoding="utf-8", errors="replace").splitlines():
            if message_id in line and "handshakeFailed" in line:
                # The excerpt prefixes each line with its file name (grep -H); keep the log line itself.
                head, sep, rest = line.partition(".log:")
                return rest if sep and "/" in head else line
    return None

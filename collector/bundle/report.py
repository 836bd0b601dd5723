"""SUMMARY.md (ready to paste into a ticket) and report.html (offline), rendered from one ReportContext."""

from __future__ import annotations

import functools
import html
import importlib.resources
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from markupsafe import Markup

from collector import __version__, layout
from collector.bundle.checklist import (
    ChecklistItem,
    Cloud,
    ItemState,
    SectionResult,
    Symptom,
    build_checklist,
    build_sections,
)
from collector.bundle.redact import Redaction, summarize_redactions
from collector.diagnosis.backend_view import BackendView
from collector.diagnosis.ladder import Ladder, LadderStep, Step, direction, ladders_per_backend
from collector.diagnosis.verdict import CauseReport, Diagnosis
from collector.errors import BundleError
from collector.steps import StepResult, StepStatus
from collector.tls.handshake import Handshake

__all__ = [
    "ChecklistItem", "ItemState", "ReportContext", "SectionResult", "Symptom", "build_checklist",
    "build_sections", "render_report", "render_summary",
]

SUMMARY_TEMPLATE = "SUMMARY.md.j2"
REPORT_TEMPLATE = "report.html.j2"
# A page shows more ladders per backend than a terminal (the CLI draws diagnosis.ladder's 3).
LADDERS_PER_BACKEND = 20


@dataclass(frozen=True)
class ReportContext:
    """Everything SUMMARY.md and report.html show.

    Attributes:
        cloud: ``public`` or ``private`` (which must-gather list applies).
        diagnosis: the verdict; ``None`` when the analysis could not run.
        cause_report: what the reports print for the verdict's cause (its spec's `CauseReport`, from
            `diagnosis.causes.registry.report_for`); required with a diagnosis.
        handshakes: the analysis' handshakes, drawn as ladders per backend (`diagnosis/ladder.py`'s model).
        backend_views: per backend, the configured SSLInfo beside what the wire and the probe showed
            (`diagnosis.backend_view.backend_views` of the analysis' evidence); report.html shows every row,
            SUMMARY.md lists the marked ones.
        checklist: from `build_checklist`. sections: from `build_sections` (computed when left empty).
        steps: every host x step outcome. redactions: every redaction of the bundle.
        generated: when the bundle was made (ISO 8601), "" to leave it out.
        annotated_captures: bundle paths of the per-backend captures merged and commented for Wireshark.
    """

    org: str
    env: str
    proxy: str
    cloud: str
    diagnosis: Diagnosis | None
    cause_report: CauseReport | None = None
    symptom: Symptom = field(default_factory=Symptom)
    case_id: str | None = None
    handshakes: tuple[Handshake, ...] = ()
    backend_views: tuple[BackendView, ...] = ()
    checklist: tuple[ChecklistItem, ...] = ()
    sections: tuple[SectionResult, ...] = ()
    steps: tuple[StepResult, ...] = ()
    redactions: tuple[Redaction, ...] = ()
    bundle_name: str = ""
    tool_version: str = __version__
    generated: str = ""
    annotated_captures: tuple[str, ...] = ()


def render_summary(context: ReportContext) -> str:
    """SUMMARY.md: the verdict, the must-gather checklist, the sections tried, host completeness,
    redactions."""
    return _environment(html=False).get_template(SUMMARY_TEMPLATE).render(_template_data(context))


def render_report(context: ReportContext) -> str:
    """report.html: the same, plus the handshake ladder per backend; inline CSS, no external asset."""
    return _environment(html=True).get_template(REPORT_TEMPLATE).render(_template_data(context))


def load_templates() -> None:
    """Compile both templates now (~0.25 s), so rendering later only renders (a run does this while it
    waits for the capture window to close)."""
    _environment(html=False).get_template(SUMMARY_TEMPLATE)
    _environment(html=True).get_template(REPORT_TEMPLATE)


# -- templates --------------------------------------------------------------------------------------------


def _template_source(name: str) -> str:
    """A template from the installed package (`collector/templates`) or, in a checkout, the top-level
    folder."""
    packaged = importlib.resources.files("collector").joinpath("templates").joinpath(name)
    checkout = Path(__file__).resolve().parents[2] / "templates" / name
    try:
        if packaged.is_file():
            return packaged.read_text(encoding="utf-8")
        return checkout.read_text(encoding="utf-8")
    except OSError as exc:
        raise BundleError(f"template {name} not found in collector/templates nor in {checkout.parent} "
                          f"(a broken install?): {exc.strerror or exc}") from exc


@functools.cache  # one per process: it keeps the compiled templates (the sources never change while it runs)
def _environment(*, html: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _markdown_escape
    env.filters["code"] = _code_span
    env.filters["fence"] = _fence
    env.filters["paragraph"] = _html_paragraph
    return env


_MD_SPECIAL = re.compile(r"([\\`*\[\]|<>])")


def _markdown_escape(value: object) -> str:
    """Inline text safe in a Markdown table cell or sentence: no markup, no HTML, one line."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", text)


def _code_span(value: object) -> str:
    """Text inside a Markdown code span (where backslash escapes do not work): one line, no backticks."""
    return " ".join(str(value).split()).replace("`", "'").replace("|", "\\|")


def _fence(value: object) -> str:
    """A code fence longer than any backtick run inside `value`."""
    runs = [len(r) for r in re.findall(r"`+", str(value))]
    return "`" * max(3, max(runs, default=0) + 1)


_CODE_SPAN = re.compile(r"`([^`]*)`")
_QUOTED = re.compile(r'"([^"]*)"')


def _html_paragraph(body: str) -> Markup:
    """A cause's paragraph (SUMMARY.md's wording: hard line breaks, `code` spans, "quotes") as HTML on one
    line.

    The body is the spec's own text, never evidence, so only its three markups are translated; <, > and & are
    escaped all the same.
    """
    text = html.escape(" ".join(body.split("\n")), quote=False)
    text = _CODE_SPAN.sub(r"<code>\1</code>", text)
    return Markup(_QUOTED.sub("\u201c\\1\u201d", text))


# -- data shaped for loops and ifs -------------------------------------------------------------------------


def _template_data(context: ReportContext) -> dict[str, object]:
    diagnosis = context.diagnosis
    report = context.cause_report
    if diagnosis is not None and (report is None or report.cause.value != diagnosis.cause.value):
        # A verdict without its words would print a report that names no cause.
        raise ValueError(f"no template branch for cause {diagnosis.cause.value!r}: ReportContext.cause_report"
                         " must be that cause's spec report (diagnosis/causes/registry.py report_for)")
    sections = context.sections or build_sections(report, context.symptom)
    steps = list(context.steps)
    return {
        "c": context,
        "cloud_label": "Public Cloud" if context.cloud == Cloud.PUBLIC.value else "Private Cloud",
        "cause": diagnosis.cause.value if diagnosis else None,
        "report": report,
        "cause_items": _cause_items(report, context.checklist),
        "diagnosis": diagnosis,
        "counts": _count_rows(diagnosis),
        "checklist": context.checklist,
        "states": {s.name: s.value for s in ItemState},
        "sections": sections,
        "complete": not any(s.status is StepStatus.FAILED for s in steps),
        "host_table": _host_table(steps),
        "problems": [s for s in steps if s.status is not StepStatus.OK],
        "redaction_totals": summarize_redactions(context.redactions),
        "redaction_files": _redaction_files(context.redactions),
        "redaction_count": sum(r.count for r in context.redactions),
        "backends": _ladders(context.handshakes),
        "views": context.backend_views,
        "mismatches": [(view.backend, row, [cell for cell in row.cells if cell.text])
                       for view in context.backend_views for row in view.mismatches],
        "paths": {"manifest": layout.MANIFEST, "handshakes": layout.ANALYSIS_HANDSHAKES},
    }


def _cause_items(report: CauseReport | None, checklist: Sequence[ChecklistItem]) -> list[ChecklistItem]:
    """The must-gather items the cause's verdict rests on, in the spec's order (items of the other cloud left
    out)."""
    if report is None:
        return []
    by_key = {item.key: item for item in checklist}
    return [by_key[key] for key in report.must_gather if key in by_key]


def _count_rows(diagnosis: Diagnosis | None) -> list[tuple[str, str, int]]:
    if diagnosis is None or not diagnosis.counts:
        return []
    return [(backend, outcome, n) for backend, per in sorted(diagnosis.counts.items())
            for outcome, n in sorted(per.items())]


# report.html's hosts x steps cells: a narrow mark per status keeps ~20 step columns within a page's width
# (the word is the cell's title and the legend's).
STATUS_MARKS = {StepStatus.OK.value: "✓", StepStatus.FAILED.value: "✗", StepStatus.SKIPPED.value: "–",
                StepStatus.NOT_APPLICABLE.value: "n/a"}


def _host_table(steps: Sequence[StepResult]) -> dict[str, object]:
    """Hosts as rows, steps as columns (first-seen order); a cell is the status value, "" when not run."""
    hosts: list[str] = []
    names: list[str] = []
    cells: dict[tuple[str, str], str] = {}
    for s in steps:
        if s.host not in hosts:
            hosts.append(s.host)
        if s.step not in names:
            names.append(s.step)
        previous = cells.get((s.host, s.step))
        # several results for one cell (retries): a failure wins, so the table never hides one
        if previous != StepStatus.FAILED.value:
            cells[(s.host, s.step)] = s.status.value
    rows = [{"host": h, "cells": [cells.get((h, n), "") for n in names]} for h in hosts]
    return {"steps": names, "rows": rows, "marks": STATUS_MARKS}


def _redaction_files(redactions: Sequence[Redaction]) -> list[tuple[str, int, str]]:
    per_file: dict[str, dict[str, int]] = {}
    for r in redactions:
        rules = per_file.setdefault(r.file, {})
        rules[r.rule] = rules.get(r.rule, 0) + r.count
    return [(f, sum(rules.values()), ", ".join(sorted(rules))) for f, rules in sorted(per_file.items())]


def _ladders(handshakes: Sequence[Handshake]) -> list[dict[str, object]]:
    """Per backend (sorted), the ladder model's connections as rows: direction, message, detail, alarm."""
    groups = sorted(ladders_per_backend(handshakes, LADDERS_PER_BACKEND), key=lambda g: g.backend)
    return [{"backend": group.backend, "more": group.more,
             "handshakes": [{"client": ladder.handshake.client, "outcome": ladder.handshake.outcome.value,
                             "source": ladder.handshake.source, "rows": _ladder_rows(ladder)}
                            for ladder in group.ladders]}
            for group in groups]


def _ladder_rows(ladder: Ladder) -> list[tuple[str, str, str, bool]]:
    return [(direction(step), *_step_cells(ladder.handshake, step), step.alarm) for step in ladder.steps]


def _step_cells(h: Handshake, step: LadderStep) -> tuple[str, str]:
    """The message and detail cells of one step (report.html's wording; the CLI words the same steps)."""
    leaf = step.certificate
    if step.step is Step.CLIENT_HELLO:
        return "ClientHello", f"SNI {h.sni}" if h.sni else "no SNI"
    if step.step is Step.NO_SERVER_HELLO:
        return "ServerHello", "not seen"
    if step.step is Step.SERVER_HELLO:
        return "ServerHello", " ".join(x for x in (h.version or "", h.cipher or "") if x)
    if step.step in (Step.SERVER_CERTIFICATE, Step.CLIENT_CERTIFICATE) and leaf is not None:
        return "Certificate", f"{leaf.subject} (issuer {leaf.issuer})"
    if step.step is Step.CLIENT_CERTIFICATE:
        return "Certificate", "empty (Certificate Length: 0)" if step.alarm else "sent"
    if step.step is Step.CERTIFICATE_REQUEST:
        names = h.certificate_request.ca_names if h.certificate_request is not None else ()
        return "CertificateRequest", ("acceptable CA names: " + "; ".join(names)) if names \
            else "no acceptable CA names sent"
    if step.step is Step.ENCRYPTED_RECORDS:
        return "encrypted", f"{h.encrypted_records} record(s) unreadable without a key log (TLS 1.3)"
    if step.step is Step.ALERT and step.alert is not None:
        return "Alert", f"{step.alert.level} {step.alert.description} ({step.alert.code})"
    if step.step is Step.HTTP_RESPONSE:
        return "HTTP", f"status {h.http_status}"
    return step.step.value, ""

"""The cause registry, walked: every cause has one spec with a rule, texts, report content, a real fixture
that triggers it through diagnose(), and its words in both SUMMARY.md and report.html.

A new cause passes this file once it has its spec module, its registry line and its fixture listing
`tests/fixtures/causes/<id>.txt` (the input files, relative to `tests/fixtures`, that `collect analyze` turns
into that cause).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from collector.bundle.checklist import CHECKLISTS, ItemState, Symptom, build_checklist
from collector.bundle.report import ReportContext, render_report, render_summary
from collector.diagnosis.analyze import analyze_paths
from collector.diagnosis.backends import assess
from collector.diagnosis.causes.registry import REGISTRY, report_for, spec_for
from collector.diagnosis.causes.spec import CauseSpec
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.verdict import Cause, Diagnosis

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CAUSE_FIXTURES = FIXTURES / "causes"
CHECKLIST_KEYS = {key for items in CHECKLISTS.values() for key, _ in items}
PLACEHOLDER = re.compile(r"\{\w+\}")


def _fixture_files(spec: CauseSpec) -> list[Path]:
    listing = CAUSE_FIXTURES / f"{spec.cause.value}.txt"
    assert listing.is_file(), f"{spec.cause.value} needs its fixture: {listing.relative_to(FIXTURES.parent)}"
    lines = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines()]
    return [FIXTURES / line for line in lines if line and not line.startswith("#")]


def _plain(text: str) -> str:
    """Words only: no code-span backticks or quote marks, one space between words."""
    return " ".join(re.sub(r'[`"“”]', "", text).split())


def _plain_html(page: str) -> str:
    return _plain(html.unescape(re.sub(r"<[^>]+>", "", page)))


def _analyzed(spec: CauseSpec) -> Diagnosis:
    return analyze_paths(_fixture_files(spec)).diagnosis


def test_registry_lists_every_cause_once() -> None:
    # Given the ordered registry, Then each cause of the vocabulary has exactly one spec
    causes = [spec.cause for spec in REGISTRY]
    assert sorted(causes) == sorted(Cause) and len(causes) == len(set(causes))
    assert all(spec_for(spec.cause) is spec for spec in REGISTRY)


def test_every_cause_fixture_names_a_registered_cause() -> None:
    # Given the fixture listings, Then none is left over from a cause that is gone
    assert {p.stem for p in CAUSE_FIXTURES.glob("*.txt")} == {c.value for c in Cause}


def test_the_last_cause_always_answers() -> None:
    # Given no evidence at all, When only the last rule is asked, Then it still finds something
    assert REGISTRY[-1].rule(assess(Evidence())) is not None


@pytest.mark.parametrize("spec", REGISTRY, ids=lambda s: s.cause.value)
def test_cause_has_a_rule_in_its_own_module(spec: CauseSpec) -> None:
    # Given a spec, Then its rule is a function named after the cause, in the module named after it
    name = spec.cause.value.replace("-", "_")
    assert callable(spec.rule) and spec.rule.__name__ == name
    assert spec.rule.__module__ == f"collector.diagnosis.causes.{name}"


@pytest.mark.parametrize("spec", REGISTRY, ids=lambda s: s.cause.value)
def test_cause_texts_render_fully(spec: CauseSpec) -> None:
    # Given the cause's texts and every variant, When rendered knowing nothing, Then no placeholder is left
    for name in ("", *spec.variants):
        texts = spec.texts_for(name)
        for text in (texts.summary, texts.resolution):
            rendered = spec.render(text, {})
            assert rendered.strip() and not PLACEHOLDER.search(rendered), (name, rendered)


@pytest.mark.parametrize("spec", REGISTRY, ids=lambda s: s.cause.value)
def test_cause_has_report_content(spec: CauseSpec) -> None:
    # Given the cause's report content, Then it is its own, says something, and names known checklist items
    report = spec.report
    assert report.cause is spec.cause and report is report_for(spec.cause)
    assert report.title.strip() and report.body.strip() and report.wire.strip()
    assert report.sections and all(s.section.strip() and s.finding.strip() for s in report.sections)
    assert set(report.must_gather) <= CHECKLIST_KEYS


@pytest.mark.parametrize("spec", REGISTRY, ids=lambda s: s.cause.value)
def test_cause_fixture_triggers_it_through_diagnose(spec: CauseSpec) -> None:
    # Given the cause's real fixture files, When analyzed (sniffed, parsed, diagnosed)
    diagnosis = _analyzed(spec)
    # Then the verdict is this cause, with its texts filled in
    assert diagnosis.cause is spec.cause, diagnosis.evidence
    assert not PLACEHOLDER.search(diagnosis.summary + diagnosis.resolution)


@pytest.mark.parametrize("spec", REGISTRY, ids=lambda s: s.cause.value)
def test_cause_renders_in_both_reports(spec: CauseSpec) -> None:
    # Given the verdict of the cause's fixture and a private-cloud checklist with one item missing
    diagnosis = _analyzed(spec)
    checklist = build_checklist("private", {"capture": "hosts/mp1/capture.pcap", "trace": None}, {})
    context = ReportContext(org="org", env="env", proxy="proxy", cloud="private", diagnosis=diagnosis,
                            cause_report=report_for(spec.cause), symptom=Symptom(http_status=503),
                            checklist=tuple(checklist))
    # When both reports are rendered
    summary, report = render_summary(context), render_report(context)
    # Then each shows the cause's heading, paragraph, playbook sections and verdict texts
    words = spec.report
    assert f"### {words.title}\n\n{words.body}\n" in summary
    for other in REGISTRY:  # and no other cause's heading
        assert (f"### {other.report.title}\n" in summary) is (other is spec), other.cause.value
    assert f"<h3>{html.escape(words.title, quote=False)}</h3>" in report
    page, text_md = _plain_html(report), _plain(summary.replace("\\", ""))
    assert _plain(words.body) in page
    assert f"capture: {words.wire}" in summary and f"capture: {words.wire}" in page
    for section in words.sections:
        row = f"| {section.section} | {'yes' if section.ran else 'no'} | {section.finding} |"
        assert _plain(row) in text_md
        assert _plain(section.finding) in page
    for text in (diagnosis.summary, diagnosis.resolution):
        assert _plain(text) in text_md and _plain(text) in page
    # And the items the verdict rests on are listed in its section with their state
    for key in words.must_gather:
        item = next(i for i in checklist if i.key == key)
        state = "**missing**" if item.state is ItemState.MISSING else item.state.value
        assert f"- {item.label}: {state}" in summary

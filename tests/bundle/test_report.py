"""SUMMARY.md and report.html: one branch per cause, checklist states, hosts table,
hostile strings escaped."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from collector import layout
from collector.bundle.checklist import SectionResult, Symptom, build_checklist
from collector.bundle.redact import Redaction, redact_text
from collector.bundle.report import LADDERS_PER_BACKEND, ReportContext, render_report, render_summary
from collector.diagnosis.backend_view import BackendView, backend_views
from collector.diagnosis.causes import Cause, Diagnosis
from collector.diagnosis.causes.registry import report_for
from collector.diagnosis.inputs import load_evidence
from collector.diagnosis.ladder import build_ladder, render_ladder
from collector.diagnosis.targets import BackendTarget, ConfiguredTls
from collector.diagnosis.verdict import CauseReport
from collector.steps import StepResult, StepStatus
from collector.tls.handshake import (
    Alert,
    CertificateRequest,
    CertificateSummary,
    ClientCertificate,
    Handshake,
    Outcome,
)
from tests.diagnosis.conftest import FIXTURES

# The heading each cause's template branch (and only it) prints, in both SUMMARY.md and report.html.
CAUSE_TEXT = {
    Cause.MISSING_CLIENT_CERTIFICATE: "Cause: No Client Certificate",
    Cause.CA_MISMATCH: "Cause: Certificate Authority Mismatch",
    Cause.CLIENT_CERTIFICATE_NOT_SENT: "The Message Processor sent no client certificate",
    Cause.CLIENT_CERTIFICATE_REJECTED: "The backend rejected the client certificate",
    Cause.SERVER_CERTIFICATE_UNTRUSTED: "The Message Processor does not trust the backend certificate",
    Cause.SERVER_CERTIFICATE_EXPIRED: "The backend certificate is expired (or not yet valid)",
    Cause.SERVER_HOSTNAME_MISMATCH: "The backend certificate does not hold the host name",
    Cause.PROTOCOL_MISMATCH: "Cause: Protocol mismatch",
    Cause.CIPHER_MISMATCH: "Cause: Cipher suite mismatch",
    Cause.SNI_REQUIRED: "Cause: SNI-enabled server",
    Cause.BACKEND_NOT_TLS: "The backend did not answer in TLS",
    Cause.CONNECTION_REFUSED: "The backend refused the connection",
    Cause.HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH: "The handshake failed before client authentication",
    Cause.ENCRYPTED_HANDSHAKE: "TLS 1.3: the handshake is encrypted in the capture",
    Cause.HANDSHAKE_OK: "The TLS handshakes completed",
    Cause.NO_TLS_HANDSHAKE: "No TLS handshake was captured",
}

HANDSHAKE = Handshake(
    client="127.0.0.11:40000", server="127.0.0.21:8443", sni="backend.example", version="TLSv1.2",
    cipher="ECDHE-RSA-AES128-GCM-SHA256",
    server_chain=(CertificateSummary("CN=backend.example", "CN=Backend CA"),),
    certificate_request=CertificateRequest(("CN=Partner CA,O=Partner",)),
    client_certificate=ClientCertificate(sent=False),
    alerts=(Alert("server", "fatal", "bad_certificate", 42),),
    outcome=Outcome.FAILED, source="hosts/mp1/capture.pcap", frames=(4, 12),
)


def _diagnosis(cause: Cause) -> Diagnosis:
    return Diagnosis(cause, f"summary for {cause.value}", ("frame 9: client Certificate, length 0",),
                     "upload the chain", "127.0.0.21:8443 (backend.example)",
                     {"127.0.0.21:8443 (backend.example)": {"failed": 3, "established": 1}})


def _context(cause: Cause | None = Cause.CA_MISMATCH, **overrides: object) -> ReportContext:
    values: dict[str, object] = {
        "org": "org1", "env": "test", "proxy": "weather", "cloud": "private",
        "diagnosis": _diagnosis(cause) if cause else None,
        "cause_report": report_for(cause) if cause else None,
        "symptom": Symptom(503, "messaging.adaptors.http.flow.ServiceUnavailable",
                           "The Service is temporarily unavailable", "Received fatal alert: bad_certificate",
                           "msg-1",
                           "2017-10-23 05:28:57,813 ... handshake failed, "
                           "message: Received fatal alert: bad_certificate"),
        "case_id": "12345", "handshakes": (HANDSHAKE,),
        "checklist": tuple(build_checklist("private",
                                           {"error-message": layout.REQUEST_RESPONSE, "trace": None},
                                           {"trace": "--no-trace was given"})),
        "steps": (StepResult("mp1", "connect", StepStatus.OK),
                  StepResult("mp1", "start-capture", StepStatus.OK),
                  StepResult("backend1", "connect", StepStatus.FAILED, "unreachable",
                             "backend1 -> connect: timed out")),
        "redactions": (Redaction(layout.REQUEST_COMMAND, "authorization", 1, 1),
                       Redaction(layout.EDGE_PROXY_BUNDLE + "!apiproxy/resources/k.key",
                                 "private-key-file", 0, 1)),
        "bundle_name": "apigee-diag-org1-test-weather-20261127T100000Z", "generated": "2026-11-27T10:05:00Z",
    }
    values.update(overrides)
    return ReportContext(**values)  # type: ignore[arg-type]


def test_every_cause_has_a_branch_in_the_table() -> None:
    assert set(CAUSE_TEXT) == set(Cause)


@pytest.mark.parametrize("cause", list(Cause), ids=[c.value for c in Cause])
def test_each_cause_renders_its_own_text(cause: Cause) -> None:
    # Given a verdict of one cause
    context = _context(cause)
    # When both reports are rendered
    summary, report = render_summary(context), render_report(context)
    # Then each shows that cause's heading and no other cause's
    for other, text in CAUSE_TEXT.items():
        assert (f"### {text}\n" in summary) is (other is cause), (other, "SUMMARY.md")
        assert (f"<h3>{text}</h3>" in report) is (other is cause), (other, "report.html")
    assert f"summary for {cause.value}" in summary
    # and the page heading is the cause's own (from its spec), with the cause id beside the verdict
    headline = CAUSE_TEXT[cause].removeprefix("Cause: ")
    assert summary.startswith(f"# Apigee Edge: {headline} (org1 / test / weather)\n")
    assert f"<h1>Apigee Edge: {headline} (org1 / test / weather)</h1>" in report
    assert f"## Diagnosis\n\ncause: `{cause.value}`\n" in summary
    assert f'<p class="cause">cause: <code>{cause.value}</code></p>' in report


def test_the_heading_names_no_other_causes_symptom() -> None:
    # Given a verdict that is not about client certificates, Then neither page heading says bad_certificate
    # (the reports once titled every cause "503 / bad_certificate")
    context = _context(Cause.PROTOCOL_MISMATCH)
    summary, report = render_summary(context), render_report(context)
    assert "bad_certificate" not in summary.splitlines()[0]
    assert "bad_certificate" not in report.split("<h1>", 1)[1].split("</h1>", 1)[0]


def test_no_diagnosis_renders() -> None:
    context = _context(None)
    assert "### No diagnosis" in render_summary(context)
    assert "<h3>No diagnosis</h3>" in render_report(context)
    assert render_summary(context).startswith("# Apigee Edge: no diagnosis (org1 / test / weather)\n")
    assert "cause: `" not in render_summary(context)


def test_summary_carries_symptom_checklist_sections_hosts_and_redactions() -> None:
    summary = render_summary(_context())
    # the symptom, as seen
    assert "HTTP 503, errorcode `messaging.adaptors.http.flow.ServiceUnavailable`" in summary
    assert "Trace `error.cause`: Received fatal alert: bad_certificate" in summary
    # the private cloud must-gather list, each with its state
    assert f"| Complete error message observed | collected | `{layout.REQUEST_RESPONSE}` |" in summary
    assert "| Trace file showing the error | **missing** (--no-trace was given) |" in summary
    assert "| API proxy bundle | not applicable |" in summary
    # the sections tried
    assert "| Cause: Certificate Authority Mismatch | yes | the issuer of the keystore's leaf" in summary
    # the host x step table and the failure
    assert "| host | connect | start-capture |" in summary
    assert "| backend1 | **failed** |  |" in summary
    assert "backend1 / connect: failed (unreachable): backend1 -\\> connect: timed out" in summary
    assert "**partial**" in summary
    # the redactions and the note on IPs
    assert "2 secret value(s) were masked or dropped" in summary
    assert "IP addresses are kept on purpose" in summary


def test_summary_survives_its_own_redaction() -> None:
    # Given a summary (it is written through the redacting writer like every file)
    summary = render_summary(_context())
    # When redacted
    out, found = redact_text(summary, layout.SUMMARY)
    # Then nothing in it looks like a secret
    assert (out, found) == (summary, [])
    report = render_report(_context())
    assert redact_text(report, layout.REPORT) == (report, [])


def test_report_shows_the_handshake_ladder() -> None:
    report = render_report(_context())
    assert "127.0.0.21:8443 (backend.example)" in report
    assert "acceptable CA names: CN=Partner CA,O=Partner" in report
    assert 'class="detail alarm">empty (Certificate Length: 0)' in report
    assert "fatal bad_certificate (42)" in report


def test_report_is_readable_offline() -> None:
    report = render_report(_context())
    assert "<style>" in report
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report)
    assert "<link" not in report and "<script" not in report
    # and the browser is told so: nothing may be fetched or run
    assert ('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src'
            ' \'unsafe-inline\'">') in report


HOSTILE = "<script>alert(1)</script>"


def test_html_escapes_hostile_strings() -> None:
    # Given names and messages an attacker could choose (proxy names, server DNs, log lines)
    hostile_handshake = replace(HANDSHAKE, sni=HOSTILE, certificate_request=CertificateRequest((HOSTILE,)))
    context = _context(proxy=HOSTILE, org='o"><img src=x onerror=alert(1)>', handshakes=(hostile_handshake,),
                       symptom=Symptom(error_cause=HOSTILE, mp_log_line=HOSTILE),
                       steps=(StepResult(HOSTILE, "connect", StepStatus.FAILED, "x", HOSTILE),))
    # When rendered as HTML
    report = render_report(context)
    # Then none of it becomes markup
    assert "<script" not in report and "<img" not in report
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report


def test_markdown_escapes_hostile_strings() -> None:
    # Given a proxy name with table and HTML syntax, and a log line with a code fence inside
    context = _context(proxy="p|x<b>", symptom=Symptom(mp_log_line="```\n# injected"))
    summary = render_summary(context)
    # Then the table stays a table, no HTML passes,
    # and the fence around the log line is longer than its content's
    assert "p\\|x\\<b\\>" in summary and "<b>" not in summary
    assert "````\n```\n# injected\n````" in summary


def test_public_cloud_checklist_in_the_report() -> None:
    present = {"org": layout.MANIFEST, "env": layout.MANIFEST, "proxy": layout.MANIFEST,
               "curl": layout.REQUEST_COMMAND, "trace": layout.TRACE_SESSION, "backend-capture": None}
    checklist = build_checklist("public", present, {"backend-capture": "no SSH access to the backend"})
    context = _context(cloud="public", checklist=tuple(checklist))
    summary = render_summary(context)
    assert "## Must gather diagnostic information (Public Cloud)" in summary
    assert ("| TCP/IP packets captured on the backend server | **missing** (no SSH access to the backend) |"
            in summary)
    assert "Must gather diagnostic information (Public Cloud)" in render_report(context)


class _NewCause:
    """Stands for a Cause value added to the enum without its template branch."""

    value = "some-new-cause"


def test_a_cause_without_a_template_branch_fails_loudly() -> None:
    # Given a verdict whose cause no template branch knows
    diagnosis = Diagnosis(_NewCause(), "s", (), "r")  # type: ignore[arg-type]
    context = _context(diagnosis=diagnosis, sections=(SectionResult("Common Diagnosis Steps", True, "x"),))
    # When rendered
    # Then rendering fails instead of printing a verdict-less report
    with pytest.raises(ValueError, match="no template branch for cause 'some-new-cause'"):
        render_summary(context)
    with pytest.raises(ValueError, match="no template branch"):
        render_report(context)


def test_ladders_are_capped_per_backend_failures_first() -> None:
    # Given many completed handshakes and one failed one with the same backend
    established = replace(HANDSHAKE, outcome=Outcome.ESTABLISHED, client_certificate=None, alerts=())
    context = _context(handshakes=(established,) * (LADDERS_PER_BACKEND + 5) + (HANDSHAKE,))
    # When the report is rendered
    report = render_report(context)
    # Then the failed one is shown, and the rest is counted rather than drawn
    assert report.count('<table class="ladder">') == LADDERS_PER_BACKEND
    assert "empty (Certificate Length: 0)" in report
    assert "and 6 more handshake(s) with this backend" in report


class _TagBalance(HTMLParser):
    """Collects tags closed out of order (void elements excepted)."""

    VOID = frozenset({"meta", "br", "img", "link", "input", "hr", "col"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.errors.append(f"</{tag}> at {self.getpos()} inside {self.open[-3:]}")


@pytest.mark.parametrize("cause", [*Cause, None], ids=[*(c.value for c in Cause), "none"])
def test_report_html_is_well_formed(cause: Cause | None) -> None:
    checker = _TagBalance()
    checker.feed(render_report(_context(cause)))
    assert (checker.errors, checker.open) == ([], [])


def test_a_cause_report_lists_the_items_its_verdict_rests_on() -> None:
    # Given a cause's report content naming must-gather items (one collected, one missing, one of the other
    # cloud)
    words = CauseReport(Cause.CA_MISMATCH, "Cause: <Title>", 'Line one with `code`\nand "quoted" words.',
                        "the wire", (SectionResult("Cause: X", True, "found it"),),
                        must_gather=("trace", "error-message", "backend-capture"))
    context = _context(cause_report=words)
    # When both reports are rendered
    summary, report = render_summary(context), render_report(context)
    # Then the cause's section lists each item with its state, in the spec's order, and the words are typeset
    assert ("### Cause: \\<Title\\>\n\nLine one with `code`\nand \"quoted\" words.\n\n"
            "Must gather for this cause:\n\n"
            "- Trace file showing the error: **missing** (--no-trace was given)\n"
            "- Complete error message observed: collected\n") in summary
    assert ("<h3>Cause: &lt;Title&gt;</h3>\n"
            "<p>Line one with <code>code</code> and “quoted” words.</p>") in report
    assert ('<li>Trace file showing the error: <span class="missing">missing</span>'
            ' (--no-trace was given)</li>\n'
            '<li>Complete error message observed: <span class="ok">collected</span></li>\n</ul>') in report
    assert "| Cause: X | yes | found it |" in summary and "capture: the wire" in summary


def test_a_cause_report_of_another_cause_is_refused() -> None:
    # Given a verdict and the report content of another cause, When rendered, Then it fails rather than
    # mislabel it
    context = _context(Cause.CA_MISMATCH, cause_report=report_for(Cause.HANDSHAKE_OK))
    with pytest.raises(ValueError, match="no template branch for cause 'ca-mismatch'"):
        render_summary(context)


def test_report_draws_the_same_ladder_model_as_the_cli() -> None:
    # Given an nginx-style handshake: empty client Certificate accepted, then HTTP 400 (no alert)
    nginx = replace(HANDSHAKE, alerts=(), outcome=Outcome.ESTABLISHED, http_status=400)
    # When report.html and the CLI's text draw it
    report = render_report(_context(handshakes=(nginx,)))
    text = "\n".join(render_ladder(nginx))
    # Then both show every message of the model, the HTTP answer and ServerHelloDone included
    assert 'class="detail alarm">empty (Certificate Length: 0)' in report
    assert "<td>ServerHelloDone</td>" in report and "ServerHelloDone" in text
    assert '<td>HTTP</td><td class="detail">status 400</td>' in report and "← HTTP 400" in text
    assert report.count("<tr><td></td><td class=\"arrow\">") == len(build_ladder(nginx).steps)


def _views(hostile: str = "") -> tuple[BackendView, ...]:
    """The configured-vs-observed rows of a real capture (a TLS 1.2-only MP, a TLS 1.3-only backend) and the
    target's SSLInfo; `hostile` names the target's host and the backend certificate."""
    evidence = load_evidence([FIXTURES / "captures" / "failures" / "protocol-mismatch-java12-openssl13.pcap"])
    address, _, port = evidence.handshakes[0].server.rpartition(":")
    target = BackendTarget(address, int(port), name="default", url=f"https://{address}:{port}",
                           ssl_enabled=True, source="edge/resolution.json",
                           tls=ConfiguredTls(protocols=("TLSv1.2",), common_name=hostile or None))
    handshakes = evidence.handshakes
    if hostile:
        handshakes += (replace(handshakes[0], server="10.6.6.6:443", sni=hostile,
                               server_chain=(CertificateSummary(f"CN={hostile}", "CN=x"),)),)
    return backend_views(replace(evidence, targets=(target,), handshakes=handshakes))


def test_report_sets_the_configured_sslinfo_beside_the_wire() -> None:
    # Given the rows of a protocol mismatch
    report = render_report(_context(Cause.PROTOCOL_MISMATCH, backend_views=_views()))
    # Then the versions row is marked with why, and shows <Protocols> beside the offer
    assert ('<tr class="mismatch"><th scope="row"><span class="mark" title="mismatch">≠</span> TLS versions'
            '<div class="why">alert protocol_version (70) from the backend</div></th>'
            '<td class="configured">TLSv1.2</td><td class="captured">offered TLSv1.2; no ServerHello</td>'
            '<td class="probed"><span class="none">–</span></td></tr>') in report
    # each column says once where it comes from, and unmarked rows are plain
    assert "TargetEndpoint default &lt;URL&gt; https://127.0.0.1:" in report
    assert "(edge/resolution.json) · captured: the one captured handshake, frames 4–6" in report
    assert '<tr><th scope="row">SNI (server_name)</th>' in report
    assert "(2 marked)" in report


def test_summary_lists_only_the_marked_rows_of_the_same_views() -> None:
    # Given the rows of a protocol mismatch (versions and outcome marked, the rest not)
    views = _views()
    summary = render_summary(_context(Cause.PROTOCOL_MISMATCH, backend_views=views))
    section = summary.split("## Configured vs observed\n", 1)[1].split("\n## ", 1)[0]
    # Then SUMMARY.md lists exactly the marked rows, each with why and what each source said
    listed = [line for line in section.splitlines() if line.startswith("- ")]
    marked = [row for view in views for row in view.mismatches]
    assert len(listed) == len(marked) == 2
    backend = views[0].backend
    assert listed[0] == (f"- {backend}, TLS versions: **alert protocol_version (70) from the backend**"
                         " (configured: TLSv1.2; captured: offered TLSv1.2; no ServerHello)")
    assert listed[1].startswith(f"- {backend}, Outcome: **fatal alert protocol_version (70) from the"
                                " backend**")
    assert "SNI (server_name)" not in section
    # and without a marked row it says they agree; without any view it leaves the section out
    agreeing = tuple(replace(v, rows=tuple(replace(r, mismatch="") for r in v.rows)) for v in views)
    assert "No row disagrees" in render_summary(_context(backend_views=agreeing))
    assert "## Configured vs observed" not in render_summary(_context(backend_views=()))


def test_report_without_backends_says_so() -> None:
    assert "No backend is known" in render_report(_context(backend_views=()))


def test_hostile_names_in_the_backend_rows_stay_text() -> None:
    # Given a target host / CommonName and a certificate subject an attacker chose
    report = render_report(_context(backend_views=_views(HOSTILE)))
    summary = render_summary(_context(backend_views=_views(HOSTILE)))
    # Then they are escaped wherever the rows show them, and the page stays well-formed
    assert "<script" not in report
    assert "\\<script\\>" in summary and not re.search(r"(?<!\\)<", summary)
    assert "CommonName &lt;script&gt;alert(1)&lt;/script&gt;" in report
    assert "CN=&lt;script&gt;alert(1)&lt;/script&gt;" in report
    checker = _TagBalance()
    checker.feed(report)
    assert (checker.errors, checker.open) == ([], [])


def test_hosts_table_marks_each_status_and_keeps_the_word_in_the_title() -> None:
    report = render_report(_context())
    assert ('<td class="cell failed" title="backend1 / connect: failed">✗</td>') in report
    assert '<th class="step">start-capture</th>' in report
    assert "✓ ok · ✗ failed · – skipped · n/a not-applicable · empty: not run" in report

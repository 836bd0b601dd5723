"""report.html in a real browser (Debian's chromium, headless): the page renders (a screenshot that is not
blank and shows the inline style), its layout fits the page width at 1280 px and at a phone's width with many
hosts x steps (wide tables scroll inside their container, never the page), and names an attacker chose stay
text.

Chromium reads the page from a file with networking off; a measuring script is added to a copy of the page
(report.html itself carries no script) and writes what it measured into the DOM that `--dump-dom` prints.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from collector.bundle.checklist import Symptom, build_checklist
from collector.bundle.report import ReportContext, render_report
from collector.diagnosis.backend_view import backend_views
from collector.diagnosis.causes.registry import report_for
from collector.diagnosis.diagnose import diagnose
from collector.diagnosis.inputs import load_evidence
from collector.diagnosis.targets import BackendTarget, ConfiguredTls
from collector.steps import Step, StepResult, StepStatus
from collector.tls.handshake import CertificateSummary, Outcome, ProbeResult
from tests.diagnosis.conftest import CAPTURES, FIXTURES

HOSTILE = '<img src=x onerror="document.title=\'pwned\'">'
WIDE = 1280
NARROW = 500  # chromium's narrowest window
HOSTS = 30
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars", "--mute-audio")
# Added to a copy of the page only. Every element outside a scroll container must end within the viewport;
# the hosts x steps table is measured against its container.
POLICY = "default-src 'none'; style-src 'unsafe-inline'"
# What a name that slipped past escaping would do; the page's policy must stop it.
BYPASS = """<script id="bypass">document.title = 'pwned';</script>\n"""
MEASURE = """<script id="measure-script" nonce="measure">
(function () {
  const root = document.documentElement;
  const box = document.getElementById('hosts-steps');
  const table = box.querySelector('table');
  let widest = 0;
  for (const el of document.body.querySelectorAll('*')) {
    const inside = el.parentElement && el.parentElement.closest('.wide');
    if (!inside) { widest = Math.max(widest, el.getBoundingClientRect().right); }
  }
  const out = {
    viewport: root.clientWidth, page: root.scrollWidth, widest: widest,
    box_right: box.getBoundingClientRect().right, box_width: box.clientWidth, box_scroll: box.scrollWidth,
    table_width: table.getBoundingClientRect().width, marked: document.querySelectorAll('tr.mismatch').length,
    injected: document.querySelectorAll(
      'img, iframe, object, embed, script:not(#measure-script):not(#bypass)').length,
    title: document.title, hostile_text: document.body.textContent.includes(HOSTILE_JSON),
  };
  const pre = document.createElement('pre');
  pre.id = 'measure';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
""".replace("HOSTILE_JSON", json.dumps(HOSTILE))


def _context() -> ReportContext:
    """A run's report: a real capture of an untrusted backend chain with the MP truststore, the proxy's target
    (its SSLInfo), 30 hosts x every step, and names an attacker chose (a host, a certificate, a log line)."""
    evidence = load_evidence([CAPTURES / "failures" / "server-certificate-untrusted-java-openssl-tls12.pcap"],
                             [FIXTURES / "truststores" / "caB.pem"])
    address, _, port = evidence.handshakes[0].server.rpartition(":")
    tls = ConfiguredTls(truststore="mp-truststore", truststore_reference="mp-truststore-ref",
                        protocols=("TLSv1.2", "TLSv1.3"), common_name="backend.lab")
    target = BackendTarget(address, int(port), name="default", url=f"https://{address}:{port}",
                           ssl_enabled=True, source="edge/resolution.json", tls=tls)
    hostile = replace(evidence.handshakes[0], server="10.6.6.6:443", sni=HOSTILE, frames=(1, 9),
                      server_chain=(CertificateSummary(f"CN={HOSTILE}", "CN=Evil CA"),))
    # The probe of the target from the first MP: it completed the handshake the MP refused (a probe does not
    # verify the chain)
    probed = replace(evidence.handshakes[0], alerts=(), outcome=Outcome.ESTABLISHED, source="probe",
                     frames=None)
    probe = ProbeResult(probed.server, None, "mp-00.dc0.example.internal", probed, "handshake completed")
    evidence = replace(evidence, targets=(target,), handshakes=(*evidence.handshakes, hostile),
                       probes=(probe,))
    diagnosis = diagnose(evidence)
    statuses = list(StepStatus)
    hosts = [f"mp-{n:02d}.dc{n % 3}.example.internal" for n in range(HOSTS - 1)] + [HOSTILE]
    steps = tuple(StepResult(host, step.value, statuses[(h + s) % len(statuses)], "x", f"{host} {step.value}")
                  for h, host in enumerate(hosts) for s, step in enumerate(Step))
    return ReportContext(
        org="org1", env="prod", proxy="weather-v2", cloud="private", diagnosis=diagnosis,
        cause_report=report_for(diagnosis.cause),
        symptom=Symptom(503, "messaging.adaptors.http.flow.ServiceUnavailable", "The Service is temporarily"
                        " unavailable", mp_log_line=f"2026-12-02 08:00:00 handshake failed {HOSTILE}"),
        case_id="12345", handshakes=evidence.handshakes, backend_views=backend_views(evidence),
        checklist=tuple(build_checklist("private", {}, {})), steps=steps,
        bundle_name="apigee-diag-org1-prod-weather-v2-20261202T080000Z", generated="2026-12-02T08:05:00Z")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """report.html with the measuring script added (it runs by its nonce only: the page's own policy still
    forbids every other script, the bypass stand-in included)."""
    report = render_report(_context())
    assert "<script" not in report and f'content="{POLICY}"' in report
    measured = tmp_path_factory.mktemp("report-browser") / "report.html"
    measured.write_text(report.replace(POLICY, POLICY + "; script-src 'nonce-measure'")
                        .replace("</body>", BYPASS + MEASURE + "</body>"), encoding="utf-8")
    return measured


@pytest.fixture(scope="module")
def wide(page: Path) -> tuple[dict[str, object], Path]:
    """One chromium run 1280 px wide: the measurement and a screenshot of the page's top."""
    shot = page.with_name("report.png")
    return _measure(page, WIDE, f"--screenshot={shot}"), shot


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed: scripts/setup.sh installs it (as root)")
    return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def _measure(page: Path, width: int, *more: str) -> dict[str, object]:
    done = _chromium(f"--window-size={width},1000", *more, "--dump-dom", page.as_uri(),
                     profile=page.with_name(f"profile-{width}"))
    found = re.search(r'<pre id="measure">(.*?)</pre>', done.stdout, re.S)
    assert found, f"chromium exited {done.returncode} without the measurement: {done.stderr[-2000:]}"
    return dict(json.loads(html.unescape(found.group(1))))


def test_the_layout_fits_at_1280_px(wide: tuple[dict[str, object], Path]) -> None:
    # Given the page with 30 hosts x every step, measured in chromium 1280 px wide
    m = wide[0]
    # Then nothing widens the page, and the hosts x steps table fits its container without scrolling
    assert m["viewport"] == WIDE
    assert m["page"] <= m["viewport"] and m["widest"] <= m["viewport"], m
    assert m["table_width"] <= m["box_width"] and m["box_scroll"] <= m["box_width"], m
    # And the configured-vs-observed table marks rows (the untrusted chain); hostile names stayed text, and a
    # script that got into the page anyway did not run (title unchanged)
    assert m["marked"] >= 1, m
    assert (m["injected"], m["title"], m["hostile_text"]) == (0, "apigee-collector: org1 / prod / weather-v2",
                                                              True), m


def test_a_narrow_page_scrolls_wide_tables_inside_their_container(page: Path) -> None:
    # Given the same page on a phone-wide window
    m = _measure(page, NARROW)
    # Then the page itself still does not scroll sideways: the hosts x steps table scrolls in its box
    assert m["viewport"] == NARROW
    assert m["page"] <= m["viewport"] and m["widest"] <= m["viewport"], m
    assert m["box_right"] <= m["viewport"] and m["box_scroll"] > m["box_width"], m


def test_the_screenshot_renders(wide: tuple[dict[str, object], Path]) -> None:
    # Given the screenshot chromium took of the page 1280 px wide
    shot = wide[1]
    assert shot.is_file(), "chromium wrote no screenshot"
    # When its pixels are read
    width, rows = _png_rows(shot.read_bytes(), limit=700)
    # Then it is the window's width, not blank (text and rules drawn), and the inline style applied: the
    # verdict's red border is there
    assert width == WIDE
    values = sum(len(row) for row in rows)
    ink = values - sum(row.count(255) for row in rows)
    assert ink > values // 100, f"{ink} of {values} colour values are not white"
    assert any(_has_pixel(row, b"\xb0\x00\x20") for row in rows), \
        "the verdict's border colour (#b00020) is not drawn"


def _has_pixel(row: bytearray, rgb: bytes) -> bool:
    at = row.find(rgb)
    while at >= 0 and at % 3:
        at = row.find(rgb, at + 1)
    return at >= 0


def _png_rows(data: bytes, limit: int) -> tuple[int, list[bytearray]]:
    """(width, the first `limit` rows as RGB bytes) of an 8-bit RGB or RGBA PNG (what chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), (depth, color)
    channels = 3 if color == 2 else 4
    stride = width * channels
    raw = zlib.decompressobj().decompress(b"".join(chunks), (stride + 1) * min(limit, height))
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(min(limit, height)):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        _unfilter(kind, line, previous, channels)
        rows.append(line if channels == 3 else bytearray(b for i, b in enumerate(line) if i % 4 != 3))
        previous = line
    return width, rows


def _unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> None:
    """Undo one PNG row filter in place (RFC 2083 6): None, Sub, Up, Average, Paeth."""
    if kind == 2:
        line[:] = bytes((a + b) & 255 for a, b in zip(line, previous, strict=True))
        return
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 255
        elif kind == 3:
            line[i] = (line[i] + ((left + previous[i]) >> 1)) & 255
        elif kind == 4:
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            guess = left + up - corner
            pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
            line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255

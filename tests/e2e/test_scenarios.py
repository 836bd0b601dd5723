"""The whole `collect` against every TLS-failure scenario of the lab, one real run each.

One lab (one MP, real sshd hosts, the emulator) is started for the module and switched from scenario to
scenario (`Lab.switch`: a new backend and MP simulator, the emulator serving the new SSLInfo), which costs a
couple of seconds instead of a new lab. Each run is the operator's text output, so the printed result is what
is checked; the bundle's SUMMARY.md, report.html and management-API documents are read from the archive.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collector import layout
from collector.diagnosis.causes.registry import report_for
from collector.diagnosis.verdict import Cause
from collector.edge.targets import parse_target_endpoint
from tests.conftest import traversable_directory
from tests.e2e.conftest import collect_args, run_collect_process
from tests.lab.lab import Lab, LabSpec, start_lab
from tests.lab.pki import LabPki
from tests.lab.scenarios import SCENARIOS, SSL_HANDSHAKE_FAILED, UNAVAILABLE, TargetTls

pytestmark = [pytest.mark.lab, pytest.mark.slow]

# The window only has to hold one curl through the MP: the capture stops by itself right after.
CAPTURE_SECONDS = 2
# (scenario, backend TLS version): protocol-mismatch in both directions.
RUNS = [
    ("server-certificate-untrusted", None),
    ("server-certificate-expired", None),
    ("server-hostname-mismatch", None),
    ("protocol-mismatch", "1.3"),
    ("protocol-mismatch", "1.2"),
    ("cipher-mismatch", None),
    ("sni-required", None),
    ("backend-not-tls", None),
    ("connection-refused", None),
]
IDS = [f"{name}-tls{tls}" if tls else name for name, tls in RUNS]
# The configured-vs-observed row each cause is about: report.html marks it, SUMMARY.md lists it.
MARKED_ROW = {"protocol-mismatch": "TLS versions", "cipher-mismatch": "Cipher suites",
              "sni-required": "SNI (server_name)", "server-certificate-untrusted": "Server certificate chain"}
MARKED_RUNS = [(name, tls) for name, tls in RUNS if name in MARKED_ROW]


@dataclass
class ScenarioRun:
    """One finished text-mode `collect` run and what the lab ran while it went."""

    scenario: str
    returncode: int
    stdout: str
    stderr: str
    bundle: Path | None
    target_tls: TargetTls
    mp_argv: list[str]
    response: str = ""

    def read(self, rel: str) -> bytes:
        assert self.bundle is not None, self.stdout + self.stderr
        with tarfile.open(self.bundle) as tar:
            top = tar.getmembers()[0].name.split("/", 1)[0]
            handle = tar.extractfile(f"{top}/{rel}")
            assert handle is not None, rel
            return handle.read()


@pytest.fixture(scope="module")
def switching_lab(lab_pki: LabPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    directory = traversable_directory("lab-scenarios")
    (tmp_path_factory.mktemp("lab-scenarios") / "lab").symlink_to(directory)
    lab = start_lab(LabSpec(scenario="healthy", message_processors=1, directory=directory,
                            pki_directory=lab_pki.directory))
    try:
        yield lab
    finally:
        lab.stop()
        if not os.environ.get("APIGEE_LAB_KEEP"):
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def scenario_run(switching_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`(scenario, tls_version) -> ScenarioRun`: the lab switched to it and `collect` run once, cached."""
    runs: dict[tuple[str, str | None], ScenarioRun] = {}

    def run(scenario: str, tls_version: str | None) -> ScenarioRun:
        if (scenario, tls_version) not in runs:
            lab = switching_lab
            lab.switch(scenario, tls_version=tls_version)
            out = tmp_path_factory.mktemp(f"collect-{scenario}")
            done = run_collect_process(lab, out, *collect_args(lab, capture_seconds=CAPTURE_SECONDS))
            bundle = next((Path(line.split(" ")[1]) for line in done.stdout.splitlines()
                           if line.startswith("bundle: ")), None)
            mp = lab.message_processors[0]
            assert mp.process is not None
            runs[scenario, tls_version] = ScenarioRun(
                scenario, done.returncode, done.stdout, done.stderr, bundle, lab.target_tls,
                [str(a) for a in mp.process.popen.args])
        return runs[scenario, tls_version]

    return run


@pytest.mark.parametrize("scenario, tls_version", RUNS, ids=IDS)
def test_the_run_names_the_cause_with_frame_evidence(scenario_run: Any, scenario: str,
                                                     tls_version: str | None) -> None:
    # Given the lab reproducing one MP -> backend TLS failure, When the whole collect runs against it,
    # Then it exits 0, prints the cause with evidence citing capture frames, and the bundle is complete.
    run = scenario_run(scenario, tls_version)
    assert run.returncode == 0, run.stdout + run.stderr
    cause = SCENARIOS[scenario].cause
    assert f"cause: {cause}\n" in run.stdout, run.stdout
    printed = run.stdout.split(f"cause: {cause}\n", 1)[1].split("\nfix: ", 1)[0]
    evidence = [line for line in printed.splitlines() if line.startswith("  - ")]
    assert any(line.startswith("  - frame ") for line in evidence), printed
    # Document-level: a line citing a bundle document (an Edge API document, the trace, the MP's log excerpt;
    # the terminal shows the first evidence lines only), and for the MP's refusal of the backend's chain,
    # the truststore document it was judged against.
    documents = (f"{layout.EDGE_DIR}/", layout.TRACE_SESSION, "hosts/mp1/system.log.excerpt")
    assert any(document in line for line in evidence for document in documents), printed
    if SCENARIOS[scenario].errorcode == SSL_HANDSHAKE_FAILED:
        assert any(f"{layout.EDGE_KEYSTORES_DIR}/myTruststore/" in line for line in evidence), printed
    assert run.bundle is not None and run.bundle.exists()
    assert f"bundle: {run.bundle} (complete)" in run.stdout
    assert json.loads(run.read(layout.ANALYSIS_DIAGNOSIS))["cause"] == cause


@pytest.mark.parametrize("scenario, tls_version", RUNS, ids=IDS)
def test_summary_and_report_name_the_cause(scenario_run: Any, scenario: str, tls_version: str | None) -> None:
    # Given the bundle, Then SUMMARY.md and report.html both carry the cause's heading and the frame evidence.
    run = scenario_run(scenario, tls_version)
    title = report_for(Cause(SCENARIOS[scenario].cause)).title
    summary = run.read(layout.SUMMARY).decode()
    report = run.read(layout.REPORT).decode()
    assert title in summary and "- frame " in summary
    assert title in report and "frame " in report
    # and both show the cause id, whatever the cause (the heading is the cause's, not "503 / bad_certificate")
    cause = SCENARIOS[scenario].cause
    assert f"\ncause: `{cause}`\n" in summary
    assert f'<p class="cause">cause: <code>{cause}</code></p>' in report
    assert summary.startswith(f"# Apigee Edge: {report_for(Cause(cause)).headline} (")


@pytest.mark.parametrize("scenario, tls_version", MARKED_RUNS,
                         ids=[f"{n}-tls{t}" if t else n for n, t in MARKED_RUNS])
def test_the_configured_vs_observed_table_marks_the_row_of_the_cause(scenario_run: Any, scenario: str,
                                                                      tls_version: str | None) -> None:
    # Given the bundle, Then report.html's per-backend table marks the row of the failing aspect (SSLInfo
    # beside what the wire or the probe showed), and SUMMARY.md lists that row among the marked ones.
    run = scenario_run(scenario, tls_version)
    aspect = MARKED_ROW[scenario]
    report = run.read(layout.REPORT).decode()
    marked = f'<tr class="mismatch"><th scope="row"><span class="mark" title="mismatch">≠</span> {aspect}'
    assert marked in report, report.split("<h2>Configured vs observed", 1)[1].split("<h2>", 1)[0]
    summary = run.read(layout.SUMMARY).decode()
    section = summary.split("## Configured vs observed\n", 1)[1].split("\n## ", 1)[0]
    assert any(line.startswith("- ") and f", {aspect}: **" in line for line in section.splitlines()), section


@pytest.mark.parametrize("scenario, tls_version", RUNS, ids=IDS)
def test_the_bundle_documents_describe_the_configuration_that_failed(scenario_run: Any, scenario: str,
                                                                     tls_version: str | None) -> None:
    # Given the run, Then the proxy bundle's SSLInfo and the truststore documents in the bundle are the TLS
    # setup the MP simulator ran (its command line), and the client got Edge's fault for this failure.
    run = scenario_run(scenario, tls_version)
    tls = run.target_tls
    with zipfile.ZipFile(io.BytesIO(run.read(layout.EDGE_PROXY_BUNDLE))) as archive:
        xml = archive.read("apiproxy/targets/default.xml")
    target = parse_target_endpoint(xml, "default", source=layout.EDGE_PROXY_BUNDLE)
    assert target.ssl is not None
    assert (target.ssl.protocols, target.ssl.ciphers) == (tls.protocols, tls.ciphers)
    # The collector does not read CommonName (yet): the XML itself must carry the name the MP checked.
    assert (b"<CommonName>" in xml) == bool(tls.common_name)
    assert tls.common_name is None or f"<CommonName>{tls.common_name}</CommonName>".encode() in xml
    argv = run.mp_argv
    assert argv[-3:] == [",".join(tls.protocols) or "-", ",".join(tls.ciphers) or "-", tls.common_name or "-"]
    assert argv[-10] == (tls.sni_name or "-")
    trusted = [name for name in ("caA", "caB")
               if f"{layout.EDGE_KEYSTORES_DIR}/myTruststore/certs/{name}-cert.json" in _members(run)]
    assert tuple(trusted) == tls.truststore
    response = run.read(layout.REQUEST_RESPONSE).decode()
    assert "503" in response
    expected = SCENARIOS[scenario].errorcode
    assert expected in response
    if expected == SSL_HANDSHAKE_FAILED:
        assert '"faultstring":"SSL Handshake failed ' in response
    else:
        assert expected == UNAVAILABLE and "The Service is temporarily unavailable" in response


@pytest.mark.parametrize("scenario, tls_version", RUNS, ids=IDS)
def test_the_bundle_verifies(scenario_run: Any, scenario: str, tls_version: str | None) -> None:
    # Given the bundle, When `collect verify` re-checks it, Then every checksum matches.
    run = scenario_run(scenario, tls_version)
    done = subprocess.run([sys.executable, "-m", "collector", "verify", str(run.bundle)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _members(run: ScenarioRun) -> set[str]:
    assert run.bundle is not None
    with tarfile.open(run.bundle) as tar:
        return {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}

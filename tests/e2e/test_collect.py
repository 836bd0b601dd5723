"""The whole `collect` against the lab: real sshd, tcpdump, TLS backends, MP simulators and
the API emulator."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector import layout
from tests.e2e.conftest import (
    collect_args,
    lab_roots_kept_traversable,
    resolved_inventory,
    run_collect_process,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]

CAUSES = [
    ("ca-mismatch", "ca-mismatch"),
    ("missing-client-certificate", "missing-client-certificate"),
    ("healthy", "handshake-ok"),
]
REQUIRED = [
    layout.SUMMARY, layout.REPORT, layout.MANIFEST, layout.REQUEST_COMMAND, layout.REQUEST_RESPONSE,
    layout.EDGE_DEPLOYMENTS, layout.EDGE_PROXY_BUNDLE, layout.EDGE_RESOLUTION, layout.EDGE_SOURCES,
    layout.reference_document("myKeystoreRef"), layout.keystore_document("myKeystore"), layout.TRACE_SESSION,
    layout.ANALYSIS_HANDSHAKES, layout.ANALYSIS_DIAGNOSIS,
    *(layout.host_file(h, f) for h in ("mp1", "mp2", "backend")
      for f in (layout.HOST_CAPTURE, layout.HOST_FACTS, layout.HOST_COMMANDS)),
    *(layout.host_file(h, f) for h in ("mp1", "mp2") for f in (layout.HOST_LOG_EXCERPT, layout.HOST_LOG)),
]


@pytest.mark.parametrize("scenario, cause", CAUSES, ids=[c[0] for c in CAUSES])
def test_cause_exit_code_and_bundle(collect_in_lab: Any, scenario: str, cause: str) -> None:
    # Given a lab scenario with the Java backend on TLS 1.2, When collect runs, Then it names the cause,
    # exits 0 and the bundle holds every layout path the run produces.
    run = collect_in_lab(scenario)
    assert run.returncode == 0, run.stderr
    assert run.result["diagnosis"]["cause"] == cause
    assert run.result["complete"] is True
    members = run.members()
    missing = [p for p in REQUIRED if p not in members]
    assert not missing, missing
    assert any(p.startswith(f"{layout.TRACE_DIR}/") and p != layout.TRACE_SESSION for p in members)
    assert json.loads(run.read(layout.ANALYSIS_DIAGNOSIS))["cause"] == cause


def test_ca_mismatch_names_the_issuer_and_the_acceptable_ca(collect_in_lab: Any) -> None:
    # Given the ca-mismatch lab, Then the evidence names the keystore leaf's issuer and the backend's
    # CA names.
    evidence = "\n".join(collect_in_lab("ca-mismatch").result["diagnosis"]["evidence"])
    assert "CN=Lab CA B" in evidence and "CN=Lab CA A" in evidence


@pytest.mark.parametrize("scenario", [c[0] for c in CAUSES])
def test_manifest_checksums_verify(collect_in_lab: Any, scenario: str) -> None:
    # Given a finished bundle, When `collect verify` re-checks it, Then every checksum matches.
    run = collect_in_lab(scenario)
    done = subprocess.run([sys.executable, "-m", "collector", "verify", str(run.bundle)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads(run.read(layout.MANIFEST))
    assert {f["path"] for f in manifest["files"]} == set(run.members()) - {layout.MANIFEST}


@pytest.mark.parametrize("scenario", [c[0] for c in CAUSES])
def test_summary_checklist_is_collected(collect_in_lab: Any, scenario: str) -> None:
    # Given a complete private-cloud run, Then every must-gather item of SUMMARY.md is marked collected.
    summary = collect_in_lab(scenario).read(layout.SUMMARY).decode()
    for item in ("Complete error message observed", "API proxy bundle", "Trace file showing the error",
                 "Message Processor logs", "TCP/IP packets captured",
                 "Output of the Get cert for keystore API"):
        line = next(line for line in summary.splitlines() if line.startswith(f"| {item}"))
        assert "| collected |" in line, line


@pytest.mark.parametrize("scenario", [c[0] for c in CAUSES])
def test_no_seeded_secret_anywhere_and_files_private(collect_in_lab: Any, lab_factory: Any,
                                                     scenario: str) -> None:
    # Given the password and the token seeded in the environment and in the operator's curl, Then neither
    # is in any bundle file, the tar, or the terminal output; every file is 0600 and the archive too.
    run = collect_in_lab(scenario)
    lab = lab_factory(scenario)
    raw = run.raw_tar()
    for secret in (lab.password, lab.token):
        assert secret.encode() not in raw
        assert secret not in run.stdout and secret not in run.stderr
    assert all(m.mode == 0o600 for m in run.members().values())
    assert run.bundle.stat().st_mode & 0o777 == 0o600
    command = run.read(layout.REQUEST_COMMAND).decode()
    assert "curl" in command and lab.reproduction_url in command


def test_analyze_of_the_bundle_agrees(collect_in_lab: Any) -> None:
    # Given the bundle, When `collect analyze BUNDLE --json` reads it offline, Then it names the same cause.
    run = collect_in_lab("ca-mismatch")
    done = subprocess.run([sys.executable, "-m", "collector", "analyze", str(run.bundle), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["diagnosis"]["cause"] == "ca-mismatch"


def test_openssl_backend(collect_in_lab: Any) -> None:
    # Given an OpenSSL backend (it answers handshake_failure, not bad_certificate), Then still ca-mismatch.
    run = collect_in_lab("ca-mismatch", "openssl", "1.2")
    assert run.returncode == 0, run.stderr
    assert run.result["diagnosis"]["cause"] == "ca-mismatch"


def test_tls13_is_diagnosed_through_the_probe(collect_in_lab: Any) -> None:
    # Given TLS 1.3 (the CertificateRequest is encrypted), When collect runs, Then it probes the backend by
    # itself and the probe's CA names decide ca-mismatch.
    run = collect_in_lab("ca-mismatch", "java", "1.3")
    assert run.returncode == 0, run.stderr
    assert run.result["diagnosis"]["cause"] == "ca-mismatch"
    assert layout.PROBE_RESULTS in run.members()
    assert any(s["step"] == "probe" and s["status"] == "ok" for s in run.result["steps"])
    assert "CN=Lab CA A" in json.dumps(json.loads(run.read(layout.PROBE_RESULTS)))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_host_that_is_down_makes_the_bundle_partial(lab_factory: Any, tmp_path: Path) -> None:
    # Given an inventory with one more MP that is down, When collect runs (text output),
    # Then exit 3, that host's connect failed, and everything else was collected and diagnosed.
    lab = lab_factory("ca-mismatch")
    inventory = yaml.safe_load(resolved_inventory(lab).read_text())
    inventory["hosts"]["mp9"] = {"address": "127.0.0.250", "port": _closed_port(),
                                 "role": "message-processor"}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inventory))
    args = collect_args(lab)
    args[args.index("--inventory") + 1] = str(path)
    run = run_collect_process(lab, tmp_path / "out", *args, "--keep-directory")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "cause: ca-mismatch" in run.stdout
    assert "failed: mp9 -> connect" in run.stdout
    assert "(partial)" in run.stdout
    bundle = Path(next(line.split(" ")[1] for line in run.stdout.splitlines() if line.startswith("bundle: ")))
    manifest_steps = _manifest(bundle)["steps"]
    assert {"host": "mp9", "step": "connect", "status": "failed"}.items() <= next(
        s for s in manifest_steps if s["host"] == "mp9" and s["step"] == "connect").items()
    assert any(s["host"] == "mp1" and s["step"] == "fetch-capture" and s["status"] == "ok"
               for s in manifest_steps)
    kept = Path(next(line.split(" ")[1] for line in run.stdout.splitlines()
                     if line.startswith("directory: ")))
    assert (kept / layout.SUMMARY).is_file() and kept.stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in kept.rglob("*") if p.is_file())


def _manifest(bundle: Path) -> dict[str, Any]:
    import tarfile

    with tarfile.open(bundle) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/" + layout.MANIFEST))
        handle = tar.extractfile(member)
        assert handle is not None
        return json.loads(handle.read())


def test_interrupt_stops_captures_and_writes_a_partial_bundle(lab_factory: Any, tmp_path: Path) -> None:
    # Given a long capture window, When the operator presses Ctrl-C (SIGINT) during it, Then every capture is
    # stopped and removed on the hosts, a partial bundle is written, and the exit code is 3.
    lab = lab_factory("ca-mismatch")
    out = tmp_path / "out"
    out.mkdir()
    args = collect_args(lab, reproduce=False, capture_seconds=60) + ["--json", "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIGEE_")}
    env.update(HOME=str(out), APIGEE_PASSWORD=lab.password)
    with lab_roots_kept_traversable(lab):
        process = subprocess.Popen([sys.executable, "-m", "collector", *args], env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        seen = []
        deadline = time.monotonic() + 60
        for line in process.stderr:  # progress lines, plain because stderr is not a terminal
            seen.append(line)
            if "capture window is open" in line or time.monotonic() > deadline:
                break
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 3, "".join(seen) + stderr
    result = json.loads(stdout)
    assert result["interrupted"] is True and Path(result["bundle"]).exists()
    assert result["complete"] is False and _manifest(Path(result["bundle"]))["complete"] is False
    for host in lab.ssh.hosts:
        leftovers = [p.name for p in host.capture_dir.glob("apigee-collector-*")]
        assert not leftovers, (host.name, leftovers)


def test_dry_run_only_reads(lab_factory: Any, tmp_path: Path) -> None:
    # Given --dry-run, When collect runs, Then only GET calls reach the API, nothing is written, and the plan
    # names the MPs, the backend with its port, the keystore/alias/truststore and the exact tcpdump command.
    lab = lab_factory("ca-mismatch")
    before = len(lab.emulator.requests)
    sessions = list(lab.emulator.sessions())
    run = run_collect_process(lab, tmp_path, *collect_args(lab, reproduce=False), "--dry-run")
    assert run.returncode == 0, run.stderr
    methods = {method for method, _path in lab.emulator.requests[before:]}
    assert methods == {"GET"}
    assert lab.emulator.sessions() == sessions
    assert not list(tmp_path.glob("apigee-diag-*")) and not list(tmp_path.glob(".apigee-diag-*"))
    plan = run.stdout
    for fact in ("127.0.0.11", "127.0.0.12", f"{lab.backend.address}:{lab.backend.port}",
                 "keystore=myKeystore", "key_alias=myKey", "truststore=myTruststore",
                 "[start-capture] sudo -n -- sh -c",
                 f"and port {lab.backend.port}"):
        assert fact in plan, fact
    assert not [p for h in lab.ssh.hosts for p in h.capture_dir.glob("apigee-collector-*")]


def test_public_cloud_backend_only(lab_factory: Any, tmp_path: Path) -> None:
    # Given Public Cloud (no SSH to MPs, no MP addresses) and an inventory with the backend only, When
    # collect runs with a token, Then the backend still captures the MP traffic on its port, the cause is
    # named, and the Public Cloud checklist is complete.
    lab = lab_factory("ca-mismatch")
    inventory = yaml.safe_load(resolved_inventory(lab).read_text())
    inventory["hosts"] = {"backend": inventory["hosts"]["backend"]}
    path = tmp_path / "backend-only.yaml"
    path.write_text(yaml.safe_dump(inventory))
    args = collect_args(lab, auth="token")
    args[args.index("--inventory") + 1] = str(path)
    run = run_collect_process(lab, tmp_path / "out", *args, "--public-cloud", "--json", auth="token")
    assert run.returncode == 0, run.stderr
    assert run.result["diagnosis"]["cause"] == "ca-mismatch"
    assert layout.host_file("backend", layout.HOST_CAPTURE) in run.members()
    summary = run.read(layout.SUMMARY).decode()
    assert "(Public Cloud)" in summary
    assert "| TCP/IP packets captured on the backend server | collected |" in summary
    assert lab.token.encode() not in run.raw_tar() and lab.password.encode() not in run.raw_tar()


def test_target_server_style_and_every_layout_path(collect_in_lab: Any, lab_factory: Any,
                                                   tmp_path: Path) -> None:
    # Given a proxy whose target names a target server (sSLInfo there), When collect runs, Then it resolves
    # the keystore through it and names missing-client-certificate; and every path collector/layout.py
    # defines appears in one of the e2e bundles (the golden listing: paths, not times). RAW_ names are the
    # raw collection's (collect package --from), which tests/playbooks and tests/fabric check.
    lab = lab_factory("missing-client-certificate", "java", "1.2", 1, target_style="target-server")
    run = run_collect_process(lab, tmp_path, *collect_args(lab), "--json")
    assert run.returncode == 0, run.stderr
    assert run.result["diagnosis"]["cause"] == "missing-client-certificate"
    seen = set(run.members())
    for other in (collect_in_lab("ca-mismatch"), collect_in_lab("ca-mismatch", "java", "1.3")):
        seen |= set(other.members())
    constants = {value for name, value in vars(layout).items()
                 if name.isupper() and isinstance(value, str) and not name.startswith(("HOST_", "RAW_"))}
    host_files = {layout.HOST_CAPTURE, layout.HOST_LOG_EXCERPT, layout.HOST_LOG, layout.HOST_FACTS,
                  layout.HOST_COMMANDS}
    for path in sorted(constants):
        if path.endswith((".json", ".md", ".html", ".txt", ".zip")):
            assert path in seen, path
        else:  # a folder
            assert any(p.startswith(path + "/") for p in seen), path
    for name in host_files:
        assert any(p.startswith(layout.HOSTS_DIR + "/") and p.endswith("/" + name) for p in seen), name


def test_no_api_collects_on_the_hosts_and_says_what_is_missing(lab_factory: Any, tmp_path: Path) -> None:
    # Given --no-api with the backend given by hand, When collect runs, Then the hosts are captured, the
    # cause is "not sent" (no keystore documents to tell the two causes apart), and SUMMARY.md marks the
    # API items missing.
    lab = lab_factory("ca-mismatch")
    args = ["--no-api", "--backend", f"{lab.backend.address}:{lab.backend.port}",
            "--inventory", str(resolved_inventory(lab)), "--known-hosts", str(lab.known_hosts),
            "--capture-seconds", "3", "--url", lab.reproduction_url, "--json"]
    run = run_collect_process(lab, tmp_path, *args)
    assert run.returncode == 0, run.stderr
    assert run.result["diagnosis"]["cause"] == "client-certificate-not-sent"
    assert layout.host_file("backend", layout.HOST_CAPTURE) in run.members()
    summary = run.read(layout.SUMMARY).decode()
    line = next(line for line in summary.splitlines() if line.startswith("| API proxy bundle"))
    assert "**missing**" in line and "--no-api" in line


def test_the_annotated_capture_shows_the_evidence_in_wireshark(collect_in_lab: Any, tmp_path: Path) -> None:
    # Given the ca-mismatch bundle (real tcpdump on both MPs and the backend)
    run = collect_in_lab("ca-mismatch")
    server = run.result["diagnosis"]["backend"].split(" ")[0]
    annotated = tmp_path / "annotated.pcapng"
    annotated.write_bytes(run.read(layout.annotated_capture(server)))
    # When tshark reads its annotated capture, Then each host that captured the backend is an interface and
    # the CertificateRequest, the empty Certificate and the backend's alert are commented
    done = subprocess.run(["tshark", "-r", str(annotated), "-T", "fields", "-e", "frame.interface_name",
                           "-e", "frame.comment"], capture_output=True, text=True, timeout=60, check=True)
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    assert {"mp1", "backend"} <= {r[0] for r in rows}
    comments = {r[1] for r in rows if r[1]}
    assert any(c.startswith("CertificateRequest: acceptable CA names CN=Lab CA A") for c in comments)
    assert "empty client Certificate: the message processor sent no certificate" in comments
    assert "fatal alert bad_certificate (42) from the backend" in comments
    # and `collect analyze` names the same cause from it as from the hosts' own captures
    captures = []
    for rel in run.members():
        if rel.endswith(layout.HOST_CAPTURE):
            captures.append(tmp_path / rel.replace("/", "_"))
            captures[-1].write_bytes(run.read(rel))
    causes = []
    for files in ([annotated], captures):
        analyzed = subprocess.run([sys.executable, "-m", "collector", "analyze", *map(str, files), "--json"],
                                  capture_output=True, text=True, timeout=120, check=False)
        assert analyzed.returncode == 0, analyzed.stderr
        causes.append(json.loads(analyzed.stdout)["diagnosis"]["cause"])
    assert causes[0] == causes[1]

"""Issue 16 through the real `collect` against the lab: secrets hidden by a log's shape (NUL bytes, a
pcap-like start, UTF-16) or in the formats the rules once missed; a file that cannot be redacted; management
API answers that are huge, endless or trickling; Ctrl-C before any bundle; runs sharing a second; bundles
packed again by hand."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import signal
import subprocess
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from collector import layout
from tests.e2e.conftest import lab_roots_kept_traversable
from tests.reliability.conftest import (
    FaultLab,
    Run,
    base_args,
    bundle_texts,
    capture_dirs,
    command,
    no_traceback,
    run_collect,
    run_dirs,
    running_captures,
    stop_leftover_captures,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]

# Secrets hidden by the shape of mp1's log (S08).
SHAPED = {
    "nul-first": "rel16-Nul-Pw-8c1e",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJyZWwxNi1qd3QtOWQyZiJ9.c2lnLXJlbDE2",
    "basic": "cmVsMTY6QmFzaWMtUHctM2E3Yg==",
    "utf16": "rel16-Utf16-Pw-5b9d",
}
# Secrets in the forms the rules once missed (S09): the MP log and the proxy bundle.
GAPS = {
    "aws-key-id": "AKIAREL16AWSKEY7F2QX",
    "aws-secret": "rel16AwsSecret/K7MDENG/bPxRfiCYEXAMPLE4",
    "keytool": "rel16-Keytool-Sp-2d4f",
    "jdbc": "rel16-Jdbc-Pwd-6a8c",
    "javacallout": "rel16-Callout-Kp-1e3g",
    "properties": "rel16-Props-Ks-9h0j",
    "js": "rel16-Js-Var-4k5m",
    "js-call": "rel16-Js-Call-7n8p",
}
UNREDACTABLE = "rel16-Deep-Gzip-Pw-3q4r"  # in mp2's log, gzip'd six times over (S10)


def _shaped_log(original: bytes) -> bytes:
    """mp1's log as a crash could leave it: a pcap-like start and NUL bytes in its first 8 KB, then secrets in
    plain and UTF-16 lines, then the log as it was."""
    s, g = SHAPED, GAPS
    lines = (
        f"2026-11-27 10:00:00,000 NIOThread@1 INFO CONFIG - keystore login password={s['nul-first']}\n"
        f"2026-11-27 10:00:00,001 NIOThread@1 DEBUG HTTP - token {s['jwt']} verified\n"
        f"2026-11-27 10:00:00,002 NIOThread@1 DEBUG HTTP - outbound Authorization: Basic {s['basic']}\n"
        f"2026-11-27 10:00:00,003 NIOThread@1 INFO AWS - using {g['aws-key-id']}\n"
        f"2026-11-27 10:00:00,004 NIOThread@1 INFO AWS - aws_secret_access_key = {g['aws-secret']}\n"
        f"2026-11-27 10:00:00,005 NIOThread@1 INFO SSL - keytool -list -storepass {g['keytool']}\n"
        f"2026-11-27 10:00:00,006 NIOThread@1 INFO DB - jdbc:sqlserver://db:1433;user=sa;pwd={g['jdbc']};x=1\n"
    ).encode()
    utf16 = f"2026-11-27 10:00:00,007 WARN DUMP - password={s['utf16']}\n".encode("utf-16-le")
    return b"\xd4\xc3\xb2\xa1" + b"\x00" * 4092 + b"\n" + lines + utf16 + b"\n" + original


def _proxy_bundle_with_gaps(valid: bytes) -> bytes:
    g = GAPS
    callout = (
        '<JavaCallout name="SignRequest">\n  <Properties>\n'
        f'    <Property name="storepass">{g["javacallout"]}</Property>\n'
        f'    <Property name="keypass">{g["javacallout"]}</Property>\n'
        '    <Property name="alias">signer</Property>\n  </Properties>\n'
        '  <ClassName>com.example.Sign</ClassName>\n</JavaCallout>\n'
    )
    script = (f"var user = 'app';\nvar dbPassword = '{g['js']}';\n"
              f"context.setVariable(\"private.secret\", \"{g['js-call']}\");\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(valid)) as src, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("apiproxy/policies/SignRequest.xml", callout)
        dst.writestr("apiproxy/resources/properties/keystore.properties",
                     f"keystore.path=/opt/k.jks\nkeystore.pass={g['properties']}\n")
        dst.writestr("apiproxy/resources/jsc/creds.js", script)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def hardening_run(fault_lab: FaultLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    lab = fault_lab.lab
    mp1_log, mp2_log = (Path(mp.log_path) for mp in lab.message_processors[:2])
    saved = {path: path.read_bytes() for path in (mp1_log, mp2_log)}
    mp1_log.write_bytes(_shaped_log(saved[mp1_log]))
    deep = f"2026-11-27 10:00:00,000 INFO CONFIG - password={UNREDACTABLE}\n".encode()
    for _ in range(6):
        deep = gzip.compress(deep)
    mp2_log.write_bytes(deep)
    original = lab.emulator.config
    lab.emulator.config = dataclasses.replace(original, proxy_bundle=_proxy_bundle_with_gaps(
        lab.emulator._bundle_zip()))
    try:
        run = run_collect(lab, tmp_path_factory.mktemp("hardening-run") / "out", *base_args(lab), "--json",
                          "--reproduce", f"curl -sS {lab.reproduction_url}")
    finally:
        lab.emulator.config = original
        for path, data in saved.items():  # the lab is shared: give the MPs their logs back
            path.write_bytes(data)
    no_traceback(run)
    yield run


def _nowhere(run: Run, secrets: dict[str, str]) -> None:
    texts = bundle_texts(run.bundle)
    raw = run.bundle.read_bytes()
    for kind, secret in secrets.items():
        for needle in (secret.encode(), secret.encode("utf-16-le")):
            assert needle not in raw and needle not in gzip.decompress(raw), kind
            found = [n for n, data in texts.items() if needle in data or needle in data.replace(b"\0", b"")]
            assert found == [], kind
        assert secret not in run.terminal, kind


def _rules_for(run: Run, prefix: str) -> set[str]:
    return {r["rule"] for r in run.manifest()["redactions"]["records"] if r["file"].startswith(prefix)}


def test_s08_log_shapes_never_switch_redaction_off(hardening_run: Run) -> None:
    # Given mp1's log starting like a pcap with NUL bytes in its first 8 KB and a UTF-16 line
    # Then it is in the bundle, redacted by every rule (not kept as a capture, not treated as binary)
    _nowhere(hardening_run, SHAPED)
    log = gzip.decompress(hardening_run.read(layout.host_file("mp1", layout.HOST_LOG)))
    assert log.startswith(b"\xd4\xc3\xb2\xa1\x00") and b"password=REDACTED" in log
    assert {"secret-parameter", "jwt", "authorization"} <= _rules_for(
        hardening_run, layout.host_file("mp1", layout.HOST_LOG))
    assert hardening_run.step("mp1", "logs")["status"] == "ok"


def test_s09_formats_the_rules_once_missed(hardening_run: Run) -> None:
    # Given AWS keys, keytool and JDBC passwords in the log, and a JavaCallout policy, a .properties file and
    # JavaScript holding passwords in the proxy bundle
    # Then none of them is in the bundle, and the proxy bundle is still usable
    _nowhere(hardening_run, GAPS)
    with zipfile.ZipFile(io.BytesIO(hardening_run.read(layout.EDGE_PROXY_BUNDLE))) as archive:
        callout = archive.read("apiproxy/policies/SignRequest.xml").decode()
        assert "apiproxy/targets/default.xml" in archive.namelist()
    assert '<Property name="alias">signer</Property>' in callout
    assert "secret-format" in _rules_for(hardening_run, layout.host_file("mp1", layout.HOST_LOG))
    assert {"header-property", "secret-parameter"} <= _rules_for(hardening_run, layout.EDGE_PROXY_BUNDLE)


def test_s10_a_file_that_cannot_be_redacted_stays_out_and_is_named(hardening_run: Run) -> None:
    # Given mp2's log gzip'd six times over (deeper than anything is peeled)
    # Then that file is not in the bundle, the failure is in the manifest and SUMMARY.md; the run is partial
    assert hardening_run.returncode == 3, hardening_run.terminal
    _nowhere(hardening_run, {"deep": UNREDACTABLE})
    assert layout.host_file("mp2", layout.HOST_LOG) not in hardening_run.members()
    failed = [s for s in hardening_run.failed("mp2") if s["reason"] == "unredactable"]
    assert failed and layout.host_file("mp2", layout.HOST_LOG) in failed[0]["message"], hardening_run.steps()
    assert "levels deep" in failed[0]["message"]
    assert layout.host_file("mp2", layout.HOST_LOG) in hardening_run.read(layout.SUMMARY).decode()
    assert layout.host_file("mp1", layout.HOST_LOG) in hardening_run.members()  # the rest is there
    assert hardening_run.leftovers() == []


# --- the management API ------------------------------------------------------------------------------------


@pytest.fixture
def lab(fault_lab: FaultLab) -> Iterator[Any]:
    yield fault_lab.lab
    fault_lab.lab.emulator.clear_faults()
    stop_leftover_captures(capture_dirs(fault_lab.lab.ssh))


def _deployments(lab: Any) -> str:
    return f"/v1/organizations/{lab.org}/environments/{lab.env}/apis/{lab.proxy}/deployments"


@pytest.mark.parametrize(("fault", "words", "extra"), [
    pytest.param(lambda lab: lab.emulator.oversize(_deployments(lab), 200 * 1024 * 1024),
                 "larger than 64 MiB", (), id="F21-huge"),
    pytest.param(lambda lab: lab.emulator.endless(_deployments(lab)), "larger than 64 MiB", (),
                 id="F21-endless"),
    # a byte every 2 s: each read comes well within the 6 s, only the whole answer's deadline can end it
    pytest.param(lambda lab: lab.emulator.trickle(_deployments(lab), 2.0, times=1), "",
                 ("--api-timeout", "6"), id="F21-trickle"),
])
def test_f21_unbounded_management_api_answers(lab: Any, tmp_path: Path, fault: Callable[[Any], None],
                                              words: str, extra: tuple[str, ...]) -> None:
    # Given the deployments document answered with 200 MB, an endless chunked body, or (once) a byte every 2 s
    fault(lab)
    started = time.monotonic()
    run = run_collect(lab, tmp_path / "out", *base_args(lab), "--json", "--no-trace", *extra)
    no_traceback(run)
    resolve = run.step("edge", "resolve")
    if words:
        # Then resolve fails at once naming the URL and the limit; the hosts are still captured; exit 3
        assert run.returncode == 3, run.terminal
        assert resolve["status"] == "failed" and words in resolve["message"], resolve
        assert "/deployments" in resolve["message"]
        assert layout.EDGE_DEPLOYMENTS not in run.members()
    else:
        # Then the trickling attempt ends at the --api-timeout deadline and the retry gets the document
        assert run.returncode == 0, run.terminal
        assert resolve["status"] == "ok" and 6 <= resolve["seconds"] < 30, resolve
    assert time.monotonic() - started < 150
    assert run.leftovers() == []


def test_f22_ctrl_c_before_any_bundle(lab: Any, tmp_path: Path) -> None:
    # Given a run stuck in resolve (the deployments answer takes 60 s)
    lab.emulator.delay(_deployments(lab), 60, times=1)
    out = tmp_path / "out"
    out.mkdir()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("APIGEE_")}
    environment.update(HOME=str(tmp_path), APIGEE_PASSWORD=lab.password)
    # Earlier tests asked the shared lab for the deployments too: wait for this run's own request.
    asked_before = len(lab.emulator.requests_to(_deployments(lab)))
    with lab_roots_kept_traversable(lab):
        process = subprocess.Popen([*command(), *base_args(lab), "--json", "--out", str(out)],
                                   env=environment, cwd=out, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while (len(lab.emulator.requests_to(_deployments(lab))) == asked_before
               and time.monotonic() < deadline):
            time.sleep(0.1)
        time.sleep(0.5)
        # When the operator presses Ctrl-C
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    # Then the documented code 130, one line saying so, and nothing left in --out or on the hosts
    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert list(out.iterdir()) == []
    dirs = capture_dirs(lab.ssh)
    assert not running_captures(dirs) and not run_dirs(dirs)


def test_f23_runs_in_the_same_second_each_write_a_bundle(lab: Any, tmp_path: Path) -> None:
    # Given bundles of earlier runs already standing in --out under every second's name of the next minutes
    out = tmp_path / "out"
    out.mkdir()
    now = time.time()
    name = "apigee-diag-{}-{}-{}-".format(*(layout.safe_component(x) for x in (lab.org, lab.env, lab.proxy)))
    stamps = [time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now + i)) for i in range(240)]
    earlier = [out / f"{name}{stamp}.tar.gz" for stamp in stamps]
    for path in earlier:
        path.write_bytes(b"an earlier bundle")
    # When two runs start at once into that --out
    environment = {k: v for k, v in os.environ.items() if not k.startswith("APIGEE_")}
    environment.update(HOME=str(tmp_path), APIGEE_PASSWORD=lab.password)
    argv = [*command(), *base_args(lab), "--json", "--no-trace", "--out", str(out)]
    with lab_roots_kept_traversable(lab):
        processes = [subprocess.Popen(argv, env=environment, cwd=out, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(2)]
        results = [p.communicate(timeout=180) for p in processes]
    # Then each wrote its own bundle under a name of its own and printed its JSON; nothing earlier changed
    bundles = []
    for process, (stdout, stderr) in zip(processes, results, strict=True):
        assert "Traceback" not in stderr
        assert process.returncode == 0, stdout + stderr
        bundles.append(Path(json.loads(stdout)["bundle"]))
    assert len(set(bundles)) == 2 and all(b.is_file() and b.parent == out for b in bundles)
    assert all(b.name not in {p.name for p in earlier} for b in bundles)
    assert all(p.read_bytes() == b"an earlier bundle" for p in earlier)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    for bundle in bundles:
        verify = subprocess.run([*command(), "verify", str(bundle)], capture_output=True, text=True,
                                check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr


def test_h18_hand_packed_bundle_is_verified_and_traversal_still_refused(hardening_run: Run,
                                                                         tmp_path: Path) -> None:
    # Given the run's bundle unpacked and packed again by hand from inside its folder (`tar -C NAME .`)
    with tarfile.open(hardening_run.bundle) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    folder = next((tmp_path / "x").iterdir())
    repacked = tmp_path / "repacked.tar.gz"
    subprocess.run(["tar", "-C", str(folder), "-czf", str(repacked), "."], check=True)
    # When verified, Then it is accepted (./SUMMARY.md is inside the bundle)
    ok = subprocess.run([*command(), "verify", str(repacked)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # And a ./-rooted archive with a member climbing out is still refused in one line
    hostile = tmp_path / "hostile.tar.gz"
    with tarfile.open(repacked) as src, tarfile.open(hostile, "w:gz") as dst:
        for member in src:
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        escape = tarfile.TarInfo("./../escape.txt")
        escape.size = 1
        dst.addfile(escape, io.BytesIO(b"x"))
    refused = subprocess.run([*command(), "verify", str(hostile)], capture_output=True, text=True,
                             check=False)
    assert refused.returncode == 2 and "unsafe member name" in refused.stderr, refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert not (tmp_path / "escape.txt").exists()

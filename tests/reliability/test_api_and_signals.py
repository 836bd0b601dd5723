"""Management API faults (500s, a hang, a non-JSON answer) and the collector itself receiving SIGINT, SIGTERM
or SIGKILL during the capture window, through the real `collect` against the lab."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector import layout
from tests.e2e.conftest import lab_roots_kept_traversable
from tests.reliability.conftest import (
    CAPTURE_MARGIN_SECONDS,
    FaultLab,
    Run,
    base_args,
    capture_dirs,
    command,
    during_window,
    no_traceback,
    run_collect,
    run_dirs,
    running_captures,
    stop_leftover_captures,
)
from tests.remote.conftest import processes_with

pytestmark = [pytest.mark.lab, pytest.mark.slow]

HOSTS = ("mp1", "mp2", "backend")
WINDOW_SECONDS = 30  # long enough that every signal lands inside the window


@pytest.fixture
def lab(fault_lab: FaultLab) -> Iterator[Any]:
    """The shared lab with its emulator faults cleared afterwards (and captures stopped if a test
    left any)."""
    yield fault_lab.lab
    fault_lab.lab.emulator.clear_faults()
    stop_leftover_captures(capture_dirs(fault_lab.lab.ssh))


def _hosts_collected(run: Run) -> None:
    members = run.members()
    for host in HOSTS:
        assert run.step(host, "fetch-capture")["status"] == "ok", run.step(host, "fetch-capture")
        assert layout.host_file(host, layout.HOST_CAPTURE) in members
        assert layout.host_file(host, layout.HOST_FACTS) in members


def _api_run(lab: Any, tmp_path: Path, *extra: str) -> Run:
    args = base_args(lab) + ["--reproduce", f"curl -sS {lab.reproduction_url}", "--json", *extra]
    run = run_collect(lab, tmp_path / "out", *args)
    no_traceback(run)
    assert run.returncode == 3, run.terminal
    assert run.leftovers() == []
    _hosts_collected(run)
    return run


def test_f08_management_api_answering_500(lab: Any, tmp_path: Path) -> None:
    lab.emulator.fail("/v1", 500, times=None)
    run = _api_run(lab, tmp_path)
    resolve = run.step("edge", "resolve")
    assert resolve["status"] == "failed" and "500" in resolve["message"], resolve
    assert "resolve" in run.read(layout.SUMMARY).decode()


def test_f09_management_api_hanging(lab: Any, tmp_path: Path) -> None:
    # The debug session's POST gets no answer: it is not retried (it may have created a session), the run
    # goes on after the client's timeout (--api-timeout 5, not the default 30: the same path, 25 s sooner)
    # and the window still opens.
    lab.emulator.delay(f"/v1/organizations/{lab.org}/environments/{lab.env}/apis/{lab.proxy}/revisions/"
                       f"{lab.revision}/debugsessions", 8, times=1)
    started = time.monotonic()
    run = _api_run(lab, tmp_path, "--api-timeout", "5")
    start = run.step("edge", "start-trace")
    assert start["status"] == "failed" and "no answer within 5 s" in start["message"], start
    assert 5 <= start["seconds"] < 8, start
    assert time.monotonic() - started < 60
    assert run.step("edge", "resolve")["status"] == "ok"
    assert json.loads(run.stdout)["diagnosis"]["cause"] == "ca-mismatch"


def test_f10_management_api_invalid_json(lab: Any, tmp_path: Path) -> None:
    lab.emulator.invalid_json(f"/v1/organizations/{lab.org}/environments/{lab.env}/apis/{lab.proxy}/deployments",
                              times=None)
    run = _api_run(lab, tmp_path)
    resolve = run.step("edge", "resolve")
    assert resolve["status"] == "failed" and "JSON" in resolve["message"], resolve


def _window_args(lab: Any) -> list[str]:
    return base_args(lab, capture_seconds=WINDOW_SECONDS) + ["--json"]


@pytest.mark.parametrize("signum", [
    pytest.param(signal.SIGINT, id="F11-sigint"),
    pytest.param(signal.SIGTERM, id="F12-sigterm"),
])
def test_graceful_signal_stops_captures_and_writes_a_partial_bundle(lab: Any, tmp_path: Path,
                                                                    signum: int) -> None:
    run = during_window(lab, tmp_path / "out", _window_args(lab), lambda p: p.send_signal(signum))
    no_traceback(run)
    assert run.returncode == 3, run.terminal
    result = json.loads(run.stdout)
    assert result["interrupted"] is True and result["complete"] is False
    assert Path(result["bundle"]) == run.bundle
    assert run.manifest()["complete"] is False
    assert run.step("local", "collect")["reason"] == "interrupted"
    for host in HOSTS:
        assert layout.host_file(host, layout.HOST_CAPTURE) in run.members()
    dirs = capture_dirs(lab.ssh)
    assert not running_captures(dirs)
    assert not run_dirs(dirs)
    assert run.leftovers() == []


def test_f13_sigkill_leaves_no_bundle_under_the_final_name_and_bounded_captures(
    lab: Any, tmp_path: Path
) -> None:
    run = during_window(lab, tmp_path / "out", _window_args(lab), lambda p: p.kill())
    assert run.returncode == -signal.SIGKILL
    assert run.archives == []
    assert all(name.startswith(".") for name in run.leftovers())  # only the private partial/raw dirs
    assert not [p for p in run.out.iterdir() if p.name.startswith("apigee-diag-")]
    dirs = capture_dirs(lab.ssh)
    captures = running_captures(dirs)
    assert len(captures) == len(HOSTS), captures  # the collector is gone; the dead-man switch is not
    for capture in captures:
        assert capture.wrapper_pid is not None, capture
        assert capture.limit_seconds is not None
        assert capture.limit_seconds <= WINDOW_SECONDS + CAPTURE_MARGIN_SECONDS, capture


def test_f15_second_sigint_while_stopping(lab: Any, tmp_path: Path) -> None:
    # An impatient operator presses Ctrl-C again while the captures are being stopped.
    def twice(process: Any) -> None:
        process.send_signal(signal.SIGINT)
        time.sleep(0.7)
        process.send_signal(signal.SIGINT)

    run = during_window(lab, tmp_path / "out", _window_args(lab), twice)
    no_traceback(run)
    assert run.returncode in (1, 3, 130), run.terminal
    if run.returncode == 3:
        assert run.manifest()["complete"] is False
    else:
        assert run.archives == []
    dirs = capture_dirs(lab.ssh)
    assert not running_captures(dirs)
    assert not run_dirs(dirs)
    assert run.leftovers() == []


@pytest.fixture
def full_out(tmp_path: Path) -> Iterator[Path]:
    """An output directory on a 1 MiB tmpfs: room to start, not for the captures and logs of a run."""
    out = tmp_path / "full-out"
    out.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(out)], check=True,
                   capture_output=True)
    try:
        yield out
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False, capture_output=True)


def test_f16_output_directory_full(lab: Any, full_out: Path) -> None:
    mp1_log = Path(lab.message_processors[0].log_path)
    size = mp1_log.stat().st_size
    with mp1_log.open("ab") as log:  # more log than the output can hold
        log.write(os.urandom(1536 * 1024).hex().encode() + b"\n")
    args = base_args(lab) + ["--reproduce", f"curl -sS {lab.reproduction_url}", "--json"]
    try:
        run = run_collect(lab, full_out, *args)
    finally:
        os.truncate(mp1_log, size)  # the lab is shared
    no_traceback(run)
    assert "internal error" not in run.terminal
    assert run.returncode in (1, 3), run.terminal
    if run.returncode == 1:
        assert run.archives == [] and "No space left on device" in run.stderr, run.stderr
    else:
        assert run.manifest()["complete"] is False
    assert run.leftovers() == []  # no half-written bundle, no raw working directory
    dirs = capture_dirs(lab.ssh)
    assert not running_captures(dirs)
    assert not run_dirs(dirs)


def test_f24_sigint_while_logs_are_redacted_leaves_no_worker_and_no_bundle(lab: Any, tmp_path: Path) -> None:
    # Given MPs with a large rotated log (gzip'd: ~9 MB on disk, redacted by worker processes, not the run)
    rng = random.Random(15)
    text = "".join(f"2026-12-02 12:00:00,000 messageid:rrt-{rng.getrandbits(128):032x} INFO step done\n"
                   for _ in range(220_000)).encode()
    planted = []
    for host in lab.ssh.hosts:
        if host.role == "message-processor":
            rotated = host.system_log.with_name("system.log.1.gz")
            rotated.write_bytes(gzip.compress(text, compresslevel=1))
            shutil.copystat(host.system_log, rotated)
            stat = host.system_log.stat()
            os.chown(rotated, stat.st_uid, stat.st_gid)
            planted.append(rotated)
    try:
        out = tmp_path / "out"
        out.mkdir()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("APIGEE_")}
        environment.update(HOME=str(tmp_path), APIGEE_PASSWORD=lab.password)
        with lab_roots_kept_traversable(lab):
            process = subprocess.Popen([*command(), *base_args(lab), "--json", "--out", str(out)],
                                       env=environment, cwd=out, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            assert process.stderr is not None
            seen = []
            for line in process.stderr:  # When Ctrl-C comes while the workers redact the logs
                seen.append(line)
                if line.startswith("collect: analyze:"):
                    break
            workers = processes_with("collector.bundle.workers")
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=120)
    finally:
        for rotated in planted:
            rotated.unlink()
    run = Run(process.returncode, stdout, "".join(seen) + stderr, out)
    no_traceback(run)
    assert workers, "the logs were not given to redaction workers: " + run.terminal
    # Then no worker outlives the run, and no partial bundle or working directory is left
    assert processes_with("collector.bundle.workers") == []
    assert run.returncode == 130, run.terminal  # interrupted with no bundle written
    assert json.loads(run.stdout)["bundle"] is None
    assert run.leftovers() == [] and run.archives == []

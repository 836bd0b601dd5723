"""Faults through the real `collect`: one run against the lab plus eight faulty hosts (down, wrong client key,
changed host key, unknown host key, no tcpdump, no sudo, full capture dir, SSH link dropped mid-capture);
each fault is recorded, every other host's data is there, exit 3, and the hosts are left clean."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from collector import layout
from tests.reliability.conftest import (
    FaultLab,
    Run,
    base_args,
    capture_dirs,
    during_window,
    no_traceback,
    run_dirs,
    running_captures,
    sshd_sessions,
    stop_leftover_captures,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]

CAPTURE_SECONDS = 3
HEALTHY = ("mp1", "mp2", "backend")


@pytest.fixture(scope="module")
def fault_run(fault_lab: FaultLab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The one faulty run; the drop host's SSH sessions are SIGKILLed once the window is open."""
    lab = fault_lab.lab
    args = base_args(lab, fault_lab.inventory, fault_lab.known_hosts, CAPTURE_SECONDS)
    args += ["--reproduce", f"curl -sS {lab.reproduction_url}", "--json", "--keep-directory"]
    dropped: list[int] = []
    # What the dropped host still runs and holds right after the run (the collector connects again to stop,
    # fetch and clean up: nothing).
    after: dict[str, Any] = {}

    def drop_link(_process: subprocess.Popen[str]) -> None:
        for pid in sshd_sessions(fault_lab.hosts, "mp-drop"):
            os.kill(pid, signal.SIGKILL)
            dropped.append(pid)

    run = during_window(lab, tmp_path_factory.mktemp("fault-run") / "out", args, drop_link)
    drop_dir = [Path(os.path.realpath(fault_lab.hosts.host("mp-drop").capture_dir))]
    after["drop_captures"] = running_captures(drop_dir)
    after["drop_run_dirs"] = run_dirs(drop_dir)
    after["lab_captures"] = running_captures(capture_dirs(lab.ssh) + capture_dirs(fault_lab.hosts)[:-1])
    after["run_dirs"] = [p for p in run_dirs(fault_lab.all_capture_dirs)
                         if not str(p).startswith(str(drop_dir[0]))]
    stop_leftover_captures(drop_dir)
    return {"run": run, "dropped": dropped, **after}


def _run(fault_run: dict[str, Any]) -> Run:
    run = fault_run["run"]
    assert run.returncode == 3, run.terminal
    no_traceback(run)
    return run


def _healthy_hosts_collected(run: Run) -> None:
    members = run.members()
    for host in HEALTHY:
        assert run.step(host, "fetch-capture")["status"] == "ok"
        assert layout.host_file(host, layout.HOST_CAPTURE) in members
    for host in ("mp1", "mp2"):
        assert layout.host_file(host, layout.HOST_LOG) in members
    assert run.manifest()["complete"] is False
    assert '"cause": "ca-mismatch"' in run.stdout


def _fault_recorded(run: Run, host: str, step: str, reason: str) -> dict[str, Any]:
    record = run.step(host, step)
    assert record["status"] == "failed", record
    assert record["reason"] == reason, record
    assert host in record["message"], record
    summary = run.read(layout.SUMMARY).decode()
    assert host in summary
    _healthy_hosts_collected(run)
    return record


@pytest.mark.parametrize("host, step, reason", [
    pytest.param("mp-down", "connect", "unreachable", id="F01-host-unreachable"),
    pytest.param("mp-wrongkey", "connect", "auth-refused", id="F02-authentication-refused"),
    pytest.param("mp-nosudo", "start-capture", "sudo-denied", id="F04-sudo-denied"),
    pytest.param("mp-notcpdump", "start-capture", "tcpdump-missing", id="F05-tcpdump-missing"),
    pytest.param("mp-full", "start-capture", "disk-full", id="F06-capture-dir-full"),
])
def test_host_fault_is_recorded_and_the_rest_collected(fault_run: dict[str, Any], host: str, step: str,
                                                       reason: str) -> None:
    _fault_recorded(_run(fault_run), host, step, reason)


def test_f03_changed_host_key_is_refused_naming_host_and_fingerprints(fault_run: dict[str, Any],
                                                                      fault_lab: FaultLab) -> None:
    record = _fault_recorded(_run(fault_run), "mp-newkey", "connect", "host-key-mismatch")
    host = fault_lab.hosts.host("mp-newkey")
    assert host.address in record["message"]
    assert record["message"].count("SHA256:") >= 2, record  # the offered key and the one expected
    assert "CHANGED" in record["message"]
    offered = subprocess.run(["ssh-keygen", "-lf", str(fault_lab.hosts.workdir / "sshd" / "mp-newkey" /
                                                     "host_ed25519.pub")],
                             capture_output=True, text=True, check=True).stdout.split()[1]
    assert offered in record["message"]


def test_k01_unknown_host_key_is_refused_without_the_flag(
    fault_run: dict[str, Any], fault_lab: FaultLab
) -> None:
    record = _fault_recorded(_run(fault_run), "mp-unknown", "connect", "host-key-unknown")
    assert "SHA256:" in record["message"] and "--accept-new-host-keys" in record["message"]
    assert f"[{fault_lab.hosts.host('mp-unknown').address}]" not in fault_lab.known_hosts.read_text()


def test_f07_ssh_link_dropped_mid_capture(fault_run: dict[str, Any]) -> None:
    run = _run(fault_run)
    assert fault_run["dropped"], "no SSH session of mp-drop was found to drop"
    # The collector connects again (with the same host-key checks) once the link is gone: the capture is
    # stopped, fetched and removed like any other host's, and commands.log says so.
    for step in ("start-capture", "stop-capture", "fetch-capture", "logs", "facts"):
        assert run.step("mp-drop", step)["status"] == "ok", run.step("mp-drop", step)
    audit = run.read(layout.host_file("mp-drop", layout.HOST_COMMANDS)).decode()
    assert "the SSH connection was lost; connecting again" in audit, audit
    _healthy_hosts_collected(run)
    # Nothing is orphaned on the host: no tcpdump, no run dir.
    assert not fault_run["drop_captures"], fault_run["drop_captures"]
    assert not fault_run["drop_run_dirs"], fault_run["drop_run_dirs"]


def test_f14_graceful_end_leaves_no_tcpdump_and_no_files_on_reachable_hosts(
    fault_run: dict[str, Any]
) -> None:
    run = _run(fault_run)
    assert not fault_run["lab_captures"], fault_run["lab_captures"]
    assert not fault_run["run_dirs"], fault_run["run_dirs"]
    assert run.leftovers() == [], run.leftovers()  # no partial bundle, no raw working directory

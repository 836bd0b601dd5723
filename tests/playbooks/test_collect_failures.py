"""collect.yml when hosts fail: one without tcpdump, one unreachable; the others go on and the package
says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector import layout
from tests.playbooks.conftest import PlaybookRun, clean_up_run, run_package, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.fixture(scope="module")
def failing_run(lab_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlaybookRun]:
    """mp2 with a tcpdump that does not exist, mp9 whose SSH port is closed, no backend host (addresses
    given), no reproduction URL and no prompt (a timed window of one second), no ansible_user."""
    lab = lab_factory("ca-mismatch")

    def edit(document: dict[str, Any]) -> None:
        groups = document["all"]["children"]
        mps = groups["message_processors"]["hosts"]
        del mps["mp1"]
        mps["mp2"]["collector_tcpdump"] = "/nonexistent/tcpdump"
        mps["mp9"] = {"ansible_host": "127.0.0.1", "ansible_port": 1}
        groups["backends"]["hosts"] = {}
        # The login user from ssh's own option, not ansible_user: the playbook then asks the host (`id -un`).
        host_vars = document["all"]["vars"]
        host_vars["ansible_ssh_common_args"] += f" -o User={host_vars.pop('ansible_user')}"

    extra = [
        "-e",
        f"backend_addresses={lab.backend.address}",
        "-e",
        "wait_for_operator=false",
        "-e",
        "capture_seconds=1",
        "-e",
        "message_ids=rrt-not-in-the-log",
    ]
    run = run_playbook(lab, tmp_path_factory.mktemp("ansible-failing"), extra, edit)
    try:
        yield run
    finally:
        clean_up_run(run)


def _steps(run: PlaybookRun, host: str) -> dict[str, dict[str, Any]] | None:
    entry = next(h for h in run.record["hosts"] if h["name"] == host)
    return None if entry["steps"] is None else {s["step"]: s for s in entry["steps"]}


def test_ansible_reports_the_unreachable_host(failing_run: PlaybookRun) -> None:
    # Then ansible-playbook ends with its "unreachable" code, after the rest of the play ran.
    assert failing_run.done.returncode == 4, failing_run.done.stdout[-3000:]
    assert (failing_run.out / "collection.json").is_file()


def test_missing_tcpdump_is_named_and_the_rest_goes_on(failing_run: PlaybookRun) -> None:
    steps = _steps(failing_run, "mp2")
    assert steps is not None
    start = steps["start-capture"]
    assert (start["status"], start["reason"]) == ("failed", "tcpdump-missing")
    assert "mp2 -> start-capture: " in start["message"] and "/nonexistent/tcpdump" in start["message"]
    assert "stop-capture" not in steps and "fetch-capture" not in steps
    assert steps["logs"]["status"] == "ok" and steps["facts"]["status"] == "ok"
    out = failing_run.out
    assert not (out / layout.host_file("mp2", layout.HOST_CAPTURE)).exists()
    assert (out / layout.host_file("mp2", layout.HOST_LOG)).stat().st_size > 0
    assert (out / layout.host_file("mp2", layout.HOST_LOG_EXCERPT)).read_text() == ""  # grep found no line
    commands = (out / layout.host_file("mp2", layout.HOST_COMMANDS)).read_text()
    assert " id -un\n" in commands and "exit=127 " in commands  # the start script: tcpdump not found


def test_unreachable_host_has_no_steps(failing_run: PlaybookRun) -> None:
    # Ansible drops an unreachable host from the play (no rescue, no always): its record stays empty.
    assert not _steps(failing_run, "mp9")


def test_nothing_is_left_after_a_failed_start(failing_run: PlaybookRun) -> None:
    run_id = failing_run.record["run_id"]
    host = failing_run.lab.ssh.host("mp2")  # type: ignore[union-attr]
    assert not list(Path(host.capture_dir).resolve().glob(f"apigee-collector-{run_id}*"))
    for directory in (failing_run.remote_tmp, failing_run.async_dir):
        assert not ([p for p in directory.rglob("*") if p.is_file()] if directory.exists() else [])


def test_package_is_partial_and_names_each_failure(failing_run: PlaybookRun, tmp_path: Path) -> None:
    # When the collection is packaged without the management API, Then the bundle is written, the exit code is
    # 3 and the steps carry the playbook's failures (the unreachable host as a failed connect).
    lab = failing_run.lab
    run = run_package(
        lab,
        failing_run.out,
        tmp_path,
        "--no-api",
        "--backend",
        f"{lab.backend.address}:{lab.backend.port}",
        "--no-probe",
    )
    assert run.done.returncode == 3, run.done.stdout + run.done.stderr
    steps = {(s["host"], s["step"]): s for s in run.result["steps"]}
    assert steps[("mp9", "connect")]["reason"] == "unreachable"
    assert steps[("mp2", "start-capture")]["reason"] == "tcpdump-missing"
    assert steps[("local", "reproduce")]["status"] == "not-applicable"
    assert run.result["diagnosis"]["cause"] == "no-tls-handshake"

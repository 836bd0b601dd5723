"""The whole host-side collection on a lab of real sshd hosts, with one fault per host: each recorded, the
rest collected; a SIGKILLed collector leaves no tcpdump behind once the capture's own time limit passes."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from collector import layout
from collector.inventory import load_inventory
from collector.progress import RecordingObserver
from collector.remote.connection import ConnectionSettings
from collector.remote.fleet import Fleet
from collector.run import _close
from collector.run.context import RunContext
from collector.settings import RunSettings
from collector.steps import Step, StepResult, StepStatus
from tests.lab.sshd import NOSUDO_USER, SshHosts, SshHostSpec, start_ssh_hosts
from tests.remote.conftest import BACKEND, MP1, MP2, processes_with, tls_request

pytestmark = pytest.mark.lab

MESSAGE_ID = "rrt-0c2f0a1e1d2c3b4a5-b-gce-1234-5678"
FAULTS = {  # host -> (address, the step that fails, its reason)
    "mp-down": ("127.0.5.51", "connect", "unreachable"),
    "mp-wrong-key": ("127.0.5.52", "connect", "auth-refused"),
    "mp-new-key": ("127.0.5.53", "connect", "host-key-mismatch"),
    "mp-no-tcpdump": ("127.0.5.54", "start-capture", "tcpdump-missing"),
    "mp-no-sudo": ("127.0.5.55", "start-capture", "sudo-denied"),
    "mp-full": ("127.0.5.56", "start-capture", "disk-full"),
}
HEALTHY = {"mp1": (MP1, "message-processor"), "mp2": (MP2, "message-processor"), "be1": (BACKEND, "backend")}


def _write_logs(log: Path, lines: int) -> None:
    """A system.log with the failing message id in the current file and in a gzipped rotation."""
    log.parent.mkdir(parents=True, exist_ok=True)
    line = "2026-11-27 10:00:00,000 org:o env:e api:p rev:1 messageid:{} NIOThread@0 INFO x - filler {}\n"
    failing = (
        "2026-11-27 10:00:01,000 org:o env:e api:p rev:1 messageid:" + MESSAGE_ID + " NIOThread@0 ERROR "
        "HTTP.CLIENT - HTTPClient$Context.handshakeFailed() : handshake failed, message: Received fatal "
        "alert: bad_certificate\n"
    )
    with gzip.open(log.with_name("system.log.1.gz"), "wt") as rotated:
        rotated.writelines(line.format("old", i) for i in range(lines))
        rotated.write(failing)
    log.write_text("".join(line.format("new", i) for i in range(lines)) + failing)
    os.utime(log.with_name("system.log.1.gz"), (time.time() - 3600, time.time() - 3600))


@pytest.fixture(scope="module")
def fault_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SshHosts, Path]]:
    root = tmp_path_factory.mktemp("fleet-lab")
    specs = [
        SshHostSpec(name, address, role, root / "roots" / name) for name, (address, role) in HEALTHY.items()
    ]
    specs += [
        SshHostSpec(name, address, "message-processor", root / "roots" / name)
        for name, (address, _, _) in FAULTS.items()
    ]
    with start_ssh_hosts(root / "lab", specs) as hosts:
        for host in hosts.hosts:
            if host.role == "message-processor":
                _write_logs(host.system_log, 2000)
        hosts.stop_host("mp-down")
        hosts.fill_capture_dir("mp-full")
        inventory = hosts.write_inventory(
            root / "hosts.yaml",
            overrides={
                "mp-wrong-key": {"identity_file": str(hosts.wrong_client_key())},
                "mp-no-tcpdump": {"tcpdump": "/nonexistent/tcpdump"},
                "mp-no-sudo": {"user": NOSUDO_USER},
            },
        )
        hosts.write_known_hosts_with_wrong_key(root / "known_hosts", ["mp-new-key"])
        yield hosts, inventory


def _by_host(results: list[StepResult], step: str) -> dict[str, StepResult]:
    return {r.host: r for r in results if r.step == step}


def test_every_fault_is_recorded_and_the_rest_collected(
    fault_lab: tuple[SshHosts, Path], tmp_path: Path, tls_backend: tuple[str, int]
) -> None:
    hosts, inventory_path = fault_lab
    inventory = load_inventory(inventory_path)
    settings = ConnectionSettings(
        known_hosts=inventory_path.parent / "known_hosts",
        connect_timeout=5,
        command_timeout=30,
        host_deadline=120,
    )
    events: list[tuple[str, str, str]] = []
    staging = tmp_path / "bundle"
    run_id = "fleettest1"
    delivered: dict[str, bytes] = {}  # what each delivered file held when the run was told it was ready
    with Fleet(
        inventory.hosts, settings, staging, run_id, observer=lambda *e: events.append(e), workers=4,
        delivered=lambda rel: delivered.setdefault(rel, (staging / rel).read_bytes()),
    ) as fleet:
        connected = _by_host(fleet.connect(), "connect")
        started = _by_host(
            fleet.start_captures([BACKEND], [MP1, MP2], tls_backend[1], max_seconds=60, max_megabytes=5),
            "start-capture",
        )
        assert len(processes_with(run_id)) >= 3  # every healthy host's capture runs before the reproduction
        for mp in (MP1, MP2):
            assert tls_request(mp, tls_backend).endswith(b"ok")
        stopped = fleet.stop_captures()
        gathered = fleet.gather([MESSAGE_ID], budget_bytes=100_000, context_lines=2)
        logs, facts = _by_host(gathered, "logs"), _by_host(gathered, "facts")
        # every host's logs, then every host's facts, in inventory order (as the manifest lists them)
        assert [(r.step, r.host) for r in gathered] == [
            (step, h.name) for step in ("logs", "facts") for h in inventory.hosts
        ]
    fleet.close()  # idempotent

    by_step = {"connect": connected, "start-capture": started}
    for name, (_, step, reason) in FAULTS.items():
        failed = by_step[step]
        assert failed[name].status is StepStatus.FAILED, failed[name]
        assert failed[name].reason == reason
        assert name in failed[name].message
    for name in HEALTHY:
        assert connected[name].status is StepStatus.OK
        assert started[name].status is StepStatus.OK
        assert _by_host(stopped, "fetch-capture")[name].status is StepStatus.OK
        assert facts[name].status is StepStatus.OK
        assert json.loads((staging / layout.host_file(name, layout.HOST_FACTS)).read_text())["host"] == name
    assert started["mp-down"].status is StepStatus.SKIPPED and started["mp-down"].reason == "not-connected"
    assert logs["be1"].status is StepStatus.NOT_APPLICABLE
    # Hosts whose capture could not start still give their logs (the fault was tcpdump's, not SSH's).
    for name in ("mp1", "mp2", "mp-no-tcpdump", "mp-no-sudo", "mp-full"):
        assert logs[name].status is StepStatus.OK, logs[name]
        excerpt = (staging / layout.host_file(name, layout.HOST_LOG_EXCERPT)).read_text()
        assert excerpt.count("bad_certificate") == 2  # the current file and the gzipped rotation
        kept = gzip.decompress((staging / layout.host_file(name, layout.HOST_LOG)).read_bytes())
        assert len(kept) == 100_000 and kept.endswith(b"bad_certificate\n")

    backend_capture = subprocess.run(
        ["tcpdump", "-nn", "-r", str(staging / layout.host_file("be1", layout.HOST_CAPTURE))],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"{MP1}." in backend_capture and f"{MP2}." in backend_capture
    for mp in ("mp1", "mp2"):
        text = subprocess.run(
            ["tcpdump", "-nn", "-r", str(staging / layout.host_file(mp, layout.HOST_CAPTURE))],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"{BACKEND}.{tls_backend[1]}" in text
    for name in [*HEALTHY, *FAULTS]:
        audit = (staging / layout.host_file(name, layout.HOST_COMMANDS)).read_text()
        assert audit.strip(), name
    for path in staging.rglob("*"):
        assert path.is_dir() or path.stat().st_mode & 0o777 == 0o600, path  # bundle files are private
    assert (
        "connect failed: unreachable"
        in (staging / layout.host_file("mp-down", layout.HOST_COMMANDS)).read_text()
    )
    assert not processes_with(run_id)
    for host in hosts.hosts:
        assert not list(host.capture_dir.glob(f"*{run_id}*")), host.name
    assert ("mp1", "start-capture", "started") in events
    # Every fetched capture and log was announced once complete (the run starts redacting it then)
    fetched = {layout.host_file(name, layout.HOST_CAPTURE) for name in HEALTHY}
    fetched |= {layout.host_file(name, layout.HOST_LOG)
                for name in ("mp1", "mp2", "mp-no-tcpdump", "mp-no-sudo", "mp-full")}
    assert set(delivered) == fetched
    for rel, data in delivered.items():
        assert (staging / rel).read_bytes() == data, rel


def test_close_stops_captures_still_running(fault_lab: tuple[SshHosts, Path], tmp_path: Path) -> None:
    hosts, inventory_path = fault_lab
    inventory = load_inventory(inventory_path)
    healthy = [h for h in inventory.hosts if h.name in HEALTHY]
    settings = ConnectionSettings(known_hosts=hosts.known_hosts, connect_timeout=5)
    fleet = Fleet(healthy, settings, tmp_path, "fleettest2")
    fleet.connect()
    results = fleet.start_captures([BACKEND], [MP1, MP2], None, max_seconds=60, max_megabytes=5)
    assert all(r.status is StepStatus.OK for r in results)
    assert processes_with("fleettest2")
    fleet.close()
    fleet.close()
    assert not processes_with("fleettest2")
    for host in hosts.hosts:
        assert not list(host.capture_dir.glob("*fleettest2*"))


def test_close_reports_what_it_cleaned_up_and_the_run_records_it(
    fault_lab: tuple[SshHosts, Path], tmp_path: Path
) -> None:
    # Given captures still running when the run ends (an interrupt before the stop), When the run closes the
    # fleet, Then close() reports one cleanup per capture it removed, and the run records them (it returned
    # None and the run recorded `close() or []`: nothing).
    hosts, inventory_path = fault_lab
    healthy = [h for h in load_inventory(inventory_path).hosts if h.name in HEALTHY]
    fleet = Fleet(healthy, ConnectionSettings(known_hosts=hosts.known_hosts, connect_timeout=5), tmp_path,
                  "fleetclose1")
    ctx = RunContext(RunSettings(org="o", env="e", proxy="p"), RecordingObserver(), tmp_path, "fleetclose1",
                     fleet=fleet)
    fleet.connect()
    assert all(r.status is StepStatus.OK
               for r in fleet.start_captures([BACKEND], [MP1, MP2], None, max_seconds=60, max_megabytes=5))
    _close(ctx)
    assert sorted((s.host, s.step, s.status) for s in ctx.steps) == sorted(
        (name, Step.CLEANUP, StepStatus.OK) for name in HEALTHY
    )
    assert not processes_with("fleetclose1") and fleet.close() == []


_COLLECTOR = """
import sys, time
from dataclasses import replace
from pathlib import Path
from collector.inventory import load_inventory
from collector.remote.connection import ConnectionSettings
from collector.remote.fleet import Fleet
inventory = load_inventory(Path(sys.argv[1]))
hosts = [h for h in inventory.hosts if h.name in ("mp1", "mp2", "be1")]
fleet = Fleet(hosts, ConnectionSettings(known_hosts=Path(sys.argv[2])), Path(sys.argv[3]), "fleetkill")
fleet.connect()
results = fleet.start_captures(["127.0.5.21"], ["127.0.5.11", "127.0.5.12"], None, max_seconds=3)
print(" ".join(r.status.value for r in results), flush=True)
time.sleep(600)
"""


def test_killed_collector_leaves_no_tcpdump_after_the_time_limit(
    fault_lab: tuple[SshHosts, Path], tmp_path: Path
) -> None:
    hosts, inventory_path = fault_lab
    collector = subprocess.Popen(
        [sys.executable, "-c", _COLLECTOR, str(inventory_path), str(hosts.known_hosts), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert collector.stdout is not None
        assert collector.stdout.readline().split() == ["ok", "ok", "ok"]
        collector.send_signal(signal.SIGKILL)
        collector.wait()
        # The collector is gone; the captures are not (yet): only their own `timeout` can end them now.
        assert any(
            b"tcpdump" in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in processes_with("fleetkill")
        )
        deadline = time.monotonic() + 3 + 10
        while processes_with("fleetkill") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not processes_with("fleetkill")
    finally:
        if collector.poll() is None:
            collector.kill()
            collector.wait()


def test_plan_commands_render_what_a_run_sends() -> None:
    # Given one MP and one backend / When the dry-run plan is built (remote/host_steps.py's plan_host)
    from collector.inventory import hosts_from_addresses
    from collector.remote.commands import render
    from collector.remote.host_steps import SPECS, Channel, RunInputs, plan_host

    hosts = (
        *hosts_from_addresses(["10.0.0.11"], "message-processor"),
        *hosts_from_addresses(["10.0.1.5"], "backend"),
    )
    inputs = RunInputs("r1", ("10.0.1.5",), ("10.0.0.11",), 443, capture_seconds=30, message_ids=("rrt-'x",))
    plan = {
        host.name: [render(c.argv) for c in plan_host(host, inputs, False)
                    if SPECS[c.command].channel is not Channel.SFTP]  # shell commands only (no SFTP get)
        for host in hosts
    }
    # Then the MP captures the backend and gathers logs; the backend captures the MP and has no log commands
    mp, backend = plan["10.0.0.11"], plan["10.0.1.5"]
    assert mp[0].startswith("sudo -n -- sh -c ") and mp[0].endswith("'(' host 10.0.1.5 ')' and port 443")
    assert backend[0].endswith("'(' host 10.0.0.11 ')' and port 443")
    assert len(mp) == 8 and len(backend) == 5
    assert any("'rrt-'\"'\"'x'" in line for line in mp)


def test_host_deadline_fails_the_step_not_the_run(fault_lab: tuple[SshHosts, Path], tmp_path: Path) -> None:
    hosts, inventory_path = fault_lab
    healthy = [h for h in load_inventory(inventory_path).hosts if h.name in HEALTHY]
    settings = ConnectionSettings(known_hosts=hosts.known_hosts, host_deadline=0.001)
    with Fleet(healthy, settings, tmp_path, "fleettest3") as fleet:
        assert all(r.status is StepStatus.OK for r in fleet.connect())
        results = fleet.gather_facts()
    assert [(r.status, r.reason) for r in results] == [(StepStatus.FAILED, "timeout")] * len(healthy)


def test_connection_storm_past_max_startups_is_retried(tmp_path: Path) -> None:
    # One sshd that drops every unauthenticated connection beyond 2, and 8 hosts connecting through it at once
    spec = SshHostSpec("storm", "127.0.5.71", "message-processor", tmp_path / "roots" / "storm")
    with start_ssh_hosts(tmp_path / "lab", [spec], max_startups="2:100:2") as lab:
        (host,) = load_inventory(lab.write_inventory(tmp_path / "hosts.yaml")).hosts
        many = [replace(host, name=f"storm{i}") for i in range(8)]
        settings = ConnectionSettings(known_hosts=lab.known_hosts, connect_timeout=10)
        with Fleet(many, settings, tmp_path / "out", "fleetstorm", workers=8) as fleet:
            results = fleet.connect()
        log = (lab.workdir / "sshd" / "storm" / "sshd.log").read_text()
    assert [r.status for r in results] == [StepStatus.OK] * 8, results
    assert "past MaxStartups" in log  # some first attempts were dropped, and retried

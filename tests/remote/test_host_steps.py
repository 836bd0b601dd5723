"""Host-step specs: every command the run sends is the one the dry-run plan prints (on real sshd hosts), and
the specs cover every command, role and bundle file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector import layout
from collector.edge.resolve import Backend
from collector.inventory import Inventory, InventoryHost, hosts_from_addresses, load_inventory
from collector.progress import RecordingObserver
from collector.remote import host_steps
from collector.remote.commands import render
from collector.remote.host_steps import SPECS, Channel, HostCommand, RunInputs, plan_host
from collector.run.analysis import _probe_via_mp
from collector.run.context import RunContext
from collector.run.plan import build_plan
from collector.run.raw_collection import HOST_FILES
from collector.run.stages import connect_hosts, gather, plan_hosts, start_captures, stop_captures
from collector.settings import RunSettings
from collector.steps import Step, StepStatus
from tests.lab.sshd import SshHosts, SshHostSpec, start_ssh_hosts
from tests.remote.conftest import tls_request

MP, BACKEND_HOST = "127.0.5.81", "127.0.5.82"
MESSAGE_ID = "rrt-hoststeps-1"
# One audit line of commands.log: time, exit status, seconds, bytes, then the command line (newlines as \\n).
_AUDIT = re.compile(r"^\S+Z (?:exit=-?\d+|timeout) seconds=\S+ out=\d+B err=\d+B (.*)$")


@pytest.fixture(scope="module")
def step_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SshHosts, Path]]:
    """An MP whose system.log alone is larger than the log budget (so the run cuts it), and a backend."""
    root = tmp_path_factory.mktemp("host-steps-lab")
    specs = [SshHostSpec("hs-mp", MP, "message-processor", root / "roots" / "hs-mp"),
             SshHostSpec("hs-be", BACKEND_HOST, "backend", root / "roots" / "hs-be")]
    with start_ssh_hosts(root / "lab", specs) as hosts:
        log = hosts.host("hs-mp").system_log
        log.parent.mkdir(parents=True, exist_ok=True)
        filler = "2026-11-27 10:00:00,000 messageid:rrt-other NIOThread@0 INFO HTTP.CLIENT - filler\n" * 1000
        with log.open("w") as out:
            while out.tell() <= host_steps.LOG_BUDGET_BYTES:
                out.write(filler)
            out.write(
                f"2026-11-27 10:00:01,000 messageid:{MESSAGE_ID} NIOThread@0 ERROR HTTP.CLIENT - failed\n"
            )
        yield hosts, hosts.write_inventory(root / "hosts.yaml")


def _sent(commands_log: Path) -> list[str]:
    """The command lines the run sent to one host, from its audit (commands.log)."""
    lines = commands_log.read_text(encoding="utf-8").splitlines()
    return [m.group(1) for m in map(_AUDIT.match, lines) if m]


def test_dry_run_prints_exactly_what_the_run_sends(step_lab: tuple[SshHosts, Path], tmp_path: Path,
                                                   tls_backend: tuple[str, int]) -> None:
    # Given a run's state on real sshd hosts (an MP, a backend, a TLS backend to probe through the MP)
    lab, inventory_path = step_lab
    settings = RunSettings(org="o", env="e", proxy="p", no_api=True, capture_seconds=2,
                           known_hosts=lab.known_hosts, inventory=inventory_path)
    ctx = RunContext(settings, RecordingObserver(), tmp_path / "raw", "hoststeps1",
                     inventory=load_inventory(inventory_path))
    ctx.backend_addresses, ctx.mp_addresses, ctx.backend_ports = [BACKEND_HOST], [MP], [tls_backend[1]]
    ctx.backend_targets = [Backend(tls_backend[0], tls_backend[1], sni="backend.lab")]
    ctx.message_ids = [MESSAGE_ID]
    hosts = plan_hosts(ctx)
    # When the dry-run plan is built, and the run's own stages then run on the lab (the probe through the
    # MP too)
    plan = build_plan(ctx, hosts)
    connect_hosts(ctx, hosts)
    start_captures(ctx)
    tls_request(MP, tls_backend)
    stop_captures(ctx)
    gather(ctx)
    assert ctx.fleet is not None
    ctx.record_all(ctx.fleet.close())
    # (the run probes through the first MP when the probe from the collector's machine fails)
    assert all(_probe_via_mp(ctx, backend) is not None for backend in ctx.backend_targets)
    assert [s for s in ctx.steps if s.status is StepStatus.FAILED] == []
    # Then every command the plan prints for a host is one the run sent to it, character for character
    planned_commands: set[HostCommand] = set()
    for host_plan in plan["hosts"]:
        sent = _sent(ctx.staging / layout.host_file(host_plan["name"], layout.HOST_COMMANDS))
        for label, argv in host_plan["argv"].items():
            line = (" ".join(argv) if argv[0] == "sftp-get" else render(argv)).replace("\n", "\\n")
            assert line in sent, (host_plan["name"], label, line[-200:], [s[-200:] for s in sent])
            planned_commands.add(HostCommand(label.split(" ")[0]))
    # And the plan covered every command a spec defines
    assert planned_commands == set(HostCommand)


def test_every_command_has_one_spec_and_a_known_step() -> None:
    # Given the specs, Then each command has exactly one, recorded under a Step, on at least one role.
    assert set(SPECS) == set(HostCommand)
    for command, spec in SPECS.items():
        assert spec.command is command and isinstance(spec.step, Step) and spec.roles


def test_plan_covers_every_command_on_the_roles_its_spec_names() -> None:
    # Given an MP (probing through it) and a backend, When planned, Then each command appears on its
    # spec's roles.
    mp, backend = (*hosts_from_addresses(["10.0.0.11"], "message-processor"),
                   *hosts_from_addresses(["10.0.1.5"], "backend"))
    inputs = RunInputs("r1", ("10.0.1.5",), ("10.0.0.11",), 443, probe_targets=(Backend("b.example", 443),),
                       probe_via=mp.name)
    for host in (mp, backend):
        planned = {c.command for c in plan_host(host, inputs, sudo_password=False)}
        assert planned == {c for c, spec in SPECS.items() if spec.runs_on(host)}, host.role


@pytest.mark.parametrize(
    "command, sudo_host, prefixed",
    [
        (HostCommand.START_CAPTURE, True, True),
        (HostCommand.STREAM_LOGS, True, True),
        (HostCommand.STREAM_LOGS, False, False),
        (HostCommand.FACTS, True, False),
        (HostCommand.FETCH_CAPTURE, True, False),
    ],
)
def test_sudo_prefix_follows_the_spec(command: HostCommand, sudo_host: bool, prefixed: bool) -> None:
    # Given a host with or without sudo, When planned, Then only commands whose spec runs under sudo get it.
    host = InventoryHost("mp", "10.0.0.11", sudo=sudo_host)
    inputs = RunInputs("r1", ("10.0.1.5",), ("10.0.0.11",), 443)
    argv = next(c.argv for c in plan_host(host, inputs, sudo_password=False) if c.command is command)
    assert (argv[:3] == ["sudo", "-n", "--"]) is prefixed


def test_raw_collection_files_are_the_specs_outputs() -> None:
    # Given the specs, Then `collect package --from` imports exactly their per-host outputs plus commands.log.
    outputs = {s.output for s in SPECS.values() if s.output and s.per_host}
    assert set(HOST_FILES) == outputs | {layout.HOST_COMMANDS}
    assert all(s.output is not None for s in SPECS.values() if s.channel is Channel.STREAM)


def test_plan_log_budget_is_the_runs() -> None:
    # Given the plan of an MP, Then the log is cut to the run's budget (it printed 64 MiB while the run sent
    # 50 MB).
    (mp,) = hosts_from_addresses(["10.0.0.11"], "message-processor")
    argv = next(c.argv for c in plan_host(mp, RunInputs("r1"), False) if c.command is HostCommand.STREAM_LOGS)
    assert str(host_steps.LOG_BUDGET_BYTES) in argv and str(64 << 20) not in argv
    assert Inventory((mp,)).message_processors == (mp,)


def test_backends_without_mp_addresses_capture_at_their_own_addresses_only_with_a_port() -> None:
    # Given backends whose MPs' addresses are unknown (Public Cloud)
    # Then they capture clients at their inventory addresses and the address the MPs call, each once
    own = host_steps.backend_own_addresses(["10.0.0.2"], ["10.0.0.2", "backend.lab"], 8443)
    assert own == ("10.0.0.2", "backend.lab")
    # And without a backend host, or without the port (the SSH session would be captured too), on nothing
    assert host_steps.backend_own_addresses([], ["backend.lab"], 8443) == ()
    assert host_steps.backend_own_addresses(["10.0.0.2"], ["backend.lab"], None) == ()

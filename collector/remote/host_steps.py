"""Every command the run sends to a host, defined once: the run, `--dry-run` and `collect package` read these.

A host step (a `Step`: start-capture, stop-capture, fetch-capture, cleanup, logs, facts, probe) sends one or
more commands. Each command has one spec here: the roles it runs on, how it runs (sudo, stdout kept in memory
or streamed into the bundle, its time budget), the bundle file its output becomes (`collector/layout.py`), and
one builder of its exact argv from quoted arguments (`commands.py`). The run sends what the builders return,
and the dry-run plan prints what the same builders return for the same inputs. The Ansible role's defaults
hold the same limits (tests/playbooks check that they match).
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from collector import layout
from collector.inventory import ROLE_BACKEND, ROLE_MESSAGE_PROCESSOR, InventoryHost
from collector.remote import commands
from collector.remote.connection import CommandResult, HostConnection
from collector.settings import Backend
from collector.steps import Step
from collector.tls.jsse_defaults import is_tls13_suite, openssl_name
from collector.tls.survey import AttemptSpec, Offer, first_attempt, make_offer

CAPTURE_MARGIN_SECONDS = 120  # the remote tcpdump outlives the window by this much, then stops by itself
CAPTURE_MEGABYTES = 500
RING_FILES = 5  # the megabytes are spread over this many -C files when it is large enough
READY_SECONDS = 5.0  # tcpdump says "listening" within a few hundred ms; more means something is wrong
STOP_WAIT_SECONDS = 5
SETTLE_ROUNDS = 4  # the stop waits at most this many x 1.2 s for tcpdump to hand over what it holds
CLEANUP_SECONDS = 15
LOG_BUDGET_BYTES = 50_000_000
LOG_CONTEXT_LINES = 20
PROBE_SECONDS = 20  # s_client's own `timeout`; SSH waits PROBE_SSH_MARGIN_SECONDS longer for a hung host
PROBE_SSH_MARGIN_SECONDS = 15
PROBE_HANDSHAKE_SECONDS = 10  # each further handshake of the probe's survey (`tls.survey`)
PLACEHOLDER_MESSAGE_ID = "MESSAGE-ID"  # the plan's stand-in: the real ids come from the trace during the run

BOTH_ROLES = frozenset({ROLE_MESSAGE_PROCESSOR, ROLE_BACKEND})
MESSAGE_PROCESSORS = frozenset({ROLE_MESSAGE_PROCESSOR})


class HostCommand(str, enum.Enum):
    """One command sent to a host; values are the keys of the dry-run plan."""

    START_CAPTURE = "start-capture"
    CHECK_CAPTURE = "check-capture"
    STOP_CAPTURE = "stop-capture"
    FETCH_CAPTURE = "fetch-capture"
    REMOVE_CAPTURE = "remove-capture"
    LIST_LOGS = "list-logs"
    EXCERPT_LOGS = "excerpt-logs"
    STREAM_LOGS = "stream-logs"
    FACTS = "facts"
    PROBE = "probe"
    PROBE_HANDSHAKE = "probe-handshake"

    def __str__(self) -> str:
        return self.value


class Sudo(str, enum.Enum):
    """When a command runs under sudo (on hosts whose inventory entry says `sudo: true`)."""

    REQUIRED = "required"  # tcpdump and its files: sudo is checked first, a refusal is `sudo-denied`
    IF_ALLOWED = "if-allowed"  # the apigee-owned logs: through sudo when it works, else as the login user
    NEVER = "never"


class Channel(str, enum.Enum):
    """How the output comes back."""

    OUTPUT = "output"  # small stdout, read into memory and parsed
    STREAM = "stream"  # stdout written to the step's bundle file as it arrives (any size, constant memory)
    SFTP = "sftp"  # files fetched over SFTP (the argv shown is `sftp-get PATH`)


class Budget(str, enum.Enum):
    """How long the SSH side waits for the command."""

    COMMAND = "command"  # the per-command limit (ConnectionSettings.command_timeout)
    AT_LEAST = "at-least"  # the per-command limit, but at least `seconds`
    HOST_DEADLINE = "host-deadline"  # as long as the phase's per-host deadline allows
    OWN_TIMEOUT = "own-timeout"  # the command stops itself; SSH waits `seconds` more than that


@dataclass(frozen=True)
class HostCommandSpec:
    """One command of a host step.

    Attributes:
        command: its name (the dry-run plan's key); step: the host × step record its failure lands in.
        roles: the inventory roles it runs on.
        sudo / channel / budget: how it runs (see the enums); seconds: the budget's number.
        output: the bundle file its output becomes: a per-host file name (`layout.HOST_*`, under
            `hosts/NAME/`), or with `per_host` False a bundle path; ``None`` when the output only steers the
            run (a PID, a file list, an exit code).
        detached: it leaves a process running on the host (tcpdump) that outlives the SSH channel.
    """

    command: HostCommand
    step: Step
    roles: frozenset[str]
    sudo: Sudo
    channel: Channel
    budget: Budget = Budget.COMMAND
    seconds: float = 0.0
    output: str | None = None
    detached: bool = False
    per_host: bool = True

    def runs_on(self, host: InventoryHost) -> bool:
        return host.role in self.roles

    def under_sudo(self, host: InventoryHost) -> bool:
        """Whether the argv gets the sudo prefix on `host` (IF_ALLOWED: when the host's sudo works)."""
        return self.sudo is not Sudo.NEVER and host.sudo

    def timeout(self, command_timeout: float, host_deadline: float, own_seconds: float = 0.0) -> float:
        if self.budget is Budget.AT_LEAST:
            return max(command_timeout, self.seconds)
        if self.budget is Budget.HOST_DEADLINE:
            return max(command_timeout, host_deadline)
        if self.budget is Budget.OWN_TIMEOUT:
            return own_seconds + self.seconds
        return command_timeout


_C, _S, _MPS = HostCommand, Sudo, MESSAGE_PROCESSORS
SPECS: dict[HostCommand, HostCommandSpec] = {
    spec.command: spec
    for spec in (
        HostCommandSpec(_C.START_CAPTURE, Step.START_CAPTURE, BOTH_ROLES, _S.REQUIRED, Channel.OUTPUT,
                        detached=True),
        HostCommandSpec(_C.CHECK_CAPTURE, Step.START_CAPTURE, BOTH_ROLES, _S.REQUIRED, Channel.OUTPUT),
        HostCommandSpec(_C.STOP_CAPTURE, Step.STOP_CAPTURE, BOTH_ROLES, _S.REQUIRED, Channel.OUTPUT,
                        Budget.AT_LEAST, STOP_WAIT_SECONDS + 10),
        HostCommandSpec(_C.FETCH_CAPTURE, Step.FETCH_CAPTURE, BOTH_ROLES, _S.NEVER, Channel.SFTP,
                        output=layout.HOST_CAPTURE),
        HostCommandSpec(_C.REMOVE_CAPTURE, Step.CLEANUP, BOTH_ROLES, _S.REQUIRED, Channel.OUTPUT,
                        Budget.AT_LEAST, CLEANUP_SECONDS),
        HostCommandSpec(_C.LIST_LOGS, Step.LOGS, _MPS, _S.IF_ALLOWED, Channel.OUTPUT),
        HostCommandSpec(_C.EXCERPT_LOGS, Step.LOGS, _MPS, _S.IF_ALLOWED, Channel.STREAM,
                        Budget.HOST_DEADLINE, output=layout.HOST_LOG_EXCERPT),
        HostCommandSpec(_C.STREAM_LOGS, Step.LOGS, _MPS, _S.IF_ALLOWED, Channel.STREAM,
                        Budget.HOST_DEADLINE, output=layout.HOST_LOG),
        HostCommandSpec(_C.FACTS, Step.FACTS, BOTH_ROLES, _S.NEVER, Channel.OUTPUT, output=layout.HOST_FACTS),
        HostCommandSpec(_C.PROBE, Step.PROBE, _MPS, _S.NEVER, Channel.OUTPUT,
                        Budget.OWN_TIMEOUT, PROBE_SSH_MARGIN_SECONDS, output=layout.PROBE_RESULTS,
                        per_host=False),
        HostCommandSpec(_C.PROBE_HANDSHAKE, Step.PROBE, _MPS, _S.NEVER, Channel.OUTPUT,
                        Budget.OWN_TIMEOUT, PROBE_SSH_MARGIN_SECONDS, output=layout.PROBE_RESULTS,
                        per_host=False),
    )
}


def host_files() -> tuple[str, ...]:
    """The per-host bundle files the host steps write, then commands.log (every command sent, audited): what a
    raw collection may hold under `hosts/NAME/` (`collect package --from`)."""
    outputs = [spec.output for spec in SPECS.values() if spec.output is not None and spec.per_host]
    return (*dict.fromkeys(outputs), layout.HOST_COMMANDS)


@dataclass(frozen=True)
class RunInputs:
    """What the argvs of one run are built from (the run and its dry-run compute it the same way).

    Attributes:
        run_id: names the run dir on each host and is matched in tcpdump's cmdline before a signal.
        backend_addresses: what the MPs capture against; mp_addresses: what the backends capture against.
        port: the backend port the captures filter on, ``None`` for any.
        capture_seconds: the window; tcpdump stops by itself CAPTURE_MARGIN_SECONDS after it.
        message_ids: the ids the log excerpt looks for (the dry run shows a placeholder).
        probe_targets: the backends a probe through an MP would ask; probe_via: that MP's inventory name.
        probe_offers: what the MP offers each of `probe_targets` (same order; JSSE's defaults when missing),
            which the probe's survey offers in its place.
    """

    run_id: str
    backend_addresses: tuple[str, ...] = ()
    mp_addresses: tuple[str, ...] = ()
    port: int | None = None
    capture_seconds: int = 30
    message_ids: tuple[str, ...] = ()
    probe_targets: tuple[Backend, ...] = ()
    probe_via: str | None = None
    probe_offers: tuple[Offer, ...] = ()

    @property
    def max_seconds(self) -> int:
        return self.capture_seconds + CAPTURE_MARGIN_SECONDS

    def peers(self, host: InventoryHost) -> tuple[str, ...]:
        """MPs capture their traffic with the backends, backends theirs with the MPs."""
        return self.backend_addresses if host.role == ROLE_MESSAGE_PROCESSOR else self.mp_addresses


def backend_own_addresses(backend_hosts: Sequence[str], backend_addresses: Sequence[str],
                          port: int | None) -> tuple[str, ...]:
    """What the backends `backend_hosts` (their inventory addresses) capture against when the MPs' addresses
    are unknown (Public Cloud): every client on the backend port at their own addresses, these and the
    `backend_addresses` the MPs call. Only with a known port: `host <own address>` alone would also capture
    the SSH session doing the capture. The run and the Fabric tasks both ask this."""
    if not backend_hosts or port is None:
        return ()
    return tuple(dict.fromkeys([*backend_hosts, *backend_addresses]))


# --- the builders: the run and the plan call these, nothing else builds a host argv -----------------------

def new_run_id() -> str:
    """Names a run's files on the hosts (and is matched in tcpdump's cmdline before it is stopped): the same
    shape whichever drives the host steps, the run or the Fabric tasks."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def run_dir(host: InventoryHost, run_id: str) -> str:
    return commands.run_dir(host.capture_dir, run_id, host.name)


def start_capture_argv(host: InventoryHost, run_id: str, peers: Sequence[str], port: int | None,
                       max_seconds: int, max_megabytes: int = CAPTURE_MEGABYTES) -> list[str]:
    files = RING_FILES if max_megabytes >= RING_FILES * 10 else 1
    return commands.start_capture(host.capture_dir, run_dir(host, run_id), host.tcpdump,
                                  commands.capture_filter(peers, port), max_seconds, max_megabytes, files)


def check_capture_argv(directory: str) -> list[str]:
    return commands.check_capture(directory)


def stop_capture_argv(directory: str, run_id: str, login_user: str) -> list[str]:
    return commands.stop_capture(directory, run_id, login_user, STOP_WAIT_SECONDS, SETTLE_ROUNDS)


def remove_capture_argv(directory: str, run_id: str) -> list[str]:
    return commands.remove_run_dir(directory, run_id)


def list_logs_argv(host: InventoryHost) -> list[str]:
    return commands.list_logs(host.system_log)


def excerpt_logs_argv(files_oldest_first: Sequence[str], message_ids: Sequence[str],
                      context_lines: int = LOG_CONTEXT_LINES) -> list[str]:
    return commands.excerpt_logs(files_oldest_first, message_ids, context_lines)


def stream_logs_argv(
    files_oldest_first: Sequence[str], first_file_bytes: int, budget_bytes: int = LOG_BUDGET_BYTES
) -> list[str]:
    return commands.stream_logs(files_oldest_first, first_file_bytes, budget_bytes)


def facts_argv(host: InventoryHost) -> list[str]:
    return commands.gather_facts(host.tcpdump, host.capture_dir)


def probe_argv(host: str, port: int, sni: str | None, *, timeout: float = PROBE_SECONDS,
               tls_version: str | None = None, cert: str | None = None, key: str | None = None) -> list[str]:
    return commands.build_s_client_argv(host, port, sni, timeout=timeout, tls_version=tls_version, cert=cert,
                                        key=key)


def probe_handshake_argv(host: str, port: int, spec: AttemptSpec,
                         timeout: float = PROBE_HANDSHAKE_SECONDS) -> list[str]:
    """One survey handshake as s_client options: the spec's suites by their OpenSSL names (TLS 1.2 and older
    with -cipher, TLS 1.3 with -ciphersuites), or every suite s_client has when the spec names none."""
    cipher_list = ciphersuites = None
    if spec.suites is None:
        cipher_list = "ALL" if spec.version != "TLSv1.3" else None
    else:
        names = [openssl_name(s) or s for s in spec.suites]
        cipher_list = ":".join(n for n in names if not is_tls13_suite(n)) or None
        ciphersuites = ":".join(n for n in names if is_tls13_suite(n)) or None
    return commands.build_s_client_handshake_argv(host, port, spec.sni, timeout=timeout, version=spec.version,
                                                  cipher_list=cipher_list, ciphersuites=ciphersuites)


def fetch_capture_argv(remote_file: str) -> list[str]:
    """What commands.log records for one SFTP transfer (not a shell command)."""
    return ["sftp-get", remote_file]


def send(connection: HostConnection, command: HostCommand, argv: Sequence[str], *, sudo: bool | None = None,
         check: bool = False, local_path: Path | None = None, own_seconds: float = 0.0) -> CommandResult:
    """Send one command the way its spec says: its step, sudo (``sudo`` overrides it: IF_ALLOWED decides at
    run time), its channel (a STREAM command writes stdout to `local_path`) and its time budget."""
    spec = SPECS[command]
    settings = connection.settings
    timeout = spec.timeout(settings.command_timeout, settings.host_deadline, own_seconds)
    use_sudo = spec.under_sudo(connection.host) if sudo is None else sudo
    if spec.channel is Channel.STREAM:
        if local_path is None:
            raise ValueError(f"{command} streams into a file: give local_path")
        return connection.stream_to_file(argv, local_path, sudo=use_sudo, step=spec.step, timeout=timeout)
    return connection.run(argv, sudo=use_sudo, check=check, step=spec.step, timeout=timeout)


# --- the plan ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedCommand:
    """One command the run would send: `label` is the dry-run plan's key (the command, plus the backend for a
    probe), `argv` is exactly what is sent (sudo prefix included)."""

    command: HostCommand
    label: str
    argv: list[str]


def plan_host(host: InventoryHost, inputs: RunInputs, sudo_password: bool) -> list[PlannedCommand]:
    """Every command the run would send to `host`, in the order it sends them.

    What only the host knows is assumed: the log listing is system.log alone and larger than the budget (so
    the log is cut to its last LOG_BUDGET_BYTES), and the capture is one ring file. Without message ids the
    excerpt shows PLACEHOLDER_MESSAGE_ID. A probe through the MP happens only when the captures cannot show
    the acceptable CA names and the probe from the collector's machine failed.
    """
    directory = run_dir(host, inputs.run_id)
    peers = inputs.peers(host)
    planned: list[tuple[HostCommand, str, list[str]]] = []

    def add(command: HostCommand, argv: list[str], label: str | None = None) -> None:
        planned.append((command, label or command.value, argv))

    if peers:
        add(HostCommand.START_CAPTURE, start_capture_argv(host, inputs.run_id, peers, inputs.port,
                                                          inputs.max_seconds))
        add(HostCommand.CHECK_CAPTURE, check_capture_argv(directory))
        add(HostCommand.STOP_CAPTURE, stop_capture_argv(directory, inputs.run_id, host.user))
        # tcpdump -C/-W numbers its ring files from 0: a short capture is the one file capture.pcap0
        add(HostCommand.FETCH_CAPTURE, fetch_capture_argv(f"{directory}/{commands.CAPTURE_FILE}0"))
        add(HostCommand.REMOVE_CAPTURE, remove_capture_argv(directory, inputs.run_id))
    if SPECS[HostCommand.LIST_LOGS].runs_on(host):
        add(HostCommand.LIST_LOGS, list_logs_argv(host))
        add(HostCommand.EXCERPT_LOGS,
            excerpt_logs_argv([host.system_log], inputs.message_ids or (PLACEHOLDER_MESSAGE_ID,)))
        add(HostCommand.STREAM_LOGS, stream_logs_argv([host.system_log], LOG_BUDGET_BYTES))
    add(HostCommand.FACTS, facts_argv(host))
    if inputs.probe_via == host.name and SPECS[HostCommand.PROBE].runs_on(host):
        for index, backend in enumerate(inputs.probe_targets):
            add(HostCommand.PROBE, probe_argv(backend.host, backend.port or 443, backend.sni),
                f"probe {backend}")
            # The survey's first handshake; the next ones (at most MAX_HANDSHAKES in all) change the version,
            # the suites or the SNI by what the backend answered, so only this one is known beforehand.
            offer = inputs.probe_offers[index] if index < len(inputs.probe_offers) else make_offer()
            first = first_attempt(offer, backend.sni)
            if first is not None:
                argv = probe_handshake_argv(backend.host, backend.port or 443, first)
                add(HostCommand.PROBE_HANDSHAKE, argv, f"probe-handshake {backend}")
    prefix = commands.sudo_prefix(sudo_password)
    return [PlannedCommand(command, label, [*prefix, *argv] if SPECS[command].under_sudo(host) else argv)
            for command, label, argv in planned]

"""The host steps as Fabric tasks: start-capture, stop-capture, logs, facts, and init for the run's names.

Each task runs the run's own host step on each `-H` host (collector/remote: the host-step specs of
host_steps.py, their argv builders, sudo rules, framed output and bundle files) over the connection Fabric
made, and writes what `collect run` fetches into the raw layout that `collect package --from DIR` turns into
a bundle: hosts/NAME/{capture.pcap, system.log.excerpt, system.log.gz, facts.json, commands.log} beside
collection.json (record.py). A host that fails is said on one line (`HOST -> STEP: reason: why`) and recorded;
the other hosts go on, and fab exits 1 at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fabric
from invoke import Collection
from invoke.exceptions import Exit

from collector import layout
from collector.errors import EXIT_FAILED, EXIT_USAGE, CollectorError, UsageError
from collector.fabric import hosts as fab_hosts
from collector.fabric import record as raw
from collector.inventory import ROLE_BACKEND, ROLE_MESSAGE_PROCESSOR, InventoryHost
from collector.remote import capture, commands, host_steps
from collector.remote import facts as host_facts
from collector.remote import logs as host_logs
from collector.remote.connection import HostConnection, HostError, adopt_host
from collector.remote.host_steps import SPECS, HostCommand, RunInputs
from collector.settings import Backend, parse_backend
from collector.steps import Step, StepResult, StepStatus

DEFAULT_OUT = "apigee-raw"
# How long the operator may take to reproduce; tcpdump then still runs CAPTURE_MARGIN_SECONDS before it stops
# by itself (its dead-man switch, should stop-capture never come): 12 minutes in all, like the playbook's 15.
WINDOW_SECONDS = 600
SUDO_HINT = "with fab: --prompt-for-sudo-password, or sudo.password in the Fabric config"

# The host × step failures of this fab process; the post task turns them into fab's exit status.
_failures: list[str] = []


@fabric.task
def _exit_status(c: Any) -> None:
    """Post task: fab exits 1 when a host failed (each failure was said on its own line)."""
    if _failures:
        failed = ", ".join(dict.fromkeys(_failures))
        _failures.clear()
        raise Exit(f"failed on: {failed}", code=EXIT_FAILED)


@dataclass(frozen=True)
class _Task:
    """One task on one host: its Fabric connection, the `collector:` config and the output directory."""

    connection: fabric.Connection
    config: dict[str, Any]
    out: Path
    name: str

    def settings(self) -> dict[str, Any]:
        return fab_hosts.host_settings(self.config, self.name)

    def host_dir(self) -> Path:
        path = self.out / layout.host_dir(self.name)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def local(self, name: str) -> Path:
        return self.host_dir() / name

    def connect(self, host: InventoryHost) -> HostConnection:
        settings = fab_hosts.connection_settings(self.connection, self.config)
        return adopt_host(self.connection, host, settings, self.local(layout.HOST_COMMANDS),
                          fab_hosts.ACCEPT_NEW_HINT)


def _begin(c: Any, out: str | None) -> _Task:
    if not isinstance(c, fabric.Connection):
        raise Exit("give the hosts with -H (e.g. -H mp1,mp2)", code=EXIT_USAGE)
    config = _config(c)
    return _Task(c, config, _out_dir(out, config), fab_hosts.host_name(c))


def _config(c: Any) -> dict[str, Any]:
    try:
        return fab_hosts.collector_config(c.config)
    except UsageError as exc:
        raise Exit(str(exc), code=EXIT_USAGE) from exc


def _out_dir(out: str | None, config: dict[str, Any]) -> Path:
    return Path(str(out or config.get("out") or DEFAULT_OUT)).expanduser().absolute()


def _words(values: Iterable[str] | None) -> list[str]:
    """Repeated options, each possibly a comma-separated list (like -H)."""
    return [w.strip() for v in values or () for w in str(v).split(",") if w.strip()]


def _usage(check: Callable[[], Any]) -> Any:
    """Bad options stop fab before any host is touched (exit 2)."""
    try:
        return check()
    except (CollectorError, ValueError) as exc:
        raise Exit(str(exc), code=EXIT_USAGE) from exc


def _ok(name: str, step: str, detail: str) -> None:
    print(f"{name} -> {step}: ok: {detail}", flush=True)


def _failed(name: str, step: str, reason: str, message: str) -> StepResult:
    """Say a host's failure on one line, and remember it for the exit status."""
    text = message if message.startswith(f"{name} -> ") else f"{name} -> {step}: {reason}: {message}"
    if reason == "sudo-denied":
        text += f" ({SUDO_HINT})"
    print(text, file=sys.stderr, flush=True)
    _failures.append(f"{name} ({step})")
    return StepResult(name, step, StepStatus.FAILED, reason, text)


def _failure(name: str, step: Step, exc: Exception, started: float) -> StepResult:
    reason = exc.reason if isinstance(exc, HostError) else "failed"
    if isinstance(exc, OSError) and not isinstance(exc, CollectorError):
        reason = "local-io"  # writing into the output directory on this machine
    result = _failed(name, step, reason, str(exc))
    return StepResult(name, step, StepStatus.FAILED, reason, result.message, time.monotonic() - started)


def _role(task: _Task, entry: dict[str, Any] | None, given: str | None) -> str:
    """--role, else what an earlier task recorded for the host, else the config's, else message-processor."""
    recorded = entry.get("role") if entry else None
    text = given or recorded or task.settings().get("role") or ROLE_MESSAGE_PROCESSOR
    return _usage(lambda: fab_hosts.parse_role(text))


def _host(task: _Task, role: str) -> InventoryHost:
    return _usage(lambda: fab_hosts.inventory_host(task.connection, role, task.settings()))


def _open(task: _Task, host: InventoryHost) -> HostConnection | None:
    """The host's connection, or ``None`` after saying and recording why it could not be opened."""
    started = time.monotonic()
    try:
        return task.connect(host)
    except (HostError, OSError) as exc:
        result = _failure(host.name, Step.CONNECT, exc, started)
        with raw.edit(task.out, host_steps.new_run_id) as record:
            entry = raw.add_host(record, host.name, host.role, host.address)
            raw.record_steps(entry, [result])
        return None


def _record(task: _Task, host: InventoryHost, results: list[StepResult], replaces: tuple[str, ...] = (),
            change: Callable[[dict[str, Any], dict[str, Any]], None] | None = None) -> None:
    with raw.edit(task.out, host_steps.new_run_id) as record:
        entry = raw.add_host(record, host.name, host.role, host.address)
        raw.record_steps(entry, results, replaces)
        if change is not None:
            change(record, entry)


# --- the tasks ------------------------------------------------------------------------------------------

_OUT_HELP = f"the raw collection directory (default: collector.out of the Fabric config, or ./{DEFAULT_OUT})"


@fabric.task(
    help={
        "org": "the Edge organization (collect package can be told instead)",
        "env": "the Edge environment",
        "proxy": "the API proxy that fails",
        "out": _OUT_HELP,
    }
)
def init(c: Any, org: str | None = None, env: str | None = None, proxy: str | None = None,
         out: str | None = None) -> None:
    """Start a raw collection in --out: its run id, and the org/env/proxy `collect package` reads."""
    directory = _out_dir(out, _config(c))

    def names() -> dict[str, Any]:
        with raw.edit(directory, host_steps.new_run_id) as record:
            raw.set_names(record, {"org": org, "env": env, "proxy": proxy})
            return record

    record = _usage(names)
    named = "/".join(str(record.get(k) or "?") for k in ("org", "env", "proxy"))
    print(f"collection {record['run_id']} in {directory} ({named})", flush=True)


@fabric.task(
    iterable=["backend", "mp"],
    post=[_exit_status],
    help={
        "backend": "HOST:PORT of a backend the MPs call (repeat, or comma-separated); MPs capture their "
        "traffic with these, backends on this port",
        "mp": "an MP's address (repeat, or comma-separated): what a backend host captures its traffic with "
        "(without it, every client on the backend port)",
        "role": "message-processor (default, or the Fabric config's collector.hosts.NAME.role) or backend",
        "window": f"seconds you may take to reproduce (default {WINDOW_SECONDS}); tcpdump stops by itself "
        f"{host_steps.CAPTURE_MARGIN_SECONDS} s after that if stop-capture never comes",
        "out": _OUT_HELP,
    },
)
def start_capture(c: Any, backend: list[str] | None = None, mp: list[str] | None = None,
                  role: str | None = None, window: int = WINDOW_SECONDS, out: str | None = None) -> None:
    """Start tcpdump on each host (detached, self-limiting) and return once it listens."""
    task = _begin(c, out)
    backends: list[Backend] = _usage(lambda: [parse_backend(text) for text in _words(backend)])
    mps = _words(mp)
    ports = {b.port for b in backends}
    port = ports.pop() if len(ports) == 1 else None  # backends on several ports: any port, as `collect run`
    _usage(lambda: commands.capture_filter([b.host for b in backends] + mps or ["localhost"], port))
    if int(window) <= 0:
        raise Exit(f"--window {window}: give the seconds you need to reproduce", code=EXIT_USAGE)

    step = Step.START_CAPTURE
    with raw.edit(task.out, host_steps.new_run_id) as record:
        entry = raw.host_entry(record, task.name)
        host = _host(task, _role(task, entry, role))
        running = (entry or {}).get("capture")
        inputs = RunInputs(
            run_id=record["run_id"],
            backend_addresses=tuple(dict.fromkeys(b.host for b in backends)),
            mp_addresses=tuple(mps) or host_steps.backend_own_addresses(
                [host.address] if host.role == ROLE_BACKEND else [], [b.host for b in backends], port
            ),
            port=port,
            capture_seconds=int(window),
        )
        peers = inputs.peers(host)
        if not running and peers:
            entry = raw.add_host(record, host.name, host.role, host.address)
            entry["peers"] = list(peers)
            if port is not None and record.get("backend_port") in (0, None, port):
                record["backend_port"] = port
            ends = datetime.now(timezone.utc) + timedelta(seconds=inputs.max_seconds)
            directory = host_steps.run_dir(host, inputs.run_id)
            # Written before tcpdump starts: a fab killed mid-start still leaves stop-capture what to remove.
            entry["capture"] = {"directory": directory, "pid": None,
                                "ends_by": ends.isoformat(timespec="seconds")}
    if running:
        _failed(host.name, step, "capture-running",
                f"a capture of this collection already runs there ({running.get('directory')}, until "
                f"{running.get('ends_by')}): stop-capture first")
        return
    if not peers:
        what = "--backend HOST:PORT" if host.role == ROLE_MESSAGE_PROCESSOR else "--mp ADDRESS (or --backend)"
        _failed(host.name, step, "no-peers", f"nothing to filter on: give {what}")
        return

    started = time.monotonic()
    connection = _open(task, host)
    handle = None
    try:
        if connection is not None:
            handle = capture.start_capture(connection, inputs.run_id, peers, port, inputs.max_seconds,
                                           host_steps.CAPTURE_MEGABYTES)
    except (HostError, OSError) as exc:  # start_capture removed whatever it may have started
        result = _failure(host.name, step, exc, started)
        _record(task, host, [result], change=lambda _r, e: e.pop("capture", None))
        return
    finally:
        if connection is not None:
            connection.close()
    if handle is None:  # not connected: said and recorded
        _record(task, host, [], change=lambda _r, e: e.pop("capture", None))
        return

    def confirm(_record_: dict[str, Any], entry_: dict[str, Any]) -> None:
        entry_["capture"]["pid"] = handle.pid

    seconds = time.monotonic() - started
    _record(task, host, [StepResult(host.name, step, StepStatus.OK, seconds=seconds)], change=confirm)
    words = " ".join(commands.capture_filter(peers, port))
    _ok(host.name, step, f"tcpdump pid {handle.pid} listening in {handle.directory} (filter: {words}); it "
                         f"stops by itself by {ends:%H:%M:%S} UTC")


@fabric.task(post=[_exit_status], help={"out": _OUT_HELP})
def stop_capture(c: Any, out: str | None = None) -> None:
    """Stop each host's capture, fetch it to hosts/NAME/capture.pcap, and remove its files from the host."""
    task = _begin(c, out)
    step = Step.STOP_CAPTURE
    record = _usage(lambda: raw.load(task.out))
    entry = raw.host_entry(record, task.name) if record else None
    running = (entry or {}).get("capture")
    if record is None or entry is None or not running:
        _failed(task.name, step, "no-capture",
                f"no capture of the collection in {task.out} runs there: start-capture first (same -H name "
                "and --out)")
        return
    host = _host(task, _role(task, entry, None))
    directory = _usage(lambda: raw.capture_directory(record, entry, task.out / layout.RAW_RECORD))
    pid = running.get("pid")  # only said in messages: the host's trust file is what stop-capture believes
    handle = capture.CaptureHandle(host.name, directory, pid if isinstance(pid, int) else 0,
                                   str(record["run_id"]))
    connection = _open(task, host)
    if connection is None:
        print(f"{host.name} -> {step}: its tcpdump stops by itself by {running.get('ends_by')}; run "
              "stop-capture again to fetch and remove it", file=sys.stderr, flush=True)
        return
    results: list[StepResult] = []
    removed = False
    summary = ""
    started = time.monotonic()
    try:
        try:
            stopped = capture.stop_capture(connection, handle)
            results.append(StepResult(host.name, step, StepStatus.OK, seconds=time.monotonic() - started))
            summary = stopped.summary
            fetch_started = time.monotonic()
            try:
                size = capture.fetch_capture(connection, stopped.files, task.local(layout.HOST_CAPTURE),
                                             stopped.sha256)
                results.append(StepResult(host.name, Step.FETCH_CAPTURE, StepStatus.OK,
                                          seconds=time.monotonic() - fetch_started))
                summary = (f"{size} bytes in {task.local(layout.HOST_CAPTURE)} "
                           f"(tcpdump: {summary or 'no counters'})")
            except (HostError, OSError, ValueError) as exc:
                results.append(_failure(host.name, Step.FETCH_CAPTURE, exc, fetch_started))
        except HostError as exc:
            results.append(_failure(host.name, step, exc, started))
        finally:
            cleanup_started = time.monotonic()
            try:
                capture.remove_capture(connection, handle)
                removed = True
            except HostError as exc:
                results.append(_failure(host.name, Step.CLEANUP, exc, cleanup_started))
    finally:
        connection.close()

    def forget(_record_: dict[str, Any], entry_: dict[str, Any]) -> None:
        if removed:
            entry_.pop("capture", None)

    _record(task, host, results, replaces=(Step.CLEANUP.value,), change=forget)
    if all(r.status is StepStatus.OK for r in results):
        _ok(host.name, step, summary)


@fabric.task(
    iterable=["message_id"],
    post=[_exit_status],
    help={
        "message_id": "an X-Apigee.Message-ID to excerpt from system.log (repeat, or comma-separated); the "
        "collection keeps every id given",
        "out": _OUT_HELP,
    },
)
def logs(c: Any, message_id: list[str] | None = None, out: str | None = None) -> None:
    """On MPs: the message ids' system.log lines with context, and the newest log within the budget."""
    task = _begin(c, out)
    step = Step.LOGS
    given = _words(message_id)
    for text in given:
        if "\n" in text or "\0" in text:
            raise Exit(f"--message-id {text!r}: a message id is one line", code=EXIT_USAGE)
    with raw.edit(task.out, host_steps.new_run_id) as record:
        entry = raw.host_entry(record, task.name)
        host = _host(task, _role(task, entry, None))
        raw.add_host(record, host.name, host.role, host.address)
        record["message_ids"] = list(dict.fromkeys([*record.get("message_ids", []), *given]))
        ids = list(record["message_ids"])
    if not SPECS[HostCommand.LIST_LOGS].runs_on(host):
        why = "logs are collected on message processors only"
        _record(task, host, [StepResult(host.name, step, StepStatus.NOT_APPLICABLE, "not-applicable", why)])
        print(f"{host.name} -> {step}: not applicable: {why}", flush=True)
        return
    started = time.monotonic()
    connection = _open(task, host)
    if connection is None:
        return
    try:
        files, refused = host_logs.list_log_files(connection)
        notes = []
        if ids:
            excerpt = host_logs.write_excerpt(connection, files, ids, host_steps.LOG_CONTEXT_LINES,
                                              task.local(layout.HOST_LOG_EXCERPT))
            matched = " (no match)" if excerpt.exit_code == 1 else ""
            notes.append(f"excerpt {excerpt.stdout_bytes} bytes{matched}")
        selection = host_logs.write_log(connection, files, host_steps.LOG_BUDGET_BYTES,
                                        task.local(layout.HOST_LOG))
        notes.append(f"log: {selection.total_bytes} of {sum(f.size for f in files)} bytes from "
                     f"{len(selection.files)} file(s)")
        note = host_logs.describe_refused(refused)  # said in the step's record, even when ok
        notes.append(note)
    except (HostError, OSError) as exc:
        _record(task, host, [_failure(host.name, step, exc, started)])
        return
    finally:
        connection.close()
    _record(task, host, [StepResult(host.name, step, StepStatus.OK, message=note,
                                    seconds=time.monotonic() - started)])
    _ok(host.name, step, "; ".join(filter(None, notes)))


@fabric.task(post=[_exit_status], help={"role": "as for start-capture", "out": _OUT_HELP})
def facts(c: Any, role: str | None = None, out: str | None = None) -> None:
    """Each host's name, clock offset to us, addresses, OS and tool versions: hosts/NAME/facts.json."""
    task = _begin(c, out)
    step = Step.FACTS
    record = _usage(lambda: raw.load(task.out))
    entry = raw.host_entry(record, task.name) if record else None
    host = _host(task, _role(task, entry, role))
    started = time.monotonic()
    connection = _open(task, host)
    if connection is None:
        return
    try:
        found = host_facts.gather_facts(connection)
        host_facts.write_facts(found, task.local(layout.HOST_FACTS))
    except (HostError, OSError) as exc:
        _record(task, host, [_failure(host.name, step, exc, started)])
        return
    finally:
        connection.close()
    _record(task, host, [StepResult(host.name, step, StepStatus.OK, seconds=time.monotonic() - started)])
    _ok(host.name, step, f"{found.hostname}, clock offset {found.clock_offset_seconds} s")


ns = Collection(init, start_capture, stop_capture, logs, facts)

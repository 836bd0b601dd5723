"""Many hosts at once: each phase runs on all hosts in a bounded pool; a failing host is only recorded."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from cryptography import x509

from collector import interrupts, layout
from collector.errors import RemoteError
from collector.inventory import ROLE_MESSAGE_PROCESSOR, Inventory, InventoryHost
from collector.remote import capture, commands, facts, logs
from collector.remote.connection import ConnectionSettings, HostConnection, HostError, open_host, opened
from collector.remote.host_steps import (
    CAPTURE_MEGABYTES,
    LOG_BUDGET_BYTES,
    LOG_CONTEXT_LINES,
    SPECS,
    HostCommand,
)
from collector.remote.sclient import probe_via_host, survey_via_host
from collector.settings import Backend
from collector.steps import Step, StepResult, StepStatus
from collector.tls.handshake import ProbeResult
from collector.tls.survey import Offer

__all__ = ["ConnectionSettings", "Fleet", "Observer"]

Observer = Callable[[str, str, str], None]  # (host, step, status text)
# Phases over connections already open send no SSH handshakes (the MaxStartups concern of `workers`) and
# mostly wait on the hosts (a stop may wait ~1.2 s for tcpdump to hand over what it holds): they may run
# wider.
OPEN_CONNECTION_WORKERS = 32
MARK_WAIT_SECONDS = 2.0


class Fleet:
    """The hosts of one run and their open connections; every method returns one StepResult per host.

    `workers` bounds concurrent connects (keep it under the sshd's/bastion's MaxStartups); the phases that
    follow run on up to OPEN_CONNECTION_WORKERS hosts at once. Each phase on one host must end within
    `settings.host_deadline` seconds.
    """

    def __init__(
        self,
        hosts: Sequence[InventoryHost],
        settings: ConnectionSettings,
        staging_dir: Path,
        run_id: str,
        observer: Observer | None = None,
        workers: int = 8,
        delivered: Callable[[str], object] | None = None,
    ) -> None:
        names = [h.name for h in hosts]
        if len(set(names)) != len(names):
            raise ValueError(f"host names must be unique: {names}")
        self.hosts = tuple(hosts)
        self.inventory = Inventory(self.hosts)  # its role views, rather than a second copy of them
        self.settings = settings
        self.staging_dir = staging_dir
        self.run_id = commands.check_run_id(run_id)
        self.observer = observer
        self.workers = max(1, workers)
        # told (from the host's thread) the staging path of each large file this run will not write again
        self.delivered = delivered
        self._connections: dict[str, HostConnection] = {}
        self._captures: dict[str, capture.CaptureHandle] = {}
        self._failed: dict[str, RemoteError] = {}  # connect failures: later steps are skipped for these hosts
        self._lock = threading.RLock()
        self._closed = False
        self._marking: threading.Thread | None = None

    # --- phases -----------------------------------------------------------------------------------

    def connect(self) -> list[StepResult]:
        def work(host: InventoryHost) -> str:
            connection = open_host(host, self.settings, self._audit_path(host))
            with self._lock:
                self._connections[host.name] = connection
            return f"{host.user}@{host.address}:{host.port}"

        results = self._phase(Step.CONNECT, self.hosts, work, needs_connection=False)
        for result in results:
            if result.status is StepStatus.FAILED:
                self._failed[result.host] = RemoteError(result.host, Step.CONNECT, result.message)
        return results

    def start_captures(
        self,
        backend_addresses: Sequence[str],
        mp_addresses: Sequence[str],
        port: int | None,
        max_seconds: int,
        max_megabytes: int = CAPTURE_MEGABYTES,
    ) -> list[StepResult]:
        """MPs capture traffic with the backends, backends with the MPs; returns once all captures listen."""

        def work(host: InventoryHost) -> str:
            peers = backend_addresses if host.role == ROLE_MESSAGE_PROCESSOR else mp_addresses
            if not peers:
                raise _NotApplicable(
                    f"no {'backend' if host.role == ROLE_MESSAGE_PROCESSOR else 'MP'} addresses"
                )
            handle = capture.start_capture(
                self._connections[host.name], self.run_id, peers, port, max_seconds, max_megabytes
            )
            with self._lock:
                closing = self._closed
                if not closing:
                    self._captures[host.name] = handle
            if closing:  # close() ran (a signal?) while this capture was starting: do not leave it behind
                capture.remove_capture(self._connections[host.name], handle)
                raise HostError(
                    host.name, Step.START_CAPTURE, "cancelled", "the run was stopped while starting"
                )
            return f"tcpdump pid {handle.pid} listening in {handle.directory}"

        return self._phase(Step.START_CAPTURE, self.hosts, work)

    def mark_captures(self) -> None:
        """Late in the window, without waiting: every running capture notes its packet count (see
        capture.mark_capture), so the stop need not wait for one that received nothing since. Best effort: a
        host that fails it only stops the slower way; stop_captures waits for it first (bounded)."""

        def mark(name: str, handle: capture.CaptureHandle) -> None:
            connection = self._connections.get(name)
            if connection is not None:
                with contextlib.suppress(HostError):
                    capture.mark_capture(connection, handle)

        def work() -> None:
            with self._lock:
                captures = list(self._captures.items())
            with ThreadPoolExecutor(max_workers=max(1, min(len(captures), OPEN_CONNECTION_WORKERS)),
                                    thread_name_prefix="fleet-mark") as pool:
                list(pool.map(lambda item: mark(*item), captures))

        marking = threading.Thread(target=work, name="fleet-mark", daemon=True)
        with interrupts.held():  # stop_captures joins it: never one listed but not started (interrupts.py)
            self._marking = marking
            marking.start()

    def stop_captures(self) -> list[StepResult]:
        """Stop every capture, fetch it to hosts/NAME/capture.pcap, remove the remote files."""
        if self._marking is not None:
            self._marking.join(timeout=MARK_WAIT_SECONDS)  # a mark still on its way only costs its shortcut
        fetch_results: dict[str, StepResult] = {}

        def work(host: InventoryHost) -> str:
            handle = self._captures.get(host.name)
            if handle is None:
                raise _NotApplicable("no capture was started")
            connection = self._connections[host.name]
            started = time.monotonic()
            try:
                stopped = capture.stop_capture(connection, handle)
                fetch_started = time.monotonic()
                try:
                    local = self._local(host, layout.HOST_CAPTURE)
                    size = capture.fetch_capture(connection, stopped.files, local, stopped.sha256)
                    self._deliver(host, layout.HOST_CAPTURE)
                    fetch_results[host.name] = StepResult(
                        host.name, Step.FETCH_CAPTURE, StepStatus.OK, seconds=time.monotonic() - fetch_started
                    )
                except HostError as e:
                    fetch_results[host.name] = _failed(host.name, Step.FETCH_CAPTURE, e, fetch_started)
                    size = 0
            finally:
                try:
                    capture.remove_capture(connection, handle)
                finally:
                    with self._lock:
                        self._captures.pop(host.name, None)
            return (
                f"stopped after {time.monotonic() - started:.1f} s, {size} bytes fetched"
                f" (tcpdump: {stopped.summary or 'no counters'})"
            )

        results = self._phase(Step.STOP_CAPTURE, self.hosts, work)
        merged = []
        for result in results:
            merged.append(result)
            if result.host in fetch_results:
                merged.append(fetch_results[result.host])
        return merged

    def gather(
        self,
        message_ids: Sequence[str],
        budget_bytes: int = LOG_BUDGET_BYTES,
        context_lines: int = LOG_CONTEXT_LINES,
    ) -> list[StepResult]:
        """`gather_logs` then `gather_facts`, each host going on to its facts as soon as its logs are in (not
        when the slowest host's are); the logs' results first, then the facts'."""
        notes: dict[str, str] = {}
        chains = self._chains([(Step.LOGS, self._logs_work(message_ids, budget_bytes, context_lines, notes)),
                               (Step.FACTS, self._facts_work)], self.hosts)
        return [*self._noted([c[0] for c in chains], notes), *(c[1] for c in chains)]

    def gather_logs(
        self,
        message_ids: Sequence[str],
        budget_bytes: int = LOG_BUDGET_BYTES,
        context_lines: int = LOG_CONTEXT_LINES,
    ) -> list[StepResult]:
        """On MPs: the message-id excerpt (hosts/NAME/system.log.excerpt) and the newest log within the budget
        (hosts/NAME/system.log.gz)."""
        notes: dict[str, str] = {}  # files refused on a host: said in its step record, even when ok
        work = self._logs_work(message_ids, budget_bytes, context_lines, notes)
        return self._noted(self._phase(Step.LOGS, self.hosts, work), notes)

    def gather_facts(self) -> list[StepResult]:
        return self._phase(Step.FACTS, self.hosts, self._facts_work)

    def _logs_work(self, message_ids: Sequence[str], budget_bytes: int, context_lines: int,
                   notes: dict[str, str]) -> Callable[[InventoryHost], str]:
        def work(host: InventoryHost) -> str:
            if not SPECS[HostCommand.LIST_LOGS].runs_on(host):
                raise _NotApplicable("logs are collected on message processors only")
            connection = self._connections[host.name]
            files, refused = logs.list_log_files(connection)
            if refused:
                notes[host.name] = logs.describe_refused(refused)
            note = ""
            ids = [m for m in message_ids if m]
            if ids:
                excerpt = logs.write_excerpt(
                    connection, files, ids, context_lines, self._local(host, layout.HOST_LOG_EXCERPT)
                )
                note = f"excerpt {excerpt.stdout_bytes} bytes" + (
                    " (no match)" if excerpt.exit_code == 1 else ""
                )
            selection = logs.write_log(connection, files, budget_bytes, self._local(host, layout.HOST_LOG))
            self._deliver(host, layout.HOST_LOG)
            total = sum(f.size for f in files)
            kept = f"log: {selection.total_bytes} of {total} bytes from {len(selection.files)}"
            return "; ".join(filter(None, [note, kept + " file(s)", notes.get(host.name, "")]))

        return work

    @staticmethod
    def _noted(results: list[StepResult], notes: dict[str, str]) -> list[StepResult]:
        return [replace(r, message=notes[r.host]) if r.host in notes and not r.message else r
                for r in results]

    def _facts_work(self, host: InventoryHost) -> str:
        found = facts.gather_facts(self._connections[host.name])
        facts.write_facts(found, self._local(host, layout.HOST_FACTS))
        return f"{found.hostname}, clock offset {found.clock_offset_seconds} s"

    def probe(self, via: InventoryHost, backend: Backend, *, offer: Offer | None = None,
              anchors: Sequence[x509.Certificate] | None = None,
              truststore: str | None = None) -> ProbeResult:
        """`openssl s_client` on `via` against the backend, over a fresh connection (the run's may be closed)
        audited into that host's commands.log like every other command; with an `offer`, the survey too
        (`sclient.survey_via_host`). Raises what probe_via_host raises."""
        with opened(via, self.settings, self._audit_path(via)) as connection:
            if offer is not None:
                return survey_via_host(connection, backend.host, backend.port or 443, backend.sni, offer,
                                       anchors=anchors, truststore=truststore)
            return probe_via_host(connection, backend.host, backend.port or 443, backend.sni)

    def close(self) -> list[StepResult]:
        """Stop captures still running, remove their files, close connections; one `cleanup` StepResult per
        capture it had to stop (none after a normal run, whose captures were stopped and removed already).

        Idempotent (a second call returns []); callable from a signal handler or atexit (it reuses no pool and
        takes a re-entrant lock).
        """
        with self._lock:
            if self._closed:
                return []
            self._closed = True
            captures = dict(self._captures)
            self._captures.clear()
            connections = dict(self._connections)
        results: dict[str, StepResult] = {}
        threads = [
            threading.Thread(
                target=self._cleanup_host,
                args=(name, handle, connections.get(name), results),
                daemon=True,
            )
            for name, handle in captures.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=self.settings.connect_timeout + 30)
        for connection in connections.values():
            connection.close()
        return [
            results.get(name)
            or StepResult(
                name,
                Step.CLEANUP,
                StepStatus.FAILED,
                "timeout",
                f"{name} -> {Step.CLEANUP}: removing the capture did not finish; its own time limit ends it",
            )
            for name in captures
        ]

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------------

    def _cleanup_host(
        self,
        name: str,
        handle: capture.CaptureHandle,
        connection: HostConnection | None,
        results: dict[str, StepResult],
    ) -> None:
        host = next(h for h in self.hosts if h.name == name)
        started = time.monotonic()
        try:
            if connection is None or not connection.is_open:
                connection = open_host(host, self.settings, self._audit_path(host))
            connection.deadline = None
            capture.remove_capture(connection, handle)
        except HostError as e:  # the remote `timeout` still ends the capture by itself: recorded, not raised
            results[name] = _failed(name, Step.CLEANUP, e, started)
        except RemoteError as e:
            results[name] = StepResult(
                name, Step.CLEANUP, StepStatus.FAILED, e.reason, e.message, time.monotonic() - started
            )
        else:
            results[name] = StepResult(name, Step.CLEANUP, StepStatus.OK, seconds=time.monotonic() - started)

    def _phase(
        self,
        step: Step,
        hosts: Sequence[InventoryHost],
        work: Callable[[InventoryHost], str],
        needs_connection: bool = True,
    ) -> list[StepResult]:
        return [r for results in self._chains([(step, work)], hosts, needs_connection) for r in results]

    def _chains(
        self,
        steps: Sequence[tuple[Step, Callable[[InventoryHost], str]]],
        hosts: Sequence[InventoryHost],
        needs_connection: bool = True,
    ) -> list[list[StepResult]]:
        """Each host runs `steps` one after the other, hosts side by side: a host done with a step goes on to
        the next without waiting for the slowest host (one StepResult per step and host)."""
        width = self.workers if not needs_connection else max(self.workers, OPEN_CONNECTION_WORKERS)
        with ThreadPoolExecutor(
            max_workers=min(width, max(1, len(hosts))), thread_name_prefix=f"fleet-{steps[0][0]}"
        ) as pool:
            return list(pool.map(
                lambda host: [self._step(step, host, work, needs_connection) for step, work in steps], hosts
            ))

    def _step(
        self, step: Step, host: InventoryHost, work: Callable[[InventoryHost], str], needs_connection: bool
    ) -> StepResult:
        started = time.monotonic()
        if needs_connection and host.name not in self._connections:
            why = self._failed.get(host.name)
            message = f"not connected ({why.problem})" if why else "not connected"
            return self._report(StepResult(host.name, step, StepStatus.SKIPPED, "not-connected", message))
        self._notify(host.name, step, "started")
        connection = self._connections.get(host.name)
        if connection is not None:
            connection.deadline = started + self.settings.host_deadline
        try:
            detail = work(host)
        except _NotApplicable as e:
            return self._report(
                StepResult(
                    host.name,
                    step,
                    StepStatus.NOT_APPLICABLE,
                    "not-applicable",
                    str(e),
                    time.monotonic() - started,
                )
            )
        except HostError as e:
            return self._report(_failed(host.name, step, e, started))
        except RemoteError as e:
            return self._report(
                StepResult(
                    host.name, step, StepStatus.FAILED, "failed", e.message, time.monotonic() - started
                )
            )
        except OSError as e:  # writing into the staging dir on the collector's side
            return self._report(
                StepResult(
                    host.name,
                    step,
                    StepStatus.FAILED,
                    "local-io",
                    f"{host.name} -> {step}: {e}",
                    time.monotonic() - started,
                )
            )
        finally:
            if connection is not None:
                connection.deadline = None
        result = StepResult(host.name, step, StepStatus.OK, seconds=time.monotonic() - started)
        self._notify(host.name, step, f"ok: {detail}")
        return result

    def _report(self, result: StepResult) -> StepResult:
        self._notify(result.host, result.step, f"{result.status.value}: {result.message}")
        return result

    def _notify(self, host: str, step: str, text: str) -> None:
        if self.observer is not None:
            self.observer(host, step, text)

    def _local(self, host: InventoryHost, name: str) -> Path:
        path = self.staging_dir / layout.host_file(host.name, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def _deliver(self, host: InventoryHost, name: str) -> None:
        if self.delivered is not None:
            self.delivered(layout.host_file(host.name, name))

    def _audit_path(self, host: InventoryHost) -> Path:
        return self.staging_dir / layout.host_file(host.name, layout.HOST_COMMANDS)


class _NotApplicable(Exception):
    """The step does not apply to this host (e.g. logs on a backend)."""


def _failed(host: str, step: Step, error: HostError, started: float) -> StepResult:
    return StepResult(host, step, StepStatus.FAILED, error.reason, error.message, time.monotonic() - started)

"""The state one `collect` run carries from stage to stage, and the fail-forward step recorder."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from collector.bundle.package import BundleWriter
from collector.errors import CollectorError
from collector.inventory import Inventory
from collector.progress import RunObserver
from collector.remote.fleet import Fleet
from collector.run.reproduce import Reproduction
from collector.settings import Backend, RunSettings
from collector.steps import Step, StepResult, StepStatus
from collector.tls.handshake import ProbeResult

if TYPE_CHECKING:  # loaded by the stages that use them, not before the first host is reached
    from collector.diagnosis.causes import Diagnosis
    from collector.diagnosis.evidence import Evidence
    from collector.edge.client import EdgeClient
    from collector.edge.resolve import Resolution
    from collector.edge.trace import TraceResult, TraceSession

T = TypeVar("T")

EDGE_HOST = "edge"
LOCAL_HOST = "local"


@dataclass
class RunContext:
    """Mutable on purpose: each stage adds what it learned; `run_collect` owns the one instance.

    Attributes:
        staging: the raw directory SSH fetches and management API documents land in (bundle layout paths);
            `import_raw` copies it into `writer`, which redacts every file.
        writer: the BundleWriter; everything the run writes itself goes through it (``None`` in a dry run,
            which writes nothing: `bundle_writer` raises then).
        steps: every host × step outcome so far.
        client: the management API client (``None`` with --no-api, or before/without resolving).
        resolution: what the management API said (``None`` with --no-api or when resolving failed).
        inventory: the SSH hosts (``None`` without --inventory); in `collect package`, the collection's.
        fleet: the open connections (``None`` until hosts were connected, or when there are none).
        trace_session / trace_result: the debug session and what it caught (``None`` without one).
        backend_addresses / mp_addresses: IPs the capture filters use.
        backend_ports: the backend ports (the capture filters on them too).
        backend_targets: the backends to probe, port filled in, each with the SNI the MP sends.
        probe_results: what the probes found; analysis / diagnosis: the evidence and the verdict.
        message_ids: from the trace and the reproduction's response headers.
        captured: inventory names of hosts whose capture was fetched.
        interrupted: SIGINT/SIGTERM arrived; the remaining collection is skipped and a partial bundle written.
        annotated_captures: bundle paths of the annotated captures written (`analysis/BACKEND.pcapng`).
    """

    settings: RunSettings
    observer: RunObserver
    staging: Path
    run_id: str
    writer: BundleWriter | None = None
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    steps: list[StepResult] = field(default_factory=list)
    client: EdgeClient | None = None
    resolution: Resolution | None = None
    inventory: Inventory | None = None
    fleet: Fleet | None = None
    trace_session: TraceSession | None = None
    trace_result: TraceResult | None = None
    reproduction: Reproduction | None = None
    backend_addresses: list[str] = field(default_factory=list)
    backend_ports: list[int] = field(default_factory=list)
    backend_targets: list[Backend] = field(default_factory=list)
    mp_addresses: list[str] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    captured: list[str] = field(default_factory=list)
    probe_results: list[ProbeResult] = field(default_factory=list)
    analysis: Evidence | None = None
    diagnosis: Diagnosis | None = None
    interrupted: bool = False
    annotated_captures: list[str] = field(default_factory=list)

    def record(self, result: StepResult) -> StepResult:
        self.steps.append(result)
        self.observer.step_finished(result)
        return result

    def record_all(self, results: Iterable[StepResult]) -> list[StepResult]:
        return [self.record(r) for r in results]

    def attempt(self, host: str, step: Step | str, action: Callable[[], T]) -> T | None:
        """Run one step; record ok, or failed with the error's words, and go on (fail forward)."""
        started = time.monotonic()
        try:
            value = action()
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug in one collector must not cost the operator the bundle
            self.record(failed_step(host, step, exc, time.monotonic() - started))
            return None
        self.record(StepResult(host, step, StepStatus.OK, seconds=time.monotonic() - started))
        return value

    @property
    def bundle_writer(self) -> BundleWriter:
        """The writer of a real run (a dry run has none and writes nothing)."""
        if self.writer is None:
            raise RuntimeError("this run writes no bundle (a dry run)")
        return self.writer

    @property
    def bundle_root(self) -> Path:
        """The bundle being built (what `evidence_from_bundle` reads, like `collect analyze` would)."""
        return Path(self.bundle_writer.root)

    def attempt_quiet(self, host: str, step: Step | str, action: Callable[[], T]) -> T | None:
        """Like `attempt`, but only a failure is recorded (for many small internal steps)."""
        started = time.monotonic()
        try:
            return action()
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - same reason as attempt()
            self.record(failed_step(host, step, exc, time.monotonic() - started))
            return None

    def skip(self, host: str, step: Step | str, reason: str, message: str,
             status: StepStatus = StepStatus.SKIPPED) -> None:
        self.record(StepResult(host, step, status, reason, message))

    def failed(self, step: Step | str) -> bool:
        return any(s.step == step and s.status is StepStatus.FAILED for s in self.steps)


def failed_step(host: str, step: Step | str, exc: Exception, seconds: float) -> StepResult:
    """The record of a failed step: our errors in their own words and reason, anything else as a bug."""
    if isinstance(exc, CollectorError):
        return StepResult(host, step, StepStatus.FAILED, exc.reason, str(exc), seconds)
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    return StepResult(host, step, StepStatus.FAILED, "internal-error",
                      f"{host} -> {step}: internal error (a bug, please report it): "
                      f"{type(exc).__name__}: {exc}{at}",
                      seconds)


"""The state one `collect` run carries from stage to stage, and the fail-forward step recorder."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from collector.errors import CollectorError, RemoteError
from collector.progress import RunObserver
from collector.run.reproduce import Reproduction
from collector.settings import RunSettings
from collector.steps import StepResult, StepStatus

T = TypeVar("T")

EDGE_HOST = "edge"
LOCAL_HOST = "local"


@dataclass
class RunContext:
    """Mutable on purpose: each stage adds what it learned; `run_collect` owns the one instance.

    Attributes:
        staging: the raw directory SSH fetches and management API documents land in (bundle layout paths);
            `import_raw` copies it into `writer`, which redacts every file.
        writer: the BundleWriter; everything the run writes itself goes through it.
        steps: every host × step outcome so far.
        resolution: what the management API said (``None`` with --no-api or when resolving failed).
        backend_addresses / mp_addresses: IPs the capture filters use.
        backend_ports: the backend ports (the capture filters on them too).
        message_ids: from the trace and the reproduction's response headers.
        captured: inventory names of hosts whose capture was fetched.
        interrupted: SIGINT/SIGTERM arrived; the remaining collection is skipped and a partial bundle written.
    """

    settings: RunSettings
    observer: RunObserver
    staging: Path
    run_id: str
    writer: Any = None
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    steps: list[StepResult] = field(default_factory=list)
    client: Any = None
    resolution: Any = None
    inventory: Any = None
    fleet: Any = None
    trace_session: Any = None
    trace_result: Any = None
    reproduction: Reproduction | None = None
    backend_addresses: list[str] = field(default_factory=list)
    backend_ports: list[int] = field(default_factory=list)
    backend_targets: list[tuple[str, int, str | None]] = field(default_factory=list)  # host, port, sni
    mp_addresses: list[str] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    captured: list[str] = field(default_factory=list)
    probe_results: list[Any] = field(default_factory=list)
    analysis: Any = None
    diagnosis: Any = None
    interrupted: bool = False

    def record(self, result: StepResult) -> StepResult:
        self.steps.append(result)
        self.observer.step_finished(result)
        return result

    def record_all(self, results: Iterable[StepResult]) -> list[StepResult]:
        return [self.record(r) for r in results]

    def attempt(self, host: str, step: str, action: Callable[[], T]) -> T | None:
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
    def bundle_root(self) -> Path:
        """The bundle being built (what `evidence_from_bundle` reads, like `collect analyze` would)."""
        return Path(self.writer.root)

    def attempt_quiet(self, host: str, step: str, action: Callable[[], T]) -> T | None:
        """Like `attempt`, but only a failure is recorded (for many small internal steps)."""
        started = time.monotonic()
        try:
            return action()
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - same reason as attempt()
            self.record(failed_step(host, step, exc, time.monotonic() - started))
            return None

    def skip(self, host: str, step: str, reason: str, message: str,
             status: StepStatus = StepStatus.SKIPPED) -> None:
        self.record(StepResult(host, step, status, reason, message))

    def failed(self, step: str) -> bool:
        return any(s.step == step and s.status is StepStatus.FAILED for s in self.steps)


def failed_step(host: str, step: str, exc: Exception, seconds: float) -> StepResult:
    """The record of a failed step: our errors in their own words, anything else as a reported bug."""
    if isinstance(exc, CollectorError):
        return StepResult(host, step, StepStatus.FAILED, _reason(exc), str(exc), seconds)
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    return StepResult(host, step, StepStatus.FAILED, "internal-error",
                      f"{host} -> {step}: internal error (a bug, please report it): {type(exc).__name__}: {exc}{at}",
                      seconds)


def _reason(exc: CollectorError) -> str:
    """A short machine-readable reason from the error's type (never from its message text)."""
    name = type(exc).__name__
    reason = getattr(exc, "reason", None)  # remote HostError carries unreachable, sudo-denied, disk-full...
    if isinstance(reason, str) and reason:
        return reason
    if isinstance(exc, RemoteError):
        return "remote-error"
    return {"EdgeAuthError": "credentials-refused", "EdgeNotFoundError": "not-found", "EdgeError": "edge-error",
            "InputError": "bad-input", "CaptureFormatError": "bad-capture", "BundleError": "bundle-error",
            "UsageError": "usage"}.get(name, name)

"""The record of one host x step outcome, kept for the manifest and the summary
(fail forward, never abort)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Step(str, enum.Enum):
    """The steps of a run; values are the strings written to manifest.json (`StepResult.step`).

    A few records carry a step made of a verb and a path instead (``bundle hosts/mp1/capture.pcap``: one file
    imported into the bundle), so `StepResult.step` is typed ``Step | str``.
    """

    RESOLVE = "resolve"
    CONNECT = "connect"
    START_CAPTURE = "start-capture"
    STOP_CAPTURE = "stop-capture"
    FETCH_CAPTURE = "fetch-capture"
    CLEANUP = "cleanup"
    LOGS = "logs"
    FACTS = "facts"
    TRACE = "trace"
    START_TRACE = "start-trace"
    FETCH_TRACE = "fetch-trace"
    STOP_TRACE = "stop-trace"
    REPRODUCE = "reproduce"
    PROBE = "probe"
    ANALYZE_CAPTURES = "analyze-captures"
    ANALYZE = "analyze"
    DIAGNOSE = "diagnose"
    ANNOTATE = "annotate-capture"
    REPORTS = "reports"
    IMPORT = "import"
    COLLECT = "collect"
    CLOSE = "close"

    def __str__(self) -> str:
        # f"{host} -> {step}: ..." messages and templates show the manifest string, never `Step.LOGS`.
        return self.value


class StepStatus(str, enum.Enum):
    """How a step ended; values are the strings written to manifest.json."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_APPLICABLE = "not-applicable"


@dataclass(frozen=True)
class StepResult:
    """One step on one host (or on the management API, host ``"edge"``; or locally, host ``"local"``).

    Attributes:
        host: inventory name of the host, ``"edge"`` for management API steps, ``"local"`` for the collector's
            own work.
        step: a `Step` (its value is what manifest.json shows), or ``bundle PATH`` for one imported file.
        status: how it ended.
        reason: a short machine-readable reason when not OK (``unreachable``, ``host-key-mismatch``,
            ``tcpdump-missing``, ``sudo-denied``, ``disk-full``, ``timeout``...); ``None`` when OK.
        message: the human sentence (names host, step and what to do next); empty when OK.
        seconds: wall time of the step.
    """

    host: str
    step: Step | str
    status: StepStatus
    reason: str | None = None
    message: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "host": self.host,
            "step": str(self.step),
            "status": self.status.value,
            "reason": self.reason,
            "message": self.message,
            "seconds": round(self.seconds, 3),
        }

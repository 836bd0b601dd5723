"""The record of one host x step outcome, kept for the manifest and the summary (fail forward, never abort)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
        host: inventory name of the host, ``"edge"`` for management API steps, ``"local"`` for collector-side work.
        step: short step name (``resolve``, ``connect``, ``start-capture``, ``stop-capture``, ``fetch-capture``,
            ``logs``, ``facts``, ``trace``, ``reproduce``, ``probe``, ``analyze``...).
        status: how it ended.
        reason: a short machine-readable reason when not OK (``unreachable``, ``host-key-mismatch``,
            ``tcpdump-missing``, ``sudo-denied``, ``disk-full``, ``timeout``...); ``None`` when OK.
        message: the human sentence (names host, step and what to do next); empty when OK.
        seconds: wall time of the step.
    """

    host: str
    step: str
    status: StepStatus
    reason: str | None = None
    message: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "host": self.host,
            "step": self.step,
            "status": self.status.value,
            "reason": self.reason,
            "message": self.message,
            "seconds": round(self.seconds, 3),
        }

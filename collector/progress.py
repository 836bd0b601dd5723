"""How a run reports progress: the observer protocol the CLI implements (rich lives only in
collector/cli/)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from collector.steps import StepResult


class Stage(str, enum.Enum):
    """The stages of `collect`, in the order they run (DESIGN "What the tool does")."""

    RESOLVE = "resolve"
    CONNECT = "connect"
    CAPTURE = "capture"
    TRACE = "trace"
    REPRODUCE = "reproduce"
    STOP_CAPTURE = "stop-capture"
    GATHER = "gather"
    PROBE = "probe"
    ANALYZE = "analyze"
    PACKAGE = "package"


class RunObserver(Protocol):
    """Receives progress from `run_collect`; every method must return quickly and never raise."""

    def stage_started(self, stage: Stage, detail: str) -> None:
        """A stage begins; `detail` says what it works on (hosts, proxy, URL)."""

    def step_finished(self, result: StepResult) -> None:
        """One host × step ended (ok, failed, skipped or not applicable)."""

    def window_tick(self, seconds_left: float, seconds_total: float) -> None:
        """The reproduction/capture window is open; called about once a second until it closes (0 last)."""

    def note(self, text: str) -> None:
        """A sentence worth showing the operator (what happens next, what was skipped and why)."""


class NullObserver:
    """Shows nothing (library use, tests that only look at the outcome)."""

    def stage_started(self, stage: Stage, detail: str) -> None:
        pass

    def step_finished(self, result: StepResult) -> None:
        pass

    def window_tick(self, seconds_left: float, seconds_total: float) -> None:
        pass

    def note(self, text: str) -> None:
        pass


@dataclass
class RecordingObserver:
    """Keeps every event in order as plain tuples (used by tests and by `--json` to list the stages run)."""

    events: list[tuple[str, object]] = field(default_factory=list)

    def stage_started(self, stage: Stage, detail: str) -> None:
        self.events.append(("stage", stage.value))

    def step_finished(self, result: StepResult) -> None:
        self.events.append(("step", (result.host, result.step, result.status.value)))

    def window_tick(self, seconds_left: float, seconds_total: float) -> None:
        self.events.append(("tick", round(seconds_left)))

    def note(self, text: str) -> None:
        self.events.append(("note", text))

    def stages(self) -> list[str]:
        return [str(value) for kind, value in self.events if kind == "stage"]

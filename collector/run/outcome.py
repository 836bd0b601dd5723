"""What one `collect` run ended with, and its one JSON form (`collect --json`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector.errors import EXIT_COMPLETE, EXIT_FAILED, EXIT_PARTIAL
from collector.steps import StepResult, StepStatus

if TYPE_CHECKING:
    from collector.diagnosis.causes import Diagnosis

EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class RunOutcome:
    """The end of a run.

    Attributes:
        bundle: the `.tar.gz` written, ``None`` when nothing was written (dry run, or failure
            before packaging).
        directory: the bundle directory kept beside it (`--keep-directory`), ``None`` otherwise.
        diagnosis: the verdict, ``None`` when the run stopped before analysis (or a dry run).
        steps: every host × step outcome, in the order they finished.
        exit_code: 0 complete, 3 partial (bundle written, a step failed or the run was interrupted),
            1 nothing written, 130 interrupted before anything was written.
        plan: the resolved plan of a dry run (what would be captured, where, with which commands).
        interrupted: the operator stopped the run (SIGINT/SIGTERM) and the bundle holds what was collected.
    """

    bundle: Path | None
    diagnosis: Diagnosis | None
    steps: tuple[StepResult, ...]
    exit_code: int
    directory: Path | None = None
    plan: dict[str, Any] | None = None
    interrupted: bool = False
    json: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def failed_steps(self) -> tuple[StepResult, ...]:
        return tuple(s for s in self.steps if s.status is StepStatus.FAILED)


def decide_exit_code(bundle: Path | None, steps: tuple[StepResult, ...], interrupted: bool) -> int:
    """0 complete, 3 partial, 1 nothing written (130 when interrupted before anything was written)."""
    if bundle is None:
        return EXIT_INTERRUPTED if interrupted else EXIT_FAILED
    if interrupted or any(s.status is StepStatus.FAILED for s in steps):
        return EXIT_PARTIAL
    return EXIT_COMPLETE


def outcome_to_json(
    bundle: Path | None,
    directory: Path | None,
    diagnosis: Diagnosis | None,
    steps: tuple[StepResult, ...],
    exit_code: int,
    plan: dict[str, Any] | None,
    interrupted: bool,
) -> dict[str, Any]:
    """The one JSON object `collect --json` prints."""
    return {
        "bundle": str(bundle) if bundle else None,
        "directory": str(directory) if directory else None,
        "exit_code": exit_code,
        "complete": exit_code == EXIT_COMPLETE,
        "interrupted": interrupted,
        "diagnosis": diagnosis.to_json() if diagnosis else None,
        "steps": [s.to_json() for s in steps],
        "plan": plan,
    }


def build_outcome(
    bundle: Path | None,
    diagnosis: Diagnosis | None,
    steps: list[StepResult],
    *,
    directory: Path | None = None,
    plan: dict[str, Any] | None = None,
    interrupted: bool = False,
    exit_code: int | None = None,
) -> RunOutcome:
    frozen = tuple(steps)
    code = decide_exit_code(bundle, frozen, interrupted) if exit_code is None else exit_code
    return RunOutcome(
        bundle=bundle,
        diagnosis=diagnosis,
        steps=frozen,
        exit_code=code,
        directory=directory,
        plan=plan,
        interrupted=interrupted,
        json=outcome_to_json(bundle, directory, diagnosis, frozen, code, plan, interrupted),
    )

"""`collect run`'s progress on a terminal (rich): a line per stage and per host x step, a countdown during
the capture window. Its own module so that a run whose stderr is not a terminal never imports rich."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.status import Status

from collector.progress import Stage
from collector.steps import StepResult, StepStatus

_MARK = {
    StepStatus.OK: "[green]✓[/]",
    StepStatus.FAILED: "[red]✗[/]",
    StepStatus.SKIPPED: "[yellow]–[/]",
    StepStatus.NOT_APPLICABLE: "[dim]·[/]",
}


class RichObserver:
    """Implements collector.progress.RunObserver on stderr."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self._status: Status | None = None

    def stage_started(self, stage: Stage, detail: str) -> None:
        self._stop_countdown()
        self.console.print(f"[bold cyan]▸ {stage.value}[/] [dim]{escape(detail)}[/]")

    def step_finished(self, result: StepResult) -> None:
        mark = _MARK[result.status]
        line = f"  {mark} {escape(result.host):<14} {result.step:<16} [dim]{result.seconds:5.1f}s[/]"
        if result.status is not StepStatus.OK:
            line += f"  {escape(result.message or result.reason or '')}"
        if self._status is not None:
            self._status.console.print(line)
        else:
            self.console.print(line)

    def window_tick(self, seconds_left: float, seconds_total: float) -> None:
        text = f"reproduction window: [bold]{round(seconds_left)}[/] s left of {int(seconds_total)} s"
        if seconds_left <= 0:
            self._stop_countdown()
            self.console.print(f"  [green]✓[/] capture window closed after {int(seconds_total)} s")
            return
        if self._status is None:
            self._status = self.console.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def note(self, text: str) -> None:
        self.console.print(f"  [yellow]![/] {escape(text)}")

    def _stop_countdown(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

"""`collect probe`: ask a backend which client-certificate CAs it accepts (placeholder until the probe lands)."""

from __future__ import annotations

from collector.cli import cli


@cli.command("probe")
def probe_command() -> None:
    """Ask the backend HOST:PORT which client-certificate CA names it accepts."""
    raise NotImplementedError

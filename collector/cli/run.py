"""`collect run` (and `collect --org …`): the whole playbook (placeholder until the run lands)."""

from __future__ import annotations

from collector.cli import cli


@cli.command("run")
def run_command() -> None:
    """Run the whole playbook against ORG/ENV/PROXY and write one support bundle."""
    raise NotImplementedError

"""`collect verify`: re-check every checksum in a bundle's manifest (placeholder until the bundle lands)."""

from __future__ import annotations

from collector.cli import cli


@cli.command("verify")
def verify_command() -> None:
    """Re-check every checksum listed in BUNDLE's manifest.json."""
    raise NotImplementedError

"""`collect verify`: re-check every checksum in a bundle's manifest."""

from __future__ import annotations

from pathlib import Path

import click

from collector import layout
from collector.cli.group import cli
from collector.errors import EXIT_COMPLETE, EXIT_FAILED


@cli.command("verify")
@click.argument("bundle", type=click.Path(path_type=Path))
def verify_command(bundle: Path) -> int:
    """Re-check every checksum listed in BUNDLE's manifest.json.

    BUNDLE is a bundle directory or its .tar.gz (read in place, nothing is extracted).

    \b
    Exit codes:
      0  every file matches its sha256 and size in the manifest
      1  a file is changed, missing or not listed (each one is printed)
      2  BUNDLE is not a bundle or cannot be read (no manifest, unsafe archive member, ...)
    """
    # imported here: the bundle checks pull in detect-secrets, which every other command would pay for
    from collector.bundle.manifest import verify_bundle

    report = verify_bundle(bundle)
    if report.ok:
        partial = "" if report.complete else f" (the run that wrote it was partial: see {layout.SUMMARY})"
        click.echo(f"OK: {report.files_checked} files match the manifest of {bundle}{partial}")
        return EXIT_COMPLETE
    for problem in report.problems():
        click.echo(f"{bundle}: {problem}", err=True)
    click.echo(f"FAILED: {len(report.problems())} problem(s) in {bundle}", err=True)
    return EXIT_FAILED

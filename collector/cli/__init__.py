"""The `collect` command line: parse, build settings, make one library call, render, exit with the right code.

This is the one place where errors become exit codes (0 complete, 3 partial, 2 usage/input/credentials,
1 failed with no bundle, 130 interrupted before any bundle was written). Library code never prints, exits or
prompts. Each command lives in its own module of this folder and registers itself on `cli` when the group
imports it (`group.COMMAND_MODULES`), on first use of its name.
"""

from __future__ import annotations

import sys

import click

from collector.cli.group import cli, emit_json  # each command's module is imported when it is named
from collector.errors import EXIT_FAILED, EXIT_USAGE, CollectorError

# Ctrl-C (or SIGTERM) before any bundle was written: the shell convention 128 + SIGINT, so scripts can tell an
# interrupted run from a failed one (an interrupted run that wrote its bundle exits 3: partial).
EXIT_INTERRUPTED = 130

__all__ = ["EXIT_INTERRUPTED", "cli", "emit_json", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn every outcome into a documented exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0].startswith("--") and args[0] not in ("--help", "-h", "--version"):
        # `collect --org O --env E --proxy P` is the documented short form of `collect run ...`.
        args.insert(0, "run")
    try:
        rv = cli.main(args=args, prog_name="collect", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("collect: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except CollectorError as exc:
        click.echo(f"collect: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("collect: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - a bug: say so, never exit 0
        click.echo(f"collect: internal error (a bug, please report it): {type(exc).__name__}: {exc}",
                   err=True)
        sys.exit(EXIT_FAILED)
    sys.exit(rv if isinstance(rv, int) else 0)


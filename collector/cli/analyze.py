"""`collect analyze`: offline analysis of captures, bundles and keystore documents."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from collector.cli.group import cli

if TYPE_CHECKING:
    from rich.progress import TaskID


@cli.command("analyze")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (DESIGN.md vocabulary) instead of text.")
@click.option("--truststore", "truststores", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="A certificate of the MP truststore (PEM, DER or an Edge cert JSON); repeatable. The"
                   " backend's chain is verified against them.")
def analyze_command(files: tuple[Path, ...], as_json: bool, truststores: tuple[Path, ...]) -> None:
    """Analyze captures and documents offline and name the cause.

    Each FILE is recognised by its content: pcap or pcapng (gzip allowed), a support bundle (.tar.gz or
    directory), an Edge keystore / alias / cert JSON document, a PEM certificate chain, probe results
    (`collect probe --json` output or a bundle's probe/results.json), or an NSS key log (SSLKEYLOGFILE
    format, decrypts TLS 1.3 handshakes). A PEM or cert document given as FILE is the MP's keystore; the
    certificates the MP trusts (the target's TrustStore) go with --truststore. No network is used. Exit 2
    names a file that cannot be used.
    """
    from collector.diagnosis.analyze import analyze_paths

    with _capture_progress() as progress:
        analysis = analyze_paths(list(files), list(truststores), progress)
    if as_json:
        # streamed: the same text as emit_json(analysis.to_json()) without holding all of it at once
        out = sys.stdout
        pending: list[str] = []
        size = 0
        for chunk in analysis.json_chunks():
            pending.append(chunk)
            size += len(chunk)
            if size >= 1 << 16:
                out.write("".join(pending))
                pending, size = [], 0
        out.write("".join(pending) + "\n")
        out.flush()
    else:
        from collector.diagnosis.ladder import render_analysis  # the text report only

        click.echo(render_analysis(analysis))


@contextlib.contextmanager
def _capture_progress() -> Iterator[Callable[[Path, int, int], None] | None]:
    """A progress bar per capture file on stderr when stderr is a terminal (a large capture takes a while);
    nothing otherwise, so that piped or logged output stays clean."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("reading {task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    )
    tasks: dict[Path, TaskID] = {}

    def told(path: Path, done: int, size: int) -> None:
        if path not in tasks:
            tasks[path] = bar.add_task(path.name, total=size or None)
        bar.update(tasks[path], completed=done)

    with bar:
        yield told

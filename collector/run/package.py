"""The bundle of one run: a raw directory the collectors write into, imported (redacted) into the
BundleWriter, then reports, manifest and the atomic `.tar.gz`."""

from __future__ import annotations

import shutil
import tempfile
from functools import partial
from pathlib import Path

from collector import __version__, layout
from collector.bundle.package import BundleWriter
from collector.bundle.workers import usable_cpus
from collector.errors import BundleError
from collector.progress import Stage
from collector.run.context import LOCAL_HOST, RunContext
from collector.settings import RunSettings
from collector.steps import Step


def open_bundle(settings: RunSettings) -> tuple[BundleWriter, Path]:
    """The bundle writer (its partial directory inside --out) and a private raw directory beside it.

    SSH fetches and management API documents land in the raw directory first; `import_raw` copies them into
    the writer, which redacts every file on its way in.
    """
    name = layout.bundle_name(settings.org, settings.env, settings.proxy, case=settings.case)
    writer = BundleWriter(settings.out, name)
    writer.use_workers(usable_cpus())
    try:
        raw = Path(tempfile.mkdtemp(prefix=f".{name}.raw-", dir=settings.out))
        raw.chmod(0o700)
    except OSError as exc:
        writer.abort()
        reason = exc.strerror or exc
        raise BundleError(f"{settings.out}: cannot create a working directory: {reason}") from exc
    return writer, raw


def remove_raw(raw: Path) -> None:
    shutil.rmtree(raw, ignore_errors=True)


def import_raw(ctx: RunContext) -> None:
    """Copy every collected file into the bundle through the writer (redaction, 0600), recording failures.
    The large ones all go to the writer's workers first (some already went as their host delivered them)."""
    files = []
    for path in sorted(p for p in ctx.staging.rglob("*") if p.is_file() and not p.is_symlink()):
        if path.name.startswith(".") and path.name.endswith((".part", ".incoming")):
            continue  # a write that never finished
        files.append((path.relative_to(ctx.staging).as_posix(), path))
    for rel, path in files:
        ctx.bundle_writer.copy_file_soon(rel, path)
    for rel, path in files:
        source = rel.split("/")[1] if rel.startswith(layout.HOSTS_DIR + "/") else "edge"
        copy = partial(ctx.bundle_writer.copy_file, rel, path, collector=source)
        ctx.attempt_quiet(source, f"bundle {rel}", copy)


def package(ctx: RunContext) -> tuple[Path, Path | None]:
    """SUMMARY.md and report.html, then manifest.json and the atomic rename to `.tar.gz`."""
    ctx.observer.stage_started(Stage.PACKAGE, "reports, manifest and the .tar.gz")
    writer = ctx.bundle_writer
    if ctx.attempt(LOCAL_HOST, Step.REPORTS, lambda: write_reports(ctx)) is None:
        writer.write_text(layout.SUMMARY, fallback_summary(ctx), collector="report")
    final = writer.finalize(tool_version=__version__, settings=ctx.settings.to_manifest(), steps=ctx.steps,
                                started=ctx.started, keep_directory=ctx.settings.keep_directory)
    return final.archive, final.directory


def write_reports(ctx: RunContext) -> bool:
    from collector.run.reports import render_reports  # noqa: PLC0415 - loaded by stages.load_later_stages

    for rel, text in render_reports(ctx).items():
        ctx.bundle_writer.write_text(rel, text, collector="report")
    return True


def fallback_summary(ctx: RunContext) -> str:
    """A plain SUMMARY.md when the templates cannot render: the verdict and every step, so the ticket
    has them."""
    s = ctx.settings
    lines = [f"# apigee-collector: {s.org}/{s.env}/{s.proxy}", "",
             "The report templates failed to render (see the `reports` step below); "
             "this is the plain summary.", ""]
    if ctx.diagnosis is not None:
        lines += [f"**Cause:** `{ctx.diagnosis.cause.value}`: {ctx.diagnosis.summary}", ""]
        lines += [f"- {line}" for line in ctx.diagnosis.evidence]
        lines += ["", f"**Fix:** {ctx.diagnosis.resolution}", ""]
    lines += ["| host | step | status | reason | message |", "|---|---|---|---|---|"]
    lines += [f"| {r.host} | {r.step} | {r.status.value} | {r.reason or ''} | {r.message} |"
              for r in ctx.steps]
    return "\n".join(lines) + "\n"

"""Open the bundle's staging directory, and at the end write reports and manifest and finalize the .tar.gz."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from collector import __version__
from collector.bundle import layout
from collector.errors import BundleError
from collector.progress import Stage
from collector.run.context import RunContext
from collector.settings import RunSettings


def open_bundle(settings: RunSettings) -> tuple[Any, Path]:
    """The bundle writer and its staging directory (a temporary name inside --out, renamed when complete)."""
    name = layout.bundle_name(settings.org, settings.env, settings.proxy, case=settings.case)
    try:
        settings.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BundleError(f"{settings.out}: cannot create the output directory (--out): {exc.strerror}") from exc
    try:
        from collector.bundle.package import BundleWriter
    except ImportError:
        writer: Any = _ShimWriter(settings.out, name)
    else:
        writer = BundleWriter(settings.out, name)
    return writer, _staging_of(writer)


def _staging_of(writer: Any) -> Path:
    for attribute in ("staging", "staging_dir", "root", "directory", "path"):
        value = getattr(writer, attribute, None)
        if isinstance(value, Path):
            return value
    raise BundleError("the bundle writer exposes no staging directory")


def package(ctx: RunContext, writer: Any) -> tuple[Path, Path | None]:
    """SUMMARY.md, report.html, manifest.json, then the atomic rename to `.tar.gz` (and the directory if kept)."""
    ctx.observer.stage_started(Stage.PACKAGE, "reports, manifest and the .tar.gz")
    _write_reports(ctx)
    _make_private(ctx.staging)
    _write_manifest(ctx)
    result = writer.finalize(keep_directory=ctx.settings.keep_directory)
    if isinstance(result, tuple):
        return Path(result[0]), (Path(result[1]) if result[1] else None)
    archive = Path(getattr(result, "archive", result))
    directory = getattr(result, "directory", None)
    return archive, (Path(directory) if directory else None)


def _make_private(root: Path) -> None:
    """Every bundle file 0600 and folder 0700, whoever wrote it (SSH fetches keep the umask's modes)."""
    for path in root.rglob("*"):
        try:
            if path.is_symlink():
                path.unlink()  # a bundle holds regular files only
            else:
                path.chmod(0o700 if path.is_dir() else 0o600)
        except OSError as exc:
            raise BundleError(f"{path}: cannot restrict its permissions: {exc.strerror}") from exc


def _write_reports(ctx: RunContext) -> None:
    from collector.run.stages import write_text

    write_text(ctx, layout.SUMMARY, _shim_summary(ctx))


def _write_manifest(ctx: RunContext) -> None:
    from collector.run.stages import write_json

    files = {}
    for path in sorted(ctx.staging.rglob("*")):
        if path.is_file() and path.name != layout.MANIFEST:
            data = path.read_bytes()
            files[path.relative_to(ctx.staging).as_posix()] = {"sha256": hashlib.sha256(data).hexdigest(),
                                                                "bytes": len(data)}
    write_json(ctx, layout.MANIFEST, {
        "tool": "apigee-collector", "version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": ctx.settings.to_manifest(), "run_id": ctx.run_id,
        "steps": [s.to_json() for s in ctx.steps],
        "diagnosis": ctx.diagnosis.to_json() if ctx.diagnosis else None,
        "files": files,
    })


def _shim_summary(ctx: RunContext) -> str:
    # SHIM until collector/bundle/report.py lands: the bundle helper's render_summary replaces this.
    lines = [f"# apigee-collector: {ctx.settings.org}/{ctx.settings.env}/{ctx.settings.proxy}", ""]
    if ctx.diagnosis is not None:
        lines += [f"**Cause:** `{ctx.diagnosis.cause.value}`: {ctx.diagnosis.summary}", ""]
    lines += ["| host | step | status | reason |", "|---|---|---|---|"]
    lines += [f"| {s.host} | {s.step} | {s.status.value} | {s.reason or ''} |" for s in ctx.steps]
    return "\n".join(lines) + "\n"


class _ShimWriter:
    """SHIM until collector/bundle/package.py lands: temp dir in --out, tar.gz, atomic rename."""

    def __init__(self, out_dir: Path, name: str) -> None:
        self.out_dir = out_dir
        self.name = name
        self.staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir))

    def finalize(self, keep_directory: bool = False) -> tuple[Path, Path | None]:
        archive = self.out_dir / f"{self.name}.tar.gz"
        partial = self.out_dir / f".{self.name}.tar.gz.part"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            tar.add(self.staging, arcname=self.name)
        os.replace(partial, archive)
        directory = None
        if keep_directory:
            directory = self.out_dir / self.name
            os.replace(self.staging, directory)
        else:
            shutil.rmtree(self.staging, ignore_errors=True)
        return archive, directory

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)



"""The bundle's manifest (every file with its sha256, every host x step outcome, redactions) and its verification."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from collector import layout
from collector.bundle.redact import Redaction, redact_text, summarize_redactions
from collector.errors import InputError
from collector.steps import StepResult, StepStatus

MANIFEST_FORMAT = "apigee-collector-bundle/1"
IP_NOTE = "IP addresses are kept on purpose: the captures and the analysis need them."
_SECRET_SETTING = re.compile(r"password|passwd|secret|token|credential|api[_-]?key", re.IGNORECASE)
_HASH_BLOCK = 1024 * 1024


def build_manifest(
    root: Path,
    *,
    tool_version: str,
    settings: Mapping[str, object],
    steps: Sequence[StepResult],
    redactions: Sequence[Redaction],
    started: datetime,
    finished: datetime,
    file_meta: Mapping[str, Mapping[str, object]] | None = None,
) -> dict[str, object]:
    """The manifest of the bundle directory `root`: every file but manifest.json itself, hashed now.

    `file_meta` maps a bundle path to what is known about the file (source URL or host path, collector, status,
    seconds...); it is merged into that file's entry. `complete` is false when any step failed. Settings whose
    name looks secret are masked even if the caller forgot to leave them out.
    """
    meta = file_meta or {}
    files = []
    for rel, path in _walk_bundle(root):
        digest, size = _hash_file(path)
        entry: dict[str, object] = {"path": rel, "sha256": digest, "size": size}
        entry.update({k: v for k, v in meta.get(rel, {}).items() if k not in entry})
        files.append(entry)
    return {
        "format": MANIFEST_FORMAT,
        "tool": {"name": "apigee-collector", "version": tool_version},
        "started": _iso(started),
        "finished": _iso(finished),
        "complete": not any(s.status is StepStatus.FAILED for s in steps),
        "settings": {k: _mask_setting(k, v) for k, v in sorted(settings.items())},
        "steps": [s.to_json() for s in steps],
        "files": files,
        "redactions": {
            # a list, not a map: a JSON key named after a rule ("cookie": 1) would itself look like a secret
            "summary": [{"rule": rule, "count": n} for rule, n in summarize_redactions(redactions).items()],
            "records": [r.to_json() for r in redactions],
            "note": IP_NOTE,
        },
    }


def write_manifest(root: Path, manifest: Mapping[str, object]) -> Path:
    """Write manifest.json (0600) into the bundle directory, itself redacted: step messages quote commands and
    errors, which must not smuggle a secret past the rules."""
    text, _ = redact_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", layout.MANIFEST)
    path = root / layout.MANIFEST
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)
    return path


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mask_setting(name: str, value: object) -> object:
    return "REDACTED" if value not in (None, "", False) and _SECRET_SETTING.search(name) else value


def _walk_bundle(root: Path) -> Iterator[tuple[str, Path]]:
    """(bundle path, file) for every regular file under root, manifest.json excluded; symlinks are refused."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() or not path.is_file():
                raise InputError(root, f"{rel} is a symbolic link or not a regular file; a bundle holds files only")
            if rel != layout.MANIFEST:
                yield rel, path


def _hash_file(path: Path) -> tuple[str, int]:
    with path.open("rb") as f:
        return _hash_stream(f)


def _hash_stream(stream: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while block := stream.read(_HASH_BLOCK):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


@dataclass(frozen=True)
class VerifyReport:
    """The result of re-checking a bundle against its manifest.

    Attributes:
        bundle: the path given.
        files_checked: files listed in the manifest.
        missing: listed but absent. extra: present but not listed. changed: present with another sha256 or size.
        complete: the manifest's own `complete` flag (whether the run that wrote it had failed steps).
    """

    bundle: str
    files_checked: int
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    complete: bool = True

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.changed)

    def problems(self) -> list[str]:
        """One sentence per problem, in a stable order."""
        return (
            [f"{p}: changed (sha256 or size differs from the manifest)" for p in self.changed]
            + [f"{p}: missing (listed in the manifest, not in the bundle)" for p in self.missing]
            + [f"{p}: extra (in the bundle, not listed in the manifest)" for p in self.extra]
        )


def verify_bundle(path: Path) -> VerifyReport:
    """Re-compute every checksum of a bundle directory or `.tar.gz` and compare with its manifest.

    Raises InputError (exit 2) when `path` is not a readable bundle: no manifest, a malformed one, or an archive
    member that is a link, absolute, or climbs out with `..`.
    """
    if path.is_dir():
        found = {rel: _hash_file(p) for rel, p in _walk_bundle(path)}
        manifest_path = path / layout.MANIFEST
        if not manifest_path.is_file():
            raise InputError(path, f"not a bundle: no {layout.MANIFEST}")
        try:
            raw = manifest_path.read_bytes()
        except OSError as exc:
            raise InputError(path, f"cannot read {layout.MANIFEST}: {exc.strerror or exc}") from exc
    elif path.is_file():
        found, raw = _read_archive(path)
    else:
        raise InputError(path, "no such bundle (expected a bundle directory or .tar.gz)")
    listed, complete = _parse_manifest(path, raw)
    missing = sorted(set(listed) - set(found))
    extra = sorted(set(found) - set(listed))
    changed = sorted(p for p in set(listed) & set(found) if listed[p] != found[p])
    return VerifyReport(str(path), len(listed), tuple(missing), tuple(extra), tuple(changed), complete)


def _read_archive(path: Path) -> tuple[dict[str, tuple[str, int]], bytes]:
    """Hash every member of a bundle archive in place (nothing is extracted); return the manifest bytes too.

    The bundle is the archive's single top directory (``NAME/…`` as `collect` writes it, or ``./NAME/…``),
    or the archive root itself when manifest.json stands there (``tar -C NAME .`` writes ``./manifest.json``).
    """
    # (member name, path parts, sha256 and size, the bytes of a member that may be the manifest)
    hashed: list[tuple[str, tuple[str, ...], tuple[str, int], bytes | None]] = []
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                parts = _member_parts(path, member)
                if member.isdir():
                    continue
                stream = tar.extractfile(member)
                if stream is None:
                    raise InputError(path, f"member {member.name} cannot be read")
                if parts[-1] == layout.MANIFEST and len(parts) <= 2:
                    content = stream.read()
                    hashed.append((member.name, parts, _hash_stream(io.BytesIO(content)), content))
                else:
                    hashed.append((member.name, parts, _hash_stream(stream), None))
    except tarfile.TarError as exc:
        detail = str(exc).splitlines()[0].rstrip(":") if str(exc) else type(exc).__name__
        raise InputError(path, f"not a bundle (neither a bundle directory nor a readable .tar.gz: {detail})") from exc
    except (OSError, EOFError) as exc:
        raise InputError(path, f"cannot read the bundle archive: {exc}") from exc
    flat = any(parts == (layout.MANIFEST,) for _name, parts, _h, _c in hashed)
    top = None if flat or not hashed else hashed[0][1][0]
    found: dict[str, tuple[str, int]] = {}
    raw: bytes | None = None
    for name, parts, digest, manifest_bytes in hashed:
        if top is not None and (parts[0] != top or len(parts) < 2):
            raise InputError(path, f"member {name!r} is outside the bundle directory {top}/")
        rel = "/".join(parts if top is None else parts[1:])
        if rel == layout.MANIFEST:
            raw = manifest_bytes
        else:
            found[rel] = digest
    if raw is None:
        raise InputError(path, f"not a bundle: no {layout.MANIFEST} in the archive")
    return found, raw


def _member_parts(path: Path, member: tarfile.TarInfo) -> tuple[str, ...]:
    """A member's path components without `.` ones (``./SUMMARY.md`` is ``SUMMARY.md``); absolute names, `..`,
    links and special files are refused, and so is a file whose name is empty."""
    name = member.name
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if name.startswith("/") or ".." in parts or (not parts and not member.isdir()):
        raise InputError(path, f"unsafe member name {name!r} (absolute or with ..); refusing the archive")
    if not (member.isfile() or member.isdir()):
        raise InputError(path, f"member {name!r} is a link or special file; a bundle holds files only")
    return parts


def _parse_manifest(path: Path, raw: bytes) -> tuple[dict[str, tuple[str, int]], bool]:
    try:
        manifest = json.loads(raw)
        files = manifest["files"]
        listed = {str(f["path"]): (str(f["sha256"]), int(f["size"])) for f in files}
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise InputError(path, f"{layout.MANIFEST} is not a bundle manifest ({type(exc).__name__}: {exc})") from exc
    for rel in listed:
        if not rel or not layout.is_inside(rel):
            raise InputError(path, f"{layout.MANIFEST} lists an unsafe path {rel!r}")
    return listed, bool(manifest.get("complete", False))

"""Writing a bundle: every file redacted on its way in, 0600/0700, under a temporary name until
it is complete."""

from __future__ import annotations

import codecs
import contextlib
import gzip
import os
import re
import shutil
import threading
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from collector import __version__, layout
from collector.bundle.archives import SNIFF_BYTES, FileKind, is_capture_path, is_key_file, sniff_kind
from collector.bundle.manifest import build_manifest, write_manifest
from collector.bundle.redact import RULE_KEY_FILE, Redaction, redact_bytes, redact_seekable, redact_text
from collector.bundle.tarball import write_tarball
from collector.bundle.workers import MIN_WORKER_BYTES, RedactionWorkers, WorkerGone, open_private
from collector.errors import BundleError, InputError
from collector.steps import StepResult

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_NAME_SERIAL = 1000  # NAME, NAME-2 ... NAME-1000: more runs in one second means something is wrong
_SURROGATES = "apigee-collector-surrogates"


def _encode_surrogates(error: UnicodeError) -> tuple[bytes, int]:
    """Bytes a collector decoded with surrogateescape go back as they were; any other lone surrogate is
    spelled out (``\\ud800``) rather than failing the write."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = bytearray()
    for char in error.object[error.start : error.end]:
        code = ord(char)
        out += bytes([code - 0xDC00]) if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}".encode()
    return bytes(out), error.end


codecs.register_error(_SURROGATES, _encode_surrogates)


@dataclass(frozen=True)
class FinalBundle:
    """Where a finished bundle stands.

    Attributes:
        directory: the kept bundle directory, ``None`` unless `finalize(keep_directory=True)`.
        archive: the ``NAME.tar.gz``.
        manifest: the manifest written into it.
    """

    directory: Path | None
    archive: Path
    manifest: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete", False))


class BundleWriter:
    """Builds one bundle in ``OUT/.NAME.partial-run/``; `finalize` publishes it, `abort` removes it.

    `name` is claimed in OUT when the writer is made: the partial directory is created exclusively (only one
    process can), and when a bundle or another run already has the name (two runs in the same second), the
    writer takes ``NAME-2``, ``NAME-3``... so every run publishes its own bundle. `self.name`: the name taken.

    Use it as a context manager: leaving the block without `finalize` (an exception, Ctrl-C) removes the
    partial directory, so nothing half-written ever stands under the final name.
    """

    def __init__(self, out_dir: Path, name: str) -> None:
        if not _NAME.fullmatch(name):
            raise BundleError(f"{name!r}: not a usable bundle name (letters, digits, '.', '_', '-' only)")
        self.out_dir = Path(out_dir)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.name, root = self._claim_name(name)
            self._root: Path | None = root
            root.chmod(0o700)
        except OSError as exc:
            raise BundleError(
                f"{self.out_dir}: cannot create the bundle directory: {exc.strerror or exc}"
            ) from exc
        self._redactions: dict[str, list[Redaction]] = {}
        self._meta: dict[str, dict[str, object]] = {}
        self._stamps: dict[str, tuple[int, int, int] | None] = {}  # what each written file looked like
        self._started = datetime.now(timezone.utc)
        self._workers: RedactionWorkers | None = None
        self._pending: dict[str, Future[list[Redaction]]] = {}  # copies running in a worker, by bundle path
        self._pending_lock = threading.Lock()

    def _claim_name(self, name: str) -> tuple[str, Path]:
        """The first of NAME, NAME-2... that no bundle, kept directory or running writer holds, and its
        partial directory ``.NAME.partial-run``, created exclusively (mkdir fails for all but one process)."""
        for serial in range(1, MAX_NAME_SERIAL + 1):
            candidate = layout.numbered_bundle_name(name, serial)
            if any(p.exists() or p.is_symlink() for p in (self.out_dir / f"{candidate}.tar.gz",
                                                           self.out_dir / candidate)):
                continue
            root = self.out_dir / f".{candidate}.partial-run"
            try:
                root.mkdir(mode=0o700)
            except FileExistsError:
                continue  # another run is writing under that name (or one was killed while it did)
            return candidate, root
        raise BundleError(f"{self.out_dir}: {name} and the {MAX_NAME_SERIAL - 1} numbered names "
                          "after it are taken")

    # -- the bundle being built ------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The partial directory (readers in the same run may read files back from it)."""
        if self._root is None:
            raise BundleError(f"{self.name}: the bundle was already finalized or aborted")
        return self._root

    def path(self, rel_path: str) -> Path:
        """The file behind a bundle path, refusing paths that leave the bundle."""
        if not rel_path or not layout.is_inside(rel_path) or "\\" in rel_path or rel_path.endswith("/"):
            raise BundleError(f"{self.name}: {rel_path!r} is not a path inside the bundle")
        return self.root.joinpath(*rel_path.split("/"))

    @property
    def redactions(self) -> list[Redaction]:
        """Every redaction so far, by file in the order written."""
        return [r for found in self._redactions.values() for r in found]

    @property
    def file_meta(self) -> dict[str, dict[str, object]]:
        return {k: dict(v) for k, v in self._meta.items()}

    # -- writing ---------------------------------------------------------------------------------------------

    def write_bytes(self, rel_path: str, data: bytes, *, source: str = "", collector: str = "",
                    status: str = "ok", seconds: float | None = None) -> Path:
        """Write a whole file, redacted by kind (captures kept byte for byte, archives rewritten)."""
        if is_key_file(rel_path):
            return self._drop_key_file(rel_path)
        target = self._prepare(rel_path)
        new, found = redact_bytes(data, rel_path)
        self._write(target, new)
        return self._record(rel_path, found, source, collector, status, seconds)

    def write_text(self, rel_path: str, text: str, *, source: str = "", collector: str = "",
                   status: str = "ok", seconds: float | None = None) -> Path:
        """Write a UTF-8 text file, redacted."""
        if is_key_file(rel_path):
            return self._drop_key_file(rel_path)
        target = self._prepare(rel_path)
        new, found = redact_text(text, rel_path)
        self._write(target, new.encode("utf-8", _SURROGATES))
        return self._record(rel_path, found, source, collector, status, seconds)

    def use_workers(self, jobs: int) -> None:
        """Let `copy_file_soon` redact large files in up to `jobs` worker processes (started on first use)."""
        if jobs > 1:
            self._workers = RedactionWorkers(jobs)

    def start_workers(self, files: int) -> None:
        """Start the workers `use_workers` allowed that `files` large files will need, ahead of them (a run
        does this while it waits)."""
        if self._workers is not None:
            self._workers.start(files)

    def copy_file_soon(self, rel_path: str, src_path: Path) -> bool:
        """Start redacting a large local file into the bundle in a worker process, if there are workers; the
        `copy_file` of the same path later waits for it and records it (until then the file is not part of
        the bundle). Thread-safe; never raises: whatever goes wrong is raised by that `copy_file`.
        True if a worker took it."""
        if self._workers is None or is_key_file(rel_path):
            return False
        with self._pending_lock:
            if rel_path in self._pending:
                return True
            try:
                if Path(src_path).stat().st_size < MIN_WORKER_BYTES:
                    return False
                target = self._prepare(rel_path)
            except (OSError, BundleError):
                return False
            future = self._workers.submit(Path(src_path), target, rel_path)
            if future is None:
                return False
            self._pending[rel_path] = future
            return True

    def copy_file(self, rel_path: str, src_path: Path, *, source: str | None = None, collector: str = "",
                  status: str = "ok", seconds: float | None = None) -> Path:
        """Copy a local file in, redacted by kind; text and gzip'd text stream in bounded memory. `source`
        defaults to the local path. When `copy_file_soon` gave the file to a worker, this waits for it."""
        if is_key_file(rel_path):
            return self._drop_key_file(rel_path)
        with self._pending_lock:
            running = self._pending.pop(rel_path, None)
        target = self._prepare(rel_path)
        try:
            found = self._redacted_by_worker(running) if running is not None else None
            if found is None:
                with Path(src_path).open("rb") as src, self._open(target) as out:
                    found = redact_seekable(src, out, rel_path)
        except (OSError, EOFError, zlib.error) as exc:
            _unlink(target)
            raise BundleError(f"{src_path} -> {rel_path}: cannot copy into the bundle: {exc}") from exc
        except BundleError:
            _unlink(target)
            raise
        return self._record(rel_path, found, str(src_path) if source is None else source, collector, status,
                            seconds)

    @contextmanager
    def open_stream(self, rel_path: str, *, source: str = "", collector: str = "",
                    status: str = "ok", seconds: float | None = None) -> Iterator[BinaryIO]:
        """A binary file to write into (SFTP `getfo`, `copyfileobj`...); it is redacted like `copy_file` when
        the block ends, and dropped if the block raises."""
        target = self.path(rel_path)
        incoming = target.with_name(f".{target.name}.incoming")
        self._prepare(rel_path)
        try:
            with self._open(incoming) as raw:
                yield raw
            self._ingest(rel_path, incoming, source, collector, status, seconds)
        finally:
            _unlink(incoming)

    def move_file(self, rel_path: str, src_path: Path, *, source: str | None = None, collector: str = "",
                  status: str = "ok", seconds: float | None = None) -> Path:
        """Like `copy_file`, then remove `src_path`; a capture on the same file system is renamed into place
        instead of copied (no second copy of a large pcap)."""
        self._prepare(rel_path)
        self._ingest(rel_path, Path(src_path), str(src_path) if source is None else source, collector, status,
                     seconds)
        _unlink(Path(src_path))
        return self.path(rel_path)

    def _ingest(self, rel_path: str, staged: Path, source: str, collector: str, status: str,
                seconds: float | None) -> None:
        """Bring a staged file to its bundle path: a capture (at a capture path) is moved as is when it can
        be, anything else is copied redacted."""
        if is_key_file(rel_path):
            self._drop_key_file(rel_path)
            return
        if is_capture_path(rel_path) and _is_capture(staged):
            try:
                staged.replace(self.path(rel_path))
                self.path(rel_path).chmod(0o600)
                self._record(rel_path, [], source, collector, status, seconds)
                return
            except OSError:
                pass  # another file system: copy it below
        self.copy_file(rel_path, staged, source=source, collector=collector, status=status, seconds=seconds)

    @staticmethod
    def _redacted_by_worker(running: Future[list[Redaction]]) -> list[Redaction] | None:
        """What the worker found; None when it never did the work (workers stopped or killed): redact here."""
        try:
            return running.result()
        except WorkerGone:
            return None

    def _wait_workers(self) -> None:
        """Wait for copies nobody asked for (a caller that gave up on them): a finished one is recorded with
        no source, a failed one leaves nothing."""
        with self._pending_lock:
            pending, self._pending = dict(self._pending), {}
        for rel_path, running in pending.items():
            started = time.monotonic()
            try:
                found = self._redacted_by_worker(running)
            except (OSError, EOFError, zlib.error, BundleError):
                found = None
            if found is not None:
                self._record(rel_path, found, "", "", "ok", time.monotonic() - started)
            else:
                _unlink(self.path(rel_path))

    def _drop_key_file(self, rel_path: str) -> Path:
        """A keystore or key file (`.jks`, `.p12`, `.key`, `id_rsa`...) never enters the bundle; the fact is
        recorded as a redaction. Returns the path it would have had (which does not exist)."""
        target = self.path(rel_path)
        _unlink(target)
        self._redactions[rel_path] = [Redaction(rel_path, RULE_KEY_FILE, 0, 1)]
        self._meta.pop(rel_path, None)
        return target

    def _prepare(self, rel_path: str) -> Path:
        if rel_path == layout.MANIFEST:
            raise BundleError(f"{self.name}: {layout.MANIFEST} is written by finalize() only")
        target = self.path(rel_path)
        current = self.root
        for part in rel_path.split("/")[:-1]:
            current = current / part
            if current.is_symlink() or (current.exists() and not current.is_dir()):
                raise BundleError(f"{self.name}: {rel_path!r} crosses {part!r}, which is not a directory")
            if not current.exists():
                try:
                    # exist_ok: fetches from several hosts may race here
                    current.mkdir(mode=0o700, exist_ok=True)
                    current.chmod(0o700)
                except OSError as exc:
                    raise BundleError(
                        f"{current}: cannot create a bundle folder: {exc.strerror or exc}"
                    ) from exc
        return target

    def _write(self, target: Path, data: bytes) -> None:
        """Write a whole file; a failed write (a full disk) leaves no partial file and is a BundleError."""
        try:
            with self._open(target) as out:
                out.write(data)
        except OSError as exc:
            _unlink(target)
            raise BundleError(f"{target}: cannot write into the bundle: {exc.strerror or exc}") from exc

    def _open(self, target: Path) -> BinaryIO:
        try:
            return open_private(target)
        except OSError as exc:
            raise BundleError(f"{target}: cannot write into the bundle: {exc.strerror or exc}") from exc

    def _record(self, rel_path: str, found: list[Redaction], source: str, collector: str,
                status: str, seconds: float | None) -> Path:
        self._redactions[rel_path] = list(found)
        meta: dict[str, object] = {"source": source, "collector": collector, "status": status,
                                   "redactions": sum(r.count for r in found)}
        if seconds is not None:
            meta["seconds"] = round(seconds, 3)
        self._meta[rel_path] = meta
        target = self.path(rel_path)
        self._stamps[rel_path] = _stamp(target)
        return target

    # -- publishing ------------------------------------------------------------------------------------------

    def adopt_files(self, *, collector: str = "direct") -> list[Redaction]:
        """Redact in place every file that was put into `root` without this writer (and make it 0600);
        return the redactions found. `finalize` calls it too; call it first to report the
        redactions in SUMMARY.md."""
        found: list[Redaction] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath, name)
                rel = path.relative_to(self.root).as_posix()
                if rel == layout.MANIFEST or (rel in self._meta and self._stamps.get(rel) == _stamp(path)):
                    continue  # written through the writer and not touched since
                if path.is_symlink() or not path.is_file():
                    path.unlink()  # a bundle holds regular files only; a link could point at a key
                    continue
                incoming = path.with_name(f".{name}.adopting")
                path.replace(incoming)
                try:
                    self._ingest(rel, incoming, "", collector, "ok", None)
                finally:
                    _unlink(incoming)
                found += self._redactions[rel]
            for d in dirnames:
                folder = Path(dirpath, d)
                if folder.is_symlink():
                    folder.unlink()  # never chmod (or follow) a link to a folder outside the bundle
                else:
                    folder.chmod(0o700)
        return found

    def finalize(self, *, tool_version: str = __version__, settings: Mapping[str, object] | None = None,
                 steps: Sequence[StepResult] = (), started: datetime | None = None,
                 finished: datetime | None = None, keep_directory: bool = False) -> FinalBundle:
        """Redact files written around the writer (`adopt_files`), write manifest.json, then
        ``OUT/NAME.tar.gz`` (via a temporary name), then either rename the directory to ``OUT/NAME``
        (`keep_directory`) or remove it. `started` defaults to when the writer was made."""
        root = self.root
        settings = settings or {}
        started = started or self._started
        archive = self.out_dir / f"{self.name}.tar.gz"
        directory = self.out_dir / self.name
        for existing in (archive, directory) if keep_directory else (archive,):
            if existing.exists() or existing.is_symlink():
                raise BundleError(f"{existing}: already exists; refusing to overwrite a bundle")
        finished = finished or datetime.now(timezone.utc)
        try:
            self.adopt_files()
            if self._workers is not None:
                self._workers.stop(cancel=False)
            manifest = build_manifest(root, tool_version=tool_version, settings=settings, steps=steps,
                                      redactions=self.redactions, started=started, finished=finished,
                                      file_meta=self._meta)
            write_manifest(root, manifest)
            write_tarball(root, self.name, archive, int(finished.timestamp()))
            if keep_directory:
                root.rename(directory)
            else:
                shutil.rmtree(root)
        except OSError as exc:
            self.abort()
            raise BundleError(
                f"{self.out_dir}: cannot finish bundle {self.name}: {exc.strerror or exc}"
            ) from exc
        except InputError as exc:  # a symlink appeared inside the bundle: never publish it
            self.abort()
            raise BundleError(f"{self.name}: {exc.defect}") from exc
        except BundleError:
            self.abort()
            raise
        self._root = None
        return FinalBundle(directory if keep_directory else None, archive, manifest)

    def abort(self) -> None:
        """End the workers, then remove the partial directory, which gives the name back (idempotent)."""
        if self._workers is not None:
            self._workers.stop(cancel=True)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> BundleWriter:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.abort()  # no-op after finalize; otherwise nothing half-written may stay


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Size, modification time and inode: enough to notice a file rewritten around the writer."""
    try:
        st = path.lstat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def _is_capture(path: Path) -> bool:
    """True for a pcap/pcapng, plain or gzip'd (kept byte for byte)."""
    try:
        with path.open("rb") as f:
            kind = sniff_kind(f.read(SNIFF_BYTES))
            if kind is FileKind.GZIP:
                f.seek(0)
                with gzip.GzipFile(fileobj=f, mode="rb") as inner:
                    kind = sniff_kind(inner.read(SNIFF_BYTES))
    except (OSError, EOFError, zlib.error):
        return False
    return kind is FileKind.CAPTURE


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

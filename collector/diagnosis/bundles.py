"""Read-only access to a support bundle, a directory or a `.tar.gz` read in place
(never extracted to disk)."""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from collector import layout
from collector.errors import InputError


class BundleFiles:
    """The files of one bundle by bundle-relative path (`layout.py` spelling);
    `cite()` names them in evidence."""

    def __init__(self, root: Path, names: list[str], archive: tarfile.TarFile | None,
                 members: dict[str, tarfile.TarInfo] | None = None) -> None:
        self._root = root
        self._names = sorted(names)
        self._archive = archive
        # Bundle path -> archive member: tar spells the same path many ways (`NAME/x`, `./NAME/./x`).
        self._members = members or {}

    def exists(self, rel: str) -> bool:
        return rel in self._names

    def matching(self, pattern: str) -> list[str]:
        """Bundle paths matching a glob where `*` stays inside one folder
        and `**/` spans any number of them."""
        regex = re.compile(_glob_regex(pattern))
        return [name for name in self._names if regex.fullmatch(name)]

    def cite(self, rel: str) -> str:
        """How evidence lines name a bundle file: its bundle path, as `layout.py` spells it."""
        return rel

    def where(self, rel: str) -> str:
        """How error messages name a bundle file: the bundle, then the path inside it."""
        return f"{self._root}: {rel}"

    def read(self, rel: str) -> bytes:
        with self.open(rel) as stream:
            return stream.read()

    def path_like(self, rel: str) -> Path:
        """What `read_handshakes` can open: the real file, or the archive member read in place.

        `read_handshakes` only calls `open("rb")`, `name` and `str()` on its path, so a member stands in for a
        file without extracting it to disk.
        """
        if rel not in self._names:
            raise InputError(self._root, f"has no {rel}")
        if self._archive is None:
            return self._root / rel
        return _MemberPath(self, rel)  # type: ignore[return-value]  # stands in for a Path, see above

    @contextmanager
    def open(self, rel: str) -> Iterator[IO[bytes]]:
        if rel not in self._names:
            raise InputError(self._root, f"has no {rel}")
        try:
            if self._archive is None:
                with (self._root / rel).open("rb") as stream:
                    yield stream
                return
            extracted = self._archive.extractfile(self._members[rel])
            if extracted is None:
                raise InputError(self._root, f"member {rel} is not a regular file")
            with extracted:
                yield extracted
        except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
            raise InputError(self._root, f"cannot read {rel} ({exc})") from exc


class _MemberPath:
    """An archive member posing as a `Path` for `read_handshakes` (open/name/str only)."""

    def __init__(self, files: BundleFiles, rel: str) -> None:
        self._files = files
        self._rel = rel
        self.name = PurePosixPath(rel).name

    def open(self, mode: str = "rb") -> IO[bytes]:
        if mode != "rb":
            raise ValueError("bundle members are read-only")
        archive = self._files._archive
        assert archive is not None
        extracted = archive.extractfile(self._files._members[self._rel])
        if extracted is None:
            raise IsADirectoryError(self._rel)
        return extracted

    def __str__(self) -> str:
        return self._files.where(self._rel)

    def __fspath__(self) -> str:
        raise TypeError("a bundle member has no file system path")


@contextmanager
def open_bundle(root: Path) -> Iterator[BundleFiles]:
    """A directory holding `manifest.json`, or a `.tar.gz` whose top folder (or root) holds it."""
    if root.is_dir():
        yield BundleFiles(root, _directory_names(root), None)
        return
    try:
        archive = tarfile.open(root, "r:gz")  # noqa: SIM115
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise InputError(root, f"is not a readable .tar.gz bundle ({exc})") from exc
    with archive:
        try:
            members = archive.getmembers()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise InputError(root, f"is a damaged .tar.gz bundle ({exc})") from exc
        by_path = _bundle_members(root, members)
        yield BundleFiles(root, list(by_path), archive, by_path)


def _bundle_members(root: Path, members: list[tarfile.TarInfo]) -> dict[str, tarfile.TarInfo]:
    """Bundle path -> member, for the files under the shallowest manifest.json.

    Paths are compared by their parts without empty and `.` ones, so `./NAME/./SUMMARY.md` (tar -C, GNU and
    BSD spellings) is the bundle's SUMMARY.md like `NAME/SUMMARY.md` is.
    """
    files: list[tuple[tuple[str, ...], tarfile.TarInfo]] = []
    for member in members:
        if not layout.is_inside(member.name):
            raise InputError(root, f"member {member.name!r} escapes the bundle (absolute path or '..'); "
                                   "refusing to read it")
        if member.isfile():
            files.append((tuple(part for part in member.name.split("/") if part not in ("", ".")), member))
    manifests = [parts for parts, _member in files if parts and parts[-1] == layout.MANIFEST]
    if not manifests:
        raise InputError(root, f"is a .tar.gz without {layout.MANIFEST}, so not a support bundle")
    top = min(manifests, key=len)[:-1]
    by_path: dict[str, tarfile.TarInfo] = {}
    for parts, member in files:
        if len(parts) > len(top) and parts[: len(top)] == top:
            # A later member of the same name wins, as it does when tar extracts the archive.
            by_path["/".join(parts[len(top) :])] = member
    return by_path


def _directory_names(root: Path) -> list[str]:
    base = root.resolve()
    names = []
    for path in base.rglob("*"):
        # A symlink pointing outside the bundle is not the bundle's content.
        if path.is_file() and base in path.resolve().parents:
            names.append(path.relative_to(base).as_posix())
    return names


def _glob_regex(pattern: str) -> str:
    out = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            out.append("(?:[^/]+/)*")
            index += 3
        elif pattern[index] == "*":
            out.append("[^/]*")
            index += 1
        else:
            out.append(re.escape(pattern[index]))
            index += 1
    return "".join(out)

"""The bundle's `.tar.gz`: written under a temporary name beside it, then linked to its final name."""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
from pathlib import Path

from collector.errors import BundleError


def write_tarball(root: Path, name: str, archive: Path, mtime: int) -> None:
    """Write NAME.tar.gz beside the bundle under a temporary name, then link it to its final name
    (no clobber)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.tar.gz.partial-", dir=archive.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT,
                                                    compresslevel=6) as tar:
            tar.addfile(_tar_entry(name, tarfile.DIRTYPE, 0o700, 0, mtime))
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                rel_dir = Path(dirpath).relative_to(root).as_posix()
                prefix = name if rel_dir == "." else f"{name}/{rel_dir}"
                for d in dirnames:
                    if Path(dirpath, d).is_symlink():
                        raise BundleError(
                            f"{root}: {rel_dir}/{d} is a symbolic link; a bundle holds files only"
                        )
                    tar.addfile(_tar_entry(f"{prefix}/{d}", tarfile.DIRTYPE, 0o700, 0, mtime))
                for f in sorted(filenames):
                    path = Path(dirpath, f)
                    if path.is_symlink() or not path.is_file():
                        raise BundleError(
                            f"{root}: {rel_dir}/{f} is not a regular file; a bundle holds files only"
                        )
                    with path.open("rb") as content:
                        size = os.fstat(content.fileno()).st_size
                        tar.addfile(_tar_entry(f"{prefix}/{f}", tarfile.REGTYPE, 0o600, size, mtime), content)
        try:
            os.link(tmp, archive)  # fails instead of replacing a bundle that appeared meanwhile
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links
            tmp.rename(archive)
    finally:
        _unlink(tmp)


def _tar_entry(name: str, kind: bytes, mode: int, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

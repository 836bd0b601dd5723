"""The bundle's `.tar.gz`: written under a temporary name beside it, then linked to its final name.

One gzip member, as any `tar -xzf` or `tarfile` reads it, but not deflated throughout: bytes that deflate
would hardly shrink go into stored deflate blocks, which cost a copy and a CRC instead of a deflate pass:
- a file that is compressed already (the MPs' gzip'd logs, a proxy bundle's zip), known by its magic
  number (16 hosts' logs: ~0.7 s at the end of a run, for ~2 % more size, as the logs are gzip'd fast);
- a MiB of any other file whose first 64 KiB deflate (level 1, ~2 ms) by less than a fifth: a capture of
  TLS traffic is mostly ciphertext (88 MB of real handshakes and bodies shrink by 13 %, deflated at
  ~22 MB/s), so two copies of a 500 MB capture (the host's and the annotated one) would cost ~45 s to
  save an eighth.
The rest is deflated as before; each deflated stretch starts a fresh compressor after a sync flush, so no
back-reference reaches across a stored stretch.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO

from collector.errors import BundleError

_CHUNK = 1 << 20
_STORED_MAX = 0xFFFF  # the most a stored deflate block holds
# Magic numbers of formats that do not deflate further: gzip, zip, xz, bzip2, zstd.
_COMPRESSED_MAGICS = (b"\x1f\x8b", b"PK\x03\x04", b"\xfd7zXZ\x00", b"BZh", b"\x28\xb5\x2f\xfd")
_PROBE = 64 * 1024  # of each chunk, deflated once at level 1 to judge the whole chunk
_STORE_ABOVE = 0.8  # stored when deflating the probe keeps more than this share of it


def write_tarball(root: Path, name: str, archive: Path, mtime: int) -> None:
    """Write NAME.tar.gz beside the bundle under a temporary name, then link it to its final name
    (no clobber)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.tar.gz.partial-", dir=archive.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as raw:
            gz = _GzipWriter(raw, mtime)
            tar = _TarWriter(gz)
            tar.add(_tar_entry(name, tarfile.DIRTYPE, 0o700, 0, mtime))
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                rel_dir = Path(dirpath).relative_to(root).as_posix()
                prefix = name if rel_dir == "." else f"{name}/{rel_dir}"
                for d in dirnames:
                    if Path(dirpath, d).is_symlink():
                        raise BundleError(
                            f"{root}: {rel_dir}/{d} is a symbolic link; a bundle holds files only"
                        )
                    tar.add(_tar_entry(f"{prefix}/{d}", tarfile.DIRTYPE, 0o700, 0, mtime))
                for f in sorted(filenames):
                    path = Path(dirpath, f)
                    if path.is_symlink() or not path.is_file():
                        raise BundleError(
                            f"{root}: {rel_dir}/{f} is not a regular file; a bundle holds files only"
                        )
                    with path.open("rb") as content:
                        size = os.fstat(content.fileno()).st_size
                        tar.add(_tar_entry(f"{prefix}/{f}", tarfile.REGTYPE, 0o600, size, mtime), content)
            tar.close()
            gz.close()
        try:
            os.link(tmp, archive)  # fails instead of replacing a bundle that appeared meanwhile
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links
            tmp.rename(archive)
    finally:
        _unlink(tmp)


class _GzipWriter:
    """One gzip member whose deflate stream mixes deflated and stored blocks (RFC 1951 3.2.4)."""

    def __init__(self, raw: BinaryIO, mtime: int) -> None:
        self._raw = raw
        self._crc = 0
        self._size = 0
        self._deflate: zlib._Compress | None = None
        # no file name, OS "unknown": the archive says nothing about the machine it was made on
        raw.write(b"\x1f\x8b\x08\x00" + struct.pack("<I", mtime & 0xFFFFFFFF) + b"\x00\xff")

    def write(self, data: bytes, *, store: bool = False) -> None:
        """Add `data` to the member: deflated, or with `store` in stored blocks."""
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        if not store:
            if self._deflate is None:
                self._deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            self._raw.write(self._deflate.compress(data))
            return
        if self._deflate is not None:  # end its stretch on a byte boundary, not final
            self._raw.write(self._deflate.flush(zlib.Z_SYNC_FLUSH))
            self._deflate = None
        view = memoryview(data)
        for start in range(0, len(view), _STORED_MAX):
            block = view[start : start + _STORED_MAX]
            self._raw.write(struct.pack("<BHH", 0, len(block), len(block) ^ 0xFFFF))
            self._raw.write(block)

    def close(self) -> None:
        if self._deflate is not None:
            self._raw.write(self._deflate.flush(zlib.Z_FINISH))
        else:
            self._raw.write(b"\x01\x00\x00\xff\xff")  # an empty stored block marked final
        self._raw.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))


class _TarWriter:
    """A PAX tar stream as `tarfile` writes it (headers, content padded to 512 bytes, two zero blocks, the
    record padding), whose file contents the gzip writer may store rather than deflate."""

    def __init__(self, out: _GzipWriter) -> None:
        self._out = out
        self._offset = 0

    def _write(self, data: bytes, *, store: bool = False) -> None:
        self._out.write(data, store=store)
        self._offset += len(data)

    def add(self, info: tarfile.TarInfo, content: BinaryIO | None = None) -> None:
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if content is None:
            return
        left = info.size
        compressed = False
        while left:
            chunk = content.read(min(left, _CHUNK))
            if not chunk:
                raise BundleError(f"{info.name}: the file shrank while it was archived")
            if left == info.size:
                compressed = chunk.startswith(_COMPRESSED_MAGICS)
            self._write(chunk, store=compressed or _hardly_deflates(chunk))
            left -= len(chunk)
        self._write(b"\0" * (-info.size % tarfile.BLOCKSIZE))

    def close(self) -> None:
        self._write(b"\0" * (2 * tarfile.BLOCKSIZE))
        self._write(b"\0" * (-self._offset % tarfile.RECORDSIZE))


def _hardly_deflates(chunk: bytes) -> bool:
    """Whether deflating `chunk` would keep more than `_STORE_ABOVE` of it, judged on its first `_PROBE`
    bytes; a chunk smaller than that is deflated (it costs little either way)."""
    if len(chunk) < _PROBE:
        return False
    return len(zlib.compress(chunk[:_PROBE], 1)) > _STORE_ABOVE * _PROBE


def _tar_entry(name: str, kind: bytes, mode: int, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()

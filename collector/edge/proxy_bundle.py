"""The proxy revision bundle zip, read in memory: only `apiproxy/targets/*.xml`, never extracted to disk."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import PurePosixPath

from collector.errors import InputError

TARGETS_FOLDER = ("apiproxy", "targets")
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024  # the compressed bundle
MAX_ENTRIES = 10_000
MAX_TARGET_BYTES = 2 * 1024 * 1024  # one TargetEndpoint XML
MAX_TOTAL_BYTES = 16 * 1024 * 1024  # all TargetEndpoint XML together
MAX_RATIO = 200  # uncompressed / compressed of one entry; XML compresses ~10x, bombs 1000x+


def read_target_endpoints(data: bytes, *, source: str = "proxy bundle") -> dict[str, bytes]:
    """TargetEndpoint name (file stem) -> XML bytes, from a revision bundle zip.

    The whole archive is checked first: an entry with an absolute path, ``..``, a backslash or a drive, a
    symbolic link, too many entries, or an entry that inflates too much makes the bundle unusable, raised as
    one InputError naming `source` and the entry. Sizes are enforced while reading, not taken from
    the headers.
    """
    if len(data) > MAX_ARCHIVE_BYTES:
        raise InputError(
            source, f"the bundle is {len(data)} bytes, more than the {MAX_ARCHIVE_BYTES} allowed"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(source, f"not a readable zip archive: {exc}") from exc
    if len(entries) > MAX_ENTRIES:
        raise InputError(
            source, f"the bundle has {len(entries)} entries, more than the {MAX_ENTRIES} allowed"
        )
    for entry in entries:
        _check_entry(entry, source)
    targets: dict[str, bytes] = {}
    total = 0
    with archive:
        for entry in entries:
            path = PurePosixPath(entry.filename)
            if entry.is_dir() or path.parent.parts != TARGETS_FOLDER or path.suffix.lower() != ".xml":
                continue
            body = _read_limited(archive, entry, source)
            total += len(body)
            if total > MAX_TOTAL_BYTES:
                raise InputError(source, f"the target endpoints exceed {MAX_TOTAL_BYTES} bytes in total")
            targets[path.stem] = body
    return targets


def _check_entry(entry: zipfile.ZipInfo, source: str) -> None:
    name = entry.filename
    path = PurePosixPath(name)
    parts = path.parts
    if not parts or "\\" in name or path.is_absolute() or ".." in parts or ":" in parts[0]:
        raise InputError(source, f"unsafe path in the bundle: {name!r}")
    mode = entry.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise InputError(source, f"symbolic link in the bundle: {name!r}")
    if entry.file_size > MAX_TARGET_BYTES and entry.file_size > MAX_RATIO * max(entry.compress_size, 1):
        raise InputError(
            source,
            f"entry {name!r} inflates {entry.compress_size} -> {entry.file_size} bytes "
            "(a decompression bomb?)",
        )


def _read_limited(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, source: str) -> bytes:
    # Read one byte past the limit, so a header that lies about the size is still caught.
    try:
        with archive.open(entry) as handle:
            body = handle.read(MAX_TARGET_BYTES + 1)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise InputError(source, f"cannot read {entry.filename!r}: {exc}") from exc
    if len(body) > MAX_TARGET_BYTES:
        raise InputError(source, f"{entry.filename!r} is larger than {MAX_TARGET_BYTES} bytes")
    return body

"""The capture reader's compiled build, and whether this process reads with it.

The modules every packet of a capture runs through are compiled with mypyc (the compiler that ships with mypy,
which gates this source already) by `scripts/build_reader.py`, run by `scripts/setup.sh`, into `_compiled/`
beside them: the same source, about a third less time reading a capture. `collector/tls/__init__.py` has
`put_first` put that folder first on the package's path only while the build matches the source beside it to
the byte and its library loads, so an edited module, a build for another interpreter or machine, or a
half-made or damaged one is never run: the source is. With COLLECTOR_PURE_PYTHON set (to anything but empty),
the source is run whatever is built.

Public API:
    MODULES: the modules compiled (under `collector.tls`)
    GROUP: mypyc's group: the build holds the modules' code in one shared library, SHARED_LIBRARY
    LIBRARIES: the names of the build's libraries (the shared one's and a stub per module), before the suffix
    FOLDER: where the build lies
    MANIFEST: the build's record of the source it was made from (its first line; the build script's recipe
        follows, which only the build script reads), written last
    source_digest(source_folder=...) -> str: what a build for this source and interpreter records
    usable_build(folder=FOLDER, source_folder=...) -> Path | None: the build, when it may be run
    put_first(package_path) -> None: the build first on `collector.tls`'s path, when it may be run and loads
    in_use() -> bool: whether this process reads captures with the compiled build
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import MutableSequence
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

MODULES = ("connections", "session", "records", "reassembly", "pcap", "messages", "packets")
GROUP = "collector.tls.reader"
SHARED_LIBRARY = f"{GROUP}__mypyc"
LIBRARIES = (SHARED_LIBRARY.rpartition(".")[2], *MODULES)
FOLDER = Path(__file__).with_name("_compiled")
MANIFEST = "source.sha256"
PURE_PYTHON = "COLLECTOR_PURE_PYTHON"


def source_digest(source_folder: Path = FOLDER.parent) -> str:
    """SHA-256 over the interpreter's extension suffix and every compiled module's name and source bytes:
    a build records it, and is run only while the source beside it gives the same."""
    digest = hashlib.sha256(EXTENSION_SUFFIXES[0].encode())
    for name in MODULES:
        digest.update(b"\0" + name.encode() + b"\0")
        digest.update((source_folder / f"{name}.py").read_bytes())
    return digest.hexdigest()


def usable_build(folder: Path = FOLDER, source_folder: Path = FOLDER.parent) -> Path | None:
    """`folder` when it holds a build of the source in `source_folder` for this interpreter, else None."""
    if os.environ.get(PURE_PYTHON):
        return None
    suffix = EXTENSION_SUFFIXES[0]
    try:
        recorded = (folder / MANIFEST).read_text(encoding="ascii").partition("\n")[0]
        if recorded != source_digest(source_folder):
            return None
    except (OSError, UnicodeDecodeError):  # no build, or an unreadable one: the source is run
        return None
    # all or nothing: a module run from source beside compiled ones would be a second copy of its classes
    return folder if all((folder / f"{name}{suffix}").is_file() for name in LIBRARIES) else None


def put_first(package_path: MutableSequence[str]) -> None:
    """Put the build first on `package_path` (the path of `collector.tls`, which its modules are found on)
    when `usable_build` allows it and its shared library loads here; else leave the path as it is."""
    if (build := usable_build()) is None:
        return
    package_path.insert(0, str(build))
    try:
        importlib.import_module(SHARED_LIBRARY)  # the modules' code: each module's own library is a stub
    except (ImportError, OSError):  # unreadable, damaged, or built elsewhere for another C library
        package_path.remove(str(build))


def in_use() -> bool:
    """Whether the reader's modules are the compiled ones in this process."""
    from collector.tls import connections

    return Path(connections.__file__ or "").parent == FOLDER

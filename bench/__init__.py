"""Benchmarks (not part of the test suite). Each runs as a module from the repository root, e.g.
`.venv/bin/python -m bench.analyze --help`, so `collector`, `tests` and `bench` import from the repository
without any sys.path setup."""

import compileall
from pathlib import Path


def byte_compile(tree: Path) -> None:
    """Write the bytecode of `tree`'s collector package, as `pip install` does for an installed package,
    before anything is timed. An editable install leaves it to the first import, which never writes it when
    PYTHONDONTWRITEBYTECODE is set (it is on the machines these benches ran on): every start of `collect`
    then compiled ~150 modules from source, 0.1-0.35 s of CPU that an operator's installed tool does not
    spend. Python checks each .pyc against its source's size and mtime: an edited module is compiled anew."""
    if not compileall.compile_dir(tree / "collector", quiet=1):
        raise SystemExit(f"bench: cannot byte-compile {tree / 'collector'}")

"""Compile the capture reader with mypyc into collector/tls/_compiled (collector/tls/compiled_reader.py says
what is compiled, and when the build is run instead of the source).

    .venv/bin/python scripts/build_reader.py [--force]

Run by scripts/setup.sh. Does nothing while the build matches the source. Needs mypy (the `test` extra pins
it), setuptools, a C compiler and the interpreter's headers (Python.h). Exit 1, with mypy's or gcc's error
lines, when the build fails; the folder then holds no build, so the source is run.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.tls import compiled_reader  # noqa: E402  # from this tree, whatever is installed

# gcc's -O2: the same instructions as -O3 on a dense capture (2.150 G), built in 34 s instead of 43 s
# (-O1: 26 s, +0.9 %)
OPT_LEVEL = "2"

# Run in a child so that the compiler's chatter (setuptools, mypyc, gcc) goes to a log, not the terminal.
# mypyc names each module by its path from the current directory, and reads mypy's settings there.
_COMPILE = """
import sys
from mypyc.build import mypycify
from setuptools import setup
modules, group, work, opt_level = sys.argv[1].split(","), sys.argv[2], sys.argv[3], sys.argv[4]
setup(
    name="collector-reader", packages=[], py_modules=[],
    ext_modules=mypycify([f"collector/tls/{m}.py" for m in modules], opt_level=opt_level, group_name=group,
                         target_dir=f"{work}/c"),
    script_args=["build_ext", "--build-lib", f"{work}/lib", "--build-temp", f"{work}/temp"],
)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="build even when the build matches the source")
    force = parser.parse_args().force
    os.environ.pop(compiled_reader.PURE_PYTHON, None)  # the question here is the build, not this shell's wish
    folder = compiled_reader.FOLDER
    # one build at a time (two setups at once): the second waits, then finds the first's build matching
    with (folder.parent / "_compiled.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and compiled_reader.usable_build() is not None and _recorded_recipe(folder) == _recipe():
            print("build_reader: the compiled reader matches its source")
            return 0
        if not _build(folder):
            return 1
    in_use = "import sys; from collector.tls import compiled_reader as c; sys.exit(not c.in_use())"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    check = subprocess.run([sys.executable, "-c", in_use], cwd=ROOT, env=env, check=False)
    if check.returncode != 0:
        print("build_reader: the build was made but is not the one imported", file=sys.stderr)
        return 1
    print(f"build_reader: compiled {len(compiled_reader.MODULES)} modules into {folder.relative_to(ROOT)}")
    return 0


def _recipe() -> str:
    """How the build is made, beside what from: another mypy (a refreshed constraints.txt) or other options
    make the next setup build again, though the build already run matches its source."""
    from mypy.version import __version__ as mypy_version

    return f"mypy {mypy_version}, gcc -O{OPT_LEVEL}, group {compiled_reader.GROUP}"


def _recorded_recipe(folder: Path) -> str:
    try:
        return (folder / compiled_reader.MANIFEST).read_text(encoding="ascii").split("\n")[1]
    except (OSError, UnicodeDecodeError, IndexError):
        return ""


def _build(folder: Path) -> bool:
    """Compile into a scratch folder, then put the libraries in `folder`'s place; False (said on stderr) when
    the build failed, `folder` then holding no build."""
    digest = compiled_reader.source_digest()
    with tempfile.TemporaryDirectory(prefix="build-reader-") as work:
        log = Path(work) / "build.log"
        with log.open("wb") as out:
            modules = ",".join(compiled_reader.MODULES)
            argv = [sys.executable, "-c", _COMPILE, modules, compiled_reader.GROUP, work, OPT_LEVEL]
            done = subprocess.run(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0 or compiled_reader.source_digest() != digest:
            shutil.rmtree(folder, ignore_errors=True)  # never a build of other source beside this one
            lines = log.read_text(errors="replace").splitlines()
            tail = [line for line in lines if "error:" in line][:10] + lines[-3:]  # mypy's and gcc's first
            reason = "the source changed while it was compiled" if done.returncode == 0 else "mypyc failed"
            print(f"build_reader: {reason}; the reader runs from source:", *tail, sep="\n  ", file=sys.stderr)
            return False
        # made beside the folder, its manifest last, then put in its place: no reader sees it half made
        staging = Path(tempfile.mkdtemp(prefix="_compiled.", dir=folder.parent))
        old = folder.with_name(f"{staging.name}.old")
        try:
            for library in Path(work, "lib", *compiled_reader.GROUP.split(".")[:-1]).glob("*.so"):
                shutil.copy2(library, staging / library.name)
            (staging / compiled_reader.MANIFEST).write_text(f"{digest}\n{_recipe()}\n", encoding="ascii")
            if folder.exists():
                folder.rename(old)
            staging.rename(folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone when renamed; what is left of a failed copy
            shutil.rmtree(old, ignore_errors=True)
    return True


if __name__ == "__main__":
    sys.exit(main())

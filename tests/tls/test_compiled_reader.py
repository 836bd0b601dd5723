"""The reader's compiled build (collector/tls/compiled_reader.py): the suite runs it, it reads every capture
as its source does, damaged ones included, and it is run only while it matches the source beside it."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

from collector.tls import compiled_reader
from tests.tls import rewrite
from tests.tls.conftest import CAPTURES, keys_for

ROOT = Path(__file__).resolve().parents[2]

# Prints, for each (capture, key log) in the JSON file argv[1], everything `read_handshakes` tells of it (or
# the error it raised), in a fresh interpreter: the compiled build or the source, as the environment says.
_READ_ALL = """
import json, sys
from pathlib import Path
from collector.tls import compiled_reader
from collector.tls.capture import read_handshakes
from collector.tls.keylog import load_keylog
out = [compiled_reader.in_use()]
for capture, keys in json.loads(Path(sys.argv[1]).read_text()):
    try:
        r = read_handshakes(Path(capture), load_keylog(Path(keys)) if keys else None)
        out.append([repr(h) + repr((h.server_chain_der, h.server_hello_frame, h.server_chain_frame))
                     for h in r.handshakes] + [r.packets, r.tls_connections, list(r.notes),
                                               repr(r.connection_attempts)])
    except Exception as error:  # what matters is that both builds say the same
        out.append(f"{type(error).__name__}: {error}")
print(json.dumps(out))
"""


def _read_all(inputs: list[tuple[str, str | None]], tmp_path: Path, *, source: bool) -> list[object]:
    listing = tmp_path / "inputs.json"
    listing.write_text(json.dumps(inputs))
    env = {k: v for k, v in os.environ.items() if k != compiled_reader.PURE_PYTHON}
    env = {**env, compiled_reader.PURE_PYTHON: "1"} if source else env
    done = subprocess.run([sys.executable, "-c", _READ_ALL, str(listing)], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=240)
    out: list[object] = json.loads(done.stdout)
    assert out[0] is (not source), "the build asked for is not the one that ran"
    return out[1:]


def _fixture_captures() -> list[tuple[str, str | None]]:
    found = sorted(p for p in CAPTURES.rglob("*") if p.name.endswith((".pcap", ".pcapng", ".gz")))
    return [(str(p), str(keys_for(p.name)) if keys_for(p.name) else None) for p in found]


def test_the_suite_reads_captures_with_the_compiled_reader() -> None:
    if os.environ.get(compiled_reader.PURE_PYTHON):
        assert not compiled_reader.in_use()
        return
    assert compiled_reader.in_use(), (
        f"{compiled_reader.FOLDER} holds no build of the reader's current source: run `bash scripts/setup.sh`"
        " (or `.venv/bin/python scripts/build_reader.py`); COLLECTOR_PURE_PYTHON=1 tests the source alone"
    )


def test_the_compiled_reader_reads_every_fixture_capture_as_its_source_does(tmp_path: Path) -> None:
    inputs = _fixture_captures()
    assert len(inputs) > 50
    compiled = _read_all(inputs, tmp_path, source=False)
    assert compiled == _read_all(inputs, tmp_path, source=True)
    assert sum(isinstance(reading, list) and len(reading) > 4 for reading in compiled) > 40  # handshakes read


def test_the_compiled_reader_reads_damaged_captures_as_its_source_does(tmp_path: Path) -> None:
    """Bytes changed anywhere past the file header: the compiled build checks the types its annotations
    promise at run time, so where the source would go on with a surprising value it would raise instead."""
    rng = random.Random(15)
    originals = [(CAPTURES / name, keys_for(name)) for name in (
        "ca-mismatch-java-tls12.pcap", "ca-mismatch-openssl-tls13.pcap", "ca-mismatch-nginx-tls13.pcap",
        "client-certificate-rejected-openssl-tls12.pcap", "healthy-openssl-tls12-any.pcap")]  # last: SLL2
    # the other shapes the reader's fast path takes: pcapng on two interfaces, big-endian nanosecond pcap,
    # small segments
    base = CAPTURES / "ca-mismatch-java-tls12.pcap"
    linktype, frames = rewrite.read_pcap(base)
    originals += [(made, None) for made in (
        rewrite.write_pcapng(tmp_path / "two.pcapng", [(n % 2, f) for n, f in enumerate(frames)],
                             [linktype, linktype]),
        rewrite.write_pcap(tmp_path / "big.pcap", linktype, frames, order=">", nanos=True),
        rewrite.write_pcap(tmp_path / "mss.pcap", 1, rewrite.frames_for(rewrite.resegment(
            rewrite.segments(base), 100))),
    )]
    inputs: list[tuple[str, str | None]] = []
    for original, keys in originals:
        data = original.read_bytes()
        for copy in range(40):
            damaged = bytearray(data)
            for _ in range(rng.randint(1, 12)):
                damaged[rng.randrange(24, len(damaged))] = rng.randrange(256)
            path = tmp_path / f"{copy}-{original.name}"
            path.write_bytes(bytes(damaged))
            inputs.append((str(path), str(keys) if keys else None))
    assert _read_all(inputs, tmp_path, source=False) == _read_all(inputs, tmp_path, source=True)


def _fake_build(folder: Path, source: Path, digest: str | None = None) -> None:
    """A folder shaped like a build of `source` (empty libraries: only their names are looked at)."""
    folder.mkdir()
    for name in compiled_reader.LIBRARIES:
        (folder / f"{name}{EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    recorded = digest if digest is not None else compiled_reader.source_digest(source)
    (folder / compiled_reader.MANIFEST).write_text(recorded + "\n")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "tls"
    folder.mkdir()
    for name in compiled_reader.MODULES:
        shutil.copy(compiled_reader.FOLDER.parent / f"{name}.py", folder)
    return folder


def test_a_build_of_this_source_is_run(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(compiled_reader.PURE_PYTHON, raising=False)
    _fake_build(build := tmp_path / "_compiled", source)
    assert compiled_reader.usable_build(build, source) == build


@pytest.mark.parametrize("change", ["edited source", "no manifest", "garbled manifest", "missing library",
                                    "recorded for other source", "source asked for"])
def test_a_build_that_does_not_match_the_source_is_not_run(
    change: str, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(compiled_reader.PURE_PYTHON, raising=False)
    build = tmp_path / "_compiled"
    _fake_build(build, source)
    if change == "edited source":
        with (source / "session.py").open("a") as module:
            module.write("# one more line\n")
    elif change == "no manifest":
        (build / compiled_reader.MANIFEST).unlink()
    elif change == "garbled manifest":
        (build / compiled_reader.MANIFEST).write_bytes(b"\xff\xfe" + os.urandom(40))
    elif change == "missing library":
        (build / f"records{EXTENSION_SUFFIXES[0]}").unlink()
    elif change == "recorded for other source":  # or another interpreter: its suffix is in the digest
        shutil.rmtree(build)
        _fake_build(build, source, digest="0" * 64)
    else:
        monkeypatch.setenv(compiled_reader.PURE_PYTHON, "1")
    assert compiled_reader.usable_build(build, source) is None


@pytest.mark.parametrize("build", ["this build", "damaged library", "none"])
def test_a_copy_of_the_package_reads_with_its_build_only_when_it_loads(
    build: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole import path, in a fresh interpreter: a build whose manifest matches but whose library cannot
    be loaded (damaged, or made on another machine) leaves the source to read, without an error."""
    ignored = shutil.ignore_patterns("__pycache__", "_compiled*")
    shutil.copytree(ROOT / "collector", tmp_path / "collector", ignore=ignored)
    copied = tmp_path / "collector" / "tls" / compiled_reader.FOLDER.name
    if build == "this build":
        monkeypatch.delenv(compiled_reader.PURE_PYTHON, raising=False)  # the copy runs it in any case
        if compiled_reader.usable_build() is None:
            pytest.fail("no compiled reader to copy: run `bash scripts/setup.sh`")
        shutil.copytree(compiled_reader.FOLDER, copied)
    elif build == "damaged library":
        _fake_build(copied, compiled_reader.FOLDER.parent)
        for library in copied.glob(f"*{EXTENSION_SUFFIXES[0]}"):
            library.write_bytes(b"\x7fELF" + os.urandom(200))
    code = ("import sys; from pathlib import Path; from collector.tls import compiled_reader;"
            "from collector.tls.capture import read_handshakes;"
            "r = read_handshakes(Path(sys.argv[1])); print(compiled_reader.in_use(), len(r.handshakes))")
    env = {k: v for k, v in os.environ.items() if k != compiled_reader.PURE_PYTHON}
    done = subprocess.run([sys.executable, "-c", code, str(CAPTURES / "ca-mismatch-java-tls12.pcap")],
                          env={**env, "PYTHONPATH": str(tmp_path)}, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.split() == [str(build == "this build"), "1"]

"""End-to-end helpers: run the real `collect` process against a lab and open what it wrote."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lab.lab import Lab

CAPTURE_SECONDS = 3


@dataclass
class CollectRun:
    """One finished `collect` process and the bundle it wrote."""

    returncode: int
    stdout: str
    stderr: str
    out: Path

    @property
    def result(self) -> dict[str, Any]:
        return json.loads(self.stdout)

    @property
    def bundle(self) -> Path:
        return Path(self.result["bundle"])

    def members(self) -> dict[str, tarfile.TarInfo]:
        """Bundle path (without the top folder) -> tar member."""
        with tarfile.open(self.bundle) as tar:
            return {m.name.split("/", 1)[1]: m for m in tar.getmembers() if m.isfile()}

    def read(self, rel: str) -> bytes:
        with tarfile.open(self.bundle) as tar:
            top = tar.getmembers()[0].name.split("/", 1)[0]
            handle = tar.extractfile(f"{top}/{rel}")
            assert handle is not None, rel
            return handle.read()

    def raw_tar(self) -> bytes:
        return gzip.decompress(self.bundle.read_bytes())


def resolved_inventory(lab: Lab) -> Path:
    """The lab's inventory with real (symlink-free) paths.

    The lab's host roots are symlinks from pytest's 0700 basetemp to a world-traversable place; the lab user's
    SFTP cannot pass through the 0700 directory, so the collector must be given the real paths.
    """
    path = Path(str(lab.inventory)).with_name("inventory.resolved.yaml")
    if not path.exists():
        document = yaml.safe_load(Path(str(lab.inventory)).read_text())
        for host in document["hosts"].values():
            for key in ("system_log", "capture_dir"):
                if key in host:
                    host[key] = os.path.realpath(host[key])
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def collect_args(lab: Lab, *, auth: str = "basic", reproduce: bool = True,
                 capture_seconds: int = CAPTURE_SECONDS) -> list[str]:
    """The usual run against `lab`; credentials never on the command line."""
    args = ["--org", lab.org, "--env", lab.env, "--proxy", lab.proxy, "--mgmt-url", str(lab.emulator_url),
            "--inventory", str(resolved_inventory(lab)), "--known-hosts", str(lab.known_hosts),
            "--capture-seconds", str(capture_seconds)]
    if auth == "basic":
        args += ["--username", lab.username]
    if reproduce:
        # The operator's curl carries both seeded secrets: the bundle and the terminal must never show them.
        curl = (f"curl -sS -u {lab.username}:{lab.password} "
                f"-H 'Authorization: Bearer {lab.token}' {lab.reproduction_url}")
        args += ["--reproduce", curl]
    return args


def keep_lab_roots_traversable(lab: Lab) -> None:
    """Re-open the lab host roots' parents for the lab's SSH user.

    The lab makes them o+x when it starts, but any other pytest session starting meanwhile resets its basetemp
    (/tmp/pytest-of-root) to 0700, which locks the SSH user out of the capture dirs again (SFTP fails).
    """
    if lab.ssh is None:
        return
    for host in lab.ssh.hosts:
        for parent in Path(host.root).resolve().parents:
            mode = parent.stat().st_mode
            if mode & 0o001 == 0:
                parent.chmod(mode | 0o011)


@contextmanager
def lab_roots_kept_traversable(lab: Lab) -> Iterator[None]:
    """Keep re-opening the roots' parents while a run is going (see keep_lab_roots_traversable)."""
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(0.2):
            keep_lab_roots_traversable(lab)

    keep_lab_roots_traversable(lab)
    thread = threading.Thread(target=keep, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_collect_process(lab: Lab, out: Path, *args: str, auth: str = "basic") -> CollectRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIGEE_")}
    env["HOME"] = str(out)
    if auth == "basic":
        env["APIGEE_PASSWORD"] = lab.password
    else:
        env["APIGEE_TOKEN"] = lab.token
    out.mkdir(parents=True, exist_ok=True)
    with lab_roots_kept_traversable(lab):
        done = subprocess.run([sys.executable, "-m", "collector", *args, "--out", str(out)],
                              env=env, cwd=out, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=180, check=False)
    return CollectRun(done.returncode, done.stdout, done.stderr, out)


@pytest.fixture(scope="module")
def collect_in_lab(lab_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`(scenario, backend="java", tls_version="1.2", *extra, json=True) -> CollectRun`, cached per module."""
    runs: dict[tuple[Any, ...], CollectRun] = {}

    def run(scenario: str, backend: str = "java", tls_version: str = "1.2", *extra: str,
            as_json: bool = True) -> CollectRun:
        key = (scenario, backend, tls_version, extra, as_json)
        if key not in runs:
            lab = lab_factory(scenario, backend, tls_version)
            out = tmp_path_factory.mktemp(f"collect-{scenario}-{backend}-{tls_version}")
            args = collect_args(lab) + list(extra) + (["--json"] if as_json else [])
            runs[key] = run_collect_process(lab, out, *args)
        return runs[key]

    return run

"""Fabric fixtures: the real `fab` (with a one-line fabfile) and `collect-fab` against the lab's sshd hosts,
configured the way a team would: an ssh config naming the hosts, a fabric.yaml with what Fabric has no word
for. One collection in the ca-mismatch lab (captures on the MPs and the backend, a reproduction, stop, logs,
facts) is shared by the tests of a module, like tests/playbooks does with the playbook's run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.lab.lab import Lab

BIN = Path(sys.executable).parent
FAB = BIN / "fab"
COLLECT_FAB = BIN / "collect-fab"
FABFILE = "from collector.fabric import ns  # noqa: F401 - fab loads the collection named ns\n"


@dataclass
class FabricHome:
    """A directory set up like a team's Fabric project for the lab: fabfile.py, fabric.yaml, an ssh config."""

    lab: Lab
    path: Path
    ssh_config: Path
    out: Path
    runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        # HOME here: no ~/.ssh/config, ~/.fabric.yaml or known_hosts of whoever runs the suite.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("APIGEE_", "FABRIC_", "INVOKE_"))}
        env["HOME"] = str(self.path)
        return env

    def fab(
        self, *args: str, program: Path = FAB, out: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`fab -S ssh_config ARGS` with `--out OUT` given to every task, run in the project dir."""
        argv = [str(program), "-S", str(self.ssh_config), *_with_out(list(args), out or self.out)]
        done = subprocess.run(argv, cwd=self.path, env=env or self.env(), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120, check=False)
        self.runs.append(done)
        return done

    @property
    def record(self) -> dict[str, Any]:
        return json.loads((self.out / "collection.json").read_text())


def _with_out(args: list[str], out: Path) -> list[str]:
    """`--out OUT` after each task name (a task's options follow it)."""
    tasks = {"init", "start-capture", "stop-capture", "logs", "facts"}
    result: list[str] = []
    for arg in args:
        result.append(arg)
        if arg in tasks:
            result += ["--out", str(out)]
    return result


def make_home(lab: Lab, path: Path, extra_hosts: dict[str, dict[str, Any]] | None = None) -> FabricHome:
    """The lab's hosts by name in an ssh config (their keys trusted through UserKnownHostsFile), their roots
    and the backend's role in fabric.yaml. `extra_hosts` adds aliases: {alias: {"of": name, "user": ...,
    "known_hosts": ..., "strict": StrictHostKeyChecking}}."""
    assert lab.ssh is not None
    path.mkdir(parents=True, exist_ok=True)
    blocks = []
    hosts: dict[str, dict[str, Any]] = {}
    aliases = {h.name: {"of": h.name} for h in lab.ssh.hosts} | (extra_hosts or {})
    for alias, spec in aliases.items():
        host = lab.ssh.host(spec["of"])
        blocks.append(
            f"Host {alias}\n  HostName {host.address}\n  Port {host.port}\n"
            f"  User {spec.get('user', lab.ssh.user)}\n  IdentityFile {lab.ssh.client_key}\n"
            f"  UserKnownHostsFile {spec.get('known_hosts', lab.ssh.known_hosts)}\n"
            + (f"  StrictHostKeyChecking {spec['strict']}\n" if "strict" in spec else "")
        )
        # The lab user cannot pass through pytest's 0700 temp dirs: paths resolved, as tests/playbooks does.
        hosts[alias] = {"capture_dir": os.path.realpath(host.capture_dir),
                        "system_log": os.path.realpath(host.system_log)}
        if host.role == "backend":
            hosts[alias]["role"] = "backend"
    ssh_config = path / "ssh_config"
    ssh_config.write_text("\n".join(blocks))
    (path / "fabric.yaml").write_text(yaml.safe_dump({"collector": {"hosts": hosts}}))
    (path / "fabfile.py").write_text(FABFILE)
    return FabricHome(lab, path, ssh_config, path / "raw")


@dataclass
class FabricRun:
    """The shared collection: the fab runs, in order, and the reproduction's message id."""

    home: FabricHome
    message_id: str

    @property
    def lab(self) -> Lab:
        return self.home.lab


@pytest.fixture(scope="module")
def fabric_run(lab_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabricRun]:
    """In the ca-mismatch lab: init and start-capture on the MPs with `fab`, on the backend with
    `collect-fab -c collector.fabric`, the failing call, then stop-capture, logs and facts in one `fab`."""
    lab = lab_factory("ca-mismatch")
    home = make_home(lab, tmp_path_factory.mktemp("fabric"))
    backend = f"{lab.backend.address}:{lab.backend.port}"
    mps = ",".join(mp.address for mp in lab.message_processors)
    home.fab("-H", "mp1,mp2", "init", "--org", lab.org, "--env", lab.env, "--proxy", lab.proxy,
             "start-capture", "--backend", backend)
    home.fab("-c", "collector.fabric", "-H", "backend", "start-capture", "--mp", mps, "--backend", backend,
             program=COLLECT_FAB)
    try:
        response = httpx.get(lab.reproduction_url, timeout=30)
        message_id = response.headers.get("X-Apigee.Message-ID", "")
    finally:
        home.fab("-H", "mp1,mp2,backend", "stop-capture", "logs", "--message-id", message_id or "none",
                 "facts")
    yield FabricRun(home, message_id)

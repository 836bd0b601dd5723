"""Playbook fixtures: Ansible kept offline and inside the test's temp dir, an inventory for the lab's sshd
hosts, one real playbooks/collect.yml run in the ca-mismatch lab, and `collect package` on what it wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lab.lab import Lab

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
COLLECT_YML = PLAYBOOKS / "collect.yml"
BIN = Path(sys.executable).parent
CAPTURE_SECONDS = 2


def ansible_env(home: Path) -> dict[str, str]:
    """Environment for ansible-playbook / ansible-lint: no user config, no network, state under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "APIGEE_"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        ANSIBLE_CONFIG=str(PLAYBOOKS / "ansible.cfg"),
        ANSIBLE_HOME=str(home / "ansible"),
        ANSIBLE_LOCAL_TEMP=str(home / "local-tmp"),
        # Short: the control socket path must fit in a sockaddr_un.
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(home / "cp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_LINT_SKIP_SCHEMA_UPDATE="1",
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"),
        NO_COLOR="1",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def stop_control_masters(home: Path) -> None:
    """End the ControlPersist ssh masters the run left (they would otherwise linger for a minute)."""
    for socket in (home / "cp").glob("*") if (home / "cp").is_dir() else ():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "lab-host"],
            capture_output=True,
            timeout=10,
            check=False,
        )


def write_inventory(lab: Lab, path: Path, remote_tmp: str, async_dir: str) -> Path:
    """An Ansible inventory of the lab's hosts with verified host keys and real (symlink-free) paths.

    The lab user cannot pass through pytest's 0700 temp dirs, so capture dir and system.log are given
    resolved. `remote_tmp` / `async_dir` are this run's own, so the test can check that nothing is left
    in them.
    """
    assert lab.ssh is not None
    # Temp and async dirs as group vars: under `all` they would reach the controller's implicit localhost too,
    # which would create them first, as root.
    dirs = {"ansible_remote_tmp": remote_tmp, "ansible_async_dir": async_dir}
    groups: dict[str, dict[str, Any]] = {
        "message_processors": {"hosts": {}, "vars": dict(dirs)},
        "backends": {"hosts": {}, "vars": dict(dirs)},
    }
    for host in lab.ssh.hosts:
        group = "message_processors" if host.role == "message-processor" else "backends"
        groups[group]["hosts"][host.name] = {
            "ansible_host": host.address,
            "ansible_port": host.port,
            "collector_system_log": os.path.realpath(host.system_log),
            "collector_capture_dir": os.path.realpath(host.capture_dir),
        }
    document = {
        "all": {
            "vars": {
                "ansible_user": lab.ssh.user,
                "ansible_ssh_private_key_file": str(lab.ssh.client_key),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={lab.ssh.known_hosts}"
                " -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null",
                "ansible_python_interpreter": "/usr/bin/python3",
            },
            "children": groups,
        }
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def run_tool(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class PlaybookRun:
    """One finished `ansible-playbook collect.yml` against the lab, and where its traces would be."""

    lab: Lab
    done: subprocess.CompletedProcess[str]
    out: Path
    home: Path
    inventory: Path
    remote_tmp: Path
    async_dir: Path

    @property
    def record(self) -> dict[str, Any]:
        return json.loads((self.out / "collection.json").read_text())


@dataclass
class PackageRun:
    """One finished `collect package --json` and the bundle it wrote."""

    done: subprocess.CompletedProcess[str]

    @property
    def result(self) -> dict[str, Any]:
        return json.loads(self.done.stdout)

    @property
    def bundle(self) -> Path:
        return Path(self.result["bundle"])


def collect_env(lab: Lab, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIGEE_")}
    env["HOME"] = str(home)
    env["APIGEE_PASSWORD"] = lab.password  # never on the command line
    return env


def run_package(lab: Lab, raw: Path, out: Path, *args: str) -> PackageRun:
    out.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "collector",
        "package",
        "--from",
        str(raw),
        "--out",
        str(out),
        "--json",
        *args,
    ]
    return PackageRun(run_tool(argv, collect_env(lab, out), out, timeout=120))


def run_playbook(lab: Lab, home: Path, extra: list[str], edit: Any = None) -> PlaybookRun:
    """collect.yml against the lab's hosts; `edit(document)` may change the inventory first."""
    token = uuid.uuid4().hex[:8]
    remote_tmp = Path(f"/tmp/apigee-pb-remote-{token}")
    async_dir = Path(f"/tmp/apigee-pb-async-{token}")
    inventory = write_inventory(lab, home / "inventory.yml", str(remote_tmp), str(async_dir))
    if edit is not None:
        document = yaml.safe_load(inventory.read_text())
        edit(document)
        inventory.write_text(yaml.safe_dump(document, sort_keys=False))
    out = home / "raw"
    names = ["-e", f"org={lab.org}", "-e", f"env={lab.env}", "-e", f"proxy={lab.proxy}", "-e", f"out={out}"]
    argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(COLLECT_YML), *names, *extra]
    done = run_tool(argv, ansible_env(home), home)
    return PlaybookRun(lab, done, out, home, inventory, remote_tmp, async_dir)


def clean_up_run(run: PlaybookRun) -> None:
    stop_control_masters(run.home)
    shutil.rmtree(run.remote_tmp, ignore_errors=True)
    shutil.rmtree(run.async_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def playbook_run(lab_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlaybookRun]:
    """collect.yml in the ca-mismatch lab: every host captures, the playbook calls the reproduction URL."""
    lab = lab_factory("ca-mismatch")
    extra = [
        "-e",
        f"reproduction_url={lab.reproduction_url}",
        "-e",
        f"capture_seconds={CAPTURE_SECONDS}",
        "-e",
        f"backend_port={lab.backend.port}",
    ]
    run = run_playbook(lab, tmp_path_factory.mktemp("ansible"), extra)
    try:
        yield run
    finally:
        clean_up_run(run)


@pytest.fixture(scope="module")
def packaged(playbook_run: PlaybookRun, tmp_path_factory: pytest.TempPathFactory) -> PackageRun:
    """`collect package` of the playbook's raw directory, with management API access to the lab's emulator."""
    lab = playbook_run.lab
    return run_package(
        lab,
        playbook_run.out,
        tmp_path_factory.mktemp("bundle"),
        "--org",
        lab.org,
        "--env",
        lab.env,
        "--proxy",
        lab.proxy,
        "--mgmt-url",
        str(lab.emulator_url),
        "--username",
        lab.username,
    )

"""The Fabric tasks with the real `fab` and `collect-fab` against the lab's sshd hosts: a ca-mismatch failure
captured on the MPs and the backend, packaged by `collect package --from`, and the failures operators meet."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from collector import layout
from collector.inventory import InventoryHost
from collector.remote import commands, host_steps
from collector.remote.capture import count_pcap_records
from collector.run.raw_collection import read_raw_collection
from tests.fabric.conftest import COLLECT_FAB, FabricRun, make_home
from tests.lab.sshd import NOSUDO_USER, assert_run_left_nothing

MPS = ("mp1", "mp2")
HOSTS = (*MPS, "backend")

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_every_fab_run_succeeds(fabric_run: FabricRun) -> None:
    for done in fabric_run.home.runs:
        assert done.returncode == 0, " ".join(done.args) + "\n" + done.stdout + done.stderr
    assert fabric_run.message_id
    printed = "".join(done.stdout for done in fabric_run.home.runs)
    for host in HOSTS:
        for step in ("start-capture", "stop-capture", "facts"):
            assert f"{host} -> {step}: ok: " in printed, (host, step)


def test_record_is_a_raw_collection_with_every_step(fabric_run: FabricRun) -> None:
    # Given the tasks' collection.json, When `collect package` reads it, Then it has the names given to init,
    # each host's role, its capture filter and every step ok (logs: MPs only), and no capture left running.
    home, lab = fabric_run.home, fabric_run.lab
    collection = read_raw_collection(home.out)
    assert (collection.org, collection.env, collection.proxy) == (lab.org, lab.env, lab.proxy)
    assert [h.name for h in collection.hosts] == list(HOSTS)
    assert [h.role for h in collection.hosts] == ["message-processor", "message-processor", "backend"]
    assert collection.backend_port == lab.backend.port and collection.producer == "collector.fabric"
    assert collection.message_ids == (fabric_run.message_id,)
    assert collection.captured() == list(HOSTS) and not collection.ignored
    steps = {(s.host, str(s.step)): s.status.value for s in collection.steps}
    for host in HOSTS:
        for step in ("start-capture", "stop-capture", "fetch-capture", "facts"):
            assert steps[(host, step)] == "ok", (host, step)
        assert steps[(host, "logs")] == ("ok" if host in MPS else "not-applicable")
    assert not [h for h in home.record["hosts"] if "capture" in h]


def test_raw_layout_holds_what_the_run_fetches(fabric_run: FabricRun) -> None:
    out = fabric_run.home.out
    for host in HOSTS:
        names = [layout.HOST_CAPTURE, layout.HOST_FACTS, layout.HOST_COMMANDS]
        if host in MPS:
            names += [layout.HOST_LOG_EXCERPT, layout.HOST_LOG]
        for name in names:
            path = out / layout.host_file(host, name)
            assert path.is_file() and path.stat().st_mode & 0o077 == 0, path
        assert count_pcap_records(out / layout.host_file(host, layout.HOST_CAPTURE)) > 0
    excerpts = "".join((out / layout.host_file(h, layout.HOST_LOG_EXCERPT)).read_text() for h in MPS)
    assert any("handshakeFailed" in line and fabric_run.message_id in line for line in excerpts.splitlines())
    facts = json.loads((out / layout.host_file("backend", layout.HOST_FACTS)).read_text())
    assert facts["role"] == "backend" and facts["address"] == fabric_run.lab.backend.address


def test_commands_are_the_host_step_builders(fabric_run: FabricRun) -> None:
    # Then commands.log holds the very argv host_steps builds for this host (sudo -n, no password prompt).
    lab, out = fabric_run.lab, fabric_run.home.out
    assert lab.ssh is not None
    ssh_host = lab.ssh.host("mp1")
    host = InventoryHost(name="mp1", address=ssh_host.address, port=ssh_host.port, user=lab.ssh.user,
                         capture_dir=str(Path(ssh_host.capture_dir).resolve()))
    run_id = fabric_run.home.record["run_id"]
    inputs = host_steps.RunInputs(run_id, backend_addresses=(lab.backend.address,), port=lab.backend.port,
                                  capture_seconds=600)
    argv = host_steps.start_capture_argv(host, run_id, inputs.peers(host), inputs.port, inputs.max_seconds)
    log = (out / layout.host_file("mp1", layout.HOST_COMMANDS)).read_text()
    assert commands.render(["sudo", "-n", "--", *argv]).replace("\n", "\\n") in log
    for marker in ("collector-check-capture", "collector-stop-capture", "sftp-get",
                   "collector-remove-run-dir", "collector-list-logs", "collector-excerpt-logs",
                   "collector-stream-logs", "collector-facts"):
        assert marker in log, marker


def test_nothing_is_left_on_the_hosts(fabric_run: FabricRun) -> None:
    run_id = fabric_run.home.record["run_id"]
    assert fabric_run.lab.ssh is not None
    assert_run_left_nothing(fabric_run.lab.ssh.hosts, run_id)


def test_package_names_the_cause_and_verifies(fabric_run: FabricRun, tmp_path: Path) -> None:
    # When collect package bundles the tasks' output (org/env/proxy from init) with the management API, Then
    # the analysis names ca-mismatch and `collect verify` accepts the bundle.
    lab = fabric_run.lab
    env = {**fabric_run.home.env(), "APIGEE_PASSWORD": lab.password}
    packaged = subprocess.run(
        [sys.executable, "-m", "collector", "package", "--from", str(fabric_run.home.out), "--out",
         str(tmp_path), "--mgmt-url", str(lab.emulator_url), "--username", lab.username, "--json"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert packaged.returncode == 0, packaged.stdout + packaged.stderr
    result = json.loads(packaged.stdout)
    assert result["complete"] is True and result["diagnosis"]["cause"] == "ca-mismatch"
    trace = next(s for s in result["steps"] if s["step"] == "trace")
    assert "collector.fabric" in trace["message"]
    verified = subprocess.run([sys.executable, "-m", "collector", "verify", result["bundle"]],
                              capture_output=True, text=True, timeout=60, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_failures_name_the_host_and_step(fabric_run: FabricRun, tmp_path: Path) -> None:
    # Given a login without sudo and a host whose key is not trusted, When the tasks run on them, Then each
    # says `HOST -> STEP: reason: why` with how to fix it in Fabric's terms, fab exits 1, and the record says
    # so; no run dir is left behind. The ssh config's `StrictHostKeyChecking accept-new` accepts a new key.
    lab = fabric_run.lab
    untrusted, accepting = tmp_path / "known_hosts", tmp_path / "known_hosts.accept"
    untrusted.write_text("")
    home = make_home(lab, tmp_path / "home", {
        "mp1-nosudo": {"of": "mp1", "user": NOSUDO_USER},
        "mp2-untrusted": {"of": "mp2", "known_hosts": str(untrusted)},
        "mp2-accept": {"of": "mp2", "known_hosts": str(accepting), "strict": "accept-new"},
    })
    backend = f"{lab.backend.address}:{lab.backend.port}"
    denied = home.fab("-H", "mp1-nosudo", "start-capture", "--backend", backend, program=COLLECT_FAB)
    assert denied.returncode == 1, denied.stdout + denied.stderr
    assert denied.stderr.startswith("mp1-nosudo -> start-capture: sudo-denied: ")
    assert "--prompt-for-sudo-password" in denied.stderr
    assert "failed on: mp1-nosudo (start-capture)" in denied.stderr
    done = home.fab("-H", "mp2-untrusted,mp2-accept", "facts", program=COLLECT_FAB)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("mp2-untrusted -> connect: host-key-unknown: ")
    assert "StrictHostKeyChecking accept-new" in done.stderr and "Traceback" not in done.stderr
    assert lab.ssh is not None
    mp2 = lab.ssh.host("mp2")
    assert "mp2-accept -> facts: ok: " in done.stdout
    assert accepting.read_text().startswith(f"[{mp2.address}]:{mp2.port} ") and untrusted.read_text() == ""
    steps = {(s.host, str(s.step)): s.reason for s in read_raw_collection(home.out).steps}
    assert steps == {("mp1-nosudo", "start-capture"): "sudo-denied",
                     ("mp2-untrusted", "connect"): "host-key-unknown", ("mp2-accept", "facts"): None}
    assert not [h for h in home.record["hosts"] if "capture" in h]
    run_id = home.record["run_id"]
    assert not list(Path(lab.ssh.host("mp1").capture_dir).resolve().glob(f"*{run_id}*"))

    # A stop without a start says so; bad options stop fab before any host or file is touched (exit 2).
    stopped = home.fab("-H", "mp1", "stop-capture", program=COLLECT_FAB)
    assert stopped.returncode == 1 and "mp1 -> stop-capture: no-capture: " in stopped.stderr
    bad = home.fab("-H", "mp1", "start-capture", "--backend", "no-port", program=COLLECT_FAB,
                   out=tmp_path / "never")
    assert bad.returncode == 2 and "--backend" in bad.stderr and not (tmp_path / "never").exists()


def test_sudo_password_comes_from_fabrics_sudo_config(fabric_run: FabricRun, tmp_path: Path) -> None:
    # Given a login whose sudo asks for a password and Fabric's sudo.password (FABRIC_SUDO_PASSWORD, as
    # --prompt-for-sudo-password sets it), When logs runs, Then sudo reads it on stdin (`sudo -S`), never
    # prompting, and commands.log never holds it.
    lab = fabric_run.lab
    assert lab.ssh is not None
    home = make_home(lab, tmp_path / "home", {"mp1-pw": {"of": "mp1", "user": lab.ssh.password_user}})
    env = {**home.env(), "FABRIC_SUDO_PASSWORD": lab.ssh.sudo_password}
    done = home.fab("-H", "mp1-pw", "logs", program=COLLECT_FAB, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    log = (home.out / layout.host_file("mp1-pw", layout.HOST_COMMANDS)).read_text()
    assert "sudo -S -p '' -- sh -c" in log and "sudo -n" not in log
    assert lab.ssh.sudo_password not in log + done.stdout + done.stderr

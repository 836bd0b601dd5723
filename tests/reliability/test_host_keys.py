"""Host keys through the real `collect`: an unknown host is accepted only with --accept-new-host-keys (and
then recorded in the known_hosts file); a changed key is refused even with that flag. (The refusal of an
unknown host without the flag, and of a changed key by default, are rows K01 and F03 of the fault run.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.reliability.conftest import FaultLab, Run, no_traceback, run_collect

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.fixture(scope="module")
def accept_run(fault_lab: FaultLab, tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    lab = fault_lab.lab
    root = tmp_path_factory.mktemp("host-keys")
    inventory = yaml.safe_load(fault_lab.inventory.read_text())
    inventory["hosts"] = {name: inventory["hosts"][name] for name in ("mp-unknown", "mp-newkey")}
    inventory_path = root / "inventory.yaml"
    inventory_path.write_text(yaml.safe_dump(inventory))
    known_hosts = root / "known_hosts"
    known_hosts.write_text(fault_lab.known_hosts.read_text())
    run = run_collect(lab, root / "out", "--org", lab.org, "--env", lab.env, "--proxy", lab.proxy, "--no-api",
                      "--backend", f"{lab.backend.address}:{lab.backend.port}",
                      "--inventory", str(inventory_path), "--known-hosts", str(known_hosts),
                      "--capture-seconds", "1", "--accept-new-host-keys", "--json")
    no_traceback(run)
    return run, known_hosts


def test_k02_unknown_host_is_accepted_explicitly_and_recorded(accept_run: tuple[Run, Path],
                                                              fault_lab: FaultLab) -> None:
    run, known_hosts = accept_run
    assert run.step("mp-unknown", "connect")["status"] == "ok"
    assert run.step("mp-unknown", "start-capture")["status"] == "ok"
    host = fault_lab.hosts.host("mp-unknown")
    public = (fault_lab.hosts.workdir / "sshd" / "mp-unknown" / "host_ed25519.pub").read_text().split()[1]
    recorded = [line for line in known_hosts.read_text().splitlines() if public in line]
    assert recorded and f"[{host.address}]:{host.port}" in recorded[0], known_hosts.read_text()


def test_k03_changed_host_key_is_refused_even_with_accept_new(accept_run: tuple[Run, Path],
                                                              fault_lab: FaultLab) -> None:
    run, known_hosts = accept_run
    assert run.returncode == 3, run.terminal
    record = run.step("mp-newkey", "connect")
    assert record["status"] == "failed" and record["reason"] == "host-key-mismatch", record
    public = (fault_lab.hosts.workdir / "sshd" / "mp-newkey" / "host_ed25519.pub").read_text().split()[1]
    assert public not in known_hosts.read_text()  # the changed key was not written over the old one

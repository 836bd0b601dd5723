"""The composed lab: lab.json, SSH hosts and emulator wired to the MPs, captures, and `up`/`down`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.lab.backends import LabError
from tests.lab.lab import PID_FILE, Lab, LabSpec, capture_traffic, start_lab
from tests.lab.pki import LabPki

ROOT = Path(__file__).resolve().parents[2]
LAB_JSON_KEYS = {
    "directory", "scenario", "tls_version", "backend", "message_processors", "ssh_hosts", "ssh_user",
    "inventory", "known_hosts", "client_key", "emulator", "org", "env", "proxy", "revision", "target_style",
    "keystore", "keystore_reference", "key_alias", "truststore", "truststore_reference", "mp_keystore_file",
    "pki", "transactions", "reproduction_url", "reproduction_command", "cause", "target_tls",
}


def _listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.lab
def test_full_lab_wires_mps_ssh_hosts_and_emulator(lab_factory: Callable[..., Lab]) -> None:
    # Given the default lab: ca-mismatch, JSSE backend, TLS 1.2, two MPs, SSH hosts and the Edge emulator
    lab = lab_factory("ca-mismatch")
    document = json.loads(lab.lab_json.read_text())
    assert set(document) == LAB_JSON_KEYS
    assert (document["org"], document["env"], document["proxy"], document["revision"]) == (
        "lab-org", "test", "mtls-proxy", "3")
    assert document["backend"]["address"] == "127.0.0.21"
    assert [mp["address"] for mp in document["message_processors"]] == ["127.0.0.11", "127.0.0.12"]
    assert [h["name"] for h in document["ssh_hosts"]] == ["mp1", "mp2", "backend"]
    assert document["reproduction_url"].startswith(lab.message_processors[0].url)
    assert Path(document["inventory"]).exists() and Path(document["client_key"]).exists()
    assert len(Path(document["known_hosts"]).read_text().splitlines()) == 3
    # When the reproduction runs through each MP
    ids = []
    for mp in lab.message_processors:
        response = httpx.get(mp.url + "/mtls/ping", timeout=30)
        assert response.status_code == 503
        ids.append(response.headers["X-Apigee.Message-ID"])
    # Then each MP's system.log (where its SSH host's inventory says) has its own failure line
    # (ssh_hosts ends with the backend's host, which has no MP to pair with)
    for mp, message_id, host in zip(lab.message_processors, ids, document["ssh_hosts"], strict=False):
        assert host["system_log"] == str(mp.log_path)
        lines = [line for line in mp.log_path.read_text().splitlines() if message_id in line]
        assert any(line.endswith("handshake failed, message: Received fatal alert: bad_certificate")
                   for line in lines)
    # And the shared transactions file has both, which the emulator serves
    recorded = [json.loads(line)["message_id"] for line in lab.transactions.read_text().splitlines()]
    assert set(ids) <= set(recorded)
    emulator = document["emulator"]
    deployments = httpx.get(
        f"{emulator['url']}/v1/organizations/lab-org/environments/test/apis/mtls-proxy/deployments",
        auth=(emulator["username"], emulator["password"]), timeout=10)
    assert deployments.status_code == 200
    assert {mp["uuid"] for mp in document["message_processors"]} <= {
        server["uUID"] for revision in deployments.json()["revision"] for server in revision["server"]}
    for host in document["ssh_hosts"]:
        with socket.create_connection((host["address"], host["port"]), timeout=5) as ssh:
            assert ssh.recv(64).startswith(b"SSH-2.0")


@pytest.mark.lab
def test_missing_certificate_lab_has_an_empty_keystore(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory("missing-client-certificate", message_processors=1)
    assert lab.emulator is not None
    url = f"{lab.emulator_url}/v1/organizations/lab-org/environments/test/keystores/myKeystore"
    keystore = httpx.get(url, headers={"Authorization": f"Bearer {lab.token}"}, timeout=10)
    assert keystore.status_code == 200
    assert keystore.json()["certs"] == [] and keystore.json()["keys"] == []
    assert httpx.get(lab.reproduction_url, timeout=30).status_code == 503


def _tshark(pcap: Path, *options: str) -> list[list[str]]:
    result = subprocess.run(
        ["tshark", "-r", str(pcap), *options, "-Y", "tls", "-T", "fields", "-E", "separator=|",
         "-e", "ip.src", "-e", "tls.handshake.type", "-e", "tls.alert_message.desc"],
        capture_output=True, text=True, check=True, timeout=60)
    return [line.split("|") for line in result.stdout.splitlines()]


@pytest.mark.lab
def test_capture_holds_the_handshake_and_the_alert(tmp_path: Path, lab_pki: LabPki) -> None:
    # Given a bare ca-mismatch lab with the JSSE backend in TLS 1.2
    spec = LabSpec("ca-mismatch", "java", "1.2", directory=tmp_path / "lab", pki_directory=lab_pki.directory)
    # When two reproductions are captured
    pcap = tmp_path / "ca-mismatch-java-tls12.pcap"
    assert capture_traffic(spec, pcap, requests=2) == [503, 503]
    # Then the capture holds, twice: the MP's ClientHello, the CertificateRequest, the empty client
    # Certificate (handshake type 11 from the MP) and the backend's bad_certificate alert (42)
    rows = _tshark(pcap)
    assert sum(r[0] == "127.0.0.11" and "1" in r[1].split(",") for r in rows) == 2
    assert sum(r[0] == "127.0.0.21" and "13" in r[1].split(",") for r in rows) == 2
    assert sum(r[0] == "127.0.0.11" and "11" in r[1].split(",") for r in rows) == 2
    assert sum(r[0] == "127.0.0.21" and r[2] == "42" for r in rows) == 2
    assert b"Lab CA A" in pcap.read_bytes() and b"Lab CA B" not in pcap.read_bytes()
    assert not pcap.with_suffix(".keys").exists()


@pytest.mark.lab
def test_openssl_tls13_capture_comes_with_its_key_log(tmp_path: Path, lab_pki: LabPki) -> None:
    spec = LabSpec("missing-client-certificate", "openssl", "1.3", directory=tmp_path / "lab",
                   pki_directory=lab_pki.directory)
    pcap = tmp_path / "missing-openssl-tls13.pcap"
    assert capture_traffic(spec, pcap) == [503]
    keys = pcap.with_suffix(".keys")
    # Without the key log the alert is opaque; with it, tshark sees certificate_required (116)
    assert not any(r[2] for r in _tshark(pcap))
    assert any(r[0] == "127.0.0.21" and r[2] == "116" for r in _tshark(pcap, "-o", f"tls.keylog_file:{keys}"))


@pytest.mark.lab
def test_stop_is_idempotent_and_frees_every_port(tmp_path: Path, lab_pki: LabPki) -> None:
    spec = LabSpec("healthy", "openssl", "1.2", message_processors=1, directory=tmp_path / "lab",
                   pki_directory=lab_pki.directory, ssh_hosts=False, emulator=False)
    with start_lab(spec) as lab:
        assert httpx.get(lab.reproduction_url, timeout=30).status_code == 200
    lab.stop()
    assert not _listening(lab.backend.address, lab.backend.port)
    assert not any(_listening(mp.address, mp.port) for mp in lab.message_processors)


def test_a_directory_owned_by_a_running_lab_is_refused(tmp_path: Path) -> None:
    (tmp_path / PID_FILE).parent.mkdir(parents=True)
    (tmp_path / PID_FILE).write_text(f"{os.getppid()}\n")
    with pytest.raises(LabError, match="a lab started by process"):
        start_lab(LabSpec(directory=tmp_path))


@pytest.mark.lab
def test_up_runs_until_down(tmp_path: Path, lab_pki: LabPki) -> None:
    # Given `up` running in another process
    directory = tmp_path / "lab"
    command = [sys.executable, "-m", "tests.lab", "up", "--scenario", "healthy", "--backend", "nginx",
               "--mps", "1", "--dir", str(directory)]
    up = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (directory / PID_FILE).exists() and up.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (directory / PID_FILE).exists(), up.stdout.read() if up.poll() is not None else "up not ready"
        document = json.loads((directory / "lab.json").read_text())
        assert httpx.get(document["reproduction_url"], timeout=30).status_code == 200
        # When `down` runs
        down = subprocess.run([sys.executable, "-m", "tests.lab", "down", "--dir", str(directory)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        # Then `up` exits cleanly and nothing it started still listens
        assert down.returncode == 0, down.stderr
        assert up.wait(timeout=30) == 0
        assert "stopping the lab" in up.stdout.read()
        mp = document["message_processors"][0]
        assert not _listening(mp["address"], mp["port"])
        assert not _listening(document["backend"]["address"], document["backend"]["port"])
        assert not any(_listening(h["address"], h["port"]) for h in document["ssh_hosts"])
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


@pytest.mark.lab
def test_capture_command_writes_the_pcap(tmp_path: Path, lab_pki: LabPki) -> None:
    # Given the command other helpers use to make fixtures, When it captures one nginx TLS 1.3 reproduction
    pcap = tmp_path / "nginx-tls13.pcap"
    run = subprocess.run([sys.executable, "-m", "tests.lab", "capture", "--scenario", "ca-mismatch",
                          "--backend", "nginx", "--tls", "1.3", "--out", str(pcap),
                          "--dir", str(tmp_path / "lab"), "--pki", str(lab_pki.directory)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    # Then it reports the 503 and the capture holds the MP's ClientHello (nginx writes no key log)
    assert run.returncode == 0, run.stderr
    assert "1 reproduction(s), HTTP 503" in run.stdout
    assert any(r[0] == "127.0.0.11" and r[1] == "1" for r in _tshark(pcap))
    assert not pcap.with_suffix(".keys").exists()


def test_an_unknown_scenario_is_refused_with_the_valid_ids(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a scenario id that is not a cause the lab reproduces, When the demo (or up) is asked for it,
    # Then it stops before starting anything and lists every valid id.
    from tests.lab.__main__ import main
    from tests.lab.scenarios import SCENARIO_IDS

    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--scenario", "server-certificate-revoked"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "unknown scenario 'server-certificate-revoked'" in error
    assert all(scenario in error for scenario in SCENARIO_IDS)


def test_a_scenario_refuses_a_backend_it_cannot_run_on(tmp_path: Path) -> None:
    # Given sni-required (it needs nginx's ssl_reject_handshake), When a Java backend is asked for, Then the
    # lab refuses before starting anything.
    with pytest.raises(ValueError, match="runs on a nginx backend"):
        start_lab(LabSpec(scenario="sni-required", backend="java", directory=tmp_path, ssh_hosts=False,
                          emulator=False))

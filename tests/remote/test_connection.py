"""SSH connections to real lab sshd hosts: host keys, auth, sudo, deadlines, raw-channel streams, audit."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from collector.inventory import InventoryHost, load_inventory
from collector.remote.connection import ConnectionSettings, HostError, open_host
from tests.lab.sshd import SshHosts

pytestmark = pytest.mark.lab


def _connect_error(host: InventoryHost, settings: ConnectionSettings) -> HostError:
    with pytest.raises(HostError) as caught:
        open_host(host, settings).close()
    assert caught.value.host == host.name and caught.value.step == "connect"
    return caught.value


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never says a word (a hung sshd / a firewall that lets SYNs through)."""
    listener = socket.create_server(("127.0.5.61", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_run_returns_output_and_exit_code(mp1: InventoryHost, settings: ConnectionSettings) -> None:
    with open_host(mp1, settings) as connection:
        ok = connection.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
        assert (ok.exit_code, ok.stdout, ok.stderr) == (3, "out\n", "err\n")
        with pytest.raises(HostError) as caught:
            connection.run(["false"], step="facts")
        assert caught.value.reason == "command-failed" and caught.value.step == "facts"


def test_stream_to_file_moves_large_output_intact(
    mp1: InventoryHost, settings: ConnectionSettings, tmp_path: Path
) -> None:
    with open_host(mp1, settings) as connection:
        result = connection.stream_to_file(["sh", "-c", "seq 1 3000000"], tmp_path / "out.txt")
    expected = "".join(f"{i}\n" for i in range(1, 3_000_001)).encode()
    assert result.exit_code == 0 and result.stdout_bytes == len(expected)
    assert hashlib.sha256((tmp_path / "out.txt").read_bytes()).digest() == hashlib.sha256(expected).digest()


def test_command_timeout_and_host_deadline(mp1: InventoryHost, settings: ConnectionSettings) -> None:
    with open_host(mp1, settings) as connection:
        with pytest.raises(HostError) as caught:
            connection.run(["sleep", "30"], timeout=0.5)
        assert caught.value.reason == "timeout"
        connection.deadline = 0.0  # long past
        with pytest.raises(HostError) as past:
            connection.run(["true"])
        assert past.value.reason == "timeout"


def test_unknown_host_key_is_refused_by_default(mp1: InventoryHost, lab: SshHosts, tmp_path: Path) -> None:
    error = _connect_error(
        mp1, ConnectionSettings(known_hosts=tmp_path / "empty_known_hosts", connect_timeout=5)
    )
    assert error.reason == "host-key-unknown"
    assert "SHA256:" in error.message and "--accept-new-host-keys" in error.message


def test_accept_new_adds_unknown_keys_but_never_a_changed_one(
    mp1: InventoryHost, lab: SshHosts, tmp_path: Path
) -> None:
    # Unknown: accepted and remembered
    known = tmp_path / "known_hosts"
    open_host(mp1, ConnectionSettings(known_hosts=known, accept_new_host_keys=True)).close()
    assert f"[{mp1.address}]:{mp1.port} ssh-ed25519 " in known.read_text()
    open_host(mp1, ConnectionSettings(known_hosts=known)).close()  # now known without the flag
    # Changed: refused even with the flag, and known_hosts is left alone
    wrong = lab.write_known_hosts_with_wrong_key(tmp_path / "wrong_known_hosts", ["mp1"])
    before = wrong.read_text()
    error = _connect_error(mp1, ConnectionSettings(known_hosts=wrong, accept_new_host_keys=True))
    assert error.reason == "host-key-mismatch"
    assert "mp1" in error.message and "SHA256:" in error.message and "CHANGED" in error.message
    assert wrong.read_text() == before


def test_wrong_key_is_auth_refused(mp1: InventoryHost, lab: SshHosts, settings: ConnectionSettings) -> None:
    error = _connect_error(replace(mp1, identity_file=str(lab.wrong_client_key())), settings)
    assert error.reason == "auth-refused"


@pytest.mark.parametrize(
    "content",
    [bytes(range(128, 256)) * 8, b"[127.0.0.11]:1 ssh-ed25519 notbase64!!\n"],
    ids=["binary", "bad-key-line"],
)
def test_unreadable_known_hosts_names_the_file(
    mp1: InventoryHost, settings: ConnectionSettings, tmp_path: Path, content: bytes
) -> None:
    # Given a known_hosts file paramiko cannot parse (binary bytes, or a key that is not base64)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_bytes(content)
    # When connecting, Then the failure is the file's, named, and not "unreachable" or a bug
    error = _connect_error(mp1, replace(settings, known_hosts=known_hosts))
    assert error.reason == "known-hosts-unreadable" and str(known_hosts) in error.problem


@pytest.mark.parametrize("identity", ["missing", "directory", "garbage"])
def test_unusable_identity_file_is_named_not_unreachable(
    mp1: InventoryHost, settings: ConnectionSettings, tmp_path: Path, identity: str
) -> None:
    # Given an inventory host whose identity_file is missing, a folder, or not a key
    path = {"missing": tmp_path / "nope", "directory": tmp_path, "garbage": tmp_path / "garbage"}[identity]
    if identity == "garbage":
        path.write_text("not a key\n")
    # When connecting, Then the reason says the identity file is unusable and names it
    error = _connect_error(replace(mp1, identity_file=str(path)), settings)
    assert error.reason == "identity-file-unusable" and str(path) in error.problem


def test_closed_port_is_unreachable(mp1: InventoryHost, settings: ConnectionSettings) -> None:
    with socket.create_server(("127.0.5.62", 0)) as probe:
        port = probe.getsockname()[1]
    error = _connect_error(replace(mp1, address="127.0.5.62", port=port), settings)
    assert error.reason == "unreachable"


def test_silent_server_times_out(mp1: InventoryHost, silent_server: int, lab: SshHosts) -> None:
    settings = ConnectionSettings(known_hosts=lab.known_hosts, connect_timeout=1)
    error = _connect_error(replace(mp1, address="127.0.5.61", port=silent_server), settings)
    assert error.reason == "timeout"


@pytest.mark.parametrize(
    ("user", "password", "works"),
    [
        ("password_user", "right", True),
        ("password_user", "wrong", False),
        ("password_user", None, False),
        ("nosudo_user", None, False),
        ("user", None, True),
    ],
)
def test_sudo(mp1: InventoryHost, lab: SshHosts, user: str, password: str | None, works: bool) -> None:
    sudo_password = {"right": lab.sudo_password, "wrong": "not-the-password", None: None}[password]
    settings = ConnectionSettings(known_hosts=lab.known_hosts, sudo_password=sudo_password)
    with open_host(replace(mp1, user=getattr(lab, user)), settings) as connection:
        if works:
            connection.check_sudo()
            assert connection.run(["id", "-u"], sudo=True).stdout == "0\n"
        else:
            with pytest.raises(HostError) as caught:
                connection.check_sudo()
            assert caught.value.reason == "sudo-denied"


def test_sudo_password_never_reaches_the_audit(mp1: InventoryHost, lab: SshHosts, tmp_path: Path) -> None:
    settings = ConnectionSettings(known_hosts=lab.known_hosts, sudo_password=lab.sudo_password)
    with open_host(replace(mp1, user=lab.password_user), settings, tmp_path / "commands.log") as connection:
        connection.run(["true"], sudo=True)
    assert lab.sudo_password not in (tmp_path / "commands.log").read_text()


def test_audit_records_command_exit_time_and_bytes(
    mp1: InventoryHost, settings: ConnectionSettings, tmp_path: Path
) -> None:
    with open_host(mp1, settings, tmp_path / "commands.log") as connection:
        connection.run(["printf", "%s", "12345"])
        connection.run(["sh", "-c", "exit 7"], check=False)
    lines = (tmp_path / "commands.log").read_text().splitlines()
    assert lines[0].split()[1] == "connected"
    assert " exit=0 " in lines[1] and " out=5B " in lines[1] and lines[1].endswith("printf %s 12345")
    assert " exit=7 " in lines[2] and "seconds=" in lines[2]


def _logins(lab: SshHosts, name: str) -> int:
    return (lab.workdir / "sshd" / name / "sshd.log").read_text().count("Accepted publickey")


def test_proxy_jump_through_another_lab_host(
    mp1: InventoryHost, be1: InventoryHost, lab: SshHosts, settings: ConnectionSettings
) -> None:
    jumping = replace(mp1, proxy_jump=f"{be1.user}@{be1.address}:{be1.port}")
    jump_logins = _logins(lab, "be1")
    with open_host(jumping, settings) as connection:
        assert connection.run(["hostname"]).exit_code == 0
    assert _logins(lab, "be1") == jump_logins + 1  # we logged in to the jump host on the way


def test_ssh_config_alias_with_proxy_jump(
    lab: SshHosts, settings: ConnectionSettings, tmp_path: Path
) -> None:
    mp, backend = lab.host("mp1"), lab.host("be1")
    (tmp_path / "ssh_config").write_text(
        f"Host bastion\n  HostName {backend.address}\n  Port {backend.port}\n  User {lab.user}\n"
        f"Host mp-alias\n  HostName {mp.address}\n  Port {mp.port}\n  User {lab.user}\n"
        f"  IdentityFile {lab.client_key}\n  ProxyJump {lab.user}@{backend.address}:{backend.port}\n"
    )
    (tmp_path / "hosts.yaml").write_text("hosts:\n  mp9: {address: mp-alias, role: message-processor}\n")
    host = load_inventory(tmp_path / "hosts.yaml", ssh_config=tmp_path / "ssh_config").hosts[0]
    assert (host.address, host.port, host.user) == (mp.address, mp.port, lab.user)
    jump_logins = _logins(lab, "be1")
    with open_host(host, settings) as connection:
        assert connection.run(["hostname"]).exit_code == 0
    assert _logins(lab, "be1") == jump_logins + 1


def test_key_from_the_ssh_agent(
    mp1: InventoryHost,
    lab: SshHosts,
    settings: ConnectionSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A real ssh-agent holding the lab key; the host names no identity file
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if socket_path.exists():
                break
            time.sleep(0.05)
        env = {**os.environ, "SSH_AUTH_SOCK": str(socket_path)}
        subprocess.run(["ssh-add", "-q", str(lab.client_key)], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/id_* to fall back on
        with open_host(replace(mp1, identity_file=None), settings) as connection:
            assert connection.run(["whoami"]).stdout == f"{lab.user}\n"
    finally:
        agent.terminate()
        agent.wait()

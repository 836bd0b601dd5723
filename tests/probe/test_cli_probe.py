"""`collect probe`: wiring, output forms and exit codes, against real backends and a real SSH host."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from collector.cli import main
from tests.lab.backends import Backend, free_port
from tests.lab.pki import BACKEND_ADDRESS, BACKEND_HOST
from tests.lab.sshd import SshHostSpec, start_ssh_hosts

CA_A = "CN=Lab CA A,OU=caA,O=Lab Org,C=US"


def run_collect(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `collect ARGS` in-process through the real entry point; returns exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@pytest.mark.lab
def test_probe_prints_the_acceptable_ca_names(lab_backend: Callable[[str, str], Backend],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    backend = lab_backend("openssl", "1.3")
    code, out, err = run_collect(capsys, "probe", backend.endpoint, "--sni", BACKEND_HOST, "--timeout", "5")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert f"Target:   {backend.endpoint} (SNI {BACKEND_HOST})" in lines
    assert "Server chain (server certificate not verified):" in lines
    assert lines[lines.index("Acceptable client certificate CA names:") + 1] == f"  {CA_A}"
    assert "Reaction to no client certificate: fatal alert certificate_required (116)" in lines


@pytest.mark.lab
def test_probe_json_is_one_probe_result(lab_backend: Callable[[str, str], Backend],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    backend = lab_backend("nginx", "1.2")
    code, out, _ = run_collect(capsys, "probe", backend.endpoint, "--json", "--tls", "1.2", "--timeout", "5")
    assert code == 0
    data = json.loads(out)
    assert data["target"] == backend.endpoint and data["via"] is None
    assert data["sni"] is None  # an IP literal gets no SNI by default
    assert data["reaction"] == "handshake completed, HTTP 400"
    assert data["handshake"]["certificate_request"]["ca_names"] == [CA_A]
    assert data["handshake"]["version"] == "TLSv1.2"
    assert "server certificate not verified" in data["handshake"]["notes"]


@pytest.mark.parametrize(("args", "message"), [
    (["probe", "backend-without-port"], "bad backend 'backend-without-port': expected HOST:PORT"),
    (["probe", "backend:99999"], "port 99999 is not between 1 and 65535"),
    (["probe", "backend.lab:443", "--cert", "c.pem"], "--cert and --key go together"),
    (["probe", "backend.lab:443", "--inventory", "hosts.yaml"], "only apply with --via HOST"),
    (["probe", "backend.lab:443", "--via", "mp1"], "--via needs --inventory FILE"),
    (["probe", "backend.lab:443", "--tls", "1.1"], "Invalid value for '--tls'"),
])
def test_probe_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, out, err = run_collect(capsys, *args)
    assert code == 2 and out == ""
    assert message in err
    assert "Traceback" not in err


def test_probe_unreachable_backend_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port(BACKEND_ADDRESS)
    code, out, err = run_collect(capsys, "probe", f"{BACKEND_ADDRESS}:{port}", "--timeout", "2")
    assert code == 2 and out == ""
    expected = (f"collect: {BACKEND_ADDRESS}:{port}: connection refused; "
                f"is the backend listening on port {port}? "
                "check the host, the port and firewalls; a backend only MPs can reach needs --via MP")
    assert err.splitlines() == [expected]


def test_probe_accepts_bracketed_ipv6(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port(BACKEND_ADDRESS)
    code, _, err = run_collect(capsys, "probe", f"[::1]:{port}", "--timeout", "2")
    assert code == 2
    assert err.startswith(f"collect: [::1]:{port}: ")


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("cli-probe-ssh")
    spec = SshHostSpec("mp1", "127.0.0.15", "message-processor", root / "mp1")
    with start_ssh_hosts(root / "lab", [spec]) as hosts:
        yield hosts.write_inventory(root / "hosts.yaml"), hosts.known_hosts


@pytest.mark.lab
def test_probe_via_an_mp(lab_backend: Callable[[str, str], Backend], inventory: tuple[Path, Path],
                         capsys: pytest.CaptureFixture[str]) -> None:
    backend = lab_backend("java", "1.3")
    inventory_file, known_hosts = inventory
    code, out, err = run_collect(capsys, "probe", backend.endpoint, "--sni", BACKEND_HOST, "--via", "mp1",
                                 "--inventory", str(inventory_file), "--known-hosts", str(known_hosts),
                                 "--timeout", "5")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "Via:      mp1 (openssl s_client)" in lines
    assert f"  {CA_A}" in lines
    assert "Reaction to no client certificate: fatal alert bad_certificate (42)" in lines


@pytest.mark.lab
def test_probe_via_refuses_an_unknown_host_key(lab_backend: Callable[[str, str], Backend],
                                               inventory: tuple[Path, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    # An empty known_hosts: the MP's key is unknown, and no flag says to accept it.
    backend = lab_backend("java", "1.3")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    code, out, err = run_collect(capsys, "probe", backend.endpoint, "--via", "mp1", "--inventory",
                                 str(inventory[0]), "--known-hosts", str(empty))
    assert code != 0 and out == ""
    assert err.startswith("collect: mp1 -> connect:")


@pytest.mark.lab
def test_probe_via_an_unknown_inventory_host(inventory: tuple[Path, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_collect(capsys, "probe", "backend.lab:443", "--via", "mp7",
                               "--inventory", str(inventory[0]))
    assert code == 2
    assert "--via mp7: no such host in" in err and "(hosts: mp1)" in err


def test_probe_help_says_the_server_is_not_verified(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_collect(capsys, "probe", "--help")
    assert code == 0
    assert "server certificate is NOT verified" in " ".join(out.split())

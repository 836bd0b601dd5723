"""collector/remote/sclient.py: s_client text of three OpenSSL generations, and the probe run on a real SSH
host."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector.errors import UsageError
from collector.inventory import InventoryHost, load_inventory
from collector.probe import ProbeError
from collector.remote.connection import ConnectionSettings, open_host
from collector.remote.sclient import (
    EXIT_TIMEOUT,
    build_s_client_argv,
    parse_s_client_output,
    probe_via_host,
    probe_via_inventory,
)
from collector.tls.handshake import Outcome
from tests.lab.backends import Backend, free_port
from tests.lab.pki import LabPki
from tests.lab.sshd import SshHosts, SshHostSpec, start_ssh_hosts
from tests.probe.conftest import SServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "s_client"
CA_A = "CN=Lab CA A,OU=caA,O=Lab Org,C=US"
CA_B = "CN=Lab CA B,OU=caB,O=Lab Org,C=US"
OTHER_CA = "CN=Test CA B,O=Other\\, Inc.,ST=VIC,C=AU"
LEAF = "CN=backend.lab,O=Lab Org,C=US"
MP_ADDRESS = "127.0.0.13"


@dataclass(frozen=True)
class Expected:
    """What one s_client output must read as; `ca_names` None: no CertificateRequest."""

    file: str
    version: str
    ca_names: tuple[str, ...] | None
    reaction: str
    outcome: Outcome
    chain: int = 2
    http_status: int | None = None
    exit_code: int = 1
    client_cert: str | None = None


PARSED = [
    Expected("openssl-3.0-java-tls1.2-no-client-cert.txt", "TLSv1.2", (CA_A,),
             "fatal alert bad_certificate (42)", Outcome.FAILED),
    Expected("openssl-3.0-java-tls1.3-no-client-cert.txt", "TLSv1.3", (CA_A,),
             "fatal alert bad_certificate (42)", Outcome.FAILED),
    Expected("openssl-3.0-openssl-tls1.2-no-client-cert.txt", "TLSv1.2", (CA_A,),
             "fatal alert handshake_failure (40)", Outcome.FAILED),
    Expected("openssl-3.0-openssl-tls1.3-no-client-cert.txt", "TLSv1.3", (CA_A,),
             "fatal alert certificate_required (116)", Outcome.FAILED),
    Expected("openssl-3.0-openssl-tls1.2-wrong-ca-cert.txt", "TLSv1.2", (CA_A,),
             "fatal alert unknown_ca (48)", Outcome.FAILED, client_cert="client-wrongca.pem"),
    Expected("openssl-3.0-openssl-tls1.3-wrong-ca-cert.txt", "TLSv1.3", (CA_A,),
             "fatal alert unknown_ca (48)", Outcome.FAILED, client_cert="client-wrongca.pem"),
    Expected("openssl-3.0-openssl-tls1.2-good-cert.txt", "TLSv1.2", (CA_A,),
             "handshake completed, no HTTP answer within the timeout", Outcome.ESTABLISHED,
             exit_code=EXIT_TIMEOUT, client_cert="client-good.pem"),
    Expected("openssl-3.0-openssl-tls1.3-good-cert.txt", "TLSv1.3", (CA_A,),
             "handshake completed, no HTTP answer within the timeout", Outcome.ESTABLISHED,
             exit_code=EXIT_TIMEOUT, client_cert="client-good.pem"),
    Expected("openssl-3.0-nginx-tls1.2-no-client-cert.txt", "TLSv1.2", (CA_A,),
             "handshake completed, HTTP 400", Outcome.ESTABLISHED, http_status=400, exit_code=0),
    Expected("openssl-3.0-nginx-tls1.3-no-client-cert.txt", "TLSv1.3", (CA_A,),
             "handshake completed, HTTP 400", Outcome.ESTABLISHED, http_status=400, exit_code=0),
    Expected("openssl-3.0-s_server-tls1.2-two-cas.txt", "TLSv1.2", (CA_A, CA_B),
             "fatal alert handshake_failure (40)", Outcome.FAILED),
    Expected("openssl-3.0-s_server-tls1.3-two-cas.txt", "TLSv1.3", (CA_A, CA_B),
             "fatal alert certificate_required (116)", Outcome.FAILED),
    Expected("openssl-3.0-s_server-tls1.2-no-ca-names.txt", "TLSv1.2", (),
             "fatal alert handshake_failure (40)", Outcome.FAILED),
    Expected("openssl-3.0-s_server-tls1.3-no-ca-names.txt", "TLSv1.3", (),
             "fatal alert certificate_required (116)", Outcome.FAILED),
    Expected("openssl-3.0-s_server-tls1.2-no-client-auth.txt", "TLSv1.2", None,
             "handshake completed, no HTTP answer within the timeout", Outcome.ESTABLISHED,
             exit_code=EXIT_TIMEOUT),
    Expected("openssl-3.0-s_server-tls1.3-no-client-auth.txt", "TLSv1.3", None,
             "handshake completed, no HTTP answer within the timeout", Outcome.ESTABLISHED,
             exit_code=EXIT_TIMEOUT),
    Expected("openssl-1.1.1-openssl-tls1.3-two-cas-certificate-required.txt", "TLSv1.3", (CA_A, OTHER_CA),
             "fatal alert certificate_required (116)", Outcome.FAILED),
    Expected("openssl-1.1.1-nginx-tls1.2-http-400.txt", "TLSv1.2", (CA_A,),
             "handshake completed, HTTP 400", Outcome.ESTABLISHED, http_status=400, exit_code=0),
    Expected("openssl-1.1.1-s_server-tls1.2-no-ca-names.txt", "TLSv1.2", (),
             "fatal alert handshake_failure (40)", Outcome.FAILED, chain=1),
    Expected("openssl-1.0.2-java-tls1.2-two-cas-bad-certificate.txt", "TLSv1.2", (CA_A, OTHER_CA),
             "fatal alert bad_certificate (42)", Outcome.FAILED),
    Expected("openssl-1.0.2-s_server-tls1.2-no-client-auth.txt", "TLSv1.2", None,
             "handshake completed, HTTP 200", Outcome.ESTABLISHED, chain=1, http_status=200, exit_code=0),
]

FAILED_TO_PROBE = [
    ("openssl-3.0-connection-refused.txt", 1, "connection refused"),
    ("openssl-1.0.2-connection-refused.txt", 1, "connection refused"),
    ("openssl-3.0-dns-failure.txt", 1, "mp1 cannot resolve backend.lab (DNS)"),
    ("openssl-1.1.1-dns-failure.txt", 1, "mp1 cannot resolve backend.lab (DNS)"),
    ("openssl-3.0-not-tls-http-port.txt", 1, "the answer is not TLS (openssl: wrong version number)"),
]


@pytest.mark.parametrize("case", PARSED, ids=lambda c: c.file)
def test_parse_s_client_output_reads_every_generation(case: Expected) -> None:
    # Given what s_client printed for one backend and scenario
    text = (FIXTURES / case.file).read_text()

    # When it is parsed
    result = parse_s_client_output(text, "backend.lab:8443", "backend.lab", "mp1", exit_code=case.exit_code,
                                   client_cert=case.client_cert)

    # Then it reads as the same ProbeResult the local probe gives
    hs = result.handshake
    assert (result.target, result.sni, result.via) == ("backend.lab:8443", "backend.lab", "mp1")
    assert hs.version == case.version
    assert hs.cipher
    assert (hs.certificate_request.ca_names if hs.certificate_request else None) == case.ca_names
    assert result.reaction == case.reaction
    assert hs.outcome == case.outcome
    assert hs.http_status == case.http_status
    assert len(hs.server_chain) == case.chain
    assert hs.server_chain[0].subject == LEAF
    assert hs.server_chain[0].issuer == CA_A
    assert "server certificate not verified" in hs.notes
    if case.ca_names is not None:
        assert hs.client_certificate is not None
        assert hs.client_certificate.sent == (case.client_cert is not None)


def test_parse_s_client_output_keeps_dates_from_pems_and_v_lines() -> None:
    # Given a 3.x output (PEMs and v: lines) When parsed Then the validity dates are ISO 8601 UTC
    text = (FIXTURES / "openssl-3.0-java-tls1.2-no-client-cert.txt").read_text()
    leaf = parse_s_client_output(text, "backend.lab:8443", None, "mp1").handshake.server_chain[0]
    assert leaf.not_after.endswith("+00:00") and leaf.serial and leaf.issuer_der


@pytest.mark.parametrize(("file", "exit_code", "problem"), FAILED_TO_PROBE, ids=lambda v: str(v))
def test_parse_s_client_output_names_what_failed(file: str, exit_code: int, problem: str) -> None:
    # Given s_client output without a TLS conversation When parsed
    # Then one ProbeError names target, host, problem
    with pytest.raises(ProbeError) as error:
        parse_s_client_output((FIXTURES / file).read_text(), "backend.lab:8443", "backend.lab", "mp1",
                              exit_code=exit_code)
    assert str(error.value).startswith("backend.lab:8443 (probed from mp1): ")
    assert problem in str(error.value)
    assert error.value.exit_code == 2


@pytest.mark.parametrize("text", [
    "s_client: Unknown option: -tls1_3\ns_client: Use -help for summary.\n",  # 1.1.1 / 3.x
    "unknown option -tls1_3\nusage: s_client args\n\n -host host     - use -connect instead\n",  # 1.0.2
])
def test_parse_s_client_output_names_an_option_the_host_lacks(text: str) -> None:
    # Given an s_client too old for -tls1_3 When its complaint is parsed Then the error names the option
    with pytest.raises(ProbeError, match="openssl s_client on mp1 does not know the option -tls1_3"):
        parse_s_client_output(text, "backend.lab:8443", None, "mp1", exit_code=1)


def test_parse_s_client_output_reports_a_connect_timeout() -> None:
    # Given s_client stopped by `timeout` before it connected When parsed Then the error says so
    with pytest.raises(ProbeError, match="no answer to the TCP connection within the timeout"):
        parse_s_client_output("", "10.0.0.9:443", None, "mp1", exit_code=EXIT_TIMEOUT)


@pytest.mark.parametrize(("kwargs", "expected_tail"), [
    ({"sni": "backend.lab"}, ["-connect", "backend.lab:8443", "-servername", "backend.lab"]),
    ({"sni": None}, ["-connect", "backend.lab:8443"]),
    ({"sni": "x", "tls_version": "1.3"}, ["-connect", "backend.lab:8443", "-servername", "x", "-tls1_3"]),
    ({"sni": "x", "cert": "/etc/c.pem", "key": "/etc/k.pem"},
     ["-connect", "backend.lab:8443", "-servername", "x", "-cert", "/etc/c.pem", "-key", "/etc/k.pem"]),
    ({"sni": "a b;rm -rf /"}, ["-connect", "backend.lab:8443", "-servername", "a b;rm -rf /"]),
])
def test_build_s_client_argv_passes_values_as_arguments(kwargs: dict, expected_tail: list[str]) -> None:
    # Given probe options When the argv is built Then every value is its own argument after a constant script
    argv = build_s_client_argv("backend.lab", 8443, timeout=7, **kwargs)
    assert argv[:2] == ["sh", "-c"] and argv[3] == "sh" and argv[4] == "7"
    assert argv[6:] == expected_tail
    assert "backend.lab" not in argv[2] and "8443" not in argv[2]


def test_build_s_client_argv_brackets_ipv6() -> None:
    # Given an IPv6 backend When the argv is built Then -connect and the Host header use [v6]:port
    argv = build_s_client_argv("::1", 8443, None)
    assert argv[5] == "[::1]" and argv[6:8] == ["-connect", "[::1]:8443"]


@pytest.mark.lab
def test_build_s_client_argv_runs_locally_against_a_real_backend(
    s_server: Callable[[str, str], SServer],
) -> None:
    # Given the two-CA s_server When the same argv runs here Then its output parses to both CA names
    server = s_server("two-cas", "1.3")
    run = subprocess.run(build_s_client_argv(server.address, server.port, "backend.lab", timeout=5),
                         capture_output=True, text=True, timeout=30, check=False)
    result = parse_s_client_output(run.stdout, f"{server.address}:{server.port}", "backend.lab", "local",
                                   exit_code=run.returncode)
    assert result.handshake.certificate_request is not None
    assert result.handshake.certificate_request.ca_names == (CA_A, CA_B)
    assert result.reaction == "fatal alert certificate_required (116)"


# --- the probe on a real SSH host (lab sshd) --------------------------------------------------------------


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHosts]:
    root = tmp_path_factory.mktemp("probe-ssh")
    spec = SshHostSpec("mp1", MP_ADDRESS, "message-processor", root / "mp1")
    with start_ssh_hosts(root / "lab", [spec]) as hosts:
        yield hosts


@pytest.fixture(scope="module")
def inventory_file(ssh_lab: SshHosts, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ssh_lab.write_inventory(tmp_path_factory.mktemp("probe-inventory") / "hosts.yaml")


@pytest.fixture
def settings(ssh_lab: SshHosts) -> ConnectionSettings:
    return ConnectionSettings(known_hosts=ssh_lab.known_hosts, connect_timeout=5, command_timeout=30)


@pytest.fixture
def mp1(inventory_file: Path) -> InventoryHost:
    return next(h for h in load_inventory(inventory_file).hosts if h.name == "mp1")


@pytest.mark.lab
@pytest.mark.parametrize(("kind", "tls", "reaction"), [
    ("java", "1.2", "fatal alert bad_certificate (42)"),
    ("openssl", "1.3", "fatal alert certificate_required (116)"),
    ("nginx", "1.3", "handshake completed, HTTP 400"),
])
def test_probe_via_host_reads_the_ca_names_from_an_mp(lab_backend: Callable[[str, str], Backend],
                                                      mp1: InventoryHost, settings: ConnectionSettings,
                                                      kind: str, tls: str, reaction: str) -> None:
    backend = lab_backend(kind, tls)
    with open_host(mp1, settings) as conn:
        result = probe_via_host(conn, backend.address, backend.port, "backend.lab", timeout=5)
    assert result.via == "mp1"
    assert result.handshake.version == f"TLSv{tls}"
    assert result.handshake.certificate_request is not None
    assert result.handshake.certificate_request.ca_names == (CA_A,)
    assert result.reaction == reaction


@pytest.mark.lab
def test_probe_via_host_offers_a_certificate_already_on_the_host(lab_backend: Callable[[str, str], Backend],
                                                                 pki: LabPki, mp1: InventoryHost,
                                                                 ssh_lab: SshHosts,
                                                                 settings: ConnectionSettings) -> None:
    # The lab host shares this file system: copies in its tmp dir are "files already on that host".
    backend = lab_backend("openssl", "1.2")
    host_dir = ssh_lab.host("mp1").root / "tmp"
    cert, key = host_dir / "client.pem", host_dir / "client.key"
    shutil.copyfile(pki.client_wrongca_cert, cert)
    shutil.copyfile(pki.client_wrongca_key, key)
    key.chmod(0o644)  # a throw-away lab key, readable by the lab's SSH user
    with open_host(mp1, settings) as conn:
        result = probe_via_host(conn, backend.address, backend.port, "backend.lab", timeout=5,
                                cert=str(cert), key=str(key))
    assert result.handshake.client_certificate is not None and result.handshake.client_certificate.sent
    assert result.reaction == "fatal alert unknown_ca (48)"


@pytest.mark.lab
def test_probe_via_host_says_when_the_key_is_unreadable_there(lab_backend: Callable[[str, str], Backend],
                                                              pki: LabPki, mp1: InventoryHost,
                                                              settings: ConnectionSettings) -> None:
    # pytest's 0700 tmp dir holds the PKI: the SSH user of the lab host cannot read the key there.
    backend = lab_backend("openssl", "1.2")
    expected = "openssl on mp1 could not load the client certificate or key"
    with open_host(mp1, settings) as conn, pytest.raises(ProbeError, match=expected):
        probe_via_host(conn, backend.address, backend.port, "backend.lab", timeout=5,
                       cert=str(pki.client_wrongca_cert), key=str(pki.client_wrongca_key))


@pytest.mark.lab
def test_probe_via_host_names_a_refused_port(mp1: InventoryHost, settings: ConnectionSettings) -> None:
    closed_port = free_port("127.0.0.21")
    expected = r"127\.0\.0\.21:\d+ \(probed from mp1\): connection refused"
    with open_host(mp1, settings) as conn, pytest.raises(ProbeError, match=expected):
        probe_via_host(conn, "127.0.0.21", closed_port, None, timeout=5)


@pytest.mark.lab
def test_probe_via_inventory_finds_the_host_by_name(lab_backend: Callable[[str, str], Backend],
                                                    inventory_file: Path,
                                                    settings: ConnectionSettings) -> None:
    backend = lab_backend("openssl", "1.3")
    result = probe_via_inventory(inventory_file, "mp1", settings, backend.address, backend.port,
                                 "backend.lab", timeout=5)
    assert result.via == "mp1" and result.handshake.certificate_request is not None
    with pytest.raises(UsageError, match="--via mp9: no such host"):
        probe_via_inventory(inventory_file, "mp9", settings, backend.address, backend.port, None)

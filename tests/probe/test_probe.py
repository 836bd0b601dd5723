"""collector/probe.py: the local pyOpenSSL probe against the lab's real JSSE, OpenSSL and nginx backends."""

from __future__ import annotations

import datetime
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from collector.errors import InputError, UsageError
from collector.probe import ProbeError, default_sni, format_target, parse_target, probe_backend
from collector.tls.handshake import Outcome
from collector.tls.names import name_from_der, name_to_rfc4514
from tests.lab.backends import Backend, free_port
from tests.lab.pki import BACKEND_ADDRESS, BACKEND_HOST, LabPki
from tests.lab.sshd import SshHosts
from tests.probe.conftest import SServer

CA_A = "CN=Lab CA A,OU=caA,O=Lab Org,C=US"
CA_B = "CN=Lab CA B,OU=caB,O=Lab Org,C=US"
LEAF = "CN=backend.lab,O=Lab Org,C=US"


@pytest.mark.parametrize(("text", "expected"), [
    ("backend.example.com:443", ("backend.example.com", 443)),
    ("10.1.2.3:8443", ("10.1.2.3", 8443)),
    ("[::1]:8443", ("::1", 8443)),
    ("[2001:db8::7]:443", ("2001:db8::7", 443)),
    (" backend:1 ", ("backend", 1)),
])
def test_parse_target_accepts_host_port_and_bracketed_ipv6(text: str, expected: tuple[str, int]) -> None:
    # Given a HOST:PORT When parsed Then host and port come apart
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["backend", "backend:", ":443", "backend:0", "backend:70000", "::1:443",
                                  "[backend]:443", "back end:443", "[::1]", "backend:https"])
def test_parse_target_refuses_anything_else(text: str) -> None:
    # Given a malformed target When parsed Then a usage error shows the expected form
    with pytest.raises(UsageError, match="expected HOST:PORT|is not"):
        parse_target(text)


@pytest.mark.parametrize(("host", "sni", "target"), [
    ("backend.lab", "backend.lab", "backend.lab:443"),
    ("127.0.0.21", None, "127.0.0.21:443"),
    ("::1", None, "[::1]:443"),
])
def test_default_sni_and_format_target(host: str, sni: str | None, target: str) -> None:
    # Given a host When the defaults are derived Then IP literals get no SNI and IPv6 gets brackets
    assert default_sni(host) == sni
    assert format_target(host, 443) == target


@pytest.mark.lab
@pytest.mark.parametrize(("kind", "tls", "reaction", "outcome", "http_status"), [
    ("java", "1.2", "fatal alert bad_certificate (42)", Outcome.FAILED, None),
    ("java", "1.3", "fatal alert bad_certificate (42)", Outcome.FAILED, None),
    ("openssl", "1.2", "fatal alert handshake_failure (40)", Outcome.FAILED, None),
    ("openssl", "1.3", "fatal alert certificate_required (116)", Outcome.FAILED, None),
    ("nginx", "1.2", "handshake completed, HTTP 400", Outcome.ESTABLISHED, 400),
    ("nginx", "1.3", "handshake completed, HTTP 400", Outcome.ESTABLISHED, 400),
])
def test_probe_backend_reads_ca_names_and_reaction(lab_backend: Callable[[str, str], Backend], kind: str,
                                                   tls: str, reaction: str, outcome: Outcome,
                                                   http_status: int | None) -> None:
    backend = lab_backend(kind, tls)
    result = probe_backend(backend.address, backend.port, sni=BACKEND_HOST, timeout=5)
    hs = result.handshake
    assert result.target == f"{backend.address}:{backend.port}" and result.via is None
    assert hs.version == f"TLSv{tls}" and hs.cipher
    assert hs.sni == BACKEND_HOST and result.sni == BACKEND_HOST
    assert [c.subject for c in hs.server_chain][:1] == [LEAF]
    assert hs.certificate_request is not None
    assert hs.certificate_request.ca_names == (CA_A,)
    assert [name_to_rfc4514(name_from_der(d)) for d in hs.certificate_request.ca_names_der] == [CA_A]
    assert hs.client_certificate is not None and not hs.client_certificate.sent
    assert result.reaction == reaction
    assert hs.outcome == outcome and hs.http_status == http_status
    assert "server certificate not verified" in hs.notes


@pytest.mark.lab
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_probe_backend_lists_several_cas(s_server: Callable[[str, str], SServer], tls: str) -> None:
    server = s_server("two-cas", tls)
    result = probe_backend(server.address, server.port, sni=BACKEND_HOST, timeout=5)
    assert result.handshake.certificate_request is not None
    assert result.handshake.certificate_request.ca_names == (CA_A, CA_B)
    assert len(result.handshake.certificate_request.ca_names_der) == 2


@pytest.mark.lab
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_probe_backend_tells_an_empty_ca_list_from_no_request(s_server: Callable[[str, str], SServer],
                                                              tls: str) -> None:
    # A CertificateRequest naming no CA is not the same as no CertificateRequest at all.
    asked = probe_backend(*_endpoint(s_server("no-ca-names", tls)), sni=BACKEND_HOST, timeout=5)
    assert asked.handshake.certificate_request is not None
    assert asked.handshake.certificate_request.ca_names == ()
    assert asked.handshake.outcome == Outcome.FAILED

    # s_server -www does not answer HEAD: a short timeout ends the wait for an HTTP answer.
    not_asked = probe_backend(*_endpoint(s_server("no-client-auth", tls)), sni=BACKEND_HOST, timeout=1)
    assert not_asked.handshake.certificate_request is None
    assert not_asked.handshake.client_certificate is None
    assert not_asked.handshake.outcome == Outcome.ESTABLISHED
    assert not_asked.reaction.startswith("handshake completed")


@pytest.mark.lab
@pytest.mark.parametrize(("kind", "which", "reaction", "outcome"), [
    ("nginx", "good", "handshake completed, HTTP 200", Outcome.ESTABLISHED),
    ("nginx", "wrongca", "handshake completed, HTTP 400", Outcome.ESTABLISHED),
    ("openssl", "wrongca", "fatal alert unknown_ca (48)", Outcome.FAILED),
    ("java", "wrongca", "fatal alert certificate_unknown (46)", Outcome.FAILED),
])
def test_probe_backend_with_a_client_certificate(lab_backend: Callable[[str, str], Backend], pki: LabPki,
                                                 kind: str, which: str, reaction: str,
                                                 outcome: Outcome) -> None:
    backend = lab_backend(kind, "1.3" if kind != "java" else "1.2")
    cert, key = (pki.client_good_cert, pki.client_good_key) if which == "good" else \
        (pki.client_wrongca_cert, pki.client_wrongca_key)
    result = probe_backend(backend.address, backend.port, sni=BACKEND_HOST, cert=cert, key=key, timeout=5)
    assert result.handshake.client_certificate is not None and result.handshake.client_certificate.sent
    assert result.handshake.client_certificate.chain
    assert result.reaction == reaction
    assert result.handshake.outcome == outcome


@pytest.mark.lab
def test_probe_backend_forces_the_tls_version(lab_backend: Callable[[str, str], Backend]) -> None:
    backend = lab_backend("openssl", "1.2")
    forced = probe_backend(*_endpoint(backend), sni=None, tls_version="1.2", timeout=5)
    assert forced.handshake.version == "TLSv1.2"
    with pytest.raises(ProbeError, match=r"refused the ClientHello with alert protocol_version \(70\)"):
        probe_backend(*_endpoint(backend), sni=None, tls_version="1.3", timeout=5)


@pytest.fixture
def plain_http_port() -> Iterator[int]:
    """A real plain-HTTP listener: what probing the wrong (non-TLS) port meets."""
    listener = socket.create_server((BACKEND_ADDRESS, 0))
    listener.settimeout(0.1)  # so that the thread sees `stop` soon
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    thread.join(5)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says anything."""
    listener = socket.create_server((BACKEND_ADDRESS, 0))
    yield listener.getsockname()[1]
    listener.close()


def test_probe_backend_refused_port() -> None:
    port = free_port(BACKEND_ADDRESS)
    with pytest.raises(ProbeError) as error:
        probe_backend(BACKEND_ADDRESS, port, sni=None, timeout=2)
    assert str(error.value).startswith(
        f"{BACKEND_ADDRESS}:{port}: connection refused; is the backend listening"
    )
    assert error.value.exit_code == 2


def test_probe_backend_plain_http_port(plain_http_port: int) -> None:
    with pytest.raises(ProbeError, match=r"the answer is not TLS; check that this is the backend's TLS port"):
        probe_backend(BACKEND_ADDRESS, plain_http_port, sni=None, timeout=2)


@pytest.mark.lab
def test_probe_backend_ssh_port(ssh_port: tuple[str, int]) -> None:
    address, port = ssh_port
    with pytest.raises(ProbeError, match=r"the answer is not TLS"):
        probe_backend(address, port, sni=None, timeout=2)


def test_probe_backend_silent_port_times_out(silent_port: int) -> None:
    # The socket is blocking with SO_RCVTIMEO: the timeout arrives as a clear error, not a WantReadError.
    with pytest.raises(ProbeError, match=r"no TLS answer within 1 s"):
        probe_backend(BACKEND_ADDRESS, silent_port, sni=None, timeout=1)


def test_probe_backend_dns_failure() -> None:
    # A 64-character label cannot be resolved, and fails before any query leaves the machine: this workplace's
    # only network is loopback, so a real lookup of a made-up name would send DNS to the configured resolver.
    name = "no-such-backend-" + "x" * 48 + ".invalid"
    with pytest.raises(ProbeError, match=rf"{name}:443: cannot resolve {name}"):
        probe_backend(name, 443, sni=None, timeout=2)


def test_probe_backend_ipv6_target_is_named_with_brackets() -> None:
    with pytest.raises(ProbeError, match=r"^\[::1\]:\d+: "):
        probe_backend("::1", free_port(BACKEND_ADDRESS), sni=None, timeout=2)


def _key_agreement_identity(folder: Path) -> tuple[Path, Path]:
    """A certificate and its matching X25519 key: a pair that belongs together but cannot sign a handshake."""
    key = x25519.X25519PrivateKey.generate()
    name = x509.Name.from_rfc4514_string("CN=x25519 client")
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(ed25519.Ed25519PrivateKey.generate(), None)
    )
    cert_path, key_path = folder / "x25519.pem", folder / "x25519.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.parametrize("defect", ["not-pem", "key-mismatch", "missing", "encrypted", "cannot-sign"])
def test_probe_backend_refuses_unusable_client_files(pki: LabPki, tmp_path: Path, defect: str) -> None:
    # Files are checked before any connection: no backend is needed.
    cert, key = pki.client_good_cert, pki.client_good_key
    if defect == "not-pem":
        cert = tmp_path / "cert.pem"
        cert.write_text("not a certificate\n")
        message = "cert.pem: not a PEM certificate"
    elif defect == "key-mismatch":
        key = pki.client_wrongca_key
        message = "does not belong to the certificate"
    elif defect == "encrypted":
        key = tmp_path / "encrypted.key"
        loaded = serialization.load_pem_private_key(pki.client_good_key.read_bytes(), None)
        key.write_bytes(loaded.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.BestAvailableEncryption(b"secret")))
        message = "encrypted.key: the private key is encrypted"
    elif defect == "cannot-sign":
        cert, key = _key_agreement_identity(tmp_path)
        message = "x25519.key: this private key cannot sign a TLS handshake"
    else:
        key = tmp_path / "absent.key"
        message = "absent.key: cannot read the private key"
    with pytest.raises(InputError, match=message):
        probe_backend(BACKEND_ADDRESS, 9, sni=None, cert=cert, key=key, timeout=1)


def test_probe_backend_refuses_an_unknown_version() -> None:
    with pytest.raises(UsageError, match="--tls 1.1"):
        probe_backend(BACKEND_ADDRESS, 9, sni=None, tls_version="1.1")


@pytest.fixture(scope="module")
def ssh_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real sshd (the lab's), to probe an SSH port by mistake."""
    from tests.lab.sshd import SshHostSpec, start_ssh_hosts

    root = tmp_path_factory.mktemp("probe-sshd")
    hosts: SshHosts
    spec = SshHostSpec("ssh1", "127.0.0.14", "backend", root / "ssh1")
    with start_ssh_hosts(root / "lab", [spec]) as hosts:
        yield hosts.hosts[0].address, hosts.hosts[0].port


def _endpoint(server: SServer | Backend) -> tuple[str, int]:
    return server.address, server.port

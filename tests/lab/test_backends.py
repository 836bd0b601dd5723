"""The lab backends, seen by a plain Python TLS client: a CA-A client cert is required, failures look real."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

import pytest

from tests.lab.backends import Backend
from tests.lab.pki import LabPki

# (kind, tls) -> what the backend does with (no client cert, a CA-B client cert); tls-observations.md §4.1.
CASES = [
    ("java", "1.2", "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN"),
    ("java", "1.3", "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN"),
    ("openssl", "1.2", "SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_ALERT_UNKNOWN_CA"),
    ("openssl", "1.3", "TLSV13_ALERT_CERTIFICATE_REQUIRED", "TLSV1_ALERT_UNKNOWN_CA"),
    ("nginx", "1.2", "HTTP 400", "HTTP 400"),
    ("nginx", "1.3", "HTTP 400", "HTTP 400"),
]


def _get(backend: Backend, pki: LabPki, cert: tuple[str, str] | None) -> str:
    """GET / over TLS; returns "HTTP <status>", or the TLS error reason."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pki.ca_a_cert)
    version = ssl.TLSVersion.TLSv1_2 if backend.tls_version == "1.2" else ssl.TLSVersion.TLSv1_3
    context.minimum_version = context.maximum_version = version
    if cert:
        context.load_cert_chain(*cert)
    try:
        with socket.create_connection((backend.address, backend.port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="backend.lab") as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: backend.lab\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
    except ssl.SSLError as error:
        return str(error.reason)
    return "HTTP " + data.split(b"\r\n", 1)[0].decode().split()[1]


@pytest.mark.lab
@pytest.mark.parametrize(("kind", "tls", "no_cert", "wrong_ca"), CASES)
def test_backend_requires_a_client_certificate_from_ca_a(
    backend_factory: Callable[[str, str], Backend], lab_pki: LabPki, kind: str, tls: str, no_cert: str,
    wrong_ca: str,
) -> None:
    # Given a running backend of this kind and TLS version
    backend = backend_factory(kind, tls)
    # Then a CA-A client certificate gets HTTP 200, and none or a CA-B one fails the way the real server does
    assert _get(backend, lab_pki, (str(lab_pki.client_good_cert), str(lab_pki.client_good_key))) == "HTTP 200"
    assert _get(backend, lab_pki, None) == no_cert
    wrong = (str(lab_pki.client_wrongca_cert), str(lab_pki.client_wrongca_key))
    assert _get(backend, lab_pki, wrong) == wrong_ca


@pytest.mark.lab
def test_openssl_backend_writes_a_key_log(backend_factory: Callable[[str, str], Backend],
                                          lab_pki: LabPki) -> None:
    backend = backend_factory("openssl", "1.3")
    _get(backend, lab_pki, None)
    assert backend.keylog is not None
    assert "CLIENT_HANDSHAKE_TRAFFIC_SECRET" in backend.keylog.read_text()

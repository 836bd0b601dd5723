"""Fixtures for remote/: a shared lab of real sshd hosts, settings that trust them, and real (TLS) traffic."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.inventory import Inventory, InventoryHost, load_inventory
from collector.remote.connection import ConnectionSettings
from tests.lab.sshd import SshHosts, SshHostSpec, start_ssh_hosts

# 127.0.5.x: other suites' labs use the low 127.0.0.x addresses, and their traffic would flood our captures
MP1, MP2, BACKEND = "127.0.5.11", "127.0.5.12", "127.0.5.21"


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHosts]:
    """Two MPs and a backend, each a real sshd on its own 127.0.5.x address (shared: never break them)."""
    root = tmp_path_factory.mktemp("remote-lab")
    specs = [
        SshHostSpec("mp1", MP1, "message-processor", root / "roots" / "mp1"),
        SshHostSpec("mp2", MP2, "message-processor", root / "roots" / "mp2"),
        SshHostSpec("be1", BACKEND, "backend", root / "roots" / "be1"),
    ]
    with start_ssh_hosts(root / "lab", specs) as hosts:
        yield hosts


@pytest.fixture(scope="session")
def lab_inventory(lab: SshHosts, tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    return load_inventory(lab.write_inventory(tmp_path_factory.mktemp("inventory") / "hosts.yaml"))


@pytest.fixture
def settings(lab: SshHosts) -> ConnectionSettings:
    return ConnectionSettings(
        known_hosts=lab.known_hosts, connect_timeout=5, command_timeout=30, host_deadline=120
    )


@pytest.fixture
def mp1(lab_inventory: Inventory) -> InventoryHost:
    return next(h for h in lab_inventory.hosts if h.name == "mp1")


@pytest.fixture
def be1(lab_inventory: Inventory) -> InventoryHost:
    return next(h for h in lab_inventory.hosts if h.name == "be1")


def with_user(host: InventoryHost, user: str) -> InventoryHost:
    return replace(host, user=user)


@pytest.fixture(scope="session")
def tls_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real TLS server on the backend address (Python's ssl = OpenSSL), one answer per connection."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backend.lab")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    listener = socket.create_server((BACKEND, 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    tls.settimeout(5)
                    tls.recv(1024)
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield BACKEND, listener.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    listener.close()


def tls_request(client_address: str, server: tuple[str, int]) -> bytes:
    """One TLS request from `client_address` (the "MP") to the backend; returns the response."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(server, timeout=5, source_address=(client_address, 0)) as raw,
        context.wrap_socket(raw, server_hostname="backend.lab") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: backend.lab\r\n\r\n")
        return tls.recv(1024)


def processes_with(text: str) -> list[int]:
    """PIDs whose command line contains `text` (the lab hosts share this machine's process table)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline and int(proc.name) != os.getpid():
            found.append(int(proc.name))
    return found

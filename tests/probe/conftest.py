"""Real TLS backends for the probe tests: the lab's JSSE/OpenSSL/nginx backends plus s_server CA-list
variants."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lab.backends import Backend, LabProcess, free_port, start_backend, start_process, wait_for_port
from tests.lab.pki import BACKEND_ADDRESS, LabPki

# What the s_server variants send in their CertificateRequest.
S_SERVER_SCENARIOS = ("two-cas", "no-ca-names", "no-client-auth")


@dataclass
class SServer:
    """An `openssl s_server` started by these tests (one of S_SERVER_SCENARIOS)."""

    scenario: str
    tls_version: str
    address: str
    port: int
    process: LabProcess

    def stop(self) -> None:
        self.process.stop()


def start_s_server(pki: LabPki, workdir: Path, scenario: str, tls_version: str,
                   address: str = BACKEND_ADDRESS) -> SServer:
    """An s_server whose CertificateRequest names CA-A and CA-B, names no CA, or that asks for no
    certificate."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port(address)
    argv = [shutil.which("openssl") or "openssl", "s_server", "-accept", f"{address}:{port}", "-www",
            "-cert", str(pki.backend_cert), "-key", str(pki.backend_key), "-cert_chain", str(pki.ca_a_cert),
            "-tls1_2" if tls_version == "1.2" else "-tls1_3"]
    if scenario == "two-cas":
        cas = workdir / "ca-a-and-b.pem"
        cas.write_bytes(pki.ca_a_cert.read_bytes() + pki.ca_b_cert.read_bytes())
        argv += ["-Verify", "1", "-CAfile", str(cas)]
    elif scenario == "no-ca-names":
        # -CAfile is what fills s_server's CA name list; -verifyCAfile only verifies, so the list stays empty.
        argv += ["-Verify", "1", "-verifyCAfile", str(pki.ca_a_cert)]
    elif scenario != "no-client-auth":
        raise ValueError(f"unknown s_server scenario {scenario!r}")
    process = start_process(f"s_server {scenario} {tls_version}", argv, workdir / f"s_server-{scenario}.out")
    wait_for_port(process, address, port)
    return SServer(scenario, tls_version, address, port, process)


@pytest.fixture(scope="session")
def pki(lab_pki: LabPki) -> LabPki:
    """The session's lab PKI (tests/conftest.py), shared with every other lab test."""
    return lab_pki


@pytest.fixture(scope="session")
def lab_backend(
    pki: LabPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str, str], Backend]]:
    """`lab_backend(kind, tls_version)`: one running lab backend per kind and version, shared by the
    session."""
    running: dict[tuple[str, str], Backend] = {}

    def get(kind: str, tls_version: str) -> Backend:
        if (kind, tls_version) not in running:
            workdir = tmp_path_factory.mktemp(f"backend-{kind}-{tls_version}")
            running[(kind, tls_version)] = start_backend(kind, tls_version, pki, workdir=workdir)
        return running[(kind, tls_version)]

    yield get
    for backend in running.values():
        backend.stop()


@pytest.fixture(scope="session")
def s_server(
    pki: LabPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str, str], SServer]]:
    """`s_server(scenario, tls_version)`: one running s_server variant per scenario and version."""
    running: dict[tuple[str, str], SServer] = {}

    def get(scenario: str, tls_version: str) -> SServer:
        if (scenario, tls_version) not in running:
            workdir = tmp_path_factory.mktemp(f"s_server-{scenario}-{tls_version}")
            running[(scenario, tls_version)] = start_s_server(pki, workdir, scenario, tls_version)
        return running[(scenario, tls_version)]

    yield get
    for server in running.values():
        server.stop()

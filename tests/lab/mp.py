"""The lab's Message Processors: the Java MP simulator, calling the backend over two-way TLS."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.backends import Backend, LabProcess, free_port, java_command, start_process, wait_for_output
from tests.lab.pki import LabPki
from tests.lab.scenarios import TargetTls
from tests.lab.scenarios import scenario as lab_scenario

MP_LOG = Path("opt/apigee/var/log/edge-message-processor/logs/system.log")


@dataclass
class MessageProcessor:
    """A running MP simulator.

    Attributes:
        name: host name in the lab ("mp1", ...).
        address: the MP's own loopback address; its calls to the backend leave from it.
        port: the HTTP front end's port (on `address`).
        log_path: its system.log.
        keystore: the PKCS12 keystore it presents to the backend.
        tls: the target's TLS setup it runs (the SSLInfo the emulator serves).
        truststore: the PEM file of the truststore certificates it trusts.
    """

    name: str
    address: str
    port: int
    log_path: Path
    transactions_path: Path
    keystore: Path
    process: LabProcess = field(repr=False)
    tls: TargetTls = TargetTls()
    truststore: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def stop(self) -> None:
        self.process.stop()


def start_mp(name: str, address: str, pki: LabPki, scenario: str, backend: Backend, org: str, env: str,
             api: str, rev: str, log_path: Path, transactions_path: Path, port: int = 0,
             workdir: Path | None = None, tls: TargetTls | None = None) -> MessageProcessor:
    """Start the MP simulator `name` on `address`, using the keystore of `scenario` and the target's TLS setup
    `tls` (default: the scenario's against `backend`)."""
    chosen = lab_scenario(scenario)
    keystore = pki.mp_keystore(chosen.keystore)
    tls = tls or chosen.target_tls(backend.tls_version)
    workdir = workdir or backend.workdir
    truststore = workdir / f"mp-{name}-truststore.pem"
    truststore.write_text("".join(pem for _, pem in pki.truststore_certs(tls.truststore)))
    log_path = Path(log_path).resolve()
    transactions_path = Path(transactions_path).resolve()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    transactions_path.parent.mkdir(parents=True, exist_ok=True)
    port = port or free_port(address)
    argv = java_command(
        "MpSimulator", org, env, api, rev, address, str(port), address, backend.address, str(backend.port),
        tls.sni_name or "-", str(keystore), pki.password, pki.key_alias, str(truststore), str(log_path),
        str(transactions_path), ",".join(tls.protocols) or "-", ",".join(tls.ciphers) or "-",
        tls.common_name or "-",
    )
    process = start_process(f"MP simulator {name}", argv, workdir / f"mp-{name}.out")
    wait_for_output(process, "listening")
    return MessageProcessor(name, address, port, log_path, transactions_path, keystore, process, tls,
                            truststore)

"""The whole lab: PKI, a two-way TLS backend, MP simulators, real SSH hosts and the Edge API emulator."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from tests.lab.backends import Backend, LabError, LabProcess, start_backend, start_process, wait_for_output
from tests.lab.emulator import Emulator, EmulatorConfig, start_emulator
from tests.lab.mp import MP_LOG, MessageProcessor, start_mp
from tests.lab.pki import BACKEND_ADDRESS, LabPki, create_pki
from tests.lab.scenarios import TargetTls
from tests.lab.scenarios import scenario as lab_scenario
from tests.lab.sshd import SshHosts, SshHostSpec, start_ssh_hosts

ORG = "lab-org"
ENV = "test"
PROXY = "mtls-proxy"
REVISION = "3"
KEYSTORE = "myKeystore"
KEYSTORE_REFERENCE = "myKeystoreRef"
KEY_ALIAS = "myKey"
TRUSTSTORE = "myTruststore"
TRUSTSTORE_REFERENCE = "myTruststoreRef"
USERNAME = "lab-admin@example.com"
PASSWORD = "lab-Admin-Pw-1"  # a throw-away credential of the local emulator
TOKEN = "lab-token-3f1c9a7e5b2d4c68"  # the emulator's accepted Bearer token
EMULATOR_ADDRESS = "127.0.0.1"
REPRODUCTION_PATH = "/mtls/ping"
LAB_JSON = "lab.json"
PID_FILE = "run/lab.pid"
CHILD_PIDS = "run/pids.json"


class _Stoppable(Protocol):
    def stop(self) -> None: ...


@dataclass(frozen=True)
class LabSpec:
    """What lab to start.

    Attributes:
        scenario: a scenario id of tests/lab/scenarios.py ("ca-mismatch", "protocol-mismatch", ...): the MP
            keystore, the backend's setup and the target's SSLInfo.
        backend: "java" (JSSE), "openssl" (s_server), "nginx" or "none"; ``None`` = the scenario's.
        tls_version: "1.2" or "1.3", the only version the backend accepts; ``None`` = the scenario's.
        message_processors: how many MP simulators (127.0.0.11, 127.0.0.12, ...).
        directory: where PKI, host roots, logs and lab.json go.
        ssh_hosts / emulator: start the real sshd hosts / the Edge API emulator (off for bare TLS captures).
        target_style: how the emulated proxy names its backend: "url" or "target-server".
        pki_directory: where the PKI lives (default `directory`/pki); labs sharing one skip regenerating it.
    """

    scenario: str = "ca-mismatch"
    backend: str | None = None
    tls_version: str | None = None
    message_processors: int = 2
    directory: Path = Path(".lab")
    ssh_hosts: bool = True
    emulator: bool = True
    target_style: str = "url"
    pki_directory: Path | None = None


@dataclass
class Lab:
    """A running lab; a context manager, and `stop()` is idempotent. Field meanings follow lab.json."""

    spec: LabSpec
    directory: Path
    pki: LabPki
    backend: Backend
    message_processors: tuple[MessageProcessor, ...]
    ssh: SshHosts | None
    emulator: Emulator | None
    transactions: Path
    inventory: Path | None
    target_tls: TargetTls = TargetTls()
    org: str = ORG
    env: str = ENV
    proxy: str = PROXY
    revision: str = REVISION
    keystore: str = KEYSTORE
    keystore_reference: str = KEYSTORE_REFERENCE
    key_alias: str = KEY_ALIAS
    truststore: str = TRUSTSTORE
    truststore_reference: str = TRUSTSTORE_REFERENCE
    username: str = USERNAME
    password: str = PASSWORD
    token: str = TOKEN
    _parts: list[_Stoppable] = field(default_factory=list, repr=False)

    @property
    def scenario(self) -> str:
        return self.spec.scenario

    @property
    def tls_version(self) -> str:
        return self.backend.tls_version

    def switch(self, scenario: str, backend: str | None = None, tls_version: str | None = None) -> None:
        """Turn this running lab into another scenario: a new backend and MP simulators (same addresses, new
        ports) and the emulator serving the new SSLInfo; the SSH hosts, the emulator and the PKI stay. Much
        cheaper than a new lab; sessions, logs and transactions of the old scenario stay where they were."""
        spec = _resolved(dataclasses.replace(self.spec, scenario=scenario, backend=backend,
                                             tls_version=tls_version))
        for old in (*self.message_processors, self.backend):
            old.stop()
            if old in self._parts:
                self._parts.remove(old)
            if old.process is not None:
                # The new process appends to the same file: an old "listening" line must not count as ready.
                old.process.output.unlink(missing_ok=True)
        run = self.directory / "run"
        self.spec = spec
        self.target_tls = lab_scenario(spec.scenario).target_tls(str(spec.tls_version))
        self.backend = _start_backend(spec, self.pki, run)
        self._parts.append(self.backend)
        self.message_processors = tuple(_start_mps(spec, self.pki, self.backend, self.target_tls,
                                                   self.directory, self.transactions, self._parts,
                                                   [mp.name for mp in self.message_processors]))
        _write_child_pids(self.directory, [self.backend, *self.message_processors])
        if self.emulator is not None:
            self.emulator.reconfigure(_emulator_config(spec, self.pki, self.backend,
                                                       list(self.message_processors), self.transactions,
                                                       self.target_tls))
        self.lab_json.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @property
    def emulator_url(self) -> str | None:
        return self.emulator.url if self.emulator else None

    @property
    def known_hosts(self) -> Path | None:
        return self.ssh.known_hosts if self.ssh else None

    @property
    def client_key(self) -> Path | None:
        return self.ssh.client_key if self.ssh else None

    @property
    def ssh_user(self) -> str | None:
        return self.ssh.user if self.ssh else None

    @property
    def reproduction_url(self) -> str:
        return self.message_processors[0].url + REPRODUCTION_PATH

    @property
    def lab_json(self) -> Path:
        return self.directory / LAB_JSON

    def mp_uuid(self, mp: MessageProcessor) -> str:
        return _mp_uuid(mp.name)

    def stop(self) -> None:
        """Stop everything this lab started, newest first; safe to call twice and after a failed start."""
        _stop_all(self._parts)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def to_json(self) -> dict[str, Any]:
        """The lab.json document: everything a user or a test needs to point `collect` at this lab."""
        return {
            "directory": str(self.directory),
            "scenario": self.scenario,
            "cause": lab_scenario(self.scenario).cause,
            "tls_version": self.tls_version,
            "backend": {"kind": self.backend.kind, "address": self.backend.address, "port": self.backend.port,
                        "tls_version": self.backend.tls_version, "mode": self.backend.mode,
                        "keylog": str(self.backend.keylog) if self.backend.keylog else None},
            "target_tls": dataclasses.asdict(self.target_tls),
            "message_processors": [
                {"name": mp.name, "uuid": _mp_uuid(mp.name), "address": mp.address, "port": mp.port,
                 "url": mp.url, "system_log": str(mp.log_path),
                 "root": str(self.directory / "hosts" / mp.name)}
                for mp in self.message_processors
            ],
            "ssh_hosts": [
                {"name": h.name, "address": h.address, "port": h.port, "role": h.role, "root": str(h.root),
                 "system_log": str(h.system_log)}
                for h in (self.ssh.hosts if self.ssh else ())
            ],
            "ssh_user": self.ssh_user,
            "inventory": _str(self.inventory),
            "known_hosts": _str(self.known_hosts),
            "client_key": _str(self.client_key),
            "emulator": None if self.emulator is None else {
                "url": self.emulator.url, "username": self.username, "password": self.password,
                "token": self.token},
            "org": self.org, "env": self.env, "proxy": self.proxy, "revision": self.revision,
            "target_style": self.spec.target_style,
            "keystore": self.keystore, "keystore_reference": self.keystore_reference,
            "key_alias": self.key_alias,
            "truststore": self.truststore, "truststore_reference": self.truststore_reference,
            "mp_keystore_file": str(self.pki.mp_keystore(lab_scenario(self.scenario).keystore)),
            "pki": str(self.pki.directory),
            "transactions": str(self.transactions),
            "reproduction_url": self.reproduction_url,
            "reproduction_command": f"curl -sS -i {self.reproduction_url}",
        }

    def summary(self) -> str:
        """A few lines for a human: what runs where."""
        backend = self.backend
        what = {"closed": "nothing listening", "plain": "nginx backend, plain HTTP",
                "sni": "nginx backend requiring SNI"}.get(backend.mode, f"{backend.kind} backend")
        lines = [f"lab {self.scenario}: {what} TLS {self.tls_version} at {backend.endpoint}"]
        tls = self.target_tls
        lines.append(f"  target SSLInfo: Protocols {','.join(tls.protocols) or '(JVM defaults)'}"
                     f"  Ciphers {','.join(tls.ciphers) or '(JVM defaults)'}"
                     f"  CommonName {tls.common_name or '(none)'}  TrustStore {','.join(tls.truststore)}"
                     f"  SNI {tls.sni_name or '(not sent)'}")
        lines += [f"  {mp.name}: MP simulator {mp.url}  log {mp.log_path}" for mp in self.message_processors]
        if self.ssh:
            user = self.ssh.user
            lines += [f"  ssh {h.name} ({h.role}): {user}@{h.address} -p {h.port}" for h in self.ssh.hosts]
        if self.emulator:
            lines.append(f"  Edge API emulator: {self.emulator.url}  user {self.username}")
        lines.append(f"  reproduce: curl -sS -i {self.reproduction_url}")
        lines.append(f"  lab.json: {self.lab_json}")
        if self.inventory:
            lines.append(f"  inventory: {self.inventory}  known_hosts: {self.known_hosts}")
        return "\n".join(lines)


def start_lab(spec: LabSpec, *, echo: Callable[[str], None] | None = None) -> Lab:
    """Start every part of the lab `spec` describes, write lab.json, and return the running lab.

    A part that fails to start stops the parts already started before the error propagates. `echo`, when
    given, receives the human summary.
    """
    _check_spec(spec)
    spec = _resolved(spec)
    directory = Path(spec.directory).resolve()
    _claim_directory(directory)
    parts: list[_Stoppable] = []
    try:
        pki = create_pki(Path(spec.pki_directory) if spec.pki_directory else directory / "pki")
        run = directory / "run"
        # Computed once: the emulator serves it and the MP simulators run it.
        tls = lab_scenario(spec.scenario).target_tls(str(spec.tls_version))
        backend = _start_backend(spec, pki, run)
        parts.append(backend)
        transactions = directory / "transactions.jsonl"
        transactions.touch()
        names = [f"mp{index + 1}" for index in range(spec.message_processors)]
        mps = _start_mps(spec, pki, backend, tls, directory, transactions, parts, names)
        _write_child_pids(directory, [backend, *mps])
        ssh = None
        inventory = None
        if spec.ssh_hosts:
            specs = [SshHostSpec(mp.name, mp.address, "message-processor", directory / "hosts" / mp.name)
                     for mp in mps]
            specs.append(SshHostSpec("backend", BACKEND_ADDRESS, "backend", directory / "hosts" / "backend"))
            ssh = start_ssh_hosts(directory / "ssh", specs)
            parts.append(ssh)
            inventory = ssh.write_inventory(directory / "inventory.yaml")
        emulator = None
        if spec.emulator:
            emulator = start_emulator(_emulator_config(spec, pki, backend, mps, transactions, tls))
            parts.append(emulator)
        lab = Lab(spec, directory, pki, backend, tuple(mps), ssh, emulator, transactions, inventory,
                  target_tls=tls, _parts=parts)
        lab.lab_json.write_text(json.dumps(lab.to_json(), indent=2) + "\n")
    except BaseException:
        _stop_all(parts)
        raise
    if echo is not None:
        echo(lab.summary())
    return lab


def _resolved(spec: LabSpec) -> LabSpec:
    """`spec` with the scenario's backend and TLS version where it leaves them out; ValueError for a backend
    the scenario cannot run on."""
    chosen = lab_scenario(spec.scenario)
    backend = spec.backend or chosen.backend
    if backend not in chosen.backends:
        raise ValueError(f"scenario {chosen.name} runs on a {' or '.join(chosen.backends)} backend,"
                         f" not {backend}")
    return dataclasses.replace(spec, backend=backend, tls_version=spec.tls_version or chosen.tls_version)


def _start_backend(spec: LabSpec, pki: LabPki, run: Path) -> Backend:
    chosen = lab_scenario(spec.scenario)
    return start_backend(str(spec.backend), str(spec.tls_version), pki, BACKEND_ADDRESS, workdir=run,
                         mode=chosen.mode, certificate=chosen.certificate, ciphers=chosen.backend_ciphers)


def _start_mps(spec: LabSpec, pki: LabPki, backend: Backend, tls: TargetTls, directory: Path,
               transactions: Path, parts: list[_Stoppable], names: list[str]) -> list[MessageProcessor]:
    mps: list[MessageProcessor] = []
    for index, name in enumerate(names):
        root = directory / "hosts" / name
        mp = start_mp(name, f"127.0.0.{11 + index}", pki, spec.scenario, backend, ORG, ENV, PROXY,
                      REVISION, root / MP_LOG, transactions, workdir=directory / "run", tls=tls)
        parts.append(mp)
        mps.append(mp)
    return mps


def _check_spec(spec: LabSpec) -> None:
    lab_scenario(spec.scenario)
    if not 1 <= spec.message_processors <= 9:
        raise ValueError(f"message_processors must be 1..9, not {spec.message_processors}")
    if spec.target_style not in ("url", "target-server"):
        raise ValueError(f"unknown target_style {spec.target_style!r}; expected url or target-server")


def _claim_directory(directory: Path) -> None:
    """Refuse a directory a running `up` owns; clear what a previous lab left (the PKI is kept for speed)."""
    pid = _read_pid(directory / PID_FILE)
    if pid is not None and pid != os.getpid() and _alive(pid):
        raise LabError(f"{directory}: a lab started by process {pid} is running there; "
                       f"stop it with `python -m tests.lab down --dir {directory}`")
    for stale in ("hosts", "run", "ssh"):
        shutil.rmtree(directory / stale, ignore_errors=True)
    for stale in (LAB_JSON, "transactions.jsonl", "inventory.yaml"):
        (directory / stale).unlink(missing_ok=True)
    (directory / "run").mkdir(parents=True, exist_ok=True)


def _emulator_config(spec: LabSpec, pki: LabPki, backend: Backend, mps: list[MessageProcessor],
                     transactions: Path, tls: TargetTls) -> EmulatorConfig:
    return EmulatorConfig(
        org=ORG, env=ENV, proxy=PROXY, revision=REVISION, username=USERNAME, password=PASSWORD, token=TOKEN,
        message_processors=[(_mp_uuid(mp.name), mp.address) for mp in mps],
        backend_host=backend.address, backend_port=backend.port, target_style=spec.target_style,
        keystore=KEYSTORE, key_alias=KEY_ALIAS, keystore_reference=KEYSTORE_REFERENCE,
        truststore=TRUSTSTORE, truststore_reference=TRUSTSTORE_REFERENCE,
        keystore_entries=pki.keystore_entries(lab_scenario(spec.scenario).keystore),
        truststore_certs=pki.truststore_certs(tls.truststore),
        protocols=tls.protocols, ciphers=tls.ciphers, common_name=tls.common_name,
        transactions_file=transactions, address=EMULATOR_ADDRESS, port=0,
    )


def _mp_uuid(name: str) -> str:
    # Stable across runs so fixtures and golden files can name MPs by uuid.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"apigee-collector-lab/{name}"))


def _stop_all(parts: list[_Stoppable]) -> None:
    errors: list[BaseException] = []
    while parts:
        part = parts.pop()
        try:
            part.stop()
        except Exception as error:  # keep stopping the rest; report the first problem afterwards
            errors.append(error)
    if errors:
        raise LabError(f"stopping the lab: {errors[0]}") from errors[0]


def _write_child_pids(directory: Path, parts: list[Backend] | list[MessageProcessor | Backend]) -> None:
    processes = [p.process for p in parts if p.process is not None]
    records = {p.name: {"pid": p.pid, "argv": [str(a) for a in p.popen.args]} for p in processes}
    (directory / CHILD_PIDS).write_text(json.dumps(records))


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An exited process whose parent has not reaped it yet still answers kill(0): a zombie is not running.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def stop_lab_in(directory: Path, timeout: float = 20.0) -> bool:
    """Stop a lab that `python -m tests.lab up` runs in another process; True if one was running."""
    directory = Path(directory).resolve()
    pid = _read_pid(directory / PID_FILE)
    if pid is None or not _alive(pid):
        stopped = _kill_recorded_children(directory)
        (directory / PID_FILE).unlink(missing_ok=True)
        return stopped
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        raise LabError(f"{directory}: lab process {pid} did not stop within {timeout:.0f}s after SIGTERM")
    _kill_recorded_children(directory)
    return True


def _kill_recorded_children(directory: Path) -> bool:
    # Only the process groups this lab recorded (each child was started in its own session).
    try:
        pids = json.loads((directory / CHILD_PIDS).read_text())
    except (OSError, ValueError):
        pids = {}
    killed = False
    for record in pids.values():
        pid = int(record["pid"])
        try:
            running = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        # The pid may have been reused since: only a process still running our exact command line is ours.
        if [a.decode(errors="replace") for a in running] != record["argv"]:
            continue
        try:
            os.killpg(pid, signal.SIGTERM)
            killed = True
        except (ProcessLookupError, PermissionError):
            pass
    (directory / CHILD_PIDS).unlink(missing_ok=True)
    return _kill_orphaned_sshd(directory) or killed


def _kill_orphaned_sshd(directory: Path) -> bool:
    # sshd.py's daemons do not die with their parent; each writes a PidFile beside its sshd_config.
    killed = False
    for pid_file in (directory / "ssh" / "sshd").glob("*/sshd.pid"):
        pid = _read_pid(pid_file)
        try:
            running = Path(f"/proc/{pid}/cmdline").read_bytes() if pid else b""
        except OSError:
            continue
        # sshd rewrites its process title into one string that still holds "-f <its sshd_config>".
        config = str(pid_file.parent / "sshd_config").encode()
        if config in running.split(b"\0") or b"-f " + config + b" " in running:
            try:
                os.kill(pid, signal.SIGTERM)
                killed = True
            except ProcessLookupError:
                pass
    return killed


def capture_traffic(spec: LabSpec, out: Path, requests: int = 1) -> list[int]:
    """Start a bare lab (no SSH, no emulator), capture `requests` reproductions with tcpdump on lo into `out`.

    For backends that write a key log (openssl), the log is copied beside the capture as `<out stem>.keys`.
    Returns the HTTP status of each reproduction.
    """
    import httpx  # only this helper needs an HTTP client

    bare = dataclasses.replace(spec, message_processors=1, ssh_hosts=False, emulator=False)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    statuses: list[int] = []
    with start_lab(bare) as lab:
        tcpdump = start_tcpdump(out, f"host {lab.backend.address} and tcp port {lab.backend.port}",
                                lab.directory / "run" / "tcpdump.out")
        try:
            for _ in range(requests):
                statuses.append(httpx.get(lab.reproduction_url, timeout=30).status_code)
            # Let the last alert, FIN and the JSSE backend's linger reach the capture.
            time.sleep(0.8)
        finally:
            tcpdump.stop()
        if lab.backend.keylog is not None and lab.backend.keylog.exists():
            shutil.copyfile(lab.backend.keylog, out.with_suffix(".keys"))
    return statuses


def start_tcpdump(out: Path, bpf: str, output: Path, interface: str = "lo") -> LabProcess:
    """tcpdump writing `out`; --immediate-mode and -U so that stopping it soon loses nothing (§5)."""
    tcpdump = shutil.which("tcpdump") or "/usr/bin/tcpdump"
    # -Z root: Debian's tcpdump otherwise drops to user tcpdump, which cannot write into private dirs.
    argv = [tcpdump, "-i", interface, "--immediate-mode", "-U", "-s", "0", "-n", "-Z", "root", "-w", str(out),
            *bpf.split()]
    process = start_process("tcpdump", argv, output)
    wait_for_output(process, "listening on")
    return process

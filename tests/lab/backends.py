"""The lab's two-way TLS backends (JSSE, OpenSSL s_server, nginx) and the process plumbing the lab shares."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.pki import BACKEND_ADDRESS, LabPki

JAVA_SOURCES = Path(__file__).resolve().parent / "java"
BACKEND_KINDS = ("java", "openssl", "nginx", "none")
BACKEND_MODES = ("tls", "sni", "plain", "closed")
TLS_VERSIONS = ("1.2", "1.3")
_JVM_OPTIONS = ["-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k"]


class LabError(RuntimeError):
    """A lab part did not start or stop; the message names the part and where its output went."""


@dataclass
class LabProcess:
    """A process the lab started, in its own process group, with its output in a file."""

    name: str
    popen: subprocess.Popen
    output: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the process group we created, then SIGKILL it if it lingers; idempotent."""
        # Only while the leader is unreaped: after that its pid (= the group id) may belong to someone else.
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.output.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _die_with_parent() -> None:
    # Lab processes must not outlive a killed test run or `up` command.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_process(name: str, argv: Sequence[str], output: Path, cwd: Path | None = None) -> LabProcess:
    """Start `argv` in a new session with stdout+stderr going to `output`."""
    output.parent.mkdir(parents=True, exist_ok=True)
    # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only the main thread may ask for it.
    on_main_thread = threading.current_thread() is threading.main_thread()
    with output.open("ab") as out:
        popen = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd,
            start_new_session=True, preexec_fn=_die_with_parent if on_main_thread else None,
        )
    return LabProcess(name, popen, output)


def wait_for_output(process: LabProcess, marker: str, timeout: float = 30.0) -> str:
    """Wait until `marker` appears in the process output; returns that line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            for line in process.output.read_text(errors="replace").splitlines():
                if marker in line:
                    return line
        except FileNotFoundError:
            pass
        if not process.alive():
            raise LabError(f"{process.name} exited with {process.popen.returncode} before it was ready; "
                           f"output ({process.output}):\n{process.tail()}")
        time.sleep(0.05)
    process.stop()
    raise LabError(f"{process.name} not ready after {timeout:.0f}s; output ({process.output}):\n"
                   f"{process.tail()}")


def wait_for_port(process: LabProcess, address: str, port: int, timeout: float = 30.0) -> None:
    """Wait until a TCP connect to address:port succeeds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise LabError(f"{process.name} exited with {process.popen.returncode} before it was ready; "
                           f"output ({process.output}):\n{process.tail()}")
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    process.stop()
    raise LabError(f"{process.name} not listening on {address}:{port} after {timeout:.0f}s; "
                   f"output ({process.output}):\n{process.tail()}")


def free_port(address: str) -> int:
    """A TCP port free on `address` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def compile_java_programs() -> Path:
    """Compile tests/lab/java once per source version into a shared cache; returns the classpath directory."""
    sources = sorted(JAVA_SOURCES.glob("*.java"))
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "apigee-collector-lab"
    classes = cache / f"classes-{digest.hexdigest()[:16]}"
    if (classes / "MpSimulator.class").exists() and (classes / "JsseBackend.class").exists():
        return classes
    javac = shutil.which("javac")
    if javac is None:
        raise LabError("javac (JDK 17) not found on PATH; run scripts/setup.sh")
    cache.mkdir(parents=True, exist_ok=True)
    # Compile into a private directory and rename, so concurrent first uses never see half a directory.
    staging = Path(tempfile.mkdtemp(prefix="classes-", dir=cache))
    result = subprocess.run([javac, "-d", str(staging), *map(str, sources)], capture_output=True, text=True,
                            timeout=180)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise LabError(f"javac failed for {JAVA_SOURCES}:\n{result.stderr}")
    try:
        staging.rename(classes)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process won the race
    return classes


def java_command(main_class: str, *args: str) -> list[str]:
    """The java command line running one of the lab's programs."""
    java = shutil.which("java")
    if java is None:
        raise LabError("java (JDK 17) not found on PATH; run scripts/setup.sh")
    return [java, *_JVM_OPTIONS, "-cp", str(compile_java_programs()), main_class, *args]


@dataclass
class Backend:
    """A running two-way TLS backend.

    Attributes:
        kind: "java", "openssl", "nginx", or "none" (mode "closed": nothing listens on the port).
        tls_version: "1.2" or "1.3", the only version the backend accepts.
        keylog: the NSS key log the backend writes (OpenSSL only), or None.
        mode: see `start_backend`.
        process: the server, ``None`` when nothing listens.
    """

    kind: str
    tls_version: str
    address: str
    port: int
    keylog: Path | None
    workdir: Path
    process: LabProcess | None = field(repr=False)
    mode: str = "tls"

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def start_backend(kind: str, tls_version: str, pki: LabPki, address: str = BACKEND_ADDRESS, port: int = 0,
                  *, workdir: Path, mode: str = "tls", certificate: str = "good",
                  ciphers: str = "") -> Backend:
    """Start a backend that requires a client certificate issued by CA-A, accepting only `tls_version`.

    `mode`: "tls" (that backend), "sni" (nginx only: its default server rejects every handshake whose
    server_name is not backend.lab, `ssl_reject_handshake on`), "plain" (nginx only: HTTP, no TLS, on the
    port), "closed" (kind "none": the port is free and nothing listens). `certificate`: the backend's
    certificate ("good", "expired", "wrong-name"; openssl only for the last two). `ciphers`: an OpenSSL cipher
    string limiting the TLS 1.2 suites (openssl only).
    """
    if kind not in BACKEND_KINDS:
        raise ValueError(f"unknown backend kind {kind!r}; expected one of {', '.join(BACKEND_KINDS)}")
    if tls_version not in TLS_VERSIONS:
        raise ValueError(f"unknown TLS version {tls_version!r}; expected one of {', '.join(TLS_VERSIONS)}")
    if mode not in BACKEND_MODES:
        raise ValueError(f"unknown backend mode {mode!r}; expected one of {', '.join(BACKEND_MODES)}")
    if (mode == "closed") != (kind == "none") or (mode in ("sni", "plain") and kind != "nginx"):
        raise ValueError(f"backend mode {mode!r} does not run on a {kind!r} backend")
    if (certificate != "good" or ciphers) and kind != "openssl":
        raise ValueError("only the openssl backend takes another certificate or a cipher string")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port(address)
    output = workdir / f"backend-{kind}.out"
    keylog = None
    process: LabProcess | None = None
    if kind == "java":
        process = start_process("java backend", java_command(
            "JsseBackend", address, str(port), str(pki.backend_keystore), str(pki.backend_truststore),
            pki.password, f"TLSv{tls_version}"), output)
        wait_for_output(process, "listening")
    elif kind == "openssl":
        keylog = workdir / "backend-keys.log"
        argv = [shutil.which("openssl") or "openssl", "s_server", "-Verify", "1", "-verify_return_error",
                "-CAfile", str(pki.ca_a_cert), "-cert", str(pki.backend_certificate(certificate)),
                "-key", str(pki.backend_key),
                "-cert_chain", str(pki.ca_a_cert), "-accept", f"{address}:{port}", "-www",
                "-tls1_2" if tls_version == "1.2" else "-tls1_3", "-keylogfile", str(keylog)]
        argv += ["-cipher", ciphers] if ciphers else []
        process = start_process("openssl backend", argv, output)
        wait_for_port(process, address, port)
    elif kind == "nginx":
        argv = _nginx_command(workdir, pki, address, port, tls_version, mode)
        process = start_process("nginx backend", argv, output)
        wait_for_port(process, address, port)
    return Backend(kind, tls_version, address, port, keylog, workdir, process, mode)


def _nginx_command(workdir: Path, pki: LabPki, address: str, port: int, tls_version: str,
                   mode: str = "tls") -> list[str]:
    if mode == "plain":
        return nginx_command(workdir / "nginx", f"""
    server {{
        listen {address}:{port};
        location / {{
            default_type text/plain;
            return 200 "plain HTTP from nginx backend\\n";
        }}
    }}""")
    # The SNI-only default server comes first; handshakes naming backend.lab reach the two-way TLS server.
    reject = f"""
    server {{
        listen {address}:{port} ssl default_server;
        ssl_reject_handshake on;
        ssl_protocols TLSv{tls_version};
    }}""" if mode == "sni" else ""
    return nginx_command(workdir / "nginx", reject + f"""
    server {{
        listen {address}:{port} ssl;
        server_name backend.lab;
        ssl_certificate {pki.backend_chain};
        ssl_certificate_key {pki.backend_key};
        ssl_client_certificate {pki.ca_a_cert};
        ssl_verify_client on;
        ssl_protocols TLSv{tls_version};
        location / {{
            default_type text/plain;
            return 200 "ok from nginx backend\\n";
        }}
    }}""")


def nginx_command(prefix: Path, servers: str) -> list[str]:
    """The argv of an nginx serving `servers` (server blocks) from its own folder `prefix`, config written."""
    for sub in ("logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    config = prefix / "nginx.conf"
    # master_process off: one process running as us, so nothing needs a "user" or root-owned paths.
    config.write_text(f"""daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;{servers}
}}
""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return [nginx, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "logs" / "error.log")]

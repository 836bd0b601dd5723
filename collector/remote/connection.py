"""SSH to one host (Fabric/paramiko): verified host keys, bounded time, audited commands over raw channels."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import fabric
import invoke
import paramiko

from collector.errors import RemoteError
from collector.inventory import InventoryHost
from collector.remote import commands, framing

KEEPALIVE_SECONDS = 15
_CONNECT_ATTEMPTS = 5  # banner errors: sshd's MaxStartups drops connections beyond its limit
_CHUNK = 1 << 20
_STDERR_KEEP = 64 * 1024  # stderr is for messages; more than this is cut (the byte count stays exact)
_POLL = 0.05


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach hosts.

    Attributes:
        known_hosts: known_hosts file to verify against; `None` means `~/.ssh/known_hosts`.
        accept_new_host_keys: add keys of hosts not in known_hosts to that file (a changed key is refused).
        connect_timeout: seconds for TCP connect, the SSH banner and authentication, each.
        command_timeout: default seconds one remote command may take.
        host_deadline: seconds all the work of one Fleet phase on one host may take.
        sudo_password: the sudo password (asked once by the CLI); `None` means passwordless sudo (`sudo -n`).
    """

    known_hosts: Path | None = None
    accept_new_host_keys: bool = False
    connect_timeout: float = 10
    command_timeout: float = 60
    host_deadline: float = 600
    sudo_password: str | None = None


@dataclass(frozen=True)
class CommandResult:
    """One finished remote command; stdout is empty for `stream_to_file` (its bytes went to the file)."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    stdout_bytes: int = 0
    stderr_bytes: int = 0


def _sha256(source: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


class HostError(RemoteError):
    """A step failed on one host; `reason` is the machine-readable word for the manifest (`unreachable`,
    `host-key-unknown`, `host-key-mismatch`, `known-hosts-unreadable`, `identity-file-unusable`,
    `auth-refused`, `timeout`, `sudo-denied`, `command-failed`, `unframed-output`: the output frame was
    missing or cut, `integrity`: the bytes received differ from the host's sha256)."""

    def __init__(self, host: str, step: str, reason: str, detail: str) -> None:
        super().__init__(host, step, f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, hostname: str, key: paramiko.PKey) -> None:
        super().__init__(f"{hostname} not in known_hosts")
        self.hostname = hostname
        self.key = key


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Like RejectPolicy, but keeps the offered key so the error can show its fingerprint."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise _UnknownHostKey(hostname, key)


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """OpenSSH's `accept-new`: remember unknown keys in the known_hosts file. Changed keys never reach a
    policy: paramiko raises BadHostKeyException for them before asking."""

    _lock = threading.Lock()

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with self._lock:
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            with self.known_hosts.open("a", encoding="ascii") as out:
                fcntl.flock(out, fcntl.LOCK_EX)
                out.write(line)


def private_file(path: Path, mode: str) -> IO[Any]:
    """open() for a bundle file, created 0600 whatever the umask (captures and logs are sensitive)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    descriptor = os.open(path, flags, 0o600)
    return os.fdopen(descriptor, mode) if "b" in mode else os.fdopen(descriptor, mode, encoding="utf-8")


def fingerprint(key: paramiko.PKey) -> str:
    """The key's OpenSSH-style SHA256 fingerprint (what `ssh-keygen -lf` prints)."""
    return f"{key.get_name()} {key.fingerprint}"


def silence_paramiko(log_file: Path | None = None) -> None:
    """Keep paramiko's transport-thread tracebacks off the terminal; send them to `log_file` when given."""
    logger = logging.getLogger("paramiko")
    logger.propagate = False
    logger.setLevel(logging.DEBUG if log_file else logging.CRITICAL)
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    if log_file is not None:
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(message)s"))
        logger.addHandler(handler)
    else:
        logger.addHandler(logging.NullHandler())


class HostConnection:
    """An open SSH connection to one inventory host; every command and transfer is written to `audit`."""

    def __init__(
        self,
        host: InventoryHost,
        settings: ConnectionSettings,
        connection: fabric.Connection,
        audit: Callable[[str], None],
    ) -> None:
        self.host = host
        self.settings = settings
        self._connection = connection
        self.audit = audit
        self._sudo_ok: bool | None = None
        self._sudo_error = ""
        self._sudo_terminal = False  # sudo needs a terminal on this host (`Defaults requiretty`)
        self._closed = False
        #: monotonic time by which the current phase's work on this host must end (Fleet sets it); None = none
        self.deadline: float | None = None

    def __enter__(self) -> HostConnection:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        _close_chain(self._connection)

    @property
    def is_open(self) -> bool:
        transport = self._connection.transport
        return transport is not None and transport.is_active()

    def run(
        self,
        argv: Sequence[str],
        *,
        sudo: bool = False,
        timeout: float | None = None,
        check: bool = True,
        step: str = "command",
    ) -> CommandResult:
        """Run a command with small output; raises HostError on timeout, or on a non-zero exit if `check`."""
        stdout = bytearray()
        result = self._execute(argv, sudo, timeout, step, stdout.extend)
        result = CommandResult(
            result.argv,
            result.exit_code,
            stdout.decode("utf-8", "replace"),
            result.stderr,
            result.seconds,
            result.stdout_bytes,
            result.stderr_bytes,
        )
        if check and result.exit_code != 0:
            raise HostError(
                self.host.name,
                step,
                "command-failed",
                f"{commands.render(argv)} exited {result.exit_code}: {result.stderr.strip()[:500]}",
            )
        return result

    def stream_to_file(
        self,
        argv: Sequence[str],
        local_path: Path,
        *,
        sudo: bool = False,
        timeout: float | None = None,
        step: str = "command",
    ) -> CommandResult:
        """Run a command and write its stdout to `local_path` as it arrives (constant memory, any size). The
        host hashes what it sends; a file whose sha256 differs, or whose frame is broken, is removed."""
        local_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with private_file(local_path, "wb") as out:
                return self._execute(argv, sudo, timeout, step, out.write, hashed=True)
        except HostError as e:
            if e.reason in ("unframed-output", "integrity"):
                local_path.unlink(missing_ok=True)
            raise

    def get(
        self, remote_path: str, local_path: Path, *, step: str = "fetch", sha256: str | None = None
    ) -> int:
        """Copy a file over SFTP (paramiko's default prefetch: fast); returns the byte count. With `sha256`
        (the host's hash of the file), a copy that differs is removed and HostError(integrity) raised."""
        started = time.monotonic()
        local_path.parent.mkdir(parents=True, exist_ok=True)
        self._reconnect_if_lost(step)
        try:
            self._connection.get(remote_path, str(local_path))
        except (OSError, paramiko.SSHException) as e:
            self._audit_line(f"sftp-get {remote_path}", -1, time.monotonic() - started, 0, 0, False)
            raise HostError(self.host.name, step, "fetch-failed", f"sftp get {remote_path}: {e}") from e
        local_path.chmod(0o600)  # bundle files are private (DESIGN: created 0600)
        size = local_path.stat().st_size
        self._audit_line(f"sftp-get {remote_path}", 0, time.monotonic() - started, size, 0, False)
        if sha256 is not None:
            with local_path.open("rb") as copy:
                received = _sha256(copy)
            if received != sha256:
                local_path.unlink(missing_ok=True)
                raise HostError(
                    self.host.name,
                    step,
                    "integrity",
                    f"{remote_path}: the {size} bytes fetched have sha256 {received}, the host hashed it as "
                    f"{sha256} (changed on the host or in transfer); the file was not kept",
                )
        return size

    def check_sudo(self, step: str = "sudo") -> None:
        """Raise HostError(sudo-denied) unless sudo works without a prompt or with the given password."""
        if self._sudo_ok is None:
            timeout = min(30.0, self.settings.command_timeout)
            result = self._execute(["true"], True, timeout, step, lambda data: None, terminal=False)
            if result.exit_code != 0:
                # `Defaults requiretty`: sudo wants a terminal. Whatever the reason, try once with one; if
                # that works, every sudo command on this host gets a terminal (the frame keeps bytes raw).
                on_terminal = self._execute(["true"], True, timeout, step, lambda data: None, terminal=True)
                self._sudo_terminal = on_terminal.exit_code == 0
            self._sudo_ok = result.exit_code == 0 or self._sudo_terminal
            self._sudo_error = result.stderr.strip()
        if not self._sudo_ok:
            raise HostError(
                self.host.name,
                step,
                "sudo-denied",
                f"sudo refused for user {self.host.user} ({self._sudo_error[:200] or 'no message'}); "
                "grant NOPASSWD sudo or give the sudo password",
            )

    def _execute(
        self,
        argv: Sequence[str],
        sudo: bool,
        timeout: float | None,
        step: str,
        sink: Callable[[bytes], object],
        hashed: bool = False,
        terminal: bool | None = None,
    ) -> CommandResult:
        if sudo and terminal is None and self._sudo_ok is None:
            # Learn whether sudo needs a terminal here; a refusal is for the command itself to report.
            with contextlib.suppress(HostError):
                self.check_sudo(step)
        full = [*commands.sudo_prefix(self.settings.sudo_password is not None), *argv] if sudo else list(argv)
        line = commands.render(full)
        limit = self.settings.command_timeout if timeout is None else timeout
        started = time.monotonic()
        if self.deadline is not None:
            limit = min(limit, self.deadline - started)
            if limit <= 0:
                raise HostError(
                    self.host.name,
                    step,
                    "timeout",
                    f"the host deadline ({self.settings.host_deadline:g} s) passed before "
                    f"{commands.render(argv)[:200]}",
                )
        nonce = framing.new_nonce()
        deframer = framing.Deframer(nonce, sink)
        out_bytes = err_bytes = 0
        stderr = bytearray()
        exit_code = -1
        try:
            if terminal is None:
                terminal = sudo and self._sudo_terminal
            channel = self._start_command(
                step, limit, commands.render(framing.frame_argv(full, hashed)), terminal
            )
            try:
                secret = nonce + "\n"
                if sudo and self.settings.sudo_password is not None:
                    secret += self.settings.sudo_password + "\n"
                channel.sendall(secret.encode())
                channel.shutdown_write()
                out_bytes, err_bytes, exit_code = _pump(channel, deframer.feed, stderr, started + limit)
            finally:
                channel.close()
        except _Timeout as e:
            self._audit_line(line, -1, time.monotonic() - started, e.out_bytes, e.err_bytes, True)
            raise HostError(
                self.host.name, step, "timeout", f"{commands.render(argv)} did not finish within {limit:g} s"
            ) from None
        except (OSError, paramiko.SSHException, EOFError) as e:
            self._audit_line(line, -1, time.monotonic() - started, out_bytes, err_bytes, False)
            raise HostError(self.host.name, step, "disconnected", f"{commands.render(argv)}: {e}") from e
        seconds = time.monotonic() - started
        frame = deframer.finish()
        own_stderr = framing.strip_stderr(bytes(stderr), nonce)
        if frame.tty_stderr is not None:
            own_stderr, err_bytes = frame.tty_stderr, len(frame.tty_stderr)
        elif err_bytes == len(stderr):  # all of stderr was kept: count the command's own bytes only
            err_bytes = len(own_stderr)
        self._audit_line(
            line,
            exit_code if frame.exit_code is None else frame.exit_code,
            seconds,
            frame.payload_bytes if frame.complete else out_bytes,
            err_bytes,
            False,
            frame.stray_bytes,
        )
        if exit_code == -1 and not self.is_open:  # the channel closed without an exit status: the link died
            raise HostError(
                self.host.name,
                step,
                "disconnected",
                f"the SSH connection dropped during {commands.render(argv)[:200]}",
            )
        _check_frame(self.host.name, step, argv, frame, exit_code, stderr)
        assert frame.exit_code is not None
        return CommandResult(
            tuple(full),
            frame.exit_code,
            "",
            own_stderr.decode("utf-8", "replace"),
            seconds,
            frame.payload_bytes,
            err_bytes,
        )

    def _start_command(self, step: str, limit: float, line: str, terminal: bool) -> paramiko.Channel:
        """A session channel running `line`. A link that refuses the channel or the command (the far sshd died
        while the TCP connection lingers) is treated as lost: the command has not started, so connecting
        again and starting it there is safe."""
        for attempt in (1, 2):
            transport = self._reconnect_if_lost(step)
            channel = None
            try:
                channel = transport.open_session(window_size=1 << 24, timeout=limit)
                if terminal:
                    channel.get_pty(width=0, height=0)
                channel.exec_command(line)
                return channel
            except (paramiko.SSHException, OSError, EOFError):
                if channel is not None:
                    channel.close()
                if self._closed or attempt == 2:
                    raise
                self._connection.close()
        raise AssertionError("unreachable")

    def _reconnect_if_lost(self, step: str) -> paramiko.Transport:
        """The open transport; when the link dropped since the last command (none is in flight), connect again
        first, with the same host-key checks, so that a capture can still be stopped, fetched and removed."""
        transport = self._connection.transport
        if transport is not None and transport.is_active():
            return transport
        if self._closed:
            raise HostError(self.host.name, step, "disconnected", "the SSH connection is closed")
        self.audit(f"{_now()} the SSH connection was lost; connecting again for {step}")
        _close_chain(self._connection)
        try:
            self._connection = _connect(self.host, self.settings, self.audit)
        except HostError as e:
            raise HostError(
                self.host.name,
                step,
                "disconnected",
                f"the SSH connection was lost, and reconnecting failed: {e.problem}",
            ) from e
        assert self._connection.transport is not None
        return self._connection.transport

    def _audit_line(
        self,
        line: str,
        exit_code: int,
        seconds: float,
        out_bytes: int,
        err_bytes: int,
        timed_out: bool,
        stray_bytes: int = 0,
    ) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        status = "timeout" if timed_out else f"exit={exit_code}"
        # Bytes the host's shell printed outside our frame (a banner): discarded, but worth knowing about.
        stray = f" stray={stray_bytes}B" if stray_bytes else ""
        self.audit(f"{stamp} {status} seconds={seconds:.3f} out={out_bytes}B err={err_bytes}B{stray} {line}")


def _check_frame(
    host: str, step: str, argv: Sequence[str], frame: framing.Frame, exit_code: int, stderr: bytearray
) -> None:
    """Output that was not framed, or that differs from what the host sent, must not be used."""
    if not frame.complete:
        raise HostError(
            host,
            step,
            "unframed-output",
            f"{commands.render(argv)[:200]} exited {exit_code} without its output frame "
            f"({frame.stray_bytes} bytes outside it; stderr: "
            f"{bytes(stderr[:300]).decode('utf-8', 'replace')!r}); "
            "a login shell, ForceCommand or wrapper on the host replaces or cuts our commands' output",
        )
    if frame.host_sha256 is not None and frame.host_sha256 != frame.payload_sha256:
        raise HostError(
            host,
            step,
            "integrity",
            f"{commands.render(argv)[:200]}: the {frame.payload_bytes} bytes received have sha256 "
            f"{frame.payload_sha256}, the host sent {frame.host_sha256}; the file was not kept",
        )


class _Timeout(Exception):
    def __init__(self, out_bytes: int, err_bytes: int) -> None:
        super().__init__("timeout")
        self.out_bytes = out_bytes
        self.err_bytes = err_bytes


def _pump(
    channel: paramiko.Channel, sink: Callable[[bytes], object], stderr: bytearray, deadline: float
) -> tuple[int, int, int]:
    """Move stdout to `sink`, stderr to `stderr` until EOF and exit status; raise _Timeout at `deadline`."""
    out_bytes = err_bytes = 0
    stdout_open = True
    channel.settimeout(_POLL)
    while True:
        while channel.recv_stderr_ready():
            errors = channel.recv_stderr(_CHUNK)
            err_bytes += len(errors)
            if len(stderr) < _STDERR_KEEP:
                stderr.extend(errors[: _STDERR_KEEP - len(stderr)])
        if stdout_open:
            data: bytes | None
            try:
                data = channel.recv(_CHUNK)
            except TimeoutError:  # socket.timeout: nothing within _POLL
                data = None
            if data:
                out_bytes += len(data)
                sink(data)
            elif data == b"":
                stdout_open = False
        elif channel.status_event.wait(_POLL) and not channel.recv_stderr_ready():
            return out_bytes, err_bytes, channel.recv_exit_status()
        if time.monotonic() > deadline:
            raise _Timeout(out_bytes, err_bytes)


def open_host(
    host: InventoryHost, settings: ConnectionSettings, audit_path: Path | None = None
) -> HostConnection:
    """Connect, verify the host key, authenticate; raises HostError(host, "connect", reason) on failure."""
    if not logging.getLogger("paramiko").handlers:
        silence_paramiko()  # nobody chose a log file: at least keep transport tracebacks off the terminal
    audit = _audit_writer(audit_path)
    return HostConnection(host, settings, _connect(host, settings, audit), audit)


def _connect(
    host: InventoryHost, settings: ConnectionSettings, audit: Callable[[str], None]
) -> fabric.Connection:
    started = time.monotonic()
    last: HostError | None = None
    _check_identity_file(host)
    for attempt in range(_CONNECT_ATTEMPTS):
        try:
            connection = _build_connection(host, settings)
        except HostError as e:
            audit(f"{_now()} connect failed: {e.problem}")
            raise
        try:
            connection.open()
            assert connection.transport is not None
            connection.transport.set_keepalive(KEEPALIVE_SECONDS)
            audit(
                f"{_now()} connected {host.user}@{host.address}:{host.port} in "
                f"{time.monotonic() - started:.3f} s"
            )
            return connection
        except BaseException as e:  # noqa: BLE001 - mapped below, or re-raised untouched
            _close_chain(connection)
            error = _map_connect_error(host, settings, e)
            if error is None:
                raise
            last = error
            retry = (
                error.reason == "banner"
                and attempt + 1 < _CONNECT_ATTEMPTS
                and time.monotonic() - started < settings.connect_timeout
            )
            if not retry:
                break
            time.sleep(0.1 * 2**attempt + random.uniform(0, 0.2))  # jitter: do not come back together
    assert last is not None
    if last.reason == "banner":
        slow = time.monotonic() - started >= settings.connect_timeout
        last = HostError(host.name, "connect", "timeout" if slow else "unreachable", last.detail)
    audit(f"{_now()} connect failed: {last.problem}")
    raise last


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _audit_writer(path: Path | None) -> Callable[[str], None]:
    if path is None:
        return lambda line: None
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    def write(line: str) -> None:
        with lock, private_file(path, "a") as out:
            out.write(line.replace("\n", "\\n") + "\n")

    return write


def _known_hosts_path(settings: ConnectionSettings) -> Path:
    return settings.known_hosts or Path("~/.ssh/known_hosts").expanduser()


def _harden(connection: fabric.Connection, settings: ConnectionSettings, host: str) -> None:
    """Fabric sets AutoAddPolicy and loads no known_hosts (ssh-notes §1.3): verify keys like OpenSSH does."""
    known_hosts = _known_hosts_path(settings)
    if known_hosts.is_file():
        try:
            connection.client.load_host_keys(str(known_hosts))
        except (OSError, ValueError, paramiko.SSHException, paramiko.hostkeys.InvalidHostKey) as e:
            # A binary file is a UnicodeDecodeError and a bad base64 key an InvalidHostKey: both are the
            # operator's file, not our bug, and no host key can be checked without it.
            raise HostError(
                host,
                "connect",
                "known-hosts-unreadable",
                f"{known_hosts} cannot be read as a known_hosts file ({e.__class__.__name__}: {e}); "
                "fix or remove the bad line, or pass another file with --known-hosts",
            ) from e
    policy: paramiko.MissingHostKeyPolicy = (
        _AcceptNew(known_hosts) if settings.accept_new_host_keys else _RejectUnknown()
    )
    connection.client.set_missing_host_key_policy(policy)


def _check_identity_file(host: InventoryHost) -> None:
    """An identity file that is missing, a folder or no private key is the inventory's defect: say so, rather
    than letting paramiko's OSError/SSHException read as an unreachable host."""
    if not host.identity_file:
        return
    path = Path(host.identity_file).expanduser()
    problem = ""
    if not path.exists():
        problem = "does not exist"
    elif not path.is_file():
        problem = "is not a file"
    else:
        try:
            paramiko.PKey.from_path(path)
        except paramiko.PasswordRequiredException:
            return  # encrypted: the agent may hold it unlocked
        except (OSError, ValueError, paramiko.SSHException) as e:
            problem = f"is not a usable private key ({e.__class__.__name__}: {e})"
        except Exception as e:  # noqa: BLE001 - paramiko raises assorted types for unknown key formats
            problem = f"is not a usable private key ({e.__class__.__name__})"
    if problem:
        raise HostError(
            host.name,
            "connect",
            "identity-file-unusable",
            f"identity_file {path} {problem}; fix identity_file for host {host.name} in the inventory",
        )


def _connect_kwargs(identity_file: str | None, settings: ConnectionSettings) -> dict[str, object]:
    kwargs: dict[str, object] = {
        "banner_timeout": settings.connect_timeout,
        "auth_timeout": settings.connect_timeout,
        "channel_timeout": settings.connect_timeout,
        "allow_agent": True,
    }
    if identity_file:
        kwargs["key_filename"] = [str(Path(identity_file).expanduser())]
        kwargs["look_for_keys"] = False
    return kwargs


def _build_connection(host: InventoryHost, settings: ConnectionSettings) -> fabric.Connection:
    # The inventory already resolved ~/.ssh/config aliases; Fabric must not re-apply (or half-apply) them.
    config = fabric.Config(overrides={"load_ssh_configs": False})
    gateway = None
    # ProxyJump `a,b,c`: a is reached directly, b through a, c through b, the host through c (as ssh does);
    # every hop's host key is verified like the host's own.
    for hop in split_jumps(host.proxy_jump or "", host.user):
        user, jump_host, port = hop
        gateway = fabric.Connection(
            jump_host,
            user=user,
            port=port,
            config=config,
            gateway=gateway,
            connect_timeout=settings.connect_timeout,
            connect_kwargs=_connect_kwargs(host.identity_file, settings),
        )
        _harden(gateway, settings, host.name)
    connection = fabric.Connection(
        host.address,
        user=host.user,
        port=host.port,
        config=config,
        gateway=gateway,
        connect_timeout=settings.connect_timeout,
        connect_kwargs=_connect_kwargs(host.identity_file, settings),
    )
    _harden(connection, settings, host.name)
    return connection


def _close_chain(connection: fabric.Connection) -> None:
    """Close the connection, then each jump host's, nearest first."""
    current: object = connection
    while isinstance(current, fabric.Connection):
        gateway = current.gateway
        current.close()
        current = gateway


def split_jumps(jumps: str, default_user: str) -> list[tuple[str, str, int]]:
    """`[user@]host[:port],...` (a ProxyJump chain, first hop first) -> (user, host, port) per hop; IPv6
    addresses in brackets (`[2001:db8::1]:22`)."""
    hops = []
    for hop in filter(None, (part.strip() for part in jumps.split(","))):
        user, _, rest = hop.rpartition("@")
        if rest.startswith("["):
            hostname, _, tail = rest[1:].partition("]")
            port = tail.removeprefix(":")
        else:
            hostname, _, port = rest.partition(":")
        hops.append((user or default_user, hostname, int(port or 22)))
    return hops


def _map_connect_error(
    host: InventoryHost, settings: ConnectionSettings, e: BaseException
) -> HostError | None:
    """Translate paramiko/socket failures to HostError reasons; `None` for anything not ours to map."""
    where = f"{host.user}@{host.address}:{host.port}" + (f" via {host.proxy_jump}" if host.proxy_jump else "")
    name = host.name
    if isinstance(e, _UnknownHostKey):
        return HostError(
            name,
            "connect",
            "host-key-unknown",
            f"{where} offered {fingerprint(e.key)}, which is not in {_known_hosts_path(settings)}; "
            "verify it and add it, or pass --accept-new-host-keys",
        )
    if isinstance(e, paramiko.BadHostKeyException):
        return HostError(
            name,
            "connect",
            "host-key-mismatch",
            f"{where} offered {fingerprint(e.key)} but {_known_hosts_path(settings)} expects "
            f"{fingerprint(e.expected_key)}: the host key CHANGED (possible man-in-the-middle); "
            "check with the host's admin before updating known_hosts",
        )
    if isinstance(e, paramiko.AuthenticationException):
        return HostError(
            name,
            "connect",
            "auth-refused",
            f"{where} refused our keys/agent ({e.__class__.__name__}); check user and identity_file",
        )
    if isinstance(e, paramiko.ssh_exception.NoValidConnectionsError):
        return HostError(name, "connect", "unreachable", f"{where}: {e}")
    if isinstance(e, TimeoutError):
        return HostError(
            name, "connect", "timeout", f"{where}: no answer within {settings.connect_timeout:g} s"
        )
    if isinstance(e, paramiko.SSHException):
        # Mostly "Error reading SSH protocol banner" (sshd's MaxStartups drops): worth a retry.
        return HostError(name, "connect", "banner", f"{where}: {e}")
    if isinstance(e, (OSError, EOFError, invoke.exceptions.Failure)):
        return HostError(name, "connect", "unreachable", f"{where}: {e}")
    return None


@contextmanager
def opened(
    host: InventoryHost, settings: ConnectionSettings, audit_path: Path | None = None
) -> Iterator[HostConnection]:
    """`with opened(host, settings) as c:` — open_host plus close."""
    connection = open_host(host, settings, audit_path)
    try:
        yield connection
    finally:
        connection.close()

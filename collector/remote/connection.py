"""Commands on one host over an open SSH link: framed, bounded in time, audited, over raw channels."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
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
import paramiko

from collector.inventory import InventoryHost
from collector.remote import commands, framing
from collector.remote.links import (
    ConnectionSettings,
    HostError,
    close_chain,
    connect,
    now,
    open_given,
)

_CHUNK = 1 << 20
_STDERR_KEEP = 64 * 1024  # stderr is for messages; more than this is cut (the byte count stays exact)
_POLL = 0.05


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


def private_file(path: Path, mode: str) -> IO[Any]:
    """open() for a bundle file, created 0600 whatever the umask (captures and logs are sensitive)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    descriptor = os.open(path, flags, 0o600)
    return os.fdopen(descriptor, mode) if "b" in mode else os.fdopen(descriptor, mode, encoding="utf-8")


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
        close_chain(self._connection)

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
        self.audit(f"{now()} the SSH connection was lost; connecting again for {step}")
        close_chain(self._connection)
        try:
            self._connection = connect(self.host, self.settings, self.audit)
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
    return HostConnection(host, settings, connect(host, settings, audit), audit)


def adopt_host(
    connection: fabric.Connection,
    host: InventoryHost,
    settings: ConnectionSettings,
    audit_path: Path | None = None,
    accept_new_hint: str = "pass --accept-new-host-keys",
) -> HostConnection:
    """`open_host` for a connection someone else built (a Fabric task's `c`, from the operator's Fabric and
    ssh config): the same host-key checks, error reasons and audit, then the same framed commands on it."""
    if not logging.getLogger("paramiko").handlers:
        silence_paramiko()
    audit = _audit_writer(audit_path)
    link = open_given(connection, host, settings, audit, accept_new_hint)
    return HostConnection(host, settings, link, audit)


def _audit_writer(path: Path | None) -> Callable[[str], None]:
    if path is None:
        return lambda line: None
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    def write(line: str) -> None:
        with lock, private_file(path, "a") as out:
            out.write(line.replace("\n", "\\n") + "\n")

    return write


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

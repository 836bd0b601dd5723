"""tcpdump on one host: start detached and self-limited, confirm it listens, stop by PID, fetch, clean up."""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.inventory import InventoryHost
from collector.remote import commands
from collector.remote.connection import HostConnection, HostError, private_file

READY_SECONDS = 5.0  # tcpdump says "listening" within a few hundred ms; more means something is wrong
STOP_WAIT_SECONDS = 5
RING_FILES = 5  # max_megabytes is spread over this many -C files when it is large enough
_PCAP_HEADER = 24
_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}


@dataclass(frozen=True)
class CaptureHandle:
    """A running capture: where its files are and the PID of its `timeout` wrapper (= its process group)."""

    host: str
    directory: str
    pid: int
    run_id: str
    identity: str = ""  # the run dir's device:inode at creation; later steps touch it only while it matches


def start_argv(
    host: InventoryHost,
    directory: str,
    peers: Sequence[str],
    port: int | None,
    max_seconds: int,
    max_megabytes: int,
) -> list[str]:
    """The tcpdump start command for `host` (shared by the run and the --dry-run plan, so both show the same)."""
    files = RING_FILES if max_megabytes >= RING_FILES * 10 else 1
    return commands.start_capture(
        host.capture_dir,
        directory,
        host.tcpdump,
        commands.capture_filter(peers, port),
        max_seconds,
        max_megabytes,
        files,
    )


def start_capture(
    connection: HostConnection,
    run_id: str,
    peers: Sequence[str],
    port: int | None,
    max_seconds: int,
    max_megabytes: int = 500,
) -> CaptureHandle:
    """Start tcpdump for traffic with `peers` and return once it is listening; raises HostError with reason
    sudo-denied, tcpdump-missing, disk-full, capture-dir-missing, capture-dir-unsafe, run-dir-exists or
    tcpdump-failed. Whenever the start may have happened but cannot be confirmed, the run dir (and any tcpdump
    in it) is removed before the error is raised."""
    host = connection.host
    step = "start-capture"
    if host.sudo:
        connection.check_sudo(step)
    directory = commands.run_dir(host.capture_dir, run_id, host.name)
    argv = start_argv(host, directory, peers, port, max_seconds, max_megabytes)
    unconfirmed = CaptureHandle(host.name, directory, 0, run_id)
    try:
        result = connection.run(argv, sudo=host.sudo, check=False, step=step)
    except HostError:
        _remove_quietly(connection, unconfirmed)  # it may have started before the output was lost
        raise
    message = result.stderr.strip()
    _raise_for_refusal(host.name, result.exit_code, message)
    lines = result.stdout.split()
    if result.exit_code != 0 or len(lines) != 2 or not lines[0].isdigit() or ":" not in lines[1]:
        _remove_quietly(connection, unconfirmed)
        raise HostError(
            host.name,
            step,
            "tcpdump-failed",
            f"exit {result.exit_code}: {message[:500] or 'no message'}; its output was "
            f"{result.stdout[:200]!r} (expected the pid and the run dir's identity); the run dir was removed",
        )
    handle = CaptureHandle(host.name, directory, int(lines[0]), run_id, lines[1])
    try:
        _wait_listening(connection, handle)
    except HostError:
        _remove_quietly(connection, handle)
        raise
    return handle


def _raise_for_refusal(host: str, exit_code: int, message: str) -> None:
    """The start script's refusals, before it created anything: nothing to clean up."""
    step = "start-capture"
    if exit_code == commands.EXIT_TCPDUMP_MISSING:
        raise HostError(
            host,
            step,
            "tcpdump-missing",
            f"{message or 'tcpdump not found'}; install tcpdump or set `tcpdump:`",
        )
    if exit_code == commands.EXIT_DISK_FULL:
        raise HostError(host, step, "disk-full", f"{message}; free space or set another capture_dir")
    if exit_code == commands.EXIT_NO_CAPTURE_DIR:
        raise HostError(host, step, "capture-dir-missing", f"{message}; set `capture_dir:` in the inventory")
    if exit_code == commands.EXIT_UNSAFE_CAPTURE_DIR:
        raise HostError(host, step, "capture-dir-unsafe", f"{message}; set `capture_dir:` in the inventory")
    if exit_code == commands.EXIT_RUN_DIR_EXISTS:
        raise HostError(
            host, step, "run-dir-exists", f"{message}; another user may be interfering: check who created it"
        )


def _remove_quietly(connection: HostConnection, handle: CaptureHandle) -> None:
    # The error being raised says what failed; the remote `timeout` still ends tcpdump.
    with contextlib.suppress(HostError):
        remove_capture(connection, handle)


def _wait_listening(connection: HostConnection, handle: CaptureHandle) -> None:
    host = connection.host
    deadline = time.monotonic() + READY_SECONDS
    while True:
        check = connection.run(
            commands.check_capture(handle.directory, handle.identity),
            sudo=host.sudo,
            check=False,
            step="start-capture",
        )
        if check.exit_code == 0:
            return
        if check.exit_code != commands.EXIT_NOT_LISTENING or time.monotonic() > deadline:
            log = check.stderr.strip()[:500] or "no output"
            raise HostError(
                host.name,
                "start-capture",
                "run-dir-changed" if check.exit_code == commands.EXIT_RUN_DIR_CHANGED else "tcpdump-failed",
                f"tcpdump is not capturing (exit {check.exit_code}); its log says: {log}",
            )
        time.sleep(0.1)


@dataclass(frozen=True)
class StoppedCapture:
    """A stopped capture: its remote files, oldest first, and tcpdump's captured/received/dropped counters."""

    files: tuple[str, ...]
    summary: str
    sha256: tuple[tuple[str, str], ...] = ()  # (remote file, sha256 computed on the host at stop)


def stop_capture(connection: HostConnection, handle: CaptureHandle) -> StoppedCapture:
    """SIGINT the capture (KILL after STOP_WAIT_SECONDS), hand its files to the login user."""
    host = connection.host
    argv = commands.stop_capture(
        handle.directory,
        handle.run_id,
        host.user,
        STOP_WAIT_SECONDS,
        identity=handle.identity,
        pid=handle.pid,
    )
    result = connection.run(
        argv,
        sudo=host.sudo,
        check=False,
        step="stop-capture",
        timeout=max(connection.settings.command_timeout, STOP_WAIT_SECONDS + 10),
    )
    if result.exit_code != 0:
        raise HostError(
            host.name,
            "stop-capture",
            "run-dir-changed" if result.exit_code == commands.EXIT_RUN_DIR_CHANGED else "stop-failed",
            f"exit {result.exit_code}: {result.stderr.strip()[:500]}",
        )
    lines = result.stdout.splitlines()
    names = [line for line in lines if line.startswith(commands.CAPTURE_FILE)]
    summary = ", ".join(line.removeprefix("summary: ") for line in lines if line.startswith("summary: "))
    hashes = [line.removeprefix("sha256: ").split(" ", 1) for line in lines if line.startswith("sha256: ")]
    return StoppedCapture(
        tuple(f"{handle.directory}/{name}" for name in names),
        summary,
        tuple((f"{handle.directory}/{name}", digest) for digest, name in hashes),
    )


def fetch_capture(
    connection: HostConnection,
    remote_files: Sequence[str],
    local_path: Path,
    sha256: Sequence[tuple[str, str]] = (),
) -> int:
    """Fetch the ring files and join them into one pcap at `local_path`; returns its size. Each file with a
    host-side hash in `sha256` must arrive with that hash (HostError(integrity) otherwise)."""
    hashes = dict(sha256)
    if not remote_files:
        raise HostError(connection.host.name, "fetch-capture", "no-capture", "tcpdump wrote no capture file")
    parts = []
    try:
        for index, remote in enumerate(remote_files):
            part = local_path.with_name(f".{local_path.name}.part{index}")
            connection.get(remote, part, step="fetch-capture", sha256=hashes.get(remote))
            parts.append(part)
        join_pcaps(parts, local_path)
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    return local_path.stat().st_size


def remove_capture(connection: HostConnection, handle: CaptureHandle) -> None:
    """Remove the run dir (stopping a capture still running there)."""
    connection.run(
        commands.remove_run_dir(handle.directory, handle.run_id, handle.identity, handle.pid or None),
        sudo=connection.host.sudo,
        step="cleanup",
        timeout=max(connection.settings.command_timeout, 15),
    )


def join_pcaps(parts: Sequence[Path], out: Path) -> None:
    """Concatenate pcap files of one tcpdump ring (same link type): the first header, then every record."""
    with private_file(out, "wb") as target:
        for index, part in enumerate(parts):
            with open(part, "rb") as source:
                header = source.read(_PCAP_HEADER)
                if len(header) < _PCAP_HEADER:
                    continue  # tcpdump had not written this ring file yet
                if header[:4] not in _PCAP_MAGICS:
                    raise ValueError(f"{part} is not a pcap file")
                if index == 0 or target.tell() == 0:
                    target.write(header)
                while chunk := source.read(1 << 20):
                    target.write(chunk)


def count_pcap_records(path: Path) -> int:
    """Number of packet records in a little- or big-endian classic pcap (for checks and tests)."""
    data = path.read_bytes()
    if len(data) < _PCAP_HEADER:
        return 0
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    offset, count = _PCAP_HEADER, 0
    while offset + 16 <= len(data):
        (included,) = struct.unpack_from(endian + "I", data, offset + 8)
        offset += 16 + included
        count += 1
    return count

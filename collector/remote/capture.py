"""tcpdump on one host: start detached and self-limited, confirm it listens, stop by PID, fetch, clean up."""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.remote import commands, host_steps
from collector.remote.connection import HostConnection, HostError, private_file
from collector.remote.host_steps import (
    CAPTURE_MEGABYTES,
    READY_SECONDS,
    HostCommand,
)
from collector.steps import Step

_PCAP_HEADER = 24
_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"}


@dataclass(frozen=True)
class CaptureHandle:
    """A running capture: where its files are and the PID of its `timeout` wrapper (= its process group)."""

    host: str
    directory: str
    pid: int
    run_id: str


def start_capture(
    connection: HostConnection,
    run_id: str,
    peers: Sequence[str],
    port: int | None,
    max_seconds: int,
    max_megabytes: int = CAPTURE_MEGABYTES,
) -> CaptureHandle:
    """Start tcpdump for traffic with `peers` and return once it is listening; raises HostError with reason
    sudo-denied, tcpdump-missing, disk-full, capture-dir-missing, capture-dir-unsafe, run-dir-exists,
    run-dir-changed or tcpdump-failed. Whenever the start may have happened but cannot be confirmed, the run
    dir (and any tcpdump in it) is removed before the error is raised."""
    host = connection.host
    step = Step.START_CAPTURE
    if host.sudo:
        connection.check_sudo(step)
    directory = host_steps.run_dir(host, run_id)
    argv = host_steps.start_capture_argv(host, run_id, peers, port, max_seconds, max_megabytes)
    unconfirmed = CaptureHandle(host.name, directory, 0, run_id)
    try:
        result = host_steps.send(connection, HostCommand.START_CAPTURE, argv)
    except HostError:
        _remove_quietly(connection, unconfirmed)  # it may have started before its output was lost
        raise
    message = result.stderr.strip()
    _raise_for_refusal(host.name, result.exit_code, message)
    if result.exit_code != 0 or not result.stdout.strip().isdigit():
        _remove_quietly(connection, unconfirmed)
        raise HostError(
            host.name,
            step,
            "tcpdump-failed",
            f"exit {result.exit_code}: {message[:500] or 'no message'}; its output was "
            f"{result.stdout[:200]!r} (expected the pid); the run dir was removed",
        )
    handle = CaptureHandle(host.name, directory, int(result.stdout.strip()), run_id)
    try:
        _wait_listening(connection, handle)
    except HostError:
        _remove_quietly(connection, handle)
        raise
    return handle


def _raise_for_refusal(host: str, exit_code: int, message: str) -> None:
    """The start script's refusals, before it created anything of ours: nothing to clean up."""
    step = Step.START_CAPTURE
    if exit_code == commands.EXIT_TCPDUMP_MISSING:
        raise HostError(
            host,
            step,
            "tcpdump-missing",
            f"{message or 'tcpdump not found'}; install tcpdump or set `tcpdump:` to its path",
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
        check = host_steps.send(
            connection, HostCommand.CHECK_CAPTURE, host_steps.check_capture_argv(handle.directory)
        )
        if check.exit_code == 0:
            return
        if check.exit_code != commands.EXIT_NOT_LISTENING or time.monotonic() > deadline:
            log = check.stderr.strip()[:500] or "no output"
            raise HostError(
                host.name,
                Step.START_CAPTURE,
                "run-dir-changed" if check.exit_code == commands.EXIT_RUN_DIR_CHANGED else "tcpdump-failed",
                f"tcpdump is not capturing (exit {check.exit_code}); its log says: {log}",
            )
        time.sleep(0.1)


def mark_capture(connection: HostConnection, handle: CaptureHandle) -> None:
    """Check the capture once more: the host notes tcpdump's packet count now, so that a capture receiving
    nothing more until the stop stops at once instead of waiting for tcpdump to hand over what it may hold.
    Raises HostError; failing only costs that shortcut."""
    host_steps.send(connection, HostCommand.CHECK_CAPTURE, host_steps.check_capture_argv(handle.directory))


@dataclass(frozen=True)
class StoppedCapture:
    """A stopped capture: its remote files, oldest first, and tcpdump's captured/received/dropped counters."""

    files: tuple[str, ...]
    summary: str
    sha256: tuple[tuple[str, str], ...] = ()  # (remote file, sha256 computed on the host at stop)


def stop_capture(connection: HostConnection, handle: CaptureHandle) -> StoppedCapture:
    """SIGINT the capture (KILL after STOP_WAIT_SECONDS), hand its files to the login user."""
    host = connection.host
    argv = host_steps.stop_capture_argv(handle.directory, handle.run_id, host.user)
    result = host_steps.send(connection, HostCommand.STOP_CAPTURE, argv)
    if result.exit_code != 0:
        raise HostError(
            host.name,
            Step.STOP_CAPTURE,
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
        raise HostError(
            connection.host.name, Step.FETCH_CAPTURE, "no-capture", "tcpdump wrote no capture file"
        )
    parts = []
    try:
        for index, remote in enumerate(remote_files):
            part = local_path.with_name(f".{local_path.name}.part{index}")
            connection.get(remote, part, step=Step.FETCH_CAPTURE, sha256=hashes.get(remote))
            parts.append(part)
        join_pcaps(parts, local_path)
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    return local_path.stat().st_size


def remove_capture(connection: HostConnection, handle: CaptureHandle) -> None:
    """Remove the run dir (stopping a capture still running there)."""
    host_steps.send(
        connection,
        HostCommand.REMOVE_CAPTURE,
        host_steps.remove_capture_argv(handle.directory, handle.run_id),
        check=True,
    )


def join_pcaps(parts: Sequence[Path], out: Path) -> None:
    """Concatenate pcap files of one tcpdump ring (same link type): the first header, then every record."""
    with private_file(out, "wb") as target:
        for index, part in enumerate(parts):
            with part.open("rb") as source:
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

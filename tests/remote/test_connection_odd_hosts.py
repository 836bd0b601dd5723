"""Odd hosts on the lab's real sshd: a link that drops mid-capture (the collector connects again), sudo with
`Defaults requiretty`, tcpdump outside the PATH sudo gives."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from collector.inventory import InventoryHost
from collector.remote import capture
from collector.remote.connection import ConnectionSettings, HostConnection, HostError, open_host
from tests.lab.sshd import LAB_TCPDUMP, TTY_USER, SshHosts, child_pids
from tests.remote.conftest import processes_with

pytestmark = pytest.mark.lab


def _drop_link(lab: SshHosts, name: str, connection: HostConnection) -> None:
    """Kill one lab host's per-connection sshd processes (the monitors and their session children): the TCP
    connection closes as when a link drops."""
    monitors = child_pids(lab._procs[name].pid)
    for pid in monitors + [child for monitor in monitors for child in child_pids(monitor)]:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while connection.is_open and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_link_dropped_mid_capture_is_reopened_to_stop_fetch_and_clean_up(
    mp1: InventoryHost, lab: SshHosts, settings: ConnectionSettings, tmp_path: Path
) -> None:
    # Given a running capture on mp1 whose SSH link then drops (its sshd session processes killed)
    audit = tmp_path / "commands.log"
    with open_host(mp1, settings, audit) as connection:
        handle = capture.start_capture(connection, "reconnect-1", ["127.0.5.99"], None, 60)
        _drop_link(lab, "mp1", connection)
        assert not connection.is_open
        # When the capture is stopped, fetched and removed
        stopped = capture.stop_capture(connection, handle)
        size = capture.fetch_capture(connection, stopped.files, tmp_path / "capture.pcap", stopped.sha256)
        capture.remove_capture(connection, handle)
    # Then all of it worked over a new connection (host key checked again), and the audit says so
    assert size >= 24
    assert "the SSH connection was lost; connecting again for stop-capture" in audit.read_text()
    assert audit.read_text().count(" connected ") == 2
    # And nothing is left on the host
    assert not processes_with(handle.directory)
    assert not Path(handle.directory).exists()


def test_a_host_that_stays_down_fails_the_step_as_disconnected(
    mp1: InventoryHost, settings: ConnectionSettings, tmp_path: Path
) -> None:
    # Given a connection whose host cannot be reached again (a closed port stands in for a host gone down)
    with open_host(mp1, settings) as connection:
        connection._connection.close()  # the link is gone
        connection.host = replace(mp1, port=1)  # and the host no longer answers
        # When a command is run, Then it fails as disconnected, naming the host and the step
        with pytest.raises(HostError) as caught:
            connection.run(["true"], step="stop-capture")
    assert caught.value.reason == "disconnected" and caught.value.step == "stop-capture"
    assert "reconnecting failed" in caught.value.problem and caught.value.host == "mp1"


def test_sudo_with_requiretty_runs_on_a_terminal_with_bytes_and_stderr_intact(
    mp1: InventoryHost, settings: ConnectionSettings, tmp_path: Path
) -> None:
    # Given a login user whose sudo has `Defaults requiretty`
    host = replace(mp1, user=TTY_USER)
    data = tmp_path / "all-bytes.bin"
    data.write_bytes(bytes(range(256)) * 4096 + b"\r\n\n\x03\x04\x1a\x11\x13")  # CR/LF, ^C, ^D, ^Z, XON/XOFF
    data.chmod(0o644)
    with open_host(host, settings, tmp_path / "commands.log") as connection:
        # When sudo commands run there
        connection.check_sudo()
        root = connection.run(["id", "-u"], sudo=True)
        failing = connection.run(["sh", "-c", "echo oops >&2; exit 3"], sudo=True, check=False)
        streamed = connection.stream_to_file(["cat", str(data)], tmp_path / "copy.bin", sudo=True)
        plain = connection.run(["sh", "-c", "echo out; echo err >&2"])
    # Then they run as root on a terminal, with stdout byte for byte and stderr apart, exit codes kept
    assert root.stdout == "0\n"
    assert (failing.exit_code, failing.stdout, failing.stderr) == (3, "", "oops\n")
    assert (tmp_path / "copy.bin").read_bytes() == data.read_bytes() and streamed.exit_code == 0
    # And commands without sudo still run without a terminal
    assert (plain.stdout, plain.stderr) == ("out\n", "err\n")


def test_tcpdump_outside_the_path_sudo_gives_is_found(
    mp1: InventoryHost, settings: ConnectionSettings, tmp_path: Path
) -> None:
    # Given a host whose sudo (requiretty, secure_path /usr/bin:/bin) does not reach the tcpdump named in the
    # inventory, which lives in /usr/local/sbin (as /usr/sbin is outside many non-root PATHs)
    host = replace(mp1, user=TTY_USER, tcpdump=LAB_TCPDUMP)
    with open_host(host, settings) as connection:
        # When a capture is started, stopped, fetched and removed
        handle = capture.start_capture(connection, "odd-path-1", ["127.0.5.98"], None, 60)
        stopped = capture.stop_capture(connection, handle)
        size = capture.fetch_capture(connection, stopped.files, tmp_path / "capture.pcap", stopped.sha256)
        capture.remove_capture(connection, handle)
    # Then all of it worked, and nothing is left on the host
    assert size >= 24
    assert not processes_with(handle.directory) and not Path(handle.directory).exists()

"""Odd hosts on the lab's real sshd: a link that drops mid-capture (the collector connects again)."""

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
from tests.lab.sshd import SshHosts
from tests.remote.conftest import processes_with

pytestmark = pytest.mark.lab


def _children(parent: int) -> list[int]:
    children = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            children.append(int(proc.name))
    return children


def _drop_link(lab: SshHosts, name: str, connection: HostConnection) -> None:
    """Kill one lab host's per-connection sshd processes (the monitors and their session children): the TCP
    connection closes as when a link drops."""
    monitors = _children(lab._procs[name].pid)
    for pid in monitors + [child for monitor in monitors for child in _children(monitor)]:
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

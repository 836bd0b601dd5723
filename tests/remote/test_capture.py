"""tcpdump on real lab hosts: real TLS traffic between 127.0.5.x addresses lands in a valid pcap."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from collector.inventory import InventoryHost
from collector.remote import capture
from collector.remote.connection import ConnectionSettings, HostError, open_host
from tests.lab.sshd import NOSUDO_USER, SshHosts
from tests.remote.conftest import BACKEND, MP1, processes_with, tls_request

pytestmark = pytest.mark.lab


def _read_pcap(path: Path) -> str:
    result = subprocess.run(["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True, check=True)
    return result.stdout


def test_capture_of_tls_traffic_is_a_valid_pcap(
    mp1: InventoryHost, settings: ConnectionSettings, tls_backend: tuple[str, int], tmp_path: Path
) -> None:
    with open_host(mp1, settings, tmp_path / "commands.log") as connection:
        handle = capture.start_capture(
            connection, "captest1", [BACKEND], tls_backend[1], max_seconds=60, max_megabytes=5
        )
        assert processes_with("captest1")
        for _ in range(3):
            assert tls_request(MP1, tls_backend).endswith(b"ok")
        stopped = capture.stop_capture(connection, handle)
        size = capture.fetch_capture(connection, stopped.files, tmp_path / "capture.pcap")
        capture.remove_capture(connection, handle)
        leftover = connection.run(["ls", mp1.capture_dir]).stdout

    assert size > 0
    assert "packets captured" in stopped.summary
    assert not processes_with("captest1")
    assert "captest1" not in leftover
    text = _read_pcap(tmp_path / "capture.pcap")
    # Each of the three TLS connections: a SYN from the MP to the backend port, on the MP's own address.
    assert text.count(f"{MP1}.") >= 6
    assert text.count("Flags [S]") >= 3
    assert capture.count_pcap_records(tmp_path / "capture.pcap") == len(text.splitlines())
    # The ClientHello (TLS record type 22, version 3.x) is in the capture: the payload was kept (-s 0).
    assert b"\x16\x03\x01" in (tmp_path / "capture.pcap").read_bytes()
    audit = (tmp_path / "commands.log").read_text()
    assert "setsid nohup timeout -s INT" in audit and "kill -INT" in audit and "sftp-get" in audit


def test_filter_excludes_other_peers(
    mp1: InventoryHost, settings: ConnectionSettings, tls_backend: tuple[str, int], tmp_path: Path
) -> None:
    with open_host(mp1, settings) as connection:
        handle = capture.start_capture(
            connection, "captest2", ["127.0.5.99"], None, max_seconds=60, max_megabytes=5
        )
        tls_request(MP1, tls_backend)
        stopped = capture.stop_capture(connection, handle)
        capture.fetch_capture(connection, stopped.files, tmp_path / "capture.pcap")
        capture.remove_capture(connection, handle)
    assert _read_pcap(tmp_path / "capture.pcap") == ""


def test_capture_stops_by_itself_at_its_time_limit(
    mp1: InventoryHost, settings: ConnectionSettings, tmp_path: Path
) -> None:
    with open_host(mp1, settings) as connection:
        handle = capture.start_capture(
            connection, "captest3", [BACKEND], None, max_seconds=2, max_megabytes=5
        )
        assert processes_with("captest3")
        deadline = time.monotonic() + 15
        while processes_with("captest3") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not processes_with("captest3")
        # Stopping a capture that already ended still hands over what it wrote
        stopped = capture.stop_capture(connection, handle)
        capture.fetch_capture(connection, stopped.files, tmp_path / "capture.pcap")
        capture.remove_capture(connection, handle)
    assert "packets captured" in stopped.summary
    subprocess.run(["tcpdump", "-r", str(tmp_path / "capture.pcap")], capture_output=True, check=True)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tcpdump": "/nonexistent/tcpdump"}, "tcpdump-missing"),
        ({"user": NOSUDO_USER}, "sudo-denied"),
        ({"capture_dir": "/nonexistent-capture-dir"}, "capture-dir-missing"),
    ],
)
def test_capture_failure_reasons(
    mp1: InventoryHost, settings: ConnectionSettings, change: dict[str, str], reason: str
) -> None:
    host = replace(mp1, **change)
    with open_host(host, settings) as connection, pytest.raises(HostError) as caught:
        capture.start_capture(connection, "captest4", [BACKEND], None, max_seconds=5, max_megabytes=5)
    assert caught.value.reason == reason
    assert caught.value.host == "mp1" and caught.value.step == "start-capture"


def test_full_capture_dir_is_reported(
    mp1: InventoryHost, settings: ConnectionSettings, tmp_path: Path
) -> None:
    full = tmp_path / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], check=True)
    try:
        (full / "filler").write_bytes(b"\0" * 60 * 1024)
        with (
            open_host(replace(mp1, capture_dir=str(full)), settings) as connection,
            pytest.raises(HostError) as caught,
        ):
            capture.start_capture(connection, "captest5", [BACKEND], None, max_seconds=5, max_megabytes=5)
        assert caught.value.reason == "disk-full"
        assert str(full) in caught.value.message
    finally:
        subprocess.run(["umount", "-l", str(full)], check=True)


def test_join_pcaps_keeps_one_header(tmp_path: Path) -> None:
    # Given two ring files of one capture (a 24-byte header each, one 20-byte record each)
    header = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")
    record = (b"\x01\0\0\0" + b"\0" * 4 + b"\x04\0\0\0" * 2) + b"abcd"
    parts = []
    for index in range(2):
        part = tmp_path / f"p{index}"
        part.write_bytes(header + record)
        parts.append(part)
    # When they are joined
    capture.join_pcaps(parts, tmp_path / "joined.pcap")
    # Then the result has one header and both records
    assert (tmp_path / "joined.pcap").read_bytes() == header + record + record
    assert capture.count_pcap_records(tmp_path / "joined.pcap") == 2


def test_capture_with_a_sudo_password_given_once(
    mp1: InventoryHost, lab: SshHosts, tls_backend: tuple[str, int], tmp_path: Path
) -> None:
    settings = ConnectionSettings(known_hosts=lab.known_hosts, sudo_password=lab.sudo_password)
    with open_host(replace(mp1, user=lab.password_user), settings, tmp_path / "commands.log") as connection:
        handle = capture.start_capture(
            connection, "captest6", [BACKEND], None, max_seconds=60, max_megabytes=5
        )
        tls_request(MP1, tls_backend)
        stopped = capture.stop_capture(connection, handle)
        capture.fetch_capture(connection, stopped.files, tmp_path / "capture.pcap")
        capture.remove_capture(connection, handle)
    assert f"{MP1}." in _read_pcap(tmp_path / "capture.pcap")
    assert "sudo -S -p '' --" in (tmp_path / "commands.log").read_text()
    assert lab.sudo_password not in (tmp_path / "commands.log").read_text()


def test_packets_sent_just_before_the_stop_are_all_in_the_capture(
    mp1: InventoryHost, settings: ConnectionSettings, tmp_path: Path
) -> None:
    packets = 300  # an immediate SIGINT keeps about 230 of them here (and 0 of a single packet)
    # Given a capture that has been idle long enough to stop at once (the start recorded its counts)
    port = _free_udp_port()
    with open_host(mp1, settings) as connection:
        handle = capture.start_capture(
            connection, f"captail{packets}", [BACKEND], port, max_seconds=60, max_megabytes=5
        )
        time.sleep(1.5)
        # When packets arrive right before the stop: on `-i any` the kernel still holds them in a block it
        # hands over up to ~1 s later, and tcpdump drops what it has not read when SIGINT arrives
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.bind((MP1, 0))
            for index in range(packets):
                sender.sendto(index.to_bytes(4, "big") * 250, (BACKEND, port))
        stopped = capture.stop_capture(connection, handle)
        capture.fetch_capture(connection, stopped.files, tmp_path / "capture.pcap", stopped.sha256)
        capture.remove_capture(connection, handle)
    # Then every one of them is in the capture, and the summary is tcpdump's final count
    assert capture.count_pcap_records(tmp_path / "capture.pcap") == packets
    assert f"{packets} packets captured" in stopped.summary
    assert "received by filter" in stopped.summary and stopped.summary.count("captured") == 1
    assert not processes_with(f"captail{packets}")


def test_a_mark_late_in_the_window_does_not_cut_packets_that_follow_it(
    mp1: InventoryHost, settings: ConnectionSettings, tmp_path: Path
) -> None:
    # Given a capture whose packet count was marked (as the run does late in the window) after some traffic
    port = _free_udp_port()
    with open_host(mp1, settings) as connection, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.bind((MP1, 0))
        handle = capture.start_capture(
            connection, "capmark", [BACKEND], port, max_seconds=60, max_megabytes=5
        )
        for index in range(50):
            sender.sendto(index.to_bytes(4, "big") * 250, (BACKEND, port))
        capture.mark_capture(connection, handle)
        # When more packets arrive after the mark, right before the stop
        for index in range(50, 100):
            sender.sendto(index.to_bytes(4, "big") * 250, (BACKEND, port))
        stopped = capture.stop_capture(connection, handle)
        capture.fetch_capture(connection, stopped.files, tmp_path / "capture.pcap", stopped.sha256)
        capture.remove_capture(connection, handle)
    # Then the capture holds all of them
    assert capture.count_pcap_records(tmp_path / "capture.pcap") == 100


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((BACKEND, 0))
        return int(probe.getsockname()[1])

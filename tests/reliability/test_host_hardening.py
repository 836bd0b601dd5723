"""Hostile and odd hosts on the lab's real sshd: chatty login shells, wrappers that cut or change output,
links planted in the log directory, capture directories other users control, a bastion chain with requiretty
sudo (rows F17-F20, H15-H17)."""

from __future__ import annotations

import gzip
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collector import layout
from collector.inventory import InventoryHost, load_inventory
from collector.remote import capture, commands
from collector.remote.connection import ConnectionSettings, HostError
from collector.remote.fleet import Fleet
from collector.steps import StepResult, StepStatus
from tests.lab.sshd import (
    BANNER,
    LAB_TCPDUMP,
    LAB_USER,
    NOSUDO_USER,
    TTY_USER,
    SshHosts,
    SshHostSpec,
    start_ssh_hosts,
)
from tests.reliability.conftest import run_dirs, running_captures

pytestmark = pytest.mark.lab

_WRAPPER = "/bin/sh -c 'eval \"$SSH_ORIGINAL_COMMAND\" | {}'"  # sshd ForceCommand: our command piped on
PEER = "127.0.9.99"  # the "backend" every capture filters on; the test sends it a few packets
HOSTS = {  # name -> (address, what the host does to our commands)
    "mp-chatty": ("127.0.9.11", {"shell_banner": True}),
    # A wrapper that passes only the first two lines of any output: a frame around more than nothing is cut.
    "mp-cut": ("127.0.9.12", {"force_command": _WRAPPER.format("head -n 2")}),
    # A wrapper that changes bytes in transit ('#' is in no frame marker and no lab path, only in payloads).
    "mp-mangle": ("127.0.9.13", {"force_command": _WRAPPER.format('tr "#" %')}),
    "mp-links": ("127.0.9.14", {}),
    "mp-capdir": ("127.0.9.15", {}),
}
LOG_LINE = "2026-11-27 10:00:00,000 org:o env:e api:p rev:1 messageid:rrt-z-1 NIOThread@0 INFO - zebra #{}\n"


@dataclass
class HardLab:
    hosts: SshHosts
    root: Path

    def host(self, name: str, **overrides: object) -> InventoryHost:
        path = self.hosts.write_inventory(self.root / f"{name}.yaml", {name: dict(overrides)})
        return next(h for h in load_inventory(path).hosts if h.name == name)

    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            known_hosts=self.hosts.known_hosts, connect_timeout=5, command_timeout=30, host_deadline=120
        )


@pytest.fixture(scope="module")
def hard_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HardLab]:
    root = tmp_path_factory.mktemp("host-hardening")
    specs = [
        SshHostSpec(name, address, "message-processor", root / "roots" / name, **options)  # type: ignore[arg-type]
        for name, (address, options) in HOSTS.items()
    ]
    with start_ssh_hosts(root / "ssh", specs) as hosts:
        for host in hosts.hosts:
            host.system_log.write_text("".join(LOG_LINE.format(i) for i in range(2000)))
        yield HardLab(hosts, root)
        _stop_leftovers([Path(os.path.realpath(h.capture_dir)) for h in hosts.hosts])


def _stop_leftovers(dirs: list[Path]) -> None:
    for leftover in running_captures(dirs):
        for pid in filter(None, (leftover.wrapper_pid, leftover.pid)):
            subprocess.run(["kill", "-KILL", str(pid)], check=False, capture_output=True)


def _send_packets(source: str, count: int = 5) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((source, 0))
        for index in range(count):
            udp.sendto(f"packet {index}".encode(), (PEER, 9))
            time.sleep(0.05)


def _by_step(results: list[StepResult]) -> dict[str, StepResult]:
    return {r.step: r for r in results}


def _fleet(lab: HardLab, host: InventoryHost, staging: Path) -> Fleet:
    fleet = Fleet([host], lab.settings(), staging, "hard-" + os.urandom(3).hex())
    assert fleet.connect()[0].status is StepStatus.OK
    return fleet


# --- F17-F19: output framing and integrity ---------------------------------------------------------------


def test_f17_a_chatty_login_shell_changes_nothing_we_collect(hard_lab: HardLab, tmp_path: Path) -> None:
    # Given a host whose login shell prints a banner on stdout and stderr before and after every command
    host = hard_lab.host("mp-chatty")
    lab_host = hard_lab.hosts.host("mp-chatty")
    with _fleet(hard_lab, host, tmp_path) as fleet:
        # When the whole host-side collection runs there
        started = _by_step(fleet.start_captures([PEER], [], None, 60))
        _send_packets(host.address)
        stopped = _by_step(fleet.stop_captures())
        logs = _by_step(fleet.gather_logs(["rrt-z-1"], budget_bytes=10_000_000))
        facts = _by_step(fleet.gather_facts())
    # Then every step is ok, and what was fetched is byte for byte what the host holds (no banner in it)
    for result in (started["start-capture"], stopped["stop-capture"], stopped["fetch-capture"], logs["logs"],
                   facts["facts"]):
        assert result.status is StepStatus.OK, result
    pcap = (tmp_path / layout.host_file("mp-chatty", layout.HOST_CAPTURE)).read_bytes()
    assert pcap[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") and b"packet 0" in pcap
    log = gzip.decompress((tmp_path / layout.host_file("mp-chatty", layout.HOST_LOG)).read_bytes())
    assert log == lab_host.system_log.read_bytes()
    excerpt = (tmp_path / layout.host_file("mp-chatty", layout.HOST_LOG_EXCERPT)).read_text()
    assert BANNER not in excerpt and "Goodbye" not in excerpt and "rrt-z-1" in excerpt
    facts_text = (tmp_path / layout.host_file("mp-chatty", layout.HOST_FACTS)).read_text()
    assert BANNER not in facts_text
    # And the audit says that the host printed outside the frame, and nothing is left on the host
    audit = (tmp_path / layout.host_file("mp-chatty", layout.HOST_COMMANDS)).read_text()
    assert " stray=" in audit
    assert not run_dirs([lab_host.capture_dir]) and not running_captures([lab_host.capture_dir])


def test_f18_output_that_cannot_be_parsed_leaves_nothing_running_or_on_disk(
    hard_lab: HardLab, tmp_path: Path
) -> None:
    # Given a host whose wrapper cuts every command's output after 100 bytes (tcpdump still starts there)
    host = hard_lab.host("mp-cut")
    lab_host = hard_lab.hosts.host("mp-cut")
    capture_dir = Path(os.path.realpath(lab_host.capture_dir))
    with _fleet(hard_lab, host, tmp_path) as fleet:
        # When a capture is started and logs are gathered
        started = _by_step(fleet.start_captures([PEER], [], None, 60))
        logs = _by_step(fleet.gather_logs(["rrt-z-1"]))
    # Then both fail as unframed output naming the host and the step, not as a silent "exit 0"
    for result, step in ((started["start-capture"], "start-capture"), (logs["logs"], "logs")):
        assert result.status is StepStatus.FAILED and result.reason == "unframed-output", result
        assert "mp-cut" in result.message and step in result.message
    # And no tcpdump runs and no run dir is left on the host; no partial log is kept
    deadline = time.monotonic() + 5
    while running_captures([capture_dir]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not running_captures([capture_dir])
    assert not run_dirs([capture_dir])
    assert not (tmp_path / layout.host_file("mp-cut", layout.HOST_LOG)).exists()


def test_f19_bytes_changed_after_the_host_hashed_them_are_not_kept(hard_lab: HardLab, tmp_path: Path) -> None:
    # Given a host whose wrapper changes bytes of every output in transit
    host = hard_lab.host("mp-mangle")
    with _fleet(hard_lab, host, tmp_path / "stream") as fleet:
        # When the logs are streamed from it
        logs = _by_step(fleet.gather_logs(["rrt-z-1"]))
    # Then the log is refused for its sha256, and no altered file is kept
    assert logs["logs"].status is StepStatus.FAILED and logs["logs"].reason == "integrity", logs
    assert "mp-mangle" in logs["logs"].message and "sha256" in logs["logs"].message
    assert not (tmp_path / "stream" / layout.host_file("mp-mangle", layout.HOST_LOG_EXCERPT)).exists()

    # Given a healthy host whose capture file changes between the stop (which hashes it) and the fetch
    healthy = hard_lab.host("mp-chatty")
    staging = tmp_path / "sftp"
    with _fleet(hard_lab, healthy, staging) as fleet:
        fleet.start_captures([PEER], [], None, 60)
        _send_packets(healthy.address)
        handle = fleet._captures["mp-chatty"]
        connection = fleet._connections["mp-chatty"]
        # The stop and fetch halves of Fleet.stop_captures, apart:
        stopped = capture.stop_capture(connection, handle)
        with Path(stopped.files[0]).open("ab") as pcap:  # the host's file (the lab host is this machine)
            pcap.write(b"\0" * 16)
        # When it is fetched
        with pytest.raises(HostError) as caught:
            capture.fetch_capture(connection, stopped.files, staging / "capture.pcap", stopped.sha256)
        capture.remove_capture(connection, handle)
        fleet._captures.clear()
    # Then the fetch fails for integrity and the changed copy is not kept
    assert caught.value.reason == "integrity", caught.value
    assert not list(staging.glob("*capture.pcap*"))


def test_f20_an_mp_behind_two_bastions_with_requiretty_sudo_and_tcpdump_off_its_path(
    hard_lab: HardLab, tmp_path: Path
) -> None:
    # Given an MP reached through two jump hosts, whose sudo has `Defaults requiretty` and a secure_path that
    # leaves out where its tcpdump lives, and whose login shell is chatty
    first, second = hard_lab.hosts.host("mp-links"), hard_lab.hosts.host("mp-capdir")
    chain = f"{LAB_USER}@{first.address}:{first.port},{LAB_USER}@{second.address}:{second.port}"
    host = hard_lab.host("mp-chatty", proxy_jump=chain, user=TTY_USER, tcpdump=LAB_TCPDUMP)
    with _fleet(hard_lab, host, tmp_path) as fleet:
        # When the whole host-side collection runs there
        started = _by_step(fleet.start_captures([PEER], [], None, 60))
        _send_packets(host.address)
        stopped = _by_step(fleet.stop_captures())
        logs = _by_step(fleet.gather_logs(["rrt-z-1"]))
    # Then every step is ok, the capture holds the traffic, and nothing is left on the host
    for result in (started["start-capture"], stopped["stop-capture"], stopped["fetch-capture"], logs["logs"]):
        assert result.status is StepStatus.OK, result
    assert b"packet 0" in (tmp_path / layout.host_file("mp-chatty", layout.HOST_CAPTURE)).read_bytes()
    capture_dir = hard_lab.hosts.host("mp-chatty").capture_dir
    assert not run_dirs([capture_dir]) and not running_captures([capture_dir])


# --- H15: links in the log directory ---------------------------------------------------------------------


def test_h15_links_in_the_log_directory_are_never_followed(hard_lab: HardLab, tmp_path: Path) -> None:
    # Given a log directory owned by a non-root user who planted links next to system.log
    lab_host = hard_lab.hosts.host("mp-links")
    logs_dir = lab_host.system_log.parent
    secret = tmp_path / "secret"
    secret.write_text("root:$6$SHADOWHASH$:19000:0:99999:7:::\n")
    secret.chmod(0o600)
    big = Path(os.path.realpath(lab_host.root)) / "big.bin"
    with big.open("wb") as sparse:
        sparse.truncate(2 * 1024**3)  # 2 GiB
    (logs_dir / "system.log.1").symlink_to("/etc/shadow")
    (logs_dir / "system.log.2").symlink_to(big)
    hard = Path(os.path.realpath(lab_host.root)) / "hard-secret"
    shutil.copy(secret, hard)
    os.link(hard, logs_dir / "system.log.3")  # a second name of a root-only file
    os.mkfifo(logs_dir / "system.log.4")
    bomb = logs_dir / "system.log.5.gz"  # says 100 bytes in its trailer, inflates to 20 MB
    data = bytearray(gzip.compress(b"zebra\n" * 3_500_000))
    data[-4:] = (100).to_bytes(4, "little")
    bomb.write_bytes(bytes(data))
    lab = pwd.getpwnam(LAB_USER)
    for planted in (logs_dir / "system.log.5.gz",):
        os.chown(planted, lab.pw_uid, lab.pw_gid)
    host = hard_lab.host("mp-links")
    try:
        with _fleet(hard_lab, host, tmp_path / "out") as fleet:
            # When the logs are gathered (through sudo)
            logs = _by_step(fleet.gather_logs(["rrt-z-1"], budget_bytes=50_000_000))
    finally:
        for name in ("system.log.1", "system.log.2", "system.log.3", "system.log.4", "system.log.5.gz"):
            (logs_dir / name).unlink(missing_ok=True)
        big.unlink()
        hard.unlink()
    # Then the step is ok and says which files were refused and why
    result = logs["logs"]
    assert result.status is StepStatus.OK, result
    for name, why in (("system.log.1", "symbolic link to /etc/shadow"), ("system.log.2", "symbolic link"),
                      ("system.log.3", "hard link"), ("system.log.4", "not a regular file")):
        assert f"{name}: {why}" in result.message, result.message
    # And nothing behind a link is in what was fetched; the lying .gz yields no more than it declared
    log = gzip.decompress((tmp_path / "out" / layout.host_file("mp-links", layout.HOST_LOG)).read_bytes())
    shadow = Path("/etc/shadow").read_bytes()
    assert b"SHADOWHASH" not in log and shadow.split(b"\n")[0] not in log
    assert len(log) <= lab_host.system_log.stat().st_size + 100


# --- H16-H17: the capture directory and the run dir ------------------------------------------------------


def _capture_dir_variants(base: Path) -> dict[str, tuple[Path, str]]:
    """Unsafe capture dirs -> (path, words the refusal must hold)."""
    nosudo = pwd.getpwnam(NOSUDO_USER)
    foreign = base / "foreign"
    foreign.mkdir(mode=0o777)
    foreign.chmod(0o777)
    os.chown(foreign, nosudo.pw_uid, nosudo.pw_gid)
    open_dir = base / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    real = base / "real"
    real.mkdir()
    real.chmod(0o1777)
    (base / "link").symlink_to(real)
    inside = base / "parent-open"
    inside.mkdir()
    inside.chmod(0o777)
    (inside / "cap").mkdir()
    return {
        "owned-by-another-user": (foreign, "owned by uid"),
        "writable-without-sticky": (open_dir, "writable by others"),
        "symlink": (base / "link", "symbolic link"),
        "symlink-in-path": (base / "link" / ".", "symbolic link"),
        "parent-writable": (inside / "cap", "writable by others"),
    }


def test_h16_an_unsafe_capture_dir_is_refused_naming_host_and_step(hard_lab: HardLab, tmp_path: Path) -> None:
    base = Path(os.path.realpath(hard_lab.hosts.host("mp-capdir").root)) / "capdirs"
    base.mkdir()
    for variant, (capture_dir, words) in _capture_dir_variants(base).items():
        # Given a capture_dir another local user could use to swap the run dir
        host = hard_lab.host("mp-capdir", capture_dir=str(capture_dir))
        with _fleet(hard_lab, host, tmp_path / variant) as fleet:
            # When a capture is started there
            result = fleet.start_captures([PEER], [], None, 60)[0]
        # Then it is refused before anything is created, with a message naming the host, step and defect
        assert result.status is StepStatus.FAILED and result.reason == "capture-dir-unsafe", (variant, result)
        assert "mp-capdir" in result.message and "start-capture" in result.message, result.message
        assert words in result.message, (variant, result.message)
        assert not run_dirs([capture_dir]) and not running_captures([capture_dir]), variant
    shutil.rmtree(base)


def test_h17_a_run_dir_made_or_swapped_by_another_user_is_never_used(
    hard_lab: HardLab, tmp_path: Path
) -> None:
    lab_host = hard_lab.hosts.host("mp-capdir")
    capture_dir = Path(os.path.realpath(lab_host.capture_dir))
    nosudo = pwd.getpwnam(NOSUDO_USER)
    host = hard_lab.host("mp-capdir")

    # Given another user who created this run's directory before the run (the name is predictable)
    with _fleet(hard_lab, host, tmp_path / "pre") as fleet:
        planted = Path(commands.run_dir(str(capture_dir), fleet.run_id, "mp-capdir"))
        planted.mkdir()
        os.chown(planted, nosudo.pw_uid, nosudo.pw_gid)
        (planted / "pid").write_text("1\n")
        # When the capture starts
        result = fleet.start_captures([PEER], [], None, 60)[0]
    # Then it is refused, and the other user's directory is neither used nor removed
    assert result.status is StepStatus.FAILED and result.reason == "run-dir-exists", result
    assert "mp-capdir" in result.message and planted.is_dir()
    assert not running_captures([capture_dir])
    shutil.rmtree(planted)

    # Given a running capture whose run dir is renamed away and replaced by someone else's pcap and pid file
    decoy = subprocess.Popen(["sleep", "300"], user=nosudo.pw_uid)
    try:
        with _fleet(hard_lab, host, tmp_path / "swap") as fleet:
            assert fleet.start_captures([PEER], [], None, 60)[0].status is StepStatus.OK
            real = Path(fleet._captures["mp-capdir"].directory)
            moved = real.with_name(real.name + "-moved")
            real.rename(moved)
            real.mkdir(mode=0o700)
            (real / "capture.pcap").write_bytes(b"\xd4\xc3\xb2\xa1 attacker's capture")
            (real / "pid").write_text(f"{decoy.pid}\n")
            # When the capture is stopped and fetched
            stopped = _by_step(fleet.stop_captures())
        # Then the stop refuses the replaced run dir; nothing of the other user's is fetched or killed
        assert stopped["stop-capture"].status is StepStatus.FAILED, stopped
        assert stopped["stop-capture"].reason == "run-dir-changed", stopped
        assert "fetch-capture" not in stopped
        assert not (tmp_path / "swap" / layout.host_file("mp-capdir", layout.HOST_CAPTURE)).exists()
        assert decoy.poll() is None
        # And the real tcpdump (found by the pid the start reported) is stopped, and its moved dir removed
        deadline = time.monotonic() + 5
        while running_captures([capture_dir]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not running_captures([capture_dir])
        assert not moved.exists() and not real.exists()
    finally:
        decoy.kill()
        decoy.wait()

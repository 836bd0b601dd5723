"""Lab SSH hosts: one real OpenSSH sshd per simulated host on its own 127.x address, faults on demand."""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

import yaml

SSHD = "/usr/sbin/sshd"
LAB_USER = "collector-lab"  # passwordless sudo
NOSUDO_USER = "collector-nosudo"  # no sudo rights at all ("sudo denied")
PASSWORD_USER = "collector-sudopw"  # sudo asks for a password
PASSWORD = "lab-sudo-Pw-1"  # the password of PASSWORD_USER (a throw-away lab account)
# An odd host's sudo: `Defaults requiretty`, and a secure_path without /usr/local/sbin, where the lab puts
# LAB_TCPDUMP (a tcpdump outside the PATH sudo gives, as /usr/sbin is on hosts that leave it out).
TTY_USER = "collector-tty"
LAB_TCPDUMP = "collector-lab-tcpdump"
_TTY_SUDOERS = Path("/etc/sudoers.d/collector-lab-tty")  # its own file: other labs rewrite collector-lab
_LAB_TCPDUMP_PATH = Path("/usr/local/sbin") / LAB_TCPDUMP
SYSTEM_LOG = "opt/apigee/var/log/edge-message-processor/logs/system.log"
_SUDOERS = Path("/etc/sudoers.d/collector-lab")
_USER_LOCK = Path("/run/collector-lab-users.lock")
_ROOTS_BASE = Path("/tmp/collector-lab-roots")
_READY_SECONDS = 10.0


@dataclass(frozen=True)
class SshHostSpec:
    """What the lab should simulate: a host name, its 127.0.0.x address, role and file-system root."""

    name: str
    address: str
    role: str  # "message-processor" | "backend"
    root: Path
    #: a chatty login shell: an `echo` in .bashrc prints a banner on stdout and stderr before every command,
    #: and an EXIT trap after it (bash sources ~/.bashrc for commands run by sshd; HOME is this host's own)
    shell_banner: bool = False
    #: sshd's ForceCommand (a wrapper between sshd and our commands; $SSH_ORIGINAL_COMMAND holds ours)
    force_command: str | None = None


BANNER = "*** Authorized use only: lab host banner ***"


@dataclass(frozen=True)
class LabSshHost:
    """A running lab host; `root` stands in for `/` (system.log and capture dir live inside it)."""

    name: str
    address: str
    port: int
    role: str
    root: Path

    @property
    def system_log(self) -> Path:
        return self.root / SYSTEM_LOG

    @property
    def capture_dir(self) -> Path:
        return self.root / "tmp"


@dataclass
class SshHosts:
    """The running lab hosts, the client key and a known_hosts file trusting them; stop() is idempotent."""

    hosts: tuple[LabSshHost, ...]
    client_key: Path
    known_hosts: Path
    workdir: Path
    user: str = LAB_USER
    nosudo_user: str = NOSUDO_USER
    tty_user: str = TTY_USER
    password_user: str = PASSWORD_USER
    sudo_password: str = PASSWORD
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    _mounts: list[Path] = field(default_factory=list, repr=False)
    _storage: Path | None = field(default=None, repr=False)

    def host(self, name: str) -> LabSshHost:
        return next(h for h in self.hosts if h.name == name)

    def write_inventory(
        self, path: Path, overrides: Mapping[str, Mapping[str, object]] | None = None
    ) -> Path:
        """Our YAML inventory for these hosts; `overrides` replaces per-host keys (user, tcpdump, ...)."""
        hosts: dict[str, dict[str, object]] = {}
        for h in self.hosts:
            entry: dict[str, object] = {
                "address": h.address,
                "port": h.port,
                "role": h.role,
                "system_log": str(h.system_log),
                "capture_dir": str(h.capture_dir),
            }
            entry.update((overrides or {}).get(h.name, {}))
            hosts[h.name] = entry
        document = {
            "defaults": {"user": self.user, "identity_file": str(self.client_key), "sudo": True},
            "hosts": hosts,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def write_known_hosts_with_wrong_key(self, path: Path, names: Sequence[str]) -> Path:
        """A known_hosts where the hosts in `names` carry a different (fresh) key: a host-key mismatch."""
        wrong = _keygen(self.workdir / "wrong_host_key")
        wrong_public = (wrong.with_suffix(".pub")).read_text().split()[:2]
        lines = []
        for h in self.hosts:
            if h.name in names:
                lines.append(f"[{h.address}]:{h.port} {' '.join(wrong_public)}")
        for line in self.known_hosts.read_text().splitlines():
            if not any(line.startswith(f"[{h.address}]:{h.port} ") for h in self.hosts if h.name in names):
                lines.append(line)
        path.write_text("\n".join(lines) + "\n")
        return path

    def wrong_client_key(self) -> Path:
        """A key pair that no lab host authorizes ("auth refused")."""
        return _keygen(self.workdir / "wrong_client_key")

    def fill_capture_dir(self, name: str, size_kib: int = 64) -> Path:
        """Mount a tiny tmpfs on the host's capture dir and fill it: a capture there then finds no space."""
        target = self.host(name).capture_dir
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=1777", "tmpfs", str(target)],
            check=True,
            capture_output=True,
        )
        self._mounts.append(target)
        descriptor = os.open(target / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while os.write(descriptor, b"\0" * 4096):
                pass
        except OSError:
            pass  # ENOSPC: full, as wanted
        finally:
            os.close(descriptor)
        return target

    def stop_host(self, name: str) -> None:
        """Stop one host's sshd (the host is then "down": connection refused)."""
        proc = self._procs.pop(name, None)
        if proc is not None:
            _terminate(proc)

    def stop(self) -> None:
        for name in list(self._procs):
            self.stop_host(name)
        while self._mounts:
            target = self._mounts.pop()
            subprocess.run(["umount", "-l", str(target)], capture_output=True)
        if self._storage is not None:
            shutil.rmtree(self._storage, ignore_errors=True)
            self._storage = None

    def __enter__(self) -> SshHosts:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def assert_run_left_nothing(hosts: Sequence[LabSshHost], run_id: str) -> None:
    """No run dir of `run_id` on any host, and no process (tcpdump, its `timeout`, a shell) still naming it:
    what every way of driving the host steps (the run, the playbook, the Fabric tasks) must leave behind."""
    for host in hosts:
        assert not list(Path(host.capture_dir).resolve().glob(f"apigee-collector-{run_id}*")), host.name
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            assert run_id.encode() not in cmdline, cmdline


def start_ssh_hosts(
    workdir: Path, specs: Sequence[SshHostSpec], *, max_startups: str = "100:30:200"
) -> SshHosts:
    """Start one sshd per spec, wait for each banner, return the running hosts (all stopped on failure).

    `max_startups` is sshd's MaxStartups (raised by default; lower it to test connection storms)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ensure_lab_users()
    client_key = _keygen(workdir / "client_key")
    authorized = workdir / "authorized_keys"
    authorized.write_text(client_key.with_suffix(".pub").read_text())
    authorized.chmod(0o644)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    known_lines: list[str] = []
    hosts = SshHosts(hosts=(), client_key=client_key, known_hosts=workdir / "known_hosts", workdir=workdir)
    started: list[LabSshHost] = []
    try:
        for spec in specs:
            spec = replace(spec, root=_place_root(spec.root, hosts))
            _prepare_root(spec)
            host, proc, public = _start_sshd(workdir / "sshd" / spec.name, spec, authorized, max_startups)
            hosts._procs[spec.name] = proc
            started.append(host)
            known_lines.append(f"[{host.address}]:{host.port} {public}")
    except BaseException:
        hosts.stop()
        raise
    hosts.hosts = tuple(started)
    hosts.known_hosts.write_text("\n".join(known_lines) + "\n")
    return hosts


def ensure_lab_users() -> None:
    """Create the lab users and the sudoers rule once per machine (idempotent and safe across processes)."""
    _USER_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with _USER_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for user in (LAB_USER, NOSUDO_USER, PASSWORD_USER):
            if not _user_exists(user):
                subprocess.run(
                    ["useradd", "--create-home", "--shell", "/bin/bash", user],
                    check=True,
                    capture_output=True,
                )
        # '*' (not '!'): no password login, but not "locked" for public-key logins either.
        subprocess.run(["usermod", "-p", "*", LAB_USER], check=True, capture_output=True)
        subprocess.run(["usermod", "-p", "*", NOSUDO_USER], check=True, capture_output=True)
        subprocess.run(
            ["chpasswd"], input=f"{PASSWORD_USER}:{PASSWORD}\n".encode(), check=True, capture_output=True
        )
        rules = (
            f"{LAB_USER} ALL=(ALL) NOPASSWD: ALL\n"
            f"{PASSWORD_USER} ALL=(ALL) ALL\n"
            f"Defaults:{PASSWORD_USER} !lecture, passwd_tries=1\n"
        )
        _install_sudoers(_SUDOERS, rules)
        _ensure_tty_user()


def _install_sudoers(target: Path, rules: str) -> None:
    if not target.exists() or target.read_text() != rules:
        staging = target.with_name("." + target.name + ".tmp")
        staging.write_text(rules)
        staging.chmod(0o440)
        subprocess.run(["visudo", "-cq", "-f", str(staging)], check=True, capture_output=True)
        staging.rename(target)


def _ensure_tty_user() -> None:
    """The odd host's login user (requiretty, short secure_path) and the tcpdump outside that path."""
    if not _user_exists(TTY_USER):
        subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/bash", TTY_USER], check=True, capture_output=True
        )
    subprocess.run(["usermod", "-p", "*", TTY_USER], check=True, capture_output=True)
    _install_sudoers(
        _TTY_SUDOERS,
        f"{TTY_USER} ALL=(ALL) NOPASSWD: ALL\n"
        f"Defaults:{TTY_USER} requiretty\n"
        f'Defaults:{TTY_USER} secure_path="/usr/bin:/bin"\n',
    )
    wrapper = f"#!/bin/sh\nexec {shutil.which('tcpdump') or '/usr/bin/tcpdump'} \"$@\"\n"
    if not _LAB_TCPDUMP_PATH.exists() or _LAB_TCPDUMP_PATH.read_text() != wrapper:
        _LAB_TCPDUMP_PATH.parent.mkdir(parents=True, exist_ok=True)
        staging = _LAB_TCPDUMP_PATH.with_name("." + LAB_TCPDUMP + ".tmp")
        staging.write_text(wrapper)
        staging.chmod(0o755)
        staging.rename(_LAB_TCPDUMP_PATH)


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def _place_root(root: Path, hosts: SshHosts) -> Path:
    """Where a host's files really live. pytest keeps resetting its basetemp to 0700, which would lock the lab
    users out of roots inside it; so the root is a symlink to a world-traversable directory outside it
    (removed by stop()). A root that already exists with content is used as it is."""
    if root.is_symlink():
        return root.resolve()
    if root.is_dir() and any(root.iterdir()):
        return root
    _ROOTS_BASE.mkdir(mode=0o755, parents=True, exist_ok=True)
    _ROOTS_BASE.chmod(0o755)
    if hosts._storage is None:
        hosts._storage = Path(tempfile.mkdtemp(prefix="lab-", dir=_ROOTS_BASE))
        hosts._storage.chmod(0o755)
    storage = hosts._storage / root.name
    storage.mkdir(mode=0o755, exist_ok=True)
    if root.is_dir():
        root.rmdir()
    root.parent.mkdir(parents=True, exist_ok=True)
    root.symlink_to(storage, target_is_directory=True)
    return storage


def _prepare_root(spec: SshHostSpec) -> None:
    """Make the root usable by lab users: system.log readable, capture dir writable, parents traversable."""
    log_dir = spec.root / SYSTEM_LOG
    log_dir.parent.mkdir(parents=True, exist_ok=True)
    (spec.root / "tmp").mkdir(parents=True, exist_ok=True)
    (spec.root / "tmp").chmod(0o1777)
    lab = pwd.getpwnam(LAB_USER)
    for path in (spec.root, *[p for p in log_dir.parents if spec.root in p.parents]):
        os.chown(path, lab.pw_uid, lab.pw_gid)
    # Parents of the root (e.g. pytest's 0700 tmp dirs) must be traversable for SFTP as the lab user.
    for parent in spec.root.resolve().parents:
        mode = parent.stat().st_mode
        if mode & 0o001 == 0:
            parent.chmod(mode | 0o011)


def _banner_home(spec: SshHostSpec) -> Path:
    """The HOME of a `shell_banner` host, whose .bashrc prints before the command and (EXIT trap) after it."""
    home = spec.root / "home"
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)
    script = home / ".bashrc"
    script.write_text(
        f'echo "{BANNER}"\n'
        f'echo "{BANNER} (stderr)" >&2\n'
        "trap 'echo \"Goodbye from $(hostname)\"; echo bye >&2' EXIT\n"
    )
    script.chmod(0o644)
    return home


def _keygen(path: Path) -> Path:
    for stale in (path, path.with_suffix(".pub")):
        stale.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    path.chmod(0o600)
    return path


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _start_sshd(
    directory: Path, spec: SshHostSpec, authorized: Path, max_startups: str
) -> tuple[LabSshHost, subprocess.Popen[bytes], str]:
    directory.mkdir(parents=True, exist_ok=True)
    host_key = _keygen(directory / "host_ed25519")
    public = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
    last_error = ""
    for _attempt in range(5):
        port = _free_port(spec.address)
        config = directory / "sshd_config"
        extra = ""
        if spec.shell_banner:
            extra += f"SetEnv HOME={_banner_home(spec)}\n"
        if spec.force_command:
            extra += f"ForceCommand {spec.force_command}\n"
        config.write_text(
            f"ListenAddress {spec.address}:{port}\n"
            f"HostKey {host_key}\n"
            f"PidFile {directory / 'sshd.pid'}\n"
            "AuthorizedKeysFile none\n"
            f"AuthorizedKeysCommand /bin/cat {authorized}\n"
            "AuthorizedKeysCommandUser root\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin no\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "Subsystem sftp internal-sftp\n"
            f"MaxStartups {max_startups}\n"
            "MaxSessions 50\n"
            "LogLevel VERBOSE\n" + extra
        )
        subprocess.run([SSHD, "-t", "-f", str(config)], check=True, capture_output=True)
        proc = subprocess.Popen(
            [SSHD, "-D", "-f", str(config), "-E", str(directory / "sshd.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if _wait_banner(spec.address, port, proc):
            host = LabSshHost(name=spec.name, address=spec.address, port=port, role=spec.role, root=spec.root)
            return host, proc, public
        _terminate(proc)
        log = directory / "sshd.log"
        last_error = log.read_text() if log.exists() else "no log"
    raise RuntimeError(f"sshd for {spec.name} on {spec.address} did not start: {last_error}")


def _wait_banner(address: str, port: int, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + _READY_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((address, port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-2.0"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


__all__ = ["SshHostSpec", "LabSshHost", "SshHosts", "start_ssh_hosts", "ensure_lab_users"]


def child_pids(parent: int) -> list[int]:
    """PIDs whose parent is `parent`, read from /proc (e.g. the per-connection sshd processes of a host)."""
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

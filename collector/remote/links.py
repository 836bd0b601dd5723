"""Opening an SSH link to one host (Fabric/paramiko): verified host keys, ProxyJump chains, errors mapped."""

from __future__ import annotations

import fcntl
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import fabric
import invoke
import paramiko

from collector.errors import RemoteError
from collector.inventory import InventoryHost

KEEPALIVE_SECONDS = 15
_CONNECT_ATTEMPTS = 5  # banner errors: sshd's MaxStartups drops connections beyond its limit


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


def fingerprint(key: paramiko.PKey) -> str:
    """The key's OpenSSH-style SHA256 fingerprint (what `ssh-keygen -lf` prints)."""
    return f"{key.get_name()} {key.fingerprint}"


def connect(
    host: InventoryHost, settings: ConnectionSettings, audit: Callable[[str], None]
) -> fabric.Connection:
    started = time.monotonic()
    last: HostError | None = None
    _check_identity_file(host)
    for attempt in range(_CONNECT_ATTEMPTS):
        try:
            connection = _build_connection(host, settings)
        except HostError as e:
            audit(f"{now()} connect failed: {e.problem}")
            raise
        try:
            connection.open()
            assert connection.transport is not None
            connection.transport.set_keepalive(KEEPALIVE_SECONDS)
            audit(
                f"{now()} connected {host.user}@{host.address}:{host.port} in "
                f"{time.monotonic() - started:.3f} s"
            )
            return connection
        except BaseException as e:  # noqa: BLE001 - mapped below, or re-raised untouched
            close_chain(connection)
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
    audit(f"{now()} connect failed: {last.problem}")
    raise last


def open_given(
    connection: fabric.Connection,
    host: InventoryHost,
    settings: ConnectionSettings,
    audit: Callable[[str], None],
    accept_new_hint: str = "pass --accept-new-host-keys",
) -> fabric.Connection:
    """Open a connection built elsewhere (a Fabric task's, from the operator's Fabric and ssh config), with
    `connect`'s host-key checks on it and on every jump host, and its failures mapped like `connect`'s.

    Fabric itself accepts any host key (AutoAddPolicy, no known_hosts): here an unknown key is refused, or
    remembered with `settings.accept_new_host_keys`, and a changed key is always refused. `accept_new_hint`
    says how this caller's user accepts a new key.
    """
    started = time.monotonic()
    hop: object = connection
    while isinstance(hop, fabric.Connection):
        _harden(hop, settings, host.name)
        hop = hop.gateway
    try:
        connection.open()
    except BaseException as e:  # noqa: BLE001 - mapped below, or re-raised untouched
        close_chain(connection)
        error = _map_connect_error(host, settings, e, accept_new_hint)
        if error is None:
            raise
        if error.reason == "banner":
            error = HostError(host.name, "connect", "unreachable", error.detail)
        audit(f"{now()} connect failed: {error.problem}")
        raise error from e
    assert connection.transport is not None
    connection.transport.set_keepalive(KEEPALIVE_SECONDS)
    audit(f"{now()} connected {host.user}@{host.address}:{host.port} in {time.monotonic() - started:.3f} s")
    return connection


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def close_chain(connection: fabric.Connection) -> None:
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
    host: InventoryHost,
    settings: ConnectionSettings,
    e: BaseException,
    accept_new_hint: str = "pass --accept-new-host-keys",
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
            f"verify it and add it, or {accept_new_hint}",
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



"""The hosts of a run and their checks: one InventoryHost per host, ~/.ssh/config aliases resolved."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from collector.errors import InputError

ROLE_MESSAGE_PROCESSOR = "message-processor"
ROLE_BACKEND = "backend"
ROLES = (ROLE_MESSAGE_PROCESSOR, ROLE_BACKEND)
DEFAULT_SYSTEM_LOG = "/opt/apigee/var/log/edge-message-processor/logs/system.log"
DEFAULT_USER = "apigee"
DEFAULT_CAPTURE_DIR = "/tmp"
ANSIBLE_GROUPS = {"message_processors": ROLE_MESSAGE_PROCESSOR, "backends": ROLE_BACKEND}

HOST_KEYS = (
    "address",
    "role",
    "port",
    "user",
    "identity_file",
    "sudo",
    "system_log",
    "capture_dir",
    "proxy_jump",
    "tcpdump",
)
DEFAULT_KEYS = tuple(k for k in HOST_KEYS if k not in ("address", "role"))
_ADDRESS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:%-]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Ansible's booleans (y/t/n/f too), so `ansible_become=y` means what it means to Ansible.
_TRUE = {"true", "yes", "1", "on", "y", "t"}
_FALSE = {"false", "no", "0", "off", "n", "f"}


@dataclass(frozen=True)
class InventoryHost:
    """One host the collector logs in to.

    Attributes:
        name: inventory name (used for the bundle's `hosts/NAME/` folder and in every message).
        address: IP address or DNS name to connect to (an ~/.ssh/config alias is resolved already).
        port: SSH port.
        user: login user.
        identity_file: private key file; `None` uses the SSH agent and the default keys.
        sudo: whether privileged steps (tcpdump, reading logs) run under sudo.
        role: `message-processor` or `backend`.
        system_log: the MP's system.log path (rotated files sit beside it).
        capture_dir: where captures are written on the host.
        proxy_jump: the jump hosts, first hop first: `[user@]host[:port]` joined by commas (ssh's ProxyJump,
            with ssh config aliases resolved), or `None` to connect directly.
        tcpdump: the tcpdump command to run (a name looked up in sudo's PATH, or an absolute path).
    """

    name: str
    address: str
    port: int = 22
    user: str = DEFAULT_USER
    identity_file: str | None = None
    sudo: bool = True
    role: str = ROLE_MESSAGE_PROCESSOR
    system_log: str = DEFAULT_SYSTEM_LOG
    capture_dir: str = DEFAULT_CAPTURE_DIR
    proxy_jump: str | None = None
    tcpdump: str = "tcpdump"


@dataclass(frozen=True)
class Inventory:
    """The hosts of one run; `source` names the file they came from (empty when discovered)."""

    hosts: tuple[InventoryHost, ...]
    source: str = field(default="", compare=False)

    @property
    def message_processors(self) -> tuple[InventoryHost, ...]:
        return tuple(h for h in self.hosts if h.role == ROLE_MESSAGE_PROCESSOR)

    @property
    def backends(self) -> tuple[InventoryHost, ...]:
        return tuple(h for h in self.hosts if h.role == ROLE_BACKEND)


def hosts_from_addresses(
    addresses: Sequence[str], role: str, defaults: Mapping[str, object] | None = None
) -> tuple[InventoryHost, ...]:
    """Hosts discovered from the management API (or given with --backend): named after their address."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {ROLES}")
    hosts = []
    for address in dict.fromkeys(addresses):
        values = dict(defaults or {})
        values.update(address=address, role=role)
        hosts.append(build_host(Path("<discovered>"), address, values, None))
    return tuple(hosts)


# --- building and checking a host -----------------------------------------------------------------


def load_ssh_config(inventory: Path, explicit: Path | None) -> paramiko.SSHConfig | None:
    candidate = explicit if explicit is not None else Path.home() / ".ssh" / "config"
    if not candidate.is_file():
        if explicit is not None:
            raise InputError(explicit, "ssh config file not found")
        return None
    try:
        return paramiko.SSHConfig.from_path(str(candidate))
    except (OSError, paramiko.ConfigParseError) as e:
        raise InputError(candidate, f"cannot parse the ssh config: {e}") from e


def _apply_ssh_config(values: dict[str, object], config: paramiko.SSHConfig | None) -> None:
    """Fill what the inventory did not set for the host (or its Ansible groups) from the ssh config entry
    matching the address as ssh would (HostName, Port, User, IdentityFile, ProxyJump); `defaults:` lose."""
    if config is None:
        return
    alias = str(values["address"])
    entry = config.lookup(alias)
    if set(entry) <= {"hostname"} and entry.get("hostname", alias) == alias:
        return  # no Host pattern matched
    explicit = values.get("_explicit", set())
    assert isinstance(explicit, set)
    mapping = {"hostname": "address", "port": "port", "user": "user", "proxyjump": "proxy_jump"}
    for option, key in mapping.items():
        if option in entry and (key == "address" or key not in explicit):
            values[key] = entry[option]
    if "identityfile" in entry and "identity_file" not in explicit:
        values["identity_file"] = entry["identityfile"][0]


def build_host(
    path: Path, name: str, values: Mapping[str, object], config: paramiko.SSHConfig | None
) -> InventoryHost:
    values = dict(values)
    if not _NAME.match(name):
        raise InputError(path, f"host {name!r}: name may hold only letters, digits, '.', '_' and '-'")
    if not values.get("address"):
        raise InputError(path, f"host {name}: no address")
    _apply_ssh_config(values, config)
    address = str(values["address"])
    if not _ADDRESS.match(address):
        raise InputError(path, f"host {name}: address {address!r} is not a host name or IP address")
    role = values.get("role")
    if role not in ROLES:
        raise InputError(path, f"host {name}: role {role!r} is not one of {', '.join(ROLES)}")
    return InventoryHost(
        name=name,
        address=address,
        port=_port(path, name, values.get("port", 22)),
        user=_text(path, name, "user", values.get("user", DEFAULT_USER)),
        identity_file=_optional_text(path, name, "identity_file", values.get("identity_file")),
        sudo=_flag(path, name, values.get("sudo", True)),
        role=str(role),
        system_log=_absolute(path, name, "system_log", values.get("system_log", DEFAULT_SYSTEM_LOG)),
        capture_dir=_absolute(path, name, "capture_dir", values.get("capture_dir", DEFAULT_CAPTURE_DIR)),
        proxy_jump=_resolve_jumps(
            path, name, _optional_text(path, name, "proxy_jump", values.get("proxy_jump")), config
        ),
        tcpdump=_text(path, name, "tcpdump", values.get("tcpdump", "tcpdump")),
    )


_JUMP = re.compile(r"^(?:([^@\s,]+)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9._%-]*)(?::(\d{1,5}))?$")
_MAX_JUMPS = 8


def _resolve_jumps(
    path: Path, name: str, jumps: str | None, config: paramiko.SSHConfig | None, depth: int = 0
) -> str | None:
    """A ProxyJump chain with each hop's ssh config alias resolved (HostName, Port, User) and an alias's own
    ProxyJump put in front of it, as ssh does; `none` (ssh's "no jump") is None."""
    if jumps is None or jumps.strip().lower() == "none":
        return None
    resolved: list[str] = []
    for hop in (part.strip() for part in jumps.split(",")):
        match = _JUMP.match(hop)
        if not match or not 1 <= int(match.group(3) or 22) <= 65535:
            raise InputError(path, f"host {name}: proxy_jump hop {hop!r} is not [user@]host[:port]")
        user, address, port = match.group(1), match.group(2), match.group(3)
        entry = config.lookup(address) if config is not None else {}
        if entry.get("hostname", address) != address or set(entry) - {"hostname"}:
            if "proxyjump" in entry and depth < _MAX_JUMPS:
                before = _resolve_jumps(path, name, entry["proxyjump"], config, depth + 1)
                resolved += before.split(",") if before else []
            elif "proxyjump" in entry:
                raise InputError(path, f"host {name}: proxy_jump nests more than {_MAX_JUMPS} aliases deep")
            address = entry.get("hostname", address)
            user = user or entry.get("user")
            port = port or entry.get("port")
        host = address if address.startswith("[") or ":" not in address else f"[{address}]"
        resolved.append(f"{user + '@' if user else ''}{host}{':' + str(port) if port else ''}")
    if len(resolved) > _MAX_JUMPS:
        raise InputError(path, f"host {name}: proxy_jump has more than {_MAX_JUMPS} hops")
    return ",".join(resolved)


def _port(path: Path, name: str, value: object) -> int:
    try:
        port = int(str(value))
    except ValueError:
        port = 0
    if isinstance(value, bool) or not 1 <= port <= 65535:
        raise InputError(path, f"host {name}: port {value!r} is not a number from 1 to 65535")
    return port


def _flag(path: Path, name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in _TRUE:
        return True
    if str(value).lower() in _FALSE:
        return False
    raise InputError(path, f"host {name}: sudo {value!r} is not true or false")


def _text(path: Path, name: str, key: str, value: object) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value):
        raise InputError(path, f"host {name}: {key} {value!r} must be a non-empty string")
    return str(value)


def _optional_text(path: Path, name: str, key: str, value: object) -> str | None:
    return None if value is None else _text(path, name, key, value)


def _absolute(path: Path, name: str, key: str, value: object) -> str:
    text = _text(path, name, key, value)
    if not text.startswith("/"):
        raise InputError(path, f"host {name}: {key} {text!r} must be an absolute path")
    return text

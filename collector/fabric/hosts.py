"""A Fabric task's host as the host steps see it: the inventory host, how to reach it, where its files are.

Fabric names the hosts (`-H mp1,mp2`: an ssh config alias is best, its folder in the collection is
`hosts/mp1/`) and connects the way the team's Fabric and ssh config say (user, port, keys, ProxyJump). What
Fabric has no word for comes from the `collector:` section of the Fabric config (fabric.yaml beside the
fabfile or in the current directory, ~/.fabric.yaml, or `-f FILE`), for all hosts or per host:

    collector:
      out: /var/tmp/apigee-raw        # the raw collection (default ./apigee-raw)
      capture_dir: /var/tmp           # where tcpdump writes on the host (default /tmp)
      hosts:
        be1: {role: backend}          # role: message-processor (default) or backend
        mp3: {system_log: /data/apigee/var/log/edge-message-processor/logs/system.log}

Keys per host or global: role, capture_dir, system_log, tcpdump, sudo (default true). Global only:
known_hosts, accept_new_host_keys, out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fabric

from collector.errors import UsageError
from collector.inventory import (
    DEFAULT_CAPTURE_DIR,
    DEFAULT_SYSTEM_LOG,
    ROLE_BACKEND,
    ROLE_MESSAGE_PROCESSOR,
    InventoryHost,
)
from collector.remote.links import ConnectionSettings

CONFIG_SECTION = "collector"
HOST_KEYS = ("role", "capture_dir", "system_log", "tcpdump", "sudo")
ROLE_WORDS = {
    "mp": ROLE_MESSAGE_PROCESSOR,
    "message-processor": ROLE_MESSAGE_PROCESSOR,
    "message_processor": ROLE_MESSAGE_PROCESSOR,
    "backend": ROLE_BACKEND,
}
CONNECT_TIMEOUT_SECONDS = 10  # when Fabric's own (-t, timeouts.connect, ConnectTimeout) is not set
# How a fab user accepts a host key the known_hosts file lacks (links.py names the collector's flag).
ACCEPT_NEW_HINT = "set `StrictHostKeyChecking accept-new` for it in the ssh config (-S FILE)"


def collector_config(config: Any) -> dict[str, Any]:
    """The `collector:` section of a Fabric config, as plain data ({} when absent)."""
    section = config.get(CONFIG_SECTION)
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise UsageError(f"the Fabric config's {CONFIG_SECTION!r} must be a mapping, not {section!r}")
    return _plain(section)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def host_settings(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The host keys for `name`: the section's own, then those under `hosts.NAME`."""
    merged = {k: config[k] for k in HOST_KEYS if config.get(k) is not None}
    hosts = config.get("hosts") or {}
    if not isinstance(hosts, Mapping):
        raise UsageError(f"{CONFIG_SECTION}.hosts in the Fabric config must map host names to settings")
    own = hosts.get(name) or {}
    if not isinstance(own, Mapping):
        raise UsageError(f"{CONFIG_SECTION}.hosts.{name} in the Fabric config must be a mapping")
    merged.update({k: own[k] for k in HOST_KEYS if own.get(k) is not None})
    return merged


def parse_role(text: str) -> str:
    role = ROLE_WORDS.get(str(text).strip().lower())
    if role is None:
        raise UsageError(f"role {text!r}: say message-processor (mp) or backend")
    return role


def host_name(connection: fabric.Connection) -> str:
    """What `-H` said for the host (an ssh config alias, or the address itself)."""
    return str(connection.original_host)


def inventory_host(connection: fabric.Connection, role: str, settings: Mapping[str, Any]) -> InventoryHost:
    """The host as the host steps take it: Fabric's resolved address, port and user; the rest from `settings`
    (host_settings). The key file is kept only so that a dropped link can be opened again."""
    keys = connection.connect_kwargs.get("key_filename")
    identity = keys if isinstance(keys, str) else (keys[0] if keys else None)
    return InventoryHost(
        name=host_name(connection),
        address=str(connection.host),
        port=int(connection.port),
        user=str(connection.user),
        identity_file=str(identity) if identity else None,
        sudo=_flag(settings.get("sudo", True), "sudo"),
        role=role,
        system_log=_path(settings.get("system_log", DEFAULT_SYSTEM_LOG), "system_log"),
        capture_dir=_path(settings.get("capture_dir", DEFAULT_CAPTURE_DIR), "capture_dir"),
        tcpdump=str(settings.get("tcpdump") or "tcpdump"),
    )


def connection_settings(connection: fabric.Connection, config: Mapping[str, Any]) -> ConnectionSettings:
    """Host keys are checked against the section's known_hosts, else the ssh config's UserKnownHostsFile for
    the host, else ~/.ssh/known_hosts. A new key is accepted (and remembered) only when the section says
    accept_new_host_keys or the ssh config says StrictHostKeyChecking accept-new (or no: still never a changed
    key). sudo runs as `sudo -n` unless Fabric's sudo.password is set (--prompt-for-sudo-password)."""
    ssh = connection.ssh_config
    files = str(ssh.get("userknownhostsfile", "")).split()  # ssh reads several; the first is written to
    known = config.get("known_hosts") or (files[0] if files else None)
    strict = str(ssh.get("stricthostkeychecking", "")).lower()
    accept_new = _flag(config.get("accept_new_host_keys", False), "accept_new_host_keys") \
        or strict in ("accept-new", "no", "off")
    timeout = connection.connect_timeout or CONNECT_TIMEOUT_SECONDS
    password = connection.config.sudo.password
    return ConnectionSettings(
        known_hosts=Path(str(known)).expanduser() if known else None,
        accept_new_host_keys=accept_new,
        connect_timeout=float(timeout),
        sudo_password=str(password) if password else None,
    )


def _flag(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "yes", "1"):
        return True
    if str(value).lower() in ("false", "no", "0"):
        return False
    raise UsageError(f"{CONFIG_SECTION}.{key} in the Fabric config must be true or false, not {value!r}")


def _path(value: Any, key: str) -> str:
    text = str(value)
    if not text.startswith("/"):
        raise UsageError(f"{CONFIG_SECTION}.{key} {text!r}: give an absolute path on the host")
    return text

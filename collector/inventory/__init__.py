"""Hosts and roles: our YAML, Ansible inventories (through the operator's ansible-inventory when it is there,
else the built-in reader), ~/.ssh/config aliases, discovered MPs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import paramiko

from collector.errors import InputError
from collector.inventory.ansible_files import looks_like_ini, read_ansible_inventory
from collector.inventory.ansible_inventory import TIMEOUT_SECONDS, find_ansible_inventory, read_with_ansible
from collector.inventory.documents import parse_yaml
from collector.inventory.groups import compare_readers, role_hosts
from collector.inventory.hosts import (
    ANSIBLE_GROUPS,
    DEFAULT_CAPTURE_DIR,
    DEFAULT_SYSTEM_LOG,
    DEFAULT_USER,
    ROLE_BACKEND,
    ROLE_MESSAGE_PROCESSOR,
    ROLES,
    Inventory,
    InventoryHost,
    build_host,
    hosts_from_addresses,
    load_ssh_config,
)
from collector.inventory.own_yaml import is_own_yaml, parse_own_yaml

__all__ = [
    "ANSIBLE_GROUPS", "DEFAULT_CAPTURE_DIR", "DEFAULT_SYSTEM_LOG", "DEFAULT_USER", "FIND", "ROLES",
    "ROLE_BACKEND", "ROLE_MESSAGE_PROCESSOR", "Inventory", "InventoryHost", "find_ansible_inventory",
    "hosts_from_addresses", "load_inventory",
]

_OWN_KEYS = re.compile(r"^(?:hosts|defaults):", re.MULTILINE)
FIND = "find"  # load_inventory's default: look for ansible-inventory (find_ansible_inventory)
_NO_HOSTS = (
    "no hosts (our YAML needs 'hosts:'; Ansible inventories need hosts in the groups "
    "message_processors or backends)"
)


def load_inventory(
    path: Path, ssh_config: Path | None = None, *, ansible_inventory: str | None = FIND,
    timeout: float = TIMEOUT_SECONDS,
) -> Inventory:
    """Read an inventory: our YAML directly; an Ansible inventory through `ansible_inventory` (the program;
    FIND looks on the PATH, then beside sys.executable; None means the built-in reader only). When both
    readers can read it, they must agree on every host. Addresses that are ~/.ssh/config aliases (or
    `ssh_config`'s) are resolved to HostName/Port/User/IdentityFile/ProxyJump."""
    config = load_ssh_config(path, ssh_config)
    program = find_ansible_inventory() if ansible_inventory == FIND else ansible_inventory
    text = _static_text(path, required=program is None)
    if text is not None and not text.strip():
        raise InputError(path, _NO_HOSTS)  # empty for either reader; no need to start Ansible to learn that
    if text is not None and not looks_like_ini(text):
        try:
            document = parse_yaml(path, text)
        except InputError:
            if program is None or _OWN_KEYS.search(text):
                raise  # our YAML with a typo: our message names the line, and Ansible is not asked
            document = None  # ansible-inventory has the final word on what the file is
        if is_own_yaml(document):
            assert isinstance(document, dict)
            own = parse_own_yaml(path, document)
            return _inventory(path, [build_host(path, n, v, config) for n, v in own])
    if program is None:
        assert text is not None
        return _inventory(path, _builtin_hosts(path, text, config))
    view, warnings = read_with_ansible(path, program, timeout)
    hosts = [build_host(path, n, v, config) for n, v in role_hosts(path, view)]
    if not hosts and warnings:
        # Ansible skips what it does not understand (a misspelt `hosts:`) with a warning: that is the reason.
        raise InputError(path, f"{_NO_HOSTS}; ansible-inventory warned: {warnings}")
    inventory = _inventory(path, hosts)
    if text is not None:
        try:
            builtin = _builtin_hosts(path, text, config)
        except InputError:
            builtin = None  # beyond the built-in reader (a plugin's syntax): ansible-inventory alone decides
        if builtin is not None:
            compare_readers(path, inventory.hosts, builtin)
    return inventory


def _builtin_hosts(path: Path, text: str, config: paramiko.SSHConfig | None) -> list[InventoryHost]:
    view = read_ansible_inventory(path, text, play_dir=Path.cwd())
    return [build_host(path, n, v, config) for n, v in role_hosts(path, view)]


def _inventory(path: Path, hosts: list[InventoryHost]) -> Inventory:
    if not hosts:
        raise InputError(path, _NO_HOSTS)
    return Inventory(hosts=tuple(hosts), source=str(path))


def _static_text(path: Path, required: bool) -> str | None:
    """The inventory's text when it is a static file; None for what only ansible-inventory reads (a folder,
    an executable script). `required`: no ansible-inventory, so those are errors saying what reads them."""
    if path.is_dir() or _is_program(path):
        if required:
            kind = "a folder" if path.is_dir() else "an executable (a dynamic inventory script)"
            raise InputError(
                path,
                f"{kind}, which only ansible-inventory reads: install ansible-core so ansible-inventory is "
                "on the PATH, or give a static inventory file",
            )
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, f"cannot read the inventory: {e}") from e


def _is_program(path: Path) -> bool:
    """An executable script or binary, which Ansible runs as a dynamic inventory (a static file that merely
    has the x bit, as on some shares, is still read)."""
    if not (path.is_file() and os.access(path, os.X_OK)):
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head.startswith(b"#!") or head == b"\x7fELF"

"""Ansible's view of an inventory (groups, children, each host's merged variables) mapped to our roles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from collector.errors import InputError
from collector.inventory.documents import is_vaulted
from collector.inventory.hosts import ANSIBLE_GROUPS, InventoryHost


@dataclass(frozen=True)
class AnsibleView:
    """An inventory as Ansible resolves it, whichever reader produced it.

    Attributes:
        group_hosts: each group's own hosts (not its children's), in inventory order.
        group_children: each group's child groups.
        hostvars: each host's variables with Ansible's precedence applied (all < groups < host), as
            `ansible-inventory --list` prints them under `_meta.hostvars`.
    """

    group_hosts: Mapping[str, Sequence[str]]
    group_children: Mapping[str, Sequence[str]]
    hostvars: Mapping[str, Mapping[str, object]]


_ANSIBLE_VARS = {
    "ansible_host": "address",
    "ansible_ssh_host": "address",
    "ansible_port": "port",
    "ansible_ssh_port": "port",
    "ansible_user": "user",
    "ansible_ssh_user": "user",
    "ansible_ssh_private_key_file": "identity_file",
    "ansible_become": "sudo",
    "collector_system_log": "system_log",
    "collector_capture_dir": "capture_dir",
    "collector_tcpdump": "tcpdump",
}


def role_hosts(path: Path, view: AnsibleView) -> list[tuple[str, dict[str, object]]]:
    """The hosts of the groups `message_processors` and `backends` (with their child groups), each with our
    settings from its Ansible variables; a host in both groups is a message processor."""

    def members(group: str) -> list[str]:
        # Depth first, a group's own hosts before its children's; each group once, so neither a cycle nor a
        # lattice of groups (from a third-party plugin) can make this explode.
        found: list[str] = []
        visited: set[str] = set()
        todo = [group]
        while todo:
            current = todo.pop()
            if current in visited:
                continue
            visited.add(current)
            found += view.group_hosts.get(current, ())
            todo += reversed(view.group_children.get(current, ()))
        return found

    result: dict[str, dict[str, object]] = {}
    for group, role in ANSIBLE_GROUPS.items():
        for host in members(group):
            if host in result:
                continue
            values = _settings(path, host, view.hostvars.get(host, {}))
            explicit = set(values)  # Ansible's own variables win over ~/.ssh/config, as in Ansible
            values.setdefault("address", host)
            values["role"] = role
            values["_explicit"] = explicit
            result[host] = values
    return list(result.items())


def _settings(path: Path, host: str, variables: Mapping[str, object]) -> dict[str, object]:
    settings: dict[str, object] = {}
    for variable, value in variables.items():
        if variable not in _ANSIBLE_VARS:
            continue
        if is_vaulted(value):
            raise InputError(
                path,
                f"host {host}: {variable} is vault-encrypted (!vault), and ansible-inventory does not "
                "decrypt values inside an inventory; write this connection setting in clear",
            )
        if isinstance(value, str) and "{{" in value:
            raise InputError(
                path,
                f"host {host}: {variable} {value!r} is a Jinja template, which only a playbook renders; "
                "write the value itself",
            )
        settings[_ANSIBLE_VARS[variable]] = value
    return settings


def compare_readers(path: Path, ansible: Sequence[InventoryHost], builtin: Sequence[InventoryHost]) -> None:
    """Raise when ansible-inventory and the built-in reader would give a host different settings (or only one
    of them lists it): the same inventory must not mean two things depending on what is installed."""
    by_ansible = {h.name: h for h in ansible}
    by_builtin = {h.name: h for h in builtin}
    advice = (
        "collect stops rather than guess; ansible-inventory also applies ansible.cfg and vars plugins: "
        "set the value for the host in the inventory itself"
    )
    for name in [*by_ansible, *(n for n in by_builtin if n not in by_ansible)]:
        a, b = by_ansible.get(name), by_builtin.get(name)
        if a is None or b is None:
            said = "lists it" if a is not None else "does not list it"
            other = "does not" if a is not None else "does"
            raise InputError(
                path,
                f"host {name}: ansible-inventory {said} in message_processors or backends, collect's "
                f"built-in reader (used where ansible-inventory is missing) {other}; {advice}",
            )
        for item in fields(InventoryHost):
            mine, theirs = getattr(a, item.name), getattr(b, item.name)
            if mine != theirs:
                raise InputError(
                    path,
                    f"host {name}: ansible-inventory gives {item.name} {mine!r}, collect's built-in reader "
                    f"(used where ansible-inventory is missing) gives {theirs!r}; {advice}",
                )

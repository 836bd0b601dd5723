"""Our own inventory YAML: `defaults:` and `hosts:` with address, role and the per-host settings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from collector.errors import InputError
from collector.inventory.hosts import DEFAULT_KEYS, HOST_KEYS


def is_own_yaml(document: object) -> bool:
    """Our schema is a mapping with `hosts` and at most `defaults` beside it; anything else is Ansible's."""
    return isinstance(document, Mapping) and "hosts" in document and set(document) <= {"defaults", "hosts"}


def parse_own_yaml(path: Path, document: Mapping[str, object]) -> list[tuple[str, dict[str, object]]]:
    """Each host's settings: `defaults:` first, the host's own keys over them."""
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise InputError(path, "'defaults' must be a mapping")
    for key in defaults:
        if key not in DEFAULT_KEYS:
            raise InputError(path, f"defaults: unknown key {key!r} (known: {', '.join(DEFAULT_KEYS)})")
    hosts = document.get("hosts")
    if not isinstance(hosts, Mapping):
        raise InputError(path, "'hosts' must be a mapping of host name to settings")
    result = []
    for name, values in hosts.items():
        if not isinstance(values, Mapping):
            raise InputError(path, f"host {name}: settings must be a mapping (address, role, ...)")
        for key in values:
            if key not in HOST_KEYS:
                raise InputError(path, f"host {name}: unknown key {key!r} (known: {', '.join(HOST_KEYS)})")
        merged = dict(defaults)
        merged.update(values)
        merged["_explicit"] = set(values)
        result.append((str(name), merged))
    return result

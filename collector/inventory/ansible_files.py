"""The built-in reader of static Ansible inventories (INI or YAML, group_vars/ and host_vars/), used when
ansible-inventory is missing and as the check on it; it resolves variables with Ansible's precedence."""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from collector.errors import InputError
from collector.inventory.documents import VAULT_HEADER, parse_yaml
from collector.inventory.groups import AnsibleView
from collector.inventory.host_ranges import HostPatternError, expand_host_pattern

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$")
_CHILD = re.compile(r"^([^:\]\s]+)\s*(?:[#;].*)?$")
_VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")


@dataclass
class _Group:
    hosts: dict[str, None] = field(default_factory=dict)  # an ordered set: ranges give thousands
    children: list[str] = field(default_factory=list)
    variables: dict[str, object] = field(default_factory=dict)


@dataclass
class _Parsed:
    groups: dict[str, _Group] = field(default_factory=lambda: {"all": _Group(), "ungrouped": _Group()})
    host_variables: dict[str, dict[str, object]] = field(default_factory=dict)

    def group(self, name: str) -> _Group:
        return self.groups.setdefault(name, _Group())

    def add_host(self, group: str, host: str, variables: Mapping[str, object]) -> None:
        self.group(group).hosts[host] = None
        self.host_variables.setdefault(host, {}).update(variables)


def looks_like_ini(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", ";")):
            return stripped.startswith("[")
    return False


def read_ansible_inventory(path: Path, text: str, play_dir: Path | None = None) -> AnsibleView:
    """Resolve a static INI or YAML inventory as ansible-inventory would, including group_vars/ and
    host_vars/ beside it and in `play_dir` (ansible-inventory's playbook dir: the current one)."""
    if looks_like_ini(text):
        parsed = _parse_ini(path, text)
    else:
        document = parse_yaml(path, text)
        if not isinstance(document, Mapping):
            raise InputError(path, "not an inventory: expected a mapping with 'hosts' or Ansible groups")
        if isinstance(document.get("plugin"), str):
            raise InputError(
                path,
                f"an inventory plugin's configuration (plugin: {document['plugin']}), which only "
                "ansible-inventory reads: install ansible-core so ansible-inventory is on the PATH",
            )
        parsed = _parse_yaml_groups(path, document)
    return _resolve(path, parsed, play_dir)


def _parse_ini(path: Path, text: str) -> _Parsed:
    parsed = _Parsed()
    section, kind = "ungrouped", "hosts"
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("["):
            match = _SECTION.match(stripped)
            if not match or (match.group(2) or "hosts") not in ("hosts", "vars", "children"):
                raise InputError(path, f"line {number}: bad section header {stripped!r}")
            section, kind = match.group(1), match.group(2) or "hosts"
            parsed.group(section)
            continue
        if kind == "children":
            child = _CHILD.match(stripped)
            if not child:
                raise InputError(path, f"line {number}: expected a group name in [{section}:children]")
            parsed.group(child.group(1))
            parsed.group(section).children.append(child.group(1))
        elif kind == "vars":
            key, sep, value = stripped.partition("=")
            if not sep:
                raise InputError(path, f"line {number}: expected key=value in [{section}:vars]")
            parsed.group(section).variables[key.strip()] = _ini_value(value.strip())
        else:
            _parse_ini_host_line(path, number, section, stripped, parsed)
    return parsed


def _parse_ini_host_line(path: Path, number: int, section: str, line: str, parsed: _Parsed) -> None:
    try:
        pattern, *pairs = shlex.split(line, comments=True)
    except ValueError as e:
        raise InputError(path, f"line {number}: {e} in {line!r}") from e
    variables: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InputError(path, f"line {number}: expected key=value after host {pattern}, got {pair!r}")
        variables[key] = _ini_value(value)
    for host in _expand(path, f"line {number}: ", pattern, variables):
        parsed.add_host(section, host, variables)


def _expand(path: Path, where: str, pattern: str, variables: dict[str, object]) -> list[str]:
    try:
        hosts, port = expand_host_pattern(pattern)
    except HostPatternError as e:
        raise InputError(path, f"{where}{e}") from e
    if port is not None:
        variables.setdefault("ansible_port", port)
    return hosts


def _ini_value(text: str) -> object:
    """A value as Ansible's INI reader takes it: a Python literal when it is one (2200, 'ops', True), else the
    text itself."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (complex, type(Ellipsis))):
        return text
    return value


def _parse_yaml_groups(path: Path, document: Mapping[object, object]) -> _Parsed:
    parsed = _Parsed()

    def walk(group: str, body: object) -> None:
        parsed.group(group)
        if body is None:
            return
        if not isinstance(body, Mapping):
            raise InputError(path, f"group {group}: expected a mapping with hosts/children/vars")
        unknown = set(body) - {"hosts", "children", "vars"}
        if unknown:
            raise InputError(
                path,
                f"group {group}: unknown key {sorted(map(str, unknown))[0]!r} "
                "(Ansible groups have hosts, children, vars)",
            )
        sections = {key: ({value: None} if isinstance(value, str) else value) for key, value in body.items()}
        for key, value in sections.items():
            if value is not None and not isinstance(value, Mapping):
                raise InputError(path, f"group {group}: '{key}' must be a mapping")
        for name, value in (sections.get("vars") or {}).items():
            parsed.group(group).variables[str(name)] = value
        for child, child_body in (sections.get("children") or {}).items():
            walk(str(child), child_body)
            parsed.group(group).children.append(str(child))
        for pattern, values in (sections.get("hosts") or {}).items():
            if values is not None and not isinstance(values, Mapping):
                raise InputError(path, f"host {pattern}: variables must be a mapping")
            variables = {str(k): v for k, v in (values or {}).items()}
            for host in _expand(path, f"group {group}: ", str(pattern), variables):
                parsed.add_host(group, host, variables)

    for group, body in document.items():
        walk(str(group), body)
    return parsed


def _resolve(path: Path, parsed: _Parsed, play_dir: Path | None) -> AnsibleView:
    groups = parsed.groups
    for name in groups:
        if name != "all" and name not in groups["all"].children and not _has_parent(name, groups):
            groups["all"].children.append(name)
    direct: dict[str, list[str]] = {}
    for name, group in groups.items():
        for host in group.hosts:
            direct.setdefault(host, []).append(name)
    for host in parsed.host_variables:
        if set(direct[host]) <= {"all"}:
            groups["ungrouped"].hosts[host] = None
            direct[host].append("ungrouped")
    depth = _depths(groups)
    parents: dict[str, list[str]] = {name: [] for name in groups}
    for name, group in groups.items():
        for child in group.children:
            parents[child].append(name)
    var_dirs = list(dict.fromkeys(d for d in (path.parent, play_dir) if d is not None))
    listings: dict[Path, dict[str, Path]] = {}
    files: dict[tuple[Path, str], dict[str, object]] = {}

    def vars_files(directory: Path, name: str) -> dict[str, object]:
        # One listing per folder and one read per file, whatever the number of hosts.
        if directory not in listings:
            listings[directory] = {p.name: p for p in directory.iterdir()} if directory.is_dir() else {}
        if (directory, name) not in files:
            files[directory, name] = _vars_files(listings[directory], name)
        return files[directory, name]

    hostvars: dict[str, dict[str, object]] = {}
    for host, own in parsed.host_variables.items():
        member_of = _ancestors(direct[host], parents) - {"all"}
        ordered = sorted(member_of, key=lambda n: (depth[n], _priority(groups[n]), n))
        merged: dict[str, object] = dict(groups["all"].variables)
        for name in ordered:
            merged.update(groups[name].variables)
        for kind, names in (("group_vars", ["all"]), ("group_vars", ordered)):
            for directory in var_dirs:
                for name in names:
                    merged.update(vars_files(directory / kind, name))
        merged.update(own)
        for directory in var_dirs:
            merged.update(vars_files(directory / "host_vars", host))
        hostvars[host] = merged
    return AnsibleView(
        group_hosts={n: tuple(g.hosts) for n, g in groups.items()},
        group_children={n: tuple(g.children) for n, g in groups.items()},
        hostvars=hostvars,
    )


def _has_parent(name: str, groups: Mapping[str, _Group]) -> bool:
    return any(name in g.children for g in groups.values())


def _depths(groups: Mapping[str, _Group]) -> dict[str, int]:
    """Ansible's group depth: `all` is 0, a child is one deeper than its deepest parent (a cycle stops at the
    number of groups, so a hostile inventory cannot make this loop)."""
    depth = dict.fromkeys(groups, 0)
    for _ in range(len(groups)):
        changed = False
        for name, group in groups.items():
            for child in group.children:
                if child != "all" and depth[child] < min(depth[name] + 1, len(groups)):
                    depth[child] = min(depth[name] + 1, len(groups))
                    changed = True
        if not changed:
            break
    return depth


def _ancestors(names: list[str], parents: Mapping[str, list[str]]) -> set[str]:
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo += parents.get(name, [])
    return found


def _priority(group: _Group) -> int:
    value = group.variables.get("ansible_group_priority", 1)
    try:
        return int(str(value))
    except ValueError:
        return 1


def _vars_files(listing: Mapping[str, Path], name: str) -> dict[str, object]:
    """The variables Ansible reads for group or host `name` from a group_vars/ or host_vars/ folder
    (`listing`: its entries by name): NAME, NAME.yml, NAME.yaml, NAME.json, or every such file under a folder
    NAME/, in name order."""
    merged: dict[str, object] = {}
    if "/" in name or name.startswith("."):
        return merged
    for extension in _VARS_EXTENSIONS:
        candidate = listing.get(f"{name}{extension}")
        if candidate is None:
            continue
        found = _folder_files(candidate) if candidate.is_dir() else [candidate] if candidate.is_file() else []
        for file in found:
            merged.update(_read_vars_file(file))
    return merged


def _folder_files(folder: Path) -> list[Path]:
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found += _folder_files(entry)
        elif entry.is_file() and entry.suffix in _VARS_EXTENSIONS:
            found.append(entry)
    return found


def _read_vars_file(file: Path) -> Mapping[str, object]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(file, f"cannot read the variables file: {e}") from e
    if text.startswith(VAULT_HEADER):
        raise InputError(
            file,
            "vault-encrypted, which collect's built-in reader cannot decrypt: put ansible-inventory on the "
            "PATH (ansible-core) with the vault password set up as for your playbooks "
            "(ANSIBLE_VAULT_PASSWORD_FILE or vault_password_file in ansible.cfg)",
        )
    document = parse_yaml(file, text)
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise InputError(file, "variables file must be a mapping of variable to value")
    return {str(k): v for k, v in document.items()}

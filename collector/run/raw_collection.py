"""A raw collection on disk: what playbooks/collect.yml wrote, read and checked (hosts, steps, layout files).

The playbook writes the Python collector's raw per-host layout (`hosts/NAME/capture.pcap`,
`system.log.excerpt`, `system.log.gz`, `facts.json`, `commands.log`, and `request/`) plus `collection.json`,
its record of the run: hosts, roles, each host × step outcome, message ids and the reproduction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector import layout
from collector.errors import InputError
from collector.inventory import Inventory, InventoryHost
from collector.remote.host_steps import host_files
from collector.run.reproduce import Reproduction, redact_url
from collector.steps import StepResult, StepStatus

RUN_RECORD = layout.RAW_RECORD
RAW_FORMAT = layout.RAW_FORMAT
HOST_FILES = host_files()  # the host-step specs' outputs: what the playbook's tasks write too
REQUEST_FILES = (layout.REQUEST_COMMAND, layout.REQUEST_RESPONSE)
_ROLES = ("message-processor", "backend")


@dataclass(frozen=True)
class RawHost:
    """One host of a raw collection, shaped like an inventory host for the run's stages and reports.

    Attributes:
        name: inventory name; directory: its folder under `hosts/` in the raw collection.
        role: message-processor or backend; address: what the playbook connected to.
        peers: the addresses its capture filtered on (backends for an MP, MPs for a backend).
    """

    name: str
    role: str
    address: str
    directory: str
    peers: tuple[str, ...] = ()


@dataclass(frozen=True)
class RawCollection:
    """What a raw collection holds.

    Attributes:
        root: the directory the playbook wrote.
        hosts: every host of the collection, in record order.
        steps: the host × step outcomes the playbook recorded (a host without any: one failed `connect`).
        files: (bundle path, file in the collection) for every file to import; only layout paths, no links.
        ignored: collection paths that are not part of the layout (left out of the bundle).
        org / env / proxy / run_id: from collection.json; ``None`` without it.
        message_ids: the ids the playbook looked for in system.log (given and from the reproduction).
        reproduction: the reproduction URL's call, ``None`` when the operator reproduced by hand.
        backend_port: the port the captures filtered on, ``None`` when any.
        producer: what wrote it (`playbooks/collect.yml`, `collector.fabric`), from collection.json.
    """

    root: Path
    hosts: tuple[RawHost, ...]
    steps: tuple[StepResult, ...]
    files: tuple[tuple[str, Path], ...]
    ignored: tuple[str, ...] = ()
    org: str | None = None
    env: str | None = None
    proxy: str | None = None
    run_id: str | None = None
    message_ids: tuple[str, ...] = ()
    reproduction: Reproduction | None = None
    backend_port: int | None = None
    producer: str | None = None

    @property
    def message_processors(self) -> tuple[RawHost, ...]:
        return tuple(h for h in self.hosts if h.role == "message-processor")

    @property
    def backends(self) -> tuple[RawHost, ...]:
        return tuple(h for h in self.hosts if h.role == "backend")

    @property
    def backend_addresses(self) -> list[str]:
        """What the MPs captured against, then the backend hosts' own addresses."""
        found = [p for h in self.message_processors for p in h.peers] + [h.address for h in self.backends]
        return list(dict.fromkeys(found))

    def inventory(self) -> Inventory:
        """The collection's hosts as the run's inventory (names, addresses, roles: what the capture filters
        and the checklist read); nobody connects to them."""
        hosts = tuple(InventoryHost(name=h.name, address=h.address, role=h.role) for h in self.hosts)
        return Inventory(hosts, source=str(self.root / RUN_RECORD))

    def captured(self) -> list[str]:
        """Names of the hosts whose capture the collection holds."""
        present = {rel for rel, _source in self.files}
        return [h.name for h in self.hosts if layout.host_file(h.name, layout.HOST_CAPTURE) in present]


def read_raw_collection(root: Path) -> RawCollection:
    """Read a raw collection directory; raises InputError naming the directory or file and the defect."""
    if not root.is_dir():
        raise InputError(root, "not a directory: give the `out` directory of playbooks/collect.yml (--from)")
    record = _read_record(root)
    if record is None and not (root / layout.HOSTS_DIR).is_dir():
        raise InputError(root, f"not a raw collection: neither {RUN_RECORD} nor a {layout.HOSTS_DIR}/ folder")
    hosts = _hosts(root, record)
    steps: list[StepResult] = []
    for host, entry in hosts:
        steps += _host_steps(root, host, entry)
    files, ignored = _files(root, [h for h, _e in hosts])
    record = record or {}
    return RawCollection(
        root=root,
        hosts=tuple(h for h, _e in hosts),
        steps=tuple(steps),
        files=tuple(files),
        ignored=tuple(ignored),
        org=_text(record.get("org")),
        env=_text(record.get("env")),
        proxy=_text(record.get("proxy")),
        run_id=_text(record.get("run_id")),
        message_ids=_strings(record.get("message_ids")),
        reproduction=_reproduction(root, record.get("reproduction")),
        backend_port=_port(record.get("backend_port")),
        producer=(_text(record.get("producer")) or "")[:80] or None,  # said in a step message
    )


def _read_record(root: Path) -> dict[str, Any] | None:
    path = root / RUN_RECORD
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(path, f"cannot read the playbook's record of the run: {exc}") from exc
    if (
        not isinstance(data, dict)
        or data.get("format") != RAW_FORMAT
        or not isinstance(data.get("hosts"), list)
    ):
        raise InputError(
            path, f"not a record of playbooks/collect.yml (expected format {RAW_FORMAT!r} and hosts)"
        )
    return data


def _hosts(root: Path, record: Mapping[str, Any] | None) -> list[tuple[RawHost, Mapping[str, Any] | None]]:
    """Hosts of the record, then folders under hosts/ the record does not name (role from
    their facts.json)."""
    hosts: list[tuple[RawHost, Mapping[str, Any] | None]] = []
    for entry in (record or {}).get("hosts", []):
        if not isinstance(entry, dict) or not _text(entry.get("name")):
            raise InputError(root / RUN_RECORD, f"a host entry without a name: {str(entry)[:100]}")
        name = str(entry["name"])
        role = str(entry.get("role") or "")
        if role not in _ROLES:
            raise InputError(
                root / RUN_RECORD, f"host {name}: role {role!r} is not one of {', '.join(_ROLES)}"
            )
        peers = _strings(entry.get("peers"))
        hosts.append(
            (
                RawHost(name, role, str(entry.get("address") or name), layout.safe_component(name), peers),
                entry,
            )
        )
    named = {h.directory for h, _e in hosts}
    folder = root / layout.HOSTS_DIR
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if (
            path.is_dir()
            and not path.is_symlink()
            and path.name not in named
            and path.name == layout.safe_component(path.name)
        ):
            facts = _facts(path / layout.HOST_FACTS)
            role = str(facts.get("role") or "message-processor")
            hosts.append(
                (
                    RawHost(
                        path.name,
                        role if role in _ROLES else "message-processor",
                        str(facts.get("address") or path.name),
                        path.name,
                    ),
                    None,
                )
            )
    return hosts


def _facts(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _host_steps(root: Path, host: RawHost, entry: Mapping[str, Any] | None) -> list[StepResult]:
    if entry is None:
        return []  # a folder without a record: nothing is known about its steps
    recorded = entry.get("steps")
    if not recorded:
        return [
            StepResult(
                host.name,
                "connect",
                StepStatus.FAILED,
                "unreachable",
                f"{host.name} -> connect: the playbook recorded no step for this host (unreachable, or "
                "the play stopped before it); see the ansible-playbook output",
            )
        ]
    steps = []
    for step in recorded:
        try:
            status = StepStatus(str(step["status"]))
            steps.append(
                StepResult(
                    host.name,
                    str(step["step"]),
                    status,
                    _text(step.get("reason")) if status is not StepStatus.OK else None,
                    str(step.get("message") or ""),
                    float(step.get("seconds") or 0),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                root / RUN_RECORD, f"host {host.name}: a step is not understood ({exc}): {str(step)[:200]}"
            ) from exc
    return steps


def _files(root: Path, hosts: Sequence[RawHost]) -> tuple[list[tuple[str, Path]], list[str]]:
    """Layout files only, regular files only (a link could point anywhere on the collector's machine)."""
    wanted: dict[str, str] = {}
    for host in hosts:
        for name in HOST_FILES:
            wanted[f"{layout.HOSTS_DIR}/{host.directory}/{name}"] = layout.host_file(host.name, name)
    for rel in REQUEST_FILES:
        wanted[rel] = rel
    files: list[tuple[str, Path]] = []
    ignored: list[str] = []
    real_root = root.resolve()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir() and not path.is_symlink() or rel == RUN_RECORD:
            continue
        inside = path.resolve().is_relative_to(real_root) and not path.is_symlink()
        if rel in wanted and inside and path.is_file():
            files.append((wanted[rel], path))
        else:
            ignored.append(rel)
    return files, ignored


def _reproduction(root: Path, record: Any) -> Reproduction | None:
    if not isinstance(record, dict):
        return None
    response = root / layout.REQUEST_RESPONSE
    try:
        text = response.read_text(encoding="utf-8", errors="replace") if response.is_file() else ""
    except OSError as exc:
        raise InputError(response, f"cannot read the reproduction's response: {exc.strerror}") from exc
    command = str(record.get("command") or "GET")
    method, _sep, url = command.partition(" ")
    status = record.get("status")
    return Reproduction(
        command=f"{method} {redact_url(url)}" if url else command,
        response=text,
        status=int(status) if isinstance(status, (int, str)) and str(status).isdigit() else None,
        message_ids=_strings(record.get("message_ids")),
        error=_text(record.get("error")),
        seconds=float(record.get("seconds") or 0),
    )


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _strings(value: Any) -> tuple[str, ...]:
    """A list of strings from the record; anything else (a string, a number) counts as none."""
    return tuple(str(v) for v in value if str(v)) if isinstance(value, list) else ()


def _port(value: Any) -> int | None:
    """The recorded backend port; 0 (any port) or a non-port is ``None``."""
    port = int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else 0
    return port if 0 < port <= 65535 else None

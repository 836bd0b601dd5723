"""Host facts for the bundle: name, addresses, clock offset to us, OS and tool versions, free disk."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from collector.remote import host_steps
from collector.remote.connection import HostConnection, private_file
from collector.remote.host_steps import HostCommand


@dataclass(frozen=True)
class HostFacts:
    """What a host is and runs, as written to facts.json.

    Attributes:
        host: inventory name; address: what we connected to; role: message-processor or backend.
        hostname: the host's own name; addresses: its interface addresses (CIDR).
        clock_offset_seconds: host clock minus collector clock (positive: the host is ahead); `None` if the
            host's `date` was unreadable. clock_uncertainty_seconds: half the round trip of the measurement.
        os, kernel: release strings. tcpdump, openssl, java: first line of each `--version`/`version`.
        capture_dir_free_kib: free space where captures go; `None` when the dir is missing.
    """

    host: str
    address: str
    role: str
    hostname: str
    addresses: tuple[str, ...]
    clock_offset_seconds: float | None
    clock_uncertainty_seconds: float
    os: str
    kernel: str
    tcpdump: str
    openssl: str
    java: str
    capture_dir: str
    capture_dir_free_kib: int | None

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["addresses"] = list(self.addresses)
        return data


def parse_facts(text: str) -> dict[str, str]:
    """`key=value` lines (the facts command) -> dict; later keys win, lines without `=` are ignored."""
    facts: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            facts[key.strip()] = value.strip()
    return facts


def gather_facts(connection: HostConnection) -> HostFacts:
    """Run the facts script once; the clock offset uses the midpoint of the round trip."""
    host = connection.host
    before = time.time()
    result = host_steps.send(connection, HostCommand.FACTS, host_steps.facts_argv(host), check=True)
    after = time.time()
    facts = parse_facts(result.stdout)
    try:
        offset: float | None = float(facts.get("time", "")) - (before + after) / 2
    except ValueError:
        offset = None
    free = facts.get("capture_dir_free_kib", "")
    return HostFacts(
        host=host.name,
        address=host.address,
        role=host.role,
        hostname=facts.get("hostname", ""),
        addresses=tuple(facts.get("addresses", "").split()),
        clock_offset_seconds=None if offset is None else round(offset, 6),
        clock_uncertainty_seconds=round((after - before) / 2, 6),
        os=facts.get("os", ""),
        kernel=facts.get("kernel", ""),
        tcpdump=facts.get("tcpdump", ""),
        openssl=facts.get("openssl", ""),
        java=facts.get("java", ""),
        capture_dir=host.capture_dir,
        capture_dir_free_kib=int(free) if free.isdigit() else None,
    )


def write_facts(facts: HostFacts, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with private_file(path, "w") as out:
        out.write(json.dumps(facts.to_json(), indent=2, sort_keys=True) + "\n")

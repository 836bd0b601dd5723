"""Host facts from a real lab host, and the parser of the facts script's output."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from collector.inventory import InventoryHost
from collector.remote import facts
from collector.remote.connection import ConnectionSettings, open_host


@pytest.mark.lab
def test_facts_of_a_lab_host(mp1: InventoryHost, settings: ConnectionSettings, tmp_path: Path) -> None:
    with open_host(mp1, settings) as connection:
        found = facts.gather_facts(connection)
    facts.write_facts(found, tmp_path / "facts.json")
    written = json.loads((tmp_path / "facts.json").read_text())

    assert written["host"] == "mp1" and written["role"] == "message-processor"
    assert (
        found.hostname.split(".")[0] == socket.gethostname().split(".")[0]
    )  # the lab hosts share this machine
    assert found.clock_offset_seconds is not None and abs(found.clock_offset_seconds) < 5
    assert found.clock_uncertainty_seconds >= 0
    assert found.tcpdump.startswith("tcpdump version")
    assert found.openssl.startswith("OpenSSL")
    assert "version" in found.java
    assert found.os and found.kernel.startswith("Linux")
    assert found.capture_dir_free_kib is not None and found.capture_dir_free_kib > 0
    assert any(a.startswith("127.0.0.1/") for a in found.addresses)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hostname=mp1\ntime=1.5\n", {"hostname": "mp1", "time": "1.5"}),
        ("os=Debian GNU/Linux 12 (bookworm)\n", {"os": "Debian GNU/Linux 12 (bookworm)"}),
        ('java=openjdk version "17" = x\n', {"java": 'openjdk version "17" = x'}),  # first '=' splits
        ("garbage\n\nkey=\n", {"key": ""}),
    ],
)
def test_parse_facts(text: str, expected: dict[str, str]) -> None:
    # Given the facts script's output / When parsed / Then key=value pairs, other lines ignored
    assert facts.parse_facts(text) == expected

"""Fixtures for tests/tls: the real captures, their key logs, tshark's reading of them, and
handshake summaries."""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import json
import subprocess
from pathlib import Path

import pytest

from collector.tls.capture import CaptureResult, read_handshakes
from collector.tls.handshake import Handshake
from collector.tls.keylog import KeyLog, load_keylog

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"
ALL_CAPTURES = sorted(p.name for p in CAPTURES.iterdir() if p.name.endswith((".pcap", ".pcap.gz")))
PLAIN_CAPTURES = [name for name in ALL_CAPTURES if name.endswith(".pcap")]


def capture_path(name: str) -> Path:
    return CAPTURES / name


def keys_for(name: str) -> Path | None:
    keys = CAPTURES / (name.split(".pcap")[0] + ".keys")
    return keys if keys.exists() else None


def keylog_for(name: str) -> KeyLog | None:
    keys = keys_for(name)
    return load_keylog(keys) if keys else None


def read_fixture(name: str, *, with_keys: bool = True) -> CaptureResult:
    return read_handshakes(capture_path(name), keylog_for(name) if with_keys else None)


def summary(handshake: Handshake, *, endpoints: bool = True) -> tuple[object, ...]:
    """The facts of a handshake that must survive re-segmentation, reordering and re-encapsulation
    (no frames)."""
    request, client_cert = handshake.certificate_request, handshake.client_certificate
    return (
        (handshake.client, handshake.server) if endpoints else None,
        handshake.sni,
        handshake.version,
        handshake.cipher,
        tuple(c.subject for c in handshake.server_chain),
        request.ca_names if request else None,
        request.signature_algorithms if request else None,
        (client_cert.sent, tuple(c.subject for c in client_cert.chain)) if client_cert else None,
        tuple((a.sender, a.level, a.code) for a in handshake.alerts),
        handshake.outcome,
        handshake.http_status,
    )


_FIELDS = [
    "frame.number",
    "tcp.srcport",
    "tls.handshake.type",
    "tls.handshake.certificates_length",
    "tls.alert_message.level",
    "tls.alert_message.desc",
]


def _tshark(capture: Path, keys: Path, *args: str) -> str:
    argv = [
        "tshark",
        "-n",
        "-o",
        "tcp.reassemble_out_of_order:TRUE",
        "-o",
        f"tls.keylog_file:{keys}",
        "-r",
        str(capture),
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def _dn_hex_by_frame(text: str) -> dict[int, list[str]]:
    """frame number -> raw DNs of its CertificateRequests, from `tshark -T json -x` (duplicate keys kept)."""
    found: dict[int, list[str]] = {}

    def walk(node: object, into: list[str], frame: list[int]) -> None:
        if (
            isinstance(node, list) and node and isinstance(node[0], tuple)
        ):  # a JSON object as (key, value) pairs
            for key, value in node:
                if key == "tls.handshake.dname_raw":
                    into.append(value[0])
                elif key == "frame.number":
                    frame.append(int(value))
                walk(value, into, frame)
        elif isinstance(node, list):
            for item in node:
                walk(item, into, frame)

    for packet in json.loads(text or "[]", object_pairs_hook=list):
        names: list[str] = []
        frame: list[int] = []
        walk(packet, names, frame)
        found[frame[0]] = names
    return found


@dataclasses.dataclass(frozen=True)
class TsharkView:
    """What tshark shows for one fixture: one row per TLS packet, and the raw DNs of
    its CertificateRequests."""

    rows: list[dict[str, str]]
    dn_hex: list[str]


@pytest.fixture(scope="session")
def tshark_views(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TsharkView]:
    """tshark's reading of every fixture, from ONE run over all of them concatenated (tshark's start-up
    is slow).

    Frame numbers are shifted back per file; the key logs are concatenated (they are keyed by client random).
    """
    work = tmp_path_factory.mktemp("tshark")
    parts, offsets, keys = [], {}, []
    total = 0
    for name in ALL_CAPTURES:
        data = capture_path(name).read_bytes()
        plain = work / name.replace(".gz", "")
        plain.write_bytes(gzip.decompress(data) if name.endswith(".gz") else data)
        parts.append(str(plain))
        offsets[name] = total
        total += read_handshakes(plain).packets
        if keys_for(name):
            keys.append(keys_for(name).read_text())  # type: ignore[union-attr]
    merged, keylog = work / "all.pcapng", work / "all.keys"
    keylog.write_text("".join(keys))
    subprocess.run(["mergecap", "-a", "-w", str(merged), *parts], check=True)
    rows = [
        dict(zip(_FIELDS, line.split("|"), strict=True))
        for line in _tshark(
            merged,
            keylog,
            "-Y",
            "tls",
            "-T",
            "fields",
            "-E",
            "separator=|",
            *[x for f in _FIELDS for x in ("-e", f)],
        ).splitlines()
    ]
    dns = _dn_hex_by_frame(_tshark(merged, keylog, "-Y", "tls.handshake.type == 13", "-T", "json", "-x"))
    views = {}
    bounds = sorted(offsets.items(), key=lambda item: item[1]) + [("", total)]
    for (name, start), (_, end) in itertools.pairwise(bounds):
        mine = [
            dict(r, **{"frame.number": str(int(r["frame.number"]) - start)})
            for r in rows
            if start < int(r["frame.number"]) <= end
        ]
        names = [h for frame, found in sorted(dns.items()) if start < frame <= end for h in found]
        views[name] = TsharkView(mine, names)
    return views


@pytest.fixture(scope="session")
def fixture_results() -> dict[str, CaptureResult]:
    """Every fixture read once (with its key log when it has one)."""
    return {name: read_fixture(name) for name in ALL_CAPTURES}

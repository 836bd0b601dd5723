"""collector/run/raw_collection.py (and from_raw.settings_flags) on real directories: reading a raw
collection, its bad inputs, and the flags it fills.

(Beside the playbook tests because the raw collection is the playbook's output; the lab run in test_collect.py
covers packaging end to end.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from collector import layout
from collector.errors import InputError, UsageError
from collector.run.from_raw import settings_flags
from collector.run.raw_collection import RAW_FORMAT, RUN_RECORD, read_raw_collection
from collector.steps import StepStatus


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "format": RAW_FORMAT,
        "run_id": "20261127T101500Z-abc123",
        "org": "acme",
        "env": "prod",
        "proxy": "payments",
        "backend_port": 8443,
        "message_ids": ["rrt-1"],
        "reproduction": {
            "command": "GET https://api.acme.com/p?apikey=s3cret",
            "status": 503,
            "message_ids": ["rrt-1"],
            "error": None,
            "seconds": 1,
        },
        "hosts": [
            {
                "name": "mp1",
                "role": "message-processor",
                "address": "10.0.1.11",
                "peers": ["10.0.9.20"],
                "steps": [
                    {"step": "start-capture", "status": "ok", "reason": None, "message": "", "seconds": 1.5},
                    {
                        "step": "logs",
                        "status": "failed",
                        "reason": "log-missing",
                        "message": "mp1 -> logs: no log",
                        "seconds": 0.2,
                    },
                ],
            },
            {
                "name": "backend",
                "role": "backend",
                "address": "10.0.9.20",
                "peers": ["10.0.1.11"],
                "steps": [],
            },
        ],
    }
    record.update(changes)
    return record


def _collection(root: Path, record: dict[str, Any] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / RUN_RECORD).write_text(json.dumps(_record() if record is None else record))
    for host in ("mp1", "backend"):
        (root / layout.host_dir(host)).mkdir(parents=True, exist_ok=True)
        (root / layout.host_file(host, layout.HOST_FACTS)).write_text("{}\n")
    (root / layout.host_file("mp1", layout.HOST_CAPTURE)).write_bytes(b"\xd4\xc3\xb2\xa1" + b"\0" * 20)
    (root / "request").mkdir()
    (root / layout.REQUEST_RESPONSE).write_text("HTTP/1.1 503 Service Unavailable\n\n{}\n")
    return root


def test_reads_hosts_steps_and_reproduction(tmp_path: Path) -> None:
    # Given a collection with a record, When it is read, Then hosts, steps, names and the reproduction come
    # from it (the URL's secret redacted) and a host without steps becomes a failed connect.
    collection = read_raw_collection(_collection(tmp_path / "raw"))
    assert [(h.name, h.role, h.address) for h in collection.hosts] == [
        ("mp1", "message-processor", "10.0.1.11"),
        ("backend", "backend", "10.0.9.20"),
    ]
    assert (collection.org, collection.env, collection.proxy) == ("acme", "prod", "payments")
    steps = [(s.host, s.step, s.status, s.reason) for s in collection.steps]
    assert steps == [
        ("mp1", "start-capture", StepStatus.OK, None),
        ("mp1", "logs", StepStatus.FAILED, "log-missing"),
        ("backend", "connect", StepStatus.FAILED, "unreachable"),
    ]
    assert collection.reproduction is not None and collection.reproduction.status == 503
    assert "s3cret" not in collection.reproduction.command
    assert collection.reproduction.response.startswith("HTTP/1.1 503")
    assert collection.captured() == ["mp1"] and collection.backend_addresses == ["10.0.9.20"]
    assert collection.backend_port == 8443


def test_imports_layout_files_only(tmp_path: Path) -> None:
    # Given a stray file and a link to a file outside the collection, Then neither is imported.
    root = _collection(tmp_path / "raw")
    (root / "notes.txt").write_text("x")
    secret = tmp_path / "secret.key"
    secret.write_text("-----BEGIN PRIVATE KEY-----\n")
    (root / layout.host_file("backend", layout.HOST_CAPTURE)).symlink_to(secret)
    collection = read_raw_collection(root)
    imported = {rel for rel, _path in collection.files}
    assert imported == {
        layout.host_file("mp1", layout.HOST_CAPTURE),
        layout.host_file("mp1", layout.HOST_FACTS),
        layout.host_file("backend", layout.HOST_FACTS),
        layout.REQUEST_RESPONSE,
    }
    assert set(collection.ignored) == {"notes.txt", layout.host_file("backend", layout.HOST_CAPTURE)}


def test_without_a_record_hosts_come_from_the_folders(tmp_path: Path) -> None:
    root = _collection(tmp_path / "raw")
    (root / RUN_RECORD).unlink()
    (root / layout.host_file("backend", layout.HOST_FACTS)).write_text(
        json.dumps({"role": "backend", "address": "10.0.9.20"})
    )
    collection = read_raw_collection(root)
    assert sorted((h.name, h.role) for h in collection.hosts) == [
        ("backend", "backend"),
        ("mp1", "message-processor"),
    ]
    assert collection.steps == () and collection.org is None and collection.reproduction is None


BAD = [
    ("missing directory", lambda root: root.parent / "nope", "not a directory"),
    ("no record, no hosts", lambda root: _empty(root), "not a raw collection: neither collection.json nor"),
    (
        "record not JSON",
        lambda root: _write(root, "{not json"),
        "cannot read the playbook's record of the run",
    ),
    (
        "another format",
        lambda root: _write(root, json.dumps(_record(format="other/1"))),
        "not a record of playbooks/collect.yml",
    ),
    (
        "host without a name",
        lambda root: _write(root, json.dumps(_record(hosts=[{"role": "backend"}]))),
        "a host entry without a name",
    ),
    (
        "unknown role",
        lambda root: _write(root, json.dumps(_record(hosts=[{"name": "x", "role": "router"}]))),
        "host x: role 'router' is not one of message-processor, backend",
    ),
    (
        "unknown step status",
        lambda root: _write(
            root,
            json.dumps(
                _record(
                    hosts=[{"name": "x", "role": "backend", "steps": [{"step": "facts", "status": "great"}]}]
                )
            ),
        ),
        "host x: a step is not understood",
    ),
]


def _empty(root: Path) -> Path:
    root.mkdir(parents=True)
    return root


def _write(root: Path, text: str) -> Path:
    root.mkdir(parents=True)
    (root / RUN_RECORD).write_text(text)
    return root


@pytest.mark.parametrize("case, make, message", BAD, ids=[b[0] for b in BAD])
def test_bad_collections_are_input_errors(tmp_path: Path, case: str, make: Any, message: str) -> None:
    # Given a broken collection, When it is read, Then an InputError (exit 2) names the file and the defect.
    path = make(tmp_path / "raw")
    with pytest.raises(InputError) as error:
        read_raw_collection(path)
    assert message in str(error.value), case
    assert error.value.exit_code == 2


def test_flags_take_the_recorded_names(tmp_path: Path) -> None:
    collection = read_raw_collection(_collection(tmp_path / "raw"))
    assert settings_flags(collection, {"env": "prod"})["org"] == "acme"
    flags = settings_flags(collection, {"no_api": True})
    assert flags["backends"] == ["10.0.9.20:8443"] and flags["proxy"] == "payments"
    assert settings_flags(collection, {"no_api": True, "backends": ["b:1"]})["backends"] == ["b:1"]


def test_flags_must_match_the_record(tmp_path: Path) -> None:
    collection = read_raw_collection(_collection(tmp_path / "raw"))
    with pytest.raises(
        UsageError, match=r"--proxy 'orders': the collection in .* was made for proxy 'payments'"
    ):
        settings_flags(collection, {"proxy": "orders"})


@pytest.mark.parametrize(
    "args, message",
    [
        (["--from", "/nonexistent/raw", "--no-api"], "not a directory"),
        (["--from", "{raw}", "--proxy", "orders", "--no-api"], "was made for proxy 'payments'"),
        (["--from", "{raw}"], "no management API credentials"),
    ],
)
def test_cli_input_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    # Given bad input to `collect package`, Then it exits 2 with one line naming the problem and
    # writes nothing.
    raw = _collection(tmp_path / "raw")
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIGEE_")} | {"HOME": str(tmp_path)}
    argv = [a.replace("{raw}", str(raw)) for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "collector", "package", *argv, "--out", str(out)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert list(out.iterdir()) == []

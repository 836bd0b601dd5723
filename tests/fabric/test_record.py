"""The Fabric tasks' record of a collection: amended by every fab run, read by `collect package --from`."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from collector import layout
from collector.errors import InputError, UsageError
from collector.fabric import record as raw
from collector.run.raw_collection import read_raw_collection
from collector.steps import Step, StepResult, StepStatus


def _edit(out: Path) -> contextlib.AbstractContextManager[dict[str, Any]]:
    return raw.edit(out, lambda: "20260101T000000Z-abcdef")


def test_a_new_record_is_a_private_raw_collection(tmp_path: Path) -> None:
    # Given no directory yet, When a task records a host's step, Then the directory, hosts/ and the record are
    # private, and `collect package` reads the host, its role and step.
    out = tmp_path / "raw"
    with _edit(out) as record:
        entry = raw.add_host(record, "mp1", "message-processor", "10.0.0.11")
        raw.record_steps(entry, [StepResult("mp1", Step.FACTS, StepStatus.OK, seconds=0.25)])
    assert out.stat().st_mode & 0o777 == 0o700 and (out / layout.HOSTS_DIR).stat().st_mode & 0o777 == 0o700
    assert (out / layout.RAW_RECORD).stat().st_mode & 0o777 == 0o600
    collection = read_raw_collection(out)
    assert collection.run_id == "20260101T000000Z-abcdef" and collection.producer == raw.PRODUCER
    hosts = [(h.name, h.role, h.address) for h in collection.hosts]
    assert hosts == [("mp1", "message-processor", "10.0.0.11")]
    assert [(s.host, s.step, s.status) for s in collection.steps] == [("mp1", "facts", StepStatus.OK)]


def test_a_task_run_again_replaces_its_outcome(tmp_path: Path) -> None:
    # Given a failed connect and a failed stop, When the stop succeeds later, Then only this outcome remains
    # (and the cleanup failure it replaces goes); the other steps stay.
    entry: dict[str, Any] = {"steps": []}
    raw.record_steps(entry, [StepResult("mp1", Step.START_CAPTURE, StepStatus.OK)])
    raw.record_steps(entry, [StepResult("mp1", Step.CONNECT, StepStatus.FAILED, "timeout", "mp1 -> connect")])
    raw.record_steps(entry, [StepResult("mp1", Step.STOP_CAPTURE, StepStatus.FAILED, "stop-failed", "x"),
                             StepResult("mp1", Step.CLEANUP, StepStatus.FAILED, "timeout", "y")])
    raw.record_steps(entry, [StepResult("mp1", Step.STOP_CAPTURE, StepStatus.OK)], replaces=("cleanup",))
    steps = [(s["step"], s["status"]) for s in entry["steps"]]
    assert steps == [("start-capture", "ok"), ("stop-capture", "ok")]


def test_names_are_checked_and_kept(tmp_path: Path) -> None:
    with _edit(tmp_path) as record:
        raw.set_names(record, {"org": "acme", "env": "prod", "proxy": None})
        raw.set_names(record, {"org": "acme", "env": None, "proxy": "payments"})
        assert (record["org"], record["env"], record["proxy"]) == ("acme", "prod", "payments")
        with pytest.raises(UsageError, match="started for org 'acme'"):
            raw.set_names(record, {"org": "other", "env": None, "proxy": None})
        with pytest.raises(UsageError, match="Edge names"):
            raw.set_names(record, {"org": None, "env": "a b", "proxy": None})


def test_two_names_sharing_a_folder_are_refused(tmp_path: Path) -> None:
    with _edit(tmp_path) as record:
        raw.add_host(record, "mp 1", "message-processor", "10.0.0.1")
        with pytest.raises(UsageError, match="share the folder hosts/mp_1"):
            raw.add_host(record, "mp_1", "message-processor", "10.0.0.2")


def test_a_playbook_collection_is_not_amended(tmp_path: Path) -> None:
    # Given the output directory of playbooks/collect.yml (its hosts may still be collecting), Then the tasks
    # refuse to write into it, naming the file.
    (tmp_path / layout.RAW_RECORD).write_text(json.dumps(
        {"format": layout.RAW_FORMAT, "producer": "playbooks/collect.yml", "run_id": "r1", "hosts": []}))
    with pytest.raises(InputError, match="playbooks/collect.yml"), _edit(tmp_path):
        pass
    (tmp_path / layout.RAW_RECORD).write_text("[]")
    with pytest.raises(InputError, match="not a record"):
        raw.load(tmp_path)


def test_only_a_run_dir_start_capture_makes_is_stopped(tmp_path: Path) -> None:
    # Given a record whose capture names another directory (edited by hand, or by someone else), Then the
    # stop refuses it rather than send it to the host's stop and remove scripts.
    with _edit(tmp_path) as record:
        entry = raw.add_host(record, "mp1", "message-processor", "10.0.0.11")
        run_dir = f"/var/tmp/apigee-collector-{record['run_id']}-mp1"
        entry["capture"] = {"directory": run_dir}
        assert raw.capture_directory(record, entry, tmp_path) == run_dir
        for other in ("/etc", f"/var/tmp/apigee-collector-{record['run_id']}-mp2", "relative/dir", ""):
            entry["capture"] = {"directory": other}
            with pytest.raises(InputError, match="not one start-capture makes"):
                raw.capture_directory(record, entry, tmp_path)
    (tmp_path / layout.RAW_RECORD).write_text(json.dumps(
        {"format": layout.RAW_FORMAT, "producer": raw.PRODUCER, "run_id": "x; rm -rf /", "hosts": []}))
    with pytest.raises(InputError, match="run id"):
        raw.load(tmp_path)

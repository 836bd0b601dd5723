"""The raw collection's record (collection.json) as the Fabric tasks keep it.

Every `fab` invocation (one task on each of its hosts) reads and amends the same record in the output
directory: the run id that names the run dirs on the hosts, org/env/proxy, each host's role, address and
capture filter, each host × step outcome, the captures still running and the message ids. It has the shape
playbooks/collect.yml writes (`collector/run/raw_collection.py` reads both), plus a `capture` entry per host
while its tcpdump runs, which the reader ignores.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from collector import layout
from collector.errors import InputError, UsageError
from collector.remote import commands
from collector.steps import Step, StepResult

PRODUCER = "collector.fabric"
# The management API's names, as playbooks/collect.yml checks them.
EDGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._%-]{0,254}$")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_record(run_id: str) -> dict[str, Any]:
    return {
        "format": layout.RAW_FORMAT,
        "producer": PRODUCER,
        "run_id": run_id,
        "org": None,
        "env": None,
        "proxy": None,
        "started": now(),
        "finished": None,
        "backend_port": 0,
        "message_ids": [],
        "reproduction": None,  # the operator reproduces by hand between start-capture and stop-capture
        "hosts": [],
    }


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold the output directory's lock: a fab process on other hosts waits while this one edits the record.
    The lock is on the directory itself, so no lock file lands in the collection."""
    descriptor = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def prepare(out: Path) -> None:
    """The output directory and its hosts/ folder, private (captures and logs carry traffic and names)."""
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        (out / layout.HOSTS_DIR).mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise InputError(out, f"cannot create the output directory: {exc.strerror}") from exc
    if not out.is_dir():
        raise InputError(out, "not a directory: give another --out")


@contextlib.contextmanager
def edit(out: Path, new_run_id: Callable[[], str]) -> Iterator[dict[str, Any]]:
    """The record of the collection in `out` (created, with a new run id, when missing) for the block to
    change; written back, atomically and private, when the block ends without an error."""
    prepare(out)
    with locked(out):
        path = out / layout.RAW_RECORD
        record = read(path) if path.exists() else new_record(new_run_id())
        yield record
        record["finished"] = now()
        _write(path, record)


def load(out: Path) -> dict[str, Any] | None:
    """The record as it is now, ``None`` when `out` holds none yet."""
    path = out / layout.RAW_RECORD
    if not path.exists():
        return None
    with locked(out):
        return read(path)


def read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(path, f"cannot read the record of the collection: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != layout.RAW_FORMAT \
            or not isinstance(data.get("hosts"), list) or not isinstance(data.get("run_id"), str):
        raise InputError(path, f"not a record of a raw collection ({layout.RAW_FORMAT}): give another --out")
    try:
        commands.check_run_id(data["run_id"])  # it names files on the hosts and is matched in cmdlines
    except ValueError as exc:
        raise InputError(path, str(exc)) from exc
    if data.get("producer") != PRODUCER:
        raise InputError(path, f"written by {data.get('producer')!r}, not by these tasks: its hosts may "
                               "still be collecting; give another --out")
    return data


def _write(path: Path, record: dict[str, Any]) -> None:
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as target:
        target.write(json.dumps(record, indent=2) + "\n")
    staging.replace(path)


def set_names(record: dict[str, Any], names: dict[str, str | None]) -> None:
    """org/env/proxy: a name given again must be the one recorded (one collection, one proxy)."""
    for key, value in names.items():
        if value is None:
            continue
        if not EDGE_NAME.match(value):
            raise UsageError(f"--{key} {value!r}: Edge names are letters, digits, '.', '_', '-', '%'")
        recorded = record.get(key)
        if recorded not in (None, value):
            raise UsageError(f"--{key} {value!r}: this collection was started for {key} {recorded!r}; "
                             "give the same name, or another --out for another proxy")
        record[key] = value


def host_entry(record: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((h for h in record["hosts"] if isinstance(h, dict) and h.get("name") == name), None)


def add_host(record: dict[str, Any], name: str, role: str, address: str) -> dict[str, Any]:
    """The host's entry (made when new), with its role and address as this task sees them."""
    entry = host_entry(record, name)
    directory = layout.safe_component(name)
    if entry is None:
        other = next((h for h in record["hosts"] if h.get("directory") == directory), None)
        if other is not None:
            raise UsageError(f"hosts {other.get('name')!r} and {name!r} would share the folder "
                             f"{layout.HOSTS_DIR}/{directory}: name them apart (an ssh config alias)")
        entry = {"name": name, "directory": directory, "role": role, "address": address, "peers": [],
                 "steps": []}
        record["hosts"].append(entry)
    entry.update(role=role, address=address)
    return entry


def capture_directory(record: dict[str, Any], entry: dict[str, Any], path: Path) -> str:
    """The run dir of the host's running capture, as start-capture recorded it. Only the name start-capture
    gives a run dir (this run's id and host) is taken: whatever else the file says is never removed."""
    capture = entry.get("capture") or {}
    directory = str(capture.get("directory") or "")
    parent = directory.rpartition("/")[0] or "/"
    try:
        expected = commands.run_dir(parent, str(record["run_id"]), str(entry.get("name")))
    except ValueError:
        expected = ""
    if not directory.startswith("/") or directory != expected:
        raise InputError(path, f"host {entry.get('name')}: the capture's run dir {directory!r} is not one "
                               "start-capture makes; remove it from the record and the host by hand")
    return directory


def record_steps(entry: dict[str, Any], results: Sequence[StepResult], replaces: Sequence[str] = ()) -> None:
    """The outcomes of this task on the host. Earlier outcomes of the same steps (and of `replaces`) go: a
    task run again says how it went this time. A connect failure goes once the host answered."""
    answered = any(r.step != Step.CONNECT for r in results)
    gone = {str(r.step) for r in results} | set(replaces) | ({Step.CONNECT.value} if answered else set())
    steps = [s for s in entry.get("steps") or [] if s.get("step") not in gone]
    steps += [
        {
            "step": str(r.step),
            "status": r.status.value,
            "reason": r.reason,
            "message": r.message,
            "seconds": round(r.seconds, 3),
        }
        for r in results
    ]
    entry["steps"] = steps

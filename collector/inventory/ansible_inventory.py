"""Reading an inventory through the operator's own `ansible-inventory -i INV --list`: found on the PATH (or
beside our Python), bounded in time and output, its JSON checked before use."""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from collector.errors import InputError
from collector.inventory.documents import VAULT_HEADER
from collector.inventory.groups import AnsibleView

PROGRAM = "ansible-inventory"
# A dynamic inventory of a large cloud account takes seconds; one that hangs must not hang the run.
TIMEOUT_SECONDS = 60.0
# Hostvars of thousands of hosts fit easily; a script printing without end does not.
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
_STDERR_KEPT = 64 * 1024
_STDERR_SHOWN = 700
_SECRET_NAME = re.compile(r"PASS|TOKEN|SECRET|KEY|CREDENTIAL|AUTH", re.IGNORECASE)


def find_ansible_inventory() -> str | None:
    """`ansible-inventory` on the PATH (the operator's Ansible, with their collections and ansible.cfg), else
    the one installed beside the Python running collect (a venv with ansible-core that is not activated)."""
    found = shutil.which(PROGRAM)
    if found:
        return found
    beside = Path(sys.executable).parent / PROGRAM
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


@dataclass(frozen=True)
class ProgramRun:
    """What a bounded run of a program left: `returncode` is None when it was killed (time or output)."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    overflowed: bool = False


def run_bounded(argv: list[str], timeout: float, max_output: int, env: Mapping[str, str]) -> ProgramRun:
    """Run `argv` with no stdin, in its own session so a timeout kills what it started too (a dynamic
    inventory script); stdout is capped at `max_output` bytes, stderr keeps its first 64 KiB."""
    process = subprocess.Popen(  # noqa: S603  # argv is ours: the program found above, -i and a path
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env),
        start_new_session=True,
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = bytearray(), bytearray()
    timed_out = overflowed = False
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, out)
        selector.register(process.stderr, selectors.EVENT_READ, err)
        try:
            while selector.get_map() and not overflowed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                for key, _ in selector.select(remaining):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        selector.unregister(key.fileobj)
                    elif key.data is out:
                        out += chunk
                        overflowed = len(out) > max_output
                    elif len(err) < _STDERR_KEPT:
                        err += chunk[: _STDERR_KEPT - len(err)]
            if not (timed_out or overflowed):
                try:
                    process.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    timed_out = True
        finally:
            _kill_session(process)
            process.stdout.close()
            process.stderr.close()
    code = None if timed_out or overflowed else process.returncode
    return ProgramRun(code, bytes(out), bytes(err), timed_out, overflowed)


def _kill_session(process: subprocess.Popen[bytes]) -> None:
    # Also after a normal exit: a script may have left a child behind in the session we created.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The operator's environment for ansible-inventory (cloud plugins need their credentials), minus
    collect's own APIGEE_* secrets, which no inventory script needs; an unparsable source fails instead of
    leaving only `localhost`, and no colour codes reach our messages."""
    env = {k: v for k, v in environ.items() if not k.startswith("APIGEE_")}
    env.update(ANSIBLE_INVENTORY_UNPARSED_FAILED="True", ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_FORCE_COLOR", None)
    return env


def read_with_ansible(
    path: Path, program: str, timeout: float = TIMEOUT_SECONDS, max_output: int = MAX_OUTPUT_BYTES,
    environ: Mapping[str, str] | None = None,
) -> tuple[AnsibleView, str]:
    """`ansible-inventory -i PATH --list`, as an AnsibleView, and its warnings as one line ("" without any);
    every way it can fail is an InputError."""
    environ = os.environ if environ is None else environ
    try:
        argv = [program, "-i", str(path), "--list"]
        run = run_bounded(argv, timeout, max_output, child_environment(environ))
    except OSError as e:
        raise InputError(path, f"cannot run {program}: {e.strerror or e}") from e
    if run.timed_out:
        raise InputError(
            path,
            f"{PROGRAM} did not finish within {timeout:g} s (a dynamic inventory that hangs?); write the "
            f"inventory once with `{PROGRAM} -i {path} --list --yaml > hosts.yml` and pass that",
        )
    if run.overflowed:
        limit = f"{max_output // (1024 * 1024)} MiB" if max_output >= 1024 * 1024 else f"{max_output} bytes"
        raise InputError(path, f"{PROGRAM} printed more than {limit}; not an inventory")
    if run.returncode != 0:
        hint = _vault_hint(path)
        raise InputError(
            path,
            f"{PROGRAM} failed (exit {run.returncode}): {summarize_stderr(run.stderr, environ)}{hint}",
        )
    warnings = summarize_stderr(run.stderr, environ) if run.stderr.strip() else ""
    return parse_inventory_list(path, run.stdout), warnings


def summarize_stderr(stderr: bytes, environ: Mapping[str, str]) -> str:
    """Ansible's multi-line report as one bounded line: control characters dropped (a script's stderr must not
    drive the terminal), repeated and framing lines left out, secret-looking environment values masked."""
    text = stderr.decode("utf-8", "replace")
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    text = re.sub(r"[^\S\n]+|[\x00-\x08\x0b-\x1f\x7f]", " ", text)
    lines: list[str] = []
    size = 0
    for raw in text.splitlines():
        line = raw.strip()
        # Ansible says each reason twice (after the plugin that failed, then alone): once is enough.
        if not line or line == "<<< caused by >>>" or line.startswith("Origin:"):
            continue
        if any(line.rstrip(".") in kept for kept in lines):
            continue
        lines.append(line)
        size += len(line) + 3
        if size > _STDERR_SHOWN:
            break
    summary = " | ".join(lines) or "(nothing on stderr)"
    for name, value in environ.items():
        if len(value) >= 6 and _SECRET_NAME.search(name):
            summary = summary.replace(value, f"<{name}>")
    if len(summary) > _STDERR_SHOWN:
        summary = summary[:_STDERR_SHOWN] + " …"
    return summary


def _vault_hint(path: Path) -> str:
    """A hint when the inventory holds vault-encrypted files, the usual reason ansible-inventory fails."""
    candidates = [path] if path.is_file() else []
    for folder in ("group_vars", "host_vars"):
        base = (path if path.is_dir() else path.parent) / folder
        if base.is_dir():
            candidates += sorted(p for p in base.rglob("*") if p.is_file())[:200]
    for candidate in candidates:
        try:
            with candidate.open("rb") as handle:
                head = handle.read(len(VAULT_HEADER))
        except OSError:
            continue
        if head == VAULT_HEADER.encode():
            return (
                f" (the inventory holds vault-encrypted files such as {candidate.name}: set up the vault "
                "password as for your playbooks, e.g. ANSIBLE_VAULT_PASSWORD_FILE or vault_password_file in "
                "ansible.cfg; collect never prompts for it)"
            )
    return ""


def parse_inventory_list(path: Path, output: bytes) -> AnsibleView:
    """The JSON of `ansible-inventory --list` as an AnsibleView; anything else is an InputError, never a
    traceback (the JSON may come from a third-party script or plugin)."""
    try:
        document = json.loads(output)
    except json.JSONDecodeError as e:
        raise InputError(
            path, f"{PROGRAM} printed no valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
        ) from e
    except (UnicodeDecodeError, RecursionError, ValueError) as e:
        raise InputError(path, f"{PROGRAM} printed no valid JSON ({type(e).__name__})") from e
    if not isinstance(document, dict):
        raise InputError(path, f"{PROGRAM} printed JSON that is not an inventory (expected an object)")
    meta = document.get("_meta", {})
    hostvars = meta.get("hostvars", {}) if isinstance(meta, dict) else None
    if not isinstance(hostvars, dict) or not all(isinstance(v, dict) for v in hostvars.values()):
        raise InputError(path, f"{PROGRAM} printed JSON whose _meta.hostvars is not an object of objects")
    group_hosts: dict[str, tuple[str, ...]] = {}
    group_children: dict[str, tuple[str, ...]] = {}
    for group, body in document.items():
        if group == "_meta":
            continue
        if not isinstance(body, dict):
            raise InputError(path, f"{PROGRAM} printed JSON where group {group!r} is not an object")
        for key, target in (("hosts", group_hosts), ("children", group_children)):
            names = body.get(key, [])
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise InputError(
                    path, f"{PROGRAM} printed JSON where group {group!r}: {key!r} is not a list of names"
                )
            target[group] = tuple(names)
    return AnsibleView(group_hosts=group_hosts, group_children=group_children, hostvars=hostvars)

"""Copy the host-side scripts of collector/remote/commands.py into the playbook's role (`python -m
tests.playbooks.sync_scripts`); test_collect.py fails until the copies are the collector's, byte for byte."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from collector.remote import commands

FILES = Path(__file__).resolve().parents[2] / "playbooks" / "roles" / "collector" / "files"

# playbook file -> the commands.py function whose argv[2] is its script (arguments only fill the call).
SCRIPTS: dict[str, tuple[str, Callable[[], list[str]]]] = {
    "start-capture.sh": (
        "start_capture",
        lambda: commands.start_capture("/tmp", "/tmp/d", "tcpdump", ["host", "a"], 1, 1),
    ),
    "check-capture.sh": ("check_capture", lambda: commands.check_capture("/tmp/d")),
    "stop-capture.sh": ("stop_capture", lambda: commands.stop_capture("/tmp/d", "run", "user")),
    "remove-run-dir.sh": ("remove_run_dir", lambda: commands.remove_run_dir("/tmp/d", "run")),
    "list-logs.sh": ("list_logs", lambda: commands.list_logs("/x")),
    "excerpt-logs.sh": ("excerpt_logs", lambda: commands.excerpt_logs(["/x"], ["id"], 1)),
    "stream-logs.sh": ("stream_logs", lambda: commands.stream_logs(["/x"], 0)),
    "facts.sh": ("gather_facts", lambda: commands.gather_facts("tcpdump", "/tmp")),
}


def script_of(name: str) -> str:
    """The script collector/remote/commands.py sends for the playbook file `name`."""
    return SCRIPTS[name][1]()[2].lstrip("\n")


def body_of(path: Path) -> str:
    """A playbook script without its header comments."""
    lines = path.read_text().splitlines(keepends=True)
    while lines and lines[0].startswith("# "):
        lines.pop(0)
    return "".join(lines)


def header_of(name: str) -> str:
    function = SCRIPTS[name][0]
    return (
        f"# The script of collector/remote/commands.py {function}(): keep them identical (tests/playbooks checks).\n"
        "# Run as `sh -c SCRIPT NAME ARGS...`: every value arrives as a positional argument, never parsed by a "
        "shell.\n"
    )


def sync_scripts() -> list[str]:
    """Rewrite every copy that differs; returns the names rewritten."""
    changed = []
    for name in SCRIPTS:
        path = FILES / name
        if not path.exists() or body_of(path) != script_of(name):
            path.write_text(header_of(name) + script_of(name))
            changed.append(name)
    return changed


if __name__ == "__main__":
    print("\n".join(sync_scripts()) or "the playbook's scripts are the collector's")

"""An MP's system.log and rotated files: the message-id lines with context, the newest log within a budget."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collector.remote import host_steps
from collector.remote.connection import CommandResult, HostConnection, HostError
from collector.remote.host_steps import HostCommand
from collector.steps import Step


@dataclass(frozen=True)
class LogFile:
    """One log file on the host: path, modification time, and its size once uncompressed."""

    path: str
    mtime: int
    size: int

    @property
    def compressed(self) -> bool:
        return self.path.endswith(".gz")


@dataclass(frozen=True)
class LogSelection:
    """What fits the budget: files oldest first, the first cut to its last `first_file_bytes` (0 = whole)."""

    files: tuple[LogFile, ...]
    first_file_bytes: int

    @property
    def total_bytes(self) -> int:
        sizes = [f.size for f in self.files]
        if sizes and self.first_file_bytes:
            sizes[0] = self.first_file_bytes
        return sum(sizes)


@dataclass(frozen=True)
class RefusedLog:
    """An entry beside system.log that is not read: a link, a hard link, not a regular file, foreign owner."""

    path: str
    why: str


def parse_refused_logs(text: str) -> list[RefusedLog]:
    """`refused<TAB>why<TAB>path` lines of commands.list_logs."""
    refused = []
    for line in text.splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[0] == "refused":
            refused.append(RefusedLog(path=parts[2], why=parts[1]))
    return refused


def describe_refused(refused: Sequence[RefusedLog]) -> str:
    """One sentence for the step record: which files were not read, and why."""
    if not refused:
        return ""
    return "not read (never followed through sudo): " + "; ".join(f"{r.path}: {r.why}" for r in refused)


def parse_log_listing(text: str) -> list[LogFile]:
    """`mtime<TAB>size<TAB>path` lines (the list-logs command) -> files, newest first."""
    files = []
    for line in text.splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
            files.append(LogFile(path=parts[2], mtime=int(parts[0]), size=int(parts[1])))
    return sorted(files, key=lambda f: (-f.mtime, _rotation_index(f.path)))


def _rotation_index(path: str) -> int:
    """0 for system.log itself, N for system.log.N[.gz]: breaks mtime ties the way logrotate numbers files."""
    match = re.search(r"\.(\d+)(\.gz)?$", path)
    if match:
        return int(match.group(1))
    return 0 if path.endswith(".log") else 1_000_000


def select_logs(files_newest_first: Sequence[LogFile], budget_bytes: int) -> LogSelection:
    """Keep the newest data: whole files from the newest back, the last one cut to what the budget leaves."""
    chosen: list[LogFile] = []
    left = budget_bytes
    cut = 0
    for log in files_newest_first:
        if left <= 0:
            break
        chosen.append(log)
        if log.size > left:
            cut = left
            break
        left -= log.size
    return LogSelection(files=tuple(reversed(chosen)), first_file_bytes=cut)


def list_logs(connection: HostConnection) -> list[LogFile]:
    """The system.log and its rotated files on the host, newest first; HostError(log-missing) if none."""
    return list_log_files(connection)[0]


def list_log_files(connection: HostConnection) -> tuple[list[LogFile], list[RefusedLog]]:
    """The log files that may be read (newest first) and the entries refused; HostError(log-missing) if none
    may be read (the message then says which were refused)."""
    host = connection.host
    result = host_steps.send(
        connection, HostCommand.LIST_LOGS, host_steps.list_logs_argv(host), sudo=_use_sudo(connection)
    )
    files = parse_log_listing(result.stdout)
    refused = parse_refused_logs(result.stdout)
    if not files:
        raise HostError(
            host.name,
            Step.LOGS,
            "log-missing",
            f"no {host.system_log} (nor rotated files) on the host that can be read safely"
            + (f" ({describe_refused(refused)})" if refused else "")
            + "; set `system_log:` in the inventory",
        )
    return files, refused


def write_excerpt(
    connection: HostConnection,
    files_newest_first: Sequence[LogFile],
    message_ids: Sequence[str],
    context_lines: int,
    local_path: Path,
) -> CommandResult:
    """Lines holding any message id, with context, filtered on the host and streamed to `local_path`."""
    oldest_first = [f.path for f in reversed(files_newest_first)]
    argv = host_steps.excerpt_logs_argv(oldest_first, message_ids, context_lines)
    result = host_steps.send(
        connection, HostCommand.EXCERPT_LOGS, argv, sudo=_use_sudo(connection), local_path=local_path
    )
    if result.exit_code not in (0, 1):  # grep: 0 found, 1 none
        raise HostError(
            connection.host.name,
            Step.LOGS,
            "command-failed",
            f"searching the logs exited {result.exit_code}: {result.stderr.strip()[:300]}",
        )
    return result


def write_log(
    connection: HostConnection, files_newest_first: Sequence[LogFile], budget_bytes: int, local_path: Path
) -> LogSelection:
    """The newest `budget_bytes` of the log(s), gzip -1 on the host, streamed to `local_path`."""
    selection = select_logs(files_newest_first, budget_bytes)
    argv = host_steps.stream_logs_argv(
        [f.path for f in selection.files], selection.first_file_bytes, budget_bytes
    )
    result = host_steps.send(
        connection, HostCommand.STREAM_LOGS, argv, sudo=_use_sudo(connection), local_path=local_path
    )
    if result.exit_code != 0:
        raise HostError(
            connection.host.name,
            Step.LOGS,
            "command-failed",
            f"streaming the logs exited {result.exit_code}: {result.stderr.strip()[:300]}",
        )
    return selection


def _use_sudo(connection: HostConnection) -> bool:
    """Logs belong to `apigee`: read them through sudo when the host allows it, else as the login user."""
    if not connection.host.sudo:
        return False
    try:
        connection.check_sudo(Step.LOGS)
    except HostError:
        return False
    return True

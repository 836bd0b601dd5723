"""Remote command lines as argv lists: fixed shell scripts take every variable as a positional argument."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from importlib import resources

from collector.tls.probe_results import format_target

# Every script is a fixed file in scripts/ (the Ansible role runs the very same files): names, paths, ids and
# filters only ever arrive as "$1", "$2", ... so nothing a user or the management API supplies is parsed by a
# shell; `render` shlex-quotes each argv element.


def _script(name: str) -> str:
    return (resources.files("collector.remote") / "scripts" / name).read_text(encoding="utf-8")


CAPTURE_FILE = "capture.pcap"
CAPTURE_LOG = "tcpdump.log"
CAPTURE_PID = "pid"
RUN_DIR_PREFIX = "apigee-collector-"
MIN_FREE_KIB = 1024  # a capture dir with less than this free is reported as full before tcpdump starts
EXIT_TCPDUMP_MISSING = 127
EXIT_DISK_FULL = 28  # ENOSPC
EXIT_NO_CAPTURE_DIR = 66  # EX_NOINPUT
EXIT_NOT_RUNNING = 3
EXIT_NOT_LISTENING = 4
EXIT_NOT_OURS = 5
EXIT_RUN_DIR_CHANGED = 6  # the run dir is missing, replaced or opened up: not the one start-capture made
EXIT_RUN_DIR_EXISTS = 73  # EX_CANTCREAT: someone else made a directory under this run's name
EXIT_UNSAFE_CAPTURE_DIR = 77  # EX_NOPERM: a symlink in its path, foreign owner, or writable by others

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_FILTER_ADDRESS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]*$")

# No --immediate-mode: measured on a loaded 2-CPU host (load 5), `-i any -U --immediate-mode` lost most
# packets ("dropped by kernel") in 9 of 9 runs while `-U` alone kept all of them (immediate mode makes libpcap
# use a TPACKET_V2 ring of snaplen-sized frames: with -s 0 on `any`, eight 256 KiB frames in 2 MiB). The tail
# that block delivery holds back (up to ~1 s) is collected by the stop script: it asks tcpdump for its
# counters (SIGUSR1) and sends SIGINT once the kernel's count has not moved for longer than a block can wait
# and tcpdump sleeps in poll: at once for a capture idle since its start (check-capture records a first
# count).
_START_CAPTURE = _script("start-capture.sh")

_CHECK_CAPTURE = _script("check-capture.sh")

_STOP_CAPTURE = _script("stop-capture.sh")

_REMOVE_RUN_DIR = _script("remove-run-dir.sh")

_LIST_LOGS = _script("list-logs.sh")

# Files arrive oldest first after the ids; each id is one `-e` argument of grep -F.
_EXCERPT_LOGS = _script("excerpt-logs.sh")

# First argument: bytes to keep from the oldest (partial) file, 0 for all; then files oldest first.
_STREAM_LOGS = _script("stream-logs.sh")

_FACTS = _script("facts.sh")


def render(argv: Sequence[str]) -> str:
    """The command line sent to the remote shell: every element quoted, so each arrives as one argument."""
    return shlex.join(argv)


def check_run_id(run_id: str) -> str:
    """Run ids name remote files and are matched in /proc/PID/cmdline, so they are plain tokens."""
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} must be letters, digits, '-' or '_' (at most 64)")
    return run_id


def run_dir(capture_dir: str, run_id: str, host_name: str) -> str:
    """The per-run directory on a host: `<capture_dir>/apigee-collector-<run id>-<host>`."""
    safe_host = re.sub(r"[^A-Za-z0-9._-]", "_", host_name)[:64] or "_"
    return f"{capture_dir.rstrip('/') or ''}/{RUN_DIR_PREFIX}{check_run_id(run_id)}-{safe_host}"


def capture_filter(addresses: Sequence[str], port: int | None = None) -> list[str]:
    """The tcpdump filter as separate words: `( host a or host b ) and port P` (parentheses as words)."""
    if not addresses:
        raise ValueError("a capture needs at least one peer address")
    words: list[str] = ["("]
    for index, address in enumerate(dict.fromkeys(addresses)):
        if not _FILTER_ADDRESS.match(address):
            raise ValueError(f"{address!r} is not an IP address or host name")
        words += (["or"] if index else []) + ["host", address]
    words.append(")")
    if port is not None:
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} is out of range")
        words += ["and", "port", str(port)]
    return words


def start_capture(
    capture_dir: str,
    directory: str,
    tcpdump: str,
    filter_words: Sequence[str],
    max_seconds: int,
    max_megabytes: int,
    files: int = 1,
) -> list[str]:
    """Start tcpdump detached under `setsid nohup timeout` (the dead-man switch) and print its PID.

    `max_megabytes` is split over `files` ring files of `-C` megabytes each (at least 1 MB)."""
    per_file = max(1, max_megabytes // max(1, files))
    return [
        "sh",
        "-c",
        _START_CAPTURE,
        "collector-start-capture",
        capture_dir,
        directory,
        tcpdump,
        str(int(max_seconds)),
        str(per_file),
        str(max(1, files)),
        *filter_words,
    ]


def check_capture(directory: str) -> list[str]:
    """Exit 0 (printing the PID) when tcpdump runs and says "listening" (waiting up to 1 s for it on the
    host, then recording its first packet count for the stop); 3 not running; 4 not listening; 6 the run dir
    is not the one start-capture made (see stop_capture)."""
    return ["sh", "-c", _CHECK_CAPTURE, "collector-check-capture", directory]


def stop_capture(
    directory: str, run_id: str, login_user: str, wait_seconds: int = 5, settle_rounds: int = 4
) -> list[str]:
    """Wait (up to `settle_rounds` x 1.2 s) until tcpdump holds no packet back (its packets-received count
    still 1.2 s after it last moved, tcpdump asleep in poll; at once when idle since check-capture counted),
    SIGINT it by PID (only if its cmdline holds the run id), wait up to `wait_seconds` for its exit, KILL as a
    fallback, chown the files to the login user, print tcpdump's final counters as `summary: ...` lines,
    list the capture files oldest first and their
    `sha256: HEX NAME`. Exit 6, touching nothing, unless the run dir is still the one start-capture made (its
    device:inode and the capture's pid are recorded in `DIR.trust`, a root-only file beside it)."""
    return [
        "sh",
        "-c",
        _STOP_CAPTURE,
        "collector-stop-capture",
        directory,
        check_run_id(run_id),
        login_user,
        str(int(wait_seconds)),
        str(int(settle_rounds)),
    ]


def remove_run_dir(directory: str, run_id: str) -> list[str]:
    """Stop a capture still running there (only by the pid recorded in `DIR.trust`, see stop_capture, even if
    the run dir was moved) and remove the run dir and its trust file (only a path holding the run id)."""
    return ["sh", "-c", _REMOVE_RUN_DIR, "collector-remove-run-dir", directory, check_run_id(run_id)]


def list_logs(system_log: str) -> list[str]:
    """`mtime<TAB>uncompressed bytes<TAB>path` for system.log and its rotated (plain or .gz) files, and
    `refused<TAB>why<TAB>path` for entries that are links, hard links, not regular files or foreign-owned."""
    return ["sh", "-c", _LIST_LOGS, "collector-list-logs", system_log]


def excerpt_logs(files: Sequence[str], message_ids: Sequence[str], context_lines: int) -> list[str]:
    """Lines holding any of the message ids (fixed strings), with context, prefixed by file name."""
    if not message_ids:
        raise ValueError("an excerpt needs at least one message id")
    for message_id in message_ids:
        # grep -e splits a pattern at newlines, and an empty pattern matches every line.
        if not message_id or "\n" in message_id or "\0" in message_id:
            raise ValueError(f"message id {message_id!r} is empty or holds a newline/NUL")
    return [
        "sh",
        "-c",
        _EXCERPT_LOGS,
        "collector-excerpt-logs",
        str(int(context_lines)),
        str(len(message_ids)),
        *message_ids,
        *files,
    ]


def stream_logs(
    files_oldest_first: Sequence[str], first_file_bytes: int, budget_bytes: int | None = None
) -> list[str]:
    """The files joined oldest first (the first cut to its last `first_file_bytes`), gzip -1 on the wire. Each
    file yields no more than its size (a .gz: its declared size); all together at most `budget_bytes`."""
    budget = ["--budget", str(int(budget_bytes))] if budget_bytes is not None else []
    return [
        "sh",
        "-c",
        _STREAM_LOGS,
        "collector-stream-logs",
        *budget,
        str(int(first_file_bytes)),
        *files_oldest_first,
    ]


def gather_facts(tcpdump: str, capture_dir: str) -> list[str]:
    """`key=value` lines: hostname, time, kernel, os, addresses, tool versions, capture dir free KiB."""
    return ["sh", "-c", _FACTS, "collector-facts", tcpdump, capture_dir]


def sudo_prefix(password: bool) -> list[str]:
    """`sudo -n` never prompts (fails at once without NOPASSWD); `sudo -S -p ''` reads a password on stdin."""
    return ["sudo", "-S", "-p", "", "--"] if password else ["sudo", "-n", "--"]


# Constant script; every variable arrives as a positional argument. The request on stdin makes a TLS 1.3
# server say what it thinks of our (missing) certificate, and -ign_eof keeps s_client reading until the server
# answers or closes; `timeout` bounds a server that does neither. stdin never reaches the SSH channel.
_S_CLIENT = (
    "\nt=$1 h=$2\nshift 2\n"
    "printf 'HEAD / HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n' \"$h\""
    ' | timeout "$t" openssl s_client -ign_eof -showcerts "$@" 2>&1\n'
)


# One bare handshake of a probe's survey: stdin is empty, so s_client ends right after the handshake.
_S_CLIENT_HANDSHAKE = '\nt=$1\nshift\ntimeout "$t" openssl s_client "$@" </dev/null 2>&1\n'
_S_CLIENT_VERSIONS = {"TLSv1": "-tls1", "TLSv1.1": "-tls1_1", "TLSv1.2": "-tls1_2", "TLSv1.3": "-tls1_3"}


def build_s_client_handshake_argv(host: str, port: int, sni: str | None, *, timeout: float,
                                  version: str | None = None, cipher_list: str | None = None,
                                  ciphersuites: str | None = None) -> list[str]:
    """The argv of one bare `openssl s_client` handshake: `version` (``TLSv1.2``…) forced, `cipher_list`
    (OpenSSL names, TLS 1.2 and older) and `ciphersuites` (TLS 1.3) as given, and no server_name at all
    when `sni` is ``None`` (s_client 1.1.1+ sends the host name otherwise)."""
    options = ["-connect", format_target(host, port)]
    options += ["-servername", sni] if sni else ["-noservername"]
    if version is not None:
        options.append(_S_CLIENT_VERSIONS[version])
    if cipher_list is not None:
        options += ["-cipher", cipher_list]
    if ciphersuites is not None:
        options += ["-ciphersuites", ciphersuites]
    return ["sh", "-c", _S_CLIENT_HANDSHAKE, "sh", f"{max(1, round(timeout))}", *options]


def build_s_client_argv(host: str, port: int, sni: str | None, *, timeout: float = 20,
                        tls_version: str | None = None, cert: str | None = None,
                        key: str | None = None) -> list[str]:
    """The argv that runs `openssl s_client` against HOST:PORT on a host (stdout and stderr together).

    `cert`/`key` are paths of files already on that host; `tls_version` (``1.2``/``1.3``) forces the version.
    """
    if (cert is None) != (key is None):
        raise ValueError("cert and key go together")
    options = ["-connect", format_target(host, port)]
    if sni:
        options += ["-servername", sni]
    if tls_version:
        options.append("-tls1_2" if tls_version == "1.2" else "-tls1_3")
    if cert and key:
        options += ["-cert", cert, "-key", key]
    host_header = sni or (f"[{host}]" if ":" in host else host)
    return ["sh", "-c", _S_CLIENT, "sh", f"{max(1, round(timeout))}", host_header, *options]

"""Remote command lines as argv lists: fixed shell scripts take every variable as a positional argument."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

# Every script below is a constant: names, paths, ids and filters only ever arrive as "$1", "$2", ... so
# nothing a user or the management API supplies is parsed by a shell; `render` shlex-quotes each argv element.

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

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_FILTER_ADDRESS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]*$")

# No --immediate-mode: measured on a loaded 2-CPU host (load 5), `-i any -U --immediate-mode` lost most
# packets ("dropped by kernel") in 9 of 9 runs while `-U` alone kept all of them; the tail that block delivery
# holds back is collected by the stop script, which waits until the capture file stops growing before SIGINT.
_START_CAPTURE = r"""
umask 077
parent=$1 dir=$2 tcpdump=$3 seconds=$4 megabytes=$5 files=$6
shift 6
tcpdump_path=$(command -v "$tcpdump") || { echo "tcpdump not found: $tcpdump" >&2; exit 127; }
[ -d "$parent" ] || { echo "capture dir $parent does not exist" >&2; exit 66; }
free=$(df -Pk "$parent" | awk 'NR==2 {print $4}')
[ "${free:-0}" -ge 1024 ] || { echo "capture dir $parent is full: ${free:-0} KiB free" >&2; exit 28; }
mkdir -p "$dir" || exit 28
setsid nohup timeout -s INT -k 10 "$seconds" "$tcpdump_path" -i any -s 0 -U -Z root \
  -C "$megabytes" -W "$files" -w "$dir/capture.pcap" "$@" >"$dir/tcpdump.log" 2>&1 </dev/null &
echo $! >"$dir/pid"
echo $!
"""

_CHECK_CAPTURE = r"""
dir=$1
pid=$(cat "$dir/pid" 2>/dev/null) || exit 3
kill -0 "$pid" 2>/dev/null || { cat "$dir/tcpdump.log" >&2; exit 3; }
grep -q listening "$dir/tcpdump.log" || exit 4
echo "$pid"
"""

_STOP_CAPTURE = r"""
dir=$1 run_id=$2 login=$3 wait=$4 settle=$5
pid=$(cat "$dir/pid" 2>/dev/null) || { echo "no pid file in $dir" >&2; exit 3; }
# The capture was orphaned to init: once it exits it stays a zombie until init reaps it, which some inits (a
# container's) do only about once a second. A zombie has stopped: its files are complete.
running() { kill -0 "$1" 2>/dev/null && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]; }
# A capture that already ended by its time limit leaves a PID that may be reused: only signal our own.
if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$run_id"; then
  # On `-i any` the kernel hands packets over in blocks retired after up to ~1 s, and tcpdump drops what it has
  # not read when SIGINT arrives: wait until the capture stops growing (at most `settle` rounds of 1.2 s).
  before=-1 after=$(stat -c %s "$dir"/capture.pcap* 2>/dev/null | awk '{s += $1} END {print s + 0}') n=0
  while [ "$before" != "$after" ] && [ "$n" -lt "$settle" ]; do
    sleep 1.2; before=$after; n=$((n + 1))
    after=$(stat -c %s "$dir"/capture.pcap* 2>/dev/null | awk '{s += $1} END {print s + 0}')
  done
  kill -INT "$pid"
  i=0
  while running "$pid" && [ "$i" -lt $((wait * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  if running "$pid"; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"; echo killed; fi
fi
chown -R "$login" "$dir"
grep -E 'packets (captured|received|dropped)' "$dir/tcpdump.log" | sed 's/^/summary: /'
ls -1tr "$dir" | grep '^capture\.pcap' || true
"""

_REMOVE_RUN_DIR = r"""
dir=$1 run_id=$2
case $dir in *"$run_id"*) ;; *) echo "refusing to remove $dir" >&2; exit 5;; esac
pid=$(cat "$dir/pid" 2>/dev/null)
if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$run_id"; then
  kill -INT "$pid"; sleep 1; kill -KILL -- "-$pid" 2>/dev/null
fi
rm -rf -- "$dir"
"""

_LIST_LOGS = r"""
for f in "$1"*; do
  [ -f "$f" ] || continue
  case $f in
    *.gz) raw=$(gzip -l -- "$f" 2>/dev/null | awk 'NR==2 {print $2}');;
    *) raw=$(stat -c %s -- "$f");;
  esac
  printf '%s\t%s\t%s\n' "$(stat -c %Y -- "$f")" "${raw:-0}" "$f"
done
"""

# Files arrive oldest first after the ids; each id is one `-e` argument of grep -F.
_EXCERPT_LOGS = r"""
context=$1 count=$2
shift 2
ids=""
n=0
for id; do
  [ "$n" -ge "$count" ] && break
  if [ "$n" -eq 0 ]; then ids=$id; else ids="$ids
$id"; fi
  n=$((n + 1))
done
shift "$count"
status=1
for f; do
  # -a: one NUL byte in a log makes grep print only "binary file matches" and drop the excerpt.
  case $f in
    *.gz) gzip -dc -- "$f" | LC_ALL=C grep -a -F -H --label="$f" -C "$context" -e "$ids" -- ;;
    *) LC_ALL=C grep -a -F -H -C "$context" -e "$ids" -- "$f" ;;
  esac
  rc=$?
  [ "$rc" -eq 0 ] && status=0
  [ "$rc" -gt 1 ] && status=2
done
exit "$status"
"""

# First argument: bytes to keep from the oldest (partial) file, 0 for all; then files oldest first.
_STREAM_LOGS = r"""
first=$1
shift
{
  n=0
  for f; do
    if [ "$n" -eq 0 ] && [ "$first" -gt 0 ]; then
      case $f in *.gz) gzip -dc -- "$f" | tail -c "$first";; *) tail -c "$first" -- "$f";; esac
    else
      case $f in *.gz) gzip -dc -- "$f";; *) cat -- "$f";; esac
    fi
    n=1
  done
} | nice -n 10 gzip -1 -c
"""

_FACTS = r"""
PATH=$PATH:/usr/sbin:/sbin:/usr/local/sbin
tcpdump=$1 capture_dir=$2
echo "hostname=$(hostname -f 2>/dev/null || hostname)"
echo "time=$(date +%s.%N)"
echo "kernel=$(uname -sr)"
if [ -r /etc/os-release ]; then . /etc/os-release; echo "os=${PRETTY_NAME:-$NAME}"; fi
if command -v ip >/dev/null 2>&1; then
  echo "addresses=$(ip -o addr show 2>/dev/null | awk '{print $4}' | tr '\n' ' ')"
else
  echo "addresses=$(hostname -I 2>/dev/null)"
fi
echo "tcpdump=$("$tcpdump" --version 2>&1 | head -n 1)"
echo "openssl=$(openssl version 2>&1 | head -n 1)"
echo "java=$(java -version 2>&1 | head -n 1)"
echo "capture_dir_free_kib=$(df -Pk "$capture_dir" 2>/dev/null | awk 'NR==2 {print $4}')"
"""


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
    """Exit 0 (printing the PID) when tcpdump runs and says "listening"; 3 not running; 4 not listening."""
    return ["sh", "-c", _CHECK_CAPTURE, "collector-check-capture", directory]


def stop_capture(
    directory: str, run_id: str, login_user: str, wait_seconds: int = 5, settle_rounds: int = 4
) -> list[str]:
    """Wait (up to `settle_rounds` x 1.2 s) until the capture stops growing, SIGINT it by PID (only if its
    cmdline holds the run id), wait up to `wait_seconds`, KILL as a fallback, chown the files to the login
    user, print tcpdump's counters as `summary: ...` lines and list the capture files oldest first."""
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
    """Stop a capture still running there and remove the run dir (only a dir whose path holds the run id)."""
    return ["sh", "-c", _REMOVE_RUN_DIR, "collector-remove-run-dir", directory, check_run_id(run_id)]


def list_logs(system_log: str) -> list[str]:
    """`mtime<TAB>uncompressed bytes<TAB>path` for system.log and its rotated (plain or .gz) files."""
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


def stream_logs(files_oldest_first: Sequence[str], first_file_bytes: int) -> list[str]:
    """The files joined oldest first (the first cut to its last `first_file_bytes`), gzip -1 on the wire."""
    return [
        "sh",
        "-c",
        _STREAM_LOGS,
        "collector-stream-logs",
        str(int(first_file_bytes)),
        *files_oldest_first,
    ]


def gather_facts(tcpdump: str, capture_dir: str) -> list[str]:
    """`key=value` lines: hostname, time, kernel, os, addresses, tool versions, capture dir free KiB."""
    return ["sh", "-c", _FACTS, "collector-facts", tcpdump, capture_dir]


def sudo_prefix(password: bool) -> list[str]:
    """`sudo -n` never prompts (fails at once without NOPASSWD); `sudo -S -p ''` reads a password on stdin."""
    return ["sudo", "-S", "-p", "", "--"] if password else ["sudo", "-n", "--"]

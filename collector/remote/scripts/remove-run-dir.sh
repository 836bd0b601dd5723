# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
# `DIR RUN_ID [IDENTITY [PID]]`: IDENTITY is the run dir's device:inode and PID the capture's pid, both as
# start-capture printed them (the collector passes them; the playbook cannot).
dir=$1 run_id=$2 identity=${3:-} expected_pid=${4:-}
case $dir in *"$run_id"*) ;; *) echo "refusing to remove $dir" >&2; exit 5;; esac
ours() {  # $1 is still the run dir start-capture made: ours, private, not a link, the same inode
  [ -d "$1" ] && [ ! -L "$1" ] && [ "$(stat -c %u:%a -- "$1")" = "$(id -u):700" ] \
    && { [ -z "$identity" ] || [ "$(stat -c %d:%i -- "$1")" = "$identity" ]; }
}
# The pid to stop: the one the collector was told at start, else the pid file of a run dir that is ours. A pid
# file in anything else may be someone else's: it is never read.
pid=$expected_pid
if [ -z "$pid" ] && ours "$dir"; then pid=$(cat "$dir/pid" 2>/dev/null); fi
case $pid in ''|*[!0-9]*) pid=;; esac
moved=
if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && [ "$(stat -c %u "/proc/$pid")" = "$(id -u)" ] \
  && tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "$dir/capture.pcap"; then
  # Our run dir renamed away by someone: the open capture file tells where it is now.
  if [ -n "$identity" ] && ! ours "$dir"; then
    for child in $(pgrep -P "$pid" 2>/dev/null); do
      for fd in /proc/"$child"/fd/*; do
        target=$(readlink -- "$fd" 2>/dev/null) || continue
        case $target in */capture.pcap*) ours "${target%/*}" && moved=${target%/*};; esac
      done
    done
  fi
  kill -INT "$pid"; sleep 1; kill -KILL -- "-$pid" 2>/dev/null
fi
[ -n "$moved" ] && rm -rf -- "$moved"
rm -rf -- "$dir"

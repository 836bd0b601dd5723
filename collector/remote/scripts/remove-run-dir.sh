# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
dir=$1 run_id=$2 identity=${3:-} expected_pid=${4:-}
case $dir in *"$run_id"*) ;; *) echo "refusing to remove $dir" >&2; exit 5;; esac
# Only a run dir that is still the one start-capture made (ours, private, not a link, the same inode) holds a
# pid file worth trusting; any other directory under our name is removed, and no process it names is touched.
if [ -d "$dir" ] && [ ! -L "$dir" ] && [ "$(stat -c %u:%a -- "$dir")" = "$(id -u):700" ] \
  && { [ -z "$identity" ] || [ "$(stat -c %d:%i -- "$dir")" = "$identity" ]; }; then
  pid=$(cat "$dir/pid" 2>/dev/null)
  case $pid in ''|*[!0-9]*) pid=;; esac
  [ -z "$expected_pid" ] || [ "$pid" = "$expected_pid" ] || pid=
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && [ "$(stat -c %u "/proc/$pid")" = "$(id -u)" ] \
    && tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "$dir/capture.pcap"; then
    kill -INT "$pid"; sleep 1; kill -KILL -- "-$pid" 2>/dev/null
  fi
fi
rm -rf -- "$dir"

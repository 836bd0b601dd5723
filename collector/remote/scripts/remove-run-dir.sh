# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
dir=$1 run_id=$2
# trusted_run_dir comes from run-dir.sh, which both senders put before this script.
case $dir in *"$run_id"*) ;; *) echo "refusing to remove $dir" >&2; exit 5;; esac
ours() {  # $1 is the very directory start-capture made (wherever it is now)
  [ -d "$1" ] && [ ! -L "$1" ] && [ "$(stat -c %d:%i -- "$1")" = "$identity" ]
}
# The pid to stop is the one recorded beside the run dir; a pid file in anything else may be someone else's and
# is never read.
identity=
trusted_run_dir || true
pid=$trusted_pid
case $pid in ''|*[!0-9]*) pid=;; esac
moved=
if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && [ "$(stat -c %u "/proc/$pid")" = "$(id -u)" ] \
  && tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "$dir/capture.pcap"; then
  # Our run dir renamed away by someone: the capture file tcpdump holds open says where it is now.
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
rm -f -- "$dir.trust"

# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
dir=$1 run_id=$2
case $dir in *"$run_id"*) ;; *) echo "refusing to remove $dir" >&2; exit 5;; esac
# The run dir is trusted only while it is the one start-capture made: a directory (no link) of our uid, mode
# 0700, whose device:inode is the one recorded in DIR.trust (ours, one name, not a link). Sets trusted_pid.
trusted_run_dir() {
  trusted_pid= ; [ -f "$dir.trust" ] && [ ! -L "$dir.trust" ] \
    && [ "$(stat -c %u:%h:%a -- "$dir.trust")" = "$(id -u):1:600" ] || return 1
  read -r trusted_pid identity <"$dir.trust" || return 1
  [ -d "$dir" ] && [ ! -L "$dir" ] && [ "$(stat -c %d:%i -- "$dir")" = "$identity" ] \
    && [ "$(stat -c %a -- "$dir")" = 700 ]
}
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

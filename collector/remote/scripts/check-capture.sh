# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
dir=$1
# The run dir is trusted only while it is the one start-capture made: a directory (no link) of our uid, mode
# 0700, whose device:inode is the one recorded in DIR.trust (ours, one name, not a link). Sets trusted_pid.
trusted_run_dir() {
  trusted_pid= ; [ -f "$dir.trust" ] && [ ! -L "$dir.trust" ] \
    && [ "$(stat -c %u:%h:%a -- "$dir.trust")" = "$(id -u):1:600" ] || return 1
  read -r trusted_pid identity <"$dir.trust" || return 1
  [ -d "$dir" ] && [ ! -L "$dir" ] && [ "$(stat -c %d:%i -- "$dir")" = "$identity" ] \
    && [ "$(stat -c %a -- "$dir")" = 700 ]
}
trusted_run_dir && [ "$(stat -c %u -- "$dir")" = "$(id -u)" ] \
  || { echo "run dir $dir is not the one this run created (missing, replaced or opened up)" >&2; exit 6; }
pid=$(cat "$dir/pid" 2>/dev/null) || exit 3
[ "$pid" = "$trusted_pid" ] || { echo "pid file in $dir changed" >&2; exit 6; }
kill -0 "$pid" 2>/dev/null || { cat "$dir/tcpdump.log" >&2; exit 3; }
grep -q listening "$dir/tcpdump.log" || exit 4
echo "$pid"

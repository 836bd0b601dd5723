# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
dir=$1 identity=${2:-}
# The run dir must still be the one start-capture made: ours, private, not a link, the same inode.
[ -d "$dir" ] && [ ! -L "$dir" ] && [ "$(stat -c %u:%a -- "$dir")" = "$(id -u):700" ] \
  && { [ -z "$identity" ] || [ "$(stat -c %d:%i -- "$dir")" = "$identity" ]; } \
  || { echo "run dir $dir is not the one this run created (missing, replaced or opened up)" >&2; exit 6; }
pid=$(cat "$dir/pid" 2>/dev/null) || exit 3
kill -0 "$pid" 2>/dev/null || { cat "$dir/tcpdump.log" >&2; exit 3; }
grep -q listening "$dir/tcpdump.log" || exit 4
echo "$pid"

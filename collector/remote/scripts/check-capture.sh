# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
dir=$1
pid=$(cat "$dir/pid" 2>/dev/null) || exit 3
kill -0 "$pid" 2>/dev/null || { cat "$dir/tcpdump.log" >&2; exit 3; }
grep -q listening "$dir/tcpdump.log" || exit 4
echo "$pid"

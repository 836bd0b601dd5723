# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
dir=$1
# trusted_run_dir, find_tcpdump and received come from run-dir.sh, which both senders put before this script.
trusted_run_dir && [ "$(stat -c %u -- "$dir")" = "$(id -u)" ] \
  || { echo "run dir $dir is not the one this run created (missing, replaced or opened up)" >&2; exit 6; }
pid=$(cat "$dir/pid" 2>/dev/null) || exit 3
[ "$pid" = "$trusted_pid" ] || { echo "pid file in $dir changed" >&2; exit 6; }
# tcpdump says "listening" a few hundred ms after its start: waiting for it here (up to 1 s) saves the collector
# a round trip per poll.
i=0
until grep -q listening "$dir/tcpdump.log"; do
  kill -0 "$pid" 2>/dev/null || { cat "$dir/tcpdump.log" >&2; exit 3; }
  i=$((i + 1)); [ "$i" -le 50 ] || exit 4; sleep 0.02
done
kill -0 "$pid" 2>/dev/null || { cat "$dir/tcpdump.log" >&2; exit 3; }
# The packet count for the stop (stop-capture.sh), with the time it was first seen (read after counting): a
# capture that receives nothing more after a check stops at once. A later check (late in the window) keeps the
# time while the count has not moved. Detached: the answer does not wait for tcpdump's (a loaded host may
# schedule it late), and a stop that comes first only misses its shortcut.
if find_tcpdump "$pid"; then
  (
    count=$(received)
    if [ -n "$count" ]; then
      read -r since seen <"$dir/counts" 2>/dev/null || seen=
      [ "$count" = "$seen" ] || echo "$(date +%s%N) $count" >"$dir/counts"
    fi
  ) </dev/null >/dev/null 2>&1 &
fi
echo "$pid"

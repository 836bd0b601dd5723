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
# tcpdump (the child of the `timeout` wrapper $pid, writing into this run dir) prints its counters on SIGUSR1:
# "N packets captured, M packets received by filter, K packets dropped by kernel". Sets tcpdump_pid.
find_tcpdump() {
  tcpdump_pid=
  for child in $(pgrep -P "$1" 2>/dev/null); do
    tr '\0' '\n' <"/proc/$child/cmdline" 2>/dev/null | grep -qxF -- "$dir/capture.pcap" && tcpdump_pid=$child
  done
  [ -n "$tcpdump_pid" ]
}
# Prints the "received by filter" count now (asks tcpdump, waits up to 1 s for all of it); empty when it cannot
# tell.
received() {
  asked=$(grep -c 'captured, .* dropped by kernel' "$dir/tcpdump.log")
  # Still our tcpdump (SIGUSR1 ends a process that does not handle it): not a reused pid.
  grep -qaF -- "$dir/capture.pcap" "/proc/$tcpdump_pid/cmdline" 2>/dev/null || return 0
  kill -USR1 "$tcpdump_pid" 2>/dev/null || return 0
  i=0
  while [ "$(grep -c 'captured, .* dropped by kernel' "$dir/tcpdump.log")" = "$asked" ]; do
    i=$((i + 1)); [ "$i" -le 100 ] || return 0; sleep 0.01
  done
  grep 'captured, .* dropped by kernel' "$dir/tcpdump.log" | tail -n 1 \
    | sed -nE 's/.* ([0-9]+) packets? received by filter.*/\1/p'
}
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

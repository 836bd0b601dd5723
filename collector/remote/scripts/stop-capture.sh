# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
dir=$1 run_id=$2 login=$3 wait=$4 settle=$5
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
# Anything but our own run dir may hold someone else's pid file and capture: neither is touched.
trusted_run_dir && [ "$(stat -c %u -- "$dir")" = "$(id -u)" ] \
  || { echo "run dir $dir is not the one this run created (missing, replaced or opened up)" >&2; exit 6; }
pid=$trusted_pid
# The capture was orphaned to init: once it exits it stays a zombie until init reaps it, which some inits (a
# container's) do only about once a second. A zombie has stopped: its files are complete.
running() { kill -0 "$1" 2>/dev/null && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]; }
# A capture that already ended by its time limit leaves a PID that may be reused: only signal our own (our uid,
# writing into this run dir).
if [ -r "/proc/$pid/cmdline" ] && [ "$(stat -c %u "/proc/$pid")" = "$(id -u)" ] \
  && tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "$dir/capture.pcap"; then
  # On `-i any` tcpdump reads packets in blocks the kernel hands over up to ~1 s after a packet arrived, and
  # what it has not read when SIGINT arrives is lost. The kernel counts each packet as it arrives ("received by
  # filter"): once that count has not moved for `quiet` ns and tcpdump sleeps waiting for more, every packet so
  # far has been handed over and written. check-capture leaves a count with the time it was first seen (at the
  # start, and late in the window), so a capture idle since then stops at once; else the counts are watched,
  # at most `settle` x 1.2 s (a capture that never goes quiet then loses what the last block holds).
  quiet=1200000000
  if find_tcpdump "$pid"; then
    read -r since seen <"$dir/counts" 2>/dev/null || { since=0 seen=; }
    limit=$(($(date +%s%N) + settle * quiet))
    while running "$pid"; do
      # Every packet in `count` arrived before the count was taken: `since` is read after it, `before` before.
      before=$(date +%s%N)
      [ "$before" -lt "$limit" ] || break
      count=$(received)
      if [ -n "$count" ]; then
        [ "$count" = "$seen" ] || { since=$(date +%s%N) seen=$count; }
        case $(cat "/proc/$tcpdump_pid/wchan" 2>/dev/null) in
          *poll*) [ $((before - since)) -ge "$quiet" ] && break;;
        esac
      fi
      sleep 0.05
    done
  fi
  kill -INT "$pid"
  i=0
  while running "$pid" && [ "$i" -lt $((wait * 50)) ]; do sleep 0.02; i=$((i + 1)); done
  if running "$pid"; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"; echo killed; fi
fi
chown -R "$login" "$dir"
# Its last words (the counters it printed on request start with its name).
grep -E '^[0-9]+ packets? (captured|received by filter|dropped by kernel)' "$dir/tcpdump.log" | sed 's/^/summary: /'
ls -1tr "$dir" | grep '^capture\.pcap' || true
# What the collector must receive, byte for byte (it compares after the transfer).
for f in "$dir"/capture.pcap*; do
  [ -f "$f" ] && [ ! -L "$f" ] && printf 'sha256: %s\n' "$(sha256sum <"$f" | cut -d ' ' -f 1) ${f##*/}"
done

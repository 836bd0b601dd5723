# Shell functions of the run dir, shared by check-capture.sh, stop-capture.sh and remove-run-dir.sh: both
# senders (collector/remote/commands.py and playbooks/roles/collector) put this file before the script in the
# one `sh -c` text, so the trust check of the run dir has one copy that cannot drift from another. Functions
# only, nothing runs here; each reads the script's `dir` (the run dir, set from its "$1") when called.
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

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
  # On `-i any` the kernel hands packets over in blocks retired after up to ~1 s, and tcpdump drops what it has
  # not read when SIGINT arrives: wait until the capture stops growing (at most `settle` rounds of 1.2 s).
  before=-1 after=$(stat -c %s "$dir"/capture.pcap* 2>/dev/null | awk '{s += $1} END {print s + 0}') n=0
  while [ "$before" != "$after" ] && [ "$n" -lt "$settle" ]; do
    sleep 1.2; before=$after; n=$((n + 1))
    after=$(stat -c %s "$dir"/capture.pcap* 2>/dev/null | awk '{s += $1} END {print s + 0}')
  done
  kill -INT "$pid"
  i=0
  while running "$pid" && [ "$i" -lt $((wait * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  if running "$pid"; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"; echo killed; fi
fi
chown -R "$login" "$dir"
grep -E 'packets (captured|received|dropped)' "$dir/tcpdump.log" | sed 's/^/summary: /'
ls -1tr "$dir" | grep '^capture\.pcap' || true
# What the collector must receive, byte for byte (it compares after the transfer).
for f in "$dir"/capture.pcap*; do
  [ -f "$f" ] && [ ! -L "$f" ] && printf 'sha256: %s\n' "$(sha256sum <"$f" | cut -d ' ' -f 1) ${f##*/}"
done

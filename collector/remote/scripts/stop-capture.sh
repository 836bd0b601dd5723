# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
dir=$1 run_id=$2 login=$3 wait=$4 settle=$5
pid=$(cat "$dir/pid" 2>/dev/null) || { echo "no pid file in $dir" >&2; exit 3; }
# The capture was orphaned to init: once it exits it stays a zombie until init reaps it, which some inits (a
# container's) do only about once a second. A zombie has stopped: its files are complete.
running() { kill -0 "$1" 2>/dev/null && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]; }
# A capture that already ended by its time limit leaves a PID that may be reused: only signal our own.
if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$run_id"; then
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

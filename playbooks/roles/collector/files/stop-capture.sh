# The script of collector/remote/commands.py stop_capture(): keep them identical (tests/playbooks checks).
# Run as `sh -c SCRIPT NAME ARGS...`: every value arrives as a positional argument, never parsed by a shell.
dir=$1 run_id=$2 login=$3 wait=$4 settle=$5
pid=$(cat "$dir/pid" 2>/dev/null) || { echo "no pid file in $dir" >&2; exit 3; }
if [ -r "/proc/$pid/cmdline" ]; then
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$run_id" || { echo "pid $pid is not our capture" >&2; exit 5; }
  # On `-i any` the kernel hands packets over in blocks retired after up to ~1 s, and tcpdump drops what it has
  # not read when SIGINT arrives: wait until the capture stops growing (at most `settle` seconds) first.
  before=-1 after=$(cat "$dir"/capture.pcap* 2>/dev/null | wc -c) n=0
  while [ "$before" != "$after" ] && [ "$n" -lt "$settle" ]; do
    sleep 1.2; before=$after; after=$(cat "$dir"/capture.pcap* 2>/dev/null | wc -c); n=$((n + 1))
  done
  kill -INT "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null && [ "$i" -lt $((wait * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"; echo killed; fi
fi
chown -R "$login" "$dir"
grep -E 'packets (captured|received|dropped)' "$dir/tcpdump.log" | sed 's/^/summary: /'
ls -1tr "$dir" | grep '^capture\.pcap' || true

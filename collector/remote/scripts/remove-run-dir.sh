# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
dir=$1 run_id=$2
case $dir in *"$run_id"*) ;; *) echo "refusing to remove $dir" >&2; exit 5;; esac
pid=$(cat "$dir/pid" 2>/dev/null)
if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$run_id"; then
  kill -INT "$pid"; sleep 1; kill -KILL -- "-$pid" 2>/dev/null
fi
rm -rf -- "$dir"

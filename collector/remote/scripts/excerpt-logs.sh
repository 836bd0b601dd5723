# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
context=$1 count=$2
shift 2
ids=""
n=0
for id; do
  [ "$n" -ge "$count" ] && break
  if [ "$n" -eq 0 ]; then ids=$id; else ids="$ids
$id"; fi
  n=$((n + 1))
done
shift "$count"
status=1
for f; do
  # -a: one NUL byte in a log makes grep print only "binary file matches" and drop the excerpt.
  case $f in
    *.gz) gzip -dc -- "$f" | LC_ALL=C grep -a -F -H --label="$f" -C "$context" -e "$ids" -- ;;
    *) LC_ALL=C grep -a -F -H -C "$context" -e "$ids" -- "$f" ;;
  esac
  rc=$?
  [ "$rc" -eq 0 ] && status=0
  [ "$rc" -gt 1 ] && status=2
done
exit "$status"

# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
for f in "$1"*; do
  [ -f "$f" ] || continue
  case $f in
    *.gz) raw=$(gzip -l -- "$f" 2>/dev/null | awk 'NR==2 {print $2}');;
    *) raw=$(stat -c %s -- "$f");;
  esac
  printf '%s\t%s\t%s\n' "$(stat -c %Y -- "$f")" "${raw:-0}" "$f"
done

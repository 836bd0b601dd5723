# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
first=$1
shift
{
  n=0
  for f; do
    if [ "$n" -eq 0 ] && [ "$first" -gt 0 ]; then
      case $f in *.gz) gzip -dc -- "$f" | tail -c "$first";; *) tail -c "$first" -- "$f";; esac
    else
      case $f in *.gz) gzip -dc -- "$f";; *) cat -- "$f";; esac
    fi
    n=1
  done
} | nice -n 10 gzip -1 -c

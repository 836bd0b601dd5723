# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
# `FIRST PATH...` or `--caps FIRST BYTES PATH BYTES PATH...`: the files oldest first, the first cut to its last
# FIRST bytes (0: whole), each (uncompressed) cut to BYTES, its size when listed, so that a file swapped or grown
# since cannot exceed the budget. A file is read only as a regular file with one name, never through a link.
caps=0
if [ "$1" = --caps ]; then caps=1; shift; fi
first=$1
shift
# Reads at most $2 bytes (all when empty) of $1, from its last $3 bytes when given.
read_log() (
  cd -P -- "${1%/*}/" || exit 66
  name=${1##*/}
  if [ -L "$name" ] || [ ! -f "$name" ] || [ "$(stat -c %h -- "$name")" != 1 ]; then
    echo "refused $1: a link or not a regular file" >&2; exit 65
  fi
  size=$(stat -c %s -- "$name")
  limit=${2:-$size}
  case $name in
    *.gz) dd if="$name" iflag=nofollow,nonblock bs=65536 status=none | gzip -dc | head -c "$limit" |
            if [ -n "$3" ]; then tail -c "$3"; else cat; fi;;
    *) [ "$limit" -gt "$size" ] && limit=$size
       skip=0
       [ -n "$3" ] && [ "$3" -lt "$limit" ] && skip=$((limit - $3))
       dd if="$name" iflag=nofollow,nonblock,skip_bytes,count_bytes skip="$skip" count=$((limit - skip)) \
         bs=65536 status=none;;
  esac
)
{
  n=0 status=0
  while [ "$#" -gt 0 ]; do
    if [ "$caps" = 1 ]; then cap=$1 f=$2; shift 2; else cap= f=$1; shift; fi
    tail=
    [ "$n" -eq 0 ] && [ "$first" -gt 0 ] && tail=$first
    read_log "$f" "$cap" "$tail" || status=$?
    n=1
  done
  exit "$status"
} | nice -n 10 gzip -1 -c

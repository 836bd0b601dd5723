# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
# `[--budget BYTES] FIRST PATH...`: the files oldest first, the first cut to its last FIRST bytes (0: whole).
# What is read is what is sized: a plain file up to its size when opened, a .gz up to the uncompressed size
# its trailer declares (what the listing budgeted), and all of it together at most BYTES. A file is read only
# as a regular file with one name, never through a link (this runs as root in a directory another user owns).
budget=
if [ "$1" = --budget ]; then budget=$2; shift 2; fi
first=$1
shift
# Reads $1, from its last $2 bytes when given.
read_log() (
  cd -P -- "${1%/*}/" || exit 66
  name=${1##*/}
  if [ -L "$name" ] || [ ! -f "$name" ] || [ "$(stat -c %h -- "$name")" != 1 ]; then
    echo "refused $1: a link or not a regular file" >&2; exit 65
  fi
  size=$(stat -c %s -- "$name")
  case $name in
    *.gz)
      declared=$(dd if="$name" iflag=nofollow,nonblock,skip_bytes skip=$((size > 4 ? size - 4 : 0)) bs=4 count=1 \
                   status=none 2>/dev/null | od -An -tu4 | tr -d ' ')
      dd if="$name" iflag=nofollow,nonblock bs=65536 status=none | gzip -dc | head -c "${declared:-0}" |
        if [ -n "$2" ]; then tail -c "$2"; else cat; fi;;
    *) skip=0
       [ -n "$2" ] && [ "$2" -lt "$size" ] && skip=$((size - $2))
       dd if="$name" iflag=nofollow,nonblock,skip_bytes,count_bytes skip="$skip" count=$((size - skip)) \
         bs=65536 status=none;;
  esac
)
{
  n=0 status=0
  for f; do
    tail=
    [ "$n" -eq 0 ] && [ "$first" -gt 0 ] && tail=$first
    read_log "$f" "$tail" || status=$?
    n=1
  done
  exit "$status"
} | if [ -n "$budget" ]; then head -c "$budget"; else cat; fi | nice -n 10 gzip -1 -c

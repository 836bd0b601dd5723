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
# A log is read only as a regular file with one name, never through a link (this runs as root, in a directory
# another user owns).
read_log() (
  cd -P -- "${1%/*}/" || exit 2
  name=${1##*/}
  if [ -L "$name" ] || [ ! -f "$name" ] || [ "$(stat -c %h -- "$name")" != 1 ]; then
    echo "refused $1: a link or not a regular file" >&2; exit 2
  fi
  dd if="$name" iflag=nofollow,nonblock bs=65536 status=none
)
status=1
for f; do
  # -a: one NUL byte in a log makes grep print only "binary file matches" and drop the excerpt.
  case $f in
    *.gz) read_log "$f" | gzip -dc | LC_ALL=C grep -a -F -H --label="$f" -C "$context" -e "$ids" -- ;;
    *) read_log "$f" | LC_ALL=C grep -a -F -H --label="$f" -C "$context" -e "$ids" -- ;;
  esac
  rc=$?
  [ "$rc" -eq 0 ] && status=0
  [ "$rc" -gt 1 ] && status=2
done
exit "$status"

# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
# Prints `mtime<TAB>bytes<TAB>path` per log file, and `refused<TAB>why<TAB>path` for an entry that is not read:
# this runs as root, in a directory whose (non-root) owner may plant links to anything on the host.
log=$1
dir=${log%/*} base=${log##*/}
cd -P -- "${dir:-/}/" 2>/dev/null || exit 0
owner=$(stat -c %u .)
for f in "$base"*; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  path=${dir}/$f
  if [ -L "$f" ]; then
    printf 'refused\tsymbolic link to %s\t%s\n' "$(readlink -- "$f")" "$path"; continue
  fi
  [ -f "$f" ] || { printf 'refused\tnot a regular file\t%s\n' "$path"; continue; }
  set -- $(stat -c '%h %u %s %Y' -- "$f")
  # A hard link can name a file from anywhere on the same file system (/etc/shadow) under a log's name.
  [ "$1" = 1 ] || { printf 'refused\thard link (%s names)\t%s\n' "$1" "$path"; continue; }
  [ "$2" = "$owner" ] || [ "$2" = 0 ] || {
    printf 'refused\towned by uid %s, not by the log directory'"'"'s owner\t%s\n' "$2" "$path"; continue; }
  case $f in
    # The uncompressed size from the gzip trailer (ISIZE, little-endian); the reader never inflates more.
    *.gz) raw=$(dd if="$f" iflag=nofollow,nonblock,skip_bytes skip=$(($3 > 4 ? $3 - 4 : 0)) bs=4 count=1 \
                  status=none 2>/dev/null | od -An -tu4 | tr -d ' ');;
    *) raw=$3;;
  esac
  printf '%s\t%s\t%s\n' "$4" "${raw:-0}" "$path"
done

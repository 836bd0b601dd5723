# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
umask 077
# tcpdump usually lives in /usr/sbin, which a non-root login's PATH (used when sudo is off) does not hold.
PATH=$PATH:/usr/sbin:/sbin:/usr/local/sbin
parent=$1 dir=$2 tcpdump=$3 seconds=$4 megabytes=$5 files=$6
shift 6
tcpdump_path=$(command -v "$tcpdump") || { echo "tcpdump not found: $tcpdump" >&2; exit 127; }
[ -d "$parent" ] || { echo "capture dir $parent does not exist" >&2; exit 66; }
me=$(id -u)
unsafe() { echo "capture dir $parent is unsafe: $1; use a directory owned by root (or sticky, like /tmp)" >&2; exit 77; }
case $parent in /*) ;; *) unsafe "not an absolute path";; esac
# Another local user must not be able to rename, replace or enter the run dir: no symbolic link anywhere in the
# path, the capture dir owned by us (root under sudo), and no directory on the way writable by others unless
# sticky (in a sticky dir only an entry's owner may rename or remove it).
path=$parent
while :; do
  [ -L "$path" ] && unsafe "$path is a symbolic link"
  info=$(stat -c '%u %a' -- "$path") || unsafe "cannot stat $path"
  owner=${info% *} mode=0${info#* }
  if [ "$path" = "$parent" ] && [ "$owner" != 0 ] && [ "$owner" != "$me" ]; then
    unsafe "it is owned by uid $owner"
  fi
  [ $((mode & 022)) -ne 0 ] && [ $((mode & 01000)) -eq 0 ] && unsafe "$path is writable by others (mode ${info#* })"
  [ "$path" = / ] && break
  path=$(dirname -- "$path")
done
case $dir in "${parent%/}"/apigee-collector-*) ;; *) echo "run dir $dir is not directly in $parent" >&2; exit 77;; esac
case ${dir#"${parent%/}"/} in */*) echo "run dir $dir is not directly in $parent" >&2; exit 77;; esac
free=$(df -Pk "$parent" | awk 'NR==2 {print $4}')
[ "${free:-0}" -ge 1024 ] || { echo "capture dir $parent is full: ${free:-0} KiB free" >&2; exit 28; }
# Exclusively: a run dir that already exists was made by someone else, and is never used. Beside it, a file only
# we can write (root's, in a directory where no one else may replace it) records the capture's pid and the run
# dir's device:inode: later steps trust the run dir, and a pid, only while they match it.
mkdir -m 0700 -- "$dir" 2>/dev/null || {
  if [ -e "$dir" ] || [ -L "$dir" ]; then echo "run dir $dir already exists: not ours, not used" >&2; exit 73; fi
  echo "cannot create run dir $dir" >&2; exit 28
}
( set -C; : >"$dir.trust" ) 2>/dev/null || {
  rmdir -- "$dir"; echo "$dir.trust already exists: not ours, not used" >&2; exit 73
}
setsid nohup timeout -s INT -k 10 "$seconds" "$tcpdump_path" -i any -s 0 -U -Z root \
  -C "$megabytes" -W "$files" -w "$dir/capture.pcap" "$@" >"$dir/tcpdump.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$dir/pid"
printf '%s %s\n' "$pid" "$(stat -c %d:%i -- "$dir")" >"$dir.trust"
echo "$pid"

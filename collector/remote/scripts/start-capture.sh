# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
umask 077
parent=$1 dir=$2 tcpdump=$3 seconds=$4 megabytes=$5 files=$6
shift 6
tcpdump_path=$(command -v "$tcpdump") || { echo "tcpdump not found: $tcpdump" >&2; exit 127; }
[ -d "$parent" ] || { echo "capture dir $parent does not exist" >&2; exit 66; }
free=$(df -Pk "$parent" | awk 'NR==2 {print $4}')
[ "${free:-0}" -ge 1024 ] || { echo "capture dir $parent is full: ${free:-0} KiB free" >&2; exit 28; }
mkdir -p "$dir" || exit 28
setsid nohup timeout -s INT -k 10 "$seconds" "$tcpdump_path" -i any -s 0 -U -Z root \
  -C "$megabytes" -W "$files" -w "$dir/capture.pcap" "$@" >"$dir/tcpdump.log" 2>&1 </dev/null &
echo $! >"$dir/pid"
echo $!

# Run as `sh -c SCRIPT collector-frame MODE COMMAND...` by collector/remote/connection.py around every command.
# A login shell may print anything (an `echo` in .bashrc, a motd wrapper, a ForceCommand banner) before or after
# the command, so the command's output is framed by markers holding a per-call secret: the first line of stdin
# (never an argument, so it is not visible in /proc/PID/cmdline to other users). MODE `hash` also sends the
# sha256 of the payload, computed here, so the collector can check what it received byte for byte.
IFS= read -r nonce || exit 125
mode=$1
shift
printf '%s:begin\n' "$nonce"
printf '%s:begin\n' "$nonce" >&2
sum=-
if [ "$mode" = hash ]; then
  work=$(mktemp -d) || { printf '%s:end:125:-\n' "$nonce"; printf '%s:end\n' "$nonce" >&2; exit 125; }
  trap 'rm -rf -- "$work"' EXIT
  mkfifo -- "$work/payload" || exit 125
  sha256sum <"$work/payload" >"$work/sum" &
  hasher=$!
  # POSIX sh has no pipefail: the command's own exit code goes through a file.
  { "$@"; echo "$?" >"$work/rc"; } | tee -- "$work/payload"
  wait "$hasher"
  rc=$(cat -- "$work/rc" 2>/dev/null)
  sum=$(cut -d ' ' -f 1 <"$work/sum")
else
  "$@"
  rc=$?
fi
printf '%s:end:%s:%s\n' "$nonce" "${rc:-126}" "${sum:--}"
printf '%s:end\n' "$nonce" >&2
exit "${rc:-126}"

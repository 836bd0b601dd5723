# Run as `sh -c SCRIPT collector-frame MODE COMMAND...` by collector/remote/connection.py around every command.
# A login shell may print anything (an `echo` in .bashrc, a motd wrapper, a ForceCommand banner) before or after
# the command, so the command's output is framed by markers holding a per-call secret: the first line of stdin
# (never an argument, so it is not visible in /proc/PID/cmdline to other users). MODE `hash` also sends the
# sha256 of the payload, computed here, so the collector can check what it received byte for byte.
IFS= read -r nonce || exit 125
mode=$1
shift
work= tty=0
cleanup() { [ -z "$work" ] || rm -rf -- "$work"; }
trap cleanup EXIT
if [ -t 0 ]; then
  # A terminal (sudo's `requiretty`): stdout and stderr share it, so it passes bytes untouched (raw, no echo)
  # and the command's stderr waits in a file, sent after the payload between markers of its own.
  tty=1
  stty raw -echo 2>/dev/null
  work=$(mktemp -d) || exit 125
  exec 2>"$work/stderr"
else
  printf '%s:begin\n' "$nonce" >&2
fi
printf '%s:begin\n' "$nonce"
sum=-
if [ "$mode" = hash ]; then
  if [ -z "$work" ]; then
    work=$(mktemp -d) || { printf '%s:end:125:-\n' "$nonce"; printf '%s:end\n' "$nonce" >&2; exit 125; }
  fi
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
if [ "$tty" = 1 ]; then
  printf '%s:stderr\n' "$nonce"
  head -c 65536 -- "$work/stderr"
  printf '%s:stderr-end\n' "$nonce"
else
  printf '%s:end\n' "$nonce" >&2
fi
exit "${rc:-126}"

# Playbook only: run a command (the remaining arguments) with its stdout in FILE inside the run dir, then hand
# FILE to the login user so `fetch` needs no become (fetch with become slurps the file through memory).
# Exits with the command's exit code; prints the bytes written.
out=$1 owner=$2
shift 2
umask 077
dir=${out%/*}
if [ ! -d "$dir" ]; then
  mkdir -p -- "$dir" && chown -- "$owner" "$dir" || exit 73
fi
"$@" >"$out"
rc=$?
chown -- "$owner" "$out" || exit 73
echo "bytes=$(wc -c <"$out")"
exit "$rc"

# Run as `sh -c SCRIPT NAME ARGS...` by collector/remote/commands.py and by playbooks/roles/collector:
# every value arrives as a positional argument, never parsed by a shell.
PATH=$PATH:/usr/sbin:/sbin:/usr/local/sbin
tcpdump=$1 capture_dir=$2
echo "hostname=$(hostname -f 2>/dev/null || hostname)"
echo "time=$(date +%s.%N)"
echo "kernel=$(uname -sr)"
if [ -r /etc/os-release ]; then . /etc/os-release; echo "os=${PRETTY_NAME:-$NAME}"; fi
if command -v ip >/dev/null 2>&1; then
  echo "addresses=$(ip -o addr show 2>/dev/null | awk '{print $4}' | tr '\n' ' ')"
else
  echo "addresses=$(hostname -I 2>/dev/null)"
fi
echo "tcpdump=$("$tcpdump" --version 2>&1 | head -n 1)"
echo "openssl=$(openssl version 2>&1 | head -n 1)"
echo "java=$(java -version 2>&1 | head -n 1)"
echo "capture_dir_free_kib=$(df -Pk "$capture_dir" 2>/dev/null | awk 'NR==2 {print $4}')"

#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian machine (as root), then the package in .venv.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: tests/bundle/test_report_browser.py renders report.html in it (headless) to check the layout.
# gcc: compiles the capture reader (scripts/build_reader.py).
apt_packages=(openssh-server openssh-client tcpdump openssl nginx-light tshark sudo iproute2 procps
              default-jdk-headless gzip chromium gcc)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A JDK already on the machine (javac on PATH) is enough.
if command -v javac >/dev/null 2>&1; then
  missing=("${missing[@]/default-jdk-headless}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # tshark asks whether non-root users may capture; the default answer is fine.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
# Pinned: a newer release of a dependency must not change what the suite asserts (constraints.txt).
# fast: google-re2, redaction's one-pass word scan (collector/bundle/scan.py); binary wheels for Linux x86_64
# and aarch64 and macOS arm64. The tests compare it with the stdlib path, so the suite needs it.
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test,fast]'
# Bytecode, as a non-editable install writes it: an editable one leaves it to the first import, which never
# writes it under PYTHONDONTWRITEBYTECODE, and then every `collect` start compiles ~150 modules (0.1-0.35 s).
.venv/bin/python -m compileall -q collector >/dev/null
# The capture reader compiled with mypyc (collector/tls/compiled_reader.py): about a third less time reading a
# capture. Only when its source changed; it needs the interpreter's headers besides gcc.
include=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if [ ! -f "$include/Python.h" ]; then
  echo "setup: $include/Python.h is missing: install the headers of $(.venv/bin/python -c 'import sys; print(sys.base_prefix)')'s Python (Debian's python3: python3-dev)" >&2
  exit 1
fi
.venv/bin/python scripts/build_reader.py

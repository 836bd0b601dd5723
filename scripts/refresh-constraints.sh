#!/usr/bin/env bash
# Re-resolves constraints.txt from the newest releases that pyproject.toml allows, in a throw-away venv.
# Run the whole suite (bash scripts/test.sh) afterwards and commit constraints.txt only if it passes.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"${PYTHON:-python3}" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check '.[test,fast]'
{
  sed -n '1,2p' constraints.txt
  # --all: setuptools too, which scripts/build_reader.py compiles the reader with
  "$work/venv/bin/python" -m pip freeze --all --exclude-editable | grep -v -i -e '^apigee-collector' -e '^pip=='
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt refreshed; now run: bash scripts/test.sh"

#!/usr/bin/env bash
# The README's demo command: bring the lab up in a scenario, run the whole collection against it, stop the lab.
# Usage: bash scripts/demo.sh [SCENARIO]   (a cause id: ca-mismatch (default), server-certificate-untrusted, ...;
# the README lists them, and an unknown id is refused with the valid ones); further args go to the lab,
# e.g. `bash scripts/demo.sh protocol-mismatch --tls 1.2`
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m tests.lab demo --scenario "${1:-ca-mismatch}" "${@:2}"

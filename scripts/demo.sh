#!/usr/bin/env bash
# The README's demo command: bring the lab up in a scenario, run the whole collection against it, stop the lab.
# Usage: bash scripts/demo.sh [ca-mismatch|missing-client-certificate|healthy]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m tests.lab demo --scenario "${1:-ca-mismatch}"

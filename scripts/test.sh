#!/usr/bin/env bash
# The README's test command: install what the tests need, then run the whole suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The gate first: lint and types are cheap and say exactly what is wrong (config in pyproject.toml).
echo "gate: ruff" && .venv/bin/ruff check collector tests bench scripts
echo "gate: mypy" && .venv/bin/mypy
# pytest exits 5 when it collected no test: that is a failure here too.
exec .venv/bin/python -m pytest "$@"

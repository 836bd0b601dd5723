"""The README's table of faults and inputs is the list of tests in this folder: same row ids, no drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.reliability.conftest import ROW_ID

HERE = Path(__file__).parent


def _table_ids() -> list[str]:
    ids = []
    for line in (HERE / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells and ROW_ID.fullmatch(cells[0]):
            ids.append(cells[0].upper())
    return ids


def _test_ids() -> dict[str, set[str]]:
    """Node id -> the row ids it carries, from pytest's own collection of this folder."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           str(HERE)], capture_output=True, text=True, timeout=120, check=False,
                          cwd=HERE.parents[1])
    assert done.returncode == 0, done.stdout + done.stderr
    nodes = [line for line in done.stdout.splitlines() if "::" in line]
    assert nodes, done.stdout
    return {node: {m.upper() for m in ROW_ID.findall(node.split("::", 1)[1])} for node in nodes}


def test_t01_table_matches_the_tests() -> None:
    table = _table_ids()
    assert len(table) == len(set(table)), [i for i in table if table.count(i) > 1]
    tests = _test_ids()
    ambiguous = {node: ids for node, ids in tests.items() if len(ids) != 1}
    assert not ambiguous, ambiguous  # every test names exactly one row
    tested = set().union(*tests.values())
    assert set(table) - tested == set(), "rows without a test"
    assert tested - set(table) == set(), "tests without a row"

"""The playbook's log selection template against the Python collector's parse_log_listing + select_logs."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from collector.remote.logs import parse_log_listing, select_logs
from tests.playbooks.conftest import BIN, PLAYBOOKS, ansible_env, run_tool

TEMPLATE = PLAYBOOKS / "roles" / "collector" / "templates" / "log-selection.json.j2"

# (case, listing lines `mtime<TAB>size<TAB>path`, budget in bytes)
CASES = [
    ("one file within the budget", ["100\t10\t/l/system.log"], 50),
    (
        "rotated, newest first, the oldest cut",
        ["30\t10\t/l/system.log", "20\t10\t/l/system.log.1.gz", "10\t10\t/l/system.log.2.gz"],
        15,
    ),
    (
        "same mtime: logrotate numbering decides",
        ["50\t10\t/l/system.log.2.gz", "50\t10\t/l/system.log", "50\t10\t/l/system.log.1"],
        25,
    ),
    ("budget exactly one file", ["30\t10\t/l/system.log", "20\t10\t/l/system.log.1"], 10),
    ("budget smaller than the newest file", ["30\t100\t/l/system.log", "20\t10\t/l/system.log.1"], 7),
    ("junk lines are ignored", ["x\t1\t/l/a", "12\t\t/l/b", "no tabs", "40\t5\t/l/system.log"], 50),
    ("no log at all", [], 50),
]


def test_template_selects_like_the_collector(tmp_path: Path) -> None:
    # Given each listing and budget, When the template renders them (one task of one ansible-playbook run on
    # localhost), Then the files, their order and the cut are what select_logs chooses.
    render = (
        "[{% for case in cases %}{{ lookup('ansible.builtin.template', template, template_vars={"
        "'collector_log_list': {'stdout_lines': case.lines}, 'collector_log_budget_bytes': case.budget}) }}"
        "{{ '' if loop.last else ',' }}{% endfor %}]"
    )
    task = {
        "name": "Render every case",
        "ansible.builtin.copy": {"content": render, "dest": str(tmp_path / "cases.json"), "mode": "0600"},
        "vars": {
            "template": str(TEMPLATE),
            "cases": [{"lines": lines, "budget": budget} for _c, lines, budget in CASES],
        },
    }
    playbook = tmp_path / "select.yml"
    playbook.write_text(
        yaml.safe_dump([{"name": "Render", "hosts": "localhost", "gather_facts": False, "tasks": [task]}])
    )
    env = ansible_env(tmp_path) | {
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    }
    done = run_tool([str(BIN / "ansible-playbook"), str(playbook)], env, tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    rendered_cases = json.loads((tmp_path / "cases.json").read_text())
    for (case, lines, budget), rendered in zip(CASES, rendered_cases, strict=True):
        files = parse_log_listing("\n".join(lines))
        expected = select_logs(files, budget)
        assert rendered["selected_oldest_first"] == [f.path for f in expected.files], case
        assert rendered["first_file_bytes"] == expected.first_file_bytes, case
        assert rendered["all_oldest_first"] == [f.path for f in reversed(files)], case

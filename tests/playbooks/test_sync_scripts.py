"""The playbook's host-side scripts are the Python collector's (collector/remote/commands.py), byte for byte."""

from __future__ import annotations

import pytest

from tests.playbooks.sync_scripts import FILES, SCRIPTS, body_of, script_of


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_scripts_are_the_collectors(name: str) -> None:
    # Given a host-side script of the playbook, Then it is the script collector/remote/commands.py sends.
    assert body_of(FILES / name) == script_of(name), f"run `python -m tests.playbooks.sync_scripts` ({name})"


def test_every_script_in_the_role_is_known() -> None:
    # Given the role's files, Then each is either a copy checked above or one of the playbook's own two.
    assert {p.name for p in FILES.glob("*.sh")} == set(SCRIPTS) | {"join-pcaps.sh", "to-file.sh"}

"""The playbook's host-side scripts are the Python collector's own files (collector/remote/scripts/),
not copies."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "playbooks" / "roles" / "collector" / "files"
SCRIPTS = ROOT / "collector" / "remote" / "scripts"
PLAYBOOK_ONLY = {"join-pcaps.sh", "to-file.sh"}


@pytest.mark.parametrize("name", sorted(p.name for p in SCRIPTS.glob("*.sh")))
def test_scripts_are_the_collectors(name: str) -> None:
    # Given a host-side script of the collector, Then the role's file of that name is a link to it
    # (one source).
    role_file = FILES / name
    assert role_file.is_symlink() and role_file.resolve() == (SCRIPTS / name).resolve(), name


def test_every_script_in_the_role_is_known() -> None:
    # Given the role's files, Then each is either the collector's script or one of the playbook's own two.
    assert {p.name for p in FILES.glob("*.sh")} == {p.name for p in SCRIPTS.glob("*.sh")} | PLAYBOOK_ONLY

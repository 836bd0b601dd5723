"""The bundle's .tar.gz: NAME/ members with fixed modes and owners, links refused, an existing
archive kept."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from collector.bundle.tarball import write_tarball
from collector.errors import BundleError

NAME = "apigee-diag-o-e-p-20261127T100000Z"


def _tree(root: Path) -> None:
    (root / "hosts" / "mp1").mkdir(parents=True)
    (root / "SUMMARY.md").write_text("# s\n")
    (root / "hosts" / "mp1" / "facts.json").write_text("{}\n")


def test_members_are_name_prefixed_private_and_anonymous(tmp_path: Path) -> None:
    # Given a bundle tree
    _tree(tmp_path / "b")
    # When archived
    write_tarball(tmp_path / "b", NAME, tmp_path / f"{NAME}.tar.gz", mtime=1_800_000_000)
    # Then every member sits below NAME/, folders 0700, files 0600, owner 0, the given time; no temp file
    # is left
    with tarfile.open(tmp_path / f"{NAME}.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile(f"{NAME}/hosts/mp1/facts.json").read() == b"{}\n"  # type: ignore[union-attr]
    assert sorted(members) == [NAME, f"{NAME}/SUMMARY.md", f"{NAME}/hosts", f"{NAME}/hosts/mp1",
                               f"{NAME}/hosts/mp1/facts.json"]
    for m in members.values():
        assert m.mode == (0o700 if m.isdir() else 0o600) and m.uid == 0 and m.uname == ""
        assert m.mtime == 1_800_000_000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["b", f"{NAME}.tar.gz"])


def test_a_link_inside_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    _tree(tmp_path / "b")
    (tmp_path / "b" / "hosts" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(BundleError, match="hosts/passwd is not a regular file"):
        write_tarball(tmp_path / "b", NAME, tmp_path / f"{NAME}.tar.gz", mtime=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_an_existing_archive_is_not_replaced(tmp_path: Path) -> None:
    _tree(tmp_path / "b")
    (tmp_path / f"{NAME}.tar.gz").write_bytes(b"earlier")
    with pytest.raises(FileExistsError):
        write_tarball(tmp_path / "b", NAME, tmp_path / f"{NAME}.tar.gz", mtime=0)
    assert (tmp_path / f"{NAME}.tar.gz").read_bytes() == b"earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["b", f"{NAME}.tar.gz"])

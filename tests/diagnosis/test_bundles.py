"""Bundle file access: globbing by layout paths, reading members in place, refusing escaping members."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from collector.diagnosis.bundles import open_bundle
from collector.errors import InputError
from tests.diagnosis.conftest import tar_members

MEMBERS = {
    "b/manifest.json": b"{}",
    "b/hosts/mp1/capture.pcap": b"pcap",
    "b/hosts/mp1/facts.json": b"{}",
    "b/edge/keystores/ks/keystore.json": b"{}",
    "b/edge/keystores/ks/aliases/a.json": b"{}",
}


@pytest.mark.parametrize(
    "pattern,expected",
    [("hosts/*/capture.pcap", ["hosts/mp1/capture.pcap"]),
     ("edge/keystores/*/**/*.json", ["edge/keystores/ks/aliases/a.json", "edge/keystores/ks/keystore.json"]),
     ("probe/results.json", [])],
    ids=["one folder", "any depth", "absent"],
)
def test_matching_globs_bundle_paths_in_archives(tmp_path: Path, pattern: str, expected: list[str]) -> None:
    # Given an archive with a top folder, When globbing layout paths, Then paths are relative to the bundle
    with open_bundle(tar_members(tmp_path / "b.tar.gz", MEMBERS)) as files:
        assert files.matching(pattern) == expected


def test_member_reads_and_poses_as_a_path(tmp_path: Path) -> None:
    # Given an archive, When a member is read or opened through its path stand-in,
    # Then the bytes are the member's
    with open_bundle(tar_members(tmp_path / "b.tar.gz", MEMBERS)) as files:
        assert files.read("hosts/mp1/capture.pcap") == b"pcap"
        member = files.path_like("hosts/mp1/capture.pcap")
        with member.open("rb") as stream:
            assert stream.read() == b"pcap"
        assert member.name == "capture.pcap" and str(member).endswith("b.tar.gz: hosts/mp1/capture.pcap")


@pytest.mark.parametrize(
    "spell",
    [lambda rel: f"./{rel}", lambda rel: f"./b/{rel}", lambda rel: f"./b/./{rel}", lambda rel: f"b//{rel}"],
    ids=["tar -C b .", "tar -C out ./b", "dot segments inside", "double slash"],
)
def test_archive_member_spellings_are_one_bundle_path(tmp_path: Path, spell: Callable[[str], str]) -> None:
    # Given the same bundle archived with the member spellings tar tools write
    members = {spell(name.split("/", 1)[1]): data for name, data in MEMBERS.items()}
    # When it is opened, Then its files have their layout paths and read back in place
    with open_bundle(tar_members(tmp_path / "b.tar.gz", members)) as files:
        assert files.matching("hosts/*/capture.pcap") == ["hosts/mp1/capture.pcap"]
        assert files.read("hosts/mp1/capture.pcap") == b"pcap"
        with files.path_like("edge/keystores/ks/aliases/a.json").open("rb") as stream:
            assert stream.read() == b"{}"


def test_unknown_member_is_an_input_error(tmp_path: Path) -> None:
    with (
        open_bundle(tar_members(tmp_path / "b.tar.gz", MEMBERS)) as files,
        pytest.raises(InputError, match="has no x"),
    ):
        files.read("x")


def test_directory_symlink_out_of_the_bundle_is_ignored(tmp_path: Path) -> None:
    # Given a bundle directory with a symlink to a file outside it
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "manifest.json").write_text("{}")
    (tmp_path / "secret").write_text("x")
    (root / "probe").mkdir()
    (root / "probe" / "results.json").symlink_to(tmp_path / "secret")
    # Then the link is not part of the bundle
    with open_bundle(root) as files:
        assert not files.exists("probe/results.json") and files.exists("manifest.json")

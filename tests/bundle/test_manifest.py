"""The manifest lists every file with its sha256; verification finds changed, missing and extra files."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

from collector import layout
from collector.bundle.manifest import IP_NOTE, MANIFEST_FORMAT, build_manifest, verify_bundle, write_manifest
from collector.bundle.redact import Redaction
from collector.errors import InputError
from collector.steps import StepResult, StepStatus

STARTED = datetime(2026, 11, 27, 10, 0, 0, tzinfo=timezone.utc)
FINISHED = datetime(2026, 11, 27, 10, 5, 0, tzinfo=timezone.utc)
FILES = {
    layout.SUMMARY: b"# summary\n",
    layout.REQUEST_COMMAND: b"curl -u me:REDACTED https://h\n",
    layout.host_file("mp1", layout.HOST_CAPTURE): b"\xd4\xc3\xb2\xa1pcap",
}


def _bundle(root: Path, steps: list[StepResult] | None = None) -> dict[str, object]:
    for rel, data in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    manifest = build_manifest(
        root, tool_version="0.1.0", settings={"org": "o", "password": "hunter2", "token": None},
        steps=steps or [StepResult("mp1", "connect", StepStatus.OK, seconds=0.25)],
        redactions=[Redaction(layout.REQUEST_COMMAND, "curl-user", 1, 1)], started=STARTED, finished=FINISHED,
        file_meta={
            layout.REQUEST_COMMAND: {"source": "reproduction", "collector": "reproduce", "status": "ok"},
        },
    )
    write_manifest(root, manifest)
    return manifest


def test_manifest_lists_every_file_with_its_checksum(tmp_path: Path) -> None:
    # Given a bundle directory
    # When its manifest is built
    manifest = _bundle(tmp_path)
    # Then every file (but the manifest) is listed with sha256, size and its meta, and the run is described
    files = {f["path"]: f for f in manifest["files"]}  # type: ignore[attr-defined]
    assert sorted(files) == sorted(FILES)
    for rel, data in FILES.items():
        assert files[rel]["sha256"] == hashlib.sha256(data).hexdigest()
        assert files[rel]["size"] == len(data)
    assert files[layout.REQUEST_COMMAND]["collector"] == "reproduce"
    assert manifest["format"] == MANIFEST_FORMAT
    assert manifest["tool"] == {"name": "apigee-collector", "version": "0.1.0"}
    assert (manifest["started"], manifest["finished"]) == ("2026-11-27T10:00:00Z", "2026-11-27T10:05:00Z")
    assert manifest["complete"] is True
    assert manifest["steps"] == [StepResult("mp1", "connect", StepStatus.OK, seconds=0.25).to_json()]
    assert manifest["redactions"] == {
        "summary": [{"rule": "curl-user", "count": 1}],
        "records": [{"file": layout.REQUEST_COMMAND, "rule": "curl-user", "line": 1, "count": 1}],
        "note": IP_NOTE,
    }
    # a secret setting never enters the manifest, even when the caller forgot to leave it out
    assert manifest["settings"] == {"org": "o", "password": "REDACTED", "token": None}
    assert oct((tmp_path / layout.MANIFEST).stat().st_mode & 0o777) == "0o600"


def test_a_failed_step_makes_the_bundle_partial(tmp_path: Path) -> None:
    steps = [StepResult("mp1", "connect", StepStatus.OK),
             StepResult("backend1", "start-capture", StepStatus.FAILED, "sudo-denied",
                        "backend1 -> start-capture"),
             StepResult("edge", "trace", StepStatus.SKIPPED, "no-trace")]
    assert _bundle(tmp_path, steps)["complete"] is False


def test_verify_accepts_an_intact_directory(tmp_path: Path) -> None:
    _bundle(tmp_path)
    report = verify_bundle(tmp_path)
    assert report.ok and report.files_checked == len(FILES) and report.problems() == []


def test_verify_finds_changed_missing_and_extra_files(tmp_path: Path) -> None:
    # Given an intact bundle
    _bundle(tmp_path)
    # When one file is changed, one removed and one added
    (tmp_path / layout.SUMMARY).write_bytes(b"# edited\n")
    (tmp_path / layout.REQUEST_COMMAND).unlink()
    (tmp_path / "notes.txt").write_text("added later\n")
    report = verify_bundle(tmp_path)
    # Then each is reported by kind
    assert not report.ok
    assert (report.changed, report.missing, report.extra) == (
        (layout.SUMMARY,), (layout.REQUEST_COMMAND,), ("notes.txt",))
    assert report.problems() == [
        f"{layout.SUMMARY}: changed (sha256 or size differs from the manifest)",
        f"{layout.REQUEST_COMMAND}: missing (listed in the manifest, not in the bundle)",
        "notes.txt: extra (in the bundle, not listed in the manifest)",
    ]


def _tar_of(root: Path, name: str, out: Path, extra: list[tarfile.TarInfo] | None = None) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(root, arcname=name)
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return out


def test_verify_reads_a_tar_gz_in_place(tmp_path: Path) -> None:
    # Given a bundle archived as NAME/...
    _bundle(tmp_path / "b")
    archive = _tar_of(tmp_path / "b", "apigee-diag-o-e-p-20261127T100000Z", tmp_path / "b.tar.gz")
    # When verified
    report = verify_bundle(archive)
    # Then every checksum matches, and nothing was extracted beside it
    assert report.ok and report.files_checked == len(FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "b.tar.gz"]


def test_verify_finds_a_changed_member_in_a_tar_gz(tmp_path: Path) -> None:
    _bundle(tmp_path / "b")
    (tmp_path / "b" / layout.SUMMARY).write_bytes(b"tampered\n")
    report = verify_bundle(_tar_of(tmp_path / "b", "n", tmp_path / "b.tar.gz"))
    assert report.changed == (layout.SUMMARY,)


def _member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 1, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size if kind == tarfile.REGTYPE else 0, link
    return info


@pytest.mark.parametrize(("member", "message"), [
    (_member("n/../../etc/cron.d/x"), "unsafe member name"),
    (_member("/etc/passwd"), "unsafe member name"),
    (_member("n/link", tarfile.SYMTYPE, link="/etc/shadow"), "is a link or special file"),
    (_member("n/hard", tarfile.LNKTYPE, link="n/SUMMARY.md"), "is a link or special file"),
    (_member("other/file"), "outside the bundle directory"),
], ids=["dotdot", "absolute", "symlink", "hardlink", "second-top-directory"])
def test_verify_rejects_unsafe_archives(tmp_path: Path, member: tarfile.TarInfo, message: str) -> None:
    # Given an otherwise good bundle archive with one unsafe member
    _bundle(tmp_path / "b")
    archive = _tar_of(tmp_path / "b", "n", tmp_path / "b.tar.gz", [member])
    # When verified
    # Then the archive is refused as input (exit 2), naming the member
    with pytest.raises(InputError, match=message):
        verify_bundle(archive)


@pytest.mark.parametrize(("content", "message"), [
    (None, "no manifest.json"),
    (b"{not json", "is not a bundle manifest"),
    (b'{"files": [{"path": "x"}]}', "is not a bundle manifest"),
    (json.dumps({"files": [{"path": "../x", "sha256": "0", "size": 1}]}).encode(), "lists an unsafe path"),
], ids=["no-manifest", "not-json", "no-checksums", "unsafe-path"])
def test_verify_rejects_what_is_not_a_bundle(tmp_path: Path, content: bytes | None, message: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    if content is not None:
        (tmp_path / layout.MANIFEST).write_bytes(content)
    with pytest.raises(InputError, match=message):
        verify_bundle(tmp_path)


def test_verify_rejects_unreadable_inputs(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a bundle"):
        verify_bundle(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="no such bundle"):
        verify_bundle(tmp_path / "absent.tar.gz")


def test_verify_rejects_a_symlink_in_a_directory(tmp_path: Path) -> None:
    _bundle(tmp_path)
    (tmp_path / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(InputError, match="symbolic link"):
        verify_bundle(tmp_path)


def test_written_manifest_is_redacted_and_still_json(tmp_path: Path) -> None:
    # Given a step whose message quotes a command with a password
    steps = [StepResult("mp1", "logs", StepStatus.FAILED, "exit-1",
                        "mp1 -> logs: curl -u admin:Hunter2Secret failed; token=abc123def")]
    # When the manifest is written
    _bundle(tmp_path, steps)
    text = (tmp_path / layout.MANIFEST).read_text()
    # Then the secret is masked and the file is still the manifest
    assert "Hunter2Secret" not in text and "abc123def" not in text
    assert json.loads(text)["steps"][0]["message"] == (
        "mp1 -> logs: curl -u admin:REDACTED failed; token=REDACTED"
    )
    assert verify_bundle(tmp_path).ok


def _tar_with_names(source: Path, archive: Path, name_of: Callable[[str], str], root: str | None) -> Path:
    """`source` archived with each bundle path renamed by `name_of` (and a root directory entry `root`)."""
    with tarfile.open(archive, "w:gz") as tar:
        if root is not None:
            tar.addfile(_member(root, tarfile.DIRTYPE))
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source).as_posix()
            info = tar.gettarinfo(str(path), name_of(rel))
            if path.is_file():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return archive


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    assert handle is not None
    return handle.read()


DOT_ROOTED = [
    # (case id, member name for a bundle path, the root directory entry)
    ("tar -C bundle .", lambda rel: f"./{rel}", "./"),
    ("tar -C bundle . (root as '.')", lambda rel: f"./{rel}", "."),
    ("tar -C out ./NAME", lambda rel: f"./apigee-diag-o-e-p-20261127T100000Z/{rel}",
     "./apigee-diag-o-e-p-20261127T100000Z/"),
    ("flat, no root entry", lambda rel: rel, None),
    ("dot segments inside", lambda rel: f"./n/./{rel}", "./n"),
]


@pytest.mark.parametrize(("name_of", "root"), [c[1:] for c in DOT_ROOTED], ids=[c[0] for c in DOT_ROOTED])
def test_verify_accepts_dot_rooted_archives(tmp_path: Path, name_of: Callable[[str], str],
                                            root: str | None) -> None:
    # Given a bundle re-packed by hand, its members named ./SUMMARY.md (or ./NAME/SUMMARY.md)
    _bundle(tmp_path / "b")
    archive = _tar_with_names(tmp_path / "b", tmp_path / "b.tar.gz", name_of, root)
    # When verified
    report = verify_bundle(archive)
    # Then every checksum is checked and matches
    assert report.ok and report.files_checked == len(FILES), report


@pytest.mark.parametrize(("member", "message"), [
    (_member("./../x"), "unsafe member name"),
    (_member("./n/../../x"), "unsafe member name"),
    (_member("/./x"), "unsafe member name"),
    (_member("./"), "unsafe member name"),
    (_member("./other/x"), "outside the bundle directory"),
], ids=["dot-dotdot", "dot-deep-dotdot", "absolute-dot", "file-named-dot", "second-top-directory"])
def test_verify_still_rejects_traversal_in_dot_rooted_archives(tmp_path: Path, member: tarfile.TarInfo,
                                                                message: str) -> None:
    # Given a ./-rooted bundle archive with one unsafe member
    _bundle(tmp_path / "b")
    archive = _tar_with_names(tmp_path / "b", tmp_path / "b.tar.gz", lambda rel: f"./n/{rel}", "./n")
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, _read(tar, m) if m.isfile() else None) for m in tar]
    with tarfile.open(archive, "w:gz") as tar:
        for info, data in [*members, (member, b"x")]:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    # When verified, Then refused naming the member
    with pytest.raises(InputError, match=message):
        verify_bundle(archive)

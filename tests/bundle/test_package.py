"""BundleWriter on real files: redaction on the way in, modes, temporary name until finalize, abort
leaves nothing."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from collector import layout
from collector.bundle.manifest import verify_bundle
from collector.bundle.package import BundleWriter
from collector.errors import BundleError
from collector.steps import StepResult, StepStatus

NAME = "apigee-diag-org-env-proxy-20261127T100000Z"
SECRET = "Zx9SecretToken42"
STARTED = datetime(2026, 11, 27, 10, 0, 0, tzinfo=timezone.utc)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _entries(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def test_files_are_redacted_and_private(tmp_path: Path) -> None:
    # Given a writer
    with BundleWriter(tmp_path, NAME) as writer:
        # When text, bytes and a stream are written into nested folders
        writer.write_text(layout.REQUEST_COMMAND, f"curl -H 'Authorization: Bearer {SECRET}' https://h/x\n")
        writer.write_bytes(layout.trace_transaction("tx1"),
                           f'{{"name": "Cookie", "value": "{SECRET}"}}'.encode())
        with writer.open_stream(layout.host_file("mp1", layout.HOST_COMMANDS), collector="remote") as out:
            out.write(f"sudo tcpdump ...\nAPIGEE_PASSWORD={SECRET}\n".encode())
        root = writer.root
        # Then every file holds no secret, files are 0600 and folders 0700
        for path in root.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes()
                assert _mode(path) == 0o600, path
            else:
                assert _mode(path) == 0o700, path
        assert _mode(root) == 0o700
        assert root.name.startswith(f".{NAME}.partial-")
        assert {(r.file, r.rule) for r in writer.redactions} == {
            (layout.REQUEST_COMMAND, "authorization"),
            (layout.trace_transaction("tx1"), "header-property"),
            (layout.host_file("mp1", layout.HOST_COMMANDS), "secret-parameter"),
        }
        assert writer.file_meta[layout.host_file("mp1", layout.HOST_COMMANDS)]["collector"] == "remote"
        writer.abort()


def test_copy_file_handles_each_kind(tmp_path: Path) -> None:
    # Given a gzip'd log, a capture and a proxy bundle with a key, on disk
    src = tmp_path / "src"
    src.mkdir()
    (src / "log.gz").write_bytes(gzip.compress(f"a\ntoken={SECRET}\n".encode()))
    capture = b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + b"\x00" * 16 + f"password={SECRET}".encode()
    (src / "c.pcap").write_bytes(capture)
    (src / "c.pcap.gz").write_bytes(gzip.compress(capture))
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("apiproxy/resources/client.key", "key")
        zf.writestr("apiproxy/p.xml", "<APIProxy/>")
    (src / "bundle.zip").write_bytes(zipped.getvalue())
    with BundleWriter(tmp_path / "out", NAME) as writer:
        # When each is copied in
        log = writer.copy_file(layout.host_file("mp1", layout.HOST_LOG), src / "log.gz")
        pcap = writer.copy_file(layout.host_file("mp1", layout.HOST_CAPTURE), src / "c.pcap")
        pcap_gz = writer.copy_file(layout.host_file("mp2", "capture.pcap.gz"), src / "c.pcap.gz")
        proxy = writer.copy_file(layout.EDGE_PROXY_BUNDLE, src / "bundle.zip")
        # Then text is redacted (still gzip), captures are byte for byte, the key file is gone from the zip
        assert gzip.decompress(log.read_bytes()) == b"a\ntoken=REDACTED\n"
        assert pcap.read_bytes() == capture
        assert pcap_gz.read_bytes() == (src / "c.pcap.gz").read_bytes()
        assert zipfile.ZipFile(proxy).namelist() == ["apiproxy/p.xml"]
        writer.abort()


def test_streamed_capture_is_kept_byte_for_byte(tmp_path: Path) -> None:
    # Given a capture arriving as a stream (an SFTP fetch)
    capture = b"\x0a\x0d\x0d\x0a" + b"\x1c\x00\x00\x00" + f"Authorization: Basic {SECRET}".encode()
    with BundleWriter(tmp_path, NAME) as writer:
        with writer.open_stream(layout.host_file("mp1", layout.HOST_CAPTURE), collector="capture") as out:
            out.write(capture)
        # Then it lands unchanged and private, with no staging file left beside it
        path = writer.root / layout.host_dir("mp1") / layout.HOST_CAPTURE
        assert path.read_bytes() == capture and _mode(path) == 0o600
        assert [p.name for p in path.parent.iterdir()] == [layout.HOST_CAPTURE]
        assert writer.redactions == []
        writer.abort()


def test_final_name_appears_only_after_finalize(tmp_path: Path) -> None:
    # Given a writer with two files
    writer = BundleWriter(tmp_path, NAME)
    writer.write_text(layout.SUMMARY, "# summary\n")
    writer.write_text(layout.REQUEST_RESPONSE, f"HTTP/1.1 503\nSet-Cookie: s={SECRET}\n")
    # Then before finalize only the hidden partial directory stands
    assert _entries(tmp_path) == [writer.root.name]
    # When finalized, keeping the directory
    bundle = writer.finalize(tool_version="0.1.0", settings={"org": "org"}, started=STARTED,
                             steps=[StepResult("mp1", "connect", StepStatus.OK)], keep_directory=True)
    # Then the archive and the directory stand under their final names, and nothing partial is left
    assert _entries(tmp_path) == [NAME, f"{NAME}.tar.gz"]
    assert bundle.archive == tmp_path / f"{NAME}.tar.gz" and bundle.directory == tmp_path / NAME
    assert bundle.complete
    assert _mode(bundle.archive) == 0o600 and _mode(bundle.directory) == 0o700
    assert verify_bundle(bundle.archive).ok and verify_bundle(bundle.directory).ok
    # and the archive holds NAME/... members, 0600 files and 0700 folders, owned by no one in particular
    with tarfile.open(bundle.archive) as tar:
        members = tar.getmembers()
    assert {m.name for m in members} == {NAME, f"{NAME}/{layout.SUMMARY}", f"{NAME}/{layout.MANIFEST}",
                                         f"{NAME}/{layout.REQUEST_DIR}", f"{NAME}/{layout.REQUEST_RESPONSE}"}
    assert all((m.mode == 0o700 and m.isdir()) or (m.mode == 0o600 and m.isfile()) for m in members)
    assert all(m.uid == 0 and m.uname == "" for m in members)
    assert SECRET not in (bundle.directory / layout.REQUEST_RESPONSE).read_text()
    assert bundle.manifest["redactions"]["summary"] == [{"rule": "cookie", "count": 1}]  # type: ignore[index]


def test_finalize_without_keeping_the_directory(tmp_path: Path) -> None:
    writer = BundleWriter(tmp_path, NAME)
    writer.write_text(layout.SUMMARY, "x\n")
    bundle = writer.finalize(steps=[StepResult("mp1", "connect", StepStatus.FAILED, "unreachable", "down")])
    assert _entries(tmp_path) == [f"{NAME}.tar.gz"]
    assert bundle.directory is None and not bundle.complete


def test_files_put_beside_the_writer_are_redacted_at_finalize(tmp_path: Path) -> None:
    # Given a file written straight into the partial directory (an SSH fetch), with loose permissions
    writer = BundleWriter(tmp_path, NAME)
    stray = writer.root / "hosts" / "mp1" / "facts.json"
    stray.parent.mkdir(parents=True)
    stray.write_text(f'{{"hostname": "mp1", "password": "{SECRET}"}}\n')
    stray.chmod(0o644)
    # When finalized
    bundle = writer.finalize(keep_directory=True)
    # Then it was redacted, made private and listed like any other file
    kept = bundle.directory / "hosts" / "mp1" / "facts.json"  # type: ignore[operator]
    assert SECRET not in kept.read_text() and _mode(kept) == 0o600
    assert [r.rule for r in writer.redactions] == ["secret-parameter"]
    assert "hosts/mp1/facts.json" in {f["path"] for f in bundle.manifest["files"]}  # type: ignore[attr-defined]


def test_exception_inside_the_block_leaves_nothing(tmp_path: Path) -> None:
    # Given a writer used as a context manager
    # When the collection raises halfway
    with pytest.raises(RuntimeError), BundleWriter(tmp_path, NAME) as writer:
        writer.write_text(layout.SUMMARY, "half\n")
        raise RuntimeError("collector crashed")
    # Then no partial directory and no bundle stand
    assert _entries(tmp_path) == []


def test_abort_removes_the_partial_directory(tmp_path: Path) -> None:
    writer = BundleWriter(tmp_path, NAME)
    with pytest.raises(ValueError), writer.open_stream(layout.host_file("mp1", layout.HOST_LOG)) as out:
        out.write(b"partial log")
        raise ValueError("connection dropped")
    assert not (writer.root / layout.host_dir("mp1") / layout.HOST_LOG).exists()
    assert [p.name for p in (writer.root / layout.host_dir("mp1")).iterdir()] == []  # no .incoming left
    writer.abort()
    writer.abort()  # idempotent
    assert _entries(tmp_path) == []
    with pytest.raises(BundleError, match="already finalized or aborted"):
        writer.write_text(layout.SUMMARY, "late\n")


@pytest.mark.parametrize("rel", ["../escape.txt", "/etc/passwd", "hosts/../../x", "", "a\\..\\b", "dir/",
                                 layout.MANIFEST])
def test_paths_outside_the_bundle_are_refused(tmp_path: Path, rel: str) -> None:
    with BundleWriter(tmp_path, NAME) as writer:
        with pytest.raises(BundleError):
            writer.write_text(rel, "x")
        assert list(writer.root.iterdir()) == []
        writer.abort()
    assert not (tmp_path.parent / "escape.txt").exists()


def test_a_path_through_a_file_is_refused(tmp_path: Path) -> None:
    with BundleWriter(tmp_path, NAME) as writer:
        writer.write_text("hosts", "a file where a folder should be\n")
        with pytest.raises(BundleError, match="not a directory"):
            writer.write_text(layout.host_file("mp1", layout.HOST_FACTS), "{}")
        writer.abort()


def test_an_existing_bundle_is_never_overwritten(tmp_path: Path) -> None:
    # Given a bundle that appears under the final name while the writer works (one standing before the
    # writer is made makes it take the next name: test_runs_in_the_same_second_each_get_a_bundle)
    writer = BundleWriter(tmp_path, NAME)
    (tmp_path / f"{NAME}.tar.gz").write_bytes(b"earlier bundle")
    writer.write_text(layout.SUMMARY, "x\n")
    # When another run finalizes under the same name
    with pytest.raises(BundleError, match="already exists"):
        writer.finalize()
    # Then the earlier bundle is untouched
    assert (tmp_path / f"{NAME}.tar.gz").read_bytes() == b"earlier bundle"
    writer.abort()


TAKEN = [
    # (case id, what stands in OUT before the writers are made, the names the writers take)
    ("nothing", [], [NAME, f"{NAME}-2", f"{NAME}-3"]),
    ("a bundle", [f"{NAME}.tar.gz"], [f"{NAME}-2", f"{NAME}-3", f"{NAME}-4"]),
    ("a kept directory", [NAME], [f"{NAME}-2", f"{NAME}-3", f"{NAME}-4"]),
    ("a killed run's partial dir", [f".{NAME}.partial-run"], [f"{NAME}-2", f"{NAME}-3", f"{NAME}-4"]),
    ("a gap", [f"{NAME}.tar.gz", f"{NAME}-3.tar.gz"], [f"{NAME}-2", f"{NAME}-4", f"{NAME}-5"]),
]


@pytest.mark.parametrize(("standing", "names"), [c[1:] for c in TAKEN], ids=[c[0] for c in TAKEN])
def test_runs_in_the_same_second_each_get_a_bundle(tmp_path: Path, standing: list[str],
                                                   names: list[str]) -> None:
    # Given what earlier runs left in OUT under the same second's name
    for entry in standing:
        if entry.endswith(".gz"):
            (tmp_path / entry).write_bytes(b"earlier")
        else:
            (tmp_path / entry).mkdir()
    # When three writers of the same name work at once, then all finalize
    writers = [BundleWriter(tmp_path, NAME) for _ in range(3)]
    for writer in writers:
        writer.write_text(layout.SUMMARY, f"{writer.name}\n")
    finals = [writer.finalize() for writer in writers]
    # Then each took its own name, published its own bundle, and nothing earlier changed
    assert [w.name for w in writers] == names
    assert [f.archive.name for f in finals] == [f"{n}.tar.gz" for n in names]
    for final, name in zip(finals, names, strict=True):
        with tarfile.open(final.archive) as tar:
            summary = tar.extractfile(f"{name}/{layout.SUMMARY}")
            assert summary is not None and summary.read() == f"{name}\n".encode()
    for entry in standing:
        assert (tmp_path / entry).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and p.name not in standing]


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../x", "a b"])
def test_bad_bundle_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(BundleError, match="not a usable bundle name"):
        BundleWriter(tmp_path, name)
    assert _entries(tmp_path) == []


def test_links_and_special_files_put_beside_the_writer_are_dropped(tmp_path: Path) -> None:
    # Given a symlink to a key and a FIFO left in the partial directory
    writer = BundleWriter(tmp_path / "out", NAME)
    (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n")
    (writer.root / "key.pem").symlink_to(tmp_path / "key.pem")
    os.mkfifo(writer.root / "pipe")
    # When finalized
    bundle = writer.finalize(keep_directory=True)
    # Then neither entered the bundle (and finalize did not block on the FIFO)
    assert sorted(p.name for p in bundle.directory.iterdir()) == [layout.MANIFEST]  # type: ignore[union-attr]


def test_text_with_undecodable_bytes_round_trips(tmp_path: Path) -> None:
    # Given text a collector decoded with surrogateescape (a latin-1 log line), and a stray lone surrogate
    text = b"caf\xe9 ok\n".decode("utf-8", "surrogateescape") + "odd \ud800\n"
    with BundleWriter(tmp_path, NAME) as writer:
        # When written
        path = writer.write_text(layout.host_file("mp1", layout.HOST_LOG_EXCERPT), text)
        # Then the original bytes come back, and the lone surrogate is spelled out instead of failing
        assert path.read_bytes() == b"caf\xe9 ok\nodd \\ud800\n"
        writer.abort()


def test_key_files_never_enter_the_bundle(tmp_path: Path) -> None:
    # Given key material offered under key-file names, written and left beside the writer
    writer = BundleWriter(tmp_path / "out", NAME)
    dropped = writer.write_bytes("hosts/mp1/keystore.jks", b"\xfe\xed\xfe\xed binary keystore")
    writer.write_text("hosts/mp1/client.key", "anything")
    with writer.open_stream("hosts/mp1/client.p12") as out:
        out.write(b"0\x82 pkcs12")
    (writer.root / "hosts" / "mp1" / "id_rsa").write_text("stray key")
    # When finalized
    bundle = writer.finalize(keep_directory=True)
    # Then none of them stands in the bundle, and each drop is recorded
    assert not dropped.exists()
    assert sorted(p.name for p in (bundle.directory / "hosts" / "mp1").iterdir()) == []  # type: ignore[operator]
    records = bundle.manifest["redactions"]["records"]  # type: ignore[index]
    assert sorted(r["file"] for r in records) == ["hosts/mp1/client.key", "hosts/mp1/client.p12",
                                                  "hosts/mp1/id_rsa", "hosts/mp1/keystore.jks"]
    assert {r["rule"] for r in records} == {"private-key-file"}


def test_a_file_rewritten_around_the_writer_is_redacted_again(tmp_path: Path) -> None:
    # Given a file written through the writer, then overwritten directly with a secret
    writer = BundleWriter(tmp_path, NAME)
    path = writer.write_text(layout.host_file("mp1", layout.HOST_FACTS), "{}\n")
    path.write_text(f'{{"token": "{SECRET}", "padding": "makes the size differ"}}\n')
    # When the writer adopts stray files
    found = writer.adopt_files()
    # Then the rewritten file was redacted too
    assert SECRET not in path.read_text() and [r.rule for r in found] == ["secret-parameter"]
    writer.abort()


def test_a_link_to_an_outside_folder_is_removed_not_followed(tmp_path: Path) -> None:
    # Given a folder outside the bundle, linked from inside it
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    writer = BundleWriter(tmp_path / "out", NAME)
    (writer.root / "hosts").symlink_to(outside)
    # When the writer adopts stray files
    writer.adopt_files()
    # Then the link is gone and the outside folder kept its mode
    assert not (writer.root / "hosts").exists() and _mode(outside) == 0o755
    writer.abort()


def test_a_cut_gzip_log_is_copied_as_far_as_it_goes(tmp_path: Path) -> None:
    # Given a gzip'd log on disk, cut short, with a password before the cut
    whole = gzip.compress((f"password={SECRET}\n" + "".join(f"line {i}\n" for i in range(50000))).encode())
    (tmp_path / "cut.gz").write_bytes(whole[: len(whole) * 3 // 4])
    with BundleWriter(tmp_path / "out", NAME) as writer:
        # When copied in
        path = writer.copy_file(layout.host_file("mp1", layout.HOST_LOG), tmp_path / "cut.gz")
        # Then the readable part is there, redacted, with a note where it ends
        text = gzip.decompress(path.read_bytes()).decode()
        assert SECRET not in text and "password=REDACTED" in text and "ended early" in text
        writer.abort()


def test_move_file_renames_captures_and_redacts_the_rest(tmp_path: Path) -> None:
    # Given a raw capture and a raw log collected beside the bundle
    raw = tmp_path / "raw"
    raw.mkdir()
    capture = b"\xd4\xc3\xb2\xa1" + b"\x00" * 20
    (raw / "c.pcap").write_bytes(capture)
    (raw / "log").write_text(f"token={SECRET}\n")
    with BundleWriter(tmp_path / "out", NAME) as writer:
        # When both are moved in
        pcap = writer.move_file(layout.host_file("mp1", layout.HOST_CAPTURE), raw / "c.pcap",
                                source="mp1:/tmp/c")
        log = writer.move_file(layout.host_file("mp1", layout.HOST_LOG_EXCERPT), raw / "log")
        # Then the capture arrived unchanged, the log redacted, both private, and the raw files are gone
        assert pcap.read_bytes() == capture and log.read_text() == "token=REDACTED\n"
        assert _mode(pcap) == _mode(log) == 0o600
        assert list(raw.iterdir()) == []
        assert writer.file_meta[layout.host_file("mp1", layout.HOST_CAPTURE)]["source"] == "mp1:/tmp/c"
        writer.abort()

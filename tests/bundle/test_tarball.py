"""The bundle's .tar.gz: NAME/ members with fixed modes and owners, links refused, an existing
archive kept, compressed files stored rather than deflated again, readable by tarfile, tar and gzip."""

from __future__ import annotations

import gzip
import io
import os
import random
import subprocess
import tarfile
import zlib
from pathlib import Path

import pytest

from collector.bundle.tarball import _GzipWriter, _hardly_deflates, write_tarball
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


def _mixed_tree(root: Path) -> dict[str, bytes]:
    """Text, gzip'd logs of awkward sizes (a stored block holds at most 65,535 bytes; files are read by the
    MiB), a zip, an empty file: each file's bytes by its path under the bundle."""
    noise = random.Random(15)
    files = {
        "SUMMARY.md": b"# summary\n" * 3000,
        "empty.txt": b"",
        "hosts/mp1/system.log.gz": gzip.compress(bytes(noise.randbytes(65_535))),
        "hosts/mp2/system.log.gz": gzip.compress(b"x" * 10 + noise.randbytes(3 * 1024 * 1024 + 7)),
        "edge/proxy.zip": b"PK\x03\x04" + noise.randbytes(65_536 * 2 - 4),
        "hosts/mp2/facts.json": b'{"kernel": "6.1"}\n' * 5000,
    }
    _write(root, files)
    return files


def _write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def test_compressed_files_are_stored_and_every_reader_gets_the_same_tar(tmp_path: Path) -> None:
    # Given a bundle of text and already-compressed files
    files = _mixed_tree(tmp_path / "b")
    archive = tmp_path / f"{NAME}.tar.gz"
    # When archived
    write_tarball(tmp_path / "b", NAME, archive, mtime=1_800_000_000)
    # Then the tar inside is byte for byte the one tarfile writes for the same entries
    assert gzip.decompress(archive.read_bytes()) == _tar_as_tarfile_writes(tmp_path / "b")
    # and real gzip and tar read it: every file's bytes come back
    subprocess.run(["gzip", "-t", str(archive)], check=True)
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(out)], check=True)
    for rel, data in files.items():
        assert (out / NAME / rel).read_bytes() == data
    # and the compressed files were stored, not deflated again, while the text was deflated
    compressed = sum(len(d) for rel, d in files.items() if rel.endswith((".gz", ".zip")))
    assert compressed < archive.stat().st_size < compressed + 20_000
    # and the gzip header holds the bundle's time and no file name
    head = archive.read_bytes()[:10]
    assert head[:4] == b"\x1f\x8b\x08\x00" and int.from_bytes(head[4:8], "little") == 1_800_000_000


def test_a_capture_of_ciphertext_is_stored_and_text_beside_it_still_deflated(tmp_path: Path) -> None:
    # Given a capture whose first MiBs hold ciphertext (random bytes: what deflate cannot shrink) and whose
    # last MiB is repetitive (a burst of identical small packets), and a large text file
    noise = random.Random(7)
    ciphertext = b"\xd4\xc3\xb2\xa1" + noise.randbytes(2 * 1024 * 1024 - 4)
    burst = b"\x45\x00\x00\x28" * (1024 * 1024 // 4) + b"tail"
    files = {"hosts/mp1/capture.pcap": ciphertext + burst, "SUMMARY.md": b"| host | step | ok |\n" * 200_000}
    _write(tmp_path / "b", files)
    archive = tmp_path / f"{NAME}.tar.gz"
    # When archived
    write_tarball(tmp_path / "b", NAME, archive, mtime=1_800_000_000)
    # Then the tar inside is still the one tarfile writes, and tar reads every byte back
    assert gzip.decompress(archive.read_bytes()) == _tar_as_tarfile_writes(tmp_path / "b")
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(tmp_path)], check=True)
    for rel, data in files.items():
        assert (tmp_path / NAME / rel).read_bytes() == data
    # and only the ciphertext's MiBs are judged not worth deflating (zlib would end up storing them too,
    # after a search costing ~45 ms per MiB), while the burst and the text shrank to almost nothing
    chunks = [ciphertext[:1 << 20], ciphertext[1 << 20:], burst, files["SUMMARY.md"][:1 << 20]]
    assert [_hardly_deflates(c) for c in chunks] == [True, True, False, False]
    assert not _hardly_deflates(noise.randbytes(60_000))  # too small to be worth judging
    assert len(ciphertext) < archive.stat().st_size < len(ciphertext) + 40_000


@pytest.mark.parametrize("last", ["deflated", "stored"])
def test_a_stream_of_deflated_and_stored_stretches_decompresses_whole(tmp_path: Path, last: str) -> None:
    # Given stretches written alternately deflated and stored, the last one either way
    pieces = [(b"text " * 5000, False), (gzip.compress(b"a" * 100_000), True), (b"", False),
              (b"more\n", False), (random.Random(1).randbytes(200_000), True), (b"", True)]
    pieces.append((b"end\n" * 100, last == "stored"))
    path = tmp_path / "s.gz"
    with path.open("wb") as raw:
        writer = _GzipWriter(raw, mtime=0)
        for data, stored in pieces:
            writer.write(data, store=stored)
        writer.close()
    # Then zlib finds one complete gzip member with every byte, nothing after it, and gzip agrees
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert decompressor.decompress(path.read_bytes()) == b"".join(data for data, _ in pieces)
    assert decompressor.eof and decompressor.unused_data == b""
    subprocess.run(["gzip", "-t", str(path)], check=True)


def _tar_as_tarfile_writes(root: Path) -> bytes:
    """The tar stream tarfile writes for the bundle tree at `root` (what the .tar.gz must hold)."""
    expected = io.BytesIO()
    with tarfile.open(fileobj=expected, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in _entries_in_walk_order(root):
            tar.addfile(*entry)
    return expected.getvalue()


def _entries_in_walk_order(root: Path) -> list[tuple[tarfile.TarInfo, io.BytesIO | None]]:
    """The entries write_tarball archives, in its order (folders sorted, then their files sorted)."""
    def entry(name: str, path: Path) -> tuple[tarfile.TarInfo, io.BytesIO | None]:
        info = tarfile.TarInfo(name)
        info.mtime, info.uid, info.gid, info.uname, info.gname = 1_800_000_000, 0, 0, "", ""
        if path.is_dir():
            info.type, info.mode = tarfile.DIRTYPE, 0o700
            return info, None
        info.mode, info.size = 0o600, path.stat().st_size
        return info, io.BytesIO(path.read_bytes())

    entries = [entry(NAME, root)]
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root).as_posix()
        prefix = NAME if rel == "." else f"{NAME}/{rel}"
        entries += [entry(f"{prefix}/{d}", Path(dirpath, d)) for d in dirnames]
        entries += [entry(f"{prefix}/{f}", Path(dirpath, f)) for f in sorted(filenames)]
    return entries

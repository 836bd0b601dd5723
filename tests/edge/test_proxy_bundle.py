"""Reading the proxy revision bundle zip safely: only target endpoints, in memory, with limits."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from collector.edge.proxy_bundle import MAX_TARGET_BYTES, read_target_endpoints
from collector.errors import InputError

TARGET = b'<TargetEndpoint name="default"><HTTPTargetConnection><URL>https://b</URL></HTTPTargetConnection></TargetEndpoint>'


def _zip(*entries: tuple[str | zipfile.ZipInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in entries:
            archive.writestr(name, body)
    return buffer.getvalue()


def _symlink(name: str, target: bytes) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


def test_only_target_endpoints_are_read() -> None:
    # Given a bundle with a descriptor, a proxy endpoint, two targets and a nested file
    data = _zip(
        ("apiproxy/p.xml", b"<APIProxy/>"),
        ("apiproxy/proxies/default.xml", b"<ProxyEndpoint/>"),
        ("apiproxy/targets/default.xml", TARGET),
        ("apiproxy/targets/second.XML", b"<TargetEndpoint/>"),
        ("apiproxy/targets/old/x.xml", b"<ignored/>"),
        ("apiproxy/targets/", b""),
    )
    # When read, Then only apiproxy/targets/*.xml come out, keyed by name
    assert read_target_endpoints(data) == {"default": TARGET, "second": b"<TargetEndpoint/>"}


@pytest.mark.parametrize(
    "entries, defect",
    [
        ([("../../etc/cron.d/evil.xml", b"x")], "unsafe path"),
        ([("apiproxy/targets/../../../evil.xml", b"x")], "unsafe path"),
        ([("/etc/passwd", b"x")], "unsafe path"),
        ([("apiproxy\\targets\\default.xml", b"x")], "unsafe path"),
        ([("C:/windows/x.xml", b"x")], "unsafe path"),
        ([_symlink("apiproxy/targets/default.xml", b"/etc/shadow")], "symbolic link"),
        ([("apiproxy/targets/default.xml", b"\0" * (8 * 1024 * 1024))], "decompression bomb"),
    ],
    ids=["dotdot", "inner-dotdot", "absolute", "backslash", "drive", "symlink", "bomb"],
)
def test_hostile_bundles_are_one_clear_error(
    entries: list[tuple[str | zipfile.ZipInfo, bytes]],
    defect: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a hostile archive (and an empty working directory to prove nothing is extracted)
    data = _zip(("apiproxy/targets/ok.xml", TARGET), *entries)
    monkeypatch.chdir(tmp_path)
    # When it is read, Then one InputError names the bundle and the defect, and no file appears
    with pytest.raises(InputError, match=defect) as caught:
        read_target_endpoints(data, source="edge/proxy-bundle.zip")
    assert caught.value.file == "edge/proxy-bundle.zip"
    assert list(tmp_path.iterdir()) == []


def test_large_but_honest_target_is_refused() -> None:
    # Given a target file just over the limit that does not compress much, Then the read limit refuses it
    data = _zip(("apiproxy/targets/default.xml", os.urandom(MAX_TARGET_BYTES + 10)))
    with pytest.raises(InputError, match="larger than"):
        read_target_endpoints(data)


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 truncated", b"<html>login</html>"])
def test_not_a_zip(data: bytes) -> None:
    with pytest.raises(InputError, match="not a readable zip archive"):
        read_target_endpoints(data, source="bundle.zip")

"""The raw-document sinks: bodies kept byte for byte, URLs beside them, files private."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from collector import layout
from collector.edge.documents import DirectorySink, DocumentSink
from collector.errors import BundleError


def test_memory_sink_keeps_bodies_and_urls() -> None:
    sink = DocumentSink()
    sink.save(layout.EDGE_DEPLOYMENTS, b'{ "a" : "b" }', "http://ms:8080/v1/x")
    sink.save(layout.EDGE_RESOLUTION, b"{}")
    assert sink.read(layout.EDGE_DEPLOYMENTS) == b'{ "a" : "b" }'
    assert json.loads(sink.read(layout.EDGE_SOURCES) or b"") == {
        layout.EDGE_DEPLOYMENTS: "http://ms:8080/v1/x"
    }
    assert sink.read("edge/absent.json") is None


def test_directory_sink_writes_private_files_and_sources(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path / "b")
    body = bytes(range(256))
    sink.save(
        layout.EDGE_PROXY_BUNDLE, body, "http://ms:8080/v1/organizations/o/apis/p/revisions/1?format=bundle"
    )
    sink.save(layout.alias_document("ks", "a/../b"), b"{}", "http://ms:8080/v1/alias")
    written = tmp_path / "b" / layout.EDGE_PROXY_BUNDLE
    assert written.read_bytes() == body and sink.read(layout.EDGE_PROXY_BUNDLE) == body
    for path in (tmp_path / "b").rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
    sources = json.loads((tmp_path / "b" / layout.EDGE_SOURCES).read_text())
    assert list(sources) == [layout.alias_document("ks", "a/../b"), layout.EDGE_PROXY_BUNDLE]
    assert not list((tmp_path / "b").rglob("*.part"))


@pytest.mark.parametrize("path", ["../outside.json", "/etc/passwd", layout.EDGE_SOURCES])
def test_paths_outside_the_bundle_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(BundleError):
        DirectorySink(tmp_path).save(path, b"x", "http://x")
    assert not list(tmp_path.iterdir())


def test_unwritable_root_is_a_bundle_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(BundleError, match="cannot write"):
        DirectorySink(blocker).save(layout.EDGE_DEPLOYMENTS, b"{}", "http://x")

"""The raw-document sink: management API bodies kept exactly as received, each with its request URL."""

from __future__ import annotations

import json
import os
from pathlib import Path

from collector import layout
from collector.errors import BundleError


class DocumentSink:
    """Collects raw documents in memory under their bundle paths (`collector.layout`).

    Attributes:
        documents: bundle path -> body bytes, exactly as received (or as written by the collector).
        sources: bundle path -> request URL without credentials; only documents that came from a request.
    """

    def __init__(self) -> None:
        self.documents: dict[str, bytes] = {}
        self.sources: dict[str, str] = {}

    def save(self, path: str, body: bytes, url: str | None = None) -> None:
        """Keep `body` under the bundle `path`; `url` (no credentials) is recorded in `edge/sources.json`."""
        if not layout.is_inside(path) or path == layout.EDGE_SOURCES:
            raise BundleError(f"{path}: not a document path inside the bundle")
        self.documents[path] = bytes(body)
        if url is not None:
            self.sources[path] = url
        self._stored(path)

    def read(self, path: str) -> bytes | None:
        """The body saved under `path`, or None; fits `resolution_from_documents(read=...)`."""
        if path == layout.EDGE_SOURCES:
            return self.sources_json()
        return self.documents.get(path)

    def sources_json(self) -> bytes:
        """`edge/sources.json`: document path -> request URL, sorted."""
        return json.dumps(dict(sorted(self.sources.items())), indent=2).encode() + b"\n"

    def _stored(self, path: str) -> None:
        """Hook for subclasses that persist each document as it arrives."""


class DirectorySink(DocumentSink):
    """A sink that also writes each document under `root` (files 0600, folders 0700) and keeps
    `root/edge/sources.json` current, so a run that dies midway still leaves what it fetched."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = Path(root)

    def read(self, path: str) -> bytes | None:
        if not layout.is_inside(path):
            return None
        try:
            return (self.root / path).read_bytes()
        except OSError:
            return None

    def _stored(self, path: str) -> None:
        self._write(path, self.documents[path])
        self._write(layout.EDGE_SOURCES, self.sources_json())

    def _write(self, path: str, body: bytes) -> None:
        target = self.root / path
        try:
            _make_private_folders(target.parent)
            temporary = target.with_name(f".{target.name}.part")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(body)
            temporary.replace(target)
        except OSError as exc:
            raise BundleError(
                f"{target}: cannot write the management API document: {exc.strerror or exc}"
            ) from exc


def _make_private_folders(folder: Path) -> None:
    """Create `folder` and missing parents as 0700 (`mkdir(parents=True)` gives parents the umask default)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)

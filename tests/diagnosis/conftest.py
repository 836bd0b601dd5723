"""Fixtures for the diagnosis tests: real capture and Edge document files,
and bundles built through layout.py."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from collector import layout

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CAPTURES = FIXTURES / "captures"
EDGE = FIXTURES / "edge"

BundleMaker = Callable[..., Path]


def write_bundle(root: Path, *, captures: dict[str, Path] | None = None, keystore: str = "myKeystore",
                 documents: dict[str, Path] | None = None, resolution: dict | None = None,
                 probes: list | None = None) -> Path:
    """A bundle directory holding only what analysis reads, every path from `layout.py`.

    `documents` maps ``keystore`` / ``alias:NAME`` / ``cert:NAME`` to an Edge document file.
    """
    root.mkdir(parents=True)
    (root / layout.MANIFEST).write_text("{}\n")
    for host, capture in (captures or {}).items():
        target = root / layout.host_file(host, layout.HOST_CAPTURE)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(capture, target)
    for key, source in (documents or {}).items():
        kind, _, name = key.partition(":")
        if kind == "keystore":
            rel = layout.keystore_document(keystore)
        elif kind == "alias":
            rel = layout.alias_document(keystore, name)
        else:
            rel = layout.cert_document(keystore, name)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / rel)
    if resolution is not None:
        (root / layout.EDGE_RESOLUTION).parent.mkdir(parents=True, exist_ok=True)
        (root / layout.EDGE_RESOLUTION).write_text(json.dumps(resolution))
    if probes is not None:
        (root / layout.PROBE_RESULTS).parent.mkdir(parents=True, exist_ok=True)
        (root / layout.PROBE_RESULTS).write_text(json.dumps(probes))
    return root


def tar_bundle(root: Path, out: Path) -> Path:
    """The `.tar.gz` form: one top folder named after the bundle, as the package stage writes it."""
    with tarfile.open(out, "w:gz") as archive:
        archive.add(root, arcname=root.name)
    return out


def tar_members(out: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(out, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out


@pytest.fixture
def make_bundle(tmp_path: Path) -> BundleMaker:
    def make(name: str = "apigee-diag-org-env-proxy-20260101T000000Z", **kwargs: object) -> Path:
        return write_bundle(tmp_path / name, **kwargs)  # type: ignore[arg-type]

    return make


def resolution(keystore: str = "myKeystore", key_alias: str = "myKey") -> dict:
    """The shape `edge/resolve.py` saves: one target with client authentication."""
    return {"org": "org", "env": "env", "proxy": "proxy", "revisions": ["1"], "message_processors": [],
            "targets": [{
                "name": "default", "url": "https://backend.lab:8443", "host": "backend.lab", "port": 8443,
                "target_server": None, "ssl_enabled": True, "client_auth_enabled": True,
                "keystore": keystore, "keystore_reference": "myKeystoreRef", "key_alias": key_alias,
                "truststore": None, "truststore_reference": None, "ignore_validation_errors": False,
            }],
            "backends": [], "findings": ["keystore myKeystore: alias myKey has no key"]}

# The probe survey tests' nginx listeners (TLS 1.3 only, TLS 1.2 with one suite, SNI only, expired), shared
# rather than configured a second time: the report rows' probed column is checked against real surveys.
from tests.probe.test_survey import listeners  # noqa: E402,F401

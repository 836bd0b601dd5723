"""Sniffing what a bundle file holds, and which archive members are key material."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from collector.bundle.archives import FileKind, is_key_file, sniff_kind


def _tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("a"), io.BytesIO(b""))
    return out.getvalue()


@pytest.mark.parametrize(("head", "kind"), [
    (b"\xd4\xc3\xb2\xa1\x02\x00", FileKind.CAPTURE),  # pcap, little endian
    (b"\xa1\xb2\xc3\xd4\x00\x02", FileKind.CAPTURE),  # pcap, big endian
    (b"\xa1\xb2\x3c\x4d\x00\x02", FileKind.CAPTURE),  # pcap, nanoseconds
    (b"\x0a\x0d\x0d\x0a\x1c\x00", FileKind.CAPTURE),  # pcapng
    (b"PK\x03\x04\x14\x00", FileKind.ZIP),
    (gzip.compress(b"x"), FileKind.GZIP),
    (_tar(), FileKind.TAR),
    (b"ELF\x00\x01", FileKind.BINARY),
    (b"2017-10-23 05:28:57,813 org:o", FileKind.TEXT),
    (b"", FileKind.TEXT),
], ids=["pcap-le", "pcap-be", "pcap-ns", "pcapng", "zip", "gzip", "tar", "binary", "text", "empty"])
def test_sniff_kind(head: bytes, kind: FileKind) -> None:
    assert sniff_kind(head) is kind


@pytest.mark.parametrize(("name", "key"), [
    ("apiproxy/resources/jsc/client.key", True),
    ("a/KEYSTORE.JKS", True),
    ("b/client.p12", True),
    ("c/bundle.pfx", True),
    ("home/.ssh/id_ed25519", True),
    ("home/.ssh/id_ed25519.pub", False),
    ("apiproxy/resources/chain.pem", False),  # PEM files are redacted like text instead
    ("apiproxy/policies/Verify-Key.xml", False),
])
def test_is_key_file(name: str, key: bool) -> None:
    assert is_key_file(name) is key

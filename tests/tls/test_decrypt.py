"""TLS 1.3 record protection: RFC 8448 key derivation vector, then records sealed here and opened by
the module."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from collector.tls.decrypt import DecryptError, RecordDecryptor, expand_label, supports

# RFC 8448 §3 "Simple 1-RTT Handshake": server handshake traffic secret and the write key/iv derived from it
SERVER_HS_SECRET = bytes.fromhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")


def test_expand_label_matches_rfc8448() -> None:
    assert (
        expand_label(SERVER_HS_SECRET, b"key", b"", 16, "sha256").hex() == "3fce516009c21727d0f2e4e86ee403bc"
    )
    assert expand_label(SERVER_HS_SECRET, b"iv", b"", 12, "sha256").hex() == "5d313eb2671276ee13000b30"


SUITES = [
    (0x1301, AESGCM, 16, "sha256"),
    (0x1302, AESGCM, 32, "sha384"),
    (0x1303, ChaCha20Poly1305, 32, "sha256"),
]


def _seal(suite: tuple, secret: bytes, seq: int, inner: bytes) -> tuple[bytes, bytes]:
    _, aead, key_length, hash_name = suite
    key = expand_label(secret, b"key", b"", key_length, hash_name)
    iv = int.from_bytes(expand_label(secret, b"iv", b"", 12, hash_name), "big")
    header = b"\x17\x03\x03" + (len(inner) + 16).to_bytes(2, "big")
    return header, aead(key).encrypt((iv ^ seq).to_bytes(12, "big"), inner, header)


@pytest.mark.parametrize("suite", SUITES, ids=["aes128gcm", "aes256gcm", "chacha20poly1305"])
def test_records_open_in_sequence_and_lose_their_padding(suite: tuple) -> None:
    # Given two records sealed with seq 0 and 1 (the second padded with zeros)
    secret = bytes(range(48 if suite[3] == "sha384" else 32))
    first = _seal(suite, secret, 0, b"\x08\x00\x00\x00" + b"\x16")
    second = _seal(suite, secret, 1, b"\x02\x74" + b"\x15" + b"\x00" * 12)
    decryptor = RecordDecryptor(suite[0], secret)
    # When opened in order, Then each yields its inner content type and content
    assert decryptor.open(*first) == (22, b"\x08\x00\x00\x00")
    assert decryptor.open(*second) == (21, b"\x02\x74")
    assert decryptor.seq == 2


def test_a_record_under_another_key_does_not_open() -> None:
    header, body = _seal(SUITES[0], b"\x01" * 32, 0, b"hello\x17")
    with pytest.raises(DecryptError, match="does not authenticate"):
        RecordDecryptor(0x1301, b"\x02" * 32).open(header, body)


def test_a_record_of_only_padding_has_no_content_type() -> None:
    header, body = _seal(SUITES[0], b"\x01" * 32, 0, b"\x00" * 8)
    with pytest.raises(DecryptError, match="no content type"):
        RecordDecryptor(0x1301, b"\x01" * 32).open(header, body)


@pytest.mark.parametrize(
    "suite, expected", [(0x1301, True), (0x1302, True), (0x1303, True), (0x1304, False), (0xC02F, False)]
)
def test_supported_suites(suite: int, expected: bool) -> None:
    assert supports(suite) is expected

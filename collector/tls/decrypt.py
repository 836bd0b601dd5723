"""TLS 1.3 record protection (RFC 8446 §5.2, §7.1–7.3): traffic secret -> key/iv -> AEAD-opened records.

Public API: `RecordDecryptor(suite, secret)` with `open(header, body) -> (content_type, plaintext)`,
`supports(suite)` and `DecryptError`.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from collector.tls.ciphers import TLS13_CIPHERS

_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}


class DecryptError(ValueError):
    """A record did not authenticate under the key we derived (wrong key log entry, or we lost track)."""


def supports(suite: int) -> bool:
    """True for the TLS 1.3 AEAD suites we can open (the two CCM suites are not used by the
    stacks we meet)."""
    return suite in TLS13_CIPHERS


def expand_label(secret: bytes, label: bytes, context: bytes, length: int, hash_name: str) -> bytes:
    """HKDF-Expand-Label from RFC 8446 §7.1."""
    full_label = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full_label)]) + full_label + bytes([len(context)]) + context
    return HKDFExpand(algorithm=_HASHES[hash_name](), length=length, info=info).derive(secret)


class RecordDecryptor:
    """Opens the records of one direction under one traffic secret; the sequence number counts from 0."""

    __slots__ = ("_aead", "_hash", "_iv", "_suite", "seq")

    def __init__(self, suite: int, secret: bytes) -> None:
        aead_name, key_length, hash_name = TLS13_CIPHERS[suite]
        key = expand_label(secret, b"key", b"", key_length, hash_name)
        self._iv = int.from_bytes(expand_label(secret, b"iv", b"", 12, hash_name), "big")
        self._aead = ChaCha20Poly1305(key) if aead_name == "CHACHA20-POLY1305" else AESGCM(key)
        self._hash, self._suite, self.seq = hash_name, suite, 0

    def open(self, header: bytes, body: bytes) -> tuple[int, bytes]:
        """Decrypt one application_data record; return its inner content type and content without padding."""
        nonce = (self._iv ^ self.seq).to_bytes(12, "big")
        try:
            inner = self._aead.decrypt(nonce, body, header)
        except (InvalidTag, ValueError) as error:
            raise DecryptError(f"record {self.seq} does not authenticate") from error
        self.seq += 1
        end = len(inner)
        while end and inner[end - 1] == 0:  # zero padding after the real content type
            end -= 1
        if not end:
            raise DecryptError(f"record {self.seq - 1} has no content type")
        return inner[end - 1], inner[: end - 1]

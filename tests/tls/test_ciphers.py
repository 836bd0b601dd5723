"""Code point names: the IANA names we print, and the fallbacks for values not in our tables."""

from __future__ import annotations

import pytest

from collector.tls import ciphers


@pytest.mark.parametrize(
    "function, value, expected",
    [
        (ciphers.version_name, 0x0303, "TLSv1.2"),
        (ciphers.version_name, 0x0304, "TLSv1.3"),
        (ciphers.version_name, 0x0300, "SSLv3"),
        (ciphers.version_name, 0x7F1C, "0x7f1c"),
        (ciphers.cipher_name, 0x1302, "TLS_AES_256_GCM_SHA384"),
        (ciphers.cipher_name, 0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
        (ciphers.cipher_name, 0xFFFF, "0xffff"),
        (ciphers.signature_scheme_name, 0x0804, "rsa_pss_rsae_sha256"),
        (ciphers.signature_scheme_name, 0x0403, "ecdsa_secp256r1_sha256"),
        (ciphers.signature_scheme_name, 0x0A0A, "0x0a0a"),
        (ciphers.alert_name, 42, "bad_certificate"),
        (ciphers.alert_name, 116, "certificate_required"),
        (ciphers.alert_name, 40, "handshake_failure"),
        (ciphers.alert_name, 200, "unknown_200"),
    ],
)
def test_names(function: object, value: int, expected: str) -> None:
    assert function(value) == expected  # type: ignore[operator]


def test_every_tls13_suite_we_decrypt_has_a_name() -> None:
    for suite in ciphers.TLS13_CIPHERS:
        assert ciphers.cipher_name(suite).startswith("TLS_")

"""Suite names in one spelling: SSLInfo <Ciphers> and JSSE use IANA names, OpenSSL (the local probe, `openssl
s_client` on an MP) its own; comparing them needs one normalising function."""

from __future__ import annotations

import pytest

from collector.tls.jsse_defaults import JSSE_DEFAULT_CIPHER_SUITES, openssl_name, suite_name


@pytest.mark.parametrize("spelling, iana", [
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),  # OpenSSL
    ("ecdhe-rsa-aes128-gcm-sha256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),  # IANA
    (" tls_ecdhe_rsa_with_aes_128_gcm_sha256 ", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("SSL_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"),  # JSSE's legacy alias
    ("TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"),  # TLS 1.3: one name in both
    ("AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"),
    ("no-such-suite", "NO-SUCH-SUITE"),  # unknown: kept, upper-cased, so spellings still compare
])
def test_every_spelling_of_a_suite_is_its_iana_name(spelling: str, iana: str) -> None:
    assert suite_name(spelling) == iana


def test_the_openssl_table_round_trips_through_the_iana_name() -> None:
    for iana in JSSE_DEFAULT_CIPHER_SUITES:
        openssl = openssl_name(iana)
        assert openssl is not None, iana
        assert suite_name(openssl) == iana == suite_name(iana)

"""Certificate summaries and DN strings: RFC 4514 from `cryptography`, ``hex:`` for what does not decode."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.tls.certificates import load_pem_chain, name_to_string, summarize_certificate

KEY = ec.generate_private_key(ec.SECP256R1())
ISSUER = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lab Org"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Lab CA A"),
    ]
)
SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COMMON_NAME, "client, with comma"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "mp"),
    ]
)


def _cert(subject: x509.Name = SUBJECT) -> x509.Certificate:
    start = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ISSUER)
        .public_key(KEY.public_key())
        .serial_number(0x1234ABCD)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365))
        .sign(KEY, hashes.SHA256())
    )


def test_summary_of_a_certificate() -> None:
    # Given a DER certificate, When summarized, Then DNs are RFC 4514 (most specific first, escaped)
    summary = summarize_certificate(_cert().public_bytes(serialization.Encoding.DER))
    assert summary.subject == "OU=mp,CN=client\\, with comma"
    assert summary.issuer == "CN=Lab CA A,O=Lab Org,C=US"
    assert (summary.not_before, summary.not_after) == ("2026-01-02T03:04:05Z", "2027-01-02T03:04:05Z")
    assert summary.serial == "1234abcd"
    assert summary.issuer_der == ISSUER.public_bytes()


@pytest.mark.parametrize(
    "der, expected",
    [
        (ISSUER.public_bytes(), "CN=Lab CA A,O=Lab Org,C=US"),
        (x509.Name([]).public_bytes(), ""),
        (b"\x30\x03\x02\x01\x05", "hex:3003020105"),  # a SEQUENCE, but of an INTEGER
        (b"not der", "hex:6e6f7420646572"),
        (b"", "hex:"),
    ],
)
def test_name_to_string(der: bytes, expected: str) -> None:
    assert name_to_string(der) == expected


def test_undecodable_certificate_becomes_hex_not_a_crash() -> None:
    summary = summarize_certificate(b"\x30\x03\x01\x01\xff")
    assert summary.subject == summary.issuer == "hex:30030101ff"
    assert summary.issuer_der is None


def test_certificate_cryptography_refuses_is_read_leniently() -> None:
    # Given a certificate whose signature algorithm OID cryptography does not accept for a v3 cert with a bad
    # version number: cryptography refuses it, asn1crypto still reads the names
    der = bytearray(_cert().public_bytes(serialization.Encoding.DER))
    version = der.index(b"\xa0\x03\x02\x01\x02")
    der[version + 4] = 0x07  # version 8: invalid for cryptography
    summary = summarize_certificate(bytes(der))
    assert summary.subject == "OU=mp,CN=client\\, with comma"
    assert summary.issuer == "CN=Lab CA A,O=Lab Org,C=US"


def test_load_pem_chain_keeps_file_order_and_survives_a_damaged_block() -> None:
    leaf = _cert().public_bytes(serialization.Encoding.PEM).decode()
    other = _cert(ISSUER).public_bytes(serialization.Encoding.PEM).decode()
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    chain = load_pem_chain(f"subject=...\n{leaf}junk between\n{broken}{other}")
    assert [c.subject[:4] for c in chain] == ["OU=m", "hex:", "CN=L"]
    assert load_pem_chain("no certificates here") == ()

"""Certificates and distinguished names as the rest of the tool shows them (RFC 4514
strings from `cryptography`).

Public API: `summarize_certificate(der) -> CertificateSummary`,
`load_pem_chain(text) -> tuple[CertificateSummary, ...]`, `name_to_string(der_name) -> str` (RFC 4514, or
``hex:…`` when the name cannot be decoded).
"""

from __future__ import annotations

import datetime
import functools
import re
import warnings

from cryptography import x509

from collector.tls.handshake import CertificateSummary

# What cryptography and asn1crypto raise for bytes that are not the DER they expect (UnicodeError is
# a ValueError)
_DECODE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, x509.InvalidVersion)
_PEM_BLOCK = re.compile(
    rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----.+?-----END (?:X509 |TRUSTED )?CERTIFICATE-----",
    re.DOTALL,
)


# Captures repeat the same few names and the same server chain in every handshake; results are immutable.
@functools.lru_cache(maxsize=4096)
def name_to_string(der_name: bytes) -> str:
    """RFC 4514 string of a DER-encoded Name (as `Name.rfc4514_string()` writes it), ``hex:…``
    when undecodable."""
    try:
        with warnings.catch_warnings():  # odd attribute lengths warn; the string says it all
            warnings.simplefilter("ignore")
            return x509.Name.from_bytes(der_name).rfc4514_string()
    except _DECODE_ERRORS:  # any defect in attacker-controlled bytes becomes the hex fallback, never a crash
        return "hex:" + der_name.hex()


@functools.lru_cache(maxsize=1024)
def summarize_certificate(der: bytes) -> CertificateSummary:
    """Subject, issuer, validity and serial of one DER certificate; undecodable parts fall
    back to ``hex:…``."""
    # negative serials and similar real-world oddities warn: not our user's problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _summarize(der)


def _summarize(der: bytes) -> CertificateSummary:
    try:
        cert = x509.load_der_x509_certificate(der)
        subject_der, issuer_der = cert.subject.public_bytes(), cert.issuer.public_bytes()
    except _DECODE_ERRORS:  # cryptography refuses some real-world oddities; asn1crypto is more lenient
        return _summarize_leniently(der)
    return CertificateSummary(
        subject=name_to_string(subject_der),
        issuer=name_to_string(issuer_der),
        not_before=_iso(lambda: cert.not_valid_before_utc),
        not_after=_iso(lambda: cert.not_valid_after_utc),
        serial=_hex_serial(lambda: cert.serial_number),
        issuer_der=issuer_der,
    )


def load_pem_chain(text: str) -> tuple[CertificateSummary, ...]:
    """Every certificate of a PEM bundle, in file order (blocks that do not decode
    become ``hex:`` summaries)."""
    # Imported here, as asn1crypto below: `collect analyze` of a capture needs neither (~40 ms of its start)
    from cryptography.hazmat.primitives.serialization import Encoding

    summaries = []
    for block in _PEM_BLOCK.findall(text.encode("utf-8", "replace")):
        try:
            der = x509.load_pem_x509_certificate(block).public_bytes(Encoding.DER)
        except _DECODE_ERRORS:  # a damaged block: summarize its bytes as best we can
            summaries.append(CertificateSummary(subject="hex:" + block.hex(), issuer="hex:" + block.hex()))
            continue
        summaries.append(summarize_certificate(der))
    return tuple(summaries)


def _summarize_leniently(der: bytes) -> CertificateSummary:
    from asn1crypto import x509 as asn1_x509

    try:
        tbs = asn1_x509.Certificate.load(der, strict=False)["tbs_certificate"]
        subject_der, issuer_der = tbs["subject"].dump(), tbs["issuer"].dump()
        serial = format(tbs["serial_number"].native, "x")
    except _DECODE_ERRORS:  # not even the outer structure parses: show the bytes
        return CertificateSummary(subject="hex:" + der.hex(), issuer="hex:" + der.hex())
    return CertificateSummary(
        subject=name_to_string(subject_der),
        issuer=name_to_string(issuer_der),
        serial=serial,
        issuer_der=issuer_der,
    )


def _iso(read: object) -> str:
    try:
        value: datetime.datetime = read()  # type: ignore[operator]  # a date property's getter, called here to catch its error
    except _DECODE_ERRORS:  # an unparseable time is shown as unknown
        return ""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _hex_serial(read: object) -> str:
    try:
        return format(read(), "x")  # type: ignore[operator]
    except _DECODE_ERRORS:  # a malformed serial is shown as unknown
        return ""

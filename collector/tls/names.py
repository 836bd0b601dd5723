"""Distinguished names: parse the spellings Edge, Java and OpenSSL print, and compare them the way
JSSE does."""

from __future__ import annotations

import functools
import re
import unicodedata
import warnings
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

if TYPE_CHECKING:
    from asn1crypto import core as asn1_core

# Keywords of RFC 4514, RFC 1779 / Java `X500Principal.toString()` and OpenSSL short names (upper-cased).
_KEYWORDS: dict[str, ObjectIdentifier] = {
    "CN": NameOID.COMMON_NAME,
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "S": NameOID.STATE_OR_PROVINCE_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "STREET": NameOID.STREET_ADDRESS,
    "DC": NameOID.DOMAIN_COMPONENT,
    "UID": NameOID.USER_ID,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
    "EMAIL": NameOID.EMAIL_ADDRESS,
    "E": NameOID.EMAIL_ADDRESS,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "SN": NameOID.SURNAME,  # OpenSSL's short name; Java spells the serial number SERIALNUMBER
    "SURNAME": NameOID.SURNAME,
    "GIVENNAME": NameOID.GIVEN_NAME,
    "GN": NameOID.GIVEN_NAME,
    "T": NameOID.TITLE,
    "TITLE": NameOID.TITLE,
    "INITIALS": NameOID.INITIALS,
    "GENERATION": NameOID.GENERATION_QUALIFIER,
    "GENERATIONQUALIFIER": NameOID.GENERATION_QUALIFIER,
    "DNQ": NameOID.DN_QUALIFIER,
    "DNQUALIFIER": NameOID.DN_QUALIFIER,
    "POSTALCODE": NameOID.POSTAL_CODE,
    "PSEUDONYM": NameOID.PSEUDONYM,
    "BUSINESSCATEGORY": NameOID.BUSINESS_CATEGORY,
    "NAME": ObjectIdentifier("2.5.4.41"),
}

_DOTTED_OID = re.compile(r"^(?:OID\.)?([0-2](?:\.(?:0|[1-9][0-9]*))+)$", re.IGNORECASE)
# OpenSSL 3's default one-line form puts spaces around "=": `C = AU, ST = VIC, CN = x` (X.500 order).
_OPENSSL3_EQUALS = re.compile(r"^\s*[A-Za-z][A-Za-z0-9.]*\s+=\s")

_ASN1_TYPES: dict[str, _ASN1Type] = {
    "UTF8String": _ASN1Type.UTF8String,
    "PrintableString": _ASN1Type.PrintableString,
    "IA5String": _ASN1Type.IA5String,
    "TeletexString": _ASN1Type.T61String,
    "BMPString": _ASN1Type.BMPString,
    "UniversalString": _ASN1Type.UniversalString,
    "VisibleString": _ASN1Type.VisibleString,
}


def name_from_string(text: str) -> x509.Name:
    """Parse an RFC 4514 / Java-style DN (most specific RDN first) or an OpenSSL one-line DN (X.500 order).

    Raises ValueError naming the defect when the text is not a distinguished name.
    """
    if not text.strip():
        raise ValueError("empty distinguished name")
    stripped = text.lstrip()  # trailing spaces are the value reader's job: an escaped one is kept
    if stripped.startswith("/"):
        rdns = _parse_rdns(stripped[1:], "/")
    elif _OPENSSL3_EQUALS.match(stripped):
        rdns = _parse_rdns(stripped, rdn_separators=",")
    else:
        # RFC 4514 and Java print the last RDN of the sequence first.
        rdns = list(reversed(_parse_rdns(stripped, rdn_separators=",;")))
    return _build_name(rdns)


def name_to_rfc4514(name: x509.Name) -> str:
    """The RFC 4514 string `cryptography` prints (the spelling DESIGN.md's JSON uses)."""
    return name.rfc4514_string()


def names_match(a: x509.Name, b: x509.Name) -> bool:
    """True when two names are equal the way `X500Principal.equals` sees them (canonical, not
    byte equality)."""
    return _canonical(a) == _canonical(b)


@functools.lru_cache(maxsize=4096)
def name_from_der(der: bytes) -> x509.Name | None:  # one backend sends the same names on every connection
    """Decode a DER Name (as carried in a CertificateRequest); ``None`` when the bytes are not a Name.

    cryptography reads well-formed names. What it refuses, keeps as bytes or reads otherwise than JSSE (UTF-8
    in a PrintableString, a TeletexString, a value that is no string) asn1crypto reads.
    """
    try:
        with warnings.catch_warnings():  # odd lengths warn (a 3-letter country): JSSE still compares them
            warnings.simplefilter("ignore")
            name = x509.Name.from_bytes(der)
    except (ValueError, TypeError):  # not DER, or no Name cryptography can hold
        return _name_from_der_leniently(der)
    # cryptography reads a TeletexString as UTF-8, JSSE (and asn1crypto) as Latin-1
    if all(isinstance(a.value, str) and a._type is not _ASN1Type.T61String for a in name):
        return name
    return _name_from_der_leniently(der)


def _name_from_der_leniently(der: bytes) -> x509.Name | None:
    # Imported here: asn1crypto is a tenth of `collect analyze`'s start (~27 ms), and real names rarely
    # need it.
    from asn1crypto import x509 as asn1_x509

    try:
        parsed = asn1_x509.Name.load(der, strict=True)
        rdns: list[list[tuple[ObjectIdentifier, str, _ASN1Type | None]]] = []
        for rdn in parsed.chosen:
            avas = []
            for ava in rdn:
                oid = ObjectIdentifier(ava["type"].dotted)
                value, asn1_type = _decode_der_value(ava["value"])
                avas.append((oid, value, asn1_type))
            rdns.append(avas)
        # DER can hold what a Name cannot (an empty RDN, one attribute twice in an RDN): not a Name either
        return _build_typed_name(rdns)
    # what asn1crypto raises on bytes that are not what they claim (IndexError: an empty BIT STRING)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
        return None


def _decode_der_value(value: asn1_core.Asn1Value) -> tuple[str, _ASN1Type | None]:
    from asn1crypto import core as asn1_core

    chosen = value.chosen if isinstance(value, asn1_core.Choice) else value
    asn1_type = _ASN1_TYPES.get(type(chosen).__name__)
    try:
        native = chosen.native
    except ValueError:
        # Real certificates put UTF-8 into IA5String/PrintableString; JSSE still compares them, so
        # keep the text.
        return chosen.contents.decode("utf-8", "replace"), asn1_type
    if isinstance(native, str):
        return native, asn1_type
    # Not a string type: keep the DER as RFC 4514's "#hex" so that equal bytes still compare equal.
    return "#" + chosen.dump().hex(), None


def _canonical(name: x509.Name) -> tuple[frozenset[tuple[str, str]], ...]:
    return tuple(frozenset((attr.oid.dotted_string, _fold(attr.value)) for attr in rdn) for rdn in name.rdns)


def _fold(value: str | bytes) -> str:
    if isinstance(value, bytes):
        return "#" + value.hex()
    # X500Principal's canonical form: NFKD, case-folded, leading/trailing/internal whitespace collapsed.
    return " ".join(unicodedata.normalize("NFKD", value).casefold().split())


def _build_name(rdns: list[list[tuple[str, str]]]) -> x509.Name:
    return _build_typed_name([[(_attribute_oid(kind), value, None) for kind, value in rdn] for rdn in rdns])


def _build_typed_name(rdns: list[list[tuple[ObjectIdentifier, str, _ASN1Type | None]]]) -> x509.Name:
    with warnings.catch_warnings():
        # Real certificates carry over-long CNs and odd countries; JSSE still matches them, so do we.
        warnings.simplefilter("ignore")
        built = []
        for rdn in rdns:
            attrs = [x509.NameAttribute(oid, value, asn1_type, _validate=False)
                     for oid, value, asn1_type in rdn]
            built.append(x509.RelativeDistinguishedName(attrs))
    return x509.Name(built)


def _attribute_oid(kind: str) -> ObjectIdentifier:
    keyword = kind.strip()
    if keyword.upper() in _KEYWORDS:
        return _KEYWORDS[keyword.upper()]
    dotted = _DOTTED_OID.match(keyword)
    if dotted:
        return ObjectIdentifier(dotted.group(1))
    raise ValueError(f"unknown attribute type {keyword!r}")


def _parse_rdns(text: str, rdn_separators: str) -> list[list[tuple[str, str]]]:
    """Split `text` into RDNs of (type, decoded value); `+` joins the AVAs of a multi-valued RDN."""
    rdns: list[list[tuple[str, str]]] = []
    avas: list[tuple[str, str]] = []
    pos = 0
    while True:
        equals = _find_equals(text, pos, rdn_separators)
        if equals < 0:
            raise ValueError(f"no '=' in {text[pos:].strip()!r} (expected TYPE=value)")
        kind = text[pos:equals].strip()
        if not kind:
            raise ValueError(f"missing attribute type before '=' at position {equals}")
        value, pos = _read_value(text, equals + 1, rdn_separators + "+")
        avas.append((kind, value))
        if pos >= len(text):
            rdns.append(avas)
            return rdns
        separator = text[pos]
        pos += 1
        if separator != "+":
            rdns.append(avas)
            avas = []
            if not text[pos:].strip():
                raise ValueError("trailing separator")


def _find_equals(text: str, start: int, separators: str) -> int:
    """Index of the '=' ending the attribute type that starts at `start`, -1 if a separator comes first."""
    for index in range(start, len(text)):
        char = text[index]
        if char == "=":
            return index
        if char in separators or char == "+" or char in "\\\"":
            return -1
    return -1


def _read_value(text: str, pos: int, stops: str) -> tuple[str, int]:
    """Decode one attribute value starting at `pos`; returns it and the index of the separator
    (or the end)."""
    while pos < len(text) and text[pos] == " ":
        pos += 1
    if pos < len(text) and text[pos] == '"':
        return _read_quoted(text, pos + 1, stops)
    if pos < len(text) and text[pos] == "#":
        end = pos + 1
        while end < len(text) and text[end] not in stops:
            end += 1
        return _decode_hex_value(text[pos + 1 : end].strip()), end
    buffer = bytearray()
    kept = 0  # length of the buffer up to the last escaped or non-space character
    while pos < len(text) and text[pos] not in stops:
        char = text[pos]
        if char == "\\":
            escaped, pos = _read_escape(text, pos)
            buffer += escaped
            kept = len(buffer)
            continue
        buffer += char.encode("utf-8")
        if char != " ":
            kept = len(buffer)
        pos += 1
    try:
        return bytes(buffer[:kept]).decode("utf-8"), pos
    except UnicodeDecodeError as exc:
        raise ValueError("escaped bytes are not UTF-8") from exc


def _read_quoted(text: str, pos: int, stops: str) -> tuple[str, int]:
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
            continue
        if char == '"':
            pos += 1
            while pos < len(text) and text[pos] == " ":
                pos += 1
            if pos < len(text) and text[pos] not in stops:
                raise ValueError(f"unexpected text after a quoted value at position {pos}")
            return "".join(out), pos
        out.append(char)
        pos += 1
    raise ValueError("unterminated quoted value")


def _read_escape(text: str, pos: int) -> tuple[bytes, int]:
    pair = text[pos + 1 : pos + 3]
    if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
        return bytes.fromhex(pair), pos + 3
    if pos + 1 < len(text):
        return text[pos + 1].encode("utf-8"), pos + 2
    raise ValueError("dangling backslash at the end")


def _decode_hex_value(digits: str) -> str:
    from asn1crypto import core as asn1_core  # rare ("#" values): imported here, as in name_from_der

    try:
        parsed = asn1_core.load(bytes.fromhex(digits))
        native = parsed.native
    except ValueError as exc:
        raise ValueError(f"bad hex-encoded value #{digits}") from exc
    if not isinstance(native, str):
        raise ValueError(f"hex-encoded value #{digits} is not a string")
    return native

"""Distinguished names: every spelling Edge, Java and OpenSSL print parses to the same Name;
JSSE-style matching."""

from __future__ import annotations

import warnings

import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.tls.names import name_from_der, name_from_string, name_to_rfc4514, names_match

PARSE_CASES = {
    "edge java style, dc and spaces": (
        "CN=MyCompany Test SHA2 CA G2, DC=testcore, DC=test, OU=E2E, O=Apigee, L=San Jose, ST=CA, C=US",
        "CN=MyCompany Test SHA2 CA G2,DC=testcore,DC=test,OU=E2E,O=Apigee,L=San Jose,ST=CA,C=US",
    ),
    "edge emailaddress": (
        "EMAILADDRESS=test@test.com, CN=api-ssl.example.com, OU=E2E, O=Apigee, L=San Jose, ST=CA, C=US",
        "1.2.840.113549.1.9.1=test@test.com,CN=api-ssl.example.com,OU=E2E,O=Apigee,L=San Jose,ST=CA,C=US",
    ),
    "rfc 4514 from cryptography": ("CN=Lab CA A,OU=caA,O=Lab Org,C=US", "CN=Lab CA A,OU=caA,O=Lab Org,C=US"),
    "escaped comma": ("CN=Doe\\, John, O=Acme", "CN=Doe\\, John,O=Acme"),
    "quoted value (java)": ('CN=x, O="Acme, Inc."', "CN=x,O=Acme\\, Inc."),
    "hex escaped utf-8": ("CN=caf\\C3\\A9, C=FR", "CN=café,C=FR"),
    "OID. prefix": ("OID.2.5.4.3=x, O=y", "CN=x,O=y"),
    "dotted oid": ("2.5.4.3=x, 2.5.4.10=y", "CN=x,O=y"),
    "hex encoded value": ("CN=#0c0161, C=US", "CN=a,C=US"),
    "multi-valued rdn": ("CN=x+OU=y, O=z", "CN=x+OU=y,O=z"),
    "semicolon separator (rfc 1779)": ("CN=x; O=y", "CN=x,O=y"),
    "openssl slash one-line": (
        "/C=AU/ST=VIC/L=MELBOURNE/O=MyCompany/OU=ITS/CN=x", "CN=x,OU=ITS,O=MyCompany,L=MELBOURNE,ST=VIC,C=AU"
    ),
    "openssl slash with comma in value": ("/C=US/O=Acme, Inc./CN=x", "CN=x,O=Acme\\, Inc.,C=US"),
    "openssl 3 spaced equals": ("C = AU, ST = VIC, CN = x", "CN=x,ST=VIC,C=AU"),
    "lowercase keywords": ("cn=x, o=y", "CN=x,O=y"),
    "trailing spaces dropped": ("CN=x  , O=y ", "CN=x,O=y"),
    "escaped trailing space kept": ("CN=x\\ ", "CN=x\\ "),
    "over-long cn still parses": ("CN=" + "a" * 80, "CN=" + "a" * 80),
}


@pytest.mark.parametrize("text,expected", PARSE_CASES.values(), ids=PARSE_CASES.keys())
def test_name_from_string_reads_each_spelling(text: str, expected: str) -> None:
    # Given a DN as Edge, Java or OpenSSL prints it
    # When it is parsed
    name = name_from_string(text)
    # Then cryptography's RFC 4514 string is the expected one
    assert name_to_rfc4514(name) == expected


BAD_CASES = {
    "empty": ("", "empty"),
    "no equals": ("nonsense", "no '='"),
    "unknown keyword": ("FOO=bar", "unknown attribute type 'FOO'"),
    "trailing separator": ("CN=x,", "trailing separator"),
    "unterminated quote": ('CN="x', "unterminated"),
    "missing type": ("=x", "missing attribute type"),
    "dangling backslash": ("CN=x\\", "dangling backslash"),
    "bad utf-8 escape": ("CN=\\FF", "UTF-8"),
    "bad hex value": ("CN=#zz", "hex"),
    "text after quoted value": ('CN="x"y', "after a quoted value"),
}


@pytest.mark.parametrize("text,message", BAD_CASES.values(), ids=BAD_CASES.keys())
def test_name_from_string_rejects_nonsense_with_value_error(text: str, message: str) -> None:
    # Given text that is no DN, When it is parsed, Then a ValueError names the defect
    with pytest.raises(ValueError, match=message):
        name_from_string(text)


MATCH_CASES = {
    "java spacing vs rfc 4514": (
        "CN=Lab CA A, OU=caA, O=Lab Org, C=US", "CN=Lab CA A,OU=caA,O=Lab Org,C=US", True
    ),
    "case differs": ("CN=LAB CA A, O=lab org, C=us", "CN=Lab CA A,O=Lab Org,C=US", True),
    "inner whitespace collapsed": ("CN=Lab   CA  A, C=US", "CN=Lab CA A,C=US", True),
    "openssl slash vs java": ("/C=US/O=Lab Org/CN=Lab CA A", "CN=Lab CA A, O=Lab Org, C=US", True),
    "emailaddress keyword vs oid": (
        "EMAILADDRESS=Test@Test.com, CN=x", "1.2.840.113549.1.9.1=test@test.com,CN=x", True
    ),
    "multi-valued rdn order free": ("CN=x+OU=y, O=z", "OU=y+CN=x, O=z", True),
    "different cn": ("CN=Lab CA A, C=US", "CN=Lab CA B, C=US", False),
    "rdn order matters": ("CN=x, O=y", "O=y, CN=x", False),
    "extra rdn": ("CN=x, O=y", "CN=x, O=y, C=US", False),
    "multi-valued vs split": ("CN=x+OU=y", "CN=x, OU=y", False),
}


@pytest.mark.parametrize("a,b,expected", MATCH_CASES.values(), ids=MATCH_CASES.keys())
def test_names_match_compares_canonical_forms(a: str, b: str, expected: bool) -> None:
    # Given two spellings, When compared the X500Principal way, Then equality follows canonical forms
    assert names_match(name_from_string(a), name_from_string(b)) is expected
    assert names_match(name_from_string(b), name_from_string(a)) is expected


def test_names_match_der_name_against_edge_java_string() -> None:
    # Given a DER name as a CertificateRequest carries it (PrintableString country, UTF8 CN)
    der = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lab Org"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Lab CA A"),
        ]
    ).public_bytes()
    # When it is decoded and compared with Edge's Java spelling
    decoded = name_from_der(der)
    # Then it matches
    assert decoded is not None
    assert names_match(decoded, name_from_string("cn=lab ca a, O=Lab Org, C=US"))


DER_CASES = {
    "not der": b"not a name",
    "truncated": bytes.fromhex("300e310c300a0603550406130355"),
    "trailing bytes": x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]).public_bytes() + b"\x00",
    "empty": b"",
    # DER that parses, but as no Name cryptography can hold: a backend may send it as a CA name
    "empty rdn": bytes.fromhex("30023100"),
    "one attribute twice in an rdn": bytes.fromhex("30163114300806035504030c0161300806035504030c0161"),
}


@pytest.mark.parametrize("der", DER_CASES.values(), ids=DER_CASES.keys())
def test_name_from_der_returns_none_on_garbage(der: bytes) -> None:
    # Given bytes that are no DER Name, When decoded, Then the answer is None (callers decide)
    assert name_from_der(der) is None


def test_name_from_der_round_trips_and_keeps_odd_values() -> None:
    # Given a name with a 3-letter country (invalid but seen in the wild), When encoded and decoded
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        odd = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "USA", _validate=False)])
    decoded = name_from_der(odd.public_bytes())
    # Then the value survives
    assert decoded is not None and name_to_rfc4514(decoded) == "C=USA"


_UTF8_OIDS = [
    NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.LOCALITY_NAME
]
_IA5_OIDS = [NameOID.DOMAIN_COMPONENT, NameOID.EMAIL_ADDRESS]  # IA5String: ASCII only
_UTF8 = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
_ASCII = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=12)
_ATTRIBUTE = st.tuples(st.sampled_from(_UTF8_OIDS), _UTF8) | st.tuples(st.sampled_from(_IA5_OIDS), _ASCII)
_RDN = st.lists(_ATTRIBUTE, min_size=1, max_size=2, unique_by=lambda t: t[0])


@settings(max_examples=60, deadline=None)
@given(st.lists(_RDN, min_size=1, max_size=4))
def test_rfc4514_text_of_any_name_parses_back_to_an_equal_name(rdns: list) -> None:
    # Given any name (special characters, spaces, multi-valued RDNs)
    name = x509.Name(
        [x509.RelativeDistinguishedName([x509.NameAttribute(o, v) for o, v in rdn]) for rdn in rdns]
    )
    # When its RFC 4514 text is parsed back
    parsed = name_from_string(name.rfc4514_string())
    # Then it matches the original and its DER decodes to a matching name too
    assert names_match(parsed, name)
    decoded = name_from_der(name.public_bytes())
    assert decoded is not None and names_match(decoded, name)


def _tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content


_DER_OIDS = {  # content octets of the attribute types a backend's CA names carry, and one nobody knows
    "CN": "550403", "C": "550406", "O": "55040a", "serialNumber": "550405", "email": "2a864886f70d010901",
    "DC": "0992268993f22c640119", "x500UniqueIdentifier": "55042d", "unknown": "2a0304",
}
# UTF8String, PrintableString, IA5String, BMPString, UniversalString, TeletexString, NumericString,
# VisibleString, GeneralString, BIT STRING, INTEGER
_DER_TAGS = [0x0C, 0x13, 0x16, 0x1E, 0x1C, 0x14, 0x12, 0x1A, 0x1B, 0x03, 0x02]
_CONTENT = st.sampled_from([b"", b"a", b"US", b"Lab CA", b"a@b", b"\x00\xab", b"\x00a\x00b", b"caf\xc3\xa9",
                            b"\xff", b"\x00\x00\x00a", b"\xd8\x00"]) | st.binary(max_size=6)
_DER_AVA = st.builds(lambda oid, tag, value: _tlv(0x30, _tlv(0x06, bytes.fromhex(oid)) + _tlv(tag, value)),
                     st.sampled_from(sorted(_DER_OIDS.values())), st.sampled_from(_DER_TAGS), _CONTENT)
_DER_NAME = st.lists(st.lists(_DER_AVA, max_size=2).map(lambda avas: _tlv(0x31, b"".join(avas))), max_size=3)


def _attributes(name: x509.Name | None) -> list[list[tuple[str, str | bytes, object]]] | None:
    if name is None:
        return None
    return [[(a.oid.dotted_string, a.value, a._type) for a in rdn] for rdn in name.rdns]


def _cryptography_reading(der: bytes) -> x509.Name | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return x509.Name.from_bytes(der)
    except (ValueError, TypeError):
        return None


@settings(max_examples=400, deadline=None)
@given(_DER_NAME, st.data())
def test_name_from_der_reads_with_cryptography_and_leaves_the_rest_to_asn1crypto(
    rdns: list[bytes], data: st.DataObject
) -> None:
    """White box, on purpose: which of the two readers answers is the contract (cryptography, imported anyway,
    for what it reads as JSSE does; asn1crypto, imported only then, for the rest)."""
    from collector.tls.names import _name_from_der_leniently

    # Given a DER Name of odd string types, values and RDNs, sometimes with one byte changed
    der = bytearray(_tlv(0x30, b"".join(rdns)))
    if data.draw(st.booleans()):
        der[data.draw(st.integers(0, len(der) - 1))] = data.draw(st.integers(0, 255))
    # When decoded (it never raises)
    decoded = name_from_der(bytes(der))
    # Then a name cryptography reads with string values and no TeletexString (which JSSE reads as Latin-1) is
    # cryptography's reading, and any other is the lenient reader's
    read = _cryptography_reading(bytes(der))
    if read is not None and all(isinstance(a.value, str) and a._type != _ASN1Type.T61String for a in read):
        assert _attributes(decoded) == _attributes(read)
    else:
        assert _attributes(decoded) == _attributes(_name_from_der_leniently(bytes(der)))


_LENIENT_CASES = {  # attribute type, DER value (tag, length, content) -> the text kept, as JSSE compares it
    "a TeletexString, as Latin-1": ("550403", "1403616263", "abc"),
    "latin-1 in a TeletexString": ("550403", "1402e965", "ée"),
    "a number under an unknown type is kept as its DER": ("2a0304", "020105", "#020105"),
}


@pytest.mark.parametrize("oid,value,text", _LENIENT_CASES.values(), ids=_LENIENT_CASES.keys())
def test_name_from_der_keeps_what_cryptography_refuses(oid: str, value: str, text: str) -> None:
    # Given a CA name with a value cryptography refuses or reads otherwise than JSSE
    der = _tlv(0x30, _tlv(0x31, _tlv(0x30, _tlv(0x06, bytes.fromhex(oid)) + bytes.fromhex(value))))
    # When decoded
    decoded = name_from_der(der)
    # Then the text is kept
    assert decoded is not None and [a.value for a in decoded] == [text]

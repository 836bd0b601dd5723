"""Distinguished names: every spelling Edge, Java and OpenSSL print parses to the same Name;
JSSE-style matching."""

from __future__ import annotations

import pytest
from cryptography import x509
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

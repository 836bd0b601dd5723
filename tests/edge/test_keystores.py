"""Edge keystore/alias/cert documents parse from the verbatim reference examples; malformed ones name the
field."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from collector.edge.keystores import (
    AliasRef,
    CertInfo,
    parse_alias,
    parse_cert,
    parse_keystore,
    sniff_edge_document,
)
from collector.tls.names import name_from_string, name_to_rfc4514

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edge"


def _load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_parse_keystore_reads_the_spec_example() -> None:
    # Given the keystore example of the Edge spec, When parsed
    doc = parse_keystore(_load("keystore-spec-example.json"))
    # Then names, keys, certs and aliases are kept
    assert doc.name == "MyTestKeystore"
    assert doc.keys == ("myTestAlias",)
    assert doc.certs == ("myTestAlias-cert",)
    assert doc.aliases == (AliasRef("myTestAlias", "myTestAlias-cert", "myTestAlias-key"),)


@pytest.mark.parametrize(
    "fixture,keys,aliases",
    [("keystore-no-key.json", (), ()), ("keystore-old-format.json", ("freetrial",), ())],
    ids=["empty keystore", "older format without aliases"],
)
def test_parse_keystore_reads_empty_and_old_documents(fixture: str, keys: tuple, aliases: tuple) -> None:
    # Given an empty or old-format keystore document, When parsed, Then keys and aliases are as documented
    doc = parse_keystore(_load(fixture))
    assert doc.keys == keys and doc.aliases == aliases


def test_parse_cert_reads_the_spec_example_with_epoch_ms_and_java_dns() -> None:
    # Given the verbatim "get cert" example (epoch ms, Java DN with EMAILADDRESS)
    doc = parse_cert(_load("cert-spec-example.json"))
    # Then the times are UTC datetimes and the DN parses
    (info,) = doc.chain
    assert doc.cert_name == "myTestAlias-cert"
    assert info.valid_from == datetime(2015, 8, 4, 23, 58, 27, tzinfo=timezone.utc)
    assert info.expiry == datetime(2016, 8, 3, 23, 58, 27, tzinfo=timezone.utc)
    assert info.is_valid == "No" and info.basic_constraints == "CA:FALSE"
    assert info.serial == "00:92:85:f7:e5:3b:c5:30:26"
    assert name_to_rfc4514(name_from_string(info.issuer)).startswith("1.2.840.113549.1.9.1=test@test.com,CN=")


def test_parse_alias_reads_string_epochs_and_key_name() -> None:
    # Given an alias document whose dates are strings of epoch ms
    doc = parse_alias(_load("alias-playbook-ca-mismatch.json"))
    # Then the chain, key and cert names come out
    assert (doc.alias, doc.key_name, doc.cert_name) == ("myKeyAlias", "myKeyAlias", "myKeyAlias-cert")
    assert doc.chain[0].valid_from == datetime(2020, 9, 21, tzinfo=timezone.utc)
    assert doc.chain[0].issuer.startswith("CN=MyCompany Test SHA2 CA G2")


VALUE_CASES = {
    "real booleans": ({"isValid": True}, "is_valid", "Yes"),
    "false boolean": ({"isValid": False}, "is_valid", "No"),
    "iso date": (
        {"validFrom": "2020-01-01T00:00:00Z"}, "valid_from", datetime(2020, 1, 1, tzinfo=timezone.utc)
    ),
    "float epoch": ({"expiryDate": 1.0e12}, "expiry", datetime(2001, 9, 9, 1, 46, 40, tzinfo=timezone.utc)),
    "absent dates": ({}, "valid_from", None),
    "integer serial": ({"serialNumber": 12}, "serial", "12"),
}


@pytest.mark.parametrize("extra,attribute,expected", VALUE_CASES.values(), ids=VALUE_CASES.keys())
def test_cert_info_accepts_strings_and_real_types(extra: dict, attribute: str, expected: object) -> None:
    # Given a certInfo with the field spelled as Edge or Apigee X may spell it, When parsed
    doc = parse_cert({"certName": "c", "certInfo": [{"subject": "CN=s", "issuer": "CN=i", **extra}]})
    # Then the value is normalised
    assert getattr(doc.chain[0], attribute) == expected


def test_alias_without_key_name_has_none() -> None:
    # Given a certificate-only alias (a truststore entry), When parsed, Then key_name is None
    doc = parse_alias({"alias": "a", "certsInfo": {"certInfo": [], "certName": "a-cert"}, "keyName": ""})
    assert doc.key_name is None and doc.chain == ()


MALFORMED = {
    "keystore without name": (parse_keystore, {"keys": [], "certs": []}, "missing field 'name'"),
    "keystore without certs": (parse_keystore, {"name": "k", "keys": []}, "missing field 'certs'"),
    "keystore keys not a list": (
        parse_keystore, {"name": "k", "keys": "x", "certs": []}, "'keys' is not a list"
    ),
    "keystore alias without name": (
        parse_keystore, {"name": "k", "keys": [], "certs": [], "aliases": [{}]}, "aliasName"
    ),
    "alias without certsInfo": (parse_alias, {"alias": "a"}, "missing field 'certsInfo'"),
    "alias without certInfo list": (parse_alias, {"alias": "a", "certsInfo": {}}, "certsInfo.certInfo"),
    "alias without alias": (parse_alias, {"certsInfo": {"certInfo": []}}, "missing field 'alias'"),
    "cert without certName": (parse_cert, {"certInfo": []}, "missing field 'certName'"),
    "cert entry without issuer": (
        parse_cert, {"certName": "c", "certInfo": [{"subject": "CN=s"}]}, "'issuer' in certInfo\\[0\\]"
    ),
    "cert entry not an object": (
        parse_cert, {"certName": "c", "certInfo": ["x"]}, "certInfo\\[0\\] is not a JSON object"
    ),
    "bad date": (
        parse_cert,
        {"certName": "c", "certInfo": [{"subject": "a", "issuer": "b", "validFrom": "soon"}]},
        "validFrom",
    ),
    "document not an object": (parse_cert, ["x"], "not a JSON object"),
}


@pytest.mark.parametrize("parse,data,message", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_documents_raise_value_error_naming_the_field(parse, data, message: str) -> None:
    # Given a document missing a field, When parsed, Then ValueError names the field
    with pytest.raises(ValueError, match=message):
        parse(data)


SNIFF = {
    "keystore": ("keystore-spec-example.json", "keystore"),
    "empty keystore": ("keystore-no-key.json", "keystore"),
    "alias": ("alias-playbook-ca-mismatch.json", "alias"),
    "cert": ("cert-spec-example.json", "cert"),
}


@pytest.mark.parametrize("fixture,kind", SNIFF.values(), ids=SNIFF.keys())
def test_sniff_edge_document_recognises_each_kind(fixture: str, kind: str) -> None:
    # Given an Edge document, When sniffed, Then its kind is named
    assert sniff_edge_document(_load(fixture)) == kind


@pytest.mark.parametrize(
    "data", [[], {"handshakes": []}, "text", {"name": "x"}], ids=["list", "other", "str", "bare name"]
)
def test_sniff_edge_document_returns_none_for_other_json(data: object) -> None:
    # Given JSON that is not an Edge keystore document, When sniffed, Then None
    assert sniff_edge_document(data) is None


def test_cert_info_to_json_matches_certificate_summary_keys() -> None:
    # Given a CertInfo, When serialised, Then it has the keys of CertificateSummary.to_json()
    info = CertInfo("CN=s", "CN=i", datetime(2020, 1, 1, tzinfo=timezone.utc))
    assert info.to_json() == {
        "subject": "CN=s",
        "issuer": "CN=i",
        "not_before": "2020-01-01T00:00:00+00:00",
        "not_after": "",
    }

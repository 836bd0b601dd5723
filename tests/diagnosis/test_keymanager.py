"""JSSE's alias choice over keystore evidence: which entries qualify for which acceptable CA names."""

from __future__ import annotations

import pytest

from collector.diagnosis.evidence import KeystoreEvidence
from collector.diagnosis.keymanager import (
    AcceptableName,
    KeystoreVerdict,
    acceptable_names,
    check_keystore,
    merge_entries,
)
from collector.tls.handshake import CertificateRequest, CertificateSummary
from collector.tls.names import name_from_string
from tests.diagnosis.builders import CA_A, CA_B, INTERMEDIATE, JAVA_CA_A, JAVA_CA_B, ROOT, der, info, request


def names(*texts: str) -> tuple[AcceptableName, ...]:
    return tuple(AcceptableName(t, name_from_string(t)) for t in texts)


def entry(document: str, alias: str | None, has_key: bool | None, *issuers: str, cert: str | None = None,
          keystore: str | None = "ks") -> KeystoreEvidence:
    chain = tuple(info(i) for i in issuers)
    return KeystoreEvidence(keystore, alias, has_key, chain, f"{document}.json", cert, document)


CHECKS = {
    "no evidence": ([], None, None, names(CA_A), KeystoreVerdict.UNKNOWN),
    "empty keystore": ([entry("keystore", None, False)], None, None, names(CA_A), KeystoreVerdict.NO_KEY),
    "alias without key": ([entry("alias", "k", False, JAVA_CA_A)], "k", None, names(CA_A),
                          KeystoreVerdict.NO_KEY),
    "key alias absent from listing": ([entry("keystore", "other", True)], "k", None, names(CA_A),
                                      KeystoreVerdict.NO_KEY),
    "key alias compared without case": ([entry("alias", "MyKey", True, JAVA_CA_A)], "mykey", None,
                                        names(CA_A), KeystoreVerdict.ACCEPTABLE),
    "key without chain": ([entry("keystore", "k", True)], "k", None, names(CA_A), KeystoreVerdict.UNKNOWN),
    "CA list unknown": ([entry("alias", "k", True, JAVA_CA_B)], None, None, None, KeystoreVerdict.UNKNOWN),
    "empty CA list": ([entry("alias", "k", True, JAVA_CA_B)], None, None, (), KeystoreVerdict.ACCEPTABLE),
    "leaf issuer listed": ([entry("alias", "k", True, JAVA_CA_A)], None, None, names(CA_A),
                           KeystoreVerdict.ACCEPTABLE),
    "leaf issuer not listed": ([entry("alias", "k", True, JAVA_CA_B)], None, None, names(CA_A),
                               KeystoreVerdict.NO_ACCEPTABLE_ISSUER),
    "second cert's issuer listed": ([entry("alias", "k", True, INTERMEDIATE, ROOT)], None, None, names(ROOT),
                                    KeystoreVerdict.ACCEPTABLE),
    "leaf only, root listed": ([entry("alias", "k", True, INTERMEDIATE)], None, None, names(ROOT),
                               KeystoreVerdict.NO_ACCEPTABLE_ISSUER),
    "any of several entries qualifies": ([entry("alias", "a", True, JAVA_CA_B),
                                          entry("alias", "b", True, JAVA_CA_A)],
                                         None, None, names(CA_A), KeystoreVerdict.ACCEPTABLE),
    "key alias restricts to one entry": ([entry("alias", "a", True, JAVA_CA_B),
                                          entry("alias", "b", True, JAVA_CA_A)],
                                         "a", None, names(CA_A), KeystoreVerdict.NO_ACCEPTABLE_ISSUER),
    "other keystore's documents": ([entry("alias", "k", True, JAVA_CA_B, keystore="other")], None, "ks",
                                   names(CA_A), KeystoreVerdict.UNKNOWN),
    "unparseable CA names": ([entry("alias", "k", True, JAVA_CA_B)], None, None,
                             (AcceptableName("??", None),), KeystoreVerdict.UNKNOWN),
}


@pytest.mark.parametrize("entries,key_alias,keystore,ca_names,verdict", CHECKS.values(), ids=CHECKS.keys())
def test_check_keystore_applies_jsse_alias_choice(entries, key_alias, keystore, ca_names, verdict) -> None:
    # Given keystore evidence, a KeyAlias, a keystore name and the server's CA names
    # When JSSE's choice is applied
    check = check_keystore(entries, key_alias, keystore, ca_names)
    # Then the verdict is the expected one
    assert check.verdict is verdict, check.evidence


def test_merge_joins_listing_alias_and_cert_documents() -> None:
    # Given a keystore listing, the cert document of its alias, and an alias document of another alias
    listing = entry("keystore", "k", True, cert="k-cert")
    cert = entry("cert", None, None, JAVA_CA_A, cert="k-cert")
    other = entry("alias", "o", False, JAVA_CA_B)
    # When merged
    merged = merge_entries([cert, other, listing])
    # Then the cert's chain joins the listed alias (keeping its key) and the other alias stays apart
    assert [(e.alias, e.has_key, len(e.chain), e.source) for e in merged] == [
        ("k", True, 1, "cert.json"), ("o", False, 1, "alias.json")]


def test_acceptable_names_prefer_der_and_fall_back_to_text() -> None:
    # Given a request with DER for the first name only and text for both
    req = CertificateRequest(ca_names=(CA_A, "CN=Lab CA B,OU=caB,O=Lab Org,C=US"), ca_names_der=(der(CA_A),))
    # When the names are read
    parsed = acceptable_names(req)
    # Then both parse
    assert [n.name is not None for n in parsed] == [True, True]
    assert [n.text for n in parsed] == [CA_A, CA_B]


def test_acceptable_names_decode_hex_fallback_text() -> None:
    # Given the capture reader's "hex:" fallback text for a name
    parsed = acceptable_names(CertificateRequest(ca_names=("hex:" + der(CA_A).hex(),)))
    # Then the DER inside still parses
    assert parsed[0].name == name_from_string(CA_A)


def test_certificate_summary_issuer_der_is_used() -> None:
    # Given a PEM-loaded chain whose issuer text is unparseable but whose DER is known
    summary = CertificateSummary(subject="CN=x", issuer="garbage", issuer_der=der(CA_A))
    pem = KeystoreEvidence(None, None, None, (summary,), "client.pem", None, "pem")
    # Then the DER decides
    verdict = check_keystore([pem], None, None, acceptable_names(request(CA_A))).verdict
    assert verdict is KeystoreVerdict.ACCEPTABLE


def test_cert_document_of_an_alias_already_shown_adds_nothing() -> None:
    # Given the keystore listing, the alias document and the cert document of the same alias (a live bundle)
    listing = entry("keystore", "k", True, cert="k-cert")
    alias = entry("alias", "k", True, JAVA_CA_B, cert="k-cert")
    cert = entry("cert", None, None, JAVA_CA_B, cert="k-cert")
    # When merged, Then one entry remains, cited by the alias document
    merged = merge_entries([listing, alias, cert])
    assert [(e.alias, e.source) for e in merged] == [("k", "alias.json")]
    check = check_keystore([listing, alias, cert], "k", "ks", names(CA_A))
    assert check.verdict is KeystoreVerdict.NO_ACCEPTABLE_ISSUER and len(check.evidence) == 1

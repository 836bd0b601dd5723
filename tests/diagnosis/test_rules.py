"""Each cause from the handshakes and keystore evidence that decide it, including DESIGN's two close calls."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from collector.diagnosis.causes import Cause
from collector.diagnosis.diagnose import diagnose
from collector.diagnosis.evidence import Evidence, KeystoreEvidence
from collector.tls.handshake import ClientCertificate, Outcome
from tests.diagnosis.builders import (
    BACKEND,
    CA_A,
    CA_B,
    INTERMEDIATE,
    JAVA_CA_A,
    JAVA_CA_B,
    ROOT,
    alert,
    alias_entry,
    empty_cert_failed,
    empty_keystore,
    evidence,
    handshake,
    info,
    opaque_tls13,
    probe,
    request,
)
from tests.lab.pki import CA_A_NAME


@dataclass(frozen=True)
class Case:
    evidence: Evidence
    cause: Cause
    mentions: tuple[str, ...] = ()  # substrings the evidence lines or texts must hold


def _chain_entry(*issuers: str, source: str = "alias.json") -> KeystoreEvidence:
    chain = tuple(info(i) for i in issuers)
    return KeystoreEvidence("myKeystore", "myKey", True, chain, source, "myKey-cert", "alias")


LISTING = KeystoreEvidence("myKeystore", "otherKey", True, (), "keystore.json", "otherKey-cert", "keystore")
CERT_ONLY_ALIAS = KeystoreEvidence("myKeystore", "myKey", False, (info(JAVA_CA_A),), "alias.json",
                                   "myKey-cert", "alias")
PEM_CHAIN = KeystoreEvidence(None, None, None, (info(JAVA_CA_B),), "client.pem", None, "pem")

CASES = {
    # --- missing-client-certificate: the keystore has no key entry to send
    "empty keystore": Case(evidence(empty_cert_failed(CA_A), keystores=(empty_keystore(),)),
                           Cause.MISSING_CLIENT_CERTIFICATE,
                           ("keystore-no-key.json: keystore myKeystore holds no private key",)),
    "key alias not in keystore": Case(
        evidence(empty_cert_failed(CA_A), keystores=(LISTING,), key_alias="myKey"),
        Cause.MISSING_CLIENT_CERTIFICATE,
        ("keystore myKeystore has no alias myKey (the KeyAlias); it lists otherKey",)),
    "alias holds a certificate but no key": Case(
        evidence(empty_cert_failed(CA_A), keystores=(CERT_ONLY_ALIAS,), key_alias="myKey"),
        Cause.MISSING_CLIENT_CERTIFICATE, ("alias myKey in keystore myKeystore holds no private key",)),
    "keystore lists certs but no keys, pem given too": Case(
        evidence(empty_cert_failed(CA_A), keystores=(empty_keystore(), PEM_CHAIN)),
        Cause.MISSING_CLIENT_CERTIFICATE),
    # --- ca-mismatch: JSSE found no stored chain with an acceptable issuer
    "leaf issued by another CA": Case(
        evidence(empty_cert_failed(CA_A), keystores=(alias_entry(JAVA_CA_B),)), Cause.CA_MISMATCH,
        (("frame 7 (lab.pcap): CertificateRequest from 127.0.0.21:8443 lists acceptable CA names: "
          "CN=Lab CA A,OU=caA,O=Lab Org,C=US"), "frame 9: client Certificate length 0 (no certificate sent)",
         "frame 10: fatal alert bad_certificate (42) from the server",
         "alias.json: leaf issuer CN=Lab CA B, OU=caB, O=Lab Org, C=US is not an acceptable CA")),
    "leaf-only chain, intermediate issuer, server lists the root": Case(
        evidence(empty_cert_failed(ROOT), keystores=(_chain_entry(INTERMEDIATE),)), Cause.CA_MISMATCH,
        ("upload the complete chain",)),
    "pem chain of another CA (openssl backend, alert 40)": Case(
        evidence(empty_cert_failed(CA_A, code=40), keystores=(PEM_CHAIN,)), Cause.CA_MISMATCH,
        ("fatal alert handshake_failure (40)", "client.pem: leaf issuer CN=Lab CA B")),
    "several CA names, none matches": Case(
        evidence(empty_cert_failed(CA_A, ROOT), keystores=(alias_entry(JAVA_CA_B),)), Cause.CA_MISMATCH,
        ("lists acceptable CA names: CN=Lab CA A,OU=caA,O=Lab Org,C=US; CN=Lab Root,O=Lab Org,C=US",)),
    "emailaddress issuer vs rfc 4514 oid spelling, one rdn differs": Case(
        evidence(empty_cert_failed("1.2.840.113549.1.9.1=ca@lab.test,CN=Lab CA A,C=US"),
                 keystores=(alias_entry("EMAILADDRESS=ca@lab.test, CN=Lab CA A, C=GB"),)), Cause.CA_MISMATCH),
    # --- JSSE semantics that make an entry qualify (so the cause is not ca-mismatch)
    "intermediate-issued leaf with full chain, server lists the root": Case(
        evidence(empty_cert_failed(ROOT), keystores=(_chain_entry(INTERMEDIATE, ROOT),)),
        Cause.CLIENT_CERTIFICATE_NOT_SENT, ("certificate 2 of the stored chain was issued by CN=Lab Root",)),
    "java-style issuer vs DER name, other spacing and case": Case(
        evidence(empty_cert_failed(CA_A), keystores=(alias_entry("cn=LAB CA A ,  ou=caA, o=lab org, c=us"),)),
        Cause.CLIENT_CERTIFICATE_NOT_SENT,
        ("an acceptable CA", "Check that the target's KeyAlias names alias myKey of keystore myKeystore")),
    "lab pki java name vs wire": Case(
        evidence(empty_cert_failed(CA_A), keystores=(alias_entry(CA_A_NAME),)),
        Cause.CLIENT_CERTIFICATE_NOT_SENT),
    "emailaddress issuer matches its oid spelling": Case(
        evidence(empty_cert_failed("1.2.840.113549.1.9.1=CA@Lab.test,CN=Lab CA A,C=US"),
                 keystores=(alias_entry("EMAILADDRESS=ca@lab.test, CN=Lab CA A, C=US"),)),
        Cause.CLIENT_CERTIFICATE_NOT_SENT),
    "empty CA list, key entry with a chain": Case(
        evidence(empty_cert_failed(), keystores=(alias_entry(JAVA_CA_B),)), Cause.CLIENT_CERTIFICATE_NOT_SENT,
        ("lists no acceptable CA names (any issuer qualifies)", "the server named no acceptable CA")),
    # --- client-certificate-not-sent: the keystore is unknown
    "keystore unknown": Case(evidence(empty_cert_failed(CA_A)), Cause.CLIENT_CERTIFICATE_NOT_SENT,
                             ("cannot be told apart", "get cert for keystore")),
    "keystore unknown, empty CA list points at no key": Case(
        evidence(empty_cert_failed()), Cause.CLIENT_CERTIFICATE_NOT_SENT,
        ("most likely holds no key", "Check that the keystore named by the target's SSLInfo holds a key")),
    "close call 1: nginx completes after an empty certificate": Case(
        evidence(handshake(cr=request(CA_A), sent=False, outcome=Outcome.ESTABLISHED, http_status=400)),
        Cause.CLIENT_CERTIFICATE_NOT_SENT, ("no alert: the handshake completed, then HTTP 400",)),
    "close call 1 with keystore: nginx and a CA-B leaf": Case(
        evidence(handshake(cr=request(CA_A), sent=False, outcome=Outcome.ESTABLISHED),
                 keystores=(alias_entry(JAVA_CA_B),)),
        Cause.CA_MISMATCH),
    "close call 2: failures and completions in one capture": Case(
        evidence(handshake(cr=request(CA_A), sent=True, outcome=Outcome.ESTABLISHED, client="127.0.0.11:1"),
                 empty_cert_failed(CA_A), empty_cert_failed(CA_A)),
        Cause.CLIENT_CERTIFICATE_NOT_SENT, (("2 of 3 handshake(s) to 127.0.0.21:8443 (backend.lab) show this "
                                             "(1 established, 2 failed)"),)),
    # --- client-certificate-rejected: a certificate was sent and refused
    "unknown_ca after a certificate": Case(
        evidence(handshake(cr=request(CA_A), sent=True, client_chain=(), alerts=(alert(48),))),
        Cause.CLIENT_CERTIFICATE_REJECTED, ("fatal alert unknown_ca (48) from the server",)),
    "certificate_unknown from a java backend": Case(
        evidence(handshake(cr=request(CA_A), sent=True, alerts=(alert(46),))),
        Cause.CLIENT_CERTIFICATE_REJECTED),
    "HTTP 400 after a certificate (nginx)": Case(
        evidence(handshake(cr=request(CA_A), sent=True, outcome=Outcome.ESTABLISHED, http_status=400)),
        Cause.CLIENT_CERTIFICATE_REJECTED, ("handshake completed, then HTTP 400",)),
    # --- handshake-failed-before-client-auth
    "protocol version refused": Case(
        evidence(handshake(alerts=(alert(70, frame=6),), version=None)),
        Cause.HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH,
        ("frame 4 (lab.pcap): ClientHello from 127.0.0.11:53122 to 127.0.0.21:8443 (SNI backend.lab)",
         "fatal alert protocol_version (70) from the server")),
    "mp refuses the server chain": Case(
        evidence(handshake(cr=request(CA_A), alerts=(alert(46, sender="client"),))),
        Cause.HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH, ("from the message processor",)),
    # --- encrypted-handshake
    "tls 1.3 without keys": Case(evidence(opaque_tls13()), Cause.ENCRYPTED_HANDSHAKE,
                                 ("5 encrypted record(s)", "collect probe backend.lab:8443")),
    "tls 1.3 failed, flight unanswered, no keys": Case(
        evidence(replace(handshake(version="TLSv1.3", outcome=Outcome.FAILED), encrypted_records=4)),
        Cause.ENCRYPTED_HANDSHAKE),
    "tls 1.3 with a keystore but no probe": Case(
        evidence(opaque_tls13(), keystores=(alias_entry(JAVA_CA_B),)), Cause.ENCRYPTED_HANDSHAKE),
    "tls 1.3 with a probe but no keystore": Case(
        evidence(opaque_tls13(), probes=(probe(request(CA_A, with_der=False, frame=None)),)),
        Cause.ENCRYPTED_HANDSHAKE, ("probe of 127.0.0.21:8443",)),
    "tls 1.3, probe and an acceptable keystore": Case(
        evidence(opaque_tls13(), keystores=(alias_entry(JAVA_CA_A),),
                 probes=(probe(request(CA_A, with_der=False)),)),
        Cause.ENCRYPTED_HANDSHAKE),
    # --- a probe supplies the CA list TLS 1.3 hides
    "tls 1.3, probe CA list and a CA-B keystore": Case(
        evidence(opaque_tls13(), keystores=(alias_entry(JAVA_CA_B),),
                 probes=(probe(request(CA_A, with_der=False)),)),
        Cause.CA_MISMATCH, (("probe of 127.0.0.21:8443: the backend asks for a client certificate and lists "
                             "acceptable CA names: CN=Lab CA A,OU=caA,O=Lab Org,C=US"),
                            "is encrypted (no key log)")),
    "tls 1.3, probe by sni name, empty keystore": Case(
        evidence(opaque_tls13(), opaque_tls13(server="127.0.0.22:8443"), keystores=(empty_keystore(),),
                 probes=(probe(request(CA_A), target="backend.lab:8443"),)),
        Cause.MISSING_CLIENT_CERTIFICATE),
    "tls 1.3, probe of another address for the only backend": Case(
        evidence(opaque_tls13(), keystores=(alias_entry(JAVA_CA_B),),
                 probes=(probe(request(CA_A), target="127.0.0.1:18443", sni=None),)),
        Cause.CA_MISMATCH,
        ("probe of 127.0.0.1:18443 (taken for 127.0.0.21:8443 (backend.lab): the only probe",)),
    "no capture, probe and a CA-B keystore": Case(
        evidence(keystores=(alias_entry(JAVA_CA_B),), probes=(probe(request(CA_A)),)), Cause.CA_MISMATCH,
        ("no capture of this backend",)),
    # --- handshake-ok and no-tls-handshake
    "all completed": Case(evidence(handshake(cr=request(CA_A), sent=True, outcome=Outcome.ESTABLISHED)),
                          Cause.HANDSHAKE_OK, ("1 established",)),
    "nothing at all": Case(evidence(), Cause.NO_TLS_HANDSHAKE, ("no TLS handshake in: lab.pcap",)),
    "only incomplete handshakes": Case(evidence(handshake(outcome=Outcome.INCOMPLETE)),
                                       Cause.NO_TLS_HANDSHAKE, ("1 incomplete",)),
    "keystore alone": Case(evidence(keystores=(empty_keystore(),)), Cause.NO_TLS_HANDSHAKE,
                           ("keystore-no-key.json: keystore myKeystore holds no private key",)),
    "probe only, keystore acceptable": Case(
        evidence(keystores=(alias_entry(JAVA_CA_A),), probes=(probe(request(CA_A)),)),
        Cause.NO_TLS_HANDSHAKE),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_diagnose_names_the_cause_with_its_evidence(case: Case) -> None:
    # Given handshakes, keystore evidence and probes
    # When they are diagnosed
    diagnosis = diagnose(case.evidence)
    # Then the cause is the expected one and the evidence/texts cite what decided it
    assert diagnosis.cause is case.cause, diagnosis.evidence
    text = "\n".join((diagnosis.summary, *diagnosis.evidence, diagnosis.resolution))
    for expected in case.mentions:
        assert expected in text


def test_ca_mismatch_names_leaf_issuer_acceptable_cas_keystore_and_alias() -> None:
    # Given the playbook's second cause
    diagnosis = diagnose(evidence(empty_cert_failed(CA_A), keystores=(alias_entry(JAVA_CA_B),)))
    # Then the resolution names the issuer to trust, the acceptable CA, and where to upload otherwise
    assert "Add the certificate of CN=Lab CA B, OU=caB, O=Lab Org, C=US" in diagnosis.resolution
    assert "acceptable CAs: CN=Lab CA A,OU=caA,O=Lab Org,C=US" in diagnosis.resolution
    assert "keystore myKeystore under alias myKey" in diagnosis.resolution


def test_missing_names_keystore_and_key_alias_in_resolution() -> None:
    # Given a KeyAlias that the keystore does not hold
    diagnosis = diagnose(evidence(empty_cert_failed(CA_A), keystores=(LISTING,),
                                  key_alias="myKey", keystore="myKeystore"))
    # Then the resolution says where to upload the chain with its key
    assert "to keystore myKeystore under alias myKey" in diagnosis.resolution
    assert "complete client certificate chain with its private key" in diagnosis.resolution


def test_several_backends_name_the_failing_one_and_count_both() -> None:
    # Given a healthy backend and a failing one in one capture
    ok = handshake(cr=request(CA_A), sent=True, outcome=Outcome.ESTABLISHED,
                   server="127.0.0.22:443", sni="ok.lab")
    diagnosis = diagnose(evidence(ok, ok, empty_cert_failed(CA_A)))
    # Then the diagnosis names the failing backend and counts both
    assert diagnosis.backend == f"{BACKEND} (backend.lab)"
    assert diagnosis.counts == {"127.0.0.22:443 (ok.lab)": {"established": 2},
                                f"{BACKEND} (backend.lab)": {"failed": 1}}
    assert "other backend 127.0.0.22:443 (ok.lab): 2 established" in diagnosis.evidence


def test_key_alias_of_another_keystore_is_not_judged() -> None:
    # Given keystore documents for another keystore than the target's
    diagnosis = diagnose(evidence(empty_cert_failed(CA_A),
                                  keystores=(alias_entry(JAVA_CA_B, keystore="other"),),
                                  keystore="myKeystore"))
    # Then the verdict stays "not sent" and says why
    assert diagnosis.cause is Cause.CLIENT_CERTIFICATE_NOT_SENT
    assert "not for keystore myKeystore" in "\n".join(diagnosis.evidence)


def test_a_sent_certificate_that_completes_is_ok() -> None:
    # Given a handshake whose client certificate was sent and accepted
    sent = handshake(cr=request(CA_A), outcome=Outcome.ESTABLISHED)
    sent = replace(sent, client_certificate=ClientCertificate(sent=True, frame=9))
    # Then nothing is wrong
    assert diagnose(evidence(sent)).cause is Cause.HANDSHAKE_OK


def test_ca_names_without_der_are_parsed_from_text() -> None:
    # Given a CertificateRequest that carries only RFC 4514 text (a probe file) and a matching keystore
    given = handshake(cr=request(CA_A, with_der=False), sent=False, alerts=(alert(42),))
    diagnosis = diagnose(evidence(given, keystores=(alias_entry(JAVA_CA_A),)))
    # Then the names still match, so it is not a CA mismatch
    assert diagnosis.cause is Cause.CLIENT_CERTIFICATE_NOT_SENT


def test_ca_b_request_matches_ca_b_chain() -> None:
    # Given a server that lists CA B and a CA-B leaf, Then the entry qualifies (no mismatch)
    diagnosis = diagnose(evidence(empty_cert_failed(CA_B), keystores=(alias_entry(JAVA_CA_B),)))
    assert diagnosis.cause is Cause.CLIENT_CERTIFICATE_NOT_SENT

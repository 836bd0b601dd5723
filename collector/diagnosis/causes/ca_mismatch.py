"""ca-mismatch: the MP sent an empty Certificate because no stored chain was issued by an acceptable CA
(playbook cause 2)."""

from __future__ import annotations

from collector.diagnosis.backends import Facts
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.findings import client_auth_cases, client_auth_finding
from collector.diagnosis.keymanager import KeystoreVerdict
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)

# Filled into {chain_hint} when the keystore holds the leaf only.
CHAIN_HINT = (" If the leaf was issued by an intermediate CA of an acceptable CA, upload the complete chain"
              " (leaf and intermediates): JSSE matches the issuer of any certificate of the stored chain.")


def ca_mismatch(facts: Facts) -> Finding | None:
    cases = client_auth_cases(facts, KeystoreVerdict.NO_ACCEPTABLE_ISSUER)
    if not cases:
        return None
    finding = client_auth_finding(facts, cases)
    hint = CHAIN_HINT if cases[0].check.chain_length == 1 else ""
    return Finding(finding.backend, finding.evidence, {**finding.values, "chain_hint": hint}, finding.variant)


SPEC = CauseSpec(
    cause=Cause.CA_MISMATCH,
    rule=ca_mismatch,
    cites=(Cited.CERTIFICATE_REQUEST, Cited.CLIENT_CERTIFICATE, Cited.ALERT),
    texts=Texts(
        "The message processor sent no client certificate to {backend}: its keystore certificate was issued"
        " by"
        " {leaf_issuer}, which is not among the CAs the backend accepts (playbook cause: Certificate"
        " Authority"
        " Mismatch).",
        "Add the certificate of {leaf_issuer} (the issuer of the keystore's leaf certificate) to the"
        " backend's"
        " truststore, or upload to {keystore} under {alias} a client certificate issued by one of the"
        " acceptable CAs: {acceptable}.{chain_hint}",
    ),
    defaults={"leaf_issuer": "an unknown CA", "chain_hint": ""},
    report=CauseReport(
        cause=Cause.CA_MISMATCH,
        title="Cause: Certificate Authority Mismatch",
        body=("The keystore holds a client certificate, but its leaf was not issued by any of the backend's"
              " acceptable CA names.\n"
              "JSSE only sends a certificate issued by one of the acceptable CAs, so the Message Processor"
              " sent"
              " an empty\n"
              "Certificate message and the backend refused the handshake."),
        wire="the Message Processor answered the CertificateRequest with an empty Certificate",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, True,
                           "the keystore holds a certificate: ruled out, went on to Certificate Authority"
                           " Mismatch"),
            SectionResult(SECTION_CA_MISMATCH, True,
                           "the issuer of the keystore's leaf certificate is not among the backend's"
                           " acceptable CA"
                           " names: this is the cause"),
        ),
    ),
)

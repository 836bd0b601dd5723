"""missing-client-certificate: the MP sent an empty Certificate and the keystore holds no key (playbook
cause 1)."""

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


def missing_client_certificate(facts: Facts) -> Finding | None:
    cases = client_auth_cases(facts, KeystoreVerdict.NO_KEY)
    return client_auth_finding(facts, cases) if cases else None


SPEC = CauseSpec(
    cause=Cause.MISSING_CLIENT_CERTIFICATE,
    rule=missing_client_certificate,
    cites=(Cited.CERTIFICATE_REQUEST, Cited.CLIENT_CERTIFICATE, Cited.ALERT),
    texts=Texts(
        "The message processor sent no client certificate to {backend}: {keystore} holds no private key and"
        " certificate{under_alias} (playbook cause: No Client Certificate).",
        "Upload the complete client certificate chain with its private key to {keystore} under {alias}"
        " (the KeyAlias of the target's SSLInfo; a keystore reference must point to this keystore), then"
        " reproduce the request again.",
    ),
    defaults={"under_alias": ""},
    report=CauseReport(
        cause=Cause.MISSING_CLIENT_CERTIFICATE,
        title="Cause: No Client Certificate",
        body=("The keystore named by the target's SSLInfo holds no client key and certificate (or none"
              " under the"
              " KeyAlias), so\n"
              "the Message Processor answered the backend's CertificateRequest with an empty Certificate"
              " message"
              " and the backend\n"
              "refused the handshake."),
        wire="the Message Processor answered the CertificateRequest with an empty Certificate",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, True,
                           "the keystore holds no key and certificate (under the KeyAlias): this is the"
                           " cause"),
            SectionResult(SECTION_CA_MISMATCH, False,
                           "not reached: there is no certificate whose issuer could be compared"),
        ),
    ),
)

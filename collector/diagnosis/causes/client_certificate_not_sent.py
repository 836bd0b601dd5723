"""client-certificate-not-sent: an empty client Certificate was seen, but the keystore cannot say which
playbook cause it is; says what to collect."""

from __future__ import annotations

from dataclasses import replace

from collector.diagnosis.backends import Facts
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.findings import client_auth_finding
from collector.diagnosis.keymanager import KeystoreVerdict
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)

ACCEPTABLE = "acceptable"  # the keystore holds an entry JSSE should have offered
ANY_CA = "any-ca"  # the backend named no CA: any key entry would have been sent


def client_certificate_not_sent(facts: Facts) -> Finding | None:
    cases = [c for c in facts.cases if c.observed_empty]
    if not cases:
        return None
    finding = client_auth_finding(facts, cases)
    case = cases[0]
    if case.check.verdict == KeystoreVerdict.ACCEPTABLE:
        return replace(finding, variant=ACCEPTABLE)
    if case.request is not None and not case.request.ca_names:
        return replace(finding, variant=ANY_CA)
    return finding


SPEC = CauseSpec(
    cause=Cause.CLIENT_CERTIFICATE_NOT_SENT,
    rule=client_certificate_not_sent,
    cites=(Cited.CERTIFICATE_REQUEST, Cited.CLIENT_CERTIFICATE, Cited.ALERT),
    texts=Texts(
        "The message processor answered the certificate request of {backend} with an empty Certificate"
        " ({reaction}); without the keystore documents the two playbook causes (No Client Certificate,"
        " Certificate Authority Mismatch) cannot be told apart.",
        "Collect the keystore the target's SSLInfo names (the playbook's \"get cert for keystore\" output:"
        " the"
        " keystore, alias and cert documents) and run collect analyze again with them. An empty keystore"
        " means"
        " No Client Certificate; a leaf issuer outside the acceptable CA names ({acceptable}) means"
        " Certificate"
        " Authority Mismatch.",
    ),
    variants={
        ACCEPTABLE: Texts(
            "The message processor answered the certificate request of {backend} with an empty Certificate"
            " ({reaction}), although {keystore} holds a key entry issued by an acceptable CA.",
            "Check that the target's KeyAlias names {alias} of {keystore} (and that its keystore reference"
            " points"
            " to this keystore), that the key's type suits the backend's signature algorithms, and that the"
            " keystore deployed on the message processors is the one collected;"
            " -Djavax.net.debug=ssl:handshake"
            " on the message processor shows which alias JSSE ignored and why.",
        ),
        ANY_CA: Texts(
            "The message processor answered the certificate request of {backend} with an empty Certificate"
            " ({reaction}); the backend named no acceptable CA, so JSSE would have sent any key entry: the"
            " keystore most likely holds no key and certificate (playbook cause: No Client Certificate).",
            "Check that {keystore} holds a key and certificate under {alias}: collect its keystore, alias"
            " and cert"
            " documents (the playbook's \"get cert for keystore\" output) and run collect analyze again"
            " with them.",
        ),
    },
    report=CauseReport(
        cause=Cause.CLIENT_CERTIFICATE_NOT_SENT,
        title="The Message Processor sent no client certificate",
        body=("The backend asked for a client certificate and the Message Processor sent an empty Certificate"
              " message. This is\n"
              "one of the playbook's two causes (No Client Certificate, or Certificate Authority Mismatch);"
              " the"
              " keystore could\n"
              "not be read, so the tool cannot tell which. Add the keystore's \"Get cert for keystore\""
              " output and"
              " run\n"
              "`collect analyze` again."),
        wire="the Message Processor answered the CertificateRequest with an empty Certificate",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False,
                          "undecided: the keystore documents could not be read"),
            SectionResult(SECTION_CA_MISMATCH, False,
                           "undecided: needs the keystore's leaf certificate (Get cert for keystore)"),
        ),
    ),
)

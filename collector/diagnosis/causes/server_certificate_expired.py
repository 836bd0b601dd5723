"""server-certificate-expired: the MP refused the backend's chain because a certificate of it was outside its
validity (JSSE: ``validity check failed``, alert certificate_expired or certificate_unknown)."""

from __future__ import annotations

from collector.diagnosis.backends import Facts
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.chain_findings import expired_in_truststore, rejection_finding
from collector.diagnosis.server_chain import EXPIRED, chain_rejection
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)

IN_TRUSTSTORE = "truststore"  # the out-of-date certificate is the MP truststore's own
CLOCK = "clock"  # the MP said expired, the chain's dates cover the capture time
FROM_LOG = "log"  # only the MP log tells

_NOT_APPLICABLE = ("not applicable: the Message Processor refused the backend's certificate before client"
                   " authentication (TLS/SSL Handshake Failures playbook: Incorrect or expired certificate)")


def server_certificate_expired(facts: Facts) -> Finding | None:
    rejection = chain_rejection(facts)
    if rejection is None or rejection.cause != EXPIRED:
        return None
    verdict = rejection.verdict
    if verdict is None:
        variant = FROM_LOG
    elif expired_in_truststore(rejection, facts.evidence):
        variant = IN_TRUSTSTORE
    elif not verdict.out_of_validity:
        variant = CLOCK if rejection.signs == () else FROM_LOG
    else:
        variant = ""
    return rejection_finding(facts, rejection, variant)


SPEC = CauseSpec(
    cause=Cause.SERVER_CERTIFICATE_EXPIRED,
    rule=server_certificate_expired,
    cites=(Cited.CLIENT_HELLO, Cited.SERVER_CERTIFICATE, Cited.ALERT),
    texts=Texts(
        "The message processor refused the certificate of {backend}: {expired_subject} is valid"
        " {not_before} to {not_after}, outside its validity at the capture time ({checked_at}).",
        "Renew the backend's certificate {expired_subject} (not after {not_after}) and install it on the"
        " backend with its chain; nothing changes on the Edge side when the new certificate comes from the"
        " same CA.",
    ),
    variants={
        IN_TRUSTSTORE: Texts(
            "The message processor refused the certificate chain of {backend}: {expired_subject}, a"
            " certificate of {truststore}, is valid {not_before} to {not_after} and out of date at the"
            " capture time ({checked_at}).",
            "Replace the expired certificate {expired_subject} in {truststore} (the TrustStore of the"
            " TargetEndpoint's or TargetServer's SSLInfo, through its ref:// reference) with its renewed"
            " one, and make sure the backend's chain is issued under the renewed CA.",
        ),
        CLOCK: Texts(
            "The message processor refused the certificate of {backend} as expired ({reaction}), but every"
            " certificate of the chain is within its validity at the capture time.",
            "Check the clock of the message processor hosts (NTP): JSSE judges the dates with the MP's own"
            " time; if the clock is right, renew the backend certificate that the MP log names.",
        ),
        FROM_LOG: Texts(
            "The message processor's log says the certificate of {backend} is outside its validity: {quote}",
            "Renew the backend's certificate (or the expired CA certificate in the TrustStore of the target's"
            " SSLInfo); the capture's key log (or `collect probe`) shows the chain and its dates.",
        ),
    },
    defaults={"expired_subject": "a certificate of the chain", "not_before": "?", "not_after": "?",
              "checked_at": "unknown", "truststore": "the TrustStore of the target's SSLInfo",
              "quote": "validity check failed"},
    report=CauseReport(
        cause=Cause.SERVER_CERTIFICATE_EXPIRED,
        title="The backend certificate is expired (or not yet valid)",
        body=("The Message Processor refused the backend's certificate chain because a certificate in it"
              " is outside its\n"
              "validity (JSSE: \"validity check failed\"). Renew the backend's certificate, or the expired"
              " CA certificate\n"
              "in the TrustStore of the target's SSLInfo."),
        wire="the Message Processor sent a fatal alert right after the backend's Certificate",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False, _NOT_APPLICABLE),
            SectionResult(SECTION_CA_MISMATCH, False, _NOT_APPLICABLE),
        ),
        must_gather=("capture", "mp-log", "trace"),
    ),
)

"""server-hostname-mismatch: the MP refused the backend's chain because the name it connects to (its SNI, or
the target's host) is in neither the certificate's SAN nor its CN (JSSE: ``No subject alternative DNS name
matching … found``)."""

from __future__ import annotations

from collector.diagnosis.backends import Facts
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.chain_findings import rejection_finding
from collector.diagnosis.server_chain import MISMATCH, chain_rejection
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)
from collector.tls.trust import ChainStatus

FROM_LOG = "log"  # only the MP log tells (or the name the MP checked is unknown)

_NOT_APPLICABLE = ("not applicable: the Message Processor refused the backend's certificate before client"
                   " authentication (TLS/SSL Handshake Failures playbook: Incorrect Certificate (host name))")


def server_hostname_mismatch(facts: Facts) -> Finding | None:
    rejection = chain_rejection(facts)
    if rejection is None or rejection.cause != MISMATCH:
        return None
    verdict = rejection.verdict
    named = verdict is not None and verdict.status is ChainStatus.NAME_MISMATCH
    return rejection_finding(facts, rejection, "" if named else FROM_LOG)


_FIX = (" or point the target at a name the certificate holds: the host of the TargetEndpoint's"
        " HTTPTargetConnection URL, or the TargetServer's Host. When the SSLInfo sets CommonName, it must"
        " match the certificate too.")

SPEC = CauseSpec(
    cause=Cause.SERVER_HOSTNAME_MISMATCH,
    rule=server_hostname_mismatch,
    cites=(Cited.CLIENT_HELLO, Cited.SERVER_CERTIFICATE, Cited.ALERT),
    texts=Texts(
        "The message processor refused the certificate of {backend}: it connects to {name} ({name_source}),"
        " but the certificate names only {leaf_names}.",
        "Reissue the backend's certificate with {name} in its subjectAltName (it holds {leaf_names}),"
        + _FIX,
    ),
    variants={
        FROM_LOG: Texts(
            "The message processor's log says the certificate of {backend} does not hold the name it"
            " connects to: {quote}",
            "Reissue the backend's certificate with the target's host name in its subjectAltName," + _FIX,
        ),
    },
    defaults={"name": "the target's host", "name_source": "SNI or target host",
              "leaf_names": "other names", "quote": "No subject alternative DNS name matching"},
    report=CauseReport(
        cause=Cause.SERVER_HOSTNAME_MISMATCH,
        title="The backend certificate does not hold the host name",
        body=("The Message Processor refused the backend's certificate: the host it connects to (its SNI,"
              " or the target's\n"
              "host) is in neither the certificate's subjectAltName nor its CN. Reissue the certificate"
              " with that name, or\n"
              "change the target URL / TargetServer host (and the SSLInfo `CommonName`) to a name it"
              " holds."),
        wire="the Message Processor sent a fatal alert right after the backend's Certificate",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False, _NOT_APPLICABLE),
            SectionResult(SECTION_CA_MISMATCH, False, _NOT_APPLICABLE),
        ),
        must_gather=("capture", "mp-log", "trace"),
    ),
)

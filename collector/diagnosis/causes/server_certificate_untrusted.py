"""server-certificate-untrusted: the MP refused the backend's chain because it does not lead to a CA of the
MP's truststore (JSSE: ``PKIX path building failed``; Apigee: 503
``messaging.adaptors.http.flow.SslHandshakeFailed``)."""

from __future__ import annotations

from collector.diagnosis.backends import Facts
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.chain_findings import rejection_finding, top_is_self_issued
from collector.diagnosis.server_chain import UNTRUSTED, Basis, chain_rejection
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)

INCOMPLETE = "incomplete"  # the backend's chain stops below a root: the intermediate may be what is missing
UNCONFIRMED = "unconfirmed"  # no truststore known: refused, and neither the dates nor the name explain it
FROM_LOG = "log"  # only the MP log tells (TLS 1.3 without a key log, or no capture)

_NOT_APPLICABLE = ("not applicable: the Message Processor refused the backend's certificate before client"
                   " authentication (TLS/SSL Handshake Failures playbook: Incomplete or invalid certificate"
                   " chain)")


def server_certificate_untrusted(facts: Facts) -> Finding | None:
    rejection = chain_rejection(facts)
    if rejection is None or rejection.cause != UNTRUSTED:
        return None
    if rejection.verdict is None:
        variant = FROM_LOG
    elif rejection.basis in (Basis.TRUSTSTORE, Basis.TRUSTSTORE_NAMES):
        variant = "" if top_is_self_issued(rejection.handshake) else INCOMPLETE
    else:
        variant = UNCONFIRMED
    return rejection_finding(facts, rejection, variant)


_FIX_TAIL = (" The TrustStore is the one the TargetEndpoint's (or the TargetServer's) SSLInfo names, through"
             " its ref:// reference when it uses one.")

SPEC = CauseSpec(
    cause=Cause.SERVER_CERTIFICATE_UNTRUSTED,
    rule=server_certificate_untrusted,
    cites=(Cited.CLIENT_HELLO, Cited.SERVER_CERTIFICATE, Cited.ALERT),
    texts=Texts(
        "The message processor does not trust the certificate chain of {backend}: it does not lead to a CA"
        " of {truststore} (missing issuer {missing_issuer}).",
        "Import the certificate of {missing_issuer} (the CA that issued the backend's chain) into"
        " {truststore}." + _FIX_TAIL,
    ),
    variants={
        INCOMPLETE: Texts(
            "The message processor does not trust the certificate chain of {backend}: the chain stops at a"
            " certificate issued by {missing_issuer}, which {truststore} does not hold.",
            "Make the backend send its complete chain (its certificate and the intermediate CA"
            " {missing_issuer}), or import {missing_issuer} and the root above it into {truststore}."
            + _FIX_TAIL,
        ),
        UNCONFIRMED: Texts(
            "The message processor refused the certificate chain of {backend} ({reaction}); the chain's dates"
            " and name are fine, so it does not trust the chain's CA ({top_issuer}).",
            "Import the CA that issued the backend's chain ({top_issuer}) into the TrustStore of the"
            " target's SSLInfo, or make the backend send the complete chain; give `collect analyze"
            " --truststore FILE` the TrustStore's certificates to confirm which CA is missing." + _FIX_TAIL,
        ),
        FROM_LOG: Texts(
            "The message processor's log says it does not trust the certificate chain of {backend}: {quote}",
            "Import the CA that issued the backend's chain into the TrustStore of the target's SSLInfo, or"
            " make the backend send the complete chain; the capture's key log (or `collect probe`) shows the"
            " chain and names the CA." + _FIX_TAIL,
        ),
    },
    defaults={"truststore": "the TrustStore of the target's SSLInfo", "missing_issuer": "the backend's CA",
              "top_issuer": "see the backend chain", "quote": "PKIX path building failed"},
    report=CauseReport(
        cause=Cause.SERVER_CERTIFICATE_UNTRUSTED,
        title="The Message Processor does not trust the backend certificate",
        body=("The Message Processor refused the backend's certificate chain: it does not lead to a CA in"
              " the TrustStore of the\n"
              "target's SSLInfo (JSSE: \"PKIX path building failed\"; the API client sees 503"
              " `messaging.adaptors.http.flow.SslHandshakeFailed`).\n"
              "Import the missing CA into that TrustStore, or make the backend send its complete chain."),
        wire="the Message Processor sent a fatal alert right after the backend's Certificate",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False, _NOT_APPLICABLE),
            SectionResult(SECTION_CA_MISMATCH, False, _NOT_APPLICABLE),
        ),
        must_gather=("capture", "mp-log", "trace"),
    ),
)

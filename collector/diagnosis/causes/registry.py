"""The one ordered list of causes: their rules are tried in this order and the first finding wins.

Client-auth causes come first (a failure beats a success: DESIGN's close calls), then the other failures, then
"nothing wrong", then "nothing to judge", which always answers. A new cause is one spec module and one line
here.
"""

from __future__ import annotations

from collector.diagnosis.causes import (
    backend_not_tls,
    ca_mismatch,
    cipher_mismatch,
    client_certificate_not_sent,
    client_certificate_rejected,
    connection_refused,
    encrypted_handshake,
    handshake_failed_before_client_auth,
    handshake_ok,
    missing_client_certificate,
    no_tls_handshake,
    protocol_mismatch,
    server_certificate_expired,
    server_certificate_untrusted,
    server_hostname_mismatch,
    sni_required,
)
from collector.diagnosis.causes.spec import CauseSpec
from collector.diagnosis.verdict import Cause, CauseReport

REGISTRY: tuple[CauseSpec, ...] = (
    missing_client_certificate.SPEC,
    ca_mismatch.SPEC,
    client_certificate_not_sent.SPEC,
    client_certificate_rejected.SPEC,
    server_certificate_untrusted.SPEC,
    server_certificate_expired.SPEC,
    server_hostname_mismatch.SPEC,
    protocol_mismatch.SPEC,
    cipher_mismatch.SPEC,
    sni_required.SPEC,
    backend_not_tls.SPEC,
    connection_refused.SPEC,
    handshake_failed_before_client_auth.SPEC,
    encrypted_handshake.SPEC,
    handshake_ok.SPEC,
    no_tls_handshake.SPEC,
)

_BY_CAUSE = {spec.cause: spec for spec in REGISTRY}


def spec_for(cause: Cause) -> CauseSpec:
    """The spec of a cause; KeyError for a cause with no spec in `REGISTRY`."""
    return _BY_CAUSE[cause]


def report_for(cause: Cause) -> CauseReport:
    """What SUMMARY.md and report.html print for a cause."""
    return spec_for(cause).report

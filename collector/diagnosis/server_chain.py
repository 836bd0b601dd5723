"""The MP refused the backend's certificate chain: which of the three server-certificate causes, and why.

Shared by `causes/server_certificate_untrusted.py`, `server_certificate_expired.py` and
`server_hostname_mismatch.py`: one judgement, three causes. On the wire the MP (the client) sends a fatal
alert after the backend's Certificate and before any Certificate or Finished of its own. Which alert depends
on the client's stack (JSSE 46 or 45, OpenSSL 48/45/42, Go 42...), so the alert only says *that* the chain was
refused; *why* comes from the chain itself (`tls.trust.judge_chain`, JSSE's order), the MP truststore when it
is known, and the MP's own words in its log.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from cryptography import x509

from collector.diagnosis.backends import Facts, first_fatal, is_encrypted
from collector.diagnosis.evidence import Evidence, TrustedCertificate
from collector.diagnosis.jsse_messages import JsseSign
from collector.diagnosis.probed import capture_undecided, probe_chain_verdict
from collector.diagnosis.truststores import anchors_of
from collector.tls.handshake import Handshake, Outcome, ProbeResult
from collector.tls.names import name_from_string, name_to_rfc4514, names_match
from collector.tls.trust import ChainStatus, ChainVerdict, judge_chain, top_of_chain

UNTRUSTED = "server-certificate-untrusted"
EXPIRED = "server-certificate-expired"
MISMATCH = "server-hostname-mismatch"
TRIO = (UNTRUSTED, EXPIRED, MISMATCH)

# Alerts a TLS client sends when it refuses the peer's certificate (RFC 5246 7.2.2, RFC 8446 6.2).
_CERTIFICATE_ALERTS = frozenset({42, 43, 45, 46, 48})
# Alerts that narrow the reason on their own when nothing else does.
_ALERT_CAUSE = {45: EXPIRED, 48: UNTRUSTED}
_STATUS_CAUSE = {
    ChainStatus.UNTRUSTED: UNTRUSTED,
    ChainStatus.EXPIRED: EXPIRED,
    ChainStatus.NOT_YET_VALID: EXPIRED,
    ChainStatus.NAME_MISMATCH: MISMATCH,
}
_MAX_CHAIN = 10


class Basis(str, enum.Enum):
    """What decided among the three causes; written to JSON as the chain object's ``basis``."""

    TRUSTSTORE = "truststore"  # the chain verified against the MP truststore's certificates
    TRUSTSTORE_NAMES = "truststore-names"  # judged by issuer name (an Edge cert document holds no key)
    CHAIN = "chain"  # the chain alone: a date or the name, no truststore known
    MP_LOG = "mp-log"  # the MP's own words in its log or the trace
    ALERT = "alert"  # the alert the MP sent (certificate_expired, unknown_ca)
    NO_TRUSTSTORE = "no-truststore"  # the chain refused, nothing narrower: not trusted by the MP


@dataclass(frozen=True)
class ChainRejection:
    """One refused backend chain and the cause it comes to.

    Attributes:
        handshake: the handshake, ``None`` when only the MP log tells (no capture of it).
        cause: one of `TRIO`.
        basis: what decided it.
        verdict: the chain's verdict, ``None`` when the chain could not be read (encrypted, no capture).
        name_source: where the checked name came from: ``SNI``, ``target host`` or "" (no name checked).
        signs: the MP log lines that fit `cause`; `other_signs`: those naming another of the three.
        probe: the probe whose chain the verdict judged, when no capture shows the chain (``None``: a capture
            or nothing did).
    """

    handshake: Handshake | None
    cause: str
    basis: Basis
    verdict: ChainVerdict | None
    name_source: str = ""
    signs: tuple[JsseSign, ...] = ()
    other_signs: tuple[JsseSign, ...] = ()
    probe: ProbeResult | None = None

    def to_json(self, evidence: Evidence) -> dict[str, object]:
        """The diagnosis JSON's ``chain`` object: the verdict, what decided it and the truststore used."""
        verdict = self.verdict.to_json() if self.verdict else {"status": None}
        return {**verdict, "basis": self.basis.value, "name_source": self.name_source or None,
                "probed": self.probe is not None,
                "truststore": evidence.truststore_name,
                "truststore_certificates": [c.to_json() for c in evidence.truststore]}


def chain_rejection(facts: Facts) -> ChainRejection | None:
    """The first handshake whose backend chain the MP refused, judged; else what the MP log alone says when
    the capture cannot show the chain (TLS 1.3 without a key log, or no handshake captured)."""
    evidence = facts.evidence
    for handshake in evidence.handshakes:
        if refused_chain(handshake):
            rejection = _judge(handshake, evidence)
            if rejection is not None:
                return rejection
    return _from_log_only(evidence) or _from_probe(evidence)


def refused_chain(handshake: Handshake) -> bool:
    """The MP ended the handshake after the backend's Certificate, before sending any certificate of its own:
    a fatal alert from the client, or a failed handshake closed without one."""
    if not handshake.server_chain_der or handshake.client_certificate is not None:
        return False
    alert = first_fatal(handshake)
    if alert is not None:
        return alert.sender == "client"
    return handshake.outcome == Outcome.FAILED


def chain_verdict(handshake: Handshake, evidence: Evidence) -> ChainVerdict | None:
    """The verdict on a handshake's backend chain as `chain_rejection` judges it (against the MP truststore
    when the evidence holds it, by issuer name when that holds names only; the name checked is the SNI, else
    the target host), whether or not the MP refused it; ``None`` when no chain was read."""
    try:
        chain = [x509.load_der_x509_certificate(der) for der in handshake.server_chain_der[:_MAX_CHAIN]]
    except ValueError:
        return None
    if not chain:
        return None
    at = handshake.captured_at or datetime.now(timezone.utc)
    name, _ = _checked_name(handshake, evidence)
    if evidence.truststore:
        return _against_truststore(chain, evidence.truststore, at, name)[0]
    return judge_chain(chain, None, at, name)


def trio_signs(evidence: Evidence) -> tuple[JsseSign, ...]:
    return tuple(s for s in evidence.jsse_signs if s.causes and s.causes[0] in TRIO)


def _judge(handshake: Handshake, evidence: Evidence) -> ChainRejection | None:
    try:
        chain = [x509.load_der_x509_certificate(der) for der in handshake.server_chain_der[:_MAX_CHAIN]]
    except ValueError:
        return None  # a chain cryptography cannot read is not judged here; the fallback cause reports it
    at = handshake.captured_at or datetime.now(timezone.utc)
    name, name_source = _checked_name(handshake, evidence)
    signs = trio_signs(evidence)
    sign_cause = signs[0].causes[0] if signs else None
    alert = first_fatal(handshake)
    certificate_alert = alert is not None and alert.code in _CERTIFICATE_ALERTS
    if evidence.truststore:
        verdict, basis = _against_truststore(chain, evidence.truststore, at, name)
        cause = _STATUS_CAUSE.get(verdict.status)
        if cause is None and sign_cause is not None:
            cause, basis = sign_cause, Basis.MP_LOG
        elif cause is None and alert is not None and alert.code in _ALERT_CAUSE:
            cause, basis = _ALERT_CAUSE[alert.code], Basis.ALERT
    else:
        verdict = judge_chain(chain, None, at, name)
        # JSSE checks the path before the dates and the name: its words beat what the chain alone suggests.
        cause, basis = (sign_cause, Basis.MP_LOG) if sign_cause else (_STATUS_CAUSE.get(verdict.status),
                                                                     Basis.CHAIN)
        if cause is None and alert is not None and alert.code in _ALERT_CAUSE:
            cause, basis = _ALERT_CAUSE[alert.code], Basis.ALERT
        elif cause is None and certificate_alert:
            cause, basis = UNTRUSTED, Basis.NO_TRUSTSTORE
    if cause is None:
        return None
    return ChainRejection(handshake, cause, basis, verdict, name_source if name else "",
                          tuple(s for s in signs if cause in s.causes),
                          tuple(s for s in signs if cause not in s.causes))


def _from_log_only(evidence: Evidence) -> ChainRejection | None:
    """The MP log names one of the three and the capture cannot contradict it: every handshake is encrypted
    (TLS 1.3 without a key log) and at least one did not complete, or nothing was captured at all."""
    signs = trio_signs(evidence)
    if not signs:
        return None
    handshakes = evidence.handshakes
    if handshakes and not (all(is_encrypted(h) for h in handshakes)
                           and any(h.outcome != Outcome.ESTABLISHED for h in handshakes)):
        return None
    cause = signs[0].causes[0]
    failed = next((h for h in handshakes if h.outcome != Outcome.ESTABLISHED), None)
    # A probe's chain that the same reason fails shows what the log only names (the CA, the dates, the name).
    probed = next(((p, v) for p in evidence.probes
                   for v in [probe_chain_verdict(p, evidence, check_name=cause == MISMATCH)]
                   if v is not None and _STATUS_CAUSE.get(v.status) == cause), None)
    basis = Basis.TRUSTSTORE if probed and cause == UNTRUSTED else Basis.MP_LOG
    return ChainRejection(failed, cause, basis, probed[1] if probed else None,
                          "probed SNI" if probed and cause == MISMATCH else "",
                          tuple(s for s in signs if cause in s.causes),
                          tuple(s for s in signs if cause not in s.causes),
                          probed[0] if probed else None)


def _from_probe(evidence: Evidence) -> ChainRejection | None:
    """No capture and no MP log tells, and a probe's chain fails the MP truststore or its dates: JSSE would
    refuse it whatever SSLInfo says (the name is not judged here: Edge checks it only with <CommonName>)."""
    if not capture_undecided(evidence):
        return None
    for probe in evidence.probes:
        verdict = probe_chain_verdict(probe, evidence, check_name=False)
        cause = _STATUS_CAUSE.get(verdict.status) if verdict is not None else None
        if verdict is None or cause is None:
            continue
        names_only = evidence.truststore and not anchors_of(evidence.truststore)
        basis = Basis.TRUSTSTORE_NAMES if names_only else (Basis.TRUSTSTORE if evidence.truststore
                                                           else Basis.CHAIN)
        failed = next((h for h in evidence.handshakes if h.outcome != Outcome.ESTABLISHED), None)
        return ChainRejection(failed, cause, basis, verdict, "", probe=probe)
    return None


def _checked_name(handshake: Handshake, evidence: Evidence) -> tuple[str | None, str]:
    """The name the MP checks the leaf against: its SNI, else the target's host when there is one."""
    if handshake.sni:
        return handshake.sni, "SNI"
    if len(evidence.target_hosts) == 1:
        return evidence.target_hosts[0], "target host"
    return None, ""


def _against_truststore(chain: list[x509.Certificate], truststore: Sequence[TrustedCertificate], at: datetime,
                        name: str | None) -> tuple[ChainVerdict, Basis]:
    anchors = anchors_of(truststore)
    if anchors:
        return judge_chain(chain, anchors, at, name), Basis.TRUSTSTORE
    # Names only (Edge cert documents): the chain is trusted when one of its certificates is, or is issued by,
    # a truststore certificate; dates and the name are judged as without a truststore.
    verdict = judge_chain(chain, None, at, name)
    subjects = [n for n in (_parsed(c.subject) for c in truststore) if n is not None]
    trusted = any(names_match(cert.issuer, s) or names_match(cert.subject, s)
                  for cert in chain for s in subjects)
    if not trusted:
        return replace(verdict, status=ChainStatus.UNTRUSTED, out_of_validity=(),
                       missing_issuer=name_to_rfc4514(top_of_chain(chain).issuer)), Basis.TRUSTSTORE_NAMES
    status = ChainStatus.TRUSTED if verdict.status is ChainStatus.UNKNOWN_TRUST else verdict.status
    return replace(verdict, status=status), Basis.TRUSTSTORE_NAMES


def _parsed(text: str) -> x509.Name | None:
    try:
        return name_from_string(text)
    except ValueError:
        return None  # a name Edge printed that we cannot parse matches nothing

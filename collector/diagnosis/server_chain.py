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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from cryptography import x509

from collector.diagnosis.backends import (
    Facts,
    backend_label,
    first_fatal,
    frame_prefix,
    is_encrypted,
    server_reaction,
)
from collector.diagnosis.causes.spec import Finding
from collector.diagnosis.evidence import Evidence, TrustedCertificate
from collector.diagnosis.findings import count_lines, reaction_line
from collector.diagnosis.jsse_messages import JsseSign
from collector.diagnosis.truststores import anchors_of
from collector.tls.handshake import Handshake, Outcome
from collector.tls.names import name_from_string, name_to_rfc4514, names_match
from collector.tls.trust import ChainStatus, ChainVerdict, judge_chain

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
    """

    handshake: Handshake | None
    cause: str
    basis: Basis
    verdict: ChainVerdict | None
    name_source: str = ""
    signs: tuple[JsseSign, ...] = ()
    other_signs: tuple[JsseSign, ...] = ()

    def to_json(self, evidence: Evidence) -> dict[str, object]:
        """The diagnosis JSON's ``chain`` object: the verdict, what decided it and the truststore used."""
        verdict = self.verdict.to_json() if self.verdict else {"status": None}
        return {**verdict, "basis": self.basis.value, "name_source": self.name_source or None,
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
    return _from_log_only(evidence)


def refused_chain(handshake: Handshake) -> bool:
    """The MP ended the handshake after the backend's Certificate, before sending any certificate of its own:
    a fatal alert from the client, or a failed handshake closed without one."""
    if not handshake.server_chain_der or handshake.client_certificate is not None:
        return False
    alert = first_fatal(handshake)
    if alert is not None:
        return alert.sender == "client"
    return handshake.outcome == Outcome.FAILED


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
    return ChainRejection(failed, cause, Basis.MP_LOG, None, "",
                          tuple(s for s in signs if cause in s.causes),
                          tuple(s for s in signs if cause not in s.causes))


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
                       missing_issuer=name_to_rfc4514(_top(chain).issuer)), Basis.TRUSTSTORE_NAMES
    status = ChainStatus.TRUSTED if verdict.status is ChainStatus.UNKNOWN_TRUST else verdict.status
    return replace(verdict, status=status), Basis.TRUSTSTORE_NAMES


def _parsed(text: str) -> x509.Name | None:
    try:
        return name_from_string(text)
    except ValueError:
        return None  # a name Edge printed that we cannot parse matches nothing


def _top(chain: list[x509.Certificate]) -> x509.Certificate:
    """The last certificate reachable by issuer name from the leaf inside the presented chain."""
    current = chain[0]
    for _ in range(len(chain)):
        parent = next((c for c in chain if c.subject == current.issuer and c != current), None)
        if parent is None:
            break
        current = parent
    return current


# -- what a finding of the three says ----------------------------------------------------------------------


def rejection_lines(facts: Facts, rejection: ChainRejection) -> list[str]:
    """Evidence lines: the handshake (frames), the chain, the MP's alert, the verdict, the MP log's words."""
    handshake, lines = rejection.handshake, []
    if handshake is None:
        lines.append("no capture shows this handshake: the cause is named from the message processor's log")
    elif is_encrypted(handshake):
        lines.append(frame_prefix(handshake.frames[0] if handshake.frames else None, handshake, True)
                     + f"TLS 1.3 handshake {handshake.client} → {handshake.server} is encrypted (no key log):"
                     " the backend chain and the message processor's alert cannot be read; the cause is named"
                     " from the message processor's log, and the capture's key log would confirm it")
    else:
        lines.append(frame_prefix(handshake.frames[0] if handshake.frames else None, handshake, True)
                     + f"ClientHello from {handshake.client} to {handshake.server}"
                     + (f" (SNI {handshake.sni})" if handshake.sni else " (no SNI)"))
        lines.append(_chain_line(handshake))
        lines.append(reaction_line(handshake) + ", before the message processor sent any certificate or"
                     " Finished of its own: it refused the backend's chain")
    lines.extend(_verdict_lines(rejection, facts.evidence))
    lines.extend(f"MP log ({s.source or 'message processor'}): {s.line}" for s in rejection.signs)
    lines.extend(f"MP log names another certificate problem ({s.source or 'message processor'}): {s.line}"
                 for s in rejection.other_signs)
    if handshake is not None:
        label = backend_label(handshake)
        same = len([h for h in facts.evidence.handshakes if backend_label(h) == label and refused_chain(h)])
        lines.extend(count_lines(facts, label, same or 1))
    return lines


def rejection_values(rejection: ChainRejection, evidence: Evidence) -> dict[str, str]:
    """The texts' placeholders this rejection knows ("" prints the cause's default wording)."""
    handshake, verdict = rejection.handshake, rejection.verdict
    values = {"backend": backend_label(handshake) if handshake else "",
              "reaction": server_reaction(handshake) if handshake and first_fatal(handshake) else "",
              "truststore": f"truststore {evidence.truststore_name}" if evidence.truststore_name else "",
              "quote": rejection.signs[0].line if rejection.signs else "",
              "top_issuer": handshake.server_chain[-1].issuer if handshake and handshake.server_chain else ""}
    if verdict is None:
        return values
    expired = verdict.out_of_validity[0] if verdict.out_of_validity else None
    values.update({
        "leaf_subject": verdict.leaf_subject, "leaf_issuer": verdict.leaf_issuer,
        "missing_issuer": verdict.missing_issuer or "",
        "expired_subject": expired.subject if expired else "",
        "not_before": _day(expired.not_before) if expired else "",
        "not_after": _day(expired.not_after) if expired else "",
        "checked_at": _day(verdict.checked_at) if verdict.checked_at else "",
        "name": verdict.name or "", "name_source": rejection.name_source,
        "leaf_names": ", ".join(verdict.leaf_names),
    })
    return values


def expired_in_truststore(rejection: ChainRejection, evidence: Evidence) -> bool:
    """True when a certificate out of its validity is one of the MP truststore's own (by subject)."""
    if rejection.verdict is None:
        return False
    held = {c.subject for c in evidence.truststore}
    return any(o.subject in held for o in rejection.verdict.out_of_validity)


def _chain_line(handshake: Handshake) -> str:
    leaf, rest = handshake.server_chain[0], handshake.server_chain[1:]
    dates = f", valid {leaf.not_before} to {leaf.not_after}" if leaf.not_after else ""
    more = f"; then {len(rest)} more: " + "; ".join(c.subject for c in rest) if rest else " (no intermediate)"
    return f"backend Certificate: {leaf.subject}, issued by {leaf.issuer}{dates}{more}"


def _verdict_lines(rejection: ChainRejection, evidence: Evidence) -> list[str]:
    verdict = rejection.verdict
    if verdict is None:
        return []
    lines = []
    store = f"truststore {evidence.truststore_name}" if evidence.truststore_name else "the truststore given"
    if rejection.basis in (Basis.TRUSTSTORE, Basis.TRUSTSTORE_NAMES):
        held = "; ".join(f"{c.subject} ({c.source})" for c in evidence.truststore)
        lines.append(f"{store} holds {len(evidence.truststore)} certificate(s): {held}")
    if verdict.status is ChainStatus.UNTRUSTED:
        how = (" (judged by issuer name: an Edge cert document holds no key, so signatures were not checked)"
               if rejection.basis is Basis.TRUSTSTORE_NAMES else "")
        lines.append(f"the backend chain does not lead to a certificate of {store}: missing issuer"
                     f" {verdict.missing_issuer}{how}")
    for cert in verdict.out_of_validity:
        state = "expired" if cert.not_after < (verdict.checked_at or cert.not_after) else "not yet valid"
        lines.append(f"{cert.subject} is valid {_day(cert.not_before)} to {_day(cert.not_after)}: {state} at"
                     f" the capture time {_day(verdict.checked_at) if verdict.checked_at else 'unknown'}")
    if verdict.status is ChainStatus.NAME_MISMATCH:
        lines.append(f"the message processor checks the name {verdict.name} ({rejection.name_source}); the"
                     f" backend certificate names {', '.join(verdict.leaf_names) or 'nothing'}: no match")
    elif verdict.name is None and rejection.cause == MISMATCH:
        lines.append("the name the message processor checked is unknown (no SNI, no target host)")
    if verdict.note:
        lines.append(f"note: {verdict.note}")
    if not evidence.truststore:
        lines.append(_no_truststore_line(rejection))
    if rejection.basis is Basis.ALERT and not verdict.out_of_validity and rejection.cause == EXPIRED:
        lines.append("every chain certificate is within its validity at the capture time: the message"
                     " processor's clock may be off")
    return lines


def _no_truststore_line(rejection: ChainRejection) -> str:
    verdict = rejection.verdict
    if rejection.basis is Basis.NO_TRUSTSTORE and verdict is not None:
        name = (f" and it holds the name {verdict.name} ({rejection.name_source})" if verdict.name
                else " (its name was not checked: no SNI and no target host known)")
        return (f"no truststore given: the chain is within its validity{name}, so the message processor does"
                " not trust it; the target's TrustStore certificates (`collect analyze --truststore FILE`, or"
                " a bundle) would confirm it and name the missing CA")
    return ("no truststore given: the chain's trust was not judged (JSSE checks it before the dates and the"
            " name); the target's TrustStore certificates (`collect analyze --truststore FILE`) would show"
            " whether it is trusted")


def _day(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rejection_finding(facts: Facts, rejection: ChainRejection, variant: str = "",
                      extra: Mapping[str, str] | None = None) -> Finding:
    """The finding of one of the three causes: its lines, its values and the chain object for JSON."""
    handshake = rejection.handshake
    values = {**rejection_values(rejection, facts.evidence), **(extra or {})}
    return Finding(backend_label(handshake) if handshake else None, tuple(rejection_lines(facts, rejection)),
                   values, variant, rejection.to_json(facts.evidence))


def top_is_self_issued(handshake: Handshake | None) -> bool:
    """True when the presented chain ends in a self-issued (root) certificate: nothing is missing from it."""
    if handshake is None or not handshake.server_chain:
        return False
    by_subject = {c.subject: c for c in handshake.server_chain}
    current = handshake.server_chain[0]
    for _ in range(len(handshake.server_chain)):
        if current.issuer == current.subject:
            return True
        parent = by_subject.get(current.issuer)
        if parent is None:
            return False
        current = parent
    return False

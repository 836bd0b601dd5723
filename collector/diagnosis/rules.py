"""One rule per cause: each reads the `Facts` and returns a `Finding` or ``None`` to let the next rule try.

A finding holds its cause, the backend, evidence lines and the values `playbook.py`'s texts need. A new cause
means one function here (placed in `diagnose.RULES`), one `Cause` value, one `playbook.TEMPLATES` entry, one
template branch and one fixture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from collector.diagnosis.backends import (
    ClientAuthCase,
    Facts,
    backend_label,
    find_probe,
    first_fatal,
    frame_prefix,
    is_encrypted,
    server_reaction,
)
from collector.diagnosis.causes import Cause
from collector.diagnosis.keymanager import KeystoreVerdict, check_keystore
from collector.diagnosis.playbook import CHAIN_HINT
from collector.tls.handshake import CertificateRequest, Handshake, Outcome


@dataclass(frozen=True)
class Finding:
    """A rule's verdict before its texts are rendered."""

    cause: Cause
    backend: str | None
    evidence: tuple[str, ...]
    values: dict[str, str] = field(default_factory=dict)
    variant: str = ""  # a `playbook.VARIANTS` key with this cause, "" for the cause's own texts


def missing_client_certificate(facts: Facts) -> Finding | None:
    return _client_auth_finding(Cause.MISSING_CLIENT_CERTIFICATE, facts, KeystoreVerdict.NO_KEY)


def ca_mismatch(facts: Facts) -> Finding | None:
    return _client_auth_finding(Cause.CA_MISMATCH, facts, KeystoreVerdict.NO_ACCEPTABLE_ISSUER)


def client_certificate_not_sent(facts: Facts) -> Finding | None:
    cases = [c for c in facts.cases if c.observed_empty]
    if not cases:
        return None
    finding = _finding_for_cases(Cause.CLIENT_CERTIFICATE_NOT_SENT, facts, cases)
    case = cases[0]
    if case.check.verdict == KeystoreVerdict.ACCEPTABLE:
        return replace(finding, variant="acceptable")
    if case.request is not None and not case.request.ca_names:
        return replace(finding, variant="any-ca")
    return finding


def client_certificate_rejected(facts: Facts) -> Finding | None:
    rejected = [h for h in facts.evidence.handshakes if _sent_and_refused(h)]
    if not rejected:
        return None
    first = rejected[0]
    cert = first.client_certificate
    assert cert is not None
    leaf = cert.chain[0] if cert.chain else None
    lines = [frame_prefix(cert.frame, first, True) + "client Certificate sent"
             + (f": {leaf.subject}, issued by {leaf.issuer}" if leaf else "")]
    lines.append(_reaction_line(first))
    lines.extend(_count_lines(facts, backend_label(first), len([h for h in rejected if backend_label(h) == backend_label(first)])))
    return Finding(Cause.CLIENT_CERTIFICATE_REJECTED, backend_label(first), tuple(lines), {
        "backend": backend_label(first), "reaction": server_reaction(first),
        "client_leaf": leaf.subject if leaf else "", "client_issuer": leaf.issuer if leaf else ""})


def handshake_failed_before_client_auth(facts: Facts) -> Finding | None:
    failed = [h for h in facts.evidence.handshakes if h.client_certificate is None and not is_encrypted(h)
              and (h.outcome == Outcome.FAILED or first_fatal(h) is not None)]
    if not failed:
        return None
    first = failed[0]
    lines = [frame_prefix(first.frames[0] if first.frames else None, first, True)
             + f"ClientHello from {first.client} to {first.server}" + (f" (SNI {first.sni})" if first.sni else " (no SNI)")]
    if first.version:
        lines.append(f"negotiated {first.version}" + (f", {first.cipher}" if first.cipher else ""))
    lines.append(_reaction_line(first) if first_fatal(first) else "the connection closed before a CertificateRequest")
    lines.extend(_count_lines(facts, backend_label(first), len([h for h in failed if backend_label(h) == backend_label(first)])))
    return Finding(Cause.HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH, backend_label(first), tuple(lines), {
        "backend": backend_label(first), "reaction": server_reaction(first), "sni": first.sni or ""})


def encrypted_handshake(facts: Facts) -> Finding | None:
    opaque = [h for h in facts.evidence.handshakes if is_encrypted(h)]
    if not opaque:
        return None
    first = opaque[0]
    lines = [frame_prefix(first.frames[0] if first.frames else None, first, True)
             + f"{first.version or 'TLS 1.3'} handshake {first.client} → {first.server}"
             + (f" (SNI {first.sni})" if first.sni else "")
             + f": {first.encrypted_records} encrypted record(s) after ServerHello, no key log to read them"]
    probed = [case for case in facts.cases if case.handshake is first]
    for case in probed:
        lines.extend(_probe_lines(case) + list(case.check.evidence))
    lines.extend(_count_lines(facts, backend_label(first), len([h for h in opaque if backend_label(h) == backend_label(first)])))
    sni_target = f"{first.sni}:{first.server.rsplit(':', 1)[-1]}" if first.sni else first.server
    return Finding(Cause.ENCRYPTED_HANDSHAKE, backend_label(first), tuple(lines),
                   {"backend": backend_label(first), "target": sni_target}, "probed" if probed else "")


def handshake_ok(facts: Facts) -> Finding | None:
    completed = [h for h in facts.evidence.handshakes if h.outcome == Outcome.ESTABLISHED]
    if not completed:
        return None
    lines = [f"{label}: " + _outcome_phrase(per) for label, per in facts.counts.items()]
    return Finding(Cause.HANDSHAKE_OK, None, tuple(lines), {"count": str(len(completed))})


def no_tls_handshake(facts: Facts) -> Finding | None:
    lines = [f"{label}: " + _outcome_phrase(per) for label, per in facts.counts.items()]
    if not facts.evidence.handshakes:
        lines.append("no TLS handshake in: " + (", ".join(facts.evidence.sources) or "the input"))
    # What the keystore alone says is still worth reading (an empty keystore needs no capture to be seen).
    ev = facts.evidence
    lines.extend(check_keystore(ev.keystores, ev.key_alias, ev.keystore, None).evidence)
    return Finding(Cause.NO_TLS_HANDSHAKE, None, tuple(lines))


def _client_auth_finding(cause: Cause, facts: Facts, verdict: KeystoreVerdict) -> Finding | None:
    cases = [c for c in facts.cases if c.check.verdict == verdict]
    return _finding_for_cases(cause, facts, cases) if cases else None


def _finding_for_cases(cause: Cause, facts: Facts, cases: Sequence[ClientAuthCase]) -> Finding:
    case = cases[0]
    lines = _probe_lines(case) + _capture_lines(case) + list(case.check.evidence)
    same = len([c for c in cases if c.backend == case.backend])
    lines.extend(_count_lines(facts, case.backend, same))
    values = {
        "backend": case.backend,
        "keystore": f"keystore {case.check.keystore}" if case.check.keystore else "",
        "alias": f"alias {case.check.alias}" if case.check.alias else "",
        "under_alias": f" under alias {case.check.alias}" if case.check.alias else "",
        "leaf_issuer": case.check.leaf_issuer or "",
        "acceptable": _names_text(case.request),
        "chain_hint": CHAIN_HINT if case.check.chain_length == 1 else "",
        "reaction": server_reaction(case.handshake) if case.observed_empty else "",
    }
    return Finding(cause, case.backend, tuple(lines), values)


def _probe_lines(case: ClientAuthCase) -> list[str]:
    probe = case.probe
    if probe is None or (case.handshake.certificate_request is not None and case.handshake is not probe.handshake):
        return []
    via = f" via {probe.via}" if probe.via else ""
    if case.handshake is not probe.handshake and find_probe(case.handshake, [probe], single_backend=False) is None:
        via += f" (taken for {case.backend}: the only probe and the only backend)"
    return [f"probe of {probe.target}{via}: the backend asks for a client certificate and "
            + _ca_phrase(probe.handshake.certificate_request)]


def _capture_lines(case: ClientAuthCase) -> list[str]:
    handshake = case.handshake
    if case.probe is not None and handshake is case.probe.handshake:
        return ["no capture of this backend: the verdict is what JSSE does with these CA names and this keystore"]
    lines = []
    request = handshake.certificate_request
    if request is not None:
        lines.append(frame_prefix(request.frame, handshake, True) + f"CertificateRequest from {handshake.server} "
                     + _ca_phrase(request))
    if case.observed_empty and handshake.client_certificate is not None:
        lines.append(frame_prefix(handshake.client_certificate.frame, handshake, not lines)
                     + "client Certificate length 0 (no certificate sent)")
        lines.append(_reaction_line(handshake))
    else:
        lines.append(frame_prefix(handshake.frames[0] if handshake.frames else None, handshake, not lines)
                     + f"TLS 1.3 handshake {handshake.client} → {handshake.server} is encrypted (no key log);"
                     " JSSE sends an empty Certificate when no stored chain matches the CA names")
    return lines


def _reaction_line(handshake: Handshake) -> str:
    alert = first_fatal(handshake)
    if alert is not None:
        who = "the server" if alert.sender == "server" else "the message processor"
        return frame_prefix(alert.frame, handshake, False) + f"fatal alert {alert.description} ({alert.code}) from {who}"
    if handshake.outcome == Outcome.ESTABLISHED:
        http = f", then HTTP {handshake.http_status}" if handshake.http_status is not None else ""
        return (f"no alert: the handshake completed{http} (an nginx-style backend accepts the empty certificate"
                " and answers HTTP 400)")
    return f"{handshake.source or 'capture'}: {server_reaction(handshake)}"


def _count_lines(facts: Facts, backend: str, same: int) -> list[str]:
    per = facts.counts.get(backend)
    if not per or (sum(per.values()) == 1 and len(facts.counts) == 1):
        return []
    lines = [f"{same} of {sum(per.values())} handshake(s) to {backend} show this ({_outcome_phrase(per)})"]
    lines.extend(f"other backend {label}: {_outcome_phrase(n)}" for label, n in facts.counts.items() if label != backend)
    return lines


def _outcome_phrase(per: dict[str, int]) -> str:
    return ", ".join(f"{n} {outcome}" for outcome, n in per.items())


def _ca_phrase(request: CertificateRequest | None) -> str:
    if request is None:
        return "its acceptable CA names are unknown"
    if not request.ca_names:
        return "lists no acceptable CA names (any issuer qualifies)"
    return "lists acceptable CA names: " + "; ".join(request.ca_names)


def _names_text(request: CertificateRequest | None) -> str:
    if request is None:
        return ""
    return "; ".join(request.ca_names) if request.ca_names else "none named: any issuer qualifies"


def _sent_and_refused(handshake: Handshake) -> bool:
    cert = handshake.client_certificate
    if cert is None or not cert.sent:
        return False
    alert = first_fatal(handshake)
    server_alert = alert is not None and alert.sender == "server"
    return server_alert or handshake.http_status == 400 or handshake.outcome == Outcome.FAILED

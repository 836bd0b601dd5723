"""What a finding of the three server-certificate causes says: evidence lines citing frames, the chain's
verdict and the MP's words, the texts' values, and the chain object for JSON (the judgement itself is in
`server_chain.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

from collector.diagnosis.backends import (
    Facts,
    backend_label,
    first_fatal,
    frame_prefix,
    is_encrypted,
    probe_label,
    server_reaction,
)
from collector.diagnosis.causes.spec import Finding
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.findings import count_lines, reaction_line
from collector.diagnosis.probed import probed_line
from collector.diagnosis.server_chain import EXPIRED, MISMATCH, Basis, ChainRejection, refused_chain
from collector.tls.handshake import Handshake
from collector.tls.trust import ChainStatus


def rejection_lines(facts: Facts, rejection: ChainRejection) -> list[str]:
    """Evidence lines: the handshake (frames), the chain, the MP's alert, the verdict, the MP log's words."""
    handshake, lines = rejection.handshake, []
    probe = rejection.probe
    if probe is not None:
        lines.append(probed_line(probe, _probe_chain_line(probe.handshake)))
        if handshake is None:
            lines.append("no capture shows this handshake: the chain above is the one the backend sends a"
                         " probe" + (", and the message processor's log names the reason" if rejection.signs
                                     else ""))
    if probe is not None and (handshake is None or is_encrypted(handshake)):
        pass  # the probe's chain stands in for the one the capture cannot show
    elif handshake is None:
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


def _probe_chain_line(handshake: Handshake) -> str:
    if not handshake.server_chain:
        return "the backend sent no certificate"
    return "backend " + _chain_line(handshake)[len("backend "):]


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
    if rejection.handshake is not None and rejection.handshake.captured_at is None:
        lines.append("the capture has no timestamps: the dates were judged at the time of this analysis")
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
    handshake, probe = rejection.handshake, rejection.probe
    values = {**rejection_values(rejection, facts.evidence), **(extra or {})}
    backend = backend_label(handshake) if handshake else (probe_label(probe) if probe else None)
    if backend and not values.get("backend"):
        values["backend"] = backend
    # Named from the probe alone: no MP log line and no readable capture of the refusal.
    alone = probe is not None and not rejection.signs and (handshake is None or is_encrypted(handshake))
    return Finding(backend, tuple(rejection_lines(facts, rejection)), values, variant,
                   rejection.to_json(facts.evidence), from_probe=alone)


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

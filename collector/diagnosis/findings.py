"""What several causes' rules say the same way: evidence lines citing frames, per-backend counts, and the
finding of a client-authentication case (the cases themselves come from `backends.assess`)."""

from __future__ import annotations

from collections.abc import Sequence

from collector.diagnosis.backends import (
    ClientAuthCase,
    Facts,
    find_probe,
    first_fatal,
    frame_prefix,
    server_reaction,
)
from collector.diagnosis.causes.spec import Finding
from collector.diagnosis.jsse_messages import JsseSign, signs_for
from collector.diagnosis.keymanager import KeystoreVerdict
from collector.tls.handshake import CertificateRequest, Handshake, Outcome


def client_auth_cases(facts: Facts, verdict: KeystoreVerdict) -> list[ClientAuthCase]:
    """The client-authentication cases whose keystore check came to `verdict`."""
    return [c for c in facts.cases if c.check.verdict == verdict]


def client_auth_finding(facts: Facts, cases: Sequence[ClientAuthCase]) -> Finding:
    """The finding of the first case: probe, capture and keystore lines, counts, and the texts' values."""
    case = cases[0]
    lines = probe_lines(case) + _capture_lines(case) + list(case.check.evidence)
    same = len([c for c in cases if c.backend == case.backend])
    lines.extend(count_lines(facts, case.backend, same))
    values = {
        "backend": case.backend,
        "keystore": f"keystore {case.check.keystore}" if case.check.keystore else "",
        "alias": f"alias {case.check.alias}" if case.check.alias else "",
        "under_alias": f" under alias {case.check.alias}" if case.check.alias else "",
        "leaf_issuer": case.check.leaf_issuer or "",
        "acceptable": names_text(case.request),
        "reaction": server_reaction(case.handshake) if case.observed_empty else "",
    }
    return Finding(case.backend, tuple(lines), values)


def probe_lines(case: ClientAuthCase) -> list[str]:
    """What the probe of this case's backend showed, when the probe (not the capture) supplied the CA
    names."""
    probe = case.probe
    if probe is None or (case.handshake.certificate_request is not None
                         and case.handshake is not probe.handshake):
        return []
    via = f" via {probe.via}" if probe.via else ""
    unmatched = find_probe(case.handshake, [probe], single_backend=False) is None
    if case.handshake is not probe.handshake and unmatched:
        via += f" (taken for {case.backend}: the only probe and the only backend)"
    return [f"probe of {probe.target}{via}: the backend asks for a client certificate and "
            + ca_phrase(probe.handshake.certificate_request)]


def _capture_lines(case: ClientAuthCase) -> list[str]:
    handshake = case.handshake
    if case.probe is not None and handshake is case.probe.handshake:
        return ["no capture of this backend: the verdict is what JSSE does with these CA names and this"
                " keystore"]
    lines = []
    request = handshake.certificate_request
    if request is not None:
        lines.append(frame_prefix(request.frame, handshake, True)
                     + f"CertificateRequest from {handshake.server} " + ca_phrase(request))
    if case.observed_empty and handshake.client_certificate is not None:
        lines.append(frame_prefix(handshake.client_certificate.frame, handshake, not lines)
                     + "client Certificate length 0 (no certificate sent)")
        lines.append(reaction_line(handshake))
    else:
        lines.append(frame_prefix(handshake.frames[0] if handshake.frames else None, handshake, not lines)
                     + f"TLS 1.3 handshake {handshake.client} → {handshake.server} is encrypted (no key log);"
                     " JSSE sends an empty Certificate when no stored chain matches the CA names")
    return lines


def reaction_line(handshake: Handshake) -> str:
    """How the backend answered, citing the alert's frame."""
    alert = first_fatal(handshake)
    if alert is not None:
        who = "the server" if alert.sender == "server" else "the message processor"
        return (frame_prefix(alert.frame, handshake, False)
                + f"fatal alert {alert.description} ({alert.code}) from {who}")
    if handshake.outcome == Outcome.ESTABLISHED:
        http = f", then HTTP {handshake.http_status}" if handshake.http_status is not None else ""
        return (f"no alert: the handshake completed{http} (an nginx-style backend accepts the empty"
                " certificate and answers HTTP 400)")
    return f"{handshake.source or 'capture'}: {server_reaction(handshake)}"


def count_lines(facts: Facts, backend: str, same: int) -> list[str]:
    """How many of the backend's handshakes show the finding, and what the other backends did."""
    per = facts.counts.get(backend)
    if not per or (sum(per.values()) == 1 and len(facts.counts) == 1):
        return []
    lines = [f"{same} of {sum(per.values())} handshake(s) to {backend} show this ({outcome_phrase(per)})"]
    lines.extend(f"other backend {label}: {outcome_phrase(n)}"
                 for label, n in facts.counts.items() if label != backend)
    return lines


def outcome_phrase(per: dict[str, int]) -> str:
    return ", ".join(f"{n} {outcome}" for outcome, n in per.items())


def ca_phrase(request: CertificateRequest | None) -> str:
    if request is None:
        return "its acceptable CA names are unknown"
    if not request.ca_names:
        return "lists no acceptable CA names (any issuer qualifies)"
    return "lists acceptable CA names: " + "; ".join(request.ca_names)


def names_text(request: CertificateRequest | None) -> str:
    if request is None:
        return ""
    return "; ".join(request.ca_names) if request.ca_names else "none named: any issuer qualifies"


_QUOTE_AROUND = 90  # characters of a log line quoted on each side of the JSSE phrase


def jsse_sign_lines(cause: str, signs: Sequence[JsseSign], limit: int = 3) -> list[str]:
    """The MP's own words for `cause` (its system.log lines, the trace's error.cause), each quoted around the
    JSSE phrase with where it was read; the same text read twice is quoted once."""
    lines: list[str] = []
    for sign in signs_for(cause, tuple(signs)):
        at = max(0, sign.line.lower().find(sign.phrase.lower()))  # -1: the phrase was past the cut
        start, end = max(0, at - _QUOTE_AROUND), at + len(sign.phrase) + _QUOTE_AROUND
        quote = ("…" if start else "") + sign.line[start:end] + ("…" if end < len(sign.line) else "")
        where = f"MP system.log ({sign.source})" if "system.log" in sign.source else sign.source or "MP log"
        line = f"{where}: {quote}"
        if line not in lines:
            lines.append(line)
    return lines[:limit]

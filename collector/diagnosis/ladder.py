"""The human view of an analysis: a handshake ladder per connection (as Wireshark shows it), counts, diagnosis."""

from __future__ import annotations

from collections.abc import Iterable

from collector.diagnosis.analyze import Analysis
from collector.diagnosis.backends import backend_label, is_encrypted
from collector.tls.handshake import Handshake, Outcome

LADDERS_PER_BACKEND = 3  # the rest of a backend's handshakes are counted, not drawn


def render_analysis(analysis: Analysis) -> str:
    """Plain text (no colours): ladders, per-backend counts, then the cause, evidence and resolution."""
    lines: list[str] = []
    drawn: dict[str, int] = {}
    for handshake in analysis.handshakes:
        label = backend_label(handshake)
        drawn[label] = drawn.get(label, 0) + 1
        if drawn[label] <= LADDERS_PER_BACKEND:
            lines.extend(render_ladder(handshake))
            lines.append("")
    for label, seen in drawn.items():
        if seen > LADDERS_PER_BACKEND:
            lines.append(f"({seen - LADDERS_PER_BACKEND} more handshake(s) to {label} not drawn)")
    diagnosis = analysis.diagnosis
    if diagnosis.counts:
        lines.append("Handshakes per backend:")
        lines.extend(f"  {label}: " + ", ".join(f"{n} {outcome}" for outcome, n in per.items())
                     for label, per in diagnosis.counts.items())
        lines.append("")
    if analysis.evidence.notes:
        lines.append("Notes:")
        lines.extend(f"  {note}" for note in analysis.evidence.notes)
        lines.append("")
    lines.append(f"Cause: {diagnosis.cause.value}" + (f"  (backend {diagnosis.backend})" if diagnosis.backend else ""))
    lines.append(f"  {diagnosis.summary}")
    if diagnosis.evidence:
        lines.append("Evidence:")
        lines.extend(f"  - {line}" for line in diagnosis.evidence)
    lines.append("Resolution:")
    lines.append(f"  {diagnosis.resolution}")
    return "\n".join(lines)


def render_ladder(handshake: Handshake) -> list[str]:
    """One connection: who spoke, in order, with frame numbers."""
    span = f", frames {handshake.frames[0]}–{handshake.frames[1]}" if handshake.frames else ""
    title = f"Connection {handshake.client} → {handshake.server} ({handshake.source or 'capture'}{span})"
    hello = f"ClientHello (SNI {handshake.sni})" if handshake.sni else "ClientHello (no SNI)"
    first = handshake.frames[0] if handshake.frames else None
    steps: list[tuple[int | None, str]] = [(first, f"MP {handshake.client} → backend {handshake.server}  {hello}")]
    steps.append((None, "← " + ", ".join(_server_flight(handshake))))
    request = handshake.certificate_request
    cert = handshake.client_certificate
    if cert is not None:
        text = "→ Certificate (length 0: no client certificate)" if not cert.sent else (
            "→ Certificate (" + (f"{cert.chain[0].subject}, issued by {cert.chain[0].issuer}" if cert.chain
                                 else "sent") + ")")
        steps.append((cert.frame, text))
    for alert in handshake.alerts:
        arrow = "←" if alert.sender == "server" else "→"
        steps.append((alert.frame, f"{arrow} Alert {alert.level} {alert.description} ({alert.code})"))
    if handshake.http_status is not None:
        steps.append((None, f"← HTTP {handshake.http_status}"))
    if request is not None and request.frame is not None:
        steps[1] = (request.frame, steps[1][1])
    lines = [title]
    lines.extend(f"  {_frame(frame)}{text}" for frame, text in steps)
    lines.append(f"  outcome: {_outcome_text(handshake)}")
    lines.extend(f"  note: {note}" for note in handshake.notes)
    return lines


def _server_flight(handshake: Handshake) -> Iterable[str]:
    version = f" ({handshake.version})" if handshake.version else ""
    if handshake.version is None and not handshake.server_chain and handshake.certificate_request is None:
        return ["no ServerHello seen"]
    flight = [f"ServerHello{version}"]
    if handshake.server_chain:
        leaf = handshake.server_chain[0]
        flight.append(f"Certificate ({leaf.subject}, issued by {leaf.issuer})")
    request = handshake.certificate_request
    if request is not None:
        names = "; ".join(request.ca_names) if request.ca_names else "none named"
        flight.append(f"CertificateRequest (acceptable CA names: {names})")
    if is_encrypted(handshake):
        flight.append(f"{handshake.encrypted_records} encrypted record(s)")
    elif handshake.version != "TLSv1.3" and handshake.server_chain:
        flight.append("ServerHelloDone")
    return flight


def _frame(frame: int | None) -> str:
    return f"[{frame:>4}] " if frame is not None else "       "


def _outcome_text(handshake: Handshake) -> str:
    texts = {
        Outcome.ESTABLISHED: "established",
        Outcome.FAILED: "failed" + (" (TLS 1.3 without a key log: why is encrypted)" if is_encrypted(handshake) else ""),
        Outcome.INCOMPLETE: "incomplete (the capture ends before the handshake does)",
        Outcome.OPAQUE: "opaque (TLS 1.3 without a key log: the client certificate exchange is encrypted)",
    }
    return texts[handshake.outcome]

"""The handshake ladder, one model for every view: which messages each connection exchanged, in order, who
sent them and which broke the handshake; which connections of a backend to draw. `render_analysis` is the
CLI's text view of it; `bundle/report.py` draws the same model in report.html."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.diagnosis.analyze import Analysis
from collector.diagnosis.backends import backend_label, is_encrypted
from collector.tls.handshake import Alert, CertificateSummary, ConnectionAttempt, Handshake, Outcome

LADDERS_PER_BACKEND = 3  # the text view draws this many per backend; the rest are counted, not drawn
ATTEMPTS_LISTED = 10  # connection attempts without data the text view lists; the rest are counted


class Sender(str, enum.Enum):
    """Which side of the connection sent a message."""

    MESSAGE_PROCESSOR = "message-processor"
    BACKEND = "backend"


class Step(str, enum.Enum):
    """The messages a ladder shows."""

    CLIENT_HELLO = "ClientHello"
    NO_SERVER_HELLO = "no ServerHello"  # the backend's first flight was never seen
    SERVER_HELLO = "ServerHello"
    SERVER_CERTIFICATE = "server Certificate"
    CERTIFICATE_REQUEST = "CertificateRequest"
    ENCRYPTED_RECORDS = "encrypted records"  # TLS 1.3 without a key log: the rest of the flight is unreadable
    SERVER_HELLO_DONE = "ServerHelloDone"
    CLIENT_CERTIFICATE = "client Certificate"
    ALERT = "Alert"
    HTTP_RESPONSE = "HTTP response"


# The backend's first flight: the text view writes these on one line.
SERVER_FLIGHT = frozenset({Step.NO_SERVER_HELLO, Step.SERVER_HELLO, Step.SERVER_CERTIFICATE,
                           Step.CERTIFICATE_REQUEST, Step.ENCRYPTED_RECORDS, Step.SERVER_HELLO_DONE})


@dataclass(frozen=True)
class LadderStep:
    """One message of a connection.

    Attributes:
        step: which message. sender: who sent it. frame: its capture frame, ``None`` when unknown.
        alarm: True for the message that broke the handshake (an empty client Certificate, a fatal alert).
        certificate: the leaf of a Certificate message, ``None`` for other messages or an empty one.
        alert: the alert of an Alert step.
    """

    step: Step
    sender: Sender
    frame: int | None = None
    alarm: bool = False
    certificate: CertificateSummary | None = None
    alert: Alert | None = None


@dataclass(frozen=True)
class Ladder:
    """One connection: its handshake and the messages to draw, in order."""

    handshake: Handshake
    steps: tuple[LadderStep, ...]


@dataclass(frozen=True)
class BackendLadders:
    """The connections to one backend: those to draw (failures first) and how many more were left out."""

    backend: str
    ladders: tuple[Ladder, ...]
    more: int


def build_ladder(handshake: Handshake) -> Ladder:
    """The messages of one connection, in the order they were exchanged."""
    mp, backend = Sender.MESSAGE_PROCESSOR, Sender.BACKEND
    steps = [LadderStep(Step.CLIENT_HELLO, mp, handshake.frames[0] if handshake.frames else None)]
    request = handshake.certificate_request
    if handshake.version is None and not handshake.server_chain and request is None:
        steps.append(LadderStep(Step.NO_SERVER_HELLO, backend))
    else:
        steps.append(LadderStep(Step.SERVER_HELLO, backend))
        if handshake.server_chain:
            steps.append(LadderStep(Step.SERVER_CERTIFICATE, backend, certificate=handshake.server_chain[0]))
        if request is not None:
            steps.append(LadderStep(Step.CERTIFICATE_REQUEST, backend, request.frame))
        if is_encrypted(handshake):
            steps.append(LadderStep(Step.ENCRYPTED_RECORDS, backend))
        elif handshake.version != "TLSv1.3" and handshake.server_chain:
            steps.append(LadderStep(Step.SERVER_HELLO_DONE, backend))
    cert = handshake.client_certificate
    if cert is not None:
        steps.append(LadderStep(Step.CLIENT_CERTIFICATE, mp, cert.frame, alarm=not cert.sent,
                                certificate=cert.chain[0] if cert.sent and cert.chain else None))
    for alert in handshake.alerts:
        sender = backend if alert.sender == "server" else mp
        steps.append(LadderStep(Step.ALERT, sender, alert.frame, alarm=alert.level == "fatal", alert=alert))
    if handshake.http_status is not None:
        steps.append(LadderStep(Step.HTTP_RESPONSE, backend))
    return Ladder(handshake, tuple(steps))


def ladders_per_backend(handshakes: Sequence[Handshake], limit: int) -> tuple[BackendLadders, ...]:
    """Per backend (first-seen order), up to `limit` ladders: failures first, then in capture order (a capture
    may hold thousands of handshakes; the failing ones are what the reader looks for)."""
    groups: dict[str, list[Handshake]] = {}
    for handshake in handshakes:
        groups.setdefault(backend_label(handshake), []).append(handshake)
    result = []
    for label, group in groups.items():
        ordered = sorted(group, key=lambda h: h.outcome == Outcome.ESTABLISHED)
        result.append(BackendLadders(label, tuple(build_ladder(h) for h in ordered[:limit]),
                                     max(0, len(group) - limit)))
    return tuple(result)


# -- the text view (`collect analyze`) -----------------------------------------------------------------------


def render_analysis(analysis: Analysis) -> str:
    """Plain text (no colours): ladders, per-backend counts, then the cause, evidence and resolution."""
    lines: list[str] = []
    backends = ladders_per_backend(analysis.handshakes, LADDERS_PER_BACKEND)
    for group in backends:
        for ladder in group.ladders:
            lines.extend(render_ladder_text(ladder))
            lines.append("")
    lines.extend(f"({group.more} more handshake(s) to {group.backend} not drawn)" for group in backends
                 if group.more)
    lines.extend(render_attempts(analysis.evidence.connection_attempts))
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
    if diagnosis.chain is not None:
        lines.extend(_chain_text(diagnosis.chain))
    backend = f"  (backend {diagnosis.backend})" if diagnosis.backend else ""
    lines.append(f"Cause: {diagnosis.cause.value}{backend}")
    lines.append(f"  {diagnosis.summary}")
    if diagnosis.evidence:
        lines.append("Evidence:")
        lines.extend(f"  - {line}" for line in diagnosis.evidence)
    lines.append("Resolution:")
    lines.append(f"  {diagnosis.resolution}")
    return "\n".join(lines)


def _chain_text(chain: Mapping[str, Any]) -> list[str]:
    """The verdict on the backend's certificate chain (`Diagnosis.chain`), as the text view prints it."""
    lines = [f"Backend chain: {chain.get('status') or 'not readable'} (decided by {chain.get('basis')})"]
    if chain.get("leaf_subject"):
        lines.append(f"  leaf: {chain['leaf_subject']}, issued by {chain.get('leaf_issuer')}")
    if chain.get("missing_issuer"):
        lines.append(f"  missing issuer: {chain['missing_issuer']}")
    for cert in chain.get("out_of_validity") or []:
        lines.append(f"  out of validity: {cert['subject']} ({cert['not_before']} to {cert['not_after']})")
    if chain.get("name"):
        names = ", ".join(chain.get("leaf_names") or [])
        lines.append(f"  name checked: {chain['name']} ({chain.get('name_source')});"
                     f" certificate names: {names}")
    if chain.get("checked_at"):
        lines.append(f"  judged at: {chain['checked_at']}")
    held = chain.get("truststore_certificates") or []
    store = chain.get("truststore") or "given"
    lines.append(f"  truststore {store}: {len(held)} certificate(s)" if held
                 else "  truststore: none given")
    if chain.get("note"):
        lines.append(f"  note: {chain['note']}")
    lines.append("")
    return lines


def render_attempts(attempts: Sequence[ConnectionAttempt]) -> list[str]:
    """The TCP connections that carried no byte (refused, unanswered, closed), a few listed, the rest
    counted."""
    if not attempts:
        return []
    lines = ["Connection attempts without data:"]
    for attempt in attempts[:ATTEMPTS_LISTED]:
        span = ""
        if attempt.frames:
            first, last = attempt.frames
            span = f", frames {first}–{last}" if last != first else f", frame {first}"
        lines.append(f"  {_frame(attempt.frames[0] if attempt.frames else None)}{attempt.client} → "
                     f"{attempt.server}  {attempt.end.value} ({attempt.source or 'capture'}{span})")
    if len(attempts) > ATTEMPTS_LISTED:
        lines.append(f"  ({len(attempts) - ATTEMPTS_LISTED} more not listed)")
    lines.append("")
    return lines


def render_ladder(handshake: Handshake) -> list[str]:
    """One connection as text lines: who spoke, in order, with frame numbers."""
    return render_ladder_text(build_ladder(handshake))


def render_ladder_text(ladder: Ladder) -> list[str]:
    handshake = ladder.handshake
    span = f", frames {handshake.frames[0]}–{handshake.frames[1]}" if handshake.frames else ""
    lines = [f"Connection {handshake.client} → {handshake.server} ({handshake.source or 'capture'}{span})"]
    flight = [s for s in ladder.steps if s.step in SERVER_FLIGHT]
    # The flight's line carries the CertificateRequest's frame, the message the reader looks for in it.
    flight_frame = next((s.frame for s in flight if s.step is Step.CERTIFICATE_REQUEST), None)
    for step in ladder.steps:
        if step.step is Step.CLIENT_HELLO:
            hello = f"ClientHello (SNI {handshake.sni})" if handshake.sni else "ClientHello (no SNI)"
            lines.append(f"  {_frame(step.frame)}MP {handshake.client} → backend {handshake.server}  {hello}")
        elif step is flight[0]:
            words = ", ".join(_flight_words(handshake, s) for s in flight)
            lines.append(f"  {_frame(flight_frame)}← {words}")
        elif step.step not in SERVER_FLIGHT:
            lines.append(f"  {_frame(step.frame)}{direction(step)} {_step_words(handshake, step)}")
    lines.append(f"  outcome: {_outcome_text(handshake)}")
    lines.extend(f"  note: {note}" for note in handshake.notes)
    return lines


def _flight_words(handshake: Handshake, step: LadderStep) -> str:
    if step.step is Step.NO_SERVER_HELLO:
        return "no ServerHello seen"
    if step.step is Step.SERVER_HELLO:
        return f"ServerHello ({handshake.version})" if handshake.version else "ServerHello"
    if step.step is Step.SERVER_CERTIFICATE and step.certificate is not None:
        return f"Certificate ({step.certificate.subject}, issued by {step.certificate.issuer})"
    if step.step is Step.CERTIFICATE_REQUEST:
        request = handshake.certificate_request
        names = "; ".join(request.ca_names) if request is not None and request.ca_names else "none named"
        return f"CertificateRequest (acceptable CA names: {names})"
    if step.step is Step.ENCRYPTED_RECORDS:
        return f"{handshake.encrypted_records} encrypted record(s)"
    return step.step.value


def _step_words(handshake: Handshake, step: LadderStep) -> str:
    if step.step is Step.CLIENT_CERTIFICATE:
        if step.alarm:
            return "Certificate (length 0: no client certificate)"
        leaf = step.certificate
        return "Certificate (" + (f"{leaf.subject}, issued by {leaf.issuer}" if leaf else "sent") + ")"
    if step.step is Step.ALERT and step.alert is not None:
        return f"Alert {step.alert.level} {step.alert.description} ({step.alert.code})"
    if step.step is Step.HTTP_RESPONSE:
        return f"HTTP {handshake.http_status}"
    return step.step.value


def direction(step: LadderStep) -> str:
    """The arrow both views draw: → for the message processor's messages, ← for the backend's."""
    return "←" if step.sender is Sender.BACKEND else "→"


def _frame(frame: int | None) -> str:
    return f"[{frame:>4}] " if frame is not None else "       "


def _outcome_text(handshake: Handshake) -> str:
    texts = {
        Outcome.ESTABLISHED: "established",
        Outcome.FAILED: "failed"
        + (" (TLS 1.3 without a key log: why is encrypted)" if is_encrypted(handshake) else ""),
        Outcome.INCOMPLETE: "incomplete (the capture ends before the handshake does)",
        Outcome.OPAQUE: "opaque (TLS 1.3 without a key log: the client certificate exchange is encrypted)",
    }
    return texts[handshake.outcome]


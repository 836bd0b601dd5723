"""What the annotated capture says where: per backend, the frames the verdict rests on and a comment for each.

Public API: `plan_annotation(diagnosis, evidence) -> AnnotationPlan`.

The cause's spec names what on the wire it rests on (`CauseSpec.cites`); this module is the one place that
words a comment for each of those messages, from the handshake that carried it. Every handshake to the
diagnosed backend is commented (the first `MAX_HANDSHAKES`), so the packet list shows the failure on each
attempt; with no backend in the verdict (handshake-ok), every backend's handshakes are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from collector.diagnosis.backends import backend_label
from collector.diagnosis.causes.registry import spec_for
from collector.diagnosis.causes.spec import Cited
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.verdict import Diagnosis
from collector.tls.handshake import AttemptEnd, ConnectionAttempt, Handshake

MAX_HANDSHAKES = 50  # handshakes commented per backend: the pattern shows long before this
MAX_ATTEMPTS = 50  # connection attempts commented per backend
MAX_BACKENDS = 8  # annotated captures per bundle; the diagnosed backend always comes first
MAX_NAMES = 20  # CA names quoted in one comment (the rest are counted)

Comments = dict[tuple[str, int], tuple[str, ...]]


@dataclass(frozen=True)
class AnnotationPlan:
    """What to write: the backends that get an annotated capture, and the comments of every capture.

    Attributes:
        backends: ``ip:port`` of each backend the captures show a connection to, the diagnosed one first
            (at most `MAX_BACKENDS`).
        comments: (capture as the evidence cites it, frame number) -> the frame's comments.
        left_out: backends beyond `MAX_BACKENDS`, counted.
    """

    backends: tuple[str, ...]
    comments: Mapping[tuple[str, int], tuple[str, ...]]
    left_out: int = 0


def plan_annotation(diagnosis: Diagnosis, evidence: Evidence) -> AnnotationPlan:
    """The backends and frame comments for the verdict."""
    cited = spec_for(diagnosis.cause).cites
    diagnosed = _diagnosed_server(diagnosis, evidence)
    comments: Comments = {}
    per_backend: dict[str, int] = {}
    for handshake in evidence.handshakes:
        if diagnosed is not None and handshake.server != diagnosed:
            continue
        per_backend[handshake.server] = per_backend.get(handshake.server, 0) + 1
        if per_backend[handshake.server] <= MAX_HANDSHAKES and handshake.source:
            for kind in cited:
                for frame, text in _WORDING.get(kind, _nothing)(handshake, diagnosis):
                    _add(comments, handshake.source, frame, text)
    if Cited.CONNECTION_ATTEMPT in cited:
        attempts: dict[str, int] = {}
        for attempt in evidence.connection_attempts:
            if diagnosed is not None and attempt.server != diagnosed:
                continue
            attempts[attempt.server] = attempts.get(attempt.server, 0) + 1
            if attempts[attempt.server] <= MAX_ATTEMPTS and attempt.source:
                for frame, text in _attempt_comments(attempt):
                    _add(comments, attempt.source, frame, text)
    servers = list(dict.fromkeys([*(h.server for h in evidence.handshakes),
                                  *(a.server for a in evidence.connection_attempts)]))
    if diagnosed in servers:
        servers.remove(diagnosed)
        servers.insert(0, diagnosed)
    return AnnotationPlan(tuple(servers[:MAX_BACKENDS]), comments, max(0, len(servers) - MAX_BACKENDS))


def _diagnosed_server(diagnosis: Diagnosis, evidence: Evidence) -> str | None:
    """The ``ip:port`` the verdict's backend label names (``ip:port (sni)``), ``None`` for no backend."""
    label = diagnosis.backend
    if not label:
        return None
    for handshake in evidence.handshakes:
        if label in (backend_label(handshake), handshake.server):
            return handshake.server
    for attempt in evidence.connection_attempts:
        if attempt.server == label:
            return attempt.server
    return label.split(" ", 1)[0]


def _add(comments: Comments, source: str, frame: int | None, text: str) -> None:
    if frame is None:
        return
    found = comments.get((source, frame), ())
    if text not in found:
        comments[(source, frame)] = (*found, text)


Wording = Callable[[Handshake, Diagnosis], list[tuple[int | None, str]]]


def _nothing(handshake: Handshake, diagnosis: Diagnosis) -> list[tuple[int | None, str]]:
    return []


def _client_hello(handshake: Handshake, diagnosis: Diagnosis) -> list[tuple[int | None, str]]:
    offer = handshake.client_hello
    if offer is None:
        return []
    sni = f"with SNI {handshake.sni}" if handshake.sni else "without SNI (no server_name extension)"
    return [(offer.frame, f"ClientHello {sni}: offers {', '.join(offer.versions)} and "
                          f"{len(offer.cipher_suites)} cipher suite(s)")]


def _server_hello(handshake: Handshake, diagnosis: Diagnosis) -> list[tuple[int | None, str]]:
    if handshake.version is None:
        return []
    return [(handshake.server_hello_frame,
             f"ServerHello: the backend chose {handshake.version}, {handshake.cipher or 'an unknown suite'}")]


def _server_certificate(handshake: Handshake, diagnosis: Diagnosis) -> list[tuple[int | None, str]]:
    chain = handshake.server_chain
    if not chain:
        return []
    text = (f"backend Certificate chain of {len(chain)}: leaf {chain[0].subject}, issued by {chain[0].issuer}"
            f" (valid {chain[0].not_before or '?'} to {chain[0].not_after or '?'})")
    verdict = diagnosis.chain or {}
    if verdict.get("status"):
        text += f"; verdict: {verdict['status']}"
        if verdict.get("missing_issuer"):
            text += f" (no trusted certificate for issuer {verdict['missing_issuer']})"
        if verdict.get("name"):
            text += f" (the message processor checks the name {verdict['name']})"
    return [(handshake.server_chain_frame, text)]


def _certificate_request(handshake: Handshake, diagnosis: Diagnosis) -> list[tuple[int | None, str]]:
    request = handshake.certificate_request
    if request is None:
        return []
    names = request.ca_names
    if not names:
        return [(request.frame, "CertificateRequest: no acceptable CA names (any issuer qualifies)")]
    quoted = "; ".join(names[:MAX_NAMES])
    more = f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else ""
    return [(request.frame, f"CertificateRequest: acceptable CA names {quoted}{more}")]


def _client_certificate(handshake: Handshake, diagnosis: Diagnosis) -> list[tuple[int | None, str]]:
    sent = handshake.client_certificate
    if sent is None:
        return []
    if not sent.sent:
        return [(sent.frame, "empty client Certificate: the message processor sent no certificate")]
    leaf = sent.chain[0]
    return [(sent.frame, f"client Certificate chain of {len(sent.chain)}: leaf {leaf.subject}, issued by "
                         f"{leaf.issuer}")]


def _alerts(handshake: Handshake, diagnosis: Diagnosis) -> list[tuple[int | None, str]]:
    return [(alert.frame, f"{alert.level} alert {alert.description} ({alert.code}) from "
                          + ("the backend" if alert.sender == "server" else "the message processor"))
            for alert in handshake.alerts]


def _non_tls_reply(handshake: Handshake, diagnosis: Diagnosis) -> list[tuple[int | None, str]]:
    reply = handshake.non_tls_reply
    if reply is None:
        return []
    who = "the backend" if reply.sender == "server" else "the message processor"
    return [(reply.frame, f"not TLS: {who} answered with {reply.first_bytes}")]


def _attempt_comments(attempt: ConnectionAttempt) -> list[tuple[int | None, str]]:
    if attempt.frames is None:
        return []
    first, last = attempt.frames
    if attempt.end is AttemptEnd.REFUSED:
        return [(first, f"SYN from {attempt.client} to {attempt.server}: refused"),
                (last, f"RST from {attempt.server}: nothing accepts connections there (connection refused)")]
    if attempt.end is AttemptEnd.UNANSWERED:
        return [(first, f"SYN from {attempt.client} to {attempt.server}: never answered"
                        " (no SYN-ACK, no RST)")]
    return [(first, f"connection from {attempt.client} to {attempt.server}: closed without a byte"
                    " (no ClientHello)")]


_WORDING: dict[Cited, Wording] = {
    Cited.CLIENT_HELLO: _client_hello,
    Cited.SERVER_HELLO: _server_hello,
    Cited.SERVER_CERTIFICATE: _server_certificate,
    Cited.CERTIFICATE_REQUEST: _certificate_request,
    Cited.CLIENT_CERTIFICATE: _client_certificate,
    Cited.ALERT: _alerts,
    Cited.NON_TLS_REPLY: _non_tls_reply,
}

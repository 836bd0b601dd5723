"""How a connection's handshake ended, and the `Handshake` value built from everything a Session saw.

Public API: `decide_outcome(session) -> Outcome`, `summarize_session(session, source) -> Handshake`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from collector.tls import ciphers, messages
from collector.tls.handshake import ClientHelloOffer, Handshake, Outcome, capture_time

if TYPE_CHECKING:
    from collector.tls.session import Session


def decide_outcome(session: Session) -> Outcome:
    """failed: a fatal alert, bytes that are not TLS where a handshake record belonged, or a close before the
    handshake completed; established: both sides finished (TLS 1.2: ChangeCipherSpec both ways); opaque:
    TLS 1.3 without keys; incomplete: the capture ends first."""
    client_index = session.client if session.client is not None else 0
    client, server = session.sides[client_index], session.sides[1 - client_index]
    if any(alert.level == "fatal" for alert in session.alerts):
        return Outcome.FAILED
    if client.finished and server.finished and (not session.tls13 or session.decrypting):
        return Outcome.ESTABLISHED
    if not session.tls13 and client.ccs and server.ccs:
        return Outcome.ESTABLISHED
    if session.non_tls is not None:  # e.g. a plaintext HTTP port answering the ClientHello
        return Outcome.FAILED
    if session.tls13 and not session.decrypting:  # a close with no answer to the client's flight is a failure
        unanswered = client.after and not session.answered
        closed = client.reset or server.reset or server.closed
        return Outcome.FAILED if unanswered and closed else Outcome.OPAQUE
    if "client_hello" in session.facts and (client.closed or client.reset or server.closed or server.reset):
        return Outcome.FAILED
    return Outcome.INCOMPLETE


def summarize_session(session: Session, source: str) -> Handshake:
    client_index = session.client if session.client is not None else 0
    notes = list(session.notes)
    if not session.syn_seen:
        notes.insert(0, "the capture starts in the middle of this connection (no SYN)")
    outcome = decide_outcome(session)
    if outcome is not Outcome.ESTABLISHED:
        notes.extend(_close_notes(session, client_index))
    facts = session.facts
    # The ignores below: `facts` holds each message's parsed value under its field's name, typed as object.
    return Handshake(
        client=session.endpoints[client_index],
        server=session.endpoints[1 - client_index],
        sni=session.sni,
        version=ciphers.version_name(session.version) if session.version is not None else None,
        cipher=ciphers.cipher_name(session.cipher) if session.cipher is not None else None,
        server_chain=facts.get("server_chain", ()),  # type: ignore[arg-type]
        certificate_request=facts.get("certificate_request"),  # type: ignore[arg-type]
        client_certificate=facts.get("client_certificate"),  # type: ignore[arg-type]
        alerts=tuple(session.alerts),
        outcome=outcome,
        source=source,
        frames=(session.first_frame, session.last_frame),
        encrypted_records=session.sides[0].opaque + session.sides[1].opaque,
        http_status=session.http_status,
        notes=tuple(notes),
        client_hello=_offer(session),
        server_chain_der=facts.get("server_chain_der", ()),  # type: ignore[arg-type]
        captured_at=capture_time(session.started),
        non_tls_reply=session.non_tls,
        server_hello_frame=facts.get("server_hello"),  # type: ignore[arg-type]
        server_chain_frame=facts.get("server_chain_frame"),  # type: ignore[arg-type]
    )


def _offer(session: Session) -> ClientHelloOffer | None:
    if session.offer is None:
        return None
    legacy, versions, suites = _offer_names(session.offer)
    return ClientHelloOffer(legacy, versions, suites, session.facts.get("client_hello"))  # type: ignore[arg-type]


# A client offers the same list on every connection: name it once, and share the tuples between handshakes.
@functools.lru_cache(maxsize=256)
def _offer_names(offer: messages.ClientOffer) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    return (
        ciphers.version_name(offer.legacy_version),
        tuple(ciphers.version_name(v) for v in offer.versions),
        tuple(ciphers.cipher_name(c) for c in offer.cipher_suites),
    )


def _close_notes(session: Session, client_index: int) -> list[str]:
    """Who hung up, and when: the evidence behind a failure without an alert."""
    found = []
    for index in (client_index, 1 - client_index):
        side, role = session.sides[index], session.role(index)
        if side.reset:
            found.append(f"the {role} reset the connection at frame {side.reset}")
        elif side.closed:
            found.append(f"the {role} closed the connection at frame {side.closed}")
    return found

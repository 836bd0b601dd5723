"""What the ClientHello offered and how the backend answered it: the facts protocol-mismatch,
cipher-mismatch and sni-required share (a refusal before any ServerHello, what the backend is known to
accept, the SNI the MP sent), and the evidence lines that show them."""

from __future__ import annotations

from dataclasses import dataclass

from collector.diagnosis.backends import Facts, find_probe, first_fatal, frame_prefix
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.jsse_messages import signs_for
from collector.tls.handshake import ClientHelloOffer, Handshake, Outcome

_QUOTED_SIGNS = 3  # MP log lines quoted per finding; the bundle keeps every line
_LISTED_SUITES = 60  # a JSSE ClientHello offers ~40 suites; a longer list is cut with a count
_VERSION_ORDER = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True)
class Answered:
    """A ClientHello the same backend answered with a ServerHello: proof of a version (and SNI) it accepts.

    Attributes:
        handshake: the captured handshake, or a probe's own handshake.
        where: how evidence cites it: ``frame 12 (file)`` or ``probe of host:port``.
    """

    handshake: Handshake
    where: str


def refused_before_server_hello(handshake: Handshake) -> bool:
    """The backend refused the ClientHello: a fatal alert from the server, or the connection ended, and
    nothing of the backend's flight (ServerHello, certificate, request, encrypted records) came before.

    Judged on the whole handshake, not one alert number: stacks differ in what they send (70, 40, 112, 71, or
    just a close), so the causes read the offer and what else the backend accepted.
    """
    if handshake.client_hello is None or handshake.non_tls_reply is not None:
        return False
    if handshake.version is not None or handshake.server_chain or handshake.certificate_request is not None:
        return False
    if handshake.encrypted_records or handshake.outcome is not Outcome.FAILED:
        return False
    alert = first_fatal(handshake)
    return alert is None or alert.sender == "server"


def offer_accepts(offer: ClientHelloOffer, version: str) -> bool:
    """Whether a server may choose `version` for this ClientHello: one of its supported_versions, or without
    that extension, any version up to the legacy version (TLS 1.2 and older negotiate downwards)."""
    if offer.supported_versions:
        return version in offer.supported_versions
    if offer.legacy_version in _VERSION_ORDER and version in _VERSION_ORDER:
        return _VERSION_ORDER.index(version) <= _VERSION_ORDER.index(offer.legacy_version)
    return version == offer.legacy_version


def answered_by_backend(facts: Facts, handshake: Handshake) -> list[Answered]:
    """Other ClientHellos to the same backend (its address; a probe of its address or name) that it
    answered with a ServerHello, captured ones first."""
    found = [Answered(other, _where(other)) for other in facts.evidence.handshakes
             if other is not handshake and other.server == handshake.server and other.version is not None]
    servers = {h.server for h in facts.evidence.handshakes}
    lone = len(servers) == 1 and len(facts.evidence.probes) == 1
    for probe in facts.evidence.probes:
        matched = find_probe(handshake, [probe], single_backend=lone)
        if matched is not None and probe.handshake.version is not None:
            found.append(Answered(probe.handshake, f"probe of {probe.target}"
                                  + (f" via {probe.via}" if probe.via else "")))
    return found


def answered_with_sni(facts: Facts, handshake: Handshake) -> Answered | None:
    """For a refused ClientHello without SNI: another ClientHello to the same backend, with a server name,
    that it answered in a version this one offered too: the name, not the version, made the difference."""
    offer = handshake.client_hello
    if handshake.sni or offer is None or not refused_before_server_hello(handshake):
        return None
    return next((a for a in answered_by_backend(facts, handshake) if a.handshake.sni
                 and a.handshake.version and offer_accepts(offer, a.handshake.version)), None)


def offer_line(handshake: Handshake, first: bool, suites: bool = False) -> str:
    """``frame 4 (file): ClientHello from MP to backend (SNI …) offers TLSv1.2`` (with the suites when
    asked)."""
    offer = handshake.client_hello
    frame = offer.frame if offer is not None and offer.frame is not None else (
        handshake.frames[0] if handshake.frames else None)
    line = (frame_prefix(frame, handshake, first)
            + f"ClientHello from {handshake.client} to {handshake.server} ({sni_phrase(handshake)})")
    if offer is None:
        return line
    line += " offers " + versions_text(handshake)
    if suites:
        line += f" and {len(offer.cipher_suites)} cipher suite(s): " + suites_text(handshake)
    return line


def sni_phrase(handshake: Handshake) -> str:
    """Whether the MP sent SNI, and which name."""
    return f"SNI {handshake.sni}" if handshake.sni else "no SNI: the server_name extension is absent"


def versions_text(handshake: Handshake) -> str:
    offer = handshake.client_hello
    return ", ".join(offer.versions) if offer is not None else ""


def suites_text(handshake: Handshake) -> str:
    offer = handshake.client_hello
    if offer is None:
        return ""
    names = list(offer.cipher_suites[:_LISTED_SUITES])
    more = len(offer.cipher_suites) - len(names)
    return ", ".join(names) + (f" (and {more} more)" if more > 0 else "")


def jsse_lines(cause: str, evidence: Evidence) -> list[str]:
    """The MP's own words for this cause, quoted with where they were read."""
    # error.cause is often the phrase itself: quoting it twice would only read as a stutter.
    return [f"{sign.source or 'MP log'}: the MP's JSSE said \"{sign.phrase}\""
            + ("" if sign.line.strip() == sign.phrase else f": {sign.line}")
            for sign in signs_for(cause, evidence.jsse_signs)[:_QUOTED_SIGNS]]


def _where(handshake: Handshake) -> str:
    offer = handshake.client_hello
    frame = offer.frame if offer is not None and offer.frame is not None else (
        handshake.frames[0] if handshake.frames else None)
    return frame_prefix(frame, handshake, True).rstrip(": ")

"""cipher-mismatch: the backend refused the ClientHello before any ServerHello because nothing in the offer
suited it (playbook "SSL Handshake Failures": cipher suite mismatch)."""

from __future__ import annotations

from collector.diagnosis.backends import Facts, backend_label, first_fatal, probe_label, server_reaction
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.findings import count_lines, reaction_line
from collector.diagnosis.negotiation import (
    answered_by_backend,
    answered_with_sni,
    jsse_lines,
    offer_accepts,
    offer_line,
    refused_before_server_hello,
    versions_text,
)
from collector.diagnosis.probed import PROBED, capture_undecided, probed_line, surveyed, version_lines
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)
from collector.tls.handshake import Handshake

CAUSE = Cause.CIPHER_MISMATCH.value
# handshake_failure is what OpenSSL, JSSE, Go and nginx send when no suite (or group) is common;
# insufficient_security is RFC 5246's word for "the server requires parameters more secure than offered".
# OpenSSL also sends 40 for an empty client certificate in TLS 1.2, but after its ServerHello: the rule
# only takes a refusal that came before any ServerHello.
REFUSAL_ALERTS = frozenset({40, 71})
_NOT_APPLICABLE = "not applicable: the backend refused the ClientHello, before client authentication"


def cipher_mismatch(facts: Facts) -> Finding | None:
    refused = [h for h in facts.evidence.handshakes if _refused_for_its_offer(facts, h)]
    if not refused:
        return _probed(facts)
    first = refused[0]
    offer = first.client_hello
    assert offer is not None
    lines = [offer_line(first, True, suites=True),
             reaction_line(first),
             "nothing of the backend's flight (no ServerHello) came before the alert: it found no cipher"
             " suite in the offer it would use, or (as close as the capture can tell) no common key-exchange"
             " group or signature algorithm"]
    label = backend_label(first)
    lines.extend(count_lines(facts, label, len([h for h in refused if backend_label(h) == label])))
    lines.extend(jsse_lines(CAUSE, facts.evidence))
    return Finding(label, tuple(lines), {
        "backend": label, "reaction": server_reaction(first), "offered": versions_text(first),
        "suites": str(len(offer.cipher_suites))})


def _probed(facts: Facts) -> Finding | None:
    """No capture decides, and a probe found the backend accepting a version of the MP's offer only with
    suites the MP does not offer."""
    if not capture_undecided(facts.evidence):
        return None
    for probe, survey in surveyed(facts.evidence):
        if not survey.cipher_mismatch:
            continue
        offer = survey.offer
        versions = ", ".join(survey.accepted_protocols)
        lines = [probed_line(probe, f"the MP offers {len(offer.ciphers)} cipher suite(s)"
                                    f" ({offer.ciphers_source}): {', '.join(offer.ciphers)}"),
                 *version_lines(probe, survey)]
        lines.extend(jsse_lines(CAUSE, facts.evidence))
        return Finding(probe_label(probe), tuple(lines), {
            "backend": probe_label(probe), "offered": versions, "suites": str(len(offer.ciphers))},
            PROBED, from_probe=True)
    return None


def _refused_for_its_offer(facts: Facts, handshake: Handshake) -> bool:
    offer = handshake.client_hello
    alert = first_fatal(handshake)
    if offer is None or alert is None or alert.code not in REFUSAL_ALERTS:
        return False
    if not refused_before_server_hello(handshake) or answered_with_sni(facts, handshake) is not None:
        return False  # a later refusal, or one the missing server name explains (sni-required)
    # The same backend agreed elsewhere on a version and a suite this ClientHello offered too: the suites
    # meet, so something else made it refuse.
    return not any(a.handshake.version and a.handshake.cipher in offer.cipher_suites
                   and offer_accepts(offer, a.handshake.version)
                   for a in answered_by_backend(facts, handshake))


SPEC = CauseSpec(
    cause=Cause.CIPHER_MISMATCH,
    rule=cipher_mismatch,
    cites=(Cited.CLIENT_HELLO, Cited.SERVER_HELLO, Cited.ALERT),
    texts=Texts(
        "{backend} refused the ClientHello with {reaction} before any ServerHello: none of the {suites}"
        " cipher suite(s) the message processor offered for {offered} suits it (no common cipher suite, or"
        " no common key-exchange group).",
        "Make the cipher suites meet: set the TargetEndpoint's (or TargetServer's) SSLInfo <Ciphers> to"
        " suites the backend accepts for {offered} (the offered ones are listed in the evidence), or remove"
        " <Ciphers> so the message processor offers its JVM's defaults; or enable one of the offered suites"
        " on the backend (e.g. nginx ssl_ciphers, OpenSSL CipherString / Ciphersuites). If the suites do"
        " meet, compare the key-exchange groups (curves) and signature algorithms both sides allow.",
    ),
    variants={
        PROBED: Texts(
            "A probe found that {backend} accepts {offered} but none of the {suites} cipher suite(s) the"
            " message processor offers: it accepted the handshake only with suites outside that list.",
            "Make the cipher suites meet: set the TargetEndpoint's (or TargetServer's) SSLInfo <Ciphers> to"
            " suites the backend accepts (remove <Ciphers> to offer the JVM's defaults), or enable one of"
            " the offered suites on the backend (e.g. nginx ssl_ciphers). A capture of the failing call on"
            " the message processor would show the refusal itself.",
        ),
    },
    defaults={"offered": "the offered versions", "suites": "offered"},
    report=CauseReport(
        cause=Cause.CIPHER_MISMATCH,
        title="Cause: Cipher suite mismatch",
        body=("The backend answered the Message Processor's ClientHello with a fatal alert and no"
              " ServerHello (the TLS/SSL\n"
              "Handshake Failures playbook's cipher suite mismatch): checked the cipher suites the"
              " ClientHello offered and\n"
              "that nothing of the backend's flight came before its alert. The fix is the `Ciphers` element"
              " of the\n"
              "target's `SSLInfo` or the backend's cipher suites (or key-exchange groups)."),
        wire="the backend refused the ClientHello's cipher suites before any ServerHello",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False, _NOT_APPLICABLE),
            SectionResult(SECTION_CA_MISMATCH, False, _NOT_APPLICABLE),
        ),
        must_gather=("capture", "mp-log", "trace", "proxy-bundle"),
    ),
)

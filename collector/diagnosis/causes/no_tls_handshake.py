"""no-tls-handshake: nothing to judge (no ClientHello in the input); the last rule, which always answers."""

from __future__ import annotations

from collector.diagnosis.backends import Facts, first_fatal, frame_prefix, sent_no_client_hello
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.findings import outcome_phrase
from collector.diagnosis.keymanager import check_keystore
from collector.diagnosis.targets import (
    BackendScope,
    attempt_frames,
    attempts_elsewhere_lines,
    backend_scope,
    split_attempts,
)
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)
from collector.tls.handshake import AttemptEnd

_NOT_RUN = "not run: no handshake to examine"
CONNECTED = "connected"  # TCP connections to the backend closed before any byte: no ClientHello was sent


def no_tls_handshake(facts: Facts) -> Finding | None:
    lines = [f"{label}: " + outcome_phrase(per) for label, per in facts.counts.items()]
    if not facts.evidence.handshakes:
        lines.append("no TLS handshake in: " + (", ".join(facts.evidence.sources) or "the input"))
    # What the keystore alone says is still worth reading (an empty keystore needs no capture to be seen).
    ev = facts.evidence
    lines.extend(check_keystore(ev.keystores, ev.key_alias, ev.keystore, None).evidence)
    scope = backend_scope(ev.targets, ev.handshakes)
    lines.extend(attempts_elsewhere_lines(scope, ev.connection_attempts))
    connected = _connected_without_client_hello(facts, scope)
    if connected:
        server = connected[0].split(" ", 1)[0]
        return Finding(server, (*connected, *lines), {"backend": server, "count": str(len(connected))},
                       CONNECTED)
    return Finding(None, tuple(lines))


def _connected_without_client_hello(facts: Facts, scope: BackendScope) -> list[str]:
    """One line per connection to the backend that carried no ClientHello: closed without a byte, or
    answered only by the backend (an alert to the silence); empty when any ClientHello was seen."""
    ev = facts.evidence
    if any(not sent_no_client_hello(h) for h in ev.handshakes):
        return []
    towards, _ = split_attempts(scope, ev.connection_attempts)
    closed = [a for a in towards if a.end is AttemptEnd.CLOSED_WITHOUT_DATA]
    lines = [f"{a.server} ← {a.client}: TCP connected and closed before any byte ({attempt_frames([a])})"
             for a in closed]
    for handshake in ev.handshakes:
        if scope.includes(handshake.server):
            alert = first_fatal(handshake)
            answer = f"fatal alert {alert.description} ({alert.code})" if alert else "bytes"
            where = frame_prefix(alert.frame if alert else None, handshake, True)
            lines.append(f"{handshake.server} ← {handshake.client}: TCP connected, no ClientHello; the"
                         f" backend answered the silence with {answer} ({where.rstrip(': ')})")
    return lines


SPEC = CauseSpec(
    cause=Cause.NO_TLS_HANDSHAKE,
    rule=no_tls_handshake,
    cites=(Cited.CONNECTION_ATTEMPT,),
    texts=Texts(
        "The input holds no TLS handshake to analyze.",
        "Capture while the 503 is reproduced (tcpdump -i any -s 0 host BACKEND_IP -w FILE on the message"
        " processor or the backend) and give collect analyze that file with the keystore documents.",
    ),
    variants={
        CONNECTED: Texts(
            "The message processor connected to {backend} ({count} TCP connection(s)) but sent no"
            " ClientHello: the TLS handshake never started.",
            "Read the message processor's system.log for the message id: JSSE closes without a ClientHello"
            " when the target's SSLInfo <Protocols> or <Ciphers> leave nothing its JDK enables (`No"
            " appropriate protocol`: allow a protocol both sides support, e.g. TLSv1.2); otherwise the"
            " connection was closed before TLS started (connection limits or a TCP wrapper on the backend).",
        ),
    },
    defaults={"backend": "the backend", "count": "some"},
    report=CauseReport(
        cause=Cause.NO_TLS_HANDSHAKE,
        title="No TLS handshake was captured",
        body=("Nothing in the captures is a TLS handshake between a Message Processor and the backend."
              " Check the"
              " capture hosts,\n"
              "the backend address and port, and that the reproduction ran during the capture window."),
        wire="no TLS handshake was captured",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False, _NOT_RUN),
            SectionResult(SECTION_CA_MISMATCH, False, _NOT_RUN),
        ),
    ),
)

"""connection-refused: the message processor's SYN to the backend was answered by RST, so nothing listens
there; its variants say when the SYNs got no answer at all (something between drops them, which is not a
refusal) and when only the MP's log tells it (no capture of the attempt)."""

from __future__ import annotations

from collections.abc import Sequence

from collector.diagnosis.backends import Facts
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.findings import jsse_sign_lines, outcome_phrase
from collector.diagnosis.jsse_messages import signs_for
from collector.diagnosis.targets import (
    BackendScope,
    attempt_frames,
    attempts_elsewhere_lines,
    backend_scope,
    split_attempts,
    split_endpoint,
)
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)
from collector.tls.handshake import AttemptEnd, ConnectionAttempt

UNANSWERED = "unanswered"  # SYNs without SYN-ACK or RST: dropped on the way, not refused
FROM_LOG = "from-log"  # no capture of the attempt: the MP's own words name it
TIMED_OUT_IN_LOG = "timed-out-in-log"  # no capture, and the MP's words say the connect timed out (unanswered)
_TIMEOUT = "Connect timed out"  # the JSSE phrase (`jsse_messages`) of a connect nobody answered
_NOT_APPLICABLE = "not applicable: no TLS connection was made (the TCP connection failed)"


def connection_refused(facts: Facts) -> Finding | None:
    evidence = facts.evidence
    scope = backend_scope(evidence.targets, evidence.handshakes)
    towards, _ = split_attempts(scope, evidence.connection_attempts)
    refused = [a for a in towards if a.end is AttemptEnd.REFUSED]
    if refused:
        return _attempts_finding(facts, scope, refused, "")
    unanswered = [a for a in towards if a.end is AttemptEnd.UNANSWERED]
    reached = [h for h in evidence.handshakes if scope.includes(h.server)]
    # A single SYN at the very end of a capture may have been answered after it stopped; a retransmitted
    # one was not, and with nothing else towards the backend the unanswered ones are all there is to tell.
    if unanswered and (not reached or any(_retransmitted(a) for a in unanswered)):
        return _attempts_finding(facts, scope, unanswered, UNANSWERED)
    said = jsse_sign_lines(Cause.CONNECTION_REFUSED.value, evidence.jsse_signs)
    if said and not towards and not reached:
        lines = [*said, "no capture shows a connection attempt to the backend: the message processor's log is"
                 " the only witness"]
        lines.extend(_target_lines(scope))
        lines.extend(attempts_elsewhere_lines(scope, evidence.connection_attempts))
        only = scope.targets[0] if len(scope.targets) == 1 else None
        values = {"target": only.describe() if only else "",
                  "backend": f"{only.host}:{only.effective_port}" if only else ""}
        says_refused = any(s.phrase != _TIMEOUT
                           for s in signs_for(Cause.CONNECTION_REFUSED.value, evidence.jsse_signs))
        variant = FROM_LOG if says_refused else TIMED_OUT_IN_LOG
        return Finding(values["backend"] or None, tuple(lines), values, variant)
    return None


def _attempts_finding(facts: Facts, scope: BackendScope, attempts: Sequence[ConnectionAttempt],
                      variant: str) -> Finding:
    first = attempts[0]
    server = first.server
    same = [a for a in attempts if a.server == server]
    evidence = facts.evidence
    where = f"frame {first.frames[0]} ({first.source})" if first.frames else (first.source or "capture")
    if first.end is AttemptEnd.REFUSED:
        last = f" at frame {first.frames[1]}" if first.frames else ""
        lines = [f"{where}: SYN from {first.client} to {server} answered by RST{last}: nothing accepts"
                 f" connections on port {split_endpoint(server)[1]} there"]
    else:
        lines = [f"{where}: SYN from {first.client} to {server} got no answer (no SYN-ACK, no RST)"
                 + ("; it was sent again" if _retransmitted(first) else
                    "; it was sent once, near the capture's end it may have been answered later")]
    lines.append(f"{len(same)} connection attempt(s) to {server} {first.end.value} ({attempt_frames(same)})")
    others = [a.server for a in attempts if a.server != server]
    lines.extend(f"{other}: {others.count(other)} connection attempt(s) {first.end.value} too"
                 for other in dict.fromkeys(others))
    lines.extend(f"{label}: {outcome_phrase(per)} (TLS handshakes to the backend in the same input)"
                 for label, per in facts.counts.items() if scope.includes(label.split(" ", 1)[0]))
    lines.extend(_target_lines(scope, server))
    lines.extend(attempts_elsewhere_lines(scope, evidence.connection_attempts))
    # The MP's words agree only when they tell the same ending: a refusal, or a connect that timed out.
    timed_out = first.end is AttemptEnd.UNANSWERED
    agreeing = [s for s in evidence.jsse_signs if (s.phrase == _TIMEOUT) is timed_out]
    lines.extend(jsse_sign_lines(Cause.CONNECTION_REFUSED.value, agreeing))
    target = scope.target_for(server)
    values = {"backend": server, "count": str(len(attempts)), "port": str(split_endpoint(server)[1]),
              "target": target.describe() if target else ""}
    return Finding(server, tuple(lines), values, variant)


def _target_lines(scope: BackendScope, server: str | None = None) -> list[str]:
    """Which target the failing endpoint is, as the resolution names it."""
    if not scope.targets:
        return ["no resolution (edge/resolution.json) in the input: the backend is where the message"
                " processor's connections went"]
    target = scope.target_for(server) if server else None
    if target is not None:
        via = f", addresses {', '.join(target.addresses)}" if target.addresses else ""
        return [f"{target.source or 'resolution'}: {target.describe()}{via} is this backend"]
    return [f"{t.source or 'resolution'}: {t.describe()}" for t in scope.targets]


def _retransmitted(attempt: ConnectionAttempt) -> bool:
    return attempt.frames is not None and attempt.frames[1] != attempt.frames[0]


SPEC = CauseSpec(
    cause=Cause.CONNECTION_REFUSED,
    rule=connection_refused,
    cites=(Cited.CONNECTION_ATTEMPT,),
    texts=Texts(
        "The backend refused the message processor's connection: each SYN to {backend} was answered by RST"
        " ({count} attempt(s)), so nothing accepts connections on port {port} there.",
        "Start the backend service on {backend}, or correct {target} to name the host and port where the"
        " backend listens (the TargetEndpoint <URL>, or the TargetServer's host and port); if the service"
        " runs, look for a firewall on the backend host that answers with a reset (e.g. an iptables REJECT"
        " rule).",
    ),
    variants={
        UNANSWERED: Texts(
            "The message processor's connection attempts to {backend} got no answer at all ({count} SYN(s)"
            " without SYN-ACK or RST): something on the way drops them; this is not a refused connection.",
            "Open the path from the message processors to {backend}: a firewall, security group or route"
            " drops the SYNs (or the host is down); if {target} names the wrong host or port, correct the"
            " TargetEndpoint <URL> or the TargetServer's host and port.",
        ),
        FROM_LOG: Texts(
            "The message processor's log says its connection to {backend} was refused"
            " (java.net.ConnectException: Connection refused); no capture shows the attempt.",
            "Start the backend service, or correct {target} to name the host and port where the backend"
            " listens (the TargetEndpoint <URL>, or the TargetServer's host and port); capture on a message"
            " processor while reproducing to see the SYN and the RST.",
        ),
        TIMED_OUT_IN_LOG: Texts(
            "The message processor's log says its connection to {backend} timed out"
            " (java.net.SocketTimeoutException: Connect timed out): nothing answered its SYN, which is not a"
            " refused connection; no capture shows the attempt.",
            "Open the path from the message processors to {backend}: a firewall, security group or route"
            " drops the SYNs (or the host is down); if {target} names the wrong host or port, correct the"
            " TargetEndpoint <URL> or the TargetServer's host and port. Capture on a message processor while"
            " reproducing to see the unanswered SYNs.",
        ),
    },
    defaults={"count": "some", "port": "that port", "target": "the target"},
    report=CauseReport(
        cause=Cause.CONNECTION_REFUSED,
        title="The backend refused the connection",
        body=("The Message Processor's TCP connection to the backend was refused (its SYN was answered by"
              " RST), so no TLS\n"
              "handshake took place: nothing listens on that host and port, or a firewall there resets the"
              " connection. Check the\n"
              "backend service and the TargetEndpoint `<URL>` or TargetServer host and port (JSSE logs"
              " `Connection refused`)."),
        wire="the SYN to the backend was answered by RST: no TLS handshake took place",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False, _NOT_APPLICABLE),
            SectionResult(SECTION_CA_MISMATCH, False, _NOT_APPLICABLE),
        ),
        must_gather=("capture", "mp-log", "proxy-bundle"),
    ),
)

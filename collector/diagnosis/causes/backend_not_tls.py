"""backend-not-tls: the backend answered the ClientHello with bytes that are not TLS records (a plaintext HTTP
port answers `HTTP/1.1 400 Bad Request`), so the target speaks TLS to a port that does not."""

from __future__ import annotations

from collector.diagnosis.backends import Facts, backend_label, frame_prefix
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.findings import count_lines, jsse_sign_lines
from collector.diagnosis.targets import BackendScope, attempts_elsewhere_lines, backend_scope, split_endpoint
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)
from collector.tls.handshake import REPLY_BYTES, Handshake, NonTlsReply

OTHER = "other"  # the reply is not HTTP: some other plaintext service listens there
FROM_LOG = "from-log"  # no capture of the reply: the MP's own words name it
_QUOTE = 48  # characters of the reply quoted in the summary
_NOT_APPLICABLE = "not applicable: the backend did not answer in TLS"


def backend_not_tls(facts: Facts) -> Finding | None:
    evidence = facts.evidence
    scope = backend_scope(evidence.targets, evidence.handshakes)
    answered = [h for h in evidence.handshakes if _answered_in_plaintext(h) and scope.includes(h.server)]
    if answered:
        return _reply_finding(facts, scope, answered)
    said = jsse_sign_lines(Cause.BACKEND_NOT_TLS.value, evidence.jsse_signs)
    reached = [h for h in evidence.handshakes if scope.includes(h.server)]
    towards = [a for a in evidence.connection_attempts if scope.includes(a.server)]
    if said and not reached and not towards:
        lines = [*said, "no capture shows the backend's reply: the message processor's log is the only"
                 " witness"]
        lines.extend(f"{t.source or 'resolution'}: {t.describe()}" for t in scope.targets)
        only = scope.targets[0] if len(scope.targets) == 1 else None
        values = {"target": only.describe() if only else "",
                  "backend": f"{only.host}:{only.effective_port}" if only else "",
                  "port": str(only.effective_port) if only else ""}
        return Finding(values["backend"] or None, tuple(lines), values, FROM_LOG)
    return None


def _answered_in_plaintext(handshake: Handshake) -> bool:
    """The backend's first bytes were not TLS: no ServerHello came before them (a non-TLS reply after a
    finished handshake is damage, not this cause)."""
    reply = handshake.non_tls_reply
    return (reply is not None and reply.sender == "server" and handshake.version is None
            and not handshake.server_chain)


def _reply_finding(facts: Facts, scope: BackendScope, answered: list[Handshake]) -> Finding:
    first = answered[0]
    reply = first.non_tls_reply
    assert reply is not None
    label = backend_label(first)
    hello = frame_prefix(first.frames[0] if first.frames else None, first, True)
    lines = [hello + f"ClientHello from {first.client} to {first.server}"
             + (f" (SNI {first.sni})" if first.sni else " (no SNI)"),
             frame_prefix(reply.frame, first, False) + f'the backend answered "{reply.first_bytes}"'
             + ("…" if len(reply.first_bytes) >= REPLY_BYTES else "") + ", which is not a TLS record"]
    lines.extend(count_lines(facts, label, len([h for h in answered if backend_label(h) == label])))
    target = scope.target_for(first.server)
    if target is not None:
        lines.append(f"{target.source or 'resolution'}: {target.describe()} is this backend"
                     + ("; its SSLInfo enables TLS" if target.ssl_enabled else ""))
    lines.extend(attempts_elsewhere_lines(scope, facts.evidence.connection_attempts))
    lines.extend(jsse_sign_lines(Cause.BACKEND_NOT_TLS.value, facts.evidence.jsse_signs))
    values = {"backend": label, "reply": _quote(reply), "port": str(split_endpoint(first.server)[1]),
              "target": target.describe() if target else ""}
    return Finding(label, tuple(lines), values, "" if _is_http(reply) else OTHER)


def _is_http(reply: NonTlsReply) -> bool:
    return reply.first_bytes.startswith("HTTP/")


def _quote(reply: NonTlsReply) -> str:
    """The reply's first line (escaped already), cut short, and an HTTP server's name: ``"HTTP/1.1 400 Bad
    Request" from nginx/1.22.1``."""
    lines = reply.first_bytes.split("\\r\\n")
    first = lines[0].split("\\n", 1)[0]
    if len(first) > _QUOTE:
        first = first[:_QUOTE]
        escape = first.rfind("\\")
        if escape >= _QUOTE - 3:  # do not cut an escape (\\xNN) in half
            first = first[:escape]
        first += "…"
    # The last line may be cut by the reader's limit: only a whole header is quoted.
    server = next((line for line in lines[1:-1] if line.lower().startswith("server:")), None)
    return f'"{first}"' + (f" from {server[7:].strip()}" if server and _is_http(reply) else "")


SPEC = CauseSpec(
    cause=Cause.BACKEND_NOT_TLS,
    rule=backend_not_tls,
    cites=(Cited.CLIENT_HELLO, Cited.NON_TLS_REPLY),
    texts=Texts(
        "The backend {backend} answered the message processor's ClientHello with HTTP instead of TLS"
        " ({reply}): port {port} speaks plaintext HTTP, so an https:// target reaches a plaintext port, or a"
        " proxy in front of the backend speaks HTTP there.",
        "Point {target} at the port where the backend (or the TLS-terminating proxy or load balancer in"
        " front of it) speaks TLS: correct the TargetEndpoint <URL> or the TargetServer's port. If the"
        " service on port {port} is meant to be plaintext, call it with an http:// <URL> or turn TLS off in"
        " the TargetServer's SSLInfo (<Enabled>false</Enabled>).",
    ),
    variants={
        OTHER: Texts(
            "The backend {backend} answered the message processor's ClientHello with bytes that are not TLS"
            " ({reply}): port {port} runs some other plaintext service.",
            "Point {target} at the backend's TLS port: correct the TargetEndpoint <URL> or the TargetServer's"
            " host and port (its SSLInfo <Enabled>true</Enabled> makes the message processor speak TLS"
            " there).",
        ),
        FROM_LOG: Texts(
            "The message processor's log says the backend {backend} did not answer in TLS (JSSE: Unsupported"
            " or unrecognized SSL message); no capture shows the reply.",
            "Check that {target} names the port where the backend speaks TLS (the TargetEndpoint <URL>, or"
            " the TargetServer's port with SSLInfo <Enabled>true</Enabled>); a plaintext service on port"
            " {port} is called with an http:// <URL> instead. Capture on a message processor while"
            " reproducing to see the reply.",
        ),
    },
    defaults={"reply": "non-TLS bytes", "port": "that port", "target": "the target"},
    report=CauseReport(
        cause=Cause.BACKEND_NOT_TLS,
        title="The backend did not answer in TLS",
        body=("The Message Processor sent a ClientHello and the backend answered with bytes that are not TLS"
              " (typically\n"
              "`HTTP/1.1 400 Bad Request` from a plaintext HTTP port). The target's `<URL>` or TargetServer"
              " port points at a\n"
              "port that does not speak TLS (JSSE logs `Unsupported or unrecognized SSL message`)."),
        wire="the backend answered the ClientHello with bytes that are not TLS",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False, _NOT_APPLICABLE),
            SectionResult(SECTION_CA_MISMATCH, False, _NOT_APPLICABLE),
        ),
        must_gather=("capture", "mp-log", "proxy-bundle"),
    ),
)

"""protocol-mismatch: the message processor and the backend share no TLS version (playbook "SSL Handshake
Failures": protocol mismatch)."""

from __future__ import annotations

from collector.diagnosis.backends import (
    Facts,
    backend_label,
    first_fatal,
    frame_prefix,
    probe_label,
    server_reaction,
)
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.findings import count_lines, reaction_line
from collector.diagnosis.jsse_messages import signs_for
from collector.diagnosis.negotiation import (
    Answered,
    answered_by_backend,
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

CAUSE = Cause.PROTOCOL_MISMATCH.value
# RFC 8446 protocol_version: most stacks send it for a version they do not support; others answer with
# handshake_failure (40) or just close, which is why a refusal is also judged by what the backend accepts.
PROTOCOL_VERSION = 70
UNRECOGNIZED_NAME = 112  # names sni-required, not a version problem
NO_APPROPRIATE_PROTOCOL = "No appropriate protocol"  # the `jsse_messages` phrase of JSSE refusing to start
_NOT_APPLICABLE = "not applicable: the handshake failed on the TLS version, before client authentication"


def protocol_mismatch(facts: Facts) -> Finding | None:
    handshakes = facts.evidence.handshakes
    # The strongest sign first: an alert that names the version, then a version chosen that was not offered,
    # then a refusal whose offer misses every version the backend was seen to accept.
    for variant in _STRENGTH:
        first = next((h for h in handshakes if _variant(facts, h) == variant), None)
        if first is not None:
            return _finding(facts, first, variant)
    return _no_client_hello(facts) or _probed(facts)


def _probed(facts: Facts) -> Finding | None:
    """No capture decides, and a probe offered the MP's versions one by one: the backend refused each."""
    if not capture_undecided(facts.evidence):
        return None
    for probe, survey in surveyed(facts.evidence):
        if not survey.protocol_mismatch:
            continue
        offered = ", ".join(survey.offer.protocols)
        own = probe.handshake.version
        accepted = f" (it accepted {own} from the probe)" if own else ""
        lines = [probed_line(probe, f"the MP offers {offered} ({survey.offer.protocols_source})"),
                 *version_lines(probe, survey)]
        if probe.handshake.version:
            lines.append(probed_line(probe, f"the probe's own handshake, any version, got"
                                            f" {probe.handshake.version}"))
        lines.extend(jsse_lines(CAUSE, facts.evidence))
        return Finding(probe_label(probe), tuple(lines),
                       {"backend": probe_label(probe), "offered": offered, "accepted": accepted},
                       PROBED, from_probe=True)
    return None


def _variant(facts: Facts, handshake: Handshake) -> str | None:
    """Which sign of a version mismatch this handshake shows (a key of the spec's variants), or ``None``."""
    alert = first_fatal(handshake)
    if alert is not None and alert.code == PROTOCOL_VERSION:
        return ""
    offer = handshake.client_hello
    if offer is None:
        return None
    if handshake.version is not None and not offer_accepts(offer, handshake.version):
        # A handshake that completed and carried HTTP spoke the version both sides chose, whatever it was.
        return "unoffered" if alert is not None or handshake.http_status is None else None
    if not refused_before_server_hello(handshake) or (alert is not None and alert.code == UNRECOGNIZED_NAME):
        return None
    accepted = {a.handshake.version for a in answered_by_backend(facts, handshake) if a.handshake.version}
    # Nothing known the backend accepts, or it accepts one of these versions: not a version problem.
    if not accepted or any(offer_accepts(offer, version) for version in accepted):
        return None
    return "refused"


_STRENGTH = ("", "unoffered", "refused")


def _finding(facts: Facts, handshake: Handshake, variant: str) -> Finding:
    lines = [offer_line(handshake, True)]
    answered = answered_by_backend(facts, handshake)
    values = {"accepted": _accepted_text(answered)}
    if variant == "unoffered":
        lines.append(f"ServerHello: the backend chose {handshake.version}, which the ClientHello did not"
                     " offer")
        values["selected"] = handshake.version or ""
    elif handshake.version:
        lines.append(f"ServerHello: the backend chose {handshake.version}")
    lines.append(reaction_line(handshake))
    if variant == "refused":
        lines.extend(f"{a.where}: the backend answered a ClientHello with a ServerHello for"
                     f" {a.handshake.version}" for a in answered[:3])
    label = backend_label(handshake)
    same = [h for h in facts.evidence.handshakes
            if backend_label(h) == label and _variant(facts, h) is not None]
    lines.extend(count_lines(facts, label, len(same)))
    lines.extend(jsse_lines(CAUSE, facts.evidence))
    return Finding(label, tuple(lines), {"backend": label, "offered": versions_text(handshake),
                                         "reaction": server_reaction(handshake), **values}, variant)


def _accepted_text(answered: list[Answered]) -> str:
    versions = sorted({a.handshake.version for a in answered if a.handshake.version})
    return f" (it was seen to accept {', '.join(versions)})" if versions else ""


def _no_client_hello(facts: Facts) -> Finding | None:
    """The MP's JSSE refused to start (no version it may use): no ClientHello leaves the MP, so only its log
    can name the cause; the capture shows at most a connection that carried none."""
    evidence = facts.evidence
    if any(h.client_hello is not None for h in evidence.handshakes):
        return None
    own = [s for s in signs_for(CAUSE, evidence.jsse_signs) if s.causes == (CAUSE,)]
    if not own:
        return None
    lines = []
    silent = list(evidence.handshakes)
    for handshake in silent[:3]:
        lines.append(frame_prefix(handshake.frames[0] if handshake.frames else None, handshake, True)
                     + f"connection {handshake.client} → {handshake.server} carried no ClientHello"
                     + f" ({server_reaction(handshake)})")
    if not silent:
        lines.append("no ClientHello in: " + (", ".join(evidence.sources) or "the input"))
    lines.extend(jsse_lines(CAUSE, evidence))
    backend = silent[0].server if len({h.server for h in silent}) == 1 else None
    # "No appropriate protocol": JSSE refused before sending anything; any other sign of this cause (the
    # backend's protocol_version) means a ClientHello left the MP that the input does not hold.
    refused_to_start = any(s.phrase == NO_APPROPRIATE_PROTOCOL for s in own)
    return Finding(backend, tuple(lines), {"backend": backend or "", "phrase": own[0].phrase},
                   "no-client-hello" if refused_to_start else "mp-log")


SPEC = CauseSpec(
    cause=Cause.PROTOCOL_MISMATCH,
    rule=protocol_mismatch,
    cites=(Cited.CLIENT_HELLO, Cited.SERVER_HELLO, Cited.ALERT),
    texts=Texts(
        "The message processor and {backend} share no TLS version: the ClientHello offered {offered} and the"
        " handshake ended with {reaction}.",
        "Make the versions meet: set the TargetEndpoint's (or TargetServer's) SSLInfo <Protocols> to a"
        " version {backend} accepts{accepted}, or enable {offered} in the backend's TLS configuration (e.g."
        " nginx ssl_protocols, OpenSSL MinProtocol/MaxProtocol). Without <Protocols> the message processor"
        " offers its JVM's default versions.",
    ),
    variants={
        "unoffered": Texts(
            "{backend} chose {selected}, a TLS version the message processor did not offer ({offered}); the"
            " handshake ended with {reaction}.",
            "Make the versions meet: set the TargetEndpoint's (or TargetServer's) SSLInfo <Protocols> to"
            " include a version the backend supports, or configure the backend to accept {offered}.",
        ),
        "refused": Texts(
            "{backend} refused a ClientHello offering only {offered} ({reaction}) and answered others in"
            " versions this one did not offer: the TLS versions do not meet.",
            "Make the versions meet: set the TargetEndpoint's (or TargetServer's) SSLInfo <Protocols> to a"
            " version {backend} accepts{accepted}, or enable {offered} in the backend's TLS configuration."
            " If the backend does accept {offered}, compare the cipher suites both sides allow (SSLInfo"
            " <Ciphers>).",
        ),
        PROBED: Texts(
            "A probe offering {backend} the message processor's TLS versions ({offered}) one at a time was"
            " refused each time{accepted}: they share no TLS version.",
            "Make the versions meet: set the TargetEndpoint's (or TargetServer's) SSLInfo <Protocols> to a"
            " version {backend} accepts{accepted}, or enable {offered} in the backend's TLS configuration"
            " (e.g. nginx ssl_protocols). A capture of the failing call on the message processor would show"
            " the refusal itself.",
        ),
        "mp-log": Texts(
            "The message processor's log says {backend} refused its TLS versions (\"{phrase}\"); the input"
            " holds no ClientHello to show which versions were offered.",
            "Make the versions meet: set the TargetEndpoint's (or TargetServer's) SSLInfo <Protocols> to a"
            " version the backend accepts, or enable the message processor's versions on the backend;"
            " capture the failing call on the message processor (tcpdump) to see the versions offered.",
        ),
        "no-client-hello": Texts(
            "The message processor sent no ClientHello to {backend}: its JSSE found no TLS version it may use"
            " (\"No appropriate protocol\").",
            "The versions in the TargetEndpoint's (or TargetServer's) SSLInfo <Protocols> are all disabled in"
            " the message processor's JVM (jdk.tls.disabledAlgorithms in the JDK's java.security disables"
            " SSLv3, TLSv1 and TLSv1.1), or its SSLInfo <Ciphers> hold no suite of those versions: set"
            " <Protocols> to TLSv1.2 and/or TLSv1.3 that the backend accepts, with <Ciphers> of those"
            " versions (or none), and redeploy.",
        ),
    },
    defaults={"offered": "the versions the message processor offers", "accepted": "",
              "selected": "a version", "phrase": "Received fatal alert: protocol_version"},
    report=CauseReport(
        cause=Cause.PROTOCOL_MISMATCH,
        title="Cause: Protocol mismatch",
        body=("The Message Processor and the backend share no TLS version (the TLS/SSL Handshake Failures"
              " playbook's\n"
              "protocol mismatch): checked the versions the ClientHello offered against what the backend\n"
              "answered (alert protocol_version, a version chosen that was not offered, or the versions it"
              " accepted\n"
              "on other connections) and the MP's own log. The fix is the `Protocols` element of the target's"
              " `SSLInfo`\n"
              "or the backend's TLS versions."),
        wire="the ClientHello's TLS versions and the backend's do not meet",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False, _NOT_APPLICABLE),
            SectionResult(SECTION_CA_MISMATCH, False, _NOT_APPLICABLE),
        ),
        must_gather=("capture", "mp-log", "trace", "proxy-bundle"),
    ),
)

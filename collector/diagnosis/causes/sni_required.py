"""sni-required: the backend refused the ClientHello for its server name: none sent, or one it does not serve
(playbook "SSL Handshake Failures": SNI-enabled server)."""

from __future__ import annotations

from collector.diagnosis.backends import Facts, backend_label, first_fatal, probe_label, server_reaction
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.findings import count_lines, reaction_line
from collector.diagnosis.negotiation import Answered, answered_with_sni, jsse_lines, offer_line
from collector.diagnosis.probed import PROBED, capture_undecided, probed_line, surveyed
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)
from collector.tls.handshake import Handshake

CAUSE = Cause.SNI_REQUIRED.value
UNRECOGNIZED_NAME = 112  # RFC 6066: fatal when the server will not go on without a name it serves
SNI_DOC = "https://docs.apigee.com/how-to-guides/configuring-sni-between-mp-and-bs"
_NOT_APPLICABLE = ("not applicable: the backend refused the ClientHello's server name, before client"
                   " authentication")


def sni_required(facts: Facts) -> Finding | None:
    handshakes = facts.evidence.handshakes
    named = next((h for h in handshakes if _refused_name(h)), None)
    if named is not None:
        return _finding(facts, named, None, [h for h in handshakes if _refused_name(h)])
    # Other stacks refuse a missing name with another alert (40) or a close: the same backend answering a
    # ClientHello that carried one shows it is the name.
    compared = [(h, answered_with_sni(facts, h)) for h in handshakes]
    refused = [(h, a) for h, a in compared if a is not None]
    if not refused:
        return _probed(facts)
    first, answered = refused[0]
    return _finding(facts, first, answered, [h for h, _ in refused])


def _probed(facts: Facts) -> Finding | None:
    """No capture decides, and a probe saw the backend answer a ClientHello with a server name and refuse the
    same one without."""
    if not capture_undecided(facts.evidence):
        return None
    for probe, survey in surveyed(facts.evidence):
        check = survey.sni
        if check is None or not check.required:
            continue
        lines = [probed_line(probe, check.with_name), probed_line(probe, check.without_name)]
        lines.extend(jsse_lines(CAUSE, facts.evidence))
        return Finding(probe_label(probe), tuple(lines),
                       {"backend": probe_label(probe), "sni": check.name or "",
                        "served_hint": f" (the backend answered SNI {check.name})" if check.name else ""},
                       PROBED, from_probe=True)
    return None


def _refused_name(handshake: Handshake) -> bool:
    alert = first_fatal(handshake)
    return alert is not None and alert.code == UNRECOGNIZED_NAME and alert.sender == "server"


def _finding(facts: Facts, first: Handshake, answered: Answered | None, refused: list[Handshake]) -> Finding:
    lines = [offer_line(first, True), reaction_line(first)]
    values = {"backend": backend_label(first), "reaction": server_reaction(first), "sni": first.sni or ""}
    if answered is not None:
        lines.append(f"{answered.where}: a ClientHello with SNI {answered.handshake.sni} to the same backend"
                     f" was answered with a ServerHello ({answered.handshake.version})")
        values["served_hint"] = f" (the backend answered SNI {answered.handshake.sni})"
    label = backend_label(first)
    lines.extend(count_lines(facts, label, len([h for h in refused if backend_label(h) == label])))
    lines.extend(jsse_lines(CAUSE, facts.evidence))
    return Finding(label, tuple(lines), values, "wrong-name" if first.sni else "")


_ENABLE_SNI = (
    "Enable SNI on the message processors: Edge for Private Cloud sends none by default. On every"
    " message processor, add conf_system_jsse.enableSNIExtension=true to"
    " /opt/apigee/customer/application/message-processor.properties and restart it"
    " (/opt/apigee/apigee-service/bin/apigee-service edge-message-processor restart); see " + SNI_DOC
    + ". The message processor then sends the host of the TargetEndpoint URL or TargetServer"
    " <Host>{served_hint}, which must be a DNS name: JSSE sends no SNI for an IP address."
)

SPEC = CauseSpec(
    cause=Cause.SNI_REQUIRED,
    rule=sni_required,
    cites=(Cited.CLIENT_HELLO, Cited.SERVER_CERTIFICATE, Cited.ALERT),
    texts=Texts(
        "{backend} refused the ClientHello ({reaction}): the message processor sent no server name (SNI),"
        " and the backend requires one.",
        _ENABLE_SNI,
    ),
    variants={
        PROBED: Texts(
            "A probe found that {backend} refuses a ClientHello without a server name (SNI) and answers one"
            " with SNI {sni}: it requires SNI, which message processors do not send by default.",
            _ENABLE_SNI,
        ),
        "wrong-name": Texts(
            "{backend} refused the ClientHello ({reaction}): it does not serve the server name the message"
            " processor sent (SNI {sni}).",
            "The message processor sends the host of the TargetEndpoint URL (or the TargetServer's <Host>) as"
            " SNI: set it to a name the backend serves{served_hint}, or add {sni} to the backend's server"
            " names (e.g. nginx server_name). SSLInfo <CommonName> only checks the certificate; it does not"
            " change the name sent.",
        ),
    },
    defaults={"sni": "the name sent", "served_hint": ""},
    report=CauseReport(
        cause=Cause.SNI_REQUIRED,
        title="Cause: SNI-enabled server",
        body=("The backend refused the Message Processor's ClientHello for its server name (the TLS/SSL"
              " Handshake Failures\n"
              "playbook's SNI-enabled server): checked whether the ClientHello carried SNI and which name,"
              " the backend's\n"
              "answer (alert unrecognized_name, or a refusal of a ClientHello without SNI while one with a"
              " name was\n"
              "answered) and the MP's own log. Edge for Private Cloud Message Processors send no SNI unless"
              " `conf_system_jsse.enableSNIExtension=true`\n"
              "is set in `message-processor.properties`."),
        wire="the backend refused the ClientHello's server name (SNI)",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False, _NOT_APPLICABLE),
            SectionResult(SECTION_CA_MISMATCH, False, _NOT_APPLICABLE),
        ),
        must_gather=("capture", "mp-log", "trace", "proxy-bundle"),
    ),
)

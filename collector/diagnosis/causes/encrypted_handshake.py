"""encrypted-handshake: TLS 1.3 without a key log; the capture cannot show the client-certificate exchange."""

from __future__ import annotations

from collector.diagnosis.backends import Facts, backend_label, frame_prefix, is_encrypted
from collector.diagnosis.causes.spec import CauseSpec, Cited, Finding, Texts
from collector.diagnosis.findings import count_lines, probe_lines
from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_NO_CLIENT_CERTIFICATE,
    Cause,
    CauseReport,
    SectionResult,
)

PROBED = "probed"  # a probe supplied the CA names, but the keystore documents are missing


def encrypted_handshake(facts: Facts) -> Finding | None:
    opaque = [h for h in facts.evidence.handshakes if is_encrypted(h)]
    if not opaque:
        return None
    first = opaque[0]
    lines = [frame_prefix(first.frames[0] if first.frames else None, first, True)
             + f"{first.version or 'TLS 1.3'} handshake {first.client} → {first.server}"
             + (f" (SNI {first.sni})" if first.sni else "")
             + f": {first.encrypted_records} encrypted record(s) after ServerHello, no key log to read them"]
    probed = [case for case in facts.cases if case.handshake is first]
    for case in probed:
        lines.extend(probe_lines(case) + list(case.check.evidence))
    label = backend_label(first)
    lines.extend(count_lines(facts, label, len([h for h in opaque if backend_label(h) == label])))
    sni_target = f"{first.sni}:{first.server.rsplit(':', 1)[-1]}" if first.sni else first.server
    return Finding(label, tuple(lines), {"backend": label, "target": sni_target}, PROBED if probed else "")


SPEC = CauseSpec(
    cause=Cause.ENCRYPTED_HANDSHAKE,
    rule=encrypted_handshake,
    cites=(Cited.CLIENT_HELLO, Cited.SERVER_HELLO),
    texts=Texts(
        "The handshakes with {backend} use TLS 1.3 and no key log was given, so the certificate request, the"
        " client certificate and the alerts are encrypted in the capture.",
        "Run `collect probe {target}` to read the backend's acceptable CA names, or give collect analyze the"
        " key log (SSLKEYLOGFILE) of the capture, together with the keystore documents; pinning the target to"
        " TLS 1.2 while diagnosing also works.",
    ),
    variants={
        PROBED: Texts(
            "The handshakes with {backend} use TLS 1.3 and no key log was given; the probe shows the"
            " acceptable CA"
            " names, but the keystore documents needed to judge them are missing.",
            "Give collect analyze the keystore, alias and cert documents of the target's keystore (the"
            " playbook's"
            " \"get cert for keystore\" output) with the probe results, or the capture's key log"
            " (SSLKEYLOGFILE).",
        ),
    },
    defaults={"target": "BACKEND:PORT"},
    report=CauseReport(
        cause=Cause.ENCRYPTED_HANDSHAKE,
        title="TLS 1.3: the handshake is encrypted in the capture",
        body=("The capture cannot show the CertificateRequest or the client Certificate, because TLS 1.3"
              " encrypts"
              " them. Run\n"
              "`collect probe BACKEND:PORT` (from the collector or `--via` a Message Processor) to get the"
              " acceptable CA names,\n"
              "or give `collect analyze` a key log."),
        wire="TLS 1.3: the CertificateRequest and the client Certificate are encrypted",
        sections=(
            SectionResult(SECTION_NO_CLIENT_CERTIFICATE, False,
                           "undecided: the capture cannot show whether a certificate was sent (TLS 1.3)"),
            SectionResult(SECTION_CA_MISMATCH, False,
                           "undecided: the acceptable CA names are encrypted; `collect probe` asks the"
                           " backend for"
                           " them"),
        ),
    ),
)

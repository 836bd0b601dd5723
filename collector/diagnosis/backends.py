"""Handshakes grouped per backend, and the client-authentication cases the rules judge (capture or probe)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collector.diagnosis.evidence import Evidence
from collector.diagnosis.keymanager import KeystoreCheck, acceptable_names, check_keystore
from collector.tls.handshake import Alert, CertificateRequest, Handshake, Outcome, ProbeResult


@dataclass(frozen=True)
class ClientAuthCase:
    """One backend connection where the client certificate matters, with what decides the cause.

    Attributes:
        handshake: the captured handshake; for a probe-only case, the probe's own handshake.
        backend: the backend label (`backend_label`).
        request: the CertificateRequest that supplies the CA names (capture, else probe),
            ``None`` when unknown.
        probe: the probe result that supplied them, ``None`` when the capture did.
        observed_empty: True when the capture shows the empty client Certificate; False when it is inferred
            (TLS 1.3 without keys, or no capture at all).
        check: the keystore verdict for these CA names.
    """

    handshake: Handshake
    backend: str
    request: CertificateRequest | None
    probe: ProbeResult | None
    observed_empty: bool
    check: KeystoreCheck


@dataclass(frozen=True)
class Facts:
    """What every rule reads: the evidence, the client-auth cases and the per-backend outcome counts."""

    evidence: Evidence
    cases: tuple[ClientAuthCase, ...]
    counts: dict[str, dict[str, int]]


def backend_label(handshake: Handshake) -> str:
    """``ip:port (sni)`` or ``ip:port``: the name a backend goes by in counts and summaries."""
    return f"{handshake.server} ({handshake.sni})" if handshake.sni else handshake.server


def probe_label(probe: ProbeResult) -> str:
    return f"{probe.target} ({probe.sni})" if probe.sni and probe.sni not in probe.target else probe.target


def count_outcomes(handshakes: Sequence[Handshake]) -> dict[str, dict[str, int]]:
    """Per backend, outcome -> number of handshakes (JSON-ready, in first-seen order)."""
    counts: dict[str, dict[str, int]] = {}
    for handshake in handshakes:
        per = counts.setdefault(backend_label(handshake), {})
        per[handshake.outcome.value] = per.get(handshake.outcome.value, 0) + 1
    return counts


def assess(evidence: Evidence) -> Facts:
    """Build the facts once, so rules stay small and agree with each other."""
    cases = []
    backends = {backend_label(h) for h in evidence.handshakes}
    for handshake in evidence.handshakes:
        empty = handshake.client_certificate is not None and not handshake.client_certificate.sent
        opaque = is_encrypted(handshake)
        if not (empty or opaque):
            continue
        probe = find_probe(handshake, evidence.probes, single_backend=len(backends) == 1)
        request = handshake.certificate_request
        if request is None and probe is not None:
            request = probe.handshake.certificate_request
        if opaque and (probe is None or probe.handshake.certificate_request is None):
            continue  # nothing says this backend asks for a client certificate: encrypted-handshake decides
        cases.append(_case(evidence, handshake, backend_label(handshake), request, probe,
                           observed_empty=empty))
    if not evidence.handshakes:
        for probe in evidence.probes:
            if probe.handshake.certificate_request is not None:
                cases.append(_case(evidence, probe.handshake, probe_label(probe),
                                   probe.handshake.certificate_request, probe, observed_empty=False))
    return Facts(evidence, tuple(cases), count_outcomes(evidence.handshakes))


def find_probe(
    handshake: Handshake, probes: Sequence[ProbeResult], single_backend: bool
) -> ProbeResult | None:
    """The probe of this handshake's backend (by address, or by SNI name and port);
    a lone probe of a lone backend."""
    port = handshake.server.rsplit(":", 1)[-1]
    for probe in probes:
        host, _, probe_port = probe.target.rpartition(":")
        if probe.target == handshake.server or probe.handshake.server == handshake.server:
            return probe
        if probe_port == port and handshake.sni and handshake.sni in (host, probe.sni):
            return probe
    return probes[0] if single_backend and len(probes) == 1 else None


def is_encrypted(handshake: Handshake) -> bool:
    """TLS 1.3 whose certificate exchange could not be read (no key log): opaque, or failed with the client's
    flight unanswered. A decrypted handshake shows the server chain, which TLS 1.3 encrypts otherwise."""
    if handshake.outcome == Outcome.OPAQUE:
        return True
    return (handshake.version == "TLSv1.3" and not handshake.server_chain
            and handshake.certificate_request is None
            and handshake.client_certificate is None and first_fatal(handshake) is None
            and handshake.encrypted_records > 0)


def sent_no_client_hello(handshake: Handshake) -> bool:
    """TCP connected but the client sent no ClientHello: the connection is TLS only because the backend
    answered the silence (OpenSSL sends a decode_error alert when JSSE closes without a ClientHello because
    it allows no protocol its JDK enables)."""
    return (handshake.client_hello is None and handshake.sni is None and handshake.version is None
            and not handshake.server_chain
            and handshake.client_certificate is None and handshake.encrypted_records == 0
            and handshake.non_tls_reply is None)


def server_reaction(handshake: Handshake) -> str:
    """How the backend answered, e.g. ``fatal alert bad_certificate (42) from the server``."""
    alert = first_fatal(handshake)
    if alert is not None:
        who = "the server" if alert.sender == "server" else "the message processor"
        return f"fatal alert {alert.description} ({alert.code}) from {who}"
    if handshake.outcome == Outcome.ESTABLISHED:
        if handshake.http_status is not None:
            return f"handshake completed, then HTTP {handshake.http_status}"
        return "handshake completed"
    if is_encrypted(handshake):
        return "encrypted (TLS 1.3 without a key log)"
    return "the connection ended without an alert"


def first_fatal(handshake: Handshake) -> Alert | None:
    return next((a for a in handshake.alerts if a.level == "fatal"), None)


def frame_prefix(frame: int | None, handshake: Handshake, first: bool) -> str:
    """``frame 7 (file): `` on a handshake's first evidence line, ``frame 9: `` on the next ones."""
    where = f"frame {frame}" if frame is not None else handshake.source or "capture"
    if first and frame is not None and handshake.source:
        where += f" ({handshake.source})"
    return where + ": "


def _case(evidence: Evidence, handshake: Handshake, backend: str, request: CertificateRequest | None,
          probe: ProbeResult | None, observed_empty: bool) -> ClientAuthCase:
    names = acceptable_names(request) if request is not None else None
    check = check_keystore(evidence.keystores, evidence.key_alias, evidence.keystore, names)
    return ClientAuthCase(handshake, backend, request, probe, observed_empty, check)

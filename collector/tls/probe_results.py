"""Probe results as data: alert names, the reaction sentence, the JSON of `probe/results.json`, the
text view."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography import x509

from collector.errors import InputError
from collector.tls.ciphers import alert_name
from collector.tls.handshake import (
    Alert,
    CertificateRequest,
    CertificateSummary,
    ClientCertificate,
    Handshake,
    Outcome,
    ProbeResult,
)
from collector.tls.names import name_to_rfc4514
from collector.tls.survey import render_survey, survey_from_json

NOT_VERIFIED_NOTE = "server certificate not verified"


def make_alert(sender: str, level: int, code: int) -> Alert:
    """An `Alert` from the wire's level byte (1 warning, 2 fatal) and description code."""
    return Alert(sender=sender, level="fatal" if level == 2 else "warning",
                 description=alert_name(code), code=code)


def describe_reaction(alerts: Sequence[Alert], handshake_completed: bool, http_status: int | None,
                      ended: str = "") -> str:
    """The short sentence ProbeResult.reaction holds, e.g. ``fatal alert bad_certificate (42)``.

    `ended` says how the connection ended when no alert and no HTTP answer explain it (``connection reset``…).
    """
    fatal = [a for a in alerts if a.level == "fatal" and a.description != "close_notify"]
    if fatal:
        first = fatal[0]
        who = "" if first.sender == "server" else "the probe sent "
        return f"{who}fatal alert {first.description} ({first.code})"
    if not handshake_completed:
        return f"handshake did not complete: {ended or 'no alert'}"
    if http_status is not None:
        return f"handshake completed, HTTP {http_status}"
    return f"handshake completed, {ended}" if ended else "handshake completed"


def summarize_certificate(cert: x509.Certificate) -> CertificateSummary:
    """A `CertificateSummary` of a parsed certificate (DNs as RFC 4514, dates as ISO 8601 UTC)."""
    return CertificateSummary(
        subject=name_to_rfc4514(cert.subject),
        issuer=name_to_rfc4514(cert.issuer),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        serial=format(cert.serial_number, "x"),
        issuer_der=cert.issuer.public_bytes(),
    )


def probe_result_to_json(result: ProbeResult) -> dict[str, Any]:
    """`ProbeResult.to_json()` plus what a bundle reader needs again: HTTP status and the
    CA names' DER (hex)."""
    data = result.to_json()
    handshake = data["handshake"]
    assert isinstance(handshake, dict)
    handshake["http_status"] = result.handshake.http_status
    request = result.handshake.certificate_request
    if request is not None and isinstance(handshake.get("certificate_request"), dict):
        handshake["certificate_request"]["ca_names_der"] = [der.hex() for der in request.ca_names_der]
    return data


def probe_results_to_json(results: Iterable[ProbeResult]) -> list[dict[str, Any]]:
    """The JSON list written to `probe/results.json`."""
    return [probe_result_to_json(result) for result in results]


def probe_results_from_json(data: object, source: str = "probe results") -> tuple[ProbeResult, ...]:
    """Read back `probe_results_to_json` output (also plain `ProbeResult.to_json()` objects).

    Raises InputError naming `source` and the defect when the data does not have that shape.
    """
    if not isinstance(data, list):
        raise InputError(source, f"expected a JSON list of probe results, found {type(data).__name__}")
    results = []
    for index, item in enumerate(data):
        try:
            results.append(_result_from_json(item))
        except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
            raise InputError(
                source, f"probe result #{index + 1} is malformed ({type(exc).__name__}: {exc})"
            ) from exc
    return tuple(results)


def render_probe_result(result: ProbeResult) -> str:
    """The readable view `collect probe` prints (and SUMMARY.md can quote)."""
    hs = result.handshake
    lines = [f"Target:   {result.target}" + (f" (SNI {result.sni})" if result.sni else " (no SNI)")]
    lines.append(f"Via:      {result.via} (openssl s_client)" if result.via
                 else "Via:      this machine (pyOpenSSL)")
    if hs.version or hs.cipher:
        lines.append(f"TLS:      {hs.version or 'unknown version'}, {hs.cipher or 'unknown cipher'}")
    lines.append(f"Server chain ({NOT_VERIFIED_NOTE}):")
    if hs.server_chain:
        lines.extend(f"  {i} {c.subject}\n      issuer {c.issuer}" for i, c in enumerate(hs.server_chain))
    else:
        lines.append("  (none received)")
    request = hs.certificate_request
    if request is None:
        lines.append("The server did not ask for a client certificate.")
    elif request.ca_names:
        lines.append("Acceptable client certificate CA names:")
        lines.extend(f"  {name}" for name in request.ca_names)
    else:
        lines.append("The server named no acceptable CAs "
                     "(it asked for a client certificate; any issuer may do).")
    sent = hs.client_certificate is not None and hs.client_certificate.sent
    reacting_to = "the client certificate" if sent else "no client certificate"
    lines.append(f"Reaction to {reacting_to}: {result.reaction}")
    if sent:
        accepted = hs.outcome == Outcome.ESTABLISHED and (hs.http_status is None or hs.http_status < 400)
        lines.append("The server accepted the client certificate." if accepted
                     else "The server rejected the client certificate.")
    lines.extend(f"Note: {note}" for note in hs.notes if note != NOT_VERIFIED_NOTE)
    if result.survey is not None:
        lines.extend(render_survey(result.survey))
    return "\n".join(lines)


def _result_from_json(item: Mapping[str, Any]) -> ProbeResult:
    hs = item["handshake"]
    request = hs.get("certificate_request")
    client_cert = hs.get("client_certificate")
    frames = hs.get("frames")
    handshake = Handshake(
        client=str(hs["client"]),
        server=str(hs["server"]),
        sni=hs.get("sni"),
        version=hs.get("version"),
        cipher=hs.get("cipher"),
        server_chain=tuple(_summary_from_json(c) for c in hs.get("server_chain", [])),
        certificate_request=None if request is None else CertificateRequest(
            ca_names=tuple(str(n) for n in request["ca_names"]),
            ca_names_der=tuple(bytes.fromhex(h) for h in request.get("ca_names_der", [])),
            signature_algorithms=tuple(str(s) for s in request.get("signature_algorithms", [])),
        ),
        client_certificate=None if client_cert is None else ClientCertificate(
            sent=bool(client_cert["sent"]),
            chain=tuple(_summary_from_json(c) for c in client_cert.get("chain", [])),
        ),
        alerts=tuple(
            Alert(sender=str(a["from"]), level=str(a["level"]), description=str(a["description"]),
                  code=int(a["code"]))
            for a in hs.get("alerts", [])
        ),
        outcome=Outcome(hs.get("outcome", Outcome.INCOMPLETE.value)),
        source=str(hs.get("source", "probe")),
        frames=(int(frames[0]), int(frames[1])) if frames else None,
        http_status=None if hs.get("http_status") is None else int(hs["http_status"]),
        notes=tuple(str(n) for n in hs.get("notes", [])),
        server_chain_der=tuple(base64.b64decode(d, validate=True) for d in hs.get("server_chain_der", [])),
    )
    return ProbeResult(
        target=str(item["target"]),
        sni=item.get("sni"),
        via=item.get("via"),
        handshake=handshake,
        reaction=str(item["reaction"]),
        survey=survey_from_json(item.get("survey")),
    )


def _summary_from_json(data: Mapping[str, Any]) -> CertificateSummary:
    return CertificateSummary(
        subject=str(data["subject"]),
        issuer=str(data["issuer"]),
        not_before=str(data.get("not_before", "")),
        not_after=str(data.get("not_after", "")),
    )


def format_target(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

"""The probe from a host: run `openssl s_client` on an MP over SSH and read its text
(OpenSSL 1.0.2, 1.1.1, 3.x)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from collector.errors import ProbeError, RemoteError, UsageError
from collector.inventory import load_inventory
from collector.remote import host_steps
from collector.remote.commands import build_s_client_argv
from collector.remote.connection import ConnectionSettings, HostConnection, open_host
from collector.remote.host_steps import PROBE_HANDSHAKE_SECONDS, PROBE_SECONDS, HostCommand
from collector.steps import Step
from collector.tls.ciphers import ALERT_NAMES
from collector.tls.handshake import (
    Alert,
    CertificateRequest,
    CertificateSummary,
    ClientCertificate,
    Handshake,
    Outcome,
    ProbeResult,
)
from collector.tls.jsse_defaults import iana_name
from collector.tls.names import name_from_string, name_to_rfc4514
from collector.tls.probe_results import (
    NOT_VERIFIED_NOTE,
    describe_reaction,
    format_target,
    make_alert,
    summarize_certificate,
)
from collector.tls.survey import AttemptOutcome, AttemptSpec, Offer, check_chain, run_survey

__all__ = ["build_s_client_argv", "parse_s_client_output", "probe_via_host", "probe_via_inventory",
           "survey_via_host"]

EXIT_TIMEOUT = 124  # coreutils `timeout`: the command ran out of time
EXIT_NOT_FOUND = 127  # `timeout` could not run openssl
TEXT_NOTE = "CA names read from openssl s_client text (no DER)"

_ALERT_CODES = {name: code for code, name in ALERT_NAMES.items()}
_ALERT_TEXT = re.compile(r"(?:sslv3|tlsv1|tlsv13|tls) alert ([a-z ]+?)(?::|$)")
_ALERT_NUMBER = re.compile(r"SSL alert number (\d+)")
_CHAIN_SUBJECT = re.compile(r"^\s*(\d+) s:(.*)$")
_CHAIN_ISSUER = re.compile(r"^\s+i:(.*)$")
_CHAIN_VALIDITY = re.compile(r"^\s+v:NotBefore: (.*?); NotAfter: (.*)$")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.DOTALL)
_PROTOCOL = re.compile(r"^\s*Protocol\s*:\s*(\S+)")
_CIPHER = re.compile(r"^\s*Cipher\s*:\s*(\S+)")
_NEW_LINE = re.compile(r"^(?:New|Reused), (\S+), Cipher is (\S+)")
_HTTP_STATUS = re.compile(r"^HTTP/\d(?:\.\d)? (\d{3})\b")
_DNS_FAILURE = re.compile(r"gethostbyname|getaddrinfo|BIO_lookup|name or service not known|"
                          r"nodename nor servname|name resolution|no address associated", re.IGNORECASE)
_REFUSED = re.compile(r"connection refused|errno=111\b", re.IGNORECASE)
_UNREACHABLE = re.compile(r"no route to host|network is unreachable|errno=11[03]\b|errno=101\b",
                          re.IGNORECASE)
_CLIENT_FILES = re.compile(r"(?:could not open file or uri for loading|unable to load|could not read) "
                           r"(?:client )?certificate", re.IGNORECASE)
_UNKNOWN_OPTION = re.compile(r"^.*unknown option:? ?(-\S+).*$", re.IGNORECASE | re.MULTILINE)
_RESET = re.compile(r"errno=104\b|connection reset", re.IGNORECASE)
# Lines printed after the CA names; the first one ends the list (older versions print fewer of them).
_AFTER_CA_NAMES = ("---", "Client Certificate Types:", "Requested Signature Algorithms:",
                   "Shared Requested Signature Algorithms:", "Peer signing digest:", "Peer signature type:",
                   "Server Temp Key:", "SSL handshake has read")
_ABSENT = {"", "(NONE)", "0000", "TLSv1/SSLv3", "NONE"}


def probe_via_host(conn: HostConnection, host: str, port: int, sni: str | None, *,
                   timeout: float = PROBE_SECONDS,
                   cert: str | None = None, key: str | None = None, tls_version: str | None = None,
                   via: str | None = None) -> ProbeResult:
    """Probe HOST:PORT from the host behind `conn` with its `openssl s_client`.

    `via` names that host in the result (default: the connection's inventory name). Raises ProbeError when
    the backend cannot be probed from there, RemoteError when the host has no openssl, and whatever
    `conn.run` raises for SSH failures.
    """
    name = via or conn.host.name
    argv = host_steps.probe_argv(host, port, sni, timeout=timeout, tls_version=tls_version, cert=cert,
                                 key=key)
    # The remote `timeout` ends s_client first; the SSH-side limit only catches a host that hangs.
    result = host_steps.send(conn, HostCommand.PROBE, argv, own_seconds=timeout)
    text = result.stdout + ("\n" + result.stderr if result.stderr else "")
    if result.exit_code == EXIT_NOT_FOUND:
        raise RemoteError(name, Step.PROBE, "openssl (or timeout) is not installed there; install openssl, "
                                         "or probe from this machine without --via")
    return parse_s_client_output(text, format_target(host, port), sni, name, exit_code=result.exit_code,
                                 client_cert=cert)


def survey_via_host(conn: HostConnection, host: str, port: int, sni: str | None, offer: Offer, *,
                    anchors: Sequence[x509.Certificate] | None = None, truststore: str | None = None,
                    check_name: str | None = None, timeout: float = PROBE_SECONDS,
                    handshake_timeout: float = PROBE_HANDSHAKE_SECONDS, cert: str | None = None,
                    key: str | None = None, tls_version: str | None = None,
                    via: str | None = None) -> ProbeResult:
    """`probe_via_host` (`timeout` seconds), then the survey (`tls.survey.run_survey`): each further handshake
    is one bare `openssl s_client` on that host, `handshake_timeout` seconds at most."""
    name = via or conn.host.name
    result = probe_via_host(conn, host, port, sni, timeout=timeout, cert=cert, key=key,
                            tls_version=tls_version, via=name)
    timeout = handshake_timeout
    chain = check_chain(result.handshake.server_chain_der, anchors, check_name or sni or host, truststore)
    target = format_target(host, port)

    def attempt(spec: AttemptSpec) -> AttemptOutcome:
        return _attempt_via(conn, host, port, spec, timeout, target, name)

    survey = run_survey(attempt, offer, sni, timeout=timeout, chain=chain,
                        baseline_version=result.handshake.version)
    return replace(result, survey=survey)


def _attempt_via(conn: HostConnection, host: str, port: int, spec: AttemptSpec, timeout: float, target: str,
                 via: str) -> AttemptOutcome:
    argv = host_steps.probe_handshake_argv(host, port, spec, timeout)
    result = host_steps.send(conn, HostCommand.PROBE_HANDSHAKE, argv, own_seconds=timeout)
    text = result.stdout + ("\n" + result.stderr if result.stderr else "")
    lines = text.splitlines()
    if spec.sni is None and "-noservername" in text and _UNKNOWN_OPTION.search(text):
        # OpenSSL 1.0.2 lacks -noservername, and sends no server name unless told: ask again without it.
        argv = [a for a in argv if a != "-noservername"]
        result = host_steps.send(conn, HostCommand.PROBE_HANDSHAKE, argv, own_seconds=timeout)
        text = result.stdout + ("\n" + result.stderr if result.stderr else "")
        lines = text.splitlines()
    if result.exit_code == EXIT_NOT_FOUND:
        return AttemptOutcome(False, detail=f"openssl is not installed on {via}", error=True)
    if not any(line.startswith("CONNECTED(") for line in lines):
        unknown = _UNKNOWN_OPTION.search(text)
        if unknown:  # an option this OpenSSL lacks (an old one): that attempt tells nothing
            return AttemptOutcome(False, detail=f"openssl on {via} lacks {unknown.group(1)}", error=True)
        return AttemptOutcome(False, detail=_connect_error(text, target, via, result.exit_code).problem,
                              error=True)
    version, cipher = _version_and_cipher(lines)
    alerts = _alerts(lines)
    if cipher is not None or _server_chain(lines):
        # A ServerHello (and the server's Certificate) came: the version and a suite were accepted, even when
        # a two-way TLS 1.2 backend then ends the handshake for the client certificate this one lacks.
        detail = (f"ServerHello, then fatal alert {alerts[0].description} ({alerts[0].code})" if alerts
                  else "handshake completed")
        return AttemptOutcome(True, version or spec.version, iana_name(cipher) if cipher else None, detail)
    if alerts:
        return AttemptOutcome(False, detail=f"fatal alert {alerts[0].description} ({alerts[0].code})")
    if result.exit_code == EXIT_TIMEOUT:
        return AttemptOutcome(False, detail="no answer within the timeout")
    return AttemptOutcome(False, detail=f"refused ({_first_error(text)})")


def probe_via_inventory(inventory: Path, via: str, settings: ConnectionSettings, host: str, port: int,
                        sni: str | None, *, timeout: float = PROBE_SECONDS, cert: str | None = None,
                        key: str | None = None, tls_version: str | None = None,
                        offer: Offer | None = None, anchors: Sequence[x509.Certificate] | None = None,
                        truststore: str | None = None, check_name: str | None = None) -> ProbeResult:
    """Connect to the inventory host named `via` (or with that address) and probe HOST:PORT from there;
    with an `offer`, survey it too (`survey_via_host`)."""
    hosts = load_inventory(inventory).hosts
    chosen = (next((h for h in hosts if h.name == via), None)
              or next((h for h in hosts if h.address == via), None))
    if chosen is None:
        known = ", ".join(h.name for h in hosts) or "none"
        raise UsageError(f"--via {via}: no such host in {inventory} (hosts: {known})")
    with open_host(chosen, settings) as conn:
        if offer is not None:
            return survey_via_host(conn, host, port, sni, offer, anchors=anchors, truststore=truststore,
                                   check_name=check_name, timeout=timeout, handshake_timeout=timeout,
                                   cert=cert, key=key, tls_version=tls_version)
        return probe_via_host(conn, host, port, sni, timeout=timeout, cert=cert, key=key,
                              tls_version=tls_version)


def parse_s_client_output(text: str, target: str, sni: str | None, via: str, *, exit_code: int | None = None,
                          client_cert: str | None = None) -> ProbeResult:
    """Read what `openssl s_client` printed (1.0.2, 1.1.1 or 3.x) into the same ProbeResult the local
    probe gives.

    `exit_code` (124 means `timeout` stopped it) and `client_cert` (the ``-cert`` path, if one was sent)
    refine the reading. Raises ProbeError when the output shows no TLS conversation with the backend.
    """
    lines = text.splitlines()
    alerts = _alerts(lines)
    chain = _server_chain(lines)
    version, cipher = _version_and_cipher(lines)
    if not any(line.startswith("CONNECTED(") for line in lines):
        if client_cert is not None and _CLIENT_FILES.search(text):
            raise ProbeError(target, f"openssl on {via} could not load the client certificate or key "
                                     f"({_first_error(text)})",
                             "give --cert/--key paths of PEM files the SSH user can read on that host",
                             via=via)
        raise _connect_error(text, target, via, exit_code)
    if not chain and cipher is None:
        raise _no_tls_error(text, target, via, exit_code, alerts)
    request = _certificate_request(lines)
    http_status = next((int(m.group(1)) for m in map(_HTTP_STATUS.match, lines) if m), None)
    fatal = any(a.level == "fatal" for a in alerts)
    completed = cipher is not None and not (fatal and version != "TLSv1.3")
    ended = ""
    if http_status is None:
        if exit_code == EXIT_TIMEOUT:
            ended = "no HTTP answer within the timeout"
        elif any(_RESET.search(line) for line in lines):
            ended = "then the connection was reset"
        elif any(line.strip() == "closed" for line in lines):
            ended = "then the server closed the connection"
    notes = [NOT_VERIFIED_NOTE]
    if request is not None and request.ca_names:
        notes.append(TEXT_NOTE)
    handshake = Handshake(
        client=via,
        server=target,
        server_chain_der=_server_chain_der(lines),
        sni=sni,
        version=version,
        cipher=cipher,
        server_chain=chain,
        certificate_request=request,
        client_certificate=None if request is None else ClientCertificate(sent=client_cert is not None),
        alerts=alerts,
        outcome=Outcome.FAILED if fatal else (Outcome.ESTABLISHED if completed else Outcome.INCOMPLETE),
        source="probe",
        http_status=http_status,
        notes=tuple(notes),
    )
    reaction = describe_reaction(alerts, completed, http_status, ended)
    return ProbeResult(target=target, sni=sni, via=via, handshake=handshake, reaction=reaction)


def _alerts(lines: Sequence[str]) -> tuple[Alert, ...]:
    """Alerts the server sent; OpenSSL names every received alert "… alert <name>" in its error lines."""
    alerts = []
    for line in lines:
        number = _ALERT_NUMBER.search(line)
        named = _ALERT_TEXT.search(line)
        if number:
            code = int(number.group(1))
        elif named and named.group(1).strip().replace(" ", "_") in _ALERT_CODES:
            code = _ALERT_CODES[named.group(1).strip().replace(" ", "_")]
        else:
            continue
        alerts.append(make_alert("server", 2, code))
    return tuple(alerts)


def _server_chain(lines: Sequence[str]) -> tuple[CertificateSummary, ...]:
    section = _section(lines, "Certificate chain")
    pems = _PEM.findall("\n".join(section))
    if pems:
        try:
            return tuple(summarize_certificate(x509.load_pem_x509_certificate(p.encode())) for p in pems)
        except ValueError:
            pass  # a damaged PEM: fall back to the s:/i: lines
    chain: list[CertificateSummary] = []
    for index, line in enumerate(section):
        subject = _CHAIN_SUBJECT.match(line)
        if not subject:
            continue
        issuer = next((m.group(1) for m in map(_CHAIN_ISSUER.match, section[index + 1:index + 2]) if m), "")
        validity = next((m for m in map(_CHAIN_VALIDITY.match, section[index + 1:index + 4]) if m), None)
        chain.append(CertificateSummary(
            subject=_dn_text(subject.group(2)),
            issuer=_dn_text(issuer) if issuer else "",
            not_before=_openssl_time(validity.group(1)) if validity else "",
            not_after=_openssl_time(validity.group(2)) if validity else "",
        ))
    return tuple(chain)


def _server_chain_der(lines: Sequence[str]) -> tuple[bytes, ...]:
    """The DER of the chain's PEMs (-showcerts), to verify it; () when absent or damaged."""
    pems = _PEM.findall("\n".join(_section(lines, "Certificate chain")))
    try:
        return tuple(x509.load_pem_x509_certificate(p.encode()).public_bytes(Encoding.DER) for p in pems)
    except ValueError:
        return ()


def _certificate_request(lines: Sequence[str]) -> CertificateRequest | None:
    """The CA names, or None when the server sent no CertificateRequest.

    s_client prints "No client certificate CA names sent" in both cases; only a CertificateRequest
    makes it print "Client Certificate Types" (TLS <= 1.2) or "Requested Signature Algorithms"
    (the request's sigalgs).
    """
    names: list[str] = []
    asked = False
    for index, line in enumerate(lines):
        if line.startswith(("Client Certificate Types:", "Requested Signature Algorithms:")):
            asked = True
        if line.strip() == "Acceptable client certificate CA names":
            asked = True
            for entry in lines[index + 1:]:
                if not entry.strip() or entry.startswith(_AFTER_CA_NAMES):
                    break
                names.append(_dn_text(entry))
    return CertificateRequest(ca_names=tuple(names)) if asked else None


def _version_and_cipher(lines: Sequence[str]) -> tuple[str | None, str | None]:
    version = cipher = None
    for line in lines:
        protocol = _PROTOCOL.match(line)
        if protocol and protocol.group(1) not in _ABSENT:
            version = protocol.group(1)
        suite = _CIPHER.match(line)
        if suite and suite.group(1) not in _ABSENT:
            cipher = suite.group(1)
    for line in lines:
        new = _NEW_LINE.match(line)
        if new:
            version = version or (new.group(1) if new.group(1) not in _ABSENT else None)
            cipher = cipher or (new.group(2) if new.group(2) not in _ABSENT else None)
    return version, cipher


def _section(lines: Sequence[str], title: str) -> list[str]:
    """The lines after the `title` line up to the next "---"."""
    for index, line in enumerate(lines):
        if line.strip() == title:
            section = []
            for entry in lines[index + 1:]:
                if entry.strip() == "---":
                    break
                section.append(entry)
            return section
    return []


def _dn_text(text: str) -> str:
    """An OpenSSL-printed DN (`/C=AU/CN=x` or `C = AU, CN = x`) as RFC 4514; the text itself if unparsable."""
    try:
        return name_to_rfc4514(name_from_string(text))
    except ValueError:
        return text.strip()


def _openssl_time(text: str) -> str:
    try:
        parsed = datetime.strptime(" ".join(text.split()), "%b %d %H:%M:%S %Y GMT")
    except ValueError:
        return ""
    return parsed.replace(tzinfo=timezone.utc).isoformat()


def _connect_error(text: str, target: str, via: str, exit_code: int | None) -> ProbeError:
    host = target.rsplit(":", 1)[0].strip("[]")
    reach = f"check the host, the port and firewalls between {via} and the backend"
    unknown = _UNKNOWN_OPTION.search(text)
    if unknown:
        return ProbeError(target, f"openssl s_client on {via} does not know the option {unknown.group(1)}",
                          "its OpenSSL is too old for it (TLS 1.3 needs 1.1.1+): drop --tls, "
                          "or probe from another host", via=via)
    if _DNS_FAILURE.search(text):
        return ProbeError(target, f"{via} cannot resolve {host} (DNS)",
                          "check the name and the MP's resolver", via=via)
    if _REFUSED.search(text):
        return ProbeError(target, "connection refused", f"is the backend listening there? {reach}", via=via)
    if _UNREACHABLE.search(text):
        return ProbeError(target, "unreachable", reach, via=via)
    if exit_code == EXIT_TIMEOUT:
        return ProbeError(target, "no answer to the TCP connection within the timeout", reach, via=via)
    return ProbeError(target, f"openssl s_client could not connect: {_first_error(text)}", reach, via=via)


def _no_tls_error(text: str, target: str, via: str, exit_code: int | None,
                  alerts: Sequence[Alert]) -> ProbeError:
    hint = ("check that this is the backend's TLS port "
            "(a plain HTTP or SSH port answers like this) and the SNI")
    if alerts:
        return ProbeError(target, f"the server refused the ClientHello with alert {alerts[0].description} "
                                  f"({alerts[0].code})",
                          "try --tls 1.2 or --tls 1.3, or another --sni", via=via)
    if exit_code == EXIT_TIMEOUT:
        return ProbeError(target, "no TLS answer within the timeout", hint, via=via)
    return ProbeError(target, f"the answer is not TLS ({_first_error(text)})", hint, via=via)


def _first_error(text: str) -> str:
    """The reason of OpenSSL's first error line (`…:error:CODE:LIB:FUNC:REASON:FILE:LINE:`), or the line."""
    for line in text.splitlines():
        if line.startswith(("Could not open file or uri", "unable to load")):
            return line.strip()[:200]
        if ":error:" in line:
            fields = line.split(":")
            return "openssl: " + (fields[5] if len(fields) > 5 else line.strip()[:200])
        if "errno=" in line:
            return "openssl: " + line.strip()[:200]
    return "openssl printed no error"


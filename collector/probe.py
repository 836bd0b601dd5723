"""The local active probe: ask a backend over TLS (pyOpenSSL) which client-certificate CA names it accepts.

It lives outside `tls/` because it opens sockets. The server certificate is deliberately not verified: the
probe reads what the server sends (chain, CertificateRequest, alert), it does not judge whether the server is
trusted.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from OpenSSL import SSL

from collector.errors import InputError, ProbeError, UsageError
from collector.tls.handshake import (
    Alert,
    CertificateRequest,
    ClientCertificate,
    Handshake,
    Outcome,
    ProbeResult,
)
from collector.tls.jsse_defaults import iana_name, openssl_name
from collector.tls.names import name_from_der, name_to_rfc4514
from collector.tls.probe_results import (
    NOT_VERIFIED_NOTE,
    describe_reaction,
    format_target,
    make_alert,
    summarize_certificate,
)
from collector.tls.survey import (
    AttemptOutcome,
    AttemptSpec,
    Offer,
    check_chain,
    run_survey,
)

TLS_VERSIONS = ("1.2", "1.3")
DEFAULT_TIMEOUT = 10.0
_PROTOCOLS = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}
_VERSIONS = {"TLSv1": SSL.TLS1_VERSION, "TLSv1.1": SSL.TLS1_1_VERSION, "TLSv1.2": SSL.TLS1_2_VERSION,
             "TLSv1.3": SSL.TLS1_3_VERSION}
# The probe's own broad lists, for "is it the version or the suites?": every suite OpenSSL has.
_ANY_SUITE = b"ALL:@SECLEVEL=0"
_ANY_TLS13_SUITE = (b"TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"
                    b"TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256")
# OpenSSL's long state names (stable since 1.1.0): they tell which server messages arrived.
_STATE_SERVER_HELLO = b"SSLv3/TLS read server hello"
_STATE_CERT_REQUEST = b"SSLv3/TLS read server certificate request"
_HTTP_STATUS = re.compile(rb"^HTTP/\d(?:\.\d)? (\d{3})\b")
_TARGET = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]\s]+)):(?P<port>\d{1,5})$")
_READ_LIMIT = 65536
_Loaded = TypeVar("_Loaded")
# The private keys OpenSSL can sign a handshake with. Any other (X25519, X448, DH, ...) would fail inside
# OpenSSL with an error that names neither the file nor the defect.
_SIGNING_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    dsa.DSAPrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


def parse_target(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` for IPv6) into host and port; raises UsageError when malformed."""
    match = _TARGET.match(text.strip())
    if not match:
        raise UsageError(
            f"bad backend {text!r}: expected HOST:PORT, e.g. backend.example.com:443 or [::1]:8443"
        )
    host = match.group("v6") or match.group("host")
    if match.group("v6") is not None and not _is_ip(host):
        raise UsageError(f"bad backend {text!r}: [{host}] is not an IPv6 address")
    port = int(match.group("port"))
    if not 0 < port < 65536:
        raise UsageError(f"bad backend {text!r}: port {port} is not between 1 and 65535")
    return host, port


def default_sni(host: str) -> str | None:
    """The SNI a client sends by default: the host name, and none for an IP literal (RFC 6066 §3)."""
    return None if _is_ip(host) else host


def probe_backend(host: str, port: int, *, sni: str | None, tls_version: str | None = None,
                  cert: Path | None = None, key: Path | None = None,
                  timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """Handshake with HOST:PORT without verifying it and report what it asked for and how it reacted.

    Without `cert` the probe sends no client certificate, so the reaction is the server's answer to "none"
    (TLS 1.3 servers answer after the handshake, so the probe sends ``HEAD /`` and reads). With `cert`/`key`
    (PEM) the reaction says whether the server accepts that chain. `tls_version` forces ``1.2`` or ``1.3``.
    Raises ProbeError when no TLS conversation happens, InputError for unusable cert/key files.
    """
    if tls_version is not None and tls_version not in _PROTOCOLS:
        raise UsageError(f"--tls {tls_version}: expected one of {', '.join(TLS_VERSIONS)}")
    target = format_target(host, port)
    try:
        sni_bytes = sni.encode("idna") if sni else None
    except UnicodeError as exc:
        raise UsageError(f"--sni {sni!r} is not a valid host name") from exc
    observer = _Observer()
    context, client_chain = _make_context(observer, tls_version, cert, key)
    sock = _connect(host, port, timeout, target)
    try:
        conn = SSL.Connection(context, sock)
        if sni_bytes:
            conn.set_tlsext_host_name(sni_bytes)
        conn.set_connect_state()
        exchange = _exchange(conn, sni_bytes or target.rsplit(":", 1)[0].encode("ascii", "replace"))
        if not observer.server_hello:
            raise _no_tls_error(target, exchange, observer, timeout)
        return _result(target, sni, conn, sock, observer, exchange, client_chain)
    finally:
        sock.close()


def survey_backend(host: str, port: int, *, sni: str | None, offer: Offer,
                   anchors: Sequence[x509.Certificate] | None = None, truststore: str | None = None,
                   check_name: str | None = None, tls_version: str | None = None, cert: Path | None = None,
                   key: Path | None = None, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """`probe_backend`, then the survey: the backend chain judged against `anchors` (the MP truststore;
    ``None``: unknown) and `check_name` (default: the SNI, else the host), and which of the offer's
    versions and suites it accepts and whether it needs SNI, in at most `survey.MAX_HANDSHAKES` handshakes
    of `timeout` seconds each."""
    result = probe_backend(host, port, sni=sni, tls_version=tls_version, cert=cert, key=key, timeout=timeout)
    chain = check_chain(result.handshake.server_chain_der, anchors, check_name or sni or host, truststore)

    def attempt(spec: AttemptSpec) -> AttemptOutcome:
        return attempt_handshake(host, port, spec, timeout)

    survey = run_survey(attempt, offer, sni, timeout=timeout, chain=chain,
                        baseline_version=result.handshake.version)
    return replace(result, survey=survey)


def attempt_handshake(host: str, port: int, spec: AttemptSpec, timeout: float) -> AttemptOutcome:
    """One bare handshake (no client certificate, no request): did the backend accept this offer?"""
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_verify(SSL.VERIFY_NONE)
    observer = _Observer()
    context.set_info_callback(observer)
    if spec.version is not None:
        context.set_min_proto_version(_VERSIONS[spec.version])
        context.set_max_proto_version(_VERSIONS[spec.version])
    if spec.suites is None:
        context.set_cipher_list(_ANY_SUITE)
        context.set_tls13_ciphersuites(_ANY_TLS13_SUITE)
    else:
        names = [openssl_name(s) or s for s in spec.suites]
        tls13 = [n for n in names if n.startswith("TLS_")]
        older = [n for n in names if not n.startswith("TLS_")]
        # An empty list is refused by OpenSSL; a suite of the other kind keeps the offer to what was asked.
        context.set_cipher_list((":".join(older) if older else "eNULL").encode() + b":@SECLEVEL=0")
        context.set_tls13_ciphersuites(":".join(tls13).encode())
    target = format_target(host, port)
    try:
        sock = _connect(host, port, timeout, target)
    except ProbeError as exc:
        return AttemptOutcome(False, detail=exc.problem, error=True)
    try:
        conn = SSL.Connection(context, sock)
        if spec.sni:
            conn.set_tlsext_host_name(spec.sni.encode("idna"))
        conn.set_connect_state()
        try:
            conn.do_handshake()
            detail = "handshake completed"
        except (SSL.WantReadError, SSL.WantWriteError):
            detail = "no answer within the timeout"
        except SSL.SysCallError as exc:
            detail = _refusal(observer, _closed_reason(exc))
        except SSL.Error:
            detail = _refusal(observer, "TLS error")
        if not observer.server_hello:
            return AttemptOutcome(False, detail=detail)
        # Its ServerHello accepted the version and a suite; a two-way TLS 1.2 backend ends the handshake
        # later, for the client certificate this bare handshake does not send.
        cipher = conn.get_cipher_name()
        version = conn.get_protocol_version_name()
        if detail != "handshake completed":
            detail = f"ServerHello, then {detail}"
        return AttemptOutcome(True, version if version.startswith(("TLS", "SSL")) else None,
                              iana_name(cipher) if cipher else None, detail)
    finally:
        sock.close()


def _refusal(observer: _Observer, otherwise: str) -> str:
    alert = next((a for a in observer.alerts if a.level == "fatal"), None)
    if alert is None:
        return otherwise if observer.server_hello else f"{otherwise} before any ServerHello"
    who = "" if alert.sender == "server" else "the probe sent "
    return f"{who}fatal alert {alert.description} ({alert.code})"


@dataclass
class _Observer:
    """What OpenSSL's info callback reported: the server messages that arrived and the alerts both ways."""

    server_hello: bool = False
    certificate_request: bool = False
    alerts: list[Alert] = field(default_factory=list)

    def __call__(self, conn: SSL.Connection, where: int, ret: int) -> None:
        if where & SSL.SSL_CB_ALERT:
            sender = "server" if where & SSL.SSL_CB_READ else "client"
            self.alerts.append(make_alert(sender, ret >> 8, ret & 0xFF))
        elif where & SSL.SSL_CB_LOOP:
            state = conn.get_state_string()
            self.server_hello = self.server_hello or state == _STATE_SERVER_HELLO
            self.certificate_request = self.certificate_request or state == _STATE_CERT_REQUEST


@dataclass(frozen=True)
class _Exchange:
    """How the conversation went: handshake completed?, the HTTP status, and how it ended otherwise."""

    completed: bool
    http_status: int | None
    ended: str
    timed_out: bool = False
    error: str = ""


def _make_context(observer: _Observer, tls_version: str | None, cert: Path | None,
                  key: Path | None) -> tuple[SSL.Context, tuple[x509.Certificate, ...] | None]:
    """The client context, and the client chain it offers (``None``: no client certificate)."""
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    # Not verifying is the point: the probe must see the CA list even from a backend we do not trust.
    context.set_verify(SSL.VERIFY_NONE)
    # Old backends (SHA-1 chains, small keys) must still show their CA list.
    context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    if tls_version:
        context.set_min_proto_version(_PROTOCOLS[tls_version])
        context.set_max_proto_version(_PROTOCOLS[tls_version])
    context.set_info_callback(observer)
    if cert is None and key is None:
        return context, None
    if cert is None or key is None:
        raise UsageError("--cert and --key go together (both PEM files)")
    return context, _load_client_identity(context, cert, key)


def _load_client_identity(context: SSL.Context, cert: Path, key: Path) -> tuple[x509.Certificate, ...]:
    """Load the PEM chain and key with `cryptography` (never a passphrase prompt) and hand them to OpenSSL."""
    chain = _read_pem(cert, "certificate", lambda data: tuple(x509.load_pem_x509_certificates(data)))
    private_key = _read_pem(key, "private key", lambda data: serialization.load_pem_private_key(data, None))
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if chain[0].public_key().public_bytes(serialization.Encoding.DER, spki) != \
            private_key.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise InputError(key, f"this private key does not belong to the certificate in {cert}")
    if not isinstance(private_key, _SIGNING_KEYS):
        raise InputError(
            key, "this private key cannot sign a TLS handshake: give an RSA, EC, DSA, Ed25519 or Ed448 key"
        )
    context.use_certificate(chain[0])
    for extra in chain[1:]:
        context.add_extra_chain_cert(extra)
    context.use_privatekey(private_key)
    return chain


def _read_pem(path: Path, what: str, load: Callable[[bytes], _Loaded]) -> _Loaded:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read the {what}: {exc.strerror or exc}") from exc
    try:
        return load(data)
    except TypeError as exc:  # cryptography's way of saying "encrypted, and no password was given"
        raise InputError(path, f"the {what} is encrypted; give an unencrypted copy "
                               "(openssl pkey -in KEY -out PLAIN.key)") from exc
    except ValueError as exc:
        raise InputError(path, f"not a PEM {what}") from exc


def _connect(host: str, port: int, timeout: float, target: str) -> socket.socket:
    reach_hint = "check the host, the port and firewalls; a backend only MPs can reach needs --via MP"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ProbeError(target, f"cannot resolve {host} (DNS)",
                         "check the name, or probe --via an MP that resolves it") from exc
    last: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except ConnectionRefusedError as exc:
            sock.close()
            raise ProbeError(target, "connection refused",
                             f"is the backend listening on port {port}? {reach_hint}") from exc
        except TimeoutError as exc:
            sock.close()
            raise ProbeError(
                target, f"no answer to the TCP connection within {timeout:g} s", reach_hint
            ) from exc
        except OSError as exc:
            sock.close()
            last = exc
            continue
        # pyOpenSSL turns a Python socket timeout into WantReadError: go blocking and let the kernel time out.
        sock.settimeout(None)
        seconds = int(timeout)
        micros = int((timeout - seconds) * 1_000_000)
        timeval = struct.pack("ll", seconds, micros)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        return sock
    problem = f"unreachable ({last.strerror or last})" if last else "no address to connect to"
    raise ProbeError(target, problem, reach_hint) from last


def _exchange(conn: SSL.Connection, host_header: bytes) -> _Exchange:
    try:
        conn.do_handshake()
    except (SSL.WantReadError, SSL.WantWriteError):
        return _Exchange(False, None, "no answer within the timeout", timed_out=True)
    except SSL.SysCallError as exc:
        return _Exchange(False, None, _closed_reason(exc), error="closed")
    except SSL.Error:
        return _Exchange(False, None, "TLS error", error="tls")
    # TLS 1.3 servers judge the client certificate after the handshake: send a request and read the verdict.
    buffer = b""
    # The server may have rejected us already: its alert is still waiting to be read below.
    with contextlib.suppress(SSL.Error):
        conn.sendall(b"HEAD / HTTP/1.0\r\nHost: " + host_header + b"\r\n\r\n")
    try:
        while b"\n" not in buffer and len(buffer) < _READ_LIMIT:
            buffer += conn.recv(16384)
        ended = ""
    except SSL.ZeroReturnError:
        ended = "then the server closed the connection"
    except (SSL.WantReadError, SSL.WantWriteError):
        ended = "no HTTP answer within the timeout"
    except SSL.SysCallError as exc:
        ended = "then " + _closed_reason(exc)
    except SSL.Error:
        ended = "then a TLS error"
    status = _HTTP_STATUS.match(buffer)
    http_status = int(status.group(1)) if status else None
    if http_status is None and buffer and not ended:
        ended = "the answer to HEAD / was not HTTP"
    return _Exchange(True, http_status, "" if http_status is not None else ended)


def _closed_reason(exc: SSL.SysCallError) -> str:
    code = exc.args[0] if exc.args else None
    return "the connection was reset" if code not in (-1, 0, None) else "the server closed the connection"


def _no_tls_error(target: str, exchange: _Exchange, observer: _Observer, timeout: float) -> ProbeError:
    tls_hint = (
        "check that this is the backend's TLS port (a plain HTTP or SSH port answers like this) and the SNI"
    )
    if observer.alerts:
        alert = observer.alerts[0]
        return ProbeError(
            target,
            f"the server refused the ClientHello with alert {alert.description} ({alert.code})",
            "try --tls 1.2 or --tls 1.3, or another --sni",
        )
    if exchange.timed_out:
        return ProbeError(
            target,
            f"no TLS answer within {timeout:g} s",
            "check that this is the backend's TLS port;"
            " a silent service or a filtering firewall looks like this",
        )
    if exchange.error == "closed":
        return ProbeError(target, f"no TLS answer: {exchange.ended}", tls_hint)
    return ProbeError(target, "the answer is not TLS", tls_hint)


def _result(target: str, sni: str | None, conn: SSL.Connection, sock: socket.socket, observer: _Observer,
            exchange: _Exchange, client_chain: tuple[x509.Certificate, ...] | None) -> ProbeResult:
    peer_chain = [c.to_cryptography() for c in conn.get_peer_cert_chain() or []]
    chain = tuple(summarize_certificate(c) for c in peer_chain)
    request = None
    client_certificate = None
    if observer.certificate_request:
        ders = tuple(name.der() for name in conn.get_client_ca_list())
        request = CertificateRequest(ca_names=tuple(_ca_name_text(der) for der in ders), ca_names_der=ders)
        client_certificate = ClientCertificate(
            sent=client_chain is not None,
            chain=tuple(summarize_certificate(c) for c in client_chain or ()),
        )
    fatal = any(a.level == "fatal" and a.code != 0 for a in observer.alerts)
    if exchange.completed and not fatal:
        outcome = Outcome.ESTABLISHED
    else:
        outcome = Outcome.FAILED if (fatal or exchange.error) else Outcome.INCOMPLETE
    version = conn.get_protocol_version_name()
    handshake = Handshake(
        client=_address_text(sock.getsockname()),
        server=_address_text(sock.getpeername()),
        sni=sni,
        version=version if version.startswith(("TLS", "SSL")) else None,
        cipher=conn.get_cipher_name(),
        server_chain=chain,
        certificate_request=request,
        client_certificate=client_certificate,
        alerts=tuple(observer.alerts),
        outcome=outcome,
        source="probe",
        http_status=exchange.http_status,
        notes=(NOT_VERIFIED_NOTE,),
        server_chain_der=tuple(c.public_bytes(serialization.Encoding.DER) for c in peer_chain),
    )
    reaction = describe_reaction(observer.alerts, exchange.completed, exchange.http_status, exchange.ended)
    return ProbeResult(target=target, sni=sni, via=None, handshake=handshake, reaction=reaction)


def _ca_name_text(der: bytes) -> str:
    name = name_from_der(der)
    return name_to_rfc4514(name) if name is not None else "hex:" + der.hex()


def _address_text(address: tuple) -> str:
    return format_target(str(address[0]), int(address[1]))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True

"""What one TLS handshake showed: the value types every stage shares (capture analysis, probe, diagnosis)."""

from __future__ import annotations

import base64
import datetime
import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the survey's types import cryptography; these value types stay stdlib-only at run time
    from collector.tls.survey import ProbeSurvey


class Outcome(str, enum.Enum):
    """How a handshake ended, valued as DESIGN.md's JSON strings."""

    ESTABLISHED = "established"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    OPAQUE = "opaque"  # TLS 1.3 without a key log: the part that matters is encrypted


@dataclass(frozen=True)
class CertificateSummary:
    """One certificate as seen on the wire or in a keystore; DNs are RFC 4514 strings from `cryptography`.

    Attributes:
        subject: RFC 4514 subject, or ``hex:…`` of the DER name when it cannot be decoded.
        issuer: RFC 4514 issuer, same fallback.
        not_before / not_after: ISO 8601 UTC, ``""`` when unknown.
        serial: hex serial number, ``""`` when unknown.
        issuer_der: the DER bytes of the issuer name (for exact JSSE-style matching); ``None`` when unknown
            (for example a certificate described only by an Edge certInfo document).
    """

    subject: str
    issuer: str
    not_before: str = ""
    not_after: str = ""
    serial: str = ""
    issuer_der: bytes | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, str]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.not_before,
            "not_after": self.not_after,
        }


@dataclass(frozen=True)
class CertificateRequest:
    """The server's CertificateRequest: its acceptable CA names (the playbook's "Distinguished Names").

    Attributes:
        ca_names: RFC 4514 strings in the order the server sent them (empty list: the server named none).
        ca_names_der: the raw DER of each name, same order, for canonical matching.
        signature_algorithms: names such as ``rsa_pss_rsae_sha256`` (``0x….`` when unknown).
        frame: capture frame number of the record that completed the message, ``None`` for a probe.
    """

    ca_names: tuple[str, ...]
    ca_names_der: tuple[bytes, ...] = field(default=(), repr=False, compare=False)
    signature_algorithms: tuple[str, ...] = ()
    frame: int | None = None

    def to_json(self) -> dict[str, object]:
        return {"ca_names": list(self.ca_names), "signature_algorithms": list(self.signature_algorithms)}


@dataclass(frozen=True)
class ClientCertificate:
    """The client's Certificate message: ``sent`` is False for the empty message (Certificate Length: 0).

    Attributes:
        frame: capture frame number, ``None`` for a probe.
    """

    sent: bool
    chain: tuple[CertificateSummary, ...] = ()
    frame: int | None = None

    def to_json(self) -> dict[str, object]:
        return {"sent": self.sent, "chain": [c.to_json() for c in self.chain]}


@dataclass(frozen=True)
class Alert:
    """A plaintext (or decrypted) TLS alert. ``sender`` is ``client`` or ``server``."""

    sender: str
    level: str  # "warning" | "fatal"
    description: str  # e.g. "bad_certificate"
    code: int
    frame: int | None = None

    def to_json(self) -> dict[str, object]:
        return {"from": self.sender, "level": self.level, "description": self.description, "code": self.code}


@dataclass(frozen=True)
class ClientHelloOffer:
    """What the client's ClientHello offered (GREASE values left out).

    Attributes:
        legacy_version: the version field of the ClientHello (``TLSv1.2`` even for TLS 1.3 clients).
        supported_versions: the supported_versions extension in the client's order; empty when absent.
        cipher_suites: IANA names in the client's order (``0x….`` when not in our table).
        frame: capture frame number of the record that completed the ClientHello.
    """

    legacy_version: str
    supported_versions: tuple[str, ...] = ()
    cipher_suites: tuple[str, ...] = ()
    frame: int | None = None

    @property
    def versions(self) -> tuple[str, ...]:
        """The versions offered: supported_versions when the client sent it, else the legacy version alone."""
        return self.supported_versions or (self.legacy_version,)

    def to_json(self) -> dict[str, object]:
        return {
            "versions": list(self.versions),
            "legacy_version": self.legacy_version,
            "supported_versions": list(self.supported_versions),
            "cipher_suites": list(self.cipher_suites),
        }


@dataclass(frozen=True)
class NonTlsReply:
    """Bytes that are not a TLS record where one belonged, e.g. a plaintext HTTP port answering the
    ClientHello with ``HTTP/1.1 400 Bad Request``.

    Attributes:
        sender: ``client`` or ``server``.
        first_bytes: the first bytes (at most `REPLY_BYTES`), anything unprintable escaped (``\\r``,
            ``\\xNN``).
        frame: capture frame number of the segment that carried them.
    """

    sender: str
    first_bytes: str
    frame: int | None = None

    def to_json(self) -> dict[str, object]:
        return {"from": self.sender, "tls": False, "first_bytes": self.first_bytes}


REPLY_BYTES = 64


def printable(data: bytes) -> str:
    """`data` as text a report can show: printable ASCII as is, CR/LF/TAB and everything else escaped."""
    named = {0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t", 0x5C: "\\\\"}
    return "".join(named.get(b) or (chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}") for b in data)


class AttemptEnd(str, enum.Enum):
    """How a TCP connection that never carried a byte ended, valued as its JSON string."""

    REFUSED = "refused"  # the SYN was answered by RST: nothing listens there
    UNANSWERED = "unanswered"  # the SYN got no answer before the capture (or the reader's patience) ended
    CLOSED_WITHOUT_DATA = "closed-without-data"  # connected, then closed before any byte (no ClientHello)


@dataclass(frozen=True)
class ConnectionAttempt:
    """A TCP connection attempt that carried no data at all: no handshake to reconstruct, but a fact to judge.

    Attributes:
        client / server: ``ip:port`` (``[v6]:port`` for IPv6); the client is the side that sent the SYN.
        end: see `AttemptEnd`.
        captured_at: capture time of the attempt's first packet (UTC), ``None`` when the file has none.
        frames: frame numbers of the attempt's first and last packet.
        source: file name the attempt came from.
    """

    client: str
    server: str
    end: AttemptEnd
    captured_at: datetime.datetime | None = None
    frames: tuple[int, int] | None = None
    source: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "client": self.client,
            "server": self.server,
            "end": self.end.value,
            "captured_at": iso_time(self.captured_at),
            "frames": list(self.frames) if self.frames else None,
            "source": self.source,
        }


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def capture_time(nanoseconds: int | None) -> datetime.datetime | None:
    """A capture file's timestamp (nanoseconds since the Unix epoch) as an aware UTC datetime."""
    if nanoseconds is None:
        return None
    try:
        return _EPOCH + datetime.timedelta(microseconds=nanoseconds // 1000)
    except OverflowError:  # a damaged timestamp outside years 1-9999: the time is unknown, the packet counts
        return None


def iso_time(value: datetime.datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z`` (``2026-12-02T05:18:00.123456Z``), ``None`` stays ``None``. The values are
    `capture_time`'s (UTC). Written field by field: paid for every handshake, this is a third faster than
    `isoformat` (which formats the UTC offset only to have it cut) and twice `strftime`'s speed, and it keeps
    four digits for a year before 1000, which strftime writes short."""
    if value is None:
        return None
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031  # %-format: the fastest of the three here
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond
    )


@dataclass(frozen=True)
class Handshake:
    """One TLS connection's handshake as reconstructed from a capture (or observed by a probe).

    Attributes:
        client / server: ``ip:port`` (``[v6]:port`` for IPv6).
        sni: server name from the ClientHello, ``None`` when absent.
        version: negotiated version (``TLSv1.2``, ``TLSv1.3``…), ``None`` when no ServerHello was seen.
        cipher: negotiated cipher suite name, ``None`` when unknown.
        server_chain: the server's Certificate message (empty when encrypted or absent).
        certificate_request: ``None`` when absent or encrypted.
        client_certificate: ``None`` when absent or encrypted.
        alerts: plaintext or decrypted alerts in order.
        outcome: see `Outcome`.
        source: file name the handshake came from (capture or ``probe``).
        frames: frame numbers of the first and last record read, ``None`` for a probe. Reading a connection
            stops once nothing later can change its handshake: a TLS 1.2 one at its second Finished (the
            application data after it is not read), a sealed one after a dozen records each way.
        encrypted_records: count of records whose content could not be read.
        http_status: HTTP status seen after the handshake (decrypted, or reported by a probe), else ``None``.
        notes: facts worth showing that have no field (reassembly gaps, truncation, decryption used).
        client_hello: what the ClientHello offered (versions, cipher suites), ``None`` when none was seen.
        server_chain_der: the DER of each certificate of `server_chain` (same order), to verify it later.
        captured_at: capture time of the connection's first packet (UTC), ``None`` when unknown (a probe, or a
            file without timestamps).
        non_tls_reply: bytes that were not TLS where a record belonged (``None`` when every byte was TLS).
        server_hello_frame / server_chain_frame: capture frame numbers of the ServerHello and of the server's
            Certificate message (``None`` when not seen, or for a probe), for comments that point at them.
    """

    client: str
    server: str
    sni: str | None = None
    version: str | None = None
    cipher: str | None = None
    server_chain: tuple[CertificateSummary, ...] = ()
    certificate_request: CertificateRequest | None = None
    client_certificate: ClientCertificate | None = None
    alerts: tuple[Alert, ...] = ()
    outcome: Outcome = Outcome.INCOMPLETE
    source: str = ""
    frames: tuple[int, int] | None = None
    encrypted_records: int = 0
    http_status: int | None = None
    notes: tuple[str, ...] = ()
    client_hello: ClientHelloOffer | None = None
    server_chain_der: tuple[bytes, ...] = field(default=(), repr=False, compare=False)
    captured_at: datetime.datetime | None = None
    non_tls_reply: NonTlsReply | None = None
    server_hello_frame: int | None = field(default=None, compare=False)
    server_chain_frame: int | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, object]:
        """DESIGN.md's handshake object; `server_chain_der` is base64 (a PEM body without its armour)."""
        return {key: part(self) for key, part in HANDSHAKE_JSON.items()}


@functools.lru_cache(maxsize=256)  # a backend's chain is on every connection (and its DER bytes are shared)
def _base64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


# DESIGN.md's handshake object field by field, in its order: `Handshake.to_json` makes every field, and the
# analysis writer makes a field repeated from connection to connection (the chain, the offer) only when it
# has not written that value yet.
HANDSHAKE_JSON: dict[str, Callable[[Handshake], object]] = {
    "client": attrgetter("client"),
    "server": attrgetter("server"),
    "sni": attrgetter("sni"),
    "version": attrgetter("version"),
    "cipher": attrgetter("cipher"),
    "server_chain": lambda h: [c.to_json() for c in h.server_chain],
    "certificate_request": lambda h: h.certificate_request.to_json() if h.certificate_request else None,
    "client_certificate": lambda h: h.client_certificate.to_json() if h.client_certificate else None,
    "alerts": lambda h: [a.to_json() for a in h.alerts],
    "outcome": attrgetter("outcome.value"),
    "source": attrgetter("source"),
    "frames": lambda h: list(h.frames) if h.frames else None,
    "notes": lambda h: list(h.notes),
    "client_hello": lambda h: h.client_hello.to_json() if h.client_hello else None,
    "server_chain_der": lambda h: [_base64(der) for der in h.server_chain_der],
    "captured_at": lambda h: iso_time(h.captured_at),
    "non_tls_reply": lambda h: h.non_tls_reply.to_json() if h.non_tls_reply else None,
}


@dataclass(frozen=True)
class ProbeResult:
    """What an active probe (local pyOpenSSL or `openssl s_client` on a host) learned about a backend.

    Attributes:
        target: ``host:port`` probed.
        sni: server name sent.
        via: inventory host the probe ran on, ``None`` for the collector's machine.
        handshake: the observed handshake; its ``certificate_request`` holds the acceptable CA names
            (``None``: the server asked for no client certificate).
        reaction: how the server reacted to no client certificate, e.g. ``alert bad_certificate (42)``,
            ``handshake completed``, ``HTTP 400``.
        survey: the versions, suites, SNI and chain verdict the probe asked about (`tls.survey`), ``None``
            when it only made its own handshake.
    """

    target: str
    sni: str | None
    via: str | None
    handshake: Handshake
    reaction: str
    survey: ProbeSurvey | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "sni": self.sni,
            "via": self.via,
            "reaction": self.reaction,
            "handshake": self.handshake.to_json(),
            "survey": self.survey.to_json() if self.survey is not None else None,
        }

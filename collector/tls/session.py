"""One TCP connection carrying TLS: both directions' bytes -> records -> handshake facts -> a `Handshake`.

Public API: `Session(first_frame, endpoints, keylog)`, `Session.add_segment(...)`, `Session.done`,
`Session.to_handshake(source)`.
"""

from __future__ import annotations

import functools
from typing import Final

from collector.tls import ciphers, messages
from collector.tls.certificates import name_to_string, summarize_certificate
from collector.tls.decrypt import DecryptError, RecordDecryptor, supports
from collector.tls.handshake import (
    REPLY_BYTES,
    Alert,
    CertificateRequest,
    CertificateSummary,
    ClientCertificate,
    Handshake,
    NonTlsReply,
    Outcome,
    printable,
)
from collector.tls.keylog import CLIENT_HANDSHAKE, CLIENT_TRAFFIC, SERVER_HANDSHAKE, SERVER_TRAFFIC, KeyLog
from collector.tls.outcome import decide_outcome, summarize_session
from collector.tls.packets import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN
from collector.tls.reassembly import Stream
from collector.tls.records import (
    ALERT,
    APPLICATION_DATA,
    CHANGE_CIPHER_SPEC,
    HANDSHAKE,
    MAX_RECORD,
    Record,
    RecordReader,
    looks_like_tls,
)

_CONTROL: Final = TCP_SYN | TCP_FIN | TCP_RST
# A TLS 1.2 connection settles at its second Finished; a TLS 1.3 one (sealed, or decrypted and showing its
# HTTP status) only after SETTLED_RECORDS protected records each way, after which nothing about the handshake
# can still change, or SETTLED_TOTAL in one direction (bulk downloads send nearly nothing the other way)
SETTLED_RECORDS: Final = 12
SETTLED_TOTAL: Final = 48


class _Side:
    """One direction: its reassembly, record and message state, and what it has shown so far."""

    __slots__ = (
        "after",
        "ccs",
        "closed",
        "decryptor",
        "finished",
        "messages",
        "opaque",
        "protected",
        "records",
        "reset",
        "stream",
    )

    def __init__(self) -> None:
        self.stream = Stream()
        self.records = RecordReader()
        self.messages = messages.HandshakeAssembler()
        # records from here on are encrypted (after CCS in TLS 1.2, after ServerHello in TLS 1.3)
        self.protected = False
        self.decryptor: RecordDecryptor | None = None
        self.opaque = 0  # records we could not read
        self.after = 0  # records since protection started (read or not)
        self.ccs: int | None = None
        self.finished: int | None = None
        self.closed: int | None = None
        self.reset: int | None = None


class Session:
    """The TLS view of one connection; `endpoints` are (address text, port) of side 0 and side 1."""

    # slots: a capture of many connections holds thousands of these until they close or the file ends
    __slots__ = (
        "alerts",
        "answered",
        "back",
        "cipher",
        "client",
        "decrypting",
        "done",
        "early",
        "endpoints",
        "facts",
        "first_frame",
        "http_status",
        "key",
        "keylog",
        "last_frame",
        "non_tls",
        "notes",
        "offer",
        "random",
        "seen",
        "seen_record",
        "sides",
        "sni",
        "started",
        "syn_seen",
        "tls",
        "tls13",
        "version",
    )

    def __init__(self, first_frame: int, endpoints: tuple[str, str], keylog: KeyLog | None) -> None:
        self.endpoints = endpoints
        self.sides = (_Side(), _Side())
        self.keylog = keylog
        self.client: int | None = None
        self.done = False
        self.first_frame, self.last_frame = first_frame, first_frame
        self.seen_record = False
        self.tls: bool | None = None  # decided by the first bytes of the connection
        self.syn_seen = False
        self.sni: str | None = None
        self.random: bytes | None = None
        self.version: int | None = None
        self.cipher: int | None = None
        self.tls13 = False
        self.decrypting = False
        self.answered = False  # TLS 1.3: the server sent a record after the client's first protected record
        self.facts: dict[str, object] = {}
        self.alerts: list[Alert] = []
        self.notes: list[str] = []
        self.http_status: int | None = None
        self.started: int | None = None  # capture time (ns) of the first packet, set by the reader
        self.key: bytes | None = None  # the reader's key for side 0 (see `connections.Key`)
        self.back: bytes | None = None  # ... and for side 1
        self.seen = first_frame  # frame of the last packet, for the reader's idle policy
        self.offer: messages.ClientOffer | None = None
        self.non_tls: NonTlsReply | None = None
        self.early: tuple[int, bytes] | None = None  # (frame, bytes) the server sent before the client spoke

    # -- TCP -------------------------------------------------------------------------------------------------
    def add_segment(self, index: int, seq: int, flags: int, payload: bytes, missing: int, frame: int) -> None:
        """Feed one TCP segment sent by side `index` (0 or 1) in capture frame `frame`."""
        if self.done:
            return
        if not payload and not flags & _CONTROL and not missing:
            return  # a bare ACK changes nothing
        side = self.sides[index]
        records, stream = side.records, side.stream
        if not flags & _CONTROL and not missing and seq == stream.next_seq and not stream._pending:
            # in order with nothing held (so not a bare ACK: it has a payload): Stream.add's first case,
            # without the call
            stream.next_seq = (seq + len(payload)) & 0xFFFFFFFF
            if records._skip > len(payload):  # the middle of a sealed record nobody can open: only its length
                records._skip -= len(payload)
            else:
                self._add_bytes(index, payload, frame)
            return
        if flags & TCP_SYN:
            self.syn_seen = True
            if not flags & TCP_ACK and self.client is None:
                self.client = index
        for piece in side.stream.add(seq, payload, bool(flags & TCP_SYN), missing):
            self._add_bytes(index, piece, frame)
            if self.done:
                return
        if flags & TCP_RST:
            side.reset = side.reset or frame
        if flags & TCP_FIN:
            side.closed = side.closed or frame

    def add_sealed(self, index: int, seq: int, data: bytes, start: int, end: int, frame: int) -> bool:
        """The common segment of a connection past its handshake, read without copying: in order, without
        flags or a snap-length cut, on a side whose records nobody can open, its bytes only sealed records'
        (the end of the one under way, then whole headers). True when it was taken like `add_segment` takes
        it; False, having changed nothing, for anything else (the caller then calls `add_segment`)."""
        side = self.sides[index]
        records, stream = side.records, side.stream
        if (
            not side.protected
            or side.decryptor is not None
            or seq != stream.next_seq
            or stream._pending
            or records._buf
            or records._resync
            or records.broken
            or self.done
            or not self.tls
        ):
            return False
        pos = start + records._skip
        headers: list[int] = []
        while pos < end:
            if end - pos < 5:
                return False  # a header cut by the segment: the general path keeps its first bytes
            kind, length = data[pos], data[pos + 3] << 8 | data[pos + 4]
            if not (21 <= kind <= 24 and data[pos + 1] == 3 and 2 < length <= MAX_RECORD):
                return False  # a ChangeCipherSpec, a short (plaintext) alert, or not TLS: read it in full
            headers.append(pos)
            pos += 5 + length
        stream.next_seq = (seq + end - start) & 0xFFFFFFFF
        records.skip_bodies = True
        done: list[Record] = [records._skipped] if records._skipped is not None and records._skip else []
        for at in headers:
            done.append(Record(data[at], data[at + 1] << 8 | data[at + 2], data[at : at + 5], b""))
        if pos > end:  # the last record's body runs on into later segments
            records._skip, records._skipped = pos - end, done.pop()
        else:
            records._skip, records._skipped = 0, None
        for record in done:
            self._add_record(index, record, frame)
        return True

    def flush(self, frame: int) -> None:
        """The capture ended: whatever is still waiting behind a hole is delivered after noting the gap."""
        for index, side in enumerate(self.sides):
            if not self.done:
                for piece in side.stream.flush():
                    self._add_bytes(index, piece, frame)

    def _add_bytes(self, index: int, piece: bytes | int, frame: int) -> None:
        side = self.sides[index]
        if isinstance(piece, int):
            self.notes.append(
                f"{piece} bytes from the {self.role(index)} were not captured (before frame {frame})"
            )
            side.records.skip_gap()
            side.messages = messages.HandshakeAssembler()
            return
        if self.tls is None and not self._decide_tls(index, piece, frame):
            return
        # Sealed records nobody can open are only counted: their bodies are skipped by length, not copied.
        side.records.skip_bodies = side.protected and side.decryptor is None
        for record in side.records.feed(piece):
            self._add_record(index, record, frame)
        if side.records.broken:
            self.notes.append(f"the {self.role(index)}'s stream stops looking like TLS at frame {frame}")
            if self.non_tls is None:
                self.non_tls = NonTlsReply(self.role(index), printable(side.records.rejected), frame)
            self._settle()

    def _decide_tls(self, index: int, piece: bytes, frame: int) -> bool:
        """Judge the connection by its first bytes; True when `piece` is to be read as TLS records.

        A server that speaks first (a banner, a plaintext port's error) does not decide: the client's first
        bytes do, and a ClientHello after such bytes makes them the server's non-TLS reply.
        """
        if looks_like_tls(piece):
            self.tls = True
            if self.early is not None:
                self.non_tls = NonTlsReply("server", printable(self.early[1]), self.early[0])
            return True
        if self.client is not None and index != self.client:
            self.early = self.early or (frame, piece[:REPLY_BYTES])
            return False
        self.tls = False
        self._settle()
        return False

    # -- records ---------------------------------------------------------------------------------------------
    def _add_record(self, index: int, record: Record, frame: int) -> None:
        side = self.sides[index]
        if not self.seen_record:
            self.first_frame, self.seen_record = frame, True
        self.last_frame = frame
        kind = record.content_type
        if kind == CHANGE_CIPHER_SPEC:
            if self.version is not None and not self.tls13:  # TLS 1.3 sends a dummy CCS for middleboxes
                side.protected, side.ccs = True, frame
            return
        if (
            kind == ALERT and len(record.body) == 2
        ):  # only a 2-byte alert is plaintext; longer ones are sealed
            self._add_alert(index, record.body, frame)
            return
        if side.protected:
            side.after += 1
            if index != self.client and self.sides[1 - index].after:
                self.answered = True
            if side.decryptor is not None and kind == APPLICATION_DATA:
                self._open_record(index, record, frame)
            else:
                side.opaque += 1
                if kind == HANDSHAKE and not self.tls13:  # TLS 1.2: the sealed handshake message is Finished
                    side.finished = side.finished or frame
            self._check_settled()
            return
        if kind == HANDSHAKE:
            self._add_handshake_bytes(index, record.body, frame)
        else:
            side.opaque += 1

    def _open_record(self, index: int, record: Record, frame: int) -> None:
        side = self.sides[index]
        assert side.decryptor is not None
        try:
            inner, content = side.decryptor.open(record.header, record.body)
        except DecryptError as error:
            self.notes.append(
                f"decryption of the {self.role(index)}'s records failed at frame {frame}: {error}"
            )
            side.decryptor = None
            side.opaque += 1
            if not side.finished:  # the handshake itself stays sealed: judge it as without a key log
                self.decrypting = False
            return
        if inner == HANDSHAKE:
            self._add_handshake_bytes(index, content, frame)
        elif inner == ALERT and len(content) == 2:
            self._add_alert(index, content, frame)
        elif inner == APPLICATION_DATA and index != self.client and self.http_status is None:
            self.http_status = _http_status(content)

    def _add_alert(self, index: int, body: bytes, frame: int) -> None:
        level, code = body[0], body[1]
        self.alerts.append(
            Alert(
                self.role(index),
                ciphers.ALERT_LEVELS.get(level, f"level_{level}"),
                ciphers.alert_name(code),
                code,
                frame,
            )
        )

    def _add_handshake_bytes(self, index: int, data: bytes, frame: int) -> None:
        side = self.sides[index]
        for kind, body in side.messages.feed(data):
            if side.protected and side.decryptor is None:
                return  # TLS 1.3: anything after ServerHello in the same plaintext record is not plaintext
            try:
                self._add_message(index, kind, body, frame)
            except messages.MessageError as error:
                name = ciphers.HANDSHAKE_TYPES.get(kind, f"handshake type {kind}")
                self.notes.append(f"malformed {name} from the {self.role(index)} at frame {frame}: {error}")

    # -- handshake messages ----------------------------------------------------------------------------------
    def _add_message(self, index: int, kind: int, body: bytes, frame: int) -> None:
        if self.client is None:
            self.client = index if kind == 1 else 1 - index
        from_client = index == self.client
        if kind == 1:
            hello, self.offer = messages.read_client_hello(body)
            self.sni, self.random = hello.sni, hello.random
            self.facts["client_hello"] = frame
        elif kind == 2:
            self._add_server_hello(messages.parse_server_hello(body), frame)
        elif kind == 11:
            ders, chain = _certificates(body, self.tls13)
            if from_client:
                self.facts["client_certificate"] = ClientCertificate(bool(chain), chain, frame)
            else:
                self.facts["server_chain"], self.facts["server_chain_der"] = chain, ders
                self.facts["server_chain_frame"] = frame
        elif kind == 13:
            ca_names, ca_names_der, algorithms = _certificate_request(body, self.tls13)
            self.facts["certificate_request"] = CertificateRequest(
                ca_names=ca_names, ca_names_der=ca_names_der, signature_algorithms=algorithms, frame=frame
            )
        elif kind == 20:
            self._add_finished(index, frame)
        elif kind == 24:
            self.notes.append(
                f"KeyUpdate from the {self.role(index)} at frame {frame}: later records stay sealed"
            )
            self.sides[index].decryptor = None

    def _add_server_hello(self, hello: messages.ServerHello, frame: int) -> None:
        self.version, self.cipher = hello.version, hello.cipher
        self.facts["server_hello"] = frame
        if hello.retry:  # TLS 1.3 is decided, but the real ServerHello (and the keys) come later
            self.tls13 = hello.version == 0x0304
            self.notes.append(f"HelloRetryRequest at frame {frame}")
            return
        if hello.version != 0x0304:
            return
        self.tls13 = True
        client, server = self.sides[self.client or 0], self.sides[1 - (self.client or 0)]
        client.protected = server.protected = True
        if self.keylog is None or self.random is None:
            return
        secrets = (
            self.keylog.secret(self.random, CLIENT_HANDSHAKE),
            self.keylog.secret(self.random, SERVER_HANDSHAKE),
        )
        if None in secrets:
            self.notes.append("the key log holds no secrets for this handshake")
        elif not supports(hello.cipher):
            self.notes.append(f"cannot decrypt {ciphers.cipher_name(hello.cipher)} with the key log")
        else:
            client.decryptor = RecordDecryptor(hello.cipher, secrets[0])  # type: ignore[arg-type]  # None ruled out above
            server.decryptor = RecordDecryptor(hello.cipher, secrets[1])  # type: ignore[arg-type]  # None ruled out above
            self.decrypting = True
            self.notes.append("TLS 1.3 handshake decrypted with the key log")

    def _add_finished(self, index: int, frame: int) -> None:
        side = self.sides[index]
        side.finished = side.finished or frame
        label = CLIENT_TRAFFIC if index == self.client else SERVER_TRAFFIC
        secret = self.keylog.secret(self.random, label) if self.keylog and self.random else None
        if secret is None or self.cipher is None:
            side.decryptor = None
            self.notes.append(
                f"the key log has no {label} for this handshake: application records stay sealed"
            )
        else:
            side.decryptor = RecordDecryptor(self.cipher, secret)

    # -- outcome ---------------------------------------------------------------------------------------------
    def _check_settled(self) -> None:
        one, other = self.sides
        if one.finished and other.finished and one.ccs and other.ccs and not self.tls13:
            # TLS 1.2 established: nothing after both Finished messages can change what the handshake shows
            # (a later alert is sealed, a renegotiation too), and the application data that follows is most
            # of a connection's packets
            self._settle()
            return
        first, second = self.sides[0].after, self.sides[1].after
        if (first >= SETTLED_RECORDS and second >= SETTLED_RECORDS) or max(first, second) >= SETTLED_TOTAL:
            self._settle()

    def _settle(self) -> None:
        """Nothing more can change: stop reading this connection and free its buffers."""
        self.done = True
        for side in self.sides:
            side.stream, side.records, side.messages = Stream(), RecordReader(), messages.HandshakeAssembler()

    def closed_for_good(self) -> bool:
        """True when no later packet can change this connection's `Handshake`: both sides were reset, or
        both closed (FIN) after an established handshake with nothing left waiting behind a hole. (A later
        RST would turn a "closed" note into a "reset" one, but only failures carry those notes.) Letting such
        a connection go at once keeps a capture of many short connections in bounded memory."""
        first, second = self.sides
        if first.stream._pending or second.stream._pending:  # flushed at the end, noting where the hole was
            return False
        if first.reset and second.reset:
            return True
        return bool(first.closed and second.closed and self.outcome() is Outcome.ESTABLISHED)

    def role(self, index: int) -> str:
        """``client`` or ``server`` for side `index` (side 0 is the client until we know better)."""
        return "client" if index == (self.client if self.client is not None else 0) else "server"

    def outcome(self) -> Outcome:
        """How the handshake ended so far (see `collector.tls.outcome`)."""
        return decide_outcome(self)

    def to_handshake(self, source: str) -> Handshake:
        """The shared value type for this connection; `source` names the capture file."""
        return summarize_session(self, source)


# A backend sends the same Certificate and CertificateRequest bodies on every connection: each distinct body
# is read once (bodies up to _CACHED_BODY bytes, so that the caches stay small whatever the capture holds).
_CACHED_BODY: Final = 1 << 16


def _certificates(body: bytes, tls13: bool) -> tuple[tuple[bytes, ...], tuple[CertificateSummary, ...]]:
    """The DER certificates of a Certificate message and their summaries."""
    if len(body) <= _CACHED_BODY:
        return _certificates_cached(body, tls13)
    return _read_certificates(body, tls13)


def _read_certificates(body: bytes, tls13: bool) -> tuple[tuple[bytes, ...], tuple[CertificateSummary, ...]]:
    ders = tuple(_shared(der) for der in messages.parse_certificate(body, tls13))
    return ders, tuple(summarize_certificate(der) for der in ders)


_certificates_cached = functools.lru_cache(maxsize=64)(_read_certificates)


def _certificate_request(
    body: bytes, tls13: bool
) -> tuple[tuple[str, ...], tuple[bytes, ...], tuple[str, ...]]:
    """A CertificateRequest's CA names (text and DER) and signature algorithm names."""
    if len(body) <= _CACHED_BODY:
        return _certificate_request_cached(body, tls13)
    return _read_certificate_request(body, tls13)


def _read_certificate_request(
    body: bytes, tls13: bool
) -> tuple[tuple[str, ...], tuple[bytes, ...], tuple[str, ...]]:
    request = messages.parse_certificate_request(body, tls13)
    return (
        tuple(name_to_string(der) for der in request.ca_names),
        request.ca_names,
        tuple(ciphers.signature_scheme_name(s) for s in request.signature_schemes),
    )


_certificate_request_cached = functools.lru_cache(maxsize=64)(_read_certificate_request)


@functools.lru_cache(maxsize=1024)
def _shared(der: bytes) -> bytes:
    """One bytes object per distinct certificate: a backend sends the same chain on every connection."""
    return der


def _http_status(content: bytes) -> int | None:
    """The status code of an HTTP/1.x response at the start of decrypted application data."""
    if content[:7] in (b"HTTP/1.", b"HTTP/2 ") and len(content) >= 12:
        parts = content[:16].split(b" ")
        if len(parts) > 1 and parts[1][:3].isdigit():
            return int(parts[1][:3])
    return None

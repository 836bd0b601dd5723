"""Handshake message bodies: ClientHello, ServerHello, Certificate, CertificateRequest (TLS 1.2 and 1.3).

Public API: `parse_client_hello`, `parse_client_offer`, `parse_server_hello`, `parse_certificate`,
`parse_certificate_request`, their
result types, `HandshakeAssembler` (messages out of record bodies) and `MessageError`.
"""

from __future__ import annotations

import struct
from typing import Final, NamedTuple

# the handshake length field is 24 bits; a 340 KB chain is real, 16 MB is the ceiling
MAX_MESSAGE: Final = 1 << 24
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
_EXT_SERVER_NAME, _EXT_SIGNATURE_ALGORITHMS, _EXT_SUPPORTED_VERSIONS, _EXT_CERTIFICATE_AUTHORITIES = (
    0,
    13,
    43,
    47,
)


class MessageError(ValueError):
    """A handshake message body is shorter or shaped differently than its length fields say."""


class ClientHello(NamedTuple):
    random: bytes
    sni: str | None
    versions: tuple[int, ...]  # supported_versions, empty when the extension is absent


class ClientOffer(NamedTuple):
    """What the client offered: the facts a version or cipher mismatch is judged by (GREASE values left out).

    Attributes:
        legacy_version: the ClientHello's version field (0x0303 even for TLS 1.3 clients).
        versions: the supported_versions extension, in the client's order; empty when absent.
        cipher_suites: the offered cipher suites, in the client's order.
    """

    legacy_version: int
    versions: tuple[int, ...]
    cipher_suites: tuple[int, ...]


class ServerHello(NamedTuple):
    random: bytes
    version: int  # supported_versions' choice when present, else the legacy version
    cipher: int
    retry: bool  # a TLS 1.3 HelloRetryRequest, not a real ServerHello


class CertificateRequestBody(NamedTuple):
    certificate_types: tuple[int, ...]
    signature_schemes: tuple[int, ...]
    ca_names: tuple[bytes, ...]  # DER of each distinguished name


class _Cursor:
    """Reads big-endian integers and length-prefixed vectors, raising MessageError on overrun."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos, self.end = data, pos, len(data) if end is None else end

    def take(self, size: int) -> bytes:
        if self.pos + size > self.end:
            raise MessageError(f"needs {size} bytes at offset {self.pos}, has {self.end - self.pos}")
        self.pos += size
        return self.data[self.pos - size : self.pos]

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> _Cursor:
        size = self.number(length_size)
        start = self.pos
        self.take(size)
        return _Cursor(self.data, start, start + size)

    def remaining(self) -> int:
        return self.end - self.pos

    def extensions(self) -> dict[int, _Cursor]:
        found: dict[int, _Cursor] = {}
        if self.remaining() == 0:
            return found
        block = self.vector(2)
        while block.remaining():
            kind = block.number(2)
            found[kind] = block.vector(2)
        return found


def parse_client_hello(body: bytes) -> ClientHello:
    return read_client_hello(body)[0]


def parse_client_offer(body: bytes) -> ClientOffer:
    """The versions and cipher suites a ClientHello offers."""
    return read_client_hello(body)[1]


def read_client_hello(body: bytes) -> tuple[ClientHello, ClientOffer]:
    """Both views of one ClientHello, parsed once."""
    hello, (legacy, suites) = _read_client_hello(body)
    offer = ClientOffer(legacy, _without_grease(hello.versions), _without_grease(suites))
    # A client offers the same list on every connection: share one copy (each suite number is an object), so
    # that thousands of open connections do not hold thousands of equal lists.
    shared = _OFFERS.get(offer)
    if shared is not None:
        return hello, shared
    if len(_OFFERS) < _MAX_OFFERS:
        _OFFERS[offer] = offer
    return hello, offer


_MAX_OFFERS: Final = 256
_OFFERS: dict[ClientOffer, ClientOffer] = {}


_GREASE = frozenset(0x0A0A + 0x1010 * n for n in range(16))  # RFC 8701: values servers must learn to ignore


def _without_grease(values: tuple[int, ...]) -> tuple[int, ...]:
    """The values without GREASE (not offers); most clients send none: the common case is one C-level test."""
    if _GREASE.isdisjoint(values):
        return values
    return tuple(v for v in values if v not in _GREASE)


def _read_client_hello(body: bytes) -> tuple[ClientHello, tuple[int, tuple[int, ...]]]:
    """One ClientHello per connection: read with plain offsets; anything out of bounds is read again by the
    checking cursor below, which raises the MessageError that says where."""
    size = len(body)
    if size < 35:
        return _read_client_hello_checked(body)
    pos = 35 + body[34]  # after version, random and session id
    if pos + 2 > size:
        return _read_client_hello_checked(body)
    suites_end = pos + 2 + (body[pos] << 8 | body[pos + 1])
    if suites_end + 1 > size:
        return _read_client_hello_checked(body)
    extensions = _extension_spans(body, suites_end + 1 + body[suites_end])
    if extensions is None:
        return _read_client_hello_checked(body)
    sni = None
    if _EXT_SERVER_NAME in extensions:
        sni = _sni(body, *extensions[_EXT_SERVER_NAME])
    versions: tuple[int, ...] = ()
    if _EXT_SUPPORTED_VERSIONS in extensions:
        start, end = extensions[_EXT_SUPPORTED_VERSIONS]
        if start == end or start + 1 + body[start] > end:
            return _read_client_hello_checked(body)
        versions = _numbers(body[start + 1 : start + 1 + body[start]])
    legacy, random = body[0] << 8 | body[1], body[2:34]
    return ClientHello(random, sni, versions), (legacy, _numbers(body[pos + 2 : suites_end]))


_EXTENSION_HEADER: Final = struct.Struct(">HH").unpack_from
_READ_EXTENSIONS = frozenset((_EXT_SERVER_NAME, _EXT_SUPPORTED_VERSIONS))


def _extension_spans(body: bytes, pos: int) -> dict[int, tuple[int, int]] | None:
    """Where the data of the extensions the hello parsers read (server_name, supported_versions) is, for the
    extensions block at `pos` (none when the body ends there); None when a length runs past the end (the
    checking cursor then says where)."""
    size = len(body)
    if pos == size:
        return {}
    if pos + 2 > size:
        return None
    end = pos + 2 + (body[pos] << 8 | body[pos + 1])
    if end > size:
        return None
    pos += 2
    found: dict[int, tuple[int, int]] = {}
    while pos + 4 <= end:
        kind, length = _EXTENSION_HEADER(body, pos)
        pos += 4 + length
        if kind in _READ_EXTENSIONS:
            found[kind] = (pos - length, pos)
    return found if pos == end else None  # short of the end: a cut extension header; past it: a cut body


def _sni(body: bytes, start: int, end: int) -> str | None:
    """The server_name extension's host name (its data at `start:end`): the common list of one host_name
    entry read with plain offsets, any other list by `_host_name` (which raises where one is cut)."""
    if start + 5 <= end and body[start + 2] == 0:
        list_end = start + 2 + (body[start] << 8 | body[start + 1])
        name_end = start + 5 + (body[start + 3] << 8 | body[start + 4])
        if name_end <= list_end <= end:
            return body[start + 5 : name_end].decode("ascii", "replace")
    return _host_name(_Cursor(body, start, end).vector(2))


def _read_client_hello_checked(body: bytes) -> tuple[ClientHello, tuple[int, tuple[int, ...]]]:
    cursor = _Cursor(body)
    legacy = cursor.number(2)
    random = cursor.take(32)
    cursor.vector(1)  # session id
    listed = cursor.vector(2)
    suites = _numbers(listed.take(listed.remaining()))
    cursor.vector(1)  # compression methods
    extensions = cursor.extensions()
    sni = None
    if _EXT_SERVER_NAME in extensions:
        sni = _host_name(extensions[_EXT_SERVER_NAME].vector(2))
    versions: tuple[int, ...] = ()
    if _EXT_SUPPORTED_VERSIONS in extensions:
        listed = extensions[_EXT_SUPPORTED_VERSIONS].vector(1)
        versions = _numbers(listed.take(listed.remaining()))
    return ClientHello(random, sni, versions), (legacy, suites)


def _numbers(data: bytes) -> tuple[int, ...]:
    """A list of 16-bit values (an odd trailing byte is ignored, as the length-based loop did)."""
    return struct.unpack(f">{len(data) // 2}H", data[: len(data) // 2 * 2])


def parse_server_hello(body: bytes) -> ServerHello:
    size = len(body)
    if size >= 35:  # the common case with plain offsets, as for the ClientHello
        pos = 35 + body[34]
        if pos + 3 <= size and (extensions := _extension_spans(body, pos + 3)) is not None:
            version = body[0] << 8 | body[1]
            if _EXT_SUPPORTED_VERSIONS in extensions:
                start, end = extensions[_EXT_SUPPORTED_VERSIONS]
                if start + 2 > end:
                    return _parse_server_hello_checked(body)
                version = body[start] << 8 | body[start + 1]
            random = body[2:34]
            return ServerHello(random, version, body[pos] << 8 | body[pos + 1], random == HRR_RANDOM)
    return _parse_server_hello_checked(body)


def _parse_server_hello_checked(body: bytes) -> ServerHello:
    cursor = _Cursor(body)
    version = cursor.number(2)
    random = cursor.take(32)
    cursor.vector(1)  # session id
    cipher = cursor.number(2)
    cursor.take(1)  # compression method
    extensions = cursor.extensions()
    if _EXT_SUPPORTED_VERSIONS in extensions:
        version = extensions[_EXT_SUPPORTED_VERSIONS].number(2)
    return ServerHello(random, version, cipher, random == HRR_RANDOM)


def parse_certificate(body: bytes, tls13: bool) -> tuple[bytes, ...]:
    """The DER certificates of a Certificate message, leaf first (empty for the empty client Certificate)."""
    cursor = _Cursor(body)
    if tls13:
        cursor.vector(1)  # certificate_request_context
    entries = cursor.vector(3)
    chain = []
    while entries.remaining():
        vector = entries.vector(3)
        chain.append(vector.take(vector.remaining()))
        if tls13:
            entries.vector(2)  # per-certificate extensions (OCSP, SCT)
    return tuple(chain)


def parse_certificate_request(body: bytes, tls13: bool) -> CertificateRequestBody:
    """Certificate types, signature schemes and acceptable CA names (TLS 1.3: extensions 13 and 47)."""
    cursor = _Cursor(body)
    if tls13:
        cursor.vector(1)  # certificate_request_context
        extensions = cursor.extensions()
        signature = extensions.get(_EXT_SIGNATURE_ALGORITHMS)
        authorities = extensions.get(_EXT_CERTIFICATE_AUTHORITIES)
        schemes = _schemes(signature) if signature is not None else ()
        names = _names(authorities) if authorities is not None else ()
        return CertificateRequestBody((), schemes, names)
    types_vector = cursor.vector(1)
    types = tuple(types_vector.take(types_vector.remaining()))
    schemes = _schemes(cursor) if cursor.remaining() > 2 and _has_schemes(body, cursor) else ()
    return CertificateRequestBody(types, schemes, _names(cursor))


def _has_schemes(body: bytes, cursor: _Cursor) -> bool:
    """TLS 1.0/1.1 CertificateRequests have no signature algorithms: tell by whether the lengths add up."""
    probe = _Cursor(body, cursor.pos, cursor.end)
    try:
        probe.vector(2)
        probe.vector(2)
    except MessageError:
        return False
    return probe.remaining() == 0


def _schemes(cursor: _Cursor) -> tuple[int, ...]:
    listed = cursor.vector(2)
    return tuple(listed.number(2) for _ in range(listed.remaining() // 2))


def _names(cursor: _Cursor) -> tuple[bytes, ...]:
    listed = cursor.vector(2)
    names = []
    while listed.remaining():
        name = listed.vector(2)
        names.append(name.take(name.remaining()))
    return tuple(names)


class HandshakeAssembler:
    """Joins record bodies into handshake messages (one message may span records, one record hold several)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add a record body; return the (type, body) of every message it completes."""
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < 4 or 4 + (buf[1] << 16 | buf[2] << 8 | buf[3]) > len(buf):
                return []  # a message still arriving: the buffer is copied once, when it is whole
            source = bytes(buf)  # cut from bytes, as a record read in place is
        else:  # the common case, a record starting with a message: read it in place, keep only its tail
            source = data
        messages = []
        pos, size = 0, len(source)
        while size - pos >= 4:
            end = pos + 4 + (source[pos + 1] << 16 | source[pos + 2] << 8 | source[pos + 3])
            if end > size:
                break
            messages.append((source[pos], source[pos + 4 : end]))
            pos = end
        if buf:
            del buf[:pos]
        elif pos < size:
            buf += memoryview(source)[pos:]
        return messages

    def pending(self) -> int:
        """Bytes of an unfinished message held (at most MAX_MESSAGE, by construction of the length field)."""
        return len(self._buf)


def _host_name(names: _Cursor) -> str | None:
    """The host_name entry (type 0) of a server_name list, the one SNI JSSE and OpenSSL send."""
    while names.remaining():
        kind, name = names.number(1), names.vector(2)
        if kind == 0:
            return name.take(name.remaining()).decode("ascii", "replace")
    return None

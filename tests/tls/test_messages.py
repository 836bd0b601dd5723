"""Handshake message parsers and the assembler, on bodies laid out as RFC 5246 / RFC 8446 define them."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from collector.tls import messages


def vec(size: int, body: bytes) -> bytes:
    return len(body).to_bytes(size, "big") + body


def ext(kind: int, body: bytes) -> bytes:
    return kind.to_bytes(2, "big") + vec(2, body)


def dn(common_name: str) -> bytes:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]).public_bytes()


RANDOM = bytes(range(32))
SCHEMES = b"\x04\x01\x08\x04"
NAMES = vec(2, dn("CA One")) + vec(2, dn("CA Two"))


def client_hello(extensions: bytes | None) -> bytes:
    body = b"\x03\x03" + RANDOM + vec(1, b"s" * 32) + vec(2, b"\x13\x01\xc0\x2f") + vec(1, b"\x00")
    return body + (vec(2, extensions) if extensions is not None else b"")


def server_hello(random: bytes, extensions: bytes) -> bytes:
    return b"\x03\x03" + random + vec(1, b"") + b"\x13\x02" + b"\x00" + vec(2, extensions)


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            client_hello(
                ext(0, vec(2, b"\x00" + vec(2, b"backend.lab"))) + ext(43, vec(1, b"\x03\x04\x03\x03"))
            ),
            messages.ClientHello(RANDOM, "backend.lab", (0x0304, 0x0303)),
        ),
        (client_hello(ext(10, b"\x00\x02\x00\x17")), messages.ClientHello(RANDOM, None, ())),
        (client_hello(None), messages.ClientHello(RANDOM, None, ())),
    ],
    ids=["sni and versions", "other extensions", "no extensions"],
)
def test_client_hello(body: bytes, expected: messages.ClientHello) -> None:
    assert messages.parse_client_hello(body) == expected


def _hello_offering(suites: bytes, versions: bytes | None) -> bytes:
    body = b"\x03\x03" + RANDOM + vec(1, b"") + vec(2, suites) + vec(1, b"\x00")
    return body + (vec(2, ext(43, vec(1, versions))) if versions is not None else b"")


OFFERS = {
    # name: (ClientHello body, expected offer)
    "TLS 1.3 client": (
        _hello_offering(b"\x13\x01\xc0\x2f", b"\x03\x04\x03\x03"),
        messages.ClientOffer(0x0303, (0x0304, 0x0303), (0x1301, 0xC02F)),
    ),
    "legacy version only": (_hello_offering(b"\xc0\x2f", None), messages.ClientOffer(0x0303, (), (0xC02F,))),
    "GREASE values are no offers": (
        _hello_offering(b"\x0a\x0a\x13\x01\xfa\xfa", b"\x2a\x2a\x03\x04"),
        messages.ClientOffer(0x0303, (0x0304,), (0x1301,)),
    ),
}


@pytest.mark.parametrize("body,expected", OFFERS.values(), ids=OFFERS.keys())
def test_client_offer(body: bytes, expected: messages.ClientOffer) -> None:
    # Given a ClientHello, Then its offer lists the versions and suites in the client's order
    assert messages.parse_client_offer(body) == expected
    assert messages.read_client_hello(body)[1] == expected


def _outcome(parse: Callable[[bytes], object], body: bytes) -> object:
    try:
        return parse(body)
    except messages.MessageError as error:
        return f"MessageError: {error}"


def _damaged(body: bytes, seed: int) -> list[bytes]:
    """The body cut at every length, and with bytes changed, inserted or removed at random places."""
    draw = random.Random(seed)
    variants = [body[:size] for size in range(len(body))]
    for _ in range(300):
        at = draw.randrange(len(body))
        changed = bytearray(body)
        changed[at] = draw.randrange(256)
        inserted = body[:at] + bytes([draw.randrange(256)]) + body[at:]
        variants += [bytes(changed), inserted, body[:at] + body[at + 2 :]]
    return variants


HELLOS = [
    client_hello(ext(0, vec(2, b"\x00" + vec(2, b"backend.lab"))) + ext(43, vec(1, b"\x03\x04\x03\x03"))),
    client_hello(ext(10, b"\x00\x02\x00\x17") + ext(0, vec(2, b"\x05\x00\x01x" + b"\x00" + vec(2, b"b")))),
    client_hello(ext(0, vec(2, b"")) + ext(43, vec(1, b"\x0a\x0a\x03\x03")) + ext(0xFF01, b"\x00")),
    client_hello(b""),
    server_hello(RANDOM, ext(43, b"\x03\x04") + ext(51, b"k" * 36)),
    server_hello(messages.HRR_RANDOM, ext(51, b"\x00\x17") + ext(43, b"\x03\x04")),
]


@pytest.mark.parametrize("index", range(len(HELLOS)))
def test_hellos_read_with_plain_offsets_as_the_checking_cursor_reads_them(index: int) -> None:
    # Given a hello, whole and damaged every way (white box: the common case is read with plain offsets, and
    # anything out of bounds goes to the checking cursor, which says where)
    for body in [HELLOS[index], *_damaged(HELLOS[index], index)]:
        # Then both readers give the same hello, or the same error
        for plain, checked in [
            (messages._read_client_hello, messages._read_client_hello_checked),
            (messages.parse_server_hello, messages._parse_server_hello_checked),
        ]:
            assert _outcome(plain, body) == _outcome(checked, body)


@pytest.mark.parametrize(
    "body, version, retry",
    [
        (server_hello(RANDOM, b""), 0x0303, False),
        (server_hello(RANDOM, ext(43, b"\x03\x04")), 0x0304, False),
        (server_hello(messages.HRR_RANDOM, ext(43, b"\x03\x04")), 0x0304, True),
    ],
    ids=["tls 1.2", "tls 1.3 via supported_versions", "hello retry request"],
)
def test_server_hello(body: bytes, version: int, retry: bool) -> None:
    hello = messages.parse_server_hello(body)
    assert (hello.version, hello.cipher, hello.retry) == (version, 0x1302, retry)


@pytest.mark.parametrize(
    "body, tls13, expected",
    [
        (vec(3, vec(3, b"leaf") + vec(3, b"ca")), False, (b"leaf", b"ca")),
        (vec(3, b""), False, ()),
        (
            vec(1, b"") + vec(3, vec(3, b"leaf") + vec(2, b"ocsp") + vec(3, b"ca") + vec(2, b"")),
            True,
            (b"leaf", b"ca"),
        ),
        (vec(1, b"") + vec(3, b""), True, ()),
    ],
    ids=["1.2 chain", "1.2 empty", "1.3 chain with extensions", "1.3 empty"],
)
def test_certificate(body: bytes, tls13: bool, expected: tuple[bytes, ...]) -> None:
    assert messages.parse_certificate(body, tls13) == expected


@pytest.mark.parametrize(
    "body, tls13, expected",
    [
        (
            vec(1, b"\x01\x40") + vec(2, SCHEMES) + vec(2, NAMES),
            False,
            messages.CertificateRequestBody((1, 64), (0x0401, 0x0804), (dn("CA One"), dn("CA Two"))),
        ),
        (
            vec(1, b"\x01") + vec(2, SCHEMES) + vec(2, b""),
            False,
            messages.CertificateRequestBody((1,), (0x0401, 0x0804), ()),
        ),
        (
            vec(1, b"\x01\x02") + vec(2, NAMES),
            False,
            messages.CertificateRequestBody((1, 2), (), (dn("CA One"), dn("CA Two"))),
        ),
        (
            vec(1, b"") + vec(2, ext(13, vec(2, SCHEMES)) + ext(47, vec(2, NAMES))),
            True,
            messages.CertificateRequestBody((), (0x0401, 0x0804), (dn("CA One"), dn("CA Two"))),
        ),
        (
            vec(1, b"") + vec(2, ext(13, vec(2, SCHEMES))),
            True,
            messages.CertificateRequestBody((), (0x0401, 0x0804), ()),
        ),
    ],
    ids=[
        "1.2",
        "1.2 no CA names",
        "1.0 (no signature algorithms)",
        "1.3 extensions 13 and 47",
        "1.3 without 47",
    ],
)
def test_certificate_request(body: bytes, tls13: bool, expected: messages.CertificateRequestBody) -> None:
    assert messages.parse_certificate_request(body, tls13) == expected


@pytest.mark.parametrize(
    "parse, body",
    [
        (messages.parse_client_hello, client_hello(None)[:20]),
        (messages.parse_server_hello, server_hello(RANDOM, ext(43, b"\x03"))),
        (lambda b: messages.parse_certificate(b, False), vec(3, vec(3, b"leaf"))[:-1]),
        (lambda b: messages.parse_certificate_request(b, False), vec(1, b"\x01") + b"\x00\x09\x01"),
    ],
    ids=["short client hello", "short extension", "short certificate", "short request"],
)
def test_malformed_bodies_raise_message_error(parse: object, body: bytes) -> None:
    with pytest.raises(messages.MessageError):
        parse(body)  # type: ignore[operator]


def test_assembler_joins_split_messages_and_splits_joined_ones() -> None:
    # Given a 300 KB message split over 20 records, followed in the last record by two small messages
    big = b"\x0b" + (300_000).to_bytes(3, "big") + b"c" * 300_000
    small = b"\x0e\x00\x00\x00" + b"\x14\x00\x00\x02ok"
    stream = big + small
    assembler = messages.HandshakeAssembler()
    out = []
    for start in range(0, len(stream), 16_000):
        out += assembler.feed(stream[start : start + 16_000])
    # Then three messages come out, whole and in order
    assert [(kind, len(body)) for kind, body in out] == [(11, 300_000), (14, 0), (20, 2)]
    assert {type(body) for _, body in out} == {bytes}
    assert assembler.pending() == 0

"""The facts the version, suite and SNI causes share: what a ClientHello lets a server choose, which refusals
came before any ServerHello (on the real failure captures), and how the offer is shown in evidence."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from collector.diagnosis.negotiation import (
    offer_accepts,
    offer_line,
    refused_before_server_hello,
    suites_text,
)
from collector.tls.capture import read_handshakes
from collector.tls.handshake import ClientHelloOffer, Handshake
from collector.tls.keylog import load_keylog
from tests.diagnosis.builders import handshake
from tests.diagnosis.conftest import CAPTURES

FAILURES = CAPTURES / "failures"

ACCEPTS = [
    # (legacy version, supported_versions, version the server chose, may it)
    ("TLSv1.2", ("TLSv1.3", "TLSv1.2"), "TLSv1.2", True),
    ("TLSv1.2", ("TLSv1.3",), "TLSv1.2", False),
    ("TLSv1.2", (), "TLSv1.1", True),  # no supported_versions: TLS 1.2 and older negotiate downwards
    ("TLSv1.2", (), "TLSv1.3", False),
    ("TLSv1.1", (), "TLSv1.2", False),
    ("0x7f1c", (), "0x7f1c", True),  # a version we cannot name compares as itself
]


@pytest.mark.parametrize(("legacy", "supported", "chosen", "expected"), ACCEPTS)
def test_what_a_client_hello_lets_the_server_choose(legacy: str, supported: tuple[str, ...], chosen: str,
                                                    expected: bool) -> None:
    # Given an offer, When a server chooses a version, Then only an offered (or lower legacy) one fits
    assert offer_accepts(ClientHelloOffer(legacy, supported), chosen) is expected


def _first(name: str) -> Handshake:
    path = FAILURES / name
    keys = path.with_suffix(".keys")
    return read_handshakes(path, load_keylog(keys) if keys.exists() else None).handshakes[0]


REFUSED = {
    "protocol-mismatch-java12-openssl13.pcap": True,
    "protocol-mismatch-java13-openssl12.pcap": True,
    "cipher-mismatch-java-openssl-tls12.pcap": True,
    "cipher-mismatch-java-openssl-tls13.pcap": True,
    "sni-required-java-nginx-tls12.pcap": True,
    "sni-required-openssl-nginx-tls12.pcap": True,
    # the MP's own alert, after the backend's flight
    "server-certificate-untrusted-java-openssl-tls12.pcap": False,
    "server-certificate-expired-java-openssl-tls13.pcap": False,
    "backend-not-tls-java-nginx.pcap": False,  # answered, but not in TLS
    "protocol-disabled-java11-openssl.pcap": False,  # no ClientHello was refused: none was sent
}


@pytest.mark.parametrize("name", REFUSED, ids=lambda n: Path(n).stem)
def test_refused_before_server_hello_on_real_captures(name: str) -> None:
    # Given a real failure, Then it is a refusal of the ClientHello only when the backend sent nothing before
    assert refused_before_server_hello(_first(name)) is REFUSED[name]


def test_offer_line_names_sni_versions_and_suites() -> None:
    # Given a ClientHello with no SNI and many suites
    offer = ClientHelloOffer("TLSv1.2", ("TLSv1.3", "TLSv1.2"), tuple(f"0x{n:04x}" for n in range(70)), 4)
    hs = replace(handshake(sni=None), client_hello=offer)
    # When shown, Then the line says no SNI was sent, the versions, and the suites cut with a count
    line = offer_line(hs, True, suites=True)
    assert line.startswith("frame 4 (lab.pcap): ClientHello from 127.0.0.11:53122 to 127.0.0.21:8443 (no SNI")
    assert "offers TLSv1.3, TLSv1.2 and 70 cipher suite(s): 0x0000, 0x0001" in line
    assert suites_text(hs).endswith("0x003b (and 10 more)")

"""read_handshakes on the real captures, their derived variants, tshark's reading of the same files, and
bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.errors import CaptureFormatError
from collector.tls.capture import is_capture, read_handshakes
from collector.tls.handshake import Outcome
from collector.tls.keylog import KeyLog
from tests.tls import rewrite
from tests.tls.conftest import (
    ALL_CAPTURES,
    PLAIN_CAPTURES,
    capture_path,
    keylog_for,
    keys_for,
    read_fixture,
    summary,
)

F, E, OP = Outcome.FAILED, Outcome.ESTABLISHED, Outcome.OPAQUE
CA_A = ("CN=Lab CA A,OU=caA,O=Lab Org,C=US",)
# name: (version, acceptable CA names or None, client Certificate sent (None: not seen),
#        alerts, outcome, http)
EXPECTED = {
    "ca-mismatch-java-tls12.pcap": ("TLSv1.2", CA_A, False, [("server", 42)], F, None),
    "ca-mismatch-java-tls13.pcap": ("TLSv1.3", None, None, [], OP, None),
    "ca-mismatch-nginx-tls12.pcap": ("TLSv1.2", CA_A, False, [], E, None),
    "ca-mismatch-nginx-tls13.pcap": ("TLSv1.3", None, None, [], OP, None),
    "ca-mismatch-openssl-tls12.pcap": ("TLSv1.2", CA_A, False, [("server", 40)], F, None),
    "ca-mismatch-openssl-tls13.pcap": ("TLSv1.3", CA_A, False, [("server", 116)], F, None),
    "client-certificate-rejected-openssl-tls12.pcap": ("TLSv1.2", CA_A, True, [("server", 48)], F, None),
    "healthy-java-tls12.pcap": ("TLSv1.2", CA_A, True, [], E, None),
    "healthy-java-tls13.pcap": ("TLSv1.3", None, None, [], OP, None),
    "healthy-nginx-tls12.pcap": ("TLSv1.2", CA_A, True, [], E, None),
    "healthy-nginx-tls13.pcap": ("TLSv1.3", None, None, [], OP, None),
    "healthy-openssl-tls12-any.pcap": ("TLSv1.2", CA_A, True, [], E, None),
    "healthy-openssl-tls12.pcap": ("TLSv1.2", CA_A, True, [], E, None),
    "healthy-openssl-tls13.pcap": ("TLSv1.3", CA_A, True, [("server", 0), ("client", 0)], E, 200),
    "healthy-openssl-tls13-hrr.pcap": ("TLSv1.3", CA_A, True, [("server", 0), ("client", 0)], E, 200),
    "healthy-openssl-tls13-aes128.pcap": ("TLSv1.3", CA_A, True, [("server", 0), ("client", 0)], E, 200),
    "large-chain-openssl-tls12.pcap.gz": ("TLSv1.2", CA_A, None, [("client", 47)], F, None),
    "missing-client-certificate-java-tls12.pcap": ("TLSv1.2", CA_A, False, [("server", 42)], F, None),
    "missing-client-certificate-java-tls13.pcap": ("TLSv1.3", None, None, [], OP, None),
    "missing-client-certificate-nginx-tls12.pcap": ("TLSv1.2", CA_A, False, [], E, None),
    "missing-client-certificate-nginx-tls13.pcap": ("TLSv1.3", None, None, [], OP, None),
    "missing-client-certificate-nginx-tls13-keys.pcap": (
        "TLSv1.3",
        CA_A,
        False,
        [("server", 0), ("client", 0)],
        E,
        400,
    ),
    "missing-client-certificate-openssl-tls12.pcap": ("TLSv1.2", CA_A, False, [("server", 40)], F, None),
    "missing-client-certificate-openssl-tls12-ipv6.pcap": ("TLSv1.2", CA_A, False, [("server", 40)], F, None),
    "missing-client-certificate-openssl-tls13.pcap": ("TLSv1.3", CA_A, False, [("server", 116)], F, None),
    "missing-client-certificate-openssl-tls13-aes128.pcap": (
        "TLSv1.3",
        CA_A,
        False,
        [("server", 116)],
        F,
        None,
    ),
    "missing-client-certificate-openssl-tls13-chacha20.pcap": (
        "TLSv1.3",
        CA_A,
        False,
        [("server", 116)],
        F,
        None,
    ),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == ALL_CAPTURES


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_fixture_handshake_matches_the_scenario(name: str, fixture_results: dict) -> None:
    # Given a real capture (and its key log), When we read it, Then its one handshake shows the
    # scenario's facts
    version, ca_names, sent, alerts, outcome, http = EXPECTED[name]
    result = fixture_results[name]
    assert result.tls_connections == 1 and len(result.handshakes) == 1
    handshake = result.handshakes[0]
    assert handshake.version == version
    assert handshake.sni == "backend.lab"
    assert handshake.source == name
    assert (handshake.certificate_request.ca_names if handshake.certificate_request else None) == ca_names
    assert (handshake.client_certificate.sent if handshake.client_certificate else None) == sent
    assert [(a.sender, a.code) for a in handshake.alerts] == alerts
    assert handshake.outcome is outcome
    assert handshake.http_status == http
    if version == "TLSv1.3" and ca_names is None:  # no key log: the part that matters stays sealed
        assert handshake.server_chain == () and handshake.encrypted_records > 0


@pytest.mark.parametrize("name", [n for n in ALL_CAPTURES if keys_for(n)])
def test_tls13_without_the_key_log_is_opaque_or_failed(name: str) -> None:
    # Given a TLS 1.3 capture, When read without its key log, Then nothing encrypted is claimed
    handshake = read_fixture(name, with_keys=False).handshakes[0]
    assert handshake.certificate_request is None and handshake.client_certificate is None
    assert handshake.alerts == () and handshake.server_chain == ()
    assert handshake.outcome in (Outcome.OPAQUE, Outcome.FAILED)


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_fields_agree_with_tshark(name: str, fixture_results: dict, tshark_views: dict) -> None:
    # Given the same file, When tshark (out-of-order reassembly on, key log given) and we read it, Then
    # facts agree
    rows = tshark_views[name].rows
    handshake = fixture_results[name].handshakes[0]
    client_port = handshake.client.rsplit(":", 1)[1]
    alerts = [(r["frame.number"], r["tls.alert_message.desc"]) for r in rows if r["tls.alert_message.desc"]]
    assert alerts == [(str(a.frame), str(a.code)) for a in handshake.alerts]
    requests = [r["frame.number"] for r in rows if "13" in r["tls.handshake.type"].split(",")]
    request = handshake.certificate_request
    assert requests == ([str(request.frame)] if request else [])
    client_certs = [
        (r["frame.number"], r["tls.handshake.certificates_length"])
        for r in rows
        if r["tcp.srcport"] == client_port and "11" in r["tls.handshake.type"].split(",")
    ]
    client_cert = handshake.client_certificate
    assert client_certs[:1] == (
        [(str(client_cert.frame), "0" if not client_cert.sent else client_certs[0][1])] if client_cert else []
    )
    # tshark's dname_raw is the RDNSequence's content: wrap it back into its SEQUENCE header
    assert [_sequence(bytes.fromhex(h)) for h in tshark_views[name].dn_hex] == list(
        request.ca_names_der if request else []
    )


def _sequence(content: bytes) -> bytes:
    if len(content) < 128:
        return b"\x30" + bytes([len(content)]) + content
    size = len(content).to_bytes((len(content).bit_length() + 7) // 8, "big")
    return b"\x30" + bytes([0x80 | len(size)]) + size + content


# -- derived variants of the real captures -------------------------------------------------------------------


def _variant_summaries(path: Path, name: str, *, endpoints: bool = True) -> list[tuple[object, ...]]:
    return [summary(h, endpoints=endpoints) for h in read_handshakes(path, keylog_for(name)).handshakes]


def _original(name: str, *, endpoints: bool = True) -> list[tuple[object, ...]]:
    return [summary(h, endpoints=endpoints) for h in read_fixture(name).handshakes]


VARIANT_SOURCES = [
    "ca-mismatch-java-tls12.pcap",
    "healthy-openssl-tls12.pcap",
    "missing-client-certificate-openssl-tls13.pcap",
    "healthy-openssl-tls13-aes128.pcap",
]
SEGMENT_VARIANTS = {
    "mss-536": lambda segs: rewrite.resegment(segs, 536),
    "mss-100-reordered-duplicated": lambda segs: rewrite.reorder(rewrite.resegment(segs, 100)),
    "reordered": rewrite.reorder,
}


@pytest.mark.parametrize("variant", sorted(SEGMENT_VARIANTS))
@pytest.mark.parametrize("name", VARIANT_SOURCES)
def test_resegmented_and_reordered_copies_read_the_same(name: str, variant: str, tmp_path: Path) -> None:
    # Given a capture whose segments were split, swapped, duplicated and overlapped, Then the facts do
    # not change
    segs = SEGMENT_VARIANTS[variant](rewrite.segments(capture_path(name)))
    path = rewrite.write_pcap(tmp_path / "v.pcap", 1, rewrite.frames_for(segs))
    assert _variant_summaries(path, name) == _original(name)


LINK_VARIANTS = {
    "ethernet-vlan": (1, {"vlans": 1}),
    "ethernet-qinq": (1, {"vlans": 2}),
    "sll": (113, {}),
    "sll2": (276, {}),
    "raw": (101, {}),
    "ipv4": (228, {}),
    "null-little-endian": (0, {"null_order": "<"}),
    "null-big-endian": (0, {"null_order": ">"}),
    "loop": (108, {}),
}


@pytest.mark.parametrize("variant", sorted(LINK_VARIANTS))
def test_every_link_type_reads_the_same(variant: str, tmp_path: Path) -> None:
    # Given the same packets behind another link header, When read, Then the handshake is the same
    name = "ca-mismatch-java-tls12.pcap"
    linktype, options = LINK_VARIANTS[variant]
    frames = rewrite.frames_for(rewrite.segments(capture_path(name)), linktype, **options)
    assert _variant_summaries(rewrite.write_pcap(tmp_path / "v.pcap", linktype, frames), name) == _original(
        name
    )


@pytest.mark.parametrize("linktype, hop_by_hop", [(1, False), (229, True), (101, True), (0, False)])
def test_ipv6_with_and_without_extension_headers(linktype: int, hop_by_hop: bool, tmp_path: Path) -> None:
    # Given the IPv4 packets re-addressed as IPv6 (with a hop-by-hop header), Then only the endpoints change
    name = "missing-client-certificate-openssl-tls12.pcap"
    frames = rewrite.frames_for(
        rewrite.segments(capture_path(name)), linktype, ipv6=True, hop_by_hop=hop_by_hop
    )
    path = rewrite.write_pcap(tmp_path / "v6.pcap", linktype, frames)
    handshake = read_handshakes(path).handshakes[0]
    assert handshake.client.startswith("[fd00::7f00:b]:") and handshake.server.startswith("[fd00::7f00:15]:")
    assert _variant_summaries(path, name, endpoints=False) == _original(name, endpoints=False)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nanos", [False, True])
def test_pcap_byte_orders_and_nanosecond_timestamps(order: str, nanos: bool, tmp_path: Path) -> None:
    name = "healthy-java-tls12.pcap"
    linktype, frames = rewrite.read_pcap(capture_path(name))
    path = rewrite.write_pcap(tmp_path / "o.pcap", linktype, frames, order=order, nanos=nanos)
    assert _variant_summaries(path, name) == _original(name)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("simple", [False, True])
def test_pcapng_of_two_captures_on_two_interfaces(order: str, simple: bool, tmp_path: Path) -> None:
    # Given two captures merged into one pcapng (Ethernet on interface 0, SLL2 on 1; or SPBs), Then both
    # are found
    first, second = "ca-mismatch-java-tls12.pcap", "healthy-openssl-tls12-any.pcap"
    _, frames_a = rewrite.read_pcap(capture_path(first))
    _, frames_b = rewrite.read_pcap(capture_path(second))
    packets = [(0, f) for f in frames_a] + ([] if simple else [(1, f) for f in frames_b])
    path = rewrite.write_pcapng(tmp_path / "m.pcapng", packets, [1, 276], order=order, simple=simple)
    result = read_handshakes(path)
    expected = _original(first) + ([] if simple else _original(second))
    assert [summary(h) for h in result.handshakes] == expected
    assert result.packets == len(packets)


def test_pcapng_written_by_editcap_reads_the_same(tmp_path: Path) -> None:
    import subprocess

    name = "healthy-nginx-tls12.pcap"
    out = tmp_path / "e.pcapng.gz"
    subprocess.run(
        ["editcap", "-F", "pcapng", str(capture_path(name)), str(tmp_path / "e.pcapng")], check=True
    )
    out.write_bytes(gzip.compress((tmp_path / "e.pcapng").read_bytes()))
    assert _variant_summaries(tmp_path / "e.pcapng", name) == _original(name)
    assert _variant_summaries(out, name) == _original(name)


def test_frame_numbers_count_every_packet_and_match_the_original(fixture_results: dict) -> None:
    # Given the Java TLS 1.2 failure (tshark: CR in 12, empty Certificate in 16, alert in 17)
    handshake = fixture_results["ca-mismatch-java-tls12.pcap"].handshakes[0]
    assert handshake.certificate_request.frame == 12
    assert handshake.client_certificate.frame == 16
    assert handshake.alerts[0].frame == 17


def test_large_certificate_chain_is_reassembled(fixture_results: dict) -> None:
    # Given a server chain of about 340 KB over many segments and records, Then every certificate is decoded
    handshake = fixture_results["large-chain-openssl-tls12.pcap.gz"].handshakes[0]
    assert len(handshake.server_chain) > 40
    assert handshake.server_chain[0].subject == "CN=backend.lab,O=Lab Org,C=US"
    assert handshake.server_chain[-1].subject == CA_A[0]


# -- damaged traffic -----------------------------------------------------------------------------------------


def test_missing_segment_is_reported_and_reading_goes_on(tmp_path: Path) -> None:
    # Given the server's Certificate segments with one 536-byte piece lost, When read
    name = "ca-mismatch-java-tls12.pcap"
    segs = rewrite.resegment(rewrite.segments(capture_path(name)), 536)
    lost = next(i for i, s in enumerate(segs) if len(s.payload) == 536 and s.sport != 0 and i > 8)
    path = rewrite.write_pcap(tmp_path / "gap.pcap", 1, rewrite.frames_for(segs[:lost] + segs[lost + 1 :]))
    handshake = read_handshakes(path).handshakes[0]
    # Then the gap is a note, and what follows it (the CertificateRequest, the alert) is still read
    assert any("were not captured" in note for note in handshake.notes)
    assert handshake.certificate_request is not None and handshake.certificate_request.ca_names == CA_A
    assert [a.code for a in handshake.alerts] == [42]


def test_connection_seen_from_the_middle(tmp_path: Path) -> None:
    # Given a capture that starts after the TCP handshake and the ClientHello
    name = "ca-mismatch-java-tls12.pcap"
    segs = rewrite.segments(capture_path(name))
    first_server_data = next(i for i, s in enumerate(segs) if s.payload and s.sport != segs[0].sport)
    path = rewrite.write_pcap(tmp_path / "mid.pcap", 1, rewrite.frames_for(segs[first_server_data:]))
    handshake = read_handshakes(path).handshakes[0]
    # Then roles come from the ServerHello and the rest is read as usual
    assert handshake.sni is None and handshake.version == "TLSv1.2"
    assert handshake.client.startswith("127.0.0.11:")
    assert handshake.client_certificate is not None and not handshake.client_certificate.sent
    assert "no SYN" in handshake.notes[0]


def test_truncated_last_packet_is_a_note(tmp_path: Path) -> None:
    data = capture_path("ca-mismatch-java-tls12.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[:-30])
    result = read_handshakes(path)
    assert result.notes == ("the last packet (22) is truncated: 36 of 66 bytes (ignored)",)
    assert len(result.handshakes) == 1


def test_snap_length_cut_packets_become_gaps(tmp_path: Path) -> None:
    linktype, frames = rewrite.read_pcap(capture_path("ca-mismatch-java-tls12.pcap"))
    path = rewrite.write_pcap(tmp_path / "snap.pcap", linktype, frames, snaplen=400)
    handshake = read_handshakes(path).handshakes[0]
    assert any("were not captured" in note for note in handshake.notes)
    assert handshake.version == "TLSv1.2"


def test_non_tls_connections_are_ignored(tmp_path: Path) -> None:
    http = rewrite.Seg(
        b"\x7f\x00\x00\x01", b"\x7f\x00\x00\x02", 5555, 80, 1, 0, 0x18, b"GET / HTTP/1.1\r\n\r\n"
    )
    path = rewrite.write_pcap(tmp_path / "http.pcap", 1, rewrite.frames_for([http]))
    result = read_handshakes(path)
    assert (result.handshakes, result.tls_connections, result.packets) == ((), 0, 1)


def test_unsupported_link_type_is_a_note(tmp_path: Path) -> None:
    path = rewrite.write_pcap(tmp_path / "x.pcap", 147, [b"\x00" * 60, b"\x00" * 60])
    assert read_handshakes(path).notes == (
        "2 packets have link type 147, which is not supported; they were skipped",
    )


# -- files that are not captures -----------------------------------------------------------------------------

# One broken file per defect (tests/fixtures/captures/broken/), with the exact sentence the user gets.
BROKEN = capture_path("broken")
BAD_FILES = {
    "empty.pcap": "is empty, not a capture file",
    "short-pcap-header.pcap": "ends inside the pcap file header (6 of 24 bytes)",
    "short-pcapng-header.pcapng": "ends inside the pcapng section header (5 bytes)",
    "pcapng-bad-byte-order.pcapng": "has a pcapng section header with an unknown byte-order magic",
    "text.pcap": "is not a pcap or pcapng capture (it starts with 0x68656c6c6f2c2074)",
    "gzip-of-text.pcap.gz": "is not a pcap or pcapng capture (it starts with 0x706c61696e20776f)",
    "empty-gzip.pcap.gz": "is gzip-compressed but holds no data, not a capture file",
    "damaged-gzip.pcap.gz": "is gzip-compressed but its compressed data is damaged "
    "(Error -3 while decompressing data: invalid code lengths set)",
    "cut-gzip.pcap.gz": "is gzip-compressed but cut short before any data",
}


def test_every_broken_file_has_its_message() -> None:
    assert sorted(BAD_FILES) == sorted(p.name for p in BROKEN.iterdir())


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_input_names_the_file_and_the_defect(name: str) -> None:
    # Given a file that is not a readable capture, Then the one error names the file and the defect
    path = BROKEN / name
    with pytest.raises(CaptureFormatError) as caught:
        read_handshakes(path)
    assert (caught.value.file, caught.value.defect) == (str(path), BAD_FILES[name])
    assert str(caught.value) == f"{path}: {BAD_FILES[name]}"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureFormatError, match="does not exist$"):
        read_handshakes(tmp_path / "nope.pcap")
    with pytest.raises(CaptureFormatError, match="is a directory, not a capture file$"):
        read_handshakes(tmp_path)


@pytest.mark.parametrize(
    "head, expected",
    [
        (b"\xd4\xc3\xb2\xa1", True),
        (b"\xa1\xb2\xc3\xd4", True),
        (b"\x4d\x3c\xb2\xa1", True),
        (b"\xa1\xb2\x3c\x4d", True),
        (b"\x0a\x0d\x0d\x0a", True),
        (gzip.compress(b"\xd4\xc3\xb2\xa1" + b"\x00" * 40)[:64], True),
        (gzip.compress(b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00"), True),
        (gzip.compress(b"{}"), False),
        (b'{"keystore"', False),
        (b"", False),
        (b"\x1f\x8b", False),
        (b"CLIENT_RANDOM 00", False),
    ],
)
def test_is_capture_sniffs_the_magic(head: bytes, expected: bool) -> None:
    assert is_capture(head) is expected


def test_plain_fixtures_are_real_captures() -> None:
    for name in PLAIN_CAPTURES:
        assert is_capture(capture_path(name).read_bytes()[:64]), name


# -- fuzzing: whatever the bytes, the only failure is CaptureFormatError -------------------------------------

_FUZZ_SOURCES = [
    capture_path(n).read_bytes()
    for n in ("ca-mismatch-java-tls12.pcap", "missing-client-certificate-openssl-tls13.pcap")
]


def _read_or_refuse(tmp_path: Path, data: bytes, keylog: object = None) -> None:
    path = tmp_path / "fuzz.pcap"
    path.write_bytes(data)
    try:
        result = read_handshakes(path, keylog)  # type: ignore[arg-type]
    except CaptureFormatError:
        return
    for handshake in result.handshakes:
        handshake.to_json()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prefix=st.sampled_from([b"", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a", b"\x1f\x8b"]),
    body=st.binary(max_size=600),
)
def test_random_bytes_only_ever_raise_capture_format_error(
    tmp_path: Path, prefix: bytes, body: bytes
) -> None:
    _read_or_refuse(tmp_path, prefix + body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    source=st.integers(0, len(_FUZZ_SOURCES) - 1),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=12),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_mutated_real_captures_only_ever_raise_capture_format_error(
    tmp_path: Path, source: int, flips: list, cut: int | None
) -> None:
    # Given a real capture with random bytes overwritten (headers, TCP, TLS lengths, certificates) and
    # maybe cut
    data = bytearray(_FUZZ_SOURCES[source])
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        del data[cut % len(data) :]
    # Then reading it returns a result or refuses the file, nothing else
    _read_or_refuse(tmp_path, bytes(data), keylog_for("missing-client-certificate-openssl-tls13.pcap"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8))
def test_mutated_pcapng_and_gzip_only_ever_raise_capture_format_error(tmp_path: Path, flips: list) -> None:
    _, frames = rewrite.read_pcap(capture_path("healthy-openssl-tls12-any.pcap"))
    data = bytearray(
        rewrite.write_pcapng(tmp_path / "src.pcapng", [(0, f) for f in frames], [276]).read_bytes()
    )
    for position, value in flips:
        data[position % len(data)] = value
    _read_or_refuse(tmp_path, bytes(data))
    _read_or_refuse(tmp_path, gzip.compress(bytes(data))[: max(20, flips[0][0] % 4000)])


def test_a_reused_port_pair_starts_a_new_connection(tmp_path: Path) -> None:
    # Given the same connection twice (same addresses and ports, new SYN), Then two handshakes are reported
    name = "ca-mismatch-java-tls12.pcap"
    segs = rewrite.segments(capture_path(name))
    path = rewrite.write_pcap(tmp_path / "twice.pcap", 1, rewrite.frames_for(segs + segs))
    result = read_handshakes(path)
    assert [summary(h) for h in result.handshakes] == _original(name) * 2
    assert result.handshakes[1].frames[0] == result.handshakes[0].frames[0] + len(segs)


def test_packets_on_an_undescribed_interface_are_a_note(tmp_path: Path) -> None:
    path = rewrite.write_pcapng(tmp_path / "x.pcapng", [(3, b"\x00" * 60)], [1])
    assert read_handshakes(path).notes == (
        "1 packets name an interface the file never described; they were skipped",
    )


def test_cut_gzip_keeps_what_came_before_the_cut(tmp_path: Path) -> None:
    # Given a gzip-compressed capture whose compressed stream ends early
    data = gzip.compress(capture_path("healthy-java-tls12.pcap").read_bytes())
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    result = read_handshakes(path)
    # Then the packets before the cut are read and the cut is a note
    assert 0 < result.packets < 40 and len(result.handshakes) == 1
    assert result.notes[-1] == (
        f"the gzip data is cut short after packet {result.packets}: the rest of the file is missing"
    )


def test_wrong_key_log_secrets_leave_the_handshake_opaque_with_a_note() -> None:
    # Given the right client random but wrong secrets (another server's key log, say)
    name = "healthy-openssl-tls13-aes128.pcap"
    real = keylog_for(name)
    wrong = KeyLog(
        {
            random: {label: bytes(len(secret)) for label, secret in labels.items()}
            for random, labels in real.secrets.items()
        }
    )
    handshake = read_handshakes(capture_path(name), wrong).handshakes[0]
    # Then nothing sealed is claimed and the note says decryption failed
    assert handshake.outcome is Outcome.OPAQUE and handshake.certificate_request is None
    assert any("decryption of the server's records failed" in note for note in handshake.notes)


def test_key_log_for_other_connections_is_a_note() -> None:
    handshake = read_handshakes(
        capture_path("healthy-openssl-tls13.pcap"), keylog_for("healthy-openssl-tls13-aes128.pcap")
    ).handshakes[0]
    assert handshake.outcome is Outcome.OPAQUE
    assert "the key log holds no secrets for this handshake" in handshake.notes

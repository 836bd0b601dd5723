"""The failure-family captures (tests/fixtures/captures/failures/, made by tests/fixtures/failure_captures.py
with a real JSSE client or openssl s_client against real openssl s_server and nginx backends): the reader
extracts from each the facts the causes are judged by, and tshark reads the same alerts in the same files."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from collector.tls.capture import CaptureResult, read_handshakes
from collector.tls.handshake import AttemptEnd, Handshake, Outcome
from collector.tls.keylog import load_keylog

FAILURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures" / "failures"
F, E = Outcome.FAILED, Outcome.ESTABLISHED
JSSE = ("TLSv1.3", "TLSv1.2")  # what JDK 17 offers by default
CHAIN = ("CN=backend.lab,O=Lab Org,C=US", "CN=Lab CA A,OU=caA,O=Lab Org,C=US")
HTTP_400 = "HTTP/1.1 400 Bad Request\\r\\nServer: nginx"


def _case(
    offered: tuple[str, ...],
    selected: str | None,
    alerts: list[tuple[str, int]],
    chain: tuple[str, ...] = (),
    sni: str | None = None,
    reply: str | None = None,
) -> tuple[object, ...]:
    return (offered, selected, alerts, chain, sni, reply)


# file: its one handshake's (offered versions, selected version, alerts, backend chain, SNI, non-TLS reply)
EXPECTED = {
    "server-certificate-untrusted-java-openssl-tls12": _case(JSSE, "TLSv1.2", [("client", 46)], CHAIN),
    "server-certificate-untrusted-java-openssl-tls13": _case(JSSE, "TLSv1.3", [("client", 46)], CHAIN),
    "server-certificate-expired-java-openssl-tls12": _case(JSSE, "TLSv1.2", [("client", 45)], CHAIN),
    "server-certificate-expired-java-openssl-tls13": _case(JSSE, "TLSv1.3", [("client", 46)], CHAIN),
    "server-hostname-mismatch-java-openssl-tls12": _case(
        JSSE, "TLSv1.2", [("client", 46)], CHAIN, "other.lab"
    ),
    "server-hostname-mismatch-java-openssl-tls13": _case(
        JSSE, "TLSv1.3", [("client", 46)], CHAIN, "other.lab"
    ),
    "protocol-mismatch-java12-openssl13": _case(("TLSv1.2",), None, [("server", 70)]),
    "protocol-mismatch-java13-openssl12": _case(("TLSv1.3",), None, [("server", 70)]),
    "cipher-mismatch-java-openssl-tls12": _case(("TLSv1.2",), None, [("server", 40)]),
    "cipher-mismatch-java-openssl-tls13": _case(("TLSv1.3",), None, [("server", 40)]),
    "sni-required-java-nginx-tls12": _case(JSSE, None, [("server", 112)]),
    "sni-required-java-nginx-tls13": _case(JSSE, None, [("server", 112)]),
    "sni-required-openssl-nginx-tls12": _case(("TLSv1.2",), None, [("server", 112)]),
    "backend-not-tls-java-nginx": _case(JSSE, None, [], sni="backend.lab", reply=HTTP_400),
}
CAPTURES = sorted(p.name for p in FAILURES.glob("*.pcap"))


def _read(name: str, *, with_keys: bool = True) -> CaptureResult:
    path = FAILURES / name
    keys = path.with_suffix(".keys")
    return read_handshakes(path, load_keylog(keys) if with_keys and keys.exists() else None)


def test_every_failure_capture_is_checked() -> None:
    expected = {f"{name}.pcap" for name in EXPECTED}
    expected |= {"connection-refused-java.pcap", "mixed-java-openssl-tls13.pcap"}
    assert sorted(expected) == CAPTURES


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_failure_shows_its_facts(name: str) -> None:
    # Given one real failing handshake (TLS 1.3 ones with the backend's key log), When read
    offered, selected, alerts, chain, sni, reply = EXPECTED[name]
    result = _read(f"{name}.pcap")
    (handshake,) = result.handshakes
    # Then the offer, the selection, who sent which alert, the backend chain and any non-TLS reply are there
    assert handshake.outcome is F and result.connection_attempts == ()
    assert handshake.client_hello is not None and handshake.client_hello.versions == offered
    assert handshake.client_hello.cipher_suites
    assert handshake.version == selected and (handshake.cipher is None) == (selected is None)
    assert [(a.sender, a.code) for a in handshake.alerts] == alerts
    assert tuple(c.subject for c in handshake.server_chain) == chain
    assert len(handshake.server_chain_der) == len(chain)
    assert handshake.sni == sni
    assert (handshake.non_tls_reply.first_bytes[: len(reply)] if handshake.non_tls_reply else None) == reply
    assert handshake.captured_at is not None and handshake.captured_at.tzinfo is datetime.timezone.utc


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if (FAILURES / f"{n}.keys").exists()))
def test_tls13_failures_need_the_key_log_for_the_alert_and_chain(name: str) -> None:
    # Given a TLS 1.3 failure read without its key log, Then the MP's alert and the backend chain stay sealed
    handshake = _read(f"{name}.pcap", with_keys=False).handshakes[0]
    assert handshake.alerts == () and handshake.server_chain_der == ()
    assert handshake.version == "TLSv1.3" and handshake.client_hello is not None


def test_cipher_mismatch_offers_only_the_clients_suite() -> None:
    offer = _read("cipher-mismatch-java-openssl-tls12.pcap").handshakes[0].client_hello
    assert offer is not None and offer.cipher_suites == ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",)


def test_connection_refused_is_an_attempt_not_a_handshake() -> None:
    # Given JSSE connecting to a port nothing listens on, Then the capture shows one refused attempt
    result = _read("connection-refused-java.pcap")
    assert result.handshakes == ()
    (attempt,) = result.connection_attempts
    assert attempt.end is AttemptEnd.REFUSED and attempt.frames == (1, 2)
    assert attempt.client.startswith("127.0.0.1:") and attempt.server.startswith("127.0.0.1:")
    assert attempt.captured_at is not None


def test_mixed_capture_keeps_failures_and_successes_apart() -> None:
    # Given healthy calls, an untrusted-chain call and a refused attempt in one TLS 1.3 capture (with keys)
    result = _read("mixed-java-openssl-tls13.pcap")
    # Then each handshake stands alone, in capture order, and the refused attempt sits between them in time
    outcomes = [(h.outcome, [(a.sender, a.code) for a in h.alerts if a.code]) for h in result.handshakes]
    assert outcomes == [(E, []), (F, [("client", 46)]), (E, [])]
    assert all(h.http_status == 200 for h in result.handshakes if h.outcome is E)
    (refused,) = result.connection_attempts
    times = [h.captured_at for h in result.handshakes]
    assert refused.end is AttemptEnd.REFUSED and times[1] < refused.captured_at < times[2]  # type: ignore[operator]


def _chain(handshake: Handshake) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(der) for der in handshake.server_chain_der]


def _verify(chain: list[x509.Certificate], anchors: list[x509.Certificate], when: datetime.datetime,
            name: str = "backend.lab") -> None:
    verifier = PolicyBuilder().store(Store(anchors)).time(when).build_server_verifier(x509.DNSName(name))
    verifier.verify(chain[0], chain[1:])


def _other_ca() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string("CN=Some Other CA")
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(days=1000))
        .not_valid_after(now + datetime.timedelta(days=1000))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def test_the_kept_chain_verifies_with_cryptography_at_the_capture_time() -> None:
    # Given the backend chains as kept, When verified with cryptography's X.509 verification at capture time
    untrusted = _read("server-certificate-untrusted-java-openssl-tls13.pcap").handshakes[0]
    expired = _read("server-certificate-expired-java-openssl-tls12.pcap").handshakes[0]
    mismatch = _read("server-hostname-mismatch-java-openssl-tls12.pcap").handshakes[0]
    ca_a = _chain(untrusted)[-1]
    # Then the facts tell the causes apart: the untrusted chain verifies only against its own CA, the expired
    # one not even then, the mismatched one for its real name but not for the name the client asked for
    _verify(_chain(untrusted), [ca_a], untrusted.captured_at)  # type: ignore[arg-type]
    with pytest.raises(VerificationError):
        _verify(_chain(untrusted), [_other_ca()], untrusted.captured_at)  # type: ignore[arg-type]
    with pytest.raises(VerificationError):
        _verify(_chain(expired), [ca_a], expired.captured_at)  # type: ignore[arg-type]
    _verify(_chain(mismatch), [ca_a], mismatch.captured_at)  # type: ignore[arg-type]
    with pytest.raises(VerificationError):
        _verify(_chain(mismatch), [ca_a], mismatch.captured_at, mismatch.sni or "")  # type: ignore[arg-type]


def test_alerts_agree_with_tshark(tmp_path: Path) -> None:
    # Given every failure capture, When tshark (with the key logs) lists their alerts, Then ours are the same
    for name in CAPTURES:
        path = FAILURES / name
        keys = path.with_suffix(".keys")
        argv = ["tshark", "-n", "-r", str(path), "-Y", "tls.alert_message", "-T", "fields"]
        argv += ["-e", "frame.number", "-e", "tls.alert_message.desc"]
        if keys.exists():
            argv[2:2] = ["-o", f"tls.keylog_file:{keys}"]
        lines = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()
        theirs = [
            (int(frame), int(code)) for frame, codes in (line.split("\t") for line in lines)
            for code in codes.split(",")
        ]
        ours = [(a.frame, a.code) for h in _read(name).handshakes for a in h.alerts]
        assert ours == theirs, name

"""protocol-mismatch, cipher-mismatch and sni-required: on real captures of JSSE and openssl clients against
OpenSSL and nginx backends (TLS 1.2 and 1.3), on the MP's own log when no ClientHello left it, on shapes other
stacks produce (other alerts, a plain close, a probe as the comparison), and against the causes they must not
take over (the playbook's, the fallback)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from collector import layout
from collector.diagnosis.analyze import analyze_paths
from collector.diagnosis.diagnose import diagnose
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.jsse_messages import read_jsse_signs
from collector.diagnosis.verdict import Cause, Diagnosis
from collector.tls.handshake import Alert, ClientHelloOffer, Handshake, Outcome
from tests.diagnosis.builders import CA_A, alert, empty_cert_failed, evidence, handshake, probe
from tests.diagnosis.conftest import CAPTURES, BundleMaker

FAILURES = CAPTURES / "failures"
JSSE_SUITES = ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
SNI_FIX = ("conf_system_jsse.enableSNIExtension=true", "message-processor.properties",
           "edge-message-processor restart",
           "docs.apigee.com/how-to-guides/configuring-sni-between-mp-and-bs")
FALLBACK = Cause.HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH
NEGOTIATION = {Cause.PROTOCOL_MISMATCH, Cause.CIPHER_MISMATCH, Cause.SNI_REQUIRED}
MP_LINE = ("2026-12-02 06:12:15,937 org:acme env:prod api:payments rev:3 messageid:rrt-9-1 NIOThread@1 ERROR "
           "HTTP.CLIENT - HTTPClient$Context.handshakeFailed() : SSLClientChannel[C:127.0.0.1:47411 Remote "
           "host:127.0.0.1:47411]@7 useCount=1 bytesRead=0 bytesWritten=0 age=48ms lastIO=48ms "
           "handshake failed, message: {}")
# What the lab's JSSE client printed for each capture (tests/fixtures/failure_captures.py)
NO_PROTOCOL = "No appropriate protocol (protocol is disabled or cipher suites are inappropriate)"


def _text(diagnosis: Diagnosis) -> str:
    return "\n".join((diagnosis.summary, *diagnosis.evidence, diagnosis.resolution))


# --- real captures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Capture:
    files: tuple[str, ...]
    cause: Cause
    mentions: tuple[str, ...]


REAL = {
    "jsse tls1.2 only vs openssl tls1.3 only": Capture(
        ("protocol-mismatch-java12-openssl13.pcap",), Cause.PROTOCOL_MISMATCH,
        ("offers TLSv1.2", "frame 6: fatal alert protocol_version (70) from the server",
         "share no TLS version", "SSLInfo <Protocols>")),
    "jsse tls1.3 only vs openssl tls1.2 only": Capture(
        ("protocol-mismatch-java13-openssl12.pcap",), Cause.PROTOCOL_MISMATCH,
        ("offers TLSv1.3", "fatal alert protocol_version (70) from the server", "enable TLSv1.3")),
    "jsse tls1.2 suite the openssl backend refuses": Capture(
        ("cipher-mismatch-java-openssl-tls12.pcap",), Cause.CIPHER_MISMATCH,
        ("offers TLSv1.2 and 1 cipher suite(s): TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
         "frame 6: fatal alert handshake_failure (40) from the server", "no ServerHello",
         "no common key-exchange group", "SSLInfo <Ciphers>")),
    "jsse tls1.3 suite the openssl backend refuses": Capture(
        ("cipher-mismatch-java-openssl-tls13.pcap",), Cause.CIPHER_MISMATCH,
        ("offers TLSv1.3 and 1 cipher suite(s): TLS_AES_128_GCM_SHA256", "handshake_failure (40)")),
    "jsse without sni vs nginx, tls1.2": Capture(
        ("sni-required-java-nginx-tls12.pcap",), Cause.SNI_REQUIRED,
        ("no SNI: the server_name extension is absent", "offers TLSv1.3, TLSv1.2",
         "fatal alert unrecognized_name (112) from the server", *SNI_FIX)),
    "jsse without sni vs nginx, tls1.3": Capture(
        ("sni-required-java-nginx-tls13.pcap",), Cause.SNI_REQUIRED,
        ("no SNI", "unrecognized_name (112)", *SNI_FIX)),
    "openssl s_client -noservername vs nginx": Capture(
        ("sni-required-openssl-nginx-tls12.pcap",), Cause.SNI_REQUIRED,
        ("no SNI", "offers TLSv1.2", "unrecognized_name (112)", "JSSE sends no SNI for an IP address")),
    # OpenSSL answers an empty client certificate in TLS 1.2 with 40 too, but after its ServerHello
    "openssl 40 after an empty client certificate stays the playbook's": Capture(
        ("../ca-mismatch-openssl-tls12.pcap",), Cause.CLIENT_CERTIFICATE_NOT_SENT,
        ("fatal alert handshake_failure (40) from the server",)),
}


@pytest.mark.parametrize("case", REAL.values(), ids=REAL.keys())
def test_real_captures_name_their_cause(case: Capture) -> None:
    # Given one real failing handshake, When analyzed as `collect analyze` does
    diagnosis = analyze_paths([FAILURES / name for name in case.files]).diagnosis
    # Then the cause is named, and the evidence shows the offer, the SNI and the backend's answer
    assert diagnosis.cause is case.cause, diagnosis.evidence
    text = _text(diagnosis)
    for expected in case.mentions:
        assert expected in text, expected


def test_real_failures_of_other_causes_are_not_taken() -> None:
    # Given the real captures of the certificate, not-TLS and refused cases
    others = [p for p in sorted(FAILURES.glob("*.pcap"))
              if not p.name.startswith(("protocol-", "cipher-", "sni-"))]
    for path in others:
        keys = path.with_suffix(".keys")
        # When analyzed (TLS 1.3 ones with their key log)
        diagnosis = analyze_paths([path, keys] if keys.exists() else [path]).diagnosis
        # Then none of them is a version, suite or name problem
        assert diagnosis.cause not in NEGOTIATION, path


# --- the MP's log: no ClientHello at all ------------------------------------------------------------


def _mp_excerpt(root: Path, message: str) -> None:
    excerpt = root / layout.host_file("mp1", layout.HOST_LOG_EXCERPT)
    excerpt.parent.mkdir(parents=True, exist_ok=True)
    excerpt.write_text(MP_LINE.format(message) + "\n")


def test_no_client_hello_and_no_appropriate_protocol_is_protocol_mismatch(make_bundle: BundleMaker) -> None:
    # Given a bundle whose capture shows JSSE connecting and sending no ClientHello, and whose MP log says why
    root = make_bundle(captures={"mp1": FAILURES / "protocol-disabled-java11-openssl.pcap"})
    _mp_excerpt(root, NO_PROTOCOL)
    # When analyzed
    diagnosis = analyze_paths([root]).diagnosis
    # Then the MP's sign names the cause the capture alone could not, quoting the line where it was read
    assert diagnosis.cause is Cause.PROTOCOL_MISMATCH, diagnosis.evidence
    text = _text(diagnosis)
    assert "carried no ClientHello" in text and "sent no ClientHello" in text
    assert 'hosts/mp1/system.log.excerpt: the MP\'s JSSE said "No appropriate protocol": ' in text
    assert NO_PROTOCOL in text and "jdk.tls.disabledAlgorithms" in text and "<Protocols>" in text
    assert diagnosis.backend == diagnosis.evidence[0].split("→ ")[1].split(" ")[0]


def test_the_same_capture_without_the_sign_is_not_protocol_mismatch() -> None:
    # Given only the capture (nothing says why no ClientHello was sent), Then no version problem is claimed
    diagnosis = analyze_paths([FAILURES / "protocol-disabled-java11-openssl.pcap"]).diagnosis
    assert diagnosis.cause is not Cause.PROTOCOL_MISMATCH


def test_the_sign_alone_without_a_capture_names_it(make_bundle: BundleMaker) -> None:
    # Given a bundle with no capture at all and the MP's "No appropriate protocol" line
    root = make_bundle()
    _mp_excerpt(root, NO_PROTOCOL)
    # When analyzed, Then the cause is named from the MP's words and says the capture had no ClientHello
    diagnosis = analyze_paths([root]).diagnosis
    assert diagnosis.cause is Cause.PROTOCOL_MISMATCH and diagnosis.backend is None
    assert "no ClientHello in:" in _text(diagnosis)


def test_the_backends_protocol_version_in_the_log_alone_says_no_client_hello_is_held(
        make_bundle: BundleMaker) -> None:
    # Given no capture and the MP's "Received fatal alert: protocol_version" (a ClientHello did leave the MP)
    root = make_bundle()
    _mp_excerpt(root, "Received fatal alert: protocol_version")
    # When analyzed, Then it is protocol-mismatch from the log, without claiming the MP sent nothing
    diagnosis = analyze_paths([root]).diagnosis
    assert diagnosis.cause is Cause.PROTOCOL_MISMATCH
    assert "refused its TLS versions" in diagnosis.summary and "sent no ClientHello" not in diagnosis.summary
    assert "capture the failing call" in diagnosis.resolution


def test_an_ambiguous_sign_alone_names_nothing(make_bundle: BundleMaker) -> None:
    # Given only "Received fatal alert: handshake_failure" (cipher, or an empty client certificate), Then no
    # cause is named from it
    root = make_bundle()
    _mp_excerpt(root, "Received fatal alert: handshake_failure")
    assert analyze_paths([root]).diagnosis.cause is Cause.NO_TLS_HANDSHAKE


def test_a_sign_does_not_override_a_captured_client_hello(make_bundle: BundleMaker) -> None:
    # Given a capture whose ClientHello was refused for its name, and a protocol line from another request
    root = make_bundle(captures={"mp1": FAILURES / "sni-required-java-nginx-tls12.pcap"})
    _mp_excerpt(root, NO_PROTOCOL)
    # Then the capture decides
    assert analyze_paths([root]).diagnosis.cause is Cause.SNI_REQUIRED


@pytest.mark.parametrize(("capture", "message", "cause"), [
    ("protocol-mismatch-java12-openssl13.pcap", "Received fatal alert: protocol_version",
     Cause.PROTOCOL_MISMATCH),
    ("cipher-mismatch-java-openssl-tls12.pcap", "Received fatal alert: handshake_failure",
     Cause.CIPHER_MISMATCH),
    ("sni-required-java-nginx-tls13.pcap", "Received fatal alert: unrecognized_name", Cause.SNI_REQUIRED),
], ids=["protocol", "cipher", "sni"])
def test_the_mp_log_line_corroborates_the_capture(make_bundle: BundleMaker, capture: str, message: str,
                                                  cause: Cause) -> None:
    # Given a real capture in a bundle and the MP's handshakeFailed line for the same failure
    root = make_bundle(captures={"mp1": FAILURES / capture})
    _mp_excerpt(root, message)
    # When analyzed, Then the cause is the capture's and its evidence quotes the MP's line with its source
    diagnosis = analyze_paths([root]).diagnosis
    assert diagnosis.cause is cause
    quoted = [line for line in diagnosis.evidence if line.startswith("hosts/mp1/system.log.excerpt: ")]
    assert len(quoted) == 1 and quoted[0].endswith(message)


# --- shapes of other stacks, built ------------------------------------------------------------


def offering(base: Handshake, *versions: str, suites: tuple[str, ...] = JSSE_SUITES,
             legacy: str = "TLSv1.2") -> Handshake:
    """`base` with the ClientHello offer a capture would show (supported_versions unless `versions` is
    empty, then the legacy version alone)."""
    return replace(base, client_hello=ClientHelloOffer(legacy, tuple(versions), suites, 4))


def refused(*versions: str, alerts: tuple[Alert, ...] = (), sni: str | None = "backend.lab",
            client: str = "127.0.0.11:50001", suites: tuple[str, ...] = JSSE_SUITES) -> Handshake:
    """A ClientHello the backend refused before any ServerHello (with `alerts`, or a plain close)."""
    base = replace(handshake(alerts=alerts, sni=sni, client=client), version=None)
    return offering(base, *versions, suites=suites)


def answered(version: str, sni: str | None = "backend.lab", cipher: str = "TLS_AES_256_GCM_SHA384",
             client: str = "127.0.0.11:50002") -> Handshake:
    """A ClientHello to the same backend that it answered and completed."""
    hs = handshake(version=version, sni=sni, outcome=Outcome.ESTABLISHED, http_status=200, client=client)
    return offering(replace(hs, cipher=cipher), "TLSv1.3", "TLSv1.2")


def _answered_probe(version: str, sni: str | None) -> Evidence:
    found = probe(None, sni=sni)
    return replace(evidence(), probes=(replace(found, handshake=replace(found.handshake, version=version)),))


@dataclass(frozen=True)
class Built:
    evidence: Evidence
    cause: Cause
    mentions: tuple[str, ...] = ()


CLOSE = ()  # no alert: the backend just closed
BUILT = {
    # protocol-mismatch
    "a plain close of a TLS 1.2-only offer, the backend answers TLS 1.3": Built(
        evidence(refused("TLSv1.2", alerts=CLOSE), answered("TLSv1.3")), Cause.PROTOCOL_MISMATCH,
        ("refused a ClientHello offering only TLSv1.2", "for TLSv1.3", "(it was seen to accept TLSv1.3)")),
    "40 to a TLS 1.2-only offer, the backend answers TLS 1.3 only": Built(
        evidence(refused("TLSv1.2", alerts=(alert(40),)), answered("TLSv1.3")), Cause.PROTOCOL_MISMATCH,
        ("handshake_failure (40)", "compare the cipher suites")),
    "a probe shows the TLS 1.3 the refused offer lacked": Built(
        replace(_answered_probe("TLSv1.3", "backend.lab"), handshakes=(refused("TLSv1.2", alerts=CLOSE),)),
        Cause.PROTOCOL_MISMATCH, ("probe of 127.0.0.21:8443: the backend answered a ClientHello",)),
    "the mp refuses the version the backend chose": Built(
        evidence(offering(handshake(version="TLSv1", alerts=(alert(70, sender="client"),)), "TLSv1.3",
                          "TLSv1.2")),
        Cause.PROTOCOL_MISMATCH, ("ServerHello: the backend chose TLSv1", "from the message processor")),
    "a version chosen that was not offered, then another alert": Built(
        evidence(offering(handshake(version="TLSv1.1", alerts=(alert(47, sender="client"),)), "TLSv1.3",
                          "TLSv1.2")),
        Cause.PROTOCOL_MISMATCH, ("chose TLSv1.1, which the ClientHello did not offer",)),
    "a legacy offer negotiated down is no mismatch": Built(
        evidence(offering(handshake(version="TLSv1.1", outcome=Outcome.ESTABLISHED, http_status=200))),
        Cause.HANDSHAKE_OK),
    # cipher-mismatch
    "insufficient_security before any ServerHello": Built(
        evidence(refused("TLSv1.2", alerts=(alert(71),))), Cause.CIPHER_MISMATCH,
        ("fatal alert alert_71 (71) from the server", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")),
    "40 although the versions meet": Built(
        evidence(refused("TLSv1.3", "TLSv1.2", alerts=(alert(40),), suites=("TLS_AES_128_GCM_SHA256",)),
                 answered("TLSv1.3")),
        Cause.CIPHER_MISMATCH, ("1 of 2 handshake(s)",)),
    "40 after a ServerHello is not a suite problem": Built(
        evidence(offering(handshake(alerts=(alert(40),)), "TLSv1.2")), FALLBACK),
    "40 while the same offer's suite was agreed elsewhere": Built(
        evidence(refused("TLSv1.3", alerts=(alert(40),)),
                 answered("TLSv1.3", cipher="TLS_AES_256_GCM_SHA384")),
        FALLBACK),
    # sni-required
    "112 to a name the backend does not serve": Built(
        evidence(refused("TLSv1.3", alerts=(alert(112),), sni="other.lab")), Cause.SNI_REQUIRED,
        ("(SNI other.lab)", "does not serve the server name the message processor sent (SNI other.lab)",
         "TargetServer's <Host>")),
    "40 to a ClientHello without SNI, one with SNI answered": Built(
        evidence(refused("TLSv1.3", "TLSv1.2", alerts=(alert(40),), sni=None), answered("TLSv1.3")),
        Cause.SNI_REQUIRED,
        ("no SNI: the server_name extension is absent",
         "a ClientHello with SNI backend.lab to the same backend was answered with a ServerHello (TLSv1.3)",
         "(the backend answered SNI backend.lab)", *SNI_FIX)),
    "a plain close of a ClientHello without SNI, a probe with SNI answered": Built(
        replace(_answered_probe("TLSv1.2", "backend.lab"), handshakes=(refused("TLSv1.2", sni=None),)),
        Cause.SNI_REQUIRED, ("probe of 127.0.0.21:8443",)),
    "a refusal without SNI and nothing to compare with": Built(
        evidence(refused("TLSv1.2", alerts=(alert(80),), sni=None)), FALLBACK),
    "a warning unrecognized_name, then the handshake completes": Built(
        evidence(replace(answered("TLSv1.2", sni="other.lab"), alerts=(Alert("server", "warning",
                                                                             "unrecognized_name", 112, 5),))),
        Cause.HANDSHAKE_OK),
    # precedence
    "the playbook's empty certificate beats a version failure": Built(
        evidence(refused("TLSv1.2", alerts=(alert(70),)), empty_cert_failed(CA_A)),
        Cause.CLIENT_CERTIFICATE_NOT_SENT),
    "a version failure beats completed handshakes": Built(
        evidence(answered("TLSv1.3"), refused("TLSv1.2", alerts=(alert(70),)), answered("TLSv1.3")),
        Cause.PROTOCOL_MISMATCH, ("1 of 3 handshake(s)",)),
}


@pytest.mark.parametrize("case", BUILT.values(), ids=BUILT.keys())
def test_other_stacks_shapes(case: Built) -> None:
    # Given handshakes as other stacks produce them
    # When diagnosed
    diagnosis = diagnose(case.evidence)
    # Then the cause follows the whole handshake and what else the backend answered, not one alert number
    assert diagnosis.cause is case.cause, diagnosis.evidence
    text = _text(diagnosis)
    for expected in case.mentions:
        assert expected in text, expected


def test_signs_read_from_the_trace_are_quoted_too() -> None:
    # Given a real SNI failure and the trace's error.cause (as a bundle would give it)
    signs = read_jsse_signs(["Received fatal alert: unrecognized_name"], "trace/session.json (error.cause)")
    handshakes = analyze_paths([FAILURES / "sni-required-openssl-nginx-tls12.pcap"]).handshakes
    # When diagnosed, Then the trace's words are quoted with where they were read
    diagnosis = diagnose(Evidence(handshakes=handshakes, jsse_signs=signs))
    assert diagnosis.cause is Cause.SNI_REQUIRED
    # (once: error.cause is the phrase itself, so it is not repeated after it)
    assert diagnosis.evidence[-1] == ('trace/session.json (error.cause): the MP\'s JSSE said "Received fatal'
                                      ' alert: unrecognized_name"')

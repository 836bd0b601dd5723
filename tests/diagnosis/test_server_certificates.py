"""The three server-certificate causes from real JSSE captures (tests/fixtures/captures/failures/, TLS 1.2 and
TLS 1.3 with the backend's key log): with and without the MP truststore, with the MP log's words as
corroboration or as the only evidence, and the rules' robustness to other client stacks' alerts."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from collector import layout
from collector.diagnosis.analyze import Analysis, analyze_evidence, analyze_paths
from collector.diagnosis.inputs import load_evidence
from collector.diagnosis.ladder import render_analysis
from collector.diagnosis.verdict import Cause
from collector.tls.handshake import Alert, Outcome
from tests.diagnosis.conftest import FIXTURES, BundleMaker, resolution

FAILURES = FIXTURES / "captures" / "failures"
TRUST = FIXTURES / "truststores"
UNTRUSTED, EXPIRED, MISMATCH = (Cause.SERVER_CERTIFICATE_UNTRUSTED, Cause.SERVER_CERTIFICATE_EXPIRED,
                                Cause.SERVER_HOSTNAME_MISMATCH)
CA_A = "CN=Lab CA A,OU=caA,O=Lab Org,C=US"
LEAF = "CN=backend.lab,O=Lab Org,C=US"
# What JSSE 17 logged for each scenario (shared/reference/tls-failure-family.md), as in the MP's system.log.
MP_LINES = {
    UNTRUSTED: "PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException:"
               " unable to find valid certification path to requested target",
    EXPIRED: "PKIX path validation failed: java.security.cert.CertPathValidatorException: validity check"
             " failed",
    MISMATCH: "No subject alternative DNS name matching other.lab found.",
}
SCENARIO = {UNTRUSTED: "server-certificate-untrusted", EXPIRED: "server-certificate-expired",
            MISMATCH: "server-hostname-mismatch"}


def _files(cause: Cause, version: str) -> list[Path]:
    """The scenario's capture, with its key log for TLS 1.3."""
    stem = f"{SCENARIO[cause]}-java-openssl-{version}"
    keys = FAILURES / f"{stem}.keys"
    return [FAILURES / f"{stem}.pcap", *([keys] if version == "tls13" else [])]


def _mp_log_bundle(make_bundle: BundleMaker, line: str, capture: Path | None = None,
                   **kwargs: object) -> Path:
    """A bundle with the MP's handshakeFailed line for the reproduction's message id (and a capture)."""
    root = make_bundle(captures={"mp1": capture} if capture else None, **kwargs)
    excerpt = root / layout.host_file("mp1", layout.HOST_LOG_EXCERPT)
    excerpt.parent.mkdir(parents=True, exist_ok=True)
    excerpt.write_text("2026-12-02 05:32:00,000 org:org env:env api:proxy rev:1 messageid:rrt-1 NIOThread@0"
                       " ERROR HTTP.CLIENT - HTTPClient$Context.handshakeFailed() : handshake failed,"
                       f" message: {line}\n")
    (root / layout.REQUEST_RESPONSE).parent.mkdir(parents=True)
    (root / layout.REQUEST_RESPONSE).write_bytes(b"HTTP/1.1 503 Service Unavailable\r\n"
                                                 b"X-Apigee.Message-ID: rrt-1\r\n\r\n{}")
    return root


# cause, TLS version, truststore file (None: none given), basis, an evidence line the verdict must show
WIRE_CASES = [
    (UNTRUSTED, "tls12", None, "no-truststore", "so the message processor does not trust it"),
    (UNTRUSTED, "tls13", None, "no-truststore", "so the message processor does not trust it"),
    (UNTRUSTED, "tls12", "caB.pem", "truststore", f"missing issuer {CA_A}"),
    (UNTRUSTED, "tls13", "caB.pem", "truststore", f"missing issuer {CA_A}"),
    (UNTRUSTED, "tls12", "caB-cert.json", "truststore-names", "signatures were not checked"),
    (EXPIRED, "tls12", None, "chain", f"{LEAF} is valid"),
    (EXPIRED, "tls13", None, "chain", "expired at the capture time"),
    (EXPIRED, "tls12", "caA.pem", "truststore", "expired at the capture time"),
    (EXPIRED, "tls13", "caA.der", "truststore", "expired at the capture time"),
    (MISMATCH, "tls12", None, "chain", "checks the name other.lab (SNI); the backend certificate names"),
    (MISMATCH, "tls13", None, "chain", "checks the name other.lab (SNI)"),
    (MISMATCH, "tls12", "caA.pem", "truststore", "no match"),
    (MISMATCH, "tls13", "caA-cert.json", "truststore-names", "no match"),
]


@pytest.mark.parametrize("cause,version,truststore,basis,line", WIRE_CASES,
                         ids=[f"{c.value}-{v}-{t or 'no-truststore'}" for c, v, t, _, _ in WIRE_CASES])
def test_each_cause_from_the_wire(cause: Cause, version: str, truststore: str | None, basis: str,
                                  line: str) -> None:
    # Given a real JSSE failure (TLS 1.3 with its key log), and maybe the MP truststore's certificate
    # When analyzed
    analysis = analyze_paths(_files(cause, version), [TRUST / truststore] if truststore else [])
    diagnosis = analysis.diagnosis
    # Then the cause is named, the MP's alert after the backend Certificate is cited, and the verdict says why
    assert diagnosis.cause is cause, diagnosis.evidence
    evidence = "\n".join(diagnosis.evidence)
    assert "from the message processor, before the message processor sent any certificate" in evidence
    assert f"backend Certificate: {LEAF}, issued by {CA_A}" in evidence
    assert line in evidence
    # And the chain object says what decided it
    assert diagnosis.chain is not None and diagnosis.chain["basis"] == basis
    assert diagnosis.chain["leaf_subject"] == LEAF
    assert (diagnosis.chain["truststore_certificates"] != []) is (truststore is not None)


def test_untrusted_with_a_truststore_names_the_missing_issuer_and_the_truststore_to_fix() -> None:
    # Given the untrusted chain and a truststore holding CA B only
    diagnosis = analyze_paths(_files(UNTRUSTED, "tls12"), [TRUST / "caB.pem"]).diagnosis
    # Then the fix imports CA A into the TrustStore of the target's SSLInfo
    assert diagnosis.chain is not None and diagnosis.chain["status"] == "untrusted"
    assert diagnosis.chain["missing_issuer"] == CA_A
    assert f"Import the certificate of {CA_A}" in diagnosis.resolution
    assert "TrustStore" in diagnosis.resolution and "SSLInfo" in diagnosis.resolution
    assert "ref://" in diagnosis.resolution


def test_expired_fix_names_the_backend_certificate_and_its_end_date() -> None:
    diagnosis = analyze_paths(_files(EXPIRED, "tls12")).diagnosis
    (out,) = diagnosis.chain["out_of_validity"] if diagnosis.chain else [None]
    assert out["subject"] == LEAF
    renew = f"Renew the backend's certificate {LEAF} (not after {out['not_after'][:10]}"
    assert renew in diagnosis.resolution


def test_mismatch_fix_names_the_sans_the_name_used_and_the_target_host() -> None:
    diagnosis = analyze_paths(_files(MISMATCH, "tls13")).diagnosis
    sans = "with other.lab in its subjectAltName (it holds backend.lab, localhost, 127.0.0.21)"
    assert sans in diagnosis.resolution
    assert "CommonName" in diagnosis.resolution and "TargetServer's Host" in diagnosis.resolution


@pytest.mark.parametrize("cause", [UNTRUSTED, EXPIRED, MISMATCH], ids=lambda c: c.value)
def test_tls13_without_a_key_log_stays_encrypted(cause: Cause) -> None:
    # Given the TLS 1.3 capture without its key log: the alert and the chain are sealed
    diagnosis = analyze_paths(_files(cause, "tls13")[:1]).diagnosis
    # Then nothing names a certificate cause the capture cannot show
    assert diagnosis.cause is Cause.ENCRYPTED_HANDSHAKE


@pytest.mark.parametrize("cause", [UNTRUSTED, EXPIRED, MISMATCH], ids=lambda c: c.value)
def test_tls13_without_a_key_log_named_from_the_mp_log(make_bundle: BundleMaker, cause: Cause) -> None:
    # Given a bundle with the encrypted TLS 1.3 capture and the MP's log line for the message id
    bundle = _mp_log_bundle(make_bundle, MP_LINES[cause], _files(cause, "tls13")[0])
    # When analyzed
    diagnosis = analyze_paths([bundle]).diagnosis
    # Then the MP's words name the cause, marked as such and quoted
    assert diagnosis.cause is cause, diagnosis.evidence
    evidence = "\n".join(diagnosis.evidence)
    assert "is encrypted (no key log)" in evidence and "named from the message processor's log" in evidence
    assert "MP log (hosts/mp1/system.log.excerpt): " in evidence and MP_LINES[cause] in evidence
    assert MP_LINES[cause] in diagnosis.summary


@pytest.mark.parametrize("cause", [UNTRUSTED, EXPIRED, MISMATCH], ids=lambda c: c.value)
def test_mp_log_line_as_the_only_evidence(make_bundle: BundleMaker, cause: Cause) -> None:
    # Given a bundle with no capture at all, only the MP's handshakeFailed line
    diagnosis = analyze_paths([_mp_log_bundle(make_bundle, MP_LINES[cause])]).diagnosis
    # Then the cause is named from the log, and the evidence says no capture shows it
    assert diagnosis.cause is cause
    assert diagnosis.evidence[0].startswith("no capture shows this handshake")
    assert diagnosis.chain is not None and diagnosis.chain["basis"] == "mp-log"


@pytest.mark.parametrize("cause", [UNTRUSTED, EXPIRED, MISMATCH], ids=lambda c: c.value)
def test_mp_log_line_corroborates_the_wire(make_bundle: BundleMaker, cause: Cause) -> None:
    # Given the TLS 1.2 capture and the MP's own words for the same failure
    bundle = _mp_log_bundle(make_bundle, MP_LINES[cause], _files(cause, "tls12")[0])
    diagnosis = analyze_paths([bundle]).diagnosis
    # Then the cause stands and the line is quoted beside the frames
    assert diagnosis.cause is cause
    assert any(line.startswith("MP log (hosts/mp1/system.log.excerpt): ") and MP_LINES[cause] in line
               for line in diagnosis.evidence)


def test_without_a_truststore_the_mp_log_decides_between_the_three(make_bundle: BundleMaker) -> None:
    # Given the expired chain, no truststore, and an MP that says PKIX path building failed (it checks the
    # trust path before the dates)
    bundle = _mp_log_bundle(make_bundle, MP_LINES[UNTRUSTED], _files(EXPIRED, "tls12")[0])
    diagnosis = analyze_paths([bundle]).diagnosis
    # Then the MP's words decide: untrusted, and the out-of-date certificate is still shown
    assert diagnosis.cause is UNTRUSTED
    assert diagnosis.chain is not None and diagnosis.chain["basis"] == "mp-log"
    assert any("expired at the capture time" in line for line in diagnosis.evidence)


def test_with_a_truststore_its_verdict_decides_and_a_disagreeing_log_is_shown(
        make_bundle: BundleMaker) -> None:
    # Given the mismatch capture, a truststore trusting its CA, and an MP log naming an untrusted chain
    bundle = _mp_log_bundle(make_bundle, MP_LINES[UNTRUSTED], _files(MISMATCH, "tls12")[0])
    diagnosis = analyze_paths([bundle], [TRUST / "caA.pem"]).diagnosis
    # Then the truststore's verdict names the cause and the other line is shown as disagreeing
    assert diagnosis.cause is MISMATCH
    assert any(line.startswith("MP log names another certificate problem") for line in diagnosis.evidence)


def test_bundle_truststore_is_read_and_kept_out_of_the_keystore_evidence(make_bundle: BundleMaker) -> None:
    # Given a bundle whose resolution names truststore mp-truststore, saved as cert JSON and PEM, beside the
    # keystore documents
    res = resolution()
    res["targets"][0].update(truststore="mp-truststore", truststore_reference="mp-truststore-ref")
    root = make_bundle(captures={"mp1": _files(UNTRUSTED, "tls12")[0]}, resolution=res,
                       documents={"keystore": FIXTURES / "edge" / "keystore-no-key.json"})
    for kind, source in (("json", TRUST / "caB-cert.json"), ("pem", TRUST / "caB.pem")):
        rel = (layout.cert_document if kind == "json" else layout.cert_pem)("mp-truststore", "caB-cert")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / rel)
    (root / layout.keystore_document("mp-truststore")).write_text(json.dumps(
        {"name": "mp-truststore", "certs": ["caB-cert"], "keys": []}))
    # When read
    evidence = load_evidence([root])
    # Then the truststore holds CA B from its PEM, and no keystore entry comes from the truststore's folder
    assert [(c.subject, c.source, c.truststore) for c in evidence.truststore] == [
        ("CN=Lab CA B,OU=caB,O=Lab Org,C=US", layout.cert_pem("mp-truststore", "caB-cert"), "mp-truststore")]
    assert evidence.truststore_name == "mp-truststore"
    assert all("mp-truststore" not in k.source for k in evidence.keystores)
    assert {k.keystore for k in evidence.keystores} == {"myKeystore"}
    # And the chain is judged against it, naming the truststore in the fix
    diagnosis = analyze_evidence(evidence).diagnosis
    assert diagnosis.cause is UNTRUSTED and "truststore mp-truststore" in diagnosis.resolution
    assert diagnosis.chain is not None and diagnosis.chain["truststore"] == "mp-truststore"


def test_bundle_truststore_named_but_not_saved_leaves_trust_unjudged(make_bundle: BundleMaker) -> None:
    res = resolution()
    res["targets"][0].update(truststore="mp-truststore")
    root = make_bundle(captures={"mp1": _files(UNTRUSTED, "tls12")[0]}, resolution=res)
    analysis = analyze_paths([root])
    assert analysis.evidence.truststore == ()
    assert any("truststore mp-truststore: none of its certificates" in n for n in analysis.evidence.notes)
    assert analysis.diagnosis.cause is UNTRUSTED and analysis.diagnosis.chain["basis"] == "no-truststore"


def test_target_host_is_the_checked_name_when_the_mp_sends_no_sni(make_bundle: BundleMaker) -> None:
    # Given the untrusted-scenario capture (no SNI: JSSE connected to an address) and a resolution whose
    # target URL host is one the backend certificate does not hold
    res = resolution()
    res["targets"][0].update(host="api.other.example", url="https://api.other.example:8443")
    root = make_bundle(captures={"mp1": _files(UNTRUSTED, "tls12")[0]}, resolution=res)
    # When judged with a truststore that trusts the chain
    diagnosis = analyze_paths([root], [TRUST / "caA.pem"]).diagnosis
    # Then the target host is the name checked, and it is not in the certificate
    assert diagnosis.cause is MISMATCH
    assert any("checks the name api.other.example (target host)" in line for line in diagnosis.evidence)


def test_mixed_capture_names_the_failure_and_counts_the_successes() -> None:
    # Given healthy calls, an untrusted-chain call and a refused attempt in one TLS 1.3 capture (with keys)
    diagnosis = analyze_paths([FAILURES / "mixed-java-openssl-tls13.pcap",
                               FAILURES / "mixed-java-openssl-tls13.keys"]).diagnosis
    # Then the failure beats the successes, and the counts show both
    assert diagnosis.cause is UNTRUSTED
    assert any("1 of 3 handshake(s)" in line and "2 established" in line for line in diagnosis.evidence)


def _with_alert(cause: Cause, code: int | None, description: str = "x") -> Analysis:
    """The real TLS 1.2 handshake of a scenario, its MP alert replaced as another client stack sends it."""
    evidence = load_evidence(_files(cause, "tls12"))
    (handshake,) = evidence.handshakes
    alerts = (Alert("client", "fatal", description, code, handshake.alerts[0].frame),) if code else ()
    changed = replace(handshake, alerts=alerts, outcome=Outcome.FAILED)
    return analyze_evidence(replace(evidence, handshakes=(changed,)))


# scenario, alert code the client sends (None: it closes without one), cause expected
OTHER_STACKS = [
    (UNTRUSTED, 48, UNTRUSTED),  # OpenSSL clients: unknown_ca
    (UNTRUSTED, 42, UNTRUSTED),  # bad_certificate
    (EXPIRED, 46, EXPIRED),  # JSSE in TLS 1.3: certificate_unknown
    (EXPIRED, 40, EXPIRED),  # a client that only says handshake_failure: the chain's dates decide
    (EXPIRED, None, EXPIRED),  # closed without an alert
    (MISMATCH, 42, MISMATCH),  # Go: bad_certificate for a name mismatch
    (MISMATCH, 80, MISMATCH),  # internal_error: the name still decides
    (UNTRUSTED, 45, EXPIRED),  # certificate_expired while the chain's dates are fine: the MP's clock
]


@pytest.mark.parametrize("scenario,code,expected", OTHER_STACKS,
                         ids=[f"{s.value}-alert-{c}" for s, c, _ in OTHER_STACKS])
def test_other_client_stacks_alerts(scenario: Cause, code: int | None, expected: Cause) -> None:
    # Given a real chain refused with another stack's alert, When diagnosed, Then the chain decides the cause
    diagnosis = _with_alert(scenario, code).diagnosis
    assert diagnosis.cause is expected, diagnosis.evidence


def test_a_non_certificate_alert_with_a_sound_chain_is_not_a_certificate_cause() -> None:
    # Given the untrusted scenario's sound chain (no truststore) and a client alert that is not about
    # certificates (illegal_parameter), Then no certificate cause is claimed: the fallback stays
    assert _with_alert(UNTRUSTED, 47).diagnosis.cause is Cause.HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH


def test_clock_variant_says_to_check_the_mp_clock() -> None:
    diagnosis = _with_alert(UNTRUSTED, 45, "certificate_expired").diagnosis
    assert "clock" in diagnosis.resolution
    assert any("the message processor's clock may be off" in line for line in diagnosis.evidence)


def test_analyze_text_and_json_show_the_chain_verdict() -> None:
    # Given the untrusted capture and a truststore of CA B
    analysis = analyze_paths(_files(UNTRUSTED, "tls12"), [TRUST / "caB.pem"])
    # Then the text view prints the chain verdict, and the JSON carries it and the truststore
    text = render_analysis(analysis)
    assert "Backend chain: untrusted (decided by truststore)" in text
    assert f"  missing issuer: {CA_A}" in text and "  truststore given: 1 certificate(s)" in text
    data = json.loads(json.dumps(analysis.to_json()))
    assert data["diagnosis"]["chain"]["status"] == "untrusted"
    assert data["diagnosis"]["chain"]["missing_issuer"] == CA_A
    assert data["truststore"] == [{"subject": "CN=Lab CA B,OU=caB,O=Lab Org,C=US", "issuer":
                                   "CN=Lab CA B,OU=caB,O=Lab Org,C=US", "source": "caB.pem",
                                   "truststore": None, "names_only": False}]


def test_other_causes_carry_no_chain() -> None:
    diagnosis = analyze_paths([FIXTURES / "captures" / "healthy-java-tls12.pcap"]).diagnosis
    assert diagnosis.chain is None and diagnosis.to_json()["chain"] is None


def test_expired_certificate_held_by_the_truststore_is_the_one_to_replace(tmp_path: Path) -> None:
    # Given the expired scenario and a truststore that pins the backend's (expired) certificate itself
    (handshake,) = load_evidence(_files(EXPIRED, "tls12")).handshakes
    pinned = tmp_path / "pinned-backend.pem"
    pinned.write_bytes(x509.load_der_x509_certificate(handshake.server_chain_der[0]).public_bytes(Encoding.PEM))
    # When analyzed with it
    diagnosis = analyze_paths(_files(EXPIRED, "tls12"), [pinned]).diagnosis
    # Then the fix replaces that certificate in the truststore
    assert diagnosis.cause is EXPIRED
    assert diagnosis.resolution.startswith(f"Replace the expired certificate {LEAF} in the TrustStore")


def test_a_capture_without_timestamps_is_judged_at_analysis_time() -> None:
    # Given the expired scenario's handshake with no capture time (a file without timestamps)
    evidence = load_evidence(_files(EXPIRED, "tls12"))
    undated = replace(evidence.handshakes[0], captured_at=None)
    diagnosis = analyze_evidence(replace(evidence, handshakes=(undated,))).diagnosis
    # Then the certificate is still out of date, and the evidence says when it was judged
    assert diagnosis.cause is EXPIRED
    when = "the capture has no timestamps: the dates were judged at the time of this analysis"
    assert when in diagnosis.evidence

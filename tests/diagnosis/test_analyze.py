"""analyze_paths(): files in, DESIGN's JSON object out; bundles judged on the same path as captures."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.diagnosis.analyze import analyze_evidence, analyze_paths
from collector.diagnosis.ladder import render_analysis
from collector.tls.probe_results import probe_results_to_json
from tests.diagnosis.builders import CA_A, empty_cert_failed, evidence, probe, request
from tests.diagnosis.conftest import CAPTURES, EDGE, BundleMaker, resolution


def test_to_json_is_designs_object() -> None:
    # Given an analysis of a real capture and its alias document
    analysis = analyze_paths([CAPTURES / "ca-mismatch-java-tls12.pcap", EDGE / "alias-ca-mismatch.json"])
    # When serialised
    data = json.loads(json.dumps(analysis.to_json()))
    # Then the documented keys are there with the documented values
    (handshake,) = data["handshakes"]
    assert {"client", "server", "sni", "version", "server_chain", "certificate_request", "client_certificate",
            "alerts", "outcome"} <= handshake.keys()
    assert handshake["client_certificate"] == {"sent": False, "chain": []}
    assert handshake["alerts"] == [
        {"from": "server", "level": "fatal", "description": "bad_certificate", "code": 42}
    ]
    assert handshake["certificate_request"]["ca_names"] == ["CN=Lab CA A,OU=caA,O=Lab Org,C=US"]
    assert data["diagnosis"]["cause"] == "ca-mismatch"
    assert data["diagnosis"]["counts"] == {handshake["server"] + " (backend.lab)": {"failed": 1}}


def test_tls13_bundle_with_probe_and_keystore_gets_ca_mismatch(make_bundle: BundleMaker) -> None:
    # Given a bundle whose capture is TLS 1.3 without keys, with a probe of the backend and the keystore
    capture = CAPTURES / "ca-mismatch-java-tls13.pcap"
    root = make_bundle(captures={"mp1": capture},
                       documents={"keystore": EDGE / "keystore-ca-mismatch.json",
                                  "alias:myKey": EDGE / "alias-ca-mismatch.json"},
                       resolution=resolution(),
                       probes=probe_results_to_json([probe(request(CA_A, frame=None))]))
    # When analyzed as `collect analyze BUNDLE`
    analysis = analyze_paths([root])
    # Then the probe's CA list and the alias document decide, citing bundle paths
    assert analysis.diagnosis.cause.value == "ca-mismatch"
    assert any(line.startswith("edge/keystores/myKeystore/aliases/myKey.json: leaf issuer CN=Lab CA B")
               for line in analysis.diagnosis.evidence)


def test_bundle_key_alias_missing_from_keystore_gives_missing(make_bundle: BundleMaker) -> None:
    # Given a bundle whose resolved KeyAlias is not in the keystore
    root = make_bundle(captures={"mp1": CAPTURES / "missing-client-certificate-java-tls12.pcap"},
                       documents={"keystore": EDGE / "keystore-ca-mismatch.json"},
                       resolution=resolution(key_alias="prodKey"))
    # Then the cause is the missing client certificate, naming the alias
    analysis = analyze_paths([root])
    assert analysis.diagnosis.cause.value == "missing-client-certificate"
    assert "under alias prodKey" in analysis.diagnosis.resolution


def test_analyze_evidence_keeps_the_handshakes() -> None:
    # Given evidence built in memory, When analyzed, Then the handshakes pass through unchanged
    ev = evidence(empty_cert_failed(CA_A))
    assert analyze_evidence(ev).handshakes == ev.handshakes


def test_streamed_json_is_json_dumps_of_to_json() -> None:
    # Given captures whose handshakes repeat chains, CertificateRequests, client certificates and offers
    # (the same file twice, as a backend's connections do) beside others that differ from them
    paths = [CAPTURES / name for name in (
        "ca-mismatch-java-tls12.pcap", "ca-mismatch-java-tls12.pcap", "healthy-nginx-tls12.pcap",
        "healthy-nginx-tls12.pcap", "missing-client-certificate-java-tls13.pcap",
        "healthy-openssl-tls12.pcap", "client-certificate-rejected-openssl-tls12.pcap",
    )]
    analysis = analyze_paths(paths)
    # When streamed (the repeated parts' text is looked up by the identity of what it is made of)
    streamed = "".join(analysis.json_chunks())
    # Then it is exactly what json.dumps writes for the whole object
    assert len(analysis.handshakes) >= 6
    assert streamed == json.dumps(analysis.to_json(), indent=2)


# -- hostile bytes where the diagnosis reads them: names and certificates ------------------------------------

_HOSTILE_SOURCE = (CAPTURES / "ca-mismatch-java-tls12.pcap").read_bytes()
# Around each distinguished name the capture carries (the server's chain, the CertificateRequest's CA names):
# bytes changed there keep TCP and TLS framing whole, so the reader hands them to the diagnosis as DER.
_NAME_SPANS = [at - 48 for at in range(len(_HOSTILE_SOURCE)) if _HOSTILE_SOURCE.startswith(b"Lab Org", at)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.sampled_from(_NAME_SPANS), st.integers(0, 95), st.integers(0, 255)),
                      min_size=1, max_size=6))
def test_changed_name_and_certificate_bytes_still_give_a_verdict(tmp_path: Path, flips: list) -> None:
    # Given a real capture whose certificates and acceptable CA names have bytes changed (tags, lengths, OIDs,
    # string types: what a broken or hostile backend may send), and the keystore the names are compared with
    data = bytearray(_HOSTILE_SOURCE)
    for start, offset, value in flips:  # within 48 bytes either side of the name's "Lab Org"
        data[start + offset] = value
    capture = tmp_path / "hostile.pcap"
    capture.write_bytes(bytes(data))
    # When analyzed, Then a verdict comes out, as JSON and as text, and nothing raises
    analysis = analyze_paths([capture, EDGE / "alias-ca-mismatch.json"])
    assert json.loads("".join(analysis.json_chunks()))["diagnosis"]["cause"]
    assert render_analysis(analysis)

"""Configured vs observed per backend: the target's SSLInfo beside what real captures (and probes) show, the
rows that disagree marked with why. The probed column is filled from real surveys of nginx listeners (the
probe tests' own: TLS 1.3 only, TLS 1.2 with one suite, SNI only)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from collector.diagnosis.backend_view import (
    BackendView,
    ProbedFacts,
    Row,
    Source,
    backend_views,
    probed_facts,
)
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.inputs import load_evidence
from collector.diagnosis.probed import probed_facts as diagnosis_probed_facts
from collector.diagnosis.targets import BackendTarget, ConfiguredTls
from collector.diagnosis.verdict import ProbedFact
from collector.probe import survey_backend
from collector.tls.handshake import Handshake, Outcome, ProbeResult
from collector.tls.survey import make_offer
from tests.diagnosis.conftest import CAPTURES, EDGE, FIXTURES
from tests.lab.pki import BACKEND_ADDRESS, BACKEND_HOST
from tests.probe.test_survey import ONLY_SUITE, OTHER_SUITE, Listeners

FAILURES = CAPTURES / "failures"
TRUSTSTORES = FIXTURES / "truststores"
RESOLUTION = "edge/resolution.json"


def _evidence(*paths: Path, truststores: tuple[Path, ...] = ()) -> Evidence:
    return load_evidence(list(paths), truststores)


def _server(evidence: Evidence) -> tuple[str, int]:
    host, _, port = evidence.handshakes[0].server.rpartition(":")
    return host, int(port)


def _target(evidence: Evidence, tls: ConfiguredTls | None = None, host: str | None = None,
            addresses: tuple[str, ...] = ()) -> BackendTarget:
    """The target the captured MP connected to: its address (or `host` resolving to it) and port."""
    address, port = _server(evidence)
    return BackendTarget(host or address, port, addresses or ((address,) if host else ()), name="default",
                         url=f"https://{host or address}:{port}", ssl_enabled=True, source=RESOLUTION,
                         tls=tls if tls is not None else ConfiguredTls())


def _only_view(evidence: Evidence) -> BackendView:
    views = backend_views(evidence)
    assert len(views) == 1, [v.backend for v in views]
    return views[0]


def _row(view: BackendView, aspect: str) -> Row:
    return next(r for r in view.rows if r.aspect == aspect)


def test_protocols_beside_the_clienthello_the_backend_refused() -> None:
    # Given a JSSE MP limited to TLS 1.2 by its SSLInfo, and a capture of a TLS 1.3-only backend refusing it
    evidence = _evidence(FAILURES / "protocol-mismatch-java12-openssl13.pcap")
    evidence = replace(evidence, targets=(_target(evidence, ConfiguredTls(protocols=("TLSv1.2",))),))
    # When the view is built
    view = _only_view(evidence)
    versions = _row(view, "TLS versions")
    # Then <Protocols> stands beside the offer and the alert, and the row is marked with why
    assert versions.configured == versions.cells[0]
    assert (versions.configured.source, versions.configured.text, versions.configured.where) == (
        Source.CONFIGURED, "TLSv1.2", RESOLUTION)
    assert versions.captured.text == "offered TLSv1.2; no ServerHello"
    assert versions.captured.where == "frames 4–6 (protocol-mismatch-java12-openssl13.pcap)"
    assert versions.mismatch == "alert protocol_version (70) from the backend"
    assert view.target.startswith("TargetEndpoint default <URL> https://127.0.0.1:")
    assert view.shown.startswith("the one captured handshake, frames 4–6")
    # Each column says once where its facts come from
    assert (view.configured_from, view.captured_from, view.probed_from) == (
        RESOLUTION, "frames 4–6 (protocol-mismatch-java12-openssl13.pcap)", "")
    assert {r.aspect for r in view.mismatches} == {"TLS versions", "Outcome"}
    # Without a target, the aspects no source says anything about are left out
    bare = _only_view(replace(evidence, targets=()))
    assert [r.aspect for r in bare.rows] == ["TLS on the connection", "TLS versions", "Cipher suites",
                                             "SNI (server_name)", "Outcome"]


def test_an_offer_outside_the_configured_protocols_and_ciphers_means_another_sslinfo_was_deployed() -> None:
    # Given the same capture and an SSLInfo document that does not allow what the ClientHello offered
    evidence = _evidence(FAILURES / "cipher-mismatch-java-openssl-tls12.pcap")
    tls = ConfiguredTls(protocols=("TLSv1.3",), ciphers=("TLS_AES_128_GCM_SHA256",))
    view = _only_view(replace(evidence, targets=(_target(evidence, tls),)))
    # Then both rows say the deployed configuration is not the document's
    assert "which <Protocols> does not list" in _row(view, "TLS versions").mismatch
    suites = _row(view, "Cipher suites")
    assert suites.captured.text == "offered 1 suite(s): TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256; no ServerHello"
    assert suites.mismatch.startswith("the ClientHello offered TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, which"
                                      " <Ciphers> does not list")


def test_a_refused_clienthello_with_handshake_failure_marks_the_suites() -> None:
    evidence = _evidence(FAILURES / "cipher-mismatch-java-openssl-tls12.pcap")
    tls = ConfiguredTls(ciphers=("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",))
    suites = _row(_only_view(replace(evidence, targets=(_target(evidence, tls),))), "Cipher suites")
    assert suites.configured.text == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert suites.mismatch.startswith("the backend refused the ClientHello with handshake_failure (40)")


def test_unset_protocols_are_the_jvm_defaults_and_an_old_resolution_says_not_recorded() -> None:
    evidence = _evidence(FAILURES / "protocol-mismatch-java12-openssl13.pcap")
    view = _only_view(replace(evidence, targets=(_target(evidence),)))
    assert _row(view, "TLS versions").configured.text == "not set: the MP's JVM defaults"
    old = replace(_target(evidence), tls=None)
    view = _only_view(replace(evidence, targets=(old,)))
    assert _row(view, "TLS versions").configured.text.startswith("not recorded")


def test_sni_required_beside_the_target_host() -> None:
    # Given a target named by host (resolving to the captured address) and an nginx refusing a ClientHello
    # without server_name (unrecognized_name)
    evidence = _evidence(FAILURES / "sni-required-java-nginx-tls12.pcap")
    view = _only_view(replace(evidence, targets=(_target(evidence, host="backend.lab"),)))
    sni = _row(view, "SNI (server_name)")
    # Then the host the MP should name stands beside the ClientHello that named none
    assert sni.configured.text == "target host backend.lab (the MP sends it as server_name)"
    assert sni.captured.text == "no server_name sent"
    assert sni.mismatch == "the backend requires SNI and the MP sent no server_name"
    assert view.target == f"TargetEndpoint default <URL> https://backend.lab:{_server(evidence)[1]}"


def test_the_chain_against_the_truststore() -> None:
    # Given a backend chain from Lab CA A, and an MP truststore holding Lab CA B only
    evidence = _evidence(FAILURES / "server-certificate-untrusted-java-openssl-tls12.pcap",
                         truststores=(TRUSTSTORES / "caB.pem",))
    tls = ConfiguredTls(truststore="mp-truststore", truststore_reference="tsRef")
    chain = _row(_only_view(replace(evidence, targets=(_target(evidence, tls),))), "Server certificate chain")
    # Then the truststore stands beside the chain and its verdict, and the row is marked
    assert chain.configured.text == "TrustStore mp-truststore (ref://tsRef): 1 certificate(s) known"
    assert chain.captured.text.startswith("2 certificate(s): CN=backend.lab,O=Lab Org,C=US, issued by CN=Lab"
                                          " CA A")
    assert chain.mismatch == "not trusted: the truststore lacks CN=Lab CA A,OU=caA,O=Lab Org,C=US"
    # And with the right truststore the chain is trusted and the row unmarked
    trusted = _evidence(FAILURES / "server-certificate-untrusted-java-openssl-tls12.pcap",
                        truststores=(TRUSTSTORES / "caA.pem",))
    chain = _row(_only_view(replace(trusted, targets=(_target(trusted, tls),))), "Server certificate chain")
    assert "trusted by the truststore, dates valid" in chain.captured.text
    assert chain.mismatch == "the MP refused the chain: fatal alert certificate_unknown (46)"


def test_ignore_validation_errors_is_shown_and_unmarks_the_verdict() -> None:
    evidence = _evidence(FAILURES / "server-certificate-expired-java-openssl-tls12.pcap",
                         truststores=(TRUSTSTORES / "caA.pem",))
    tls = ConfiguredTls(truststore="ts", ignore_validation_errors=True)
    chain = _row(_only_view(replace(evidence, targets=(_target(evidence, tls),))), "Server certificate chain")
    assert chain.configured.text.endswith("; IgnoreValidationErrors true")
    assert "expired: " in chain.captured.text
    assert not chain.mismatch.startswith("expired")


def test_common_name_beside_the_certificate() -> None:
    # Given an SSLInfo CommonName the backend's leaf (CN=backend.lab) does not hold
    evidence = _evidence(FAILURES / "server-certificate-untrusted-java-openssl-tls12.pcap")
    other = ConfiguredTls(common_name="api.example.com")
    name = _row(_only_view(replace(evidence, targets=(_target(evidence, other),))), "Certificate host name")
    assert name.configured.text == "CommonName api.example.com"
    assert name.captured.text.startswith("the certificate names backend.lab, localhost, 127.0.0.21")
    assert name.mismatch == "the certificate's common name is not api.example.com"
    # Then an exact name, or a wildcard with wildcardMatch, is not marked; a wildcard without it is
    for tls, marked in ((ConfiguredTls(common_name="BACKEND.lab"), False),
                        (ConfiguredTls(common_name="*.lab", common_name_wildcard=True), False),
                        (ConfiguredTls(common_name="*.lab"), True)):
        row = _row(_only_view(replace(evidence, targets=(_target(evidence, tls),))), "Certificate host name")
        assert bool(row.mismatch) is marked, tls


def test_the_name_the_mp_checks_is_marked_when_the_certificate_lacks_it() -> None:
    evidence = _evidence(FAILURES / "server-hostname-mismatch-java-openssl-tls12.pcap")
    name = _row(_only_view(evidence), "Certificate host name")
    assert "does not match" in name.captured.text
    assert name.mismatch.startswith("the certificate does not hold")


def test_acceptable_ca_names_beside_the_keystore_and_the_empty_certificate() -> None:
    # Given the playbook's CA mismatch: the keystore's certificate is not issued by an acceptable CA
    evidence = _evidence(CAPTURES / "ca-mismatch-java-tls12.pcap", EDGE / "alias-ca-mismatch.json")
    tls = ConfiguredTls(client_auth_enabled=True, keystore=None, key_alias="myKey")
    view = _only_view(replace(evidence, targets=(_target(evidence, tls, host="backend.lab",
                                                         addresses=(_server(evidence)[0],)),)))
    names = _row(view, "Acceptable CA names")
    assert names.configured.text.startswith("KeyStore ?, KeyAlias myKey: its certificate is issued by ")
    assert names.captured.text == "CN=Lab CA A,OU=caA,O=Lab Org,C=US"
    assert names.mismatch.endswith("is not among the acceptable CA names")
    client = _row(view, "Client certificate")
    assert client.configured.text == "ClientAuthEnabled true: the MP sends its key's certificate"
    assert client.captured.text == "empty (Certificate Length: 0)"
    assert client.mismatch == "the backend asked for a client certificate and the MP sent an empty one"


def test_a_certificate_request_to_an_mp_without_client_auth_is_marked() -> None:
    evidence = _evidence(CAPTURES / "ca-mismatch-java-tls12.pcap")
    view = _only_view(replace(evidence, targets=(_target(evidence, ConfiguredTls()),)))
    assert _row(view, "Acceptable CA names").mismatch == ("the backend asks for a client certificate;"
                                                          " ClientAuthEnabled is not true")


def test_plaintext_and_refused_backends_mark_the_connection() -> None:
    evidence = _evidence(FAILURES / "backend-not-tls-java-nginx.pcap")
    connection = _row(_only_view(evidence), "TLS on the connection")
    assert connection.captured.text.startswith("not TLS: the backend answered \u201cHTTP/1.1 400 Bad Request")
    assert connection.mismatch == "the backend does not speak TLS on this port"
    # A refused connection: no handshake, only the attempt, cited by its frames
    refused = _evidence(FAILURES / "connection-refused-java.pcap")
    connection = _row(_only_view(refused), "TLS on the connection")
    assert connection.captured.text == "1 connection attempt(s) refused, no handshake"
    assert connection.captured.where.startswith("frames ")
    assert connection.mismatch == "nothing listens there: the connection was refused"


def test_a_target_without_capture_still_shows_its_configuration() -> None:
    # Given a target and no capture at all
    target = BackendTarget("backend.lab", 8443, source=RESOLUTION, ssl_enabled=True,
                           tls=ConfiguredTls(protocols=("TLSv1.2",), common_name="backend.lab"))
    view = _only_view(Evidence(targets=(target,)))
    # Then the configured column alone is filled, nothing marked
    assert view.backend == "backend.lab:8443" and view.shown == ""
    assert {r.aspect: r.configured.text for r in view.rows}["TLS versions"] == "TLSv1.2"
    assert all(not r.captured.text and not r.probed.text and not r.mismatch for r in view.rows)


def _probe(target: str, sni: str | None, version: str | None, via: str | None = "mp1") -> ProbeResult:
    failed = version is None
    handshake = Handshake(client="10.0.0.1:5000", server=target, sni=sni, version=version,
                          outcome=Outcome.FAILED if failed else Outcome.ESTABLISHED, source="probe")
    return ProbeResult(target, sni, via, handshake, "handshake did not complete: no alert" if failed
                       else "handshake completed")


def test_probe_results_fill_the_probed_column_and_settle_sni() -> None:
    # Given a target, and two probes of it: with server_name answered, without refused
    target = BackendTarget("backend.lab", 8443, ("10.0.0.5",), source=RESOLUTION, tls=ConfiguredTls())
    probes = (_probe("backend.lab:8443", "backend.lab", "TLSv1.3"), _probe("10.0.0.5:8443", None, None))
    view = _only_view(Evidence(targets=(target,), probes=probes))
    # Then the probed column cites the probe that got a ServerHello, and SNI is known to be required
    versions = _row(view, "TLS versions")
    assert (versions.probed.source, versions.probed.text, versions.probed.where) == (
        Source.PROBED, "negotiated TLSv1.3", "probe of backend.lab:8443 via mp1")
    assert _row(view, "SNI (server_name)").probed.text == ("required: refused without server_name (answered"
                                                           " with backend.lab)")
    assert probed_facts(Evidence(), probes).sni_required is True
    assert probed_facts(Evidence(), probes[:1]).sni_required is None


def test_probe_findings_slot_into_the_rows() -> None:
    # Given what the probe will report (the versions and suites the backend accepts among the MP's) for a
    # backend whose configured versions and suites it accepts none of
    tls = ConfiguredTls(protocols=("TLSv1.2",), ciphers=("TLS_RSA_WITH_AES_128_CBC_SHA",))
    target = BackendTarget("backend.lab", 8443, source=RESOLUTION, tls=tls)
    facts = ProbedFacts(accepted_versions=("TLSv1.3",), accepted_suites=("TLS_AES_128_GCM_SHA256",))
    # When the rows read them
    view, = backend_views(Evidence(targets=(target,)), read_probes=lambda evidence, probes: facts)
    # Then the probed column says what the backend accepts, and the rows are marked
    assert _row(view, "TLS versions").probed.text == "accepts TLSv1.3"
    assert _row(view, "TLS versions").mismatch == "the backend accepts none of TLSv1.2"
    assert _row(view, "Cipher suites").mismatch == "the backend accepts none of the suites the MP offers"


def test_servers_outside_the_targets_get_their_own_view() -> None:
    # Given a capture whose server is not the target's
    evidence = _evidence(FAILURES / "protocol-mismatch-java12-openssl13.pcap")
    elsewhere = BackendTarget("backend.lab", 9, ("10.9.9.9",), source=RESOLUTION, tls=ConfiguredTls())
    views = backend_views(replace(evidence, targets=(elsewhere,)))
    # Then the target and the captured server are two views; the captured one has no configured column
    assert [v.backend for v in views] == ["backend.lab:9", evidence.handshakes[0].server]
    assert views[1].target == "" and all(not r.configured.text for r in views[1].rows)


def test_a_plain_http_target_shows_only_its_connection() -> None:
    target = BackendTarget("backend.lab", 8080, url="http://backend.lab:8080", ssl_enabled=False,
                           source=RESOLUTION, tls=ConfiguredTls())
    view = _only_view(Evidence(targets=(target,)))
    assert [(r.aspect, r.configured.text) for r in view.rows] == [("TLS on the connection",
                                                                   "plain HTTP (no TLS)")]


# -- the probed column from real surveys ---------------------------------------------------------------------


def _surveyed(port: int, tls: ConfiguredTls, host: str = BACKEND_HOST, truststore: Path | None = None,
              **survey: object) -> tuple[Evidence, BackendView]:
    """A target on `port` (named `host`, resolving to the listener's address), no capture, and one real
    survey of the listener offering what `tls` configures, as the run's probe stage does."""
    result = survey_backend(BACKEND_ADDRESS, port, sni=BACKEND_HOST, offer=make_offer(tls.protocols or (),
                                                                                   tls.ciphers or ()),
                            timeout=5, **survey)  # type: ignore[arg-type]
    target = BackendTarget(host, port, (BACKEND_ADDRESS,), name="default", url=f"https://{host}:{port}",
                           ssl_enabled=True, source=RESOLUTION, tls=tls)
    evidence = replace(load_evidence([], (truststore,) if truststore else ()), targets=(target,),
                       probes=(result,))
    return evidence, _only_view(evidence)


@pytest.mark.lab
def test_a_probed_protocol_mismatch_marks_the_versions(listeners: Listeners) -> None:
    # Given an MP whose SSLInfo allows TLSv1.2 only and a TLS 1.3-only backend, surveyed (no capture)
    evidence, view = _surveyed(listeners.tls13_only, ConfiguredTls(protocols=("TLSv1.2",)))
    versions = _row(view, "TLS versions")
    # Then the probed column says what the backend accepts of the MP's offer, and the row is marked
    assert (versions.probed.source, versions.probed.text) == (
        Source.PROBED, "accepts none of the MP's versions (offered TLSv1.2: SSLInfo)")
    assert versions.probed.where == view.probed_from == f"probe of {BACKEND_ADDRESS}:{listeners.tls13_only}"
    assert versions.mismatch == "the backend accepts none of TLSv1.2"
    # The row and the diagnosis read the same facts
    facts = probed_facts(evidence, evidence.probes)
    def said(facts: tuple[ProbedFact, ...]) -> list[tuple[str, str, str]]:  # the chain's time aside
        return [(f.kind, f.status, f.detail) for f in facts]

    assert said(facts.facts) == said(diagnosis_probed_facts(evidence))
    assert next(f for f in facts.facts if f.kind == "protocols").status == "mismatch"


@pytest.mark.lab
def test_a_probed_cipher_mismatch_marks_the_suites_in_one_naming(listeners: Listeners) -> None:
    # Given the TLS 1.2 listener with one suite and an SSLInfo listing another
    _, view = _surveyed(listeners.tls12_one_suite, ConfiguredTls(protocols=("TLSv1.2",),
                                                                ciphers=(OTHER_SUITE,)))
    suites = _row(view, "Cipher suites")
    assert suites.probed.text == "accepts none of the MP's suites (of 1 offered: SSLInfo)"
    assert suites.mismatch == "the backend accepts none of the suites the MP offers"
    assert not _row(view, "TLS versions").mismatch  # the version is fine, the suites are not
    # And given <Ciphers> naming the backend's suite, nothing is marked; the probe's own handshake reports
    # it in OpenSSL's spelling, which the row shows (and compares) in <Ciphers>' IANA naming
    evidence, view = _surveyed(listeners.tls12_one_suite, ConfiguredTls(protocols=("TLSv1.2",),
                                                                       ciphers=(ONLY_SUITE,)))
    suites = _row(view, "Cipher suites")
    assert suites.probed.text == f"accepts {ONLY_SUITE} (of 1 offered: SSLInfo)"
    assert not suites.mismatch
    probe = evidence.probes[0]
    assert probe.handshake.cipher == "ECDHE-RSA-AES128-GCM-SHA256"
    without_survey = replace(evidence, probes=(replace(probe, survey=None),))
    assert _row(_only_view(without_survey), "Cipher suites").probed.text == f"negotiated {ONLY_SUITE}"


@pytest.mark.lab
def test_probed_sni_requirement_marks_a_target_named_by_address(listeners: Listeners) -> None:
    # Given the SNI-only listener and a target URL naming its address: the MP sends no server_name
    _, view = _surveyed(listeners.sni_only, ConfiguredTls(), host=BACKEND_ADDRESS)
    sni = _row(view, "SNI (server_name)")
    assert sni.configured.text == f"target host {BACKEND_ADDRESS} is an address: no server_name"
    assert sni.probed.text == f"required: refused without server_name (answered with {BACKEND_HOST})"
    assert sni.mismatch == (f"the backend requires SNI; the target host {BACKEND_ADDRESS} is an address, so"
                            " the MP sends none")
    # Given the target named by host, the MP sends the name: required, but nothing to mark
    _, view = _surveyed(listeners.sni_only, ConfiguredTls())
    sni = _row(view, "SNI (server_name)")
    assert sni.probed.text.startswith("required: ") and not sni.mismatch


@pytest.mark.lab
def test_a_probed_untrusted_chain_marks_the_chain(listeners: Listeners) -> None:
    # Given a backend chain from Lab CA A and an MP truststore holding Lab CA B only
    pki = listeners.pki
    tls = ConfiguredTls(truststore="myTruststore")
    _, view = _surveyed(listeners.tls13_only, tls, truststore=pki.ca_b_cert)
    chain = _row(view, "Server certificate chain")
    assert chain.probed.text.startswith(f"2 certificate(s): CN={BACKEND_HOST}")
    assert "; untrusted issuer: the chain does not lead to a certificate of the truststore given" \
        in chain.probed.text
    assert chain.mismatch.startswith("untrusted issuer: ")
    # With IgnoreValidationErrors the MP would go on: not marked; and the right truststore: trusted
    _, view = _surveyed(listeners.tls13_only, replace(tls, ignore_validation_errors=True),
                        truststore=pki.ca_b_cert)
    assert not _row(view, "Server certificate chain").mismatch
    _, view = _surveyed(listeners.tls13_only, tls, truststore=pki.ca_a_cert)
    chain = _row(view, "Server certificate chain")
    assert "; trusted: the chain leads to a certificate of" in chain.probed.text and not chain.mismatch

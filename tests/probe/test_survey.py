"""The probe's survey against real stacks: one nginx with a listener per case (TLS 1.3 only, TLS 1.2 with one
suite, an SNI-only server behind `ssl_reject_handshake`, an expired certificate), from here (pyOpenSSL), via
the lab's real sshd (openssl s_client), through `collect probe`, and as evidence for `collect analyze`."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from collector.diagnosis.analyze import analyze_paths
from collector.inventory import InventoryHost, load_inventory
from collector.probe import attempt_handshake, survey_backend
from collector.remote.connection import ConnectionSettings, open_host
from collector.remote.sclient import survey_via_host
from collector.tls.handshake import ProbeResult
from collector.tls.probe_results import probe_results_to_json
from collector.tls.survey import (
    MAX_HANDSHAKES,
    AttemptOutcome,
    AttemptSpec,
    ProtocolStatus,
    make_offer,
    render_survey,
    run_survey,
)
from tests.lab.backends import Backend, LabProcess, free_port, nginx_command, start_process, wait_for_port
from tests.lab.pki import BACKEND_ADDRESS, BACKEND_HOST, LabPki
from tests.lab.sshd import SshHosts, SshHostSpec, start_ssh_hosts
from tests.probe.test_cli_probe import run_collect

ONLY_SUITE = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"  # the TLS 1.2 listener's one suite
OTHER_SUITE = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
MP_ADDRESS = "127.0.0.17"


@dataclass(frozen=True)
class Listeners:
    tls13_only: int
    tls12_one_suite: int
    sni_only: int
    expired: int
    pki: LabPki
    workdir: Path


def _expired_cert(pki: LabPki, folder: Path) -> tuple[Path, Path]:
    """backend.lab, issued by CA-A, whose validity ended yesterday."""
    ca = x509.load_pem_x509_certificate(pki.ca_a_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_a_key.read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME,
                                                                                    BACKEND_HOST)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(BACKEND_HOST)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = folder / "expired.pem", folder / "expired.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + pki.ca_a_cert.read_bytes())
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def listeners(lab_pki: LabPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listeners]:
    workdir = tmp_path_factory.mktemp("survey-nginx")
    ports = [free_port(BACKEND_ADDRESS) for _ in range(4)]
    expired_cert, expired_key = _expired_cert(lab_pki, workdir)
    cert, key = lab_pki.backend_chain, lab_pki.backend_key

    def server(port: int, extra: str, name: str = BACKEND_HOST, crt: Path = cert, k: Path = key) -> str:
        return f"""
    server {{
        listen {BACKEND_ADDRESS}:{port} ssl;
        server_name {name};
        ssl_certificate {crt};
        ssl_certificate_key {k};
        {extra}
        location / {{ return 200 "ok\\n"; }}
    }}"""

    servers = (server(ports[0], "ssl_protocols TLSv1.3;")
               + server(ports[1], "ssl_protocols TLSv1.2; ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256;")
               # the SNI case: a default server that refuses every handshake, and the named one
               + f"""
    server {{
        listen {BACKEND_ADDRESS}:{ports[2]} ssl default_server;
        ssl_reject_handshake on;
        ssl_protocols TLSv1.2 TLSv1.3;  # the default server's versions are the listener's
    }}""" + server(ports[2], "ssl_protocols TLSv1.2 TLSv1.3;")
               + server(ports[3], "ssl_protocols TLSv1.2 TLSv1.3;", crt=expired_cert, k=expired_key))
    process: LabProcess = start_process("survey nginx", nginx_command(workdir / "nginx", servers),
                                        workdir / "nginx.out")
    for port in ports:
        wait_for_port(process, BACKEND_ADDRESS, port)
    yield Listeners(*ports, pki=lab_pki, workdir=workdir)
    process.stop()


def _anchors(pem: Path) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(pem.read_bytes())]


@pytest.mark.lab
def test_a_tls13_only_backend_refuses_an_mp_offering_tls12(listeners: Listeners) -> None:
    result = survey_backend(BACKEND_ADDRESS, listeners.tls13_only, sni=BACKEND_HOST,
                            offer=make_offer(["TLSv1.2"]), timeout=5)
    survey = result.survey
    assert survey is not None
    assert [(p.version, p.status) for p in survey.protocols] == [("TLSv1.2", ProtocolStatus.REFUSED)]
    assert survey.protocol_mismatch and not survey.cipher_mismatch
    assert result.handshake.version == "TLSv1.3"  # the probe's own handshake: the backend does speak TLS
    assert survey.sni is not None and survey.sni.required is False
    assert survey.handshakes <= MAX_HANDSHAKES


@pytest.mark.lab
def test_jsse_defaults_against_one_suite_lists_it_and_a_foreign_suite_is_a_cipher_mismatch(
        listeners: Listeners) -> None:
    defaults = survey_backend(BACKEND_ADDRESS, listeners.tls12_one_suite, sni=BACKEND_HOST,
                              offer=make_offer(), timeout=5).survey
    assert defaults is not None
    assert defaults.offer.protocols_source == "JSSE 17 defaults"
    assert [(p.version, p.status) for p in defaults.protocols] == [
        ("TLSv1.3", ProtocolStatus.REFUSED), ("TLSv1.2", ProtocolStatus.ACCEPTED)]
    assert defaults.accepted_ciphers == (ONLY_SUITE,) and defaults.ciphers_complete
    assert OTHER_SUITE in defaults.refused_ciphers
    foreign = survey_backend(BACKEND_ADDRESS, listeners.tls12_one_suite, sni=BACKEND_HOST,
                             offer=make_offer(["TLSv1.2"], [OTHER_SUITE]), timeout=5).survey
    assert foreign is not None
    assert foreign.protocols[0].status is ProtocolStatus.SUITES_REFUSED
    assert foreign.cipher_mismatch and not foreign.protocol_mismatch
    assert foreign.accepted_ciphers == ()


@pytest.mark.lab
def test_the_chain_verdict_names_untrusted_expired_and_a_wrong_name(listeners: Listeners) -> None:
    pki = listeners.pki
    trusted = survey_backend(BACKEND_ADDRESS, listeners.tls13_only, sni=BACKEND_HOST, offer=make_offer(),
                             anchors=_anchors(pki.ca_a_cert), truststore="CA-A", timeout=5).survey
    assert trusted is not None and trusted.chain is not None and trusted.chain.status == "trusted"
    untrusted = survey_backend(BACKEND_ADDRESS, listeners.tls13_only, sni=BACKEND_HOST, offer=make_offer(),
                               anchors=_anchors(pki.ca_b_cert), truststore="CA-B", timeout=5).survey
    assert untrusted is not None and untrusted.chain is not None
    assert untrusted.chain.status == "untrusted"
    assert untrusted.chain.reason.startswith(
        "untrusted issuer: the chain does not lead to a certificate of CA-B")
    wrong = survey_backend(BACKEND_ADDRESS, listeners.tls13_only, sni=BACKEND_HOST, offer=make_offer(),
                           anchors=_anchors(pki.ca_a_cert), check_name="other.lab", timeout=5).survey
    assert wrong is not None and wrong.chain is not None and wrong.chain.status == "name-mismatch"
    assert "hostname mismatch: other.lab" in wrong.chain.reason
    expired = survey_backend(BACKEND_ADDRESS, listeners.expired, sni=BACKEND_HOST, offer=make_offer(),
                             anchors=_anchors(pki.ca_a_cert), timeout=5).survey
    assert expired is not None and expired.chain is not None and expired.chain.status == "expired"
    assert expired.chain.reason.startswith(f"expired: CN={BACKEND_HOST}")
    assert expired.handshakes <= MAX_HANDSHAKES


@pytest.mark.lab
def test_the_survey_stops_at_its_handshake_budget(listeners: Listeners) -> None:
    # Given a backend accepting many of JSSE's suites and a budget of 4 handshakes, When surveyed, Then it
    # asks the versions and SNI first, stops at the budget and says the suite list is incomplete.
    def attempt(spec: AttemptSpec) -> AttemptOutcome:
        return attempt_handshake(BACKEND_ADDRESS, listeners.expired, spec, 5)

    survey = run_survey(attempt, make_offer(), BACKEND_HOST, timeout=5, max_handshakes=4)
    assert survey.handshakes == 4 and len(survey.attempts) == 3
    assert [a.purpose for a in survey.attempts] == ["protocol", "protocol", "sni"]
    assert not survey.ciphers_complete and survey.stopped == "the budget of 4 handshakes ran out"
    assert survey.accepted_protocols == ("TLSv1.3", "TLSv1.2")
    assert "at least (the handshake budget ran out)" in "\n".join(render_survey(survey))


@pytest.mark.lab
def test_sni_required_cli_text_and_json(listeners: Listeners, capsys: pytest.CaptureFixture[str]) -> None:
    target = f"{BACKEND_ADDRESS}:{listeners.sni_only}"
    code, out, err = run_collect(capsys, "probe", target, "--sni", BACKEND_HOST, "--timeout", "5",
                                 "--truststore", str(listeners.pki.ca_a_cert))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert any(line.startswith("Chain verdict: trusted: the chain leads to a certificate of the truststore"
                               " given") for line in lines)
    assert any(line.startswith("SNI: REQUIRED: accepted with server_name backend.lab") for line in lines)
    assert any(line.startswith("Handshakes: ") for line in lines)
    code, out, _ = run_collect(capsys, "probe", target, "--sni", BACKEND_HOST, "--timeout", "5", "--json",
                               "--protocol", "TLSv1.3")
    survey = json.loads(out)["survey"]
    assert survey["sni"]["required"] is True
    assert survey["offer"]["protocols"] == ["TLSv1.3"]
    assert survey["offer"]["protocols_source"] == "command line"
    assert survey["accepted_protocols"] == ["TLSv1.3"], survey["protocols"]
    assert survey["chain"]["status"] == "unknown-trust"
    assert 1 < survey["handshakes"] <= survey["max_handshakes"] == MAX_HANDSHAKES


@pytest.mark.lab
def test_probe_findings_name_the_cause_when_no_capture_shows_it(listeners: Listeners, tmp_path: Path) -> None:
    """`collect analyze` of probe results alone (public cloud: nothing captured): each cause is named from
    the probe, says so, and lists the probed facts as typed data."""
    cases = [
        (listeners.sni_only, make_offer(), None, "sni-required"),
        (listeners.tls13_only, make_offer(["TLSv1.2"]), None, "protocol-mismatch"),
        (listeners.tls12_one_suite, make_offer(["TLSv1.2"], [OTHER_SUITE]), None, "cipher-mismatch"),
        (listeners.tls13_only, make_offer(), listeners.pki.ca_b_cert, "server-certificate-untrusted"),
        (listeners.expired, make_offer(), None, "server-certificate-expired"),
    ]
    for port, offer, truststore, cause in cases:
        result = survey_backend(BACKEND_ADDRESS, port, sni=BACKEND_HOST, offer=offer, timeout=5)
        path = tmp_path / f"{cause}.json"
        path.write_text(json.dumps(probe_results_to_json([result])))
        analysis = analyze_paths([path], [truststore] if truststore else [])
        diagnosis = analysis.diagnosis.to_json()
        assert diagnosis["cause"] == cause, diagnosis["summary"]
        assert diagnosis["named_from_probe"] is True
        assert str(diagnosis["summary"]).startswith("Named from a probe, not a capture")
        assert any(str(line).startswith("probed, not captured (probe of ") for line in diagnosis["evidence"])
        kinds = {fact["kind"] for fact in diagnosis["probed"]}
        assert kinds == {"chain", "protocols", "ciphers", "sni"}
        assert all(fact["origin"] == "probed" for fact in diagnosis["probed"])


# --- via an MP: the lab's real sshd, openssl s_client on it ------------------------------------------------


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHosts]:
    root = tmp_path_factory.mktemp("survey-ssh")
    spec = SshHostSpec("mp1", MP_ADDRESS, "message-processor", root / "mp1")
    with start_ssh_hosts(root / "lab", [spec]) as hosts:
        yield hosts


@pytest.fixture
def mp1(ssh_lab: SshHosts, tmp_path: Path) -> InventoryHost:
    inventory = ssh_lab.write_inventory(tmp_path / "hosts.yaml")
    return next(h for h in load_inventory(inventory).hosts if h.name == "mp1")


@pytest.mark.lab
def test_survey_via_an_mp_matches_the_local_one(listeners: Listeners, ssh_lab: SshHosts, mp1: InventoryHost,
                                                lab_backend: Callable[[str, str], Backend]) -> None:
    settings = ConnectionSettings(known_hosts=ssh_lab.known_hosts, connect_timeout=5, command_timeout=30)
    with open_host(mp1, settings) as conn:
        # Narrow offers keep the SSH round trips few: each handshake is one s_client over SSH.
        sni = survey_via_host(conn, BACKEND_ADDRESS, listeners.sni_only, BACKEND_HOST,
                              make_offer(["TLSv1.3"], ["TLS_AES_128_GCM_SHA256"]),
                              anchors=_anchors(listeners.pki.ca_b_cert), truststore="CA-B", timeout=5)
        ciphers = survey_via_host(conn, BACKEND_ADDRESS, listeners.tls12_one_suite, BACKEND_HOST,
                                  make_offer(["TLSv1.2", "TLSv1.3"]), timeout=5)
        java = lab_backend("java", "1.2")
        two_way = survey_via_host(conn, java.address, java.port, BACKEND_HOST,
                                  make_offer(["TLSv1.3", "TLSv1.2"], [ONLY_SUITE, "TLS_AES_128_GCM_SHA256"]),
                                  timeout=5)
    assert sni.via == "mp1"
    assert sni.survey is not None and sni.survey.sni is not None and sni.survey.sni.required is True
    assert sni.survey.chain is not None and sni.survey.chain.status == "untrusted"
    survey = ciphers.survey
    assert survey is not None
    assert [(p.version, p.status) for p in survey.protocols] == [
        ("TLSv1.2", ProtocolStatus.ACCEPTED), ("TLSv1.3", ProtocolStatus.REFUSED)]
    assert survey.accepted_ciphers == (ONLY_SUITE,)
    # the JSSE backend ends each TLS 1.2 handshake for the missing client certificate, after its ServerHello
    assert _statuses(two_way) == [("TLSv1.3", ProtocolStatus.REFUSED), ("TLSv1.2", ProtocolStatus.ACCEPTED)]


@pytest.mark.lab
@pytest.mark.parametrize("kind", ["java", "openssl", "nginx"])
def test_a_backend_demanding_a_client_certificate_still_shows_its_versions(
        lab_backend: Callable[[str, str], Backend], kind: str) -> None:
    # Given the lab's two-way TLS 1.2 backends (JSSE, s_server, nginx), which end a TLS 1.2 handshake without
    # a client certificate, When surveyed with JSSE's defaults, Then TLS 1.2 counts as accepted (the backend
    # answered with its ServerHello) and TLS 1.3 as refused.
    backend = lab_backend(kind, "1.2")
    survey = survey_backend(backend.address, backend.port, sni=BACKEND_HOST, offer=make_offer(),
                            timeout=5).survey
    assert survey is not None
    assert [(p.version, p.status) for p in survey.protocols] == [
        ("TLSv1.3", ProtocolStatus.REFUSED), ("TLSv1.2", ProtocolStatus.ACCEPTED)], survey.protocols
    assert survey.accepted_ciphers and not survey.protocol_mismatch and not survey.cipher_mismatch


def _statuses(result: ProbeResult) -> list[tuple[str, ProtocolStatus]]:
    assert result.survey is not None
    return [(p.version, p.status) for p in result.survey.protocols]

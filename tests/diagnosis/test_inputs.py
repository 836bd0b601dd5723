"""Files sniffed by content into evidence; bundles (directory and .tar.gz) read through layout.py."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from collector import layout
from collector.diagnosis.inputs import evidence_from_bundle, load_evidence
from collector.errors import InputError
from collector.tls.probe_results import probe_results_to_json
from tests.diagnosis.builders import CA_A, probe, request
from tests.diagnosis.conftest import CAPTURES, EDGE, BundleMaker, resolution, tar_bundle, tar_members


def test_capture_and_alias_document_become_handshakes_and_keystore_evidence() -> None:
    # Given a real capture and an Edge alias document
    evidence = load_evidence([CAPTURES / "ca-mismatch-java-tls12.pcap", EDGE / "alias-ca-mismatch.json"])
    # Then the handshake cites the file and the alias entry holds the chain with a key
    assert [h.source for h in evidence.handshakes] == ["ca-mismatch-java-tls12.pcap"]
    (entry,) = evidence.keystores
    assert (entry.alias, entry.has_key, entry.chain[0].issuer) == (
        "myKey", True, "CN=Lab CA B, OU=caB, O=Lab Org, C=US"
    )


def test_key_log_given_after_the_capture_still_decrypts_it() -> None:
    # Given a TLS 1.3 capture and its key log, in that order
    evidence = load_evidence([CAPTURES / "ca-mismatch-openssl-tls13.pcap",
                              CAPTURES / "ca-mismatch-openssl-tls13.keys"])
    # Then the CertificateRequest and the empty client Certificate are visible
    (handshake,) = evidence.handshakes
    assert handshake.certificate_request is not None and handshake.client_certificate is not None
    assert not handshake.client_certificate.sent


def test_gzip_capture_pem_chain_and_probe_results_are_recognised(tmp_path: Path) -> None:
    # Given a gzipped capture, a PEM chain and a probe results file
    gz = tmp_path / "capture.bin"
    gz.write_bytes(gzip.compress((CAPTURES / "healthy-java-tls12.pcap").read_bytes()))
    pem = tmp_path / "chain.txt"
    pem.write_text(_pem_of_lab_ca())
    probes = tmp_path / "probe.json"
    probes.write_text(json.dumps(probe_results_to_json([probe(request(CA_A, frame=None))])))
    # When loaded, Then each lands in its place
    evidence = load_evidence([gz, pem, probes])
    assert len(evidence.handshakes) == 1
    assert [e.document for e in evidence.keystores] == ["pem"]
    assert evidence.probes[0].handshake.certificate_request.ca_names == (CA_A,)


def test_single_probe_object_is_accepted(tmp_path: Path) -> None:
    # Given the one object `collect probe --json` prints
    one = tmp_path / "probe.json"
    one.write_text(json.dumps(probe(request(CA_A)).to_json()))
    # Then it reads as one probe result
    assert len(load_evidence([one]).probes) == 1


def test_directory_bundle_reads_captures_keystores_resolution_and_probes(make_bundle: BundleMaker) -> None:
    # Given a bundle with two hosts' captures, keystore documents, the resolution and probe results
    root = make_bundle(
        captures={"mp1": CAPTURES / "ca-mismatch-java-tls13.pcap",
                  "backend1": CAPTURES / "healthy-java-tls12.pcap"},
        documents={"keystore": EDGE / "keystore-ca-mismatch.json",
                   "alias:myKey": EDGE / "alias-ca-mismatch.json"},
        resolution=resolution(), probes=probe_results_to_json([probe(request(CA_A, frame=None))]))
    # When read
    evidence = evidence_from_bundle(root)
    # Then everything is there, cited by bundle path
    assert sorted(h.source for h in evidence.handshakes) == [
        "hosts/backend1/capture.pcap", "hosts/mp1/capture.pcap"
    ]
    assert (evidence.key_alias, evidence.keystore) == ("myKey", "myKeystore")
    assert {e.source for e in evidence.keystores} == {"edge/keystores/myKeystore/keystore.json",
                                                      "edge/keystores/myKeystore/aliases/myKey.json"}
    assert len(evidence.probes) == 1
    assert "edge/resolution.json: keystore myKeystore: alias myKey has no key" in evidence.notes


def test_tar_gz_bundle_is_read_in_place_like_the_directory(make_bundle: BundleMaker, tmp_path: Path) -> None:
    # Given the same bundle as a directory and as a .tar.gz
    root = make_bundle(captures={"mp1": CAPTURES / "ca-mismatch-java-tls12.pcap"},
                       documents={"alias:myKey": EDGE / "alias-ca-mismatch.json"}, resolution=resolution())
    archive = tar_bundle(root, tmp_path / "bundle.tar.gz")
    shutil.rmtree(root)
    # When the archive is read
    evidence = load_evidence([archive])
    # Then it holds the capture and documents, and nothing was extracted beside it
    assert [h.source for h in evidence.handshakes] == ["hosts/mp1/capture.pcap"]
    assert evidence.keystores[0].keystore == "myKeystore"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.tar.gz"]


def test_bundle_with_damaged_capture_keeps_the_rest(make_bundle: BundleMaker) -> None:
    # Given a host whose capture is empty (tcpdump never started)
    root = make_bundle(captures={"mp1": CAPTURES / "ca-mismatch-java-tls12.pcap"},
                       documents={"alias:myKey": EDGE / "alias-ca-mismatch.json"})
    (root / "hosts" / "mp2").mkdir()
    (root / "hosts" / "mp2" / "capture.pcap").write_bytes(b"")
    # When read, Then the other host's handshake and a note remain
    evidence = evidence_from_bundle(root)
    assert len(evidence.handshakes) == 1
    assert any(n.startswith("hosts/mp2/capture.pcap: unreadable capture") for n in evidence.notes)


def test_bundle_keystore_folder_takes_the_keystore_documents_real_name(make_bundle: BundleMaker) -> None:
    # Given a keystore whose name is not file-name-safe, stored under its safe folder name
    root = make_bundle(keystore="my keystore", documents={"alias:myKey": EDGE / "alias-ca-mismatch.json"})
    doc = root / "edge/keystores/my_keystore/keystore.json"
    doc.write_text(json.dumps({"name": "my keystore", "keys": ["myKey"], "certs": ["myKey-cert"],
                               "aliases": [{"aliasName": "myKey", "cert": "myKey-cert", "key": "myKey"}]}))
    # Then every entry carries the real name
    assert {e.keystore for e in evidence_from_bundle(root).keystores} == {"my keystore"}


def test_tar_member_escaping_the_bundle_is_refused(tmp_path: Path) -> None:
    # Given an archive with a manifest and an absolute member
    archive = tar_members(tmp_path / "evil.tar.gz", {"b/manifest.json": b"{}", "/etc/evil": b"x"})
    # Then reading it fails with the member named
    with pytest.raises(InputError, match="member '/etc/evil' escapes the bundle"):
        load_evidence([archive])


def test_tar_bundle_at_archive_root_is_read(tmp_path: Path) -> None:
    # Given an archive whose manifest sits at the root (no top folder)
    alias = (EDGE / "alias-ca-mismatch.json").read_bytes()
    archive = tar_members(tmp_path / "flat.tar.gz",
                          {"manifest.json": b"{}", "edge/keystores/ks/aliases/a.json": alias})
    # Then the documents are found
    assert load_evidence([archive]).keystores[0].source == "edge/keystores/ks/aliases/a.json"


def _pem_of_lab_ca() -> str:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string("CN=client,O=Lab Org,C=US")
    issuer = x509.Name.from_rfc4514_string("CN=Lab CA B,OU=caB,O=Lab Org,C=US")
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.PEM).decode()


def test_bundle_jsse_signs_are_the_message_ids_lines_and_the_trace_error_cause(
    make_bundle: BundleMaker,
) -> None:
    # Given a bundle whose trace names the message id and error.cause, and an MP excerpt with that id's
    # handshakeFailed line beside a context line of another request
    root = make_bundle()
    (root / layout.TRACE_SESSION).parent.mkdir(parents=True)
    (root / layout.TRACE_SESSION).write_text(json.dumps({
        "message_ids": ["rrt-own-1"], "error_causes": ["Received fatal alert: unrecognized_name"]}))
    excerpt = root / layout.host_file("mp1", layout.HOST_LOG_EXCERPT)
    excerpt.parent.mkdir(parents=True)
    excerpt.write_bytes(
        b"messageid:rrt-other-9 handshake failed, message: PKIX path building failed\n"
        b"messageid:rrt-own-1 handshake failed, message: Received fatal alert: unrecognized_name\n\xff\n")
    (root / layout.REQUEST_RESPONSE).parent.mkdir(parents=True)
    (root / layout.REQUEST_RESPONSE).write_bytes(b"HTTP/1.1 503 Service Unavailable\r\n"
                                                 b"X-Apigee.Message-ID: rrt-own-1\r\n\r\n{}")
    # When read
    signs = evidence_from_bundle(root).jsse_signs
    # Then the trace's cause and the id's own line are signs of sni-required, the other request's line is not
    assert [(s.source, s.causes[0]) for s in signs] == [
        ("trace/session.json (error.cause)", "sni-required"),
        ("hosts/mp1/system.log.excerpt", "sni-required"),
    ]
    assert "rrt-own-1" in signs[1].line


def test_bundle_jsse_signs_without_a_message_id_read_every_excerpt_line(make_bundle: BundleMaker) -> None:
    root = make_bundle()
    excerpt = root / layout.host_file("mp2", layout.HOST_LOG_EXCERPT)
    excerpt.parent.mkdir(parents=True)
    excerpt.write_text("x handshake failed, message: Unsupported or unrecognized SSL message\n")
    (sign,) = evidence_from_bundle(root).jsse_signs
    assert sign.causes == ("backend-not-tls",)


def test_capture_attempts_and_bundle_targets_are_read(make_bundle: BundleMaker, tmp_path: Path) -> None:
    # Given a capture of a refused attempt, alone and inside a bundle whose resolution names the backend
    refused = CAPTURES / "failures" / "connection-refused-java.pcap"
    data = resolution()
    data["backends"] = [{"host": "backend.lab", "port": 8443, "addresses": ["127.0.0.1"]}]
    root = make_bundle(captures={"mp1": refused}, resolution=data)
    saved = tmp_path / "resolution.json"
    saved.write_text(json.dumps(data))
    # When loaded as files and as a bundle
    from_files, from_bundle = load_evidence([refused, saved]), evidence_from_bundle(root)
    # Then the attempt cites where it was read, and the target carries its backend's addresses
    assert [(a.end.value, a.source) for a in from_files.connection_attempts] == [
        ("refused", "connection-refused-java.pcap")]
    assert [a.source for a in from_bundle.connection_attempts] == ["hosts/mp1/capture.pcap"]
    assert [(t.host, t.port, t.addresses, t.source) for t in from_bundle.targets] == [
        ("backend.lab", 8443, ("127.0.0.1",), "edge/resolution.json")]
    assert [t.source for t in from_files.targets] == ["resolution.json"]

"""`collect analyze` end to end through the real CLI: causes from real captures,
and one broken file per bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLLECT = ROOT / ".venv" / "bin" / "collect"
CAPTURES = "tests/fixtures/captures"
EDGE = "tests/fixtures/edge"
BROKEN = "tests/fixtures/broken"


def run_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(COLLECT), "analyze", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)


E2E = {
    "ca-mismatch from capture + alias document": (
        [f"{CAPTURES}/ca-mismatch-java-tls12.pcap", f"{EDGE}/alias-ca-mismatch.json"], "ca-mismatch",
        ["leaf issuer CN=Lab CA B, OU=caB, O=Lab Org, C=US is not an acceptable CA",
         "lists acceptable CA names: CN=Lab CA A,OU=caA,O=Lab Org,C=US"]),
    "same capture + keystore without keys": (
        [f"{CAPTURES}/ca-mismatch-java-tls12.pcap", f"{EDGE}/keystore-no-key.json"],
        "missing-client-certificate", ["keystore myKeystore holds no private key"]),
    "capture alone": ([f"{CAPTURES}/ca-mismatch-java-tls12.pcap"], "client-certificate-not-sent",
                      ["frame 16: client Certificate length 0 (no certificate sent)",
                       "frame 17: fatal alert bad_certificate (42) from the server"]),
    "nginx completes after an empty certificate": (
        [f"{CAPTURES}/missing-client-certificate-nginx-tls12.pcap", f"{EDGE}/keystore-no-key.json"],
        "missing-client-certificate", ["no alert: the handshake completed"]),
    "cert document joined to the keystore listing": (
        [f"{CAPTURES}/ca-mismatch-openssl-tls12.pcap", f"{EDGE}/keystore-ca-mismatch.json",
         f"{EDGE}/cert-ca-mismatch.json"],
        "ca-mismatch", ["fatal alert handshake_failure (40) from the server"]),
    "tls 1.3 without keys": ([f"{CAPTURES}/ca-mismatch-openssl-tls13.pcap", f"{EDGE}/alias-ca-mismatch.json"],
                             "encrypted-handshake", []),
    "tls 1.3 with its key log": (
        [f"{CAPTURES}/ca-mismatch-openssl-tls13.keys", f"{CAPTURES}/ca-mismatch-openssl-tls13.pcap",
         f"{EDGE}/alias-ca-mismatch.json"],
        "ca-mismatch", ["fatal alert certificate_required (116) from the server"]),
    "rejected certificate": ([f"{CAPTURES}/client-certificate-rejected-openssl-tls12.pcap"],
                             "client-certificate-rejected", ["fatal alert unknown_ca (48) from the server"]),
    "healthy": ([f"{CAPTURES}/healthy-java-tls12.pcap", f"{EDGE}/alias-healthy.json"], "handshake-ok", []),
}


@pytest.mark.parametrize("files,cause,lines", E2E.values(), ids=E2E.keys())
def test_analyze_json_names_the_cause_of_real_captures(
    files: list[str], cause: str, lines: list[str]
) -> None:
    # Given real lab captures and Edge documents, When analyzed with --json
    result = run_analyze(*files, "--json")
    # Then it exits 0 with DESIGN's object naming the cause and citing the evidence
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert {"handshakes", "diagnosis"} <= output.keys()
    assert output["diagnosis"]["cause"] == cause
    assert {"cause", "summary", "evidence", "resolution"} <= output["diagnosis"].keys()
    evidence = "\n".join(output["diagnosis"]["evidence"])
    for line in lines:
        assert line in evidence


def test_analyze_text_draws_the_ladder_and_the_diagnosis() -> None:
    # Given the playbook's capture and keystore, When analyzed without --json
    result = run_analyze(f"{CAPTURES}/ca-mismatch-java-tls12.pcap", f"{EDGE}/alias-ca-mismatch.json")
    # Then the ladder, counts, cause, evidence and resolution are printed as plain text
    assert result.returncode == 0, result.stderr
    for expected in ("ClientHello (SNI backend.lab)", "→ Certificate (length 0: no client certificate)",
                     "← Alert fatal bad_certificate (42)", "Handshakes per backend:", "Cause: ca-mismatch",
                     "Evidence:", "Resolution:"):
        assert expected in result.stdout
    assert "\x1b[" not in result.stdout


BROKEN_INPUTS = {
    "missing file": ("missing.pcap", "does not exist"),
    "empty file": ("empty.pcap", "is empty"),
    "truncated pcap header": ("truncated-header.pcap", "ends inside the pcap file header (14 of 24 bytes)"),
    "truncated pcapng header": ("truncated-header.pcapng", "ends inside the pcapng section header (6 bytes)"),
    "unknown content": ("unknown.txt",
                        "is not a capture, support bundle, Edge keystore/alias/cert JSON, "
                        "PEM chain or NSS key log"),
    "unreadable json": ("truncated.json", "is not valid JSON (Expecting value at line 1 column 34)"),
    "json not utf-8": ("not-utf8.json", "is not UTF-8 text"),
    "json of another kind": ("other.json",
                             "is JSON but neither an Edge keystore/alias/cert document nor probe results"),
    "alias without certInfo": ("alias-without-certinfo.json",
                               "is not a valid Edge alias document: "
                               "missing field 'certsInfo.certInfo' (a list of certificates)"),
    "cert without issuer": ("cert-without-issuer.json",
                            "is not a valid Edge cert document: missing field 'issuer' in certInfo[0]"),
    "keystore without certs": ("keystore-without-certs.json",
                               "is not a valid Edge keystore document: missing field 'certs' (a list)"),
    "keystore alias without name": ("keystore-alias-without-name.json",
                                    "is not a valid Edge keystore document: aliases[0] has no aliasName"),
    "malformed probe results": ("probe-results-malformed.json",
                                "probe result #1 is malformed (KeyError: 'client')"),
    "private key instead of chain": ("private-key.pem",
                                     "is a private key; analyze needs the certificate chain only "
                                     "(never share private keys)"),
    "pem without certificate": ("csr-not-chain.pem", "holds no PEM certificate"),
    "key log with a bad line": ("keylog-bad-line.keys",
                                "line 2 is not an NSS key log line 'LABEL CLIENT_RANDOM SECRET'"),
    "directory that is not a bundle": ("not-a-bundle",
                                       "is a directory but not a support bundle (no manifest.json)"),
    "gzip of neither": ("not-tar-not-capture.gz",
                        "is gzip-compressed but neither a capture nor a readable bundle"),
    "tar.gz without manifest": ("bundle-without-manifest.tar.gz",
                                "is a .tar.gz without manifest.json, so not a support bundle"),
    "tar.gz member escaping": ("bundle-escaping-member.tar.gz",
                               "member 'apigee-diag-x/../../evil.txt' escapes the bundle "
                               "(absolute path or '..'); refusing to read it"),
    "bundle with a bad alias document": (
        "bundle-bad-alias.tar.gz",
        ("edge/keystores/myKeystore/aliases/myKey.json: is not a valid Edge alias document: "
         "missing field 'certsInfo.certInfo' (a list of certificates)")),
}


@pytest.mark.parametrize("name,message", BROKEN_INPUTS.values(), ids=BROKEN_INPUTS.keys())
def test_broken_input_exits_2_with_one_line_naming_file_and_defect(name: str, message: str) -> None:
    # Given one broken file per failure mode
    path = f"{BROKEN}/{name}"
    # When analyzed through the real CLI
    result = run_analyze(path)
    # Then exit 2, one stderr line "collect: FILE: DEFECT", no traceback, nothing on stdout
    assert result.returncode == 2
    assert result.stderr.startswith(f"collect: {path}: {message}")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_broken_fixture_folder_has_a_test_per_file() -> None:
    # Given the broken fixtures, Then each one is paired with its message above (the missing file excepted)
    on_disk = {p.name for p in (ROOT / BROKEN).iterdir()}
    assert on_disk == {name for name, _ in BROKEN_INPUTS.values()} - {"missing.pcap"}


def test_a_good_file_beside_a_broken_one_still_fails_with_the_broken_one_named() -> None:
    # Given a good capture and an empty file, Then the empty one is named and nothing is half-printed
    result = run_analyze(f"{CAPTURES}/healthy-java-tls12.pcap", f"{BROKEN}/empty.pcap", "--json")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"collect: {BROKEN}/empty.pcap: is empty\n"


def test_analyze_reads_a_tar_gz_bundle(tmp_path: Path) -> None:
    # Given a support bundle (.tar.gz) with an MP capture, the keystore documents and the resolved KeyAlias
    from tests.diagnosis.conftest import resolution, tar_bundle, write_bundle

    root = write_bundle(tmp_path / "apigee-diag-org-env-proxy-20260101T000000Z",
                        captures={"mp1": ROOT / CAPTURES / "ca-mismatch-nginx-tls12.pcap"},
                        documents={"keystore": ROOT / EDGE / "keystore-ca-mismatch.json",
                                   "alias:myKey": ROOT / EDGE / "alias-ca-mismatch.json"},
                        resolution=resolution())
    archive = tar_bundle(root, tmp_path / "bundle.tar.gz")
    # When analyzed through the CLI
    result = run_analyze(str(archive), "--json")
    # Then the cause cites the bundle's paths
    assert result.returncode == 0, result.stderr
    diagnosis = json.loads(result.stdout)["diagnosis"]
    assert diagnosis["cause"] == "ca-mismatch"
    assert any(line.startswith("edge/keystores/myKeystore/aliases/myKey.json: leaf issuer")
               for line in diagnosis["evidence"])
    assert "keystore myKeystore under alias myKey" in diagnosis["resolution"]


FAILURES = f"{CAPTURES}/failures"
TRUSTSTORES = "tests/fixtures/truststores"

# --truststore FILE: one broken file per failure mode (under tests/fixtures), and the exact message naming it
BROKEN_TRUSTSTORES = {
    "missing file": ("broken/missing.pem", "does not exist"),
    "empty file": ("broken/empty.pcap", "is empty"),
    "a directory": ("broken/not-a-bundle", "is a directory, not a truststore certificate file"),
    "private key": ("broken/private-key.pem",
                    "is a private key; a truststore holds certificates only (never share private keys)"),
    "pem without certificate": ("broken/csr-not-chain.pem", "holds no PEM certificate"),
    "damaged pem certificate": ("truststores/broken/damaged.pem",
                                "holds a PEM certificate that cannot be read"),
    "damaged der": ("truststores/broken/not-der.der", "is not a readable DER certificate"),
    "unknown content": ("broken/unknown.txt",
                        "is not a truststore certificate (PEM, DER or an Edge cert JSON document)"),
    "unreadable json": ("broken/truncated.json", "is not valid JSON, so not an Edge cert document"),
    "json not utf-8": ("broken/not-utf8.json", "is not valid JSON, so not an Edge cert document"),
    "json of another kind": ("broken/other.json",
                             "is JSON but not an Edge cert document (certName and certInfo)"),
    "keystore document": ("broken/keystore-without-certs.json",
                          "is JSON but not an Edge cert document (certName and certInfo)"),
    "cert without issuer": ("broken/cert-without-issuer.json",
                            "is not a valid Edge cert document: missing field 'issuer' in certInfo[0]"),
    "cert document without certificates": (
        "truststores/broken/empty-certinfo.json",
        "is an Edge cert document without any certificate (empty certInfo)"),
}


def test_broken_truststore_folder_has_a_test_per_file() -> None:
    on_disk = {f"truststores/broken/{p.name}" for p in (ROOT / "tests/fixtures/truststores/broken").iterdir()}
    assert on_disk <= {name for name, _ in BROKEN_TRUSTSTORES.values()}


@pytest.mark.parametrize("name,message", BROKEN_TRUSTSTORES.values(), ids=BROKEN_TRUSTSTORES.keys())
def test_broken_truststore_exits_2_naming_the_file_and_defect(name: str, message: str) -> None:
    # Given a good capture and one broken --truststore file
    path = f"tests/fixtures/{name}"
    # When analyzed through the real CLI
    capture = f"{FAILURES}/server-certificate-untrusted-java-openssl-tls12.pcap"
    result = run_analyze(capture, "--truststore", path)
    # Then exit 2 with exactly one line "collect: FILE: DEFECT", nothing on stdout
    assert result.returncode == 2
    assert result.stderr == f"collect: {path}: {message}\n"
    assert result.stdout == ""


def test_truststore_option_is_repeatable_and_judges_the_chain() -> None:
    # Given the untrusted capture and two truststore files (PEM and Edge cert JSON), neither holding CA A
    result = run_analyze(f"{FAILURES}/server-certificate-untrusted-java-openssl-tls12.pcap", "--json",
                         "--truststore", f"{TRUSTSTORES}/caB.pem",
                         "--truststore", f"{TRUSTSTORES}/caB-cert.json")
    # Then both are read and the chain verdict names the missing issuer
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["diagnosis"]["cause"] == "server-certificate-untrusted"
    assert output["diagnosis"]["chain"]["missing_issuer"] == "CN=Lab CA A,OU=caA,O=Lab Org,C=US"
    assert [t["source"] for t in output["truststore"]] == ["caB.pem", "caB-cert.json"]
    assert f"{TRUSTSTORES}/caB.pem" in output["sources"]


def test_truststore_text_view_prints_the_backend_chain() -> None:
    result = run_analyze(f"{FAILURES}/server-certificate-expired-java-openssl-tls12.pcap",
                         "--truststore", f"{TRUSTSTORES}/caA.der")
    assert result.returncode == 0, result.stderr
    for expected in ("Backend chain: expired (decided by truststore)", "out of validity: CN=backend.lab",
                     "Cause: server-certificate-expired"):
        assert expected in result.stdout


NEGOTIATION = {
    "protocol-mismatch": ("protocol-mismatch-java12-openssl13.pcap", "offers TLSv1.2", ["TLSv1.2"]),
    "cipher-mismatch": ("cipher-mismatch-java-openssl-tls13.pcap",
                        "offers TLSv1.3 and 1 cipher suite(s): TLS_AES_128_GCM_SHA256", ["TLSv1.3"]),
    "sni-required": ("sni-required-openssl-nginx-tls12.pcap", "(no SNI: the server_name extension is absent)",
                     ["TLSv1.2"]),
}


@pytest.mark.parametrize("cause", NEGOTIATION, ids=NEGOTIATION)
def test_analyze_shows_the_offer_a_negotiation_cause_rests_on(cause: str) -> None:
    # Given a real capture of a version, suite or server-name refusal
    name, fact, versions = NEGOTIATION[cause]
    path = f"{CAPTURES}/failures/{name}"
    # When analyzed as text and as JSON
    text, as_json = run_analyze(path), run_analyze(path, "--json")
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    # Then both name the cause with the offer (versions, suites, SNI) in the evidence, and the JSON handshake
    # carries the offer itself
    assert f"Cause: {cause}" in text.stdout and fact in text.stdout
    output = json.loads(as_json.stdout)
    assert output["diagnosis"]["cause"] == cause and fact in "\n".join(output["diagnosis"]["evidence"])
    (handshake,) = output["handshakes"]
    assert handshake["client_hello"]["versions"] == versions and handshake["sni"] is None

TRANSPORT = {
    "plaintext port": (f"{CAPTURES}/failures/backend-not-tls-java-nginx.pcap", "backend-not-tls", []),
    "refused": (
        f"{CAPTURES}/failures/connection-refused-java.pcap", "connection-refused", [("refused", [1, 2])]),
    "unanswered": (
        f"{CAPTURES}/transport/unanswered-java.pcap", "connection-refused", [("unanswered", [1, 5])]),
}


@pytest.mark.parametrize("capture,cause,attempts", TRANSPORT.values(), ids=TRANSPORT.keys())
def test_analyze_json_lists_connection_attempts_and_the_non_tls_reply(capture: str, cause: str,
                                                                      attempts: list) -> None:
    # Given a real capture of a transport failure, When analyzed with --json
    result = run_analyze(capture, "--json")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    # Then the cause is named and the facts it rests on are in the object: the attempts (top level, each with
    # its ending and frames) and, for a plaintext reply, the handshake's non_tls_reply
    assert output["diagnosis"]["cause"] == cause
    assert [(a["end"], a["frames"]) for a in output["connection_attempts"]] == attempts
    assert all({"client", "server", "end", "captured_at", "frames", "source"} == a.keys()
               for a in output["connection_attempts"])
    assert output["backend_targets"] == []
    replies = [h["non_tls_reply"] for h in output["handshakes"] if h["non_tls_reply"]]
    assert replies == ([{"from": "server", "tls": False,
                         "first_bytes": replies[0]["first_bytes"]}] if cause == "backend-not-tls" else [])
    assert not replies or replies[0]["first_bytes"].startswith("HTTP/1.1 400 Bad Request\\r\\n")


def test_analyze_text_lists_the_attempts_and_names_the_refusal() -> None:
    # Given the refused attempt, When analyzed as text
    result = run_analyze(f"{CAPTURES}/failures/connection-refused-java.pcap")
    # Then the attempt is listed with its frames, and the cause and its evidence follow
    assert result.returncode == 0, result.stderr
    assert "Connection attempts without data:\n  [   1] 127.0.0.1:" in result.stdout
    assert "  refused (connection-refused-java.pcap, frames 1–2)" in result.stdout
    assert "Cause: connection-refused  (backend 127.0.0.1:" in result.stdout
    assert "answered by RST at frame 2" in result.stdout


# Loaded only when an input needs them: 5-12 % of `collect analyze`'s start each (bench/analyze.py).
NOT_FOR_A_CAPTURE = ("asn1crypto", "cryptography.hazmat.primitives.serialization", "collector.tls.survey",
                     "collector.tls.probe_results")
LOADED = r"""
import sys
from collector.entry import main
sys.argv = ["collect", "analyze", "--json", sys.argv[1]]
try:
    main()
finally:
    print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""


def test_analyze_of_a_capture_leaves_out_what_only_other_inputs_need() -> None:
    # Given a capture with a server chain and a CertificateRequest's CA names (decoded for the verdict)
    capture = f"{CAPTURES}/ca-mismatch-java-tls12.pcap"
    # When `collect analyze` reads it in a fresh interpreter
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", LOADED, capture], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    # Then it judged the capture without importing the modules only PEM files, odd names and probes need
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["diagnosis"]["cause"] == "client-certificate-not-sent"
    loaded = done.stderr.split()
    assert [m for m in loaded if m.startswith(NOT_FOR_A_CAPTURE)] == []

"""Secrets seeded into one lab run (the operator's curl, hence the trace; the MP's system.log; every
management API document) never reach the bundle, the archive or the terminal; the redaction report lists each;
the bundle is private (0600 files, 0700 folders). The same run carries a log with a multi-megabyte line and
binary bytes."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import io
import json
import os
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from collector import layout
from tests.reliability.conftest import (
    FaultLab,
    Run,
    base_args,
    bundle_texts,
    clean_output,
    invoke,
    no_traceback,
    run_collect,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def _pem_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


PEM = _pem_key()
PEM_BODY = [line for line in PEM.splitlines() if not line.startswith("-----")]
SECRETS = {
    "command": {
        "password": "rel-Curl-Pw-71c3",
        "bearer": "rel-curl-bearer-9a4e2f6b8d",
        "cookie": "rel-curl-cookie-5b7d13",
        "basic": base64.b64encode(b"ops:rel-Curl-Pw-71c3").decode(),
    },
    "log": {
        "password": "rel-Log-Pw-2f8e",
        "bearer": "rel-log-bearer-4c6a8e0d2f",
        "basic": base64.b64encode(b"svc:rel-Log-Basic-Pw-6d").decode(),
        "cookie": "rel-log-cookie-8e2a4c",
        "pem": PEM_BODY[0],
        "key-hex": "7f3a9c1e5b2d4f6a8c0e2b4d6f8a1c3e",
    },
    "api": {
        "password": "rel-Api-Pw-93bd",
        "bearer": "rel-api-bearer-0f2d4b6a8c",
        "pem": PEM_BODY[1],
    },
    "proxy-bundle": {
        "password": "rel-Policy-Pw-5e1a",
        "bearer": "rel-policy-bearer-7b3c9d1e5f",
        "pem": PEM_BODY[2],
    },
}
LONG_LINE_BYTES = 3 * 1024 * 1024
# Every byte value but the newline; a NUL once made grep call the whole log binary and print no excerpt line.
BINARY = bytes(b for b in range(256) if b != 0x0A)


def _log_lines() -> bytes:
    s = SECRETS["log"]
    text = (
        "2026-11-27 10:00:00,000 NIOThread@1 INFO CONFIG - keystore login password=" + s["password"] + "\n"
        "2026-11-27 10:00:00,001 NIOThread@1 DEBUG HTTP - request header Authorization: Bearer "
        + s["bearer"] + "\n"
        "2026-11-27 10:00:00,002 NIOThread@1 DEBUG HTTP - outbound Authorization: Basic " + s["basic"] + "\n"
        "2026-11-27 10:00:00,003 NIOThread@1 DEBUG HTTP - request header Cookie: JSESSIONID="
        + s["cookie"] + "\n"
        "2026-11-27 10:00:00,004 NIOThread@1 ERROR SSL - could not load key\n" + PEM +
        "2026-11-27 10:00:00,005 NIOThread@1 DEBUG SSL - ssl.private_key=" + s["key-hex"] + "\n"
    )
    long_line = b"2026-11-27 10:00:00,005 NIOThread@1 WARN BIG - " + b"A" * LONG_LINE_BYTES + b"\n"
    binary = b"2026-11-27 10:00:00,006 NIOThread@1 WARN BIN - " + BINARY + b"\n"
    return text.encode() + long_line + binary


def _proxy_bundle_with_secrets(valid: bytes) -> bytes:
    """The proxy's own bundle plus an AssignMessage policy with credentials and a private key resource."""
    b = SECRETS["proxy-bundle"]
    policy = (
        '<AssignMessage name="AddAuth">\n  <Set>\n    <Headers>\n'
        f'      <Header name="Authorization">Bearer {b["bearer"]}</Header>\n'
        f'    </Headers>\n  </Set>\n  <Password>{b["password"]}</Password>\n</AssignMessage>\n'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(valid)) as src, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("apiproxy/policies/AddAuth.xml", policy)
        dst.writestr("apiproxy/resources/properties/client.properties", f"client.key={PEM!r}\n")
        dst.writestr("apiproxy/resources/java/client.key", PEM)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def secret_run(fault_lab: FaultLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    lab = fault_lab.lab
    mp1_log = Path(lab.message_processors[0].log_path)
    size = mp1_log.stat().st_size
    with mp1_log.open("ab") as log:
        log.write(_log_lines())
    api = SECRETS["api"]
    original = lab.emulator.config
    lab.emulator.config = dataclasses.replace(original, extra_fields={
        "description": (f"rotated by ops, old password={api['password']}, "
                        f"Authorization: Bearer {api['bearer']}"),
        "privateKey": PEM,
    }, proxy_bundle=_proxy_bundle_with_secrets(lab.emulator._bundle_zip()))
    c = SECRETS["command"]
    curl = (f"curl -sS -u ops:{c['password']} -H 'Authorization: Bearer {c['bearer']}' "
            f"-b 'JSESSIONID={c['cookie']}' {lab.reproduction_url}")
    try:
        run = run_collect(lab, tmp_path_factory.mktemp("secret-run") / "out",
                          *base_args(lab), "--reproduce", curl, "--keep-directory")
    finally:
        lab.emulator.config = original
        # The lab is shared: give mp1 its log back (the simulator opens it in append mode for every line).
        os.truncate(mp1_log, size)
    no_traceback(run)
    assert run.returncode == 0, run.terminal
    yield run


def _nowhere(run: Run, secrets: dict[str, str]) -> None:
    texts = bundle_texts(run.bundle)
    raw = run.bundle.read_bytes()
    tar = gzip.decompress(raw)
    kept = [p for p in run.out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for kind, secret in secrets.items():
        needle = secret.encode()
        assert needle not in raw and needle not in tar, kind
        assert [name for name, data in texts.items() if needle in data] == [], kind
        assert secret not in run.terminal, kind
        for directory in kept:
            for path in directory.rglob("*"):
                assert not path.is_file() or needle not in path.read_bytes(), (kind, path)


def _rules_for(run: Run, prefix: str) -> set[str]:
    records = run.manifest()["redactions"]["records"]
    return {r["rule"] for r in records if r["file"].startswith(prefix)}


def test_s01_reproduction_command_secrets(secret_run: Run) -> None:
    _nowhere(secret_run, SECRETS["command"])
    command = secret_run.read(layout.REQUEST_COMMAND).decode()
    assert "curl" in command and "-u" in command and "-b" in command
    assert {"authorization", "curl-user", "cookie"} <= _rules_for(secret_run, layout.REQUEST_COMMAND)


def test_s02_trace_secrets(secret_run: Run) -> None:
    _nowhere(secret_run, SECRETS["command"])
    traces = [name for name in secret_run.members() if name.startswith(layout.TRACE_DIR + "/")
              and name != layout.TRACE_SESSION]
    assert traces
    headers = json.dumps(json.loads(secret_run.read(traces[0])))
    assert '"Authorization"' in headers and '"Cookie"' in headers
    rules = set().union(*(_rules_for(secret_run, t) for t in traces))
    assert rules, "the trace's Authorization and Cookie headers are not in the redaction report"


def test_s03_log_secrets(secret_run: Run) -> None:
    _nowhere(secret_run, SECRETS["log"])
    rules = _rules_for(secret_run, layout.host_file("mp1", layout.HOST_LOG))
    assert {"secret-parameter", "authorization", "cookie", "private-key"} <= rules, rules


def test_s04_api_document_secrets(secret_run: Run) -> None:
    _nowhere(secret_run, SECRETS["api"])
    rules = _rules_for(secret_run, layout.EDGE_DIR + "/")
    assert {"secret-parameter", "authorization", "private-key"} <= rules, rules
    deployments = json.loads(secret_run.read(layout.EDGE_DEPLOYMENTS))  # still JSON after redaction
    assert "description" in deployments


def test_s06_proxy_bundle_secrets(secret_run: Run) -> None:
    _nowhere(secret_run, SECRETS["proxy-bundle"])
    with zipfile.ZipFile(io.BytesIO(secret_run.read(layout.EDGE_PROXY_BUNDLE))) as archive:
        names = archive.namelist()
        policy = archive.read("apiproxy/policies/AddAuth.xml").decode()
    assert "apiproxy/targets/default.xml" in names  # still a usable bundle
    assert "apiproxy/resources/java/client.key" not in names  # a key file never enters the bundle
    assert 'name="Authorization"' in policy and "<Password>" in policy
    rules = _rules_for(secret_run, layout.EDGE_PROXY_BUNDLE)
    assert {"private-key-file"} <= rules and rules - {"private-key-file"}, rules


def test_s05_bundle_files_0600_and_folders_0700(secret_run: Run) -> None:
    assert secret_run.bundle.stat().st_mode & 0o777 == 0o600
    with tarfile.open(secret_run.bundle) as tar:
        for member in tar.getmembers():
            expected = 0o700 if member.isdir() else 0o600
            assert member.mode & 0o777 == expected, (member.name, oct(member.mode))
            assert member.isdir() or member.isfile(), member.name  # no links, devices or fifos
    kept = [p for p in secret_run.out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert kept
    for directory in kept:
        for path in [directory, *directory.rglob("*")]:
            expected = 0o700 if path.is_dir() else 0o600
            assert path.stat().st_mode & 0o777 == expected, (path, oct(path.stat().st_mode))


def test_h09_log_with_multi_megabyte_line_and_binary_bytes(secret_run: Run) -> None:
    log = gzip.decompress(secret_run.read(layout.host_file("mp1", layout.HOST_LOG)))
    assert b"A" * LONG_LINE_BYTES in log  # the long line is kept whole
    assert BINARY in log  # and the binary bytes as they were
    assert secret_run.step("mp1", "logs")["status"] == "ok"
    excerpt = secret_run.read(layout.host_file("mp1", layout.HOST_LOG_EXCERPT))
    assert b"messageid:" in excerpt, excerpt[:500]


@pytest.mark.parametrize("token", [
    pytest.param("rel-Token-Crlf-1a2b\r\nX-Injected: 1", id="S07-line-break"),
    pytest.param("rel-Token-Nonascii-3c4d-tökén", id="S07-non-ascii"),
    pytest.param("rel-Token Blank-5e6f", id="S07-blank"),
])
@pytest.mark.parametrize("mode", ["--dry-run", "run"])
def test_s07_unusable_token_is_refused_without_echoing_it(tmp_path: Path, token: str, mode: str) -> None:
    # A token pasted with a line break (or non-ASCII) cannot travel in a header; the HTTP library's own error
    # would quote the whole Authorization header.
    out = tmp_path / "out"
    argv = ["--org", "o", "--env", "e", "--proxy", "p", "--mgmt-url", "http://127.0.0.1:9", "--token", token,
            "--capture-seconds", "1", "--out", str(out)] + (["--dry-run"] if mode == "--dry-run" else [])
    code, output = invoke(argv)
    clean_output(output)
    assert code == 2, output
    assert "Bearer token" in output and output.count("\n") <= 2, output
    assert token.split("-")[2] not in output  # no part of the token
    assert not out.exists() or list(out.iterdir()) == []

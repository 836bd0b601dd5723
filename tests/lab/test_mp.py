"""The MP simulator against every backend: the 503 fault, the playbook's system.log lines, transactions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.lab.backends import Backend
from tests.lab.mp import MessageProcessor, start_mp
from tests.lab.pki import LabPki

FAULT = {"fault": {"faultstring": "The Service is temporarily unavailable",
                   "detail": {"errorcode": "messaging.adaptors.http.flow.ServiceUnavailable"}}}
HANDSHAKE_FAILED = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} org:lab-org env:test api:mtls-proxy rev:3 messageid:(?P<id>\S+) "
    r"NIOThread@0 ERROR HTTP\.CLIENT - HTTPClient\$Context\.handshakeFailed\(\) : "
    r"SSLClientChannel\[C:127\.0\.0\.11:\d+ Remote host:127\.0\.0\.21:\d+\]@\d+ useCount=1 bytesRead=0 "
    r"bytesWritten=0 age=\d+ms lastIO=\d+ms handshake failed, message: (?P<message>.+)$"
)
SSL_INFO = re.compile(r"messageid:(?P<id>\S+) NIOThread@0 ERROR HTTP\.CLIENT - "
                      r"HTTPClient\$Context\.handshakeFailed\(\) : SSLInfo: "
                      r"KeyStore:java\.security\.KeyStore@[0-9a-f]+ KeyAlias:myKey "
                      r"TrustStore:java\.security\.KeyStore@[0-9a-f]+$")
FAILURES = ("missing-client-certificate", "ca-mismatch")

# (backend, tls, scenario, what the MP logs as the failure: an alert message, or the backend's HTTP status)
CASES = [
    ("java", "1.2", "missing-client-certificate", "Received fatal alert: bad_certificate"),
    ("java", "1.2", "ca-mismatch", "Received fatal alert: bad_certificate"),
    ("java", "1.2", "healthy", None),
    ("java", "1.3", "missing-client-certificate", "Received fatal alert: bad_certificate"),
    ("java", "1.3", "ca-mismatch", "Received fatal alert: bad_certificate"),
    ("java", "1.3", "healthy", None),
    ("openssl", "1.2", "missing-client-certificate", "Received fatal alert: handshake_failure"),
    ("openssl", "1.2", "healthy", None),
    ("openssl", "1.3", "ca-mismatch", "Received fatal alert: certificate_required"),
    ("openssl", "1.3", "healthy", None),
    ("nginx", "1.2", "ca-mismatch", "HTTP 400"),
    ("nginx", "1.2", "healthy", None),
    ("nginx", "1.3", "missing-client-certificate", "HTTP 400"),
]


@pytest.fixture
def mp_factory(tmp_path: Path, lab_pki: LabPki) -> Iterator[Callable[[Backend, str], MessageProcessor]]:
    started: list[MessageProcessor] = []

    def start(backend: Backend, scenario: str) -> MessageProcessor:
        mp = start_mp("mp1", "127.0.0.11", lab_pki, scenario, backend, "lab-org", "test", "mtls-proxy", "3",
                      tmp_path / "root" / "system.log", tmp_path / "transactions.jsonl", workdir=tmp_path)
        started.append(mp)
        return mp

    yield start
    for mp in started:
        mp.stop()


@pytest.mark.lab
@pytest.mark.parametrize(("kind", "tls", "scenario", "failure"), CASES)
def test_mp_reproduces_the_playbook_symptoms(
    backend_factory: Callable[[str, str], Backend], mp_factory: Callable[[Backend, str], MessageProcessor],
    kind: str, tls: str, scenario: str, failure: str | None,
) -> None:
    # Given an MP simulator whose keystore fits the scenario, calling a running backend
    mp = mp_factory(backend_factory(kind, tls), scenario)
    # When the client calls the proxy twice
    responses = [httpx.get(f"{mp.url}/mtls/ping?n={n}", headers={"X-Test": "yes"}, timeout=30)
                 for n in range(2)]
    # Then each answer carries its own message id, and a failure is the playbook's 503 fault
    ids = [r.headers["X-Apigee.Message-ID"] for r in responses]
    assert len(set(ids)) == 2 and all(i.startswith("rrt-") for i in ids)
    for response in responses:
        if failure is None:
            assert response.status_code == 200 and "ok" in response.text.lower()
        else:
            assert response.status_code == 503
            assert response.json() == FAULT
    log = mp.log_path.read_text().splitlines()
    failed = {m["id"]: m["message"] for line in log if (m := HANDSHAKE_FAILED.match(line))}
    ssl_info = {m["id"] for line in log if (m := SSL_INFO.search(line))}
    if failure is None:
        assert failed == {} and ssl_info == set()
    elif failure.startswith("HTTP"):
        # nginx completes the handshake and answers 400; the MP logs the backend status and answers 503.
        assert failed == {}
        for message_id in ids:
            expected = "answered HTTP 400 (400 No required SSL certificate was sent)"
            assert any(message_id in line and expected in line for line in log)
    else:
        assert failed == {i: failure for i in ids}
        assert ssl_info == set(ids)
        assert any(line.startswith(("javax.net.ssl.SSLHandshakeException: ", "javax.net.ssl.SSLException: "))
                   for line in log)
    # And other traffic's lines are interleaved, so grepping by message id is meaningful
    assert sum("api:healthcheck" in line for line in log) >= 4
    # And one transaction per request
    records = [json.loads(line) for line in mp.transactions_path.read_text().splitlines()]
    assert [r["message_id"] for r in records] == ids
    first = records[0]
    assert set(first) == {"time", "message_id", "org", "env", "api", "rev", "mp", "method", "path",
                          "request_headers", "status", "error_cause", "response_body", "backend"}
    assert (first["org"], first["env"], first["api"], first["rev"], first["mp"]) == (
        "lab-org", "test", "mtls-proxy", "3", "127.0.0.11")
    request = (first["method"], first["path"], first["request_headers"]["X-test"])
    assert request == ("GET", "/mtls/ping?n=0", "yes")
    assert first["status"] == responses[0].status_code
    assert first["backend"] == f"127.0.0.21:{backend_factory(kind, tls).port}"
    if failure is None:
        assert first["error_cause"] is None
    elif failure.startswith("HTTP"):
        assert first["error_cause"] == "Backend answered HTTP 400"
        assert json.loads(first["response_body"]) == FAULT
    else:
        assert first["error_cause"] == failure

"""The run's own logic without the lab: exit codes, the JSON outcome, redaction of the reproduction, the
reproduction itself against a real local HTTP server, the probe decision and the fail-forward recorder."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.edge.resolve import Backend, Resolution
from collector.edge.resolve.model import TargetTls
from collector.errors import (
    EXIT_COMPLETE,
    EXIT_FAILED,
    EXIT_PARTIAL,
    BundleError,
    CaptureFormatError,
    CollectorError,
    EdgeAuthError,
    EdgeError,
    EdgeNotFoundError,
    InputError,
    ProbeError,
    RemoteError,
    UsageError,
)
from collector.inventory import Inventory
from collector.progress import RecordingObserver
from collector.remote.connection import HostError
from collector.run.analysis import probe_reasons
from collector.run.context import RunContext
from collector.run.outcome import build_outcome, decide_exit_code
from collector.run.raw_collection import read_raw_collection
from collector.run.reproduce import get_url, redact_argv, redact_headers, redact_url, run_curl
from collector.run.stages import _collect_peers, offer_for, run_inputs
from collector.settings import RunSettings
from collector.steps import Step, StepResult, StepStatus
from collector.tls.handshake import AttemptEnd, ConnectionAttempt, Handshake, Outcome
from collector.tls.jsse_defaults import JSSE_DEFAULT_CIPHER_SUITES, JSSE_DEFAULT_PROTOCOLS, JSSE_DEFAULTS_NAME

OK = StepResult("mp1", "connect", StepStatus.OK)
FAILED = StepResult("mp2", "connect", StepStatus.FAILED, "unreachable", "mp2 -> connect: refused")
SKIPPED = StepResult("edge", "trace", StepStatus.SKIPPED, "disabled", "--no-trace")


@pytest.mark.parametrize(
    "bundle, steps, interrupted, expected",
    [
        (Path("b.tar.gz"), (OK, SKIPPED), False, EXIT_COMPLETE),
        (Path("b.tar.gz"), (OK, FAILED), False, EXIT_PARTIAL),
        (Path("b.tar.gz"), (OK,), True, EXIT_PARTIAL),
        (None, (OK,), False, EXIT_FAILED),
        (None, (), True, 130),
    ],
    ids=["complete", "partial", "interrupted-with-bundle", "no-bundle", "interrupted-no-bundle"],
)
def test_exit_code(bundle: Path | None, steps: tuple, interrupted: bool, expected: int) -> None:
    # Given how the run ended, When the exit code is decided, Then DESIGN's codes apply.
    assert decide_exit_code(bundle, steps, interrupted) == expected


def test_outcome_json_lists_steps_and_bundle() -> None:
    # Given a partial run, When serialised, Then the JSON names the bundle, the exit code and every step.
    outcome = build_outcome(Path("/x/b.tar.gz"), None, [OK, FAILED])
    assert outcome.exit_code == EXIT_PARTIAL and outcome.failed_steps == (FAILED,)
    assert outcome.json["bundle"] == "/x/b.tar.gz" and outcome.json["complete"] is False
    assert [s["status"] for s in outcome.json["steps"]] == ["ok", "failed"]


@pytest.mark.parametrize(
    "argv, secret, kept",
    [
        (["curl", "-u", "ops:pw-SECRET", "https://h/p"], "pw-SECRET", "ops:***"),
        (["curl", "-uops:pw-SECRET", "https://h/p"], "pw-SECRET", "-uops:***"),
        (["curl", "--user=ops:pw-SECRET", "https://h/p"], "pw-SECRET", "--user=ops:***"),
        (["curl", "-H", "Authorization: Bearer tok-SECRET", "https://h/p"], "tok-SECRET",
         "Authorization: ***"),
        (["curl", "-H", "x-api-key: key-SECRET", "https://h/p"], "key-SECRET", "x-api-key: ***"),
        (["curl", "--oauth2-bearer", "tok-SECRET", "https://h/p"], "tok-SECRET", "***"),
        (["curl", "-b", "session=c-SECRET; theme=c2-SECRET", "https://h/p"], "SECRET",
         "session=***; theme=***"),
        (["curl", "--cookie=session=c-SECRET", "https://h/p"], "c-SECRET", "--cookie=session=***"),
        (["curl", "-d", "user=a&password=p-SECRET", "https://h/p"], "p-SECRET", "password=***"),
        (["curl", "https://u:p-SECRET@h/p?apikey=k-SECRET&x=1"], "SECRET", "apikey=***&x=1"),
        (["curl", "-E", "client.pem:pass-SECRET", "https://h/p"], "pass-SECRET", "client.pem:***"),
    ],
)
def test_redact_argv(argv: list[str], secret: str, kept: str) -> None:
    # Given a curl command with a credential, When redacted, Then the secret is gone and the shape stays.
    text = " ".join(redact_argv(argv))
    assert secret not in text and kept in text


def test_redact_url_and_headers() -> None:
    # Given a URL with userinfo and a header block with cookies, When redacted, Then neither secret remains.
    assert redact_url("https://a:b@h/p?token=t&q=1") == "https://***@h/p?token=***&q=1"
    assert redact_headers("Set-Cookie: s=1\nContent-Type: x") == "Set-Cookie: ***\nContent-Type: x"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"fault":{"faultstring":"The Service is temporarily unavailable"}}'
        self.send_response(503)
        self.send_header("X-Apigee.Message-ID", "rrt-test-1")
        self.send_header("Set-Cookie", "s=cookie-SECRET")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/mtls/ping"
    server.shutdown()
    server.server_close()


def test_run_curl_keeps_status_and_message_id(server_url: str) -> None:
    # Given the operator's curl without -i, When it runs (no shell), Then the status, header and body
    # are kept.
    result = run_curl(("curl", "-sS", "-H", "Authorization: Basic c2VjcmV0", server_url), timeout=20)
    assert result.error is None and result.status == 503
    assert result.message_ids == ("rrt-test-1",)
    assert "temporarily unavailable" in result.response
    assert "c2VjcmV0" not in result.command and "cookie-SECRET" not in result.response


def test_run_curl_failure_is_reported(server_url: str) -> None:
    # Given a curl that cannot connect, When it runs, Then the error says so (the step fails, the run
    # goes on).
    result = run_curl(("curl", "-sS", "http://127.0.0.1:1/"), timeout=10)
    assert result.error is not None and "curl exited" in result.error


def test_get_url(server_url: str) -> None:
    # Given --url, When fetched, Then the response is recorded with its message id.
    result = get_url(server_url, timeout=10)
    assert result.status == 503 and result.message_ids == ("rrt-test-1",)
    assert result.response.startswith("HTTP/1.1 503")


def _ctx(tmp_path: Path, **settings: object) -> RunContext:
    base = RunSettings(org="o", env="e", proxy="p", **settings)  # type: ignore[arg-type]
    return RunContext(base, RecordingObserver(), tmp_path, "run-1")


class _Evidence:
    def __init__(self, *handshakes: Handshake, attempts: tuple[ConnectionAttempt, ...] = ()) -> None:
        self.handshakes = handshakes
        self.connection_attempts = attempts


REFUSED = ConnectionAttempt("1.1.1.1:1", "2.2.2.2:443", AttemptEnd.REFUSED)
UNANSWERED = ConnectionAttempt("1.1.1.1:2", "2.2.2.2:443", AttemptEnd.UNANSWERED)


TLS12 = Handshake("1.1.1.1:1", "2.2.2.2:443", version="TLSv1.2", outcome=Outcome.FAILED)
TLS13 = Handshake("1.1.1.1:1", "2.2.2.2:443", version="TLSv1.3", outcome=Outcome.OPAQUE)


@pytest.mark.parametrize(
    "probe, captured, evidence, wanted",
    [
        (None, ["mp1"], _Evidence(TLS12), None),
        (None, ["mp1"], _Evidence(TLS13), "TLS 1.3"),
        (None, [], _Evidence(), "no capture"),
        (None, ["mp1"], _Evidence(), "no TLS handshake"),
        (True, ["mp1"], _Evidence(TLS12), "--probe"),
        (False, [], _Evidence(TLS13), None),
        (None, ["mp1"], _Evidence(attempts=(REFUSED,)), None),
        (None, ["mp1"], _Evidence(attempts=(REFUSED, UNANSWERED)), "no TLS handshake"),
    ],
    ids=["tls12-no-probe", "tls13", "no-capture", "empty-capture", "forced", "forbidden", "refused",
         "refused-and-unanswered"],
)
def test_probe_decision(tmp_path: Path, probe: bool | None, captured: list, evidence: _Evidence,
                        wanted: str | None) -> None:
    # Given what the captures show and --probe/--no-probe, When deciding, Then probe exactly when needed.
    ctx = _ctx(tmp_path, probe=probe)
    ctx.captured = captured
    reason = probe_reasons(ctx, evidence)
    assert (reason is None) if wanted is None else (wanted in (reason or ""))


def test_attempt_records_failures_and_goes_on(tmp_path: Path) -> None:
    # Given steps that fail with our error and with a bug, When attempted, Then both are recorded as failed.
    ctx = _ctx(tmp_path)

    def remote() -> None:
        raise RemoteError("mp1", "logs", "permission denied")

    def bug() -> None:
        raise ZeroDivisionError("boom")

    assert ctx.attempt("mp1", "logs", remote) is None
    assert ctx.attempt("local", "analyze", bug) is None
    assert ctx.attempt("local", "ok", lambda: 42) == 42
    assert [(s.step, s.status, s.reason) for s in ctx.steps] == [
        ("logs", StepStatus.FAILED, "remote-error"),
        ("analyze", StepStatus.FAILED, "internal-error"),
        ("ok", StepStatus.OK, None),
    ]
    assert "ZeroDivisionError" in ctx.steps[1].message
    assert ("step", ("mp1", "logs", "failed")) in ctx.observer.events  # type: ignore[attr-defined]


def test_attempt_quiet_records_only_failures(tmp_path: Path) -> None:
    # Given many small internal steps, When attempted quietly, Then successes leave no trace and failures do.
    ctx = _ctx(tmp_path)
    assert ctx.attempt_quiet("edge", "bundle a.json", lambda: "fine") == "fine"

    def broken() -> None:
        raise OSError("disk full")

    assert ctx.attempt_quiet("edge", "bundle b.json", broken) is None
    assert [(s.step, s.status) for s in ctx.steps] == [("bundle b.json", StepStatus.FAILED)]
    assert ctx.observer.events == [("step", ("edge", "bundle b.json", "failed"))]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "error, reason",
    [
        (UsageError("bad flag"), "usage"),
        (InputError("f.pcap", "unreadable"), "bad-input"),
        (CaptureFormatError("f.pcap", "not a capture"), "bad-capture"),
        (EdgeError("org", "https://h/v1", "500"), "edge-error"),
        (EdgeAuthError("org", "https://h/v1", "401"), "credentials-refused"),
        (EdgeNotFoundError("proxy", "https://h/v1", "404"), "not-found"),
        (RemoteError("mp1", "logs", "permission denied"), "remote-error"),
        (HostError("mp1", "start-capture", "sudo-denied", "sudo refused"), "sudo-denied"),
        (BundleError("disk full"), "bundle-error"),
        (ProbeError("b:443", "refused"), "probe-failed"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v,
)
def test_each_error_records_its_own_reason(tmp_path: Path, error: CollectorError, reason: str) -> None:
    # Given a step failing with one of our errors, When recorded, Then the reason is the error class's own
    # (a remote HostError's is per instance), never looked up by class name.
    ctx = _ctx(tmp_path)

    def fail() -> None:
        raise error

    ctx.attempt("h", Step.LOGS, fail)
    assert (ctx.steps[0].reason, ctx.steps[0].message) == (reason, str(error))


def test_step_names_stay_the_manifest_strings() -> None:
    # Given a step recorded with the Step enum, Then manifest.json, messages and string comparisons see
    # its value.
    result = StepResult("mp1", Step.FETCH_CAPTURE, StepStatus.OK)
    step = result.to_json()["step"]
    assert step == "fetch-capture" and json.dumps(step) == '"fetch-capture"'
    assert f"mp1 -> {Step.FETCH_CAPTURE}" == "mp1 -> fetch-capture" and result.step == "fetch-capture"


@pytest.mark.parametrize(
    "resolved, given, expected",
    [
        (Backend("10.0.1.5", 8443, ("10.0.1.5",), sni="api.backend.example"), None,
         Backend("10.0.1.5", 8443, sni="api.backend.example")),
        (Backend("127.0.0.1", None, ("127.0.0.1",)), None, Backend("127.0.0.1", 443, sni=None)),
        (None, Backend("backend.example", 9443), Backend("backend.example", 9443, sni="backend.example")),
    ],
    ids=["resolution-sni-reaches-the-probe", "ip-without-sni-default-port", "given-backend-named"],
)
def test_backend_sni_reaches_the_probe_targets(tmp_path: Path, resolved: Backend | None,
                                               given: Backend | None, expected: Backend) -> None:
    # Given the backend the resolution (or --backend) names, When the run collects its peers, Then the probe
    # target carries that backend's SNI (it was read as `getattr(backend, "sni", None)`: always None).
    ctx = _ctx(tmp_path, no_api=True, backends=(given,) if given else ())
    if resolved is not None:
        ctx.resolution = Resolution("o", "e", "p", ("1",), (), (), (resolved,), ())
    _collect_peers(ctx)
    assert ctx.backend_targets == [expected] and ctx.backend_targets[0].sni == expected.sni


def test_a_raw_collection_becomes_the_runs_inventory(tmp_path: Path) -> None:
    # Given a raw collection with an MP and a backend folder, When read, Then the run gets an Inventory
    # of them (a RawCollection was passed as the inventory), so the capture filters and the checklist see
    # their roles.
    for name, role, address in (("mp1", "message-processor", "10.0.0.11"), ("be1", "backend", "10.0.1.5")):
        folder = tmp_path / "hosts" / name
        folder.mkdir(parents=True)
        (folder / "facts.json").write_text(json.dumps({"role": role, "address": address}))
    inventory = read_raw_collection(tmp_path).inventory()
    assert isinstance(inventory, Inventory)
    assert [(h.name, h.address) for h in inventory.message_processors] == [("mp1", "10.0.0.11")]
    assert [(h.name, h.address) for h in inventory.backends] == [("be1", "10.0.1.5")]


def test_the_bundles_analysis_lists_connection_attempts(tmp_path: Path) -> None:
    # Given the evidence of a real capture where the backend refused the connection
    from collector import layout
    from collector.bundle.package import BundleWriter
    from collector.diagnosis.inputs import load_evidence
    from collector.run.analysis import write_analysis

    capture = Path(__file__).parent / "fixtures" / "captures" / "failures" / "connection-refused-java.pcap"
    base = RunSettings(org="o", env="e", proxy="p")
    writer = BundleWriter(tmp_path / "out", "apigee-diag-o-e-p-20260101T000000Z")
    ctx = RunContext(base, RecordingObserver(), tmp_path / "raw", "run-1", writer=writer)
    # When the run writes its analysis
    diagnosis = write_analysis(ctx, load_evidence([capture]))
    # Then analysis/handshakes.json lists the refused attempt beside the (no) handshakes
    written = json.loads(writer.path(layout.ANALYSIS_HANDSHAKES).read_text())
    writer.abort()
    assert diagnosis.cause.value == "connection-refused"
    assert written["handshakes"] == []
    assert [(a["end"], a["frames"]) for a in written["connection_attempts"]] == [("refused", [1, 2])]


def _target(protocols: tuple[str, ...], ciphers: tuple[str, ...]) -> TargetTls:
    return TargetTls("default", "https://backend.example:8443", "backend.example", 8443, None, True, False,
                     None, None, None, "ts", None, protocols=protocols, ciphers=ciphers)


@pytest.mark.parametrize(
    "protocols, ciphers, offered, suites, source",
    [
        (("TLSv1.2",), ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",), ("TLSv1.2",),
         ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",), "SSLInfo of target default"),
        ((), (), JSSE_DEFAULT_PROTOCOLS, JSSE_DEFAULT_CIPHER_SUITES, JSSE_DEFAULTS_NAME),
        (("SSLv9",), (), JSSE_DEFAULT_PROTOCOLS, JSSE_DEFAULT_CIPHER_SUITES, JSSE_DEFAULTS_NAME),
    ],
    ids=["configured", "jsse-defaults", "unreadable-protocols"],
)
def test_the_probe_offers_what_the_targets_sslinfo_offers(tmp_path: Path, protocols: tuple[str, ...],
                                                          ciphers: tuple[str, ...], offered: tuple[str, ...],
                                                          suites: tuple[str, ...], source: str) -> None:
    # Given the resolved target's SSLInfo <Protocols>/<Ciphers>, When the run builds the probe's offer for its
    # backend, Then it offers those (JSSE's defaults for what is unset or unreadable), and the plan does too.
    ctx = _ctx(tmp_path, no_api=True)
    ctx.resolution = Resolution("o", "e", "p", ("1",), (), (_target(protocols, ciphers),),
                                (Backend("backend.example", 8443),), ())
    _collect_peers(ctx)
    offer = offer_for(ctx, ctx.backend_targets[0])
    assert (offer.protocols, offer.ciphers, offer.ciphers_source) == (offered, suites, source)
    assert run_inputs(ctx, []).probe_offers == (offer,)

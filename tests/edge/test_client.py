"""The management API client against the emulator: auth, retries, timeouts and every error path."""

from __future__ import annotations

import socket
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from collector import layout
from collector.edge.client import (
    BasicAuth,
    BearerAuth,
    EdgeClient,
    NoAuth,
    auth_from_netrc,
    is_public_cloud,
    lookup_addresses,
    normalize_base_url,
    token_from_command,
)
from collector.edge.documents import DirectorySink, DocumentSink
from collector.errors import EdgeAuthError, EdgeError, EdgeNotFoundError, InputError, UsageError
from tests.edge.conftest import ENV, ORG, PASSWORD, PROXY, TOKEN, USERNAME
from tests.lab.emulator import Emulator, EmulatorConfig, start_emulator

ORG_PATH = f"/organizations/{ORG}"
ENV_PATH = f"{ORG_PATH}/environments/{ENV}"


def _client(
    emulator: Emulator, auth: object = BasicAuth(USERNAME, PASSWORD), **options: object
) -> EdgeClient:
    settings = {"timeout": 5.0, "retries": 2, "backoff": 0.001, **options}
    return EdgeClient(emulator.url, auth, **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "auth, who",
    [(BasicAuth(USERNAME, PASSWORD), f"basic:{USERNAME}"), (BearerAuth(TOKEN), "bearer")],
    ids=["basic", "bearer"],
)
def test_accepted_credentials_fetch_documents(emulator: Emulator, auth: object, who: str) -> None:
    with _client(emulator, auth) as client:
        organization = client.get_json(ORG_PATH, what=f"organization {ORG!r}")
    assert organization["name"] == ORG
    assert emulator.authorizations[-1] == who


@pytest.mark.parametrize(
    "auth, status",
    [
        (BasicAuth(USERNAME, "wrong-pass"), "HTTP 401"),
        (BearerAuth("expired-token"), "HTTP 401"),
        (NoAuth(), "HTTP 401"),
        (BasicAuth("viewer@example.com", PASSWORD), "HTTP 403"),
    ],
    ids=["wrong-password", "wrong-token", "none", "forbidden"],
)
def test_refused_credentials_raise_auth_error_without_the_secret(
    emulator: Emulator, auth: object, status: str
) -> None:
    with _client(emulator, auth) as client, pytest.raises(EdgeAuthError) as caught:
        client.get_json(ORG_PATH, what=f"organization {ORG!r}")
    message = str(caught.value)
    assert status in message and f"organization {ORG!r}" in message and emulator.url in message
    assert "wrong-pass" not in message and "expired-token" not in message and PASSWORD not in message
    assert caught.value.exit_code == 2
    if status == "HTTP 401":
        assert "MFA" in message and "token" in message
    assert len(emulator.requests) == 1  # 4xx is never retried


def test_secrets_never_appear_in_repr() -> None:
    assert PASSWORD not in repr(BasicAuth(USERNAME, PASSWORD)) and TOKEN not in repr(BearerAuth(TOKEN))


@pytest.mark.parametrize(
    "path, what, code",
    [
        ("/organizations/nope", "organization 'nope'", "OrganizationDoesNotExist"),
        (f"{ORG_PATH}/environments/nope", "environment 'nope'", "EnvironmentDoesNotExist"),
        (f"{ORG_PATH}/apis/nope", "API proxy 'nope'", "ApplicationDoesNotExist"),
        (f"{ORG_PATH}/apis/{PROXY}/revisions/99", "revision 99", "ApplicationRevisionDoesNotExist"),
        (f"{ENV_PATH}/keystores/nope", "keystore 'nope'", "keystore_doesnot_exist"),
        (f"{ENV_PATH}/keystores/mp-keystore/aliases/nope", "alias 'nope'", "alias_doesnot_exist"),
        (f"{ENV_PATH}/references/nope", "reference 'nope'", "reference_doesnot_exist"),
        (f"{ENV_PATH}/targetservers/nope", "target server 'nope'", "TargetServerDoesNotExist"),
    ],
)
def test_missing_objects_raise_not_found_naming_them(
    emulator: Emulator, path: str, what: str, code: str
) -> None:
    with _client(emulator) as client, pytest.raises(EdgeNotFoundError) as caught:
        client.get_json(path, what=what)
    assert caught.value.what == what and what in str(caught.value) and code in str(caught.value)
    assert caught.value.url.endswith(path)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_are_retried_until_success(emulator: Emulator, status: int) -> None:
    emulator.fail(f"/v1{ORG_PATH}", status, times=2)
    with _client(emulator, retries=2) as client:
        assert client.get_json(ORG_PATH, what="organization")["name"] == ORG
    assert len(emulator.requests) == 3


def test_server_error_forever_is_a_clear_failure(emulator: Emulator) -> None:
    emulator.fail(f"/v1{ORG_PATH}", 500, times=None)
    with _client(emulator, retries=2) as client, pytest.raises(EdgeError) as caught:
        client.get_json(ORG_PATH, what="organization 'lab-org'")
    assert type(caught.value) is EdgeError and caught.value.exit_code == 1
    assert "HTTP 500 after 3 attempts" in str(caught.value) and "retry later" in str(caught.value)
    assert len(emulator.requests) == 3


def test_client_errors_are_not_retried(emulator: Emulator) -> None:
    emulator.fail(f"/v1{ORG_PATH}", 400, times=None)
    with _client(emulator) as client, pytest.raises(EdgeError, match="HTTP 400"):
        client.get_json(ORG_PATH, what="organization")
    assert len(emulator.requests) == 1


def test_connection_reset_is_retried(emulator: Emulator) -> None:
    emulator.reset(f"/v1{ORG_PATH}", times=1)
    with _client(emulator) as client:
        assert client.get_json(ORG_PATH, what="organization")["name"] == ORG
    assert len(emulator.requests) == 2


def test_slow_server_times_out_clearly(emulator: Emulator) -> None:
    emulator.delay(f"/v1{ORG_PATH}", 1.0)
    with _client(emulator, timeout=0.1, retries=1) as client, pytest.raises(EdgeError) as caught:
        client.get_json(ORG_PATH, what="organization")
    assert "no answer within 0.1 s (after 2 attempts)" in str(caught.value)
    assert "reachable" in caught.value.hint


def test_unreachable_server_is_a_clear_failure() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = EdgeClient(f"http://127.0.0.1:{port}", NoAuth(), timeout=1, retries=1, backoff=0.001)
    with client, pytest.raises(EdgeError, match="cannot connect"):
        client.get_json(ORG_PATH, what="organization")


def test_invalid_json_is_a_clear_failure(emulator: Emulator) -> None:
    emulator.invalid_json(f"/v1{ORG_PATH}")
    with _client(emulator) as client, pytest.raises(EdgeError) as caught:
        client.get_json(ORG_PATH, what="organization")
    assert "not JSON (text/html)" in str(caught.value) and "--mgmt-url" in str(caught.value)


def test_documents_are_saved_exactly_with_their_url(emulator: Emulator, tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path / "bundle")
    path = f"{ENV_PATH}/apis/{PROXY}/deployments"
    with _client(emulator, sink=sink) as client:
        client.get_json(path, what="deployments", document=layout.EDGE_DEPLOYMENTS)
    saved = tmp_path / "bundle" / layout.EDGE_DEPLOYMENTS
    assert saved.read_bytes().startswith(b'{\n  "environment" : ')  # Edge's own spacing, untouched
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    sources = (tmp_path / "bundle" / layout.EDGE_SOURCES).read_text()
    assert f'"{layout.EDGE_DEPLOYMENTS}": "{emulator.url}/v1{path}"' in sources
    assert USERNAME not in sources and PASSWORD not in sources


def test_bearer_token_is_not_replaced_by_netrc(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a ~/.netrc with another (forbidden) login for the same host
    netrc_file = tmp_path / ".netrc"
    netrc_file.write_text(f"machine 127.0.0.1 login viewer@example.com password {PASSWORD}\n")
    netrc_file.chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    # When the client uses a token, Then the token is what the server sees
    with _client(emulator, BearerAuth(TOKEN)) as client:
        client.get_json(ORG_PATH, what="organization")
    assert emulator.authorizations == ["bearer"]


@pytest.mark.parametrize(
    "content, expected",
    [
        (f"machine 127.0.0.1 login {USERNAME} password {PASSWORD}\n", BasicAuth(USERNAME, PASSWORD)),
        (f"machine other.example login {USERNAME} password {PASSWORD}\n", None),
        (f"default login {USERNAME} password {PASSWORD}\n", BasicAuth(USERNAME, PASSWORD)),
    ],
    ids=["host", "other-host", "default"],
)
def test_netrc_login_for_the_management_host(
    tmp_path: Path, content: str, expected: BasicAuth | None
) -> None:
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text(content)
    netrc_file.chmod(0o600)
    assert auth_from_netrc("http://127.0.0.1:8080/v1", netrc_file) == expected


def test_netrc_missing_or_broken(tmp_path: Path) -> None:
    assert auth_from_netrc("http://127.0.0.1:8080", tmp_path / "absent") is None
    broken = tmp_path / "netrc"
    broken.write_text("machine 127.0.0.1 login u password p extra\n")
    with pytest.raises(InputError, match="cannot parse netrc"):
        auth_from_netrc("http://127.0.0.1:8080", broken)


def test_netrc_credentials_work_against_the_emulator(emulator: Emulator, tmp_path: Path) -> None:
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text(f"machine 127.0.0.1 login {USERNAME} password {PASSWORD}\n")
    netrc_file.chmod(0o600)
    auth = auth_from_netrc(emulator.url, netrc_file)
    assert auth is not None
    with _client(emulator, auth) as client:
        assert client.get_json(ORG_PATH, what="organization")["name"] == ORG


def test_token_command_prints_the_token_last() -> None:
    argv = [sys.executable, "-c", "print('Using SSO'); print('tok-123  ')"]
    assert token_from_command(argv) == "tok-123"


@pytest.mark.parametrize(
    "argv, message",
    [
        ([sys.executable, "-c", "import sys; print('tok-secret'); sys.exit(3)"], "exit code 3"),
        ([sys.executable, "-c", "pass"], "printed no token"),
        (["/nonexistent/get_token"], "not found"),
    ],
    ids=["fails", "silent", "missing"],
)
def test_token_command_failures(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        token_from_command(argv)
    assert "tok-secret" not in str(caught.value)


def test_token_command_runs_without_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    token = token_from_command(["echo", f"tok; touch {marker}"])
    assert token == f"tok; touch {marker}" and not marker.exists()


@pytest.mark.parametrize(
    "url, base, public",
    [
        ("https://api.enterprise.apigee.com/v1/", "https://api.enterprise.apigee.com", True),
        ("http://10.0.0.5:8080", "http://10.0.0.5:8080", False),
        ("http://ms.example:8080/v1", "http://ms.example:8080", False),
    ],
)
def test_base_urls(url: str, base: str, public: bool) -> None:
    assert normalize_base_url(url) == base and is_public_cloud(url) is public


def test_post_and_delete_debug_session(make_config: Callable[..., EmulatorConfig]) -> None:
    sessions = f"{ENV_PATH}/apis/{PROXY}/revisions/7/debugsessions"
    with start_emulator(make_config()) as emulator, _client(emulator, sink=DocumentSink()) as client:
        client.post(sessions, what="debug session", params={"session": "s", "timeout": "30"})
        assert emulator.sessions() == ["s"]
        client.delete(f"{sessions}/s", what="debug session")
        assert emulator.sessions() == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_lookup_addresses_of_loopback_names(host: str) -> None:
    assert "127.0.0.1" in lookup_addresses(host)


# --- issue 16, defect 6: answers bounded in size and in total time ----------------------------------------

UNBOUNDED = [
    # (case id, fault, expected words in the error)
    ("huge, announced", lambda e: e.oversize(f"/v1{ORG_PATH}", 8 * 1024 * 1024),
     "larger than 1 MiB (it announces"),
    ("endless chunked", lambda e: e.endless(f"/v1{ORG_PATH}"), "larger than 1 MiB (stopped reading there)"),
    ("trickling", lambda e: e.trickle(f"/v1{ORG_PATH}", 0.3), "did not complete within 1.5 s"),
]


@pytest.mark.parametrize(("fault", "words"), [c[1:] for c in UNBOUNDED], ids=[c[0] for c in UNBOUNDED])
def test_answers_are_bounded_in_size_and_total_time(emulator: Emulator,
                                                    fault: Callable[[Emulator], None], words: str) -> None:
    # Given a server answering too much, forever, or a byte at a time (each read well within the timeout)
    fault(emulator)
    started = time.monotonic()
    # When a document is fetched with a 1 MiB limit and a 1.5 s timeout
    with _client(emulator, timeout=1.5, retries=0, max_answer_bytes=1024 * 1024) as client, \
            pytest.raises(EdgeError) as caught:
        client.get_json(ORG_PATH, what="organization")
    # Then it fails soon, naming the URL and the limit
    assert time.monotonic() - started < 6
    assert words in str(caught.value) and caught.value.url.endswith(ORG_PATH), str(caught.value)


def test_trickling_answer_is_retried_within_its_deadline_each_time(emulator: Emulator) -> None:
    # Given a server that trickles its first answer, then answers normally
    emulator.trickle(f"/v1{ORG_PATH}", 0.3, times=1)
    # When fetched with one retry
    with _client(emulator, timeout=1.0, retries=1) as client:
        # Then the second attempt gets the document
        assert client.get_json(ORG_PATH, what="organization")["name"] == ORG


@pytest.mark.parametrize(("location", "shown"), [
    ("https://sso.example.com/login?SAMLRequest=secret-ish&RelayState=x",
     "https://sso.example.com/login (query left out)"),
    ("/v1/login", "/v1/login"),
    ("", "nowhere (no Location header)"),
])
def test_redirect_names_where_it_points(emulator: Emulator, location: str, shown: str) -> None:
    # Given a management URL that redirects (a login page in front of it)
    emulator.redirect(f"/v1{ORG_PATH}", location)
    # When a document is fetched
    with _client(emulator) as client, pytest.raises(EdgeError) as caught:
        client.get_json(ORG_PATH, what="organization")
    # Then the error names the Location (never its query) and says what to check
    assert "HTTP 302 redirecting to " in str(caught.value) and shown in str(caught.value)
    assert "secret-ish" not in str(caught.value) and "--mgmt-url" in caught.value.hint

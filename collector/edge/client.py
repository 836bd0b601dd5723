"""The management API client: base URL, auth, timeouts, retries; the one place httpx errors become ours."""

from __future__ import annotations

import contextlib
import json
import netrc
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from collector.edge.documents import DocumentSink
from collector.errors import EdgeAuthError, EdgeError, EdgeNotFoundError, InputError, UsageError

PUBLIC_CLOUD_URL = "https://api.enterprise.apigee.com"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0  # seconds; a larger Retry-After is capped so a run never stalls on one call
TOKEN_COMMAND_TIMEOUT = 120.0  # get_token may open a browser / ask for a passcode on its terminal
# The largest answer read from the management API: a proxy bundle zip or a trace is a few MB; a 500 MB answer
# is not one we asked for, and is never held in memory.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
_MIB = 1024 * 1024


@dataclass(frozen=True)
class BasicAuth:
    """Basic auth; the password never appears in repr, logs or errors."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class BearerAuth:
    """An OAuth2/SAML access token (MFA/SSO accounts; `get_token` prints one)."""

    token: str = field(repr=False)


@dataclass(frozen=True)
class NoAuth:
    """No Authorization header (a Private Cloud management server open on a trusted network)."""


EdgeAuth = BasicAuth | BearerAuth | NoAuth


def auth_from_netrc(base_url: str, netrc_path: Path | str | None = None) -> BasicAuth | None:
    """The `~/.netrc` (or `netrc_path`) login for the host of `base_url`, or None when there is none.

    Raises InputError when the file exists but cannot be parsed (or is readable by others, which Python's
    netrc refuses for the default file).
    """
    path = Path(netrc_path) if netrc_path is not None else Path.home() / ".netrc"
    host = urlsplit(normalize_base_url(base_url)).hostname
    if not host or not path.is_file():
        return None
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except netrc.NetrcParseError as exc:
        raise InputError(path, f"cannot parse netrc: {exc.msg} (line {exc.lineno})") from exc
    except OSError as exc:
        raise InputError(path, f"cannot read netrc: {exc.strerror or exc}") from exc
    if entry is None or not entry[0]:
        return None
    return BasicAuth(entry[0], entry[2] or "")


def token_from_command(argv: Sequence[str]) -> str:
    """Run a token command such as ``["get_token"]`` (argv list, no shell) and return the token it prints.

    The last non-empty stdout line is the token (tools may print a banner first). Raises UsageError when the
    command is missing, fails, times out or prints nothing; the token itself never appears in an error.
    """
    if not argv:
        raise UsageError("token command is empty")
    name = argv[0]
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=TOKEN_COMMAND_TIMEOUT, check=False
        )
    except FileNotFoundError as exc:
        raise UsageError(f"token command {name!r} not found (install it or give --token)") from exc
    except subprocess.TimeoutExpired as exc:
        raise UsageError(f"token command {name!r} did not finish in {TOKEN_COMMAND_TIMEOUT:.0f} s") from exc
    except OSError as exc:
        raise UsageError(f"token command {name!r} cannot run: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        last = (done.stderr or "").strip().splitlines()[-1:] or ["no message"]
        raise UsageError(f"token command {name!r} failed with exit code {done.returncode}: {last[0][:200]}")
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise UsageError(f"token command {name!r} printed no token")
    return lines[-1]


def normalize_base_url(base_url: str) -> str:
    """`https://api.enterprise.apigee.com` or `http://HOST:8080`: no trailing slash, no `/v1`."""
    url = base_url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def is_public_cloud(base_url: str) -> bool:
    """True for Apigee's public cloud management API (no `/v1/servers`, no SSH to MPs)."""
    return urlsplit(normalize_base_url(base_url)).hostname == urlsplit(PUBLIC_CLOUD_URL).hostname


def lookup_addresses(host: str) -> tuple[str, ...]:
    """The IP addresses `host` resolves to here (capture filters); () when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return ()
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


class EdgeClient:
    """A management API session: `EdgeClient(base_url, auth, timeout=30, retries=3, sink=None)`.

    Paths are relative to `/v1` (``"/organizations/o/environments/e/keystores"``). Every attempt has a total
    deadline of `timeout` seconds (connect, headers and the whole body: a server trickling bytes cannot hold
    it) and reads at most `max_answer_bytes` (an endless or huge answer stops there, naming URL and limit);
    429/5xx and connection errors are retried `retries` times with exponential backoff (`backoff` seconds,
    then doubled; Retry-After honoured up to 30 s); 4xx never. Errors: 401/403 -> EdgeAuthError, 404 ->
    EdgeNotFoundError, anything else -> EdgeError, each naming `what` was fetched and the URL (no
    credentials). `auth` None means NoAuth.
    With `document=` (a `collector.layout` path), the raw body is saved in `sink` with its URL.
    """

    def __init__(
        self,
        base_url: str,
        auth: EdgeAuth | None,
        *,
        timeout: float = 30,
        retries: int = 3,
        sink: DocumentSink | None = None,
        backoff: float = 1.0,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.sink = sink
        self.retries = max(0, retries)
        self.backoff = backoff
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        headers = {"Accept": "application/json", "User-Agent": "apigee-collector"}
        if isinstance(auth, BearerAuth):
            _check_token(auth.token)
            headers["Authorization"] = f"Bearer {auth.token}"
        httpx_auth = httpx.BasicAuth(auth.username, auth.password) if isinstance(auth, BasicAuth) else None
        # trust_env=False: httpx would otherwise read ~/.netrc and replace our Bearer header with Basic.
        self._http = httpx.Client(
            base_url=f"{self.base_url}/v1",
            auth=httpx_auth,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            trust_env=False,
            follow_redirects=False,
            # No kept-alive connections: each attempt connects, so its deadline sees (and can stop) its socket
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def __enter__(self) -> EdgeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def url_for(self, path: str, params: Mapping[str, str] | None = None) -> str:
        """The full request URL (never holds credentials: auth travels in headers only)."""
        url = httpx.URL(f"{self.base_url}/v1{path}", params=dict(params) if params else None)
        return str(url.copy_with(username=None, password=None)) if url.userinfo else str(url)

    def get_json(
        self, path: str, *, what: str, document: str | None = None, params: Mapping[str, str] | None = None
    ) -> Any:
        """GET a JSON document; EdgeError when the body is not JSON."""
        response = self._request("GET", path, what=what, params=params, document=document)
        return _parse_json(response, what, self.url_for(path, params))

    def get_bytes(
        self,
        path: str,
        *,
        what: str,
        document: str | None = None,
        params: Mapping[str, str] | None = None,
        accept: str = "*/*",
    ) -> bytes:
        """GET a binary or text body (the proxy bundle zip, a PEM) exactly as received."""
        return self._request(
            "GET", path, what=what, params=params, document=document, headers={"Accept": accept}
        ).content

    def post(
        self,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        document: str | None = None,
    ) -> bytes:
        """POST a form (`application/x-www-form-urlencoded`, as debug sessions want); returns the body."""
        return self._request(
            "POST",
            path,
            what=what,
            params=params,
            document=document,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            content=None if form else b"",
            form=form,
        ).content

    def delete(self, path: str, *, what: str, params: Mapping[str, str] | None = None) -> bytes:
        """DELETE; returns the body."""
        return self._request("DELETE", path, what=what, params=params).content

    def lookup_addresses(self, host: str) -> tuple[str, ...]:
        """DNS lookup of a backend host (I/O kept beside the other network calls; see `lookup_addresses`)."""
        return lookup_addresses(host)

    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        document: str | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        form: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        url = self.url_for(path, params)
        attempt = 0
        while True:
            deadline = _Deadline(self.timeout)
            try:
                response = self._send(method, path, url, what, deadline, params=params, headers=headers,
                                      content=content, form=form)
            except httpx.TransportError as exc:
                if attempt < self.retries and _may_retry_transport(method, exc):
                    self._sleep(attempt, None)
                    attempt += 1
                    continue
                raise EdgeError(
                    what,
                    url,
                    _transport_problem(exc, self.timeout, attempt, deadline),
                    "check --mgmt-url and that the management server is reachable from here",
                ) from exc
            except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
                raise EdgeError(
                    what, url, f"request failed: {type(exc).__name__}: {exc}", "check --mgmt-url"
                ) from exc
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                self._sleep(attempt, response.headers.get("Retry-After"))
                attempt += 1
                continue
            break
        if response.status_code >= 300:
            raise _status_error(response, what, url, attempt)
        if document is not None and self.sink is not None:
            self.sink.save(document, response.content, url)
        return response

    def _send(self, method: str, path: str, url: str, what: str, deadline: _Deadline, *,
              params: Mapping[str, str] | None, headers: Mapping[str, str] | None, content: bytes | None,
              form: Mapping[str, str] | None) -> httpx.Response:
        """One attempt, streamed: the body is read in blocks up to `max_answer_bytes`, within `deadline`."""
        with deadline, self._http.stream(
            method,
            path,
            params=dict(params) if params else None,
            headers=dict(headers or {}),
            data=dict(form) if form else None,
            content=content,
            extensions={"trace": deadline.trace},
        ) as streamed:
            deadline.answered = True
            body = self._read_body(streamed, url, what)
        return httpx.Response(streamed.status_code, headers=streamed.headers, content=body,
                              request=streamed.request)

    def _read_body(self, response: httpx.Response, url: str, what: str) -> bytes:
        limit = self.max_answer_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > limit:
            raise _too_large(what, url, limit, f"it announces {int(declared)} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise _too_large(what, url, limit, "stopped reading there")
            chunks.append(chunk)
        return b"".join(chunks)

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * (2**attempt)
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after.strip()), MAX_RETRY_AFTER))
        time.sleep(delay)


def _check_token(token: str) -> None:
    """A Bearer token is visible ASCII without blanks (RFC 6750 b64token and the opaque tokens in use).

    Anything else cannot travel in a header: httpx would fail with an error quoting the whole header value
    (the token) or, for non-ASCII, with an encoding error; say so without the token instead."""
    if not token or any(not "!" <= char <= "~" for char in token):
        raise UsageError(
            "the Bearer token holds characters an HTTP header cannot carry (blanks, line breaks, control or "
            "non-ASCII characters); check --token, APIGEE_TOKEN or the token command's output"
        )


def _may_retry_transport(method: str, exc: httpx.TransportError) -> bool:
    # A POST that may have reached the server is not repeated: it could create a second debug session.
    if method == "POST":
        return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
    return True


class _Deadline:
    """The total time of one attempt: when it is up, the attempt's sockets are shut down, which ends any read
    at once (httpx's own timeout only bounds each read, so a server sending a byte every 10 s never trips it).
    `trace` is httpx's trace extension: it sees every socket the attempt connects."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self.answered = False  # the status line and headers arrived before the deadline
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def __enter__(self) -> _Deadline:
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to stop
        sock.shutdown(socket.SHUT_RDWR)


def _too_large(what: str, url: str, limit: int, detail: str) -> EdgeError:
    return EdgeError(what, url, f"the answer is larger than {limit // _MIB} MiB ({detail})",
                     "check --mgmt-url: the management API answers these requests with far less")


def _transport_problem(exc: httpx.TransportError, timeout: float, retried: int,
                       deadline: _Deadline | None = None) -> str:
    tries = f" (after {retried + 1} attempts)" if retried else ""
    if deadline is not None and deadline.expired:
        if deadline.answered:
            return f"the answer did not complete within {timeout:g} s (it came too slowly){tries}"
        return f"no answer within {timeout:g} s{tries}"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s{tries}"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {exc}{tries}"
    if isinstance(exc, httpx.LocalProtocolError):  # its text quotes the offending header, credentials included
        return f"the request could not be sent (an invalid header or URL){tries}"
    return f"connection failed: {type(exc).__name__}: {exc}{tries}"


def _edge_detail(response: httpx.Response) -> str:
    """Edge's own `code: message` from an error body, or the start of a non-JSON body."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().replace("\n", " ")
        return text[:200]
    if isinstance(body, dict):
        code, message = body.get("code"), body.get("message")
        return ": ".join(str(part) for part in (code, message) if part)
    return ""


def _status_error(response: httpx.Response, what: str, url: str, retried: int) -> EdgeError:
    status = response.status_code
    detail = _edge_detail(response)
    suffix = f" ({detail})" if detail else ""
    if status == 401:
        return EdgeAuthError(
            what,
            url,
            f"credentials refused (HTTP 401){suffix}",
            "check the username/password or token; accounts with MFA or SSO need a token "
            "(--token, APIGEE_TOKEN, or the output of get_token)",
        )
    if status == 403:
        return EdgeAuthError(
            what,
            url,
            f"permission denied (HTTP 403){suffix}",
            "the account lacks a role that can read this; ask an org admin",
        )
    if status == 404:
        return EdgeNotFoundError(
            what, url, f"not found (HTTP 404){suffix}", "check the name, --org and --env"
        )
    tries = f" after {retried + 1} attempts" if retried else ""
    if 300 <= status < 400:
        return EdgeError(what, url, f"HTTP {status} redirecting to {_location(response)}{tries}",
                         "check --mgmt-url: the management API answers directly; a redirect usually means a "
                         "login page or a proxy in front of it")
    hint = "the management server is failing; retry later" if status >= 500 else ""
    return EdgeError(what, url, f"HTTP {status}{tries}{suffix}", hint)


def _location(response: httpx.Response) -> str:
    """Where a redirect points, without its query or user info (an SSO redirect carries tokens there)."""
    location = response.headers.get("Location", "").strip()
    if not location:
        return "nowhere (no Location header)"
    try:
        target = response.request.url.join(location)
    except (httpx.InvalidURL, ValueError):
        return "an invalid Location"
    shown = target.copy_with(query=None, fragment=None, username=None, password=None)
    return str(shown) + (" (query left out)" if target.query else "")


def _parse_json(response: httpx.Response, what: str, url: str) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError) as exc:  # RecursionError: arrays/objects nested thousands deep
        kind = response.headers.get("content-type", "unknown type")
        raise EdgeError(
            what,
            url,
            f"the answer is not JSON ({kind})",
            "check --mgmt-url: a login page or proxy may be answering instead of the management API",
        ) from exc

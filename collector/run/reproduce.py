"""Reproduce the failing call during the capture window: the operator's curl (argv, never a shell) or
a GET."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"
# curl options whose value is a secret as a whole, or after the first ':' (user:password, cert:passphrase).
_SECRET_VALUE = {"--oauth2-bearer", "--pass", "--proxy-pass", "--aws-sigv4", "--delegation"}
_SECRET_AFTER_COLON = {"-u", "--user", "-U", "--proxy-user", "-E", "--cert", "--proxy-cert"}
_COOKIE = {"-b", "--cookie"}
_HEADER = {"-H", "--header", "--proxy-header"}
_DATA = {"-d", "--data", "--data-raw", "--data-binary", "--data-urlencode", "-F", "--form", "--json"}
_REDACTED_OPTIONS = _SECRET_VALUE | _SECRET_AFTER_COLON | _COOKIE | _HEADER | _DATA
_SECRET_HEADERS = re.compile(
    r"^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|apikey|x-apikey|x-auth-token|"
    r"x-amz-security-token)\s*:", re.IGNORECASE)
_SECRET_PARAM = re.compile(r"(?i)^(api[-_]?key|key|token|access_token|id_token|password|passwd|pwd|secret|"
                           r"client_secret|sig|signature|code)$")
_SECRET_PAIR = re.compile(r"(?i)\b(api[-_]?key|token|access_token|password|passwd|pwd|secret|client_secret)="
                          r"[^&\s\"']*")
MESSAGE_ID_HEADER = "x-apigee.message-id"


@dataclass(frozen=True)
class Reproduction:
    """What the reproduction did and got back.

    Attributes:
        command: the command (curl argv or `GET URL`) with secrets redacted, one line, shell-quoted.
        response: status line, headers and body (stdout/stderr for curl), secrets in headers redacted.
        status: HTTP status when known (`None` for curl output without `-i`, or when the call failed).
        message_ids: `X-Apigee.Message-ID` values seen in the response headers.
        error: why the reproduction failed (timeout, curl not found, connection refused); `None` when it ran.
        seconds: wall time.
    """

    command: str
    response: str
    status: int | None
    message_ids: tuple[str, ...]
    error: str | None
    seconds: float


def redact_url(url: str) -> str:
    """The URL without user:password and with secret-looking query values replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED if _SECRET_PARAM.match(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_argv(argv: tuple[str, ...] | list[str]) -> list[str]:
    """A curl argv with every credential replaced by `***` (user passwords, auth headers, cookies, keys)."""
    out: list[str] = []
    pending: str | None = None
    for arg in argv:
        if pending is not None:
            out.append(_redact_value(pending, arg))
            pending = None
            continue
        name, eq, value = arg.partition("=")
        if arg.startswith("--") and eq and name in _REDACTED_OPTIONS:
            out.append(f"{name}={_redact_value(name, value)}")
        elif arg in _REDACTED_OPTIONS:
            out.append(arg)
            pending = arg
        elif len(arg) > 2 and arg[:2] in ("-u", "-H", "-b", "-d", "-E", "-U", "-F"):
            out.append(arg[:2] + _redact_value(arg[:2], arg[2:]))  # -uuser:pass glued form
        elif arg.startswith(("http://", "https://")):
            out.append(redact_url(arg))
        else:
            out.append(arg)
    return out


def _redact_value(option: str, value: str) -> str:
    if option in _SECRET_VALUE:
        return REDACTED
    if option in _COOKIE:
        # Keep the cookie names (and a cookie-jar file name) so the bundle's own redaction still sees, masks
        # and reports a cookie here; every value goes.
        return re.sub(r"=[^;]*", f"={REDACTED}", value) if "=" in value else value
    if option in _SECRET_AFTER_COLON:
        user, colon, _secret = value.partition(":")
        return f"{user}:{REDACTED}" if colon else value
    if option in _HEADER:
        match = _SECRET_HEADERS.match(value)
        return f"{value[:match.end()]} {REDACTED}" if match else value
    if option in _DATA:
        return _SECRET_PAIR.sub(lambda m: f"{m.group(1)}={REDACTED}", value)
    return value


def redact_headers(lines: str) -> str:
    """Replace the values of credential-bearing headers in a block of `Name: value` lines."""
    return "\n".join(
        (line[: m.end()] + " " + REDACTED) if (m := _SECRET_HEADERS.match(line)) else line
        for line in lines.split("\n")
    )


def run_curl(argv: tuple[str, ...], timeout: float) -> Reproduction:
    """Run the operator's curl directly (no shell); `-i` is added when absent so the status line is kept."""
    run_argv = list(argv)
    if not any(a in ("-i", "--include", "-I", "--head", "-v", "--verbose")
               or (a.startswith("-") and not a.startswith("--") and "i" in a[1:]
                   and len(a) <= 6 and a[1:].isalpha())
               for a in run_argv[1:]):
        run_argv.insert(1, "-i")
    command = " ".join(shlex.quote(a) for a in redact_argv(argv))
    started = time.monotonic()
    try:
        done = subprocess.run(run_argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        partial = (exc.stdout or b"").decode("utf-8", "replace")
        return Reproduction(command, redact_headers(partial), None, (),
                            f"curl did not finish within {timeout:.0f} s", time.monotonic() - started)
    except OSError as exc:
        return Reproduction(command, "", None, (), f"cannot run {argv[0]}: {exc.strerror}",
                            time.monotonic() - started)
    stdout = done.stdout.decode("utf-8", "replace")
    stderr = done.stderr.decode("utf-8", "replace")
    status, ids = _scan_response(stdout)
    text = redact_headers(stdout)
    if stderr.strip():
        text += "\n--- curl stderr ---\n" + redact_headers(stderr)
    text += f"\n--- curl exit code {done.returncode} ---\n"
    error = None if done.returncode == 0 else f"curl exited with {done.returncode}: {stderr.strip()[:200]}"
    return Reproduction(command, text, status, ids, error, time.monotonic() - started)


def get_url(url: str, timeout: float) -> Reproduction:
    """GET `url` once with httpx (no redirects followed, so the answer is Edge's own)."""
    import httpx  # noqa: PLC0415 - ~0.1 s that runs without --url (most) need not pay before their first host

    command = f"GET {redact_url(url)}"
    started = time.monotonic()
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        return Reproduction(command, "", None, (),
                            f"GET {redact_url(url)} failed: {type(exc).__name__}: {exc}",
                            time.monotonic() - started)
    head = f"HTTP/1.1 {response.status_code} {response.reason_phrase}\n" + "\n".join(
        f"{k}: {v}" for k, v in response.headers.items())
    text = redact_headers(head) + "\n\n" + response.text
    ids = tuple(v for k, v in response.headers.items() if k.lower() == MESSAGE_ID_HEADER)
    return Reproduction(command, text, response.status_code, ids, None, time.monotonic() - started)


def _scan_response(stdout: str) -> tuple[int | None, tuple[str, ...]]:
    status = None
    ids: list[str] = []
    for line in stdout.splitlines():
        match = re.match(r"^HTTP/[\d.]+ (\d{3})", line)
        if match:
            status = int(match.group(1))  # the last status line wins (100 Continue, redirects)
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == MESSAGE_ID_HEADER:
            ids.append(value.strip())
    return status, tuple(ids)


"""Run settings for `collect`: flags, then environment variables, then the config file, validated and
frozen."""

from __future__ import annotations

import ipaddress
import netrc
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomllib joined the standard library in 3.11; tomli is the same parser under its own name
    import tomli as tomllib

from collector.errors import InputError, UsageError

DEFAULT_MGMT_URL = "https://api.enterprise.apigee.com"
DEFAULT_CAPTURE_SECONDS = 30
MAX_CAPTURE_SECONDS = 3600
DEFAULT_API_TIMEOUT_SECONDS = 30
MAX_API_TIMEOUT_SECONDS = 600
CONFIG_NAMES = ("config.yaml", "config.yml", "config.toml")

# Edge entity names: letters, digits, `_`, `-`, `.` (and `%` seen in URL-encoded proxy names); never a path.
_EDGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._%-]{0,254}$")
_CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# The first label, then every further one; at most 253 characters in all.
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$")

# Environment variables (DESIGN's settings table); secrets only ever come from here, ~/.netrc or a prompt.
ENV_MGMT_URL = "APIGEE_MGMT_URL"
ENV_USERNAME = "APIGEE_USERNAME"
ENV_PASSWORD = "APIGEE_PASSWORD"
ENV_TOKEN = "APIGEE_TOKEN"

# Settings a config file may hold (secrets never: a file is too easy to share or commit).
_CONFIG_KEYS = {
    "org", "env", "proxy", "mgmt_url", "username", "token_command", "inventory", "known_hosts",
    "accept_new_host_keys", "no_api", "backends", "capture_seconds", "trace", "reproduce", "url",
    "public_cloud", "out", "case", "keep_directory", "probe", "api_timeout",
}
_SECRET_KEYS = {"password", "token", "sudo_password"}


@dataclass(frozen=True)
class Backend:
    """A backend the MPs call: resolved from a target (URL or target server), or given as --backend HOST:PORT.

    Attributes:
        host / port: where the MP connects; port ``None`` when the target does not say (the run assumes 443).
        addresses: its IPs for capture filters (() when it did not resolve, or not looked up yet).
        sni: the server name the MP sends in its ClientHello, and so the one a probe must send: the host name
            of the target; ``None`` for an IP literal (RFC 6066 allows no address as a server name). Given
            explicitly, it wins over that default.
    """

    host: str
    port: int | None
    addresses: tuple[str, ...] = ()
    sni: str | None = None

    def __post_init__(self) -> None:
        if self.sni is None and not _is_ip_literal(self.host):
            object.__setattr__(self, "sni", self.host)  # frozen: the default is derived once, here

    def __str__(self) -> str:
        if self.port is None:
            return self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "addresses": list(self.addresses)}


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Secrets:
    """Passwords and tokens; never printed, never in the manifest (`repr` shows only which are set)."""

    password: str | None = None
    token: str | None = None
    sudo_password: str | None = None

    def __repr__(self) -> str:
        held = [name for name in ("password", "token", "sudo_password") if getattr(self, name)]
        return f"Secrets(set={held})"


@dataclass(frozen=True)
class RunSettings:
    """Everything one `collect` run needs, after flags, environment and config file were merged and checked.

    Attributes:
        org / env / proxy: the Edge names (validated); with `no_api` they only name the bundle.
        mgmt_url: management API base URL without credentials.
        username: Basic auth user; ``None`` with a token or when ~/.netrc supplies the login.
        token_command: argv that prints a Bearer token (run by the Edge client), ``()`` when unused.
        inventory / known_hosts: SSH inventory and known_hosts files; ``None`` when not given.
        backends: `--backend HOST:PORT` values (used with `no_api`, or added to the resolved ones).
        capture_seconds: the reproduction/capture window.
        api_timeout: how long one management API answer may take, its whole body included, before the call
            counts as failed (and is retried where that is safe).
        trace: start a debug session (ignored with `no_api` and `dry_run`).
        reproduce: the operator's curl as an argv list (never run through a shell); ``()`` when unused.
        url: a URL to GET during the window instead of a curl command; ``None`` when unused.
        probe: ``True`` always probe, ``False`` never, ``None`` automatically (TLS 1.3 or no capture).
        config_file: the config file that was read, ``None`` when none.
        secrets: password / token / sudo password (kept apart so nothing serialises them by accident).
    """

    org: str
    env: str
    proxy: str
    mgmt_url: str = DEFAULT_MGMT_URL
    username: str | None = None
    token_command: tuple[str, ...] = field(default=(), repr=False)
    inventory: Path | None = None
    known_hosts: Path | None = None
    accept_new_host_keys: bool = False
    no_api: bool = False
    backends: tuple[Backend, ...] = ()
    capture_seconds: int = DEFAULT_CAPTURE_SECONDS
    api_timeout: int = DEFAULT_API_TIMEOUT_SECONDS
    trace: bool = True
    reproduce: tuple[str, ...] = field(default=(), repr=False)  # may carry -u user:pass
    url: str | None = field(default=None, repr=False)  # may carry an API key
    public_cloud: bool = False
    out: Path = field(default_factory=Path.cwd)
    case: str | None = None
    keep_directory: bool = False
    dry_run: bool = False
    json: bool = False
    probe: bool | None = None
    sudo_password_prompt: bool = False
    config_file: Path | None = None
    secrets: Secrets = field(default_factory=Secrets, repr=False, compare=False)

    @property
    def uses_api(self) -> bool:
        return not self.no_api

    def missing_secret(self) -> str | None:
        """The secret a prompt must supply before the run ('password', 'sudo password'), ``None``
        when complete."""
        if self.uses_api and self.username and not self.secrets.password and not self.secrets.token \
                and not self.token_command:
            return "password"
        if self.sudo_password_prompt and self.secrets.sudo_password is None:
            return "sudo password"
        return None

    def with_secrets(self, **values: str | None) -> RunSettings:
        """A copy with some secrets filled in (the CLI calls this after prompting)."""
        return replace(self, secrets=replace(self.secrets, **values))

    def to_manifest(self) -> dict[str, Any]:
        """The settings as recorded in manifest.json: no password, token, or token-command arguments."""
        return {
            "org": self.org,
            "env": self.env,
            "proxy": self.proxy,
            "mgmt_url": None if self.no_api else self.mgmt_url,
            "auth": self.auth_kind(),
            "username": self.username,
            "inventory": str(self.inventory) if self.inventory else None,
            "known_hosts": str(self.known_hosts) if self.known_hosts else None,
            "accept_new_host_keys": self.accept_new_host_keys,
            "no_api": self.no_api,
            "backends": [str(b) for b in self.backends],
            "capture_seconds": self.capture_seconds,
            "api_timeout": None if self.no_api else self.api_timeout,
            "trace": self.trace,
            # The command itself is in request/command.txt, redacted; here only what kind of reproduction ran.
            "reproduction": "curl" if self.reproduce else ("url" if self.url else None),
            "public_cloud": self.public_cloud,
            "case": self.case,
            "dry_run": self.dry_run,
            "probe": {True: "always", False: "never", None: "auto"}[self.probe],
            "sudo_password": self.secrets.sudo_password is not None,
            "config_file": str(self.config_file) if self.config_file else None,
        }

    def auth_kind(self) -> str | None:
        """Which credential the management API calls use: token, token-command, basic, netrc or none."""
        if self.no_api:
            return None
        if self.secrets.token:
            return "token"
        if self.token_command:
            return "token-command"
        if self.username and self.secrets.password:
            return "basic"
        return "netrc"


def load_settings(
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    config_path: Path | None = None,
    home: Path | None = None,
) -> RunSettings:
    """Merge flags (given ones only), environment and config file; validate; read secrets (never prompts).

    `flags` maps setting names (`org`, `mgmt_url`, `backends`…) to the values the user actually typed;
    `config_path` is `--config` (an error when missing); without it the default config file is read
    if present.
    """
    home = home if home is not None else Path(environ.get("HOME") or Path.home())
    config, config_file = _read_config(config_path, environ, home)
    env_values = {
        "mgmt_url": environ.get(ENV_MGMT_URL) or None,
        "username": environ.get(ENV_USERNAME) or None,
    }

    def pick(name: str, default: Any = None) -> Any:
        for source in (flags, env_values, config):
            value = source.get(name)
            if value is not None:
                return value
        return default

    no_api = bool(pick("no_api", False))
    names = {key: pick(key) for key in ("org", "env", "proxy")}
    for key, flag in (("org", "--org"), ("env", "--env"), ("proxy", "--proxy")):
        if names[key] is None:
            if not no_api:
                raise UsageError(f"{flag} is required (or use --no-api with --backend HOST:PORT)")
            names[key] = f"no-{key}"
        _check_name(flag, str(names[key]))

    token = flags.get("token") or environ.get(ENV_TOKEN) or None
    token_command = _parse_token_command(pick("token_command"))
    mgmt_url = _check_mgmt_url(str(pick("mgmt_url", DEFAULT_MGMT_URL)))
    username = pick("username")
    password = environ.get(ENV_PASSWORD) or None
    if not no_api and not token and not token_command:
        username, password = _credentials_from_netrc(mgmt_url, username, password, environ, home)

    url = pick("url")
    reproduce = _parse_reproduce(pick("reproduce"))
    if url is not None and reproduce:
        raise UsageError("--reproduce and --url are alternatives: give one reproduction")
    if url is not None:
        url = _check_url("--url", str(url))

    backends = tuple(_parse_backend(str(b)) for b in (pick("backends") or ()))
    if no_api and not backends and not pick("inventory"):
        raise UsageError("--no-api needs --backend HOST:PORT (repeatable) or an --inventory with backends")

    case = pick("case")
    if case is not None and not _CASE_ID.match(str(case)):
        raise UsageError(f"--case {case!r}: use letters, digits, '.', '_' or '-' (at most 64)")

    settings = RunSettings(
        org=str(names["org"]),
        env=str(names["env"]),
        proxy=str(names["proxy"]),
        mgmt_url=mgmt_url,
        username=str(username) if username else None,
        token_command=token_command,
        inventory=_existing_file("--inventory", pick("inventory"), home),
        known_hosts=_existing_file("--known-hosts", pick("known_hosts"), home),
        accept_new_host_keys=bool(pick("accept_new_host_keys", False)),
        no_api=no_api,
        backends=backends,
        capture_seconds=_check_seconds(
            "--capture-seconds", pick("capture_seconds", DEFAULT_CAPTURE_SECONDS), MAX_CAPTURE_SECONDS
        ),
        api_timeout=_check_seconds(
            "--api-timeout", pick("api_timeout", DEFAULT_API_TIMEOUT_SECONDS), MAX_API_TIMEOUT_SECONDS
        ),
        trace=bool(pick("trace", True)),
        reproduce=reproduce,
        url=url,
        public_cloud=bool(pick("public_cloud", False)),
        out=_expand(pick("out"), home) or Path.cwd(),
        case=str(case) if case is not None else None,
        keep_directory=bool(pick("keep_directory", False)),
        dry_run=bool(flags.get("dry_run", False)),
        json=bool(flags.get("json", False)),
        probe=pick("probe"),
        sudo_password_prompt=bool(flags.get("sudo_password_prompt", False)),
        config_file=config_file,
        secrets=Secrets(password=password, token=token),
    )
    if settings.uses_api and settings.auth_kind() == "netrc" and not settings.username:
        # Without any credential the API answers 401 anyway; say what to give instead.
        host = urlsplit(mgmt_url).hostname
        raise UsageError(
            f"no management API credentials for {host}: give --username (password from {ENV_PASSWORD}, "
            f"~/.netrc or the prompt), --token / {ENV_TOKEN}, --token-command, a ~/.netrc entry, or --no-api"
        )
    return settings


def complete_secrets(settings: RunSettings, prompt: Callable[[str], str] | None) -> RunSettings:
    """Fill the missing secret through `prompt` (the CLI's, only on a terminal); without one, a UsageError."""
    while (missing := settings.missing_secret()) is not None:
        if prompt is None:
            raise UsageError(
                f"the {missing} is needed but standard input is not a terminal, so nothing prompts: "
                + (f"set {ENV_PASSWORD} or add a ~/.netrc entry" if missing == "password"
                   else "drop --sudo-password-prompt and allow passwordless sudo for tcpdump")
            )
        value = prompt(missing)
        if missing == "password":
            settings = settings.with_secrets(password=value)
        else:
            settings = settings.with_secrets(sudo_password=value)
    return settings


def default_config_path(environ: Mapping[str, str], home: Path) -> Path | None:
    """The first of ~/.config/apigee-collector/config.{yaml,yml,toml} that exists
    (XDG_CONFIG_HOME honoured)."""
    base = Path(environ["XDG_CONFIG_HOME"]) if environ.get("XDG_CONFIG_HOME") else home / ".config"
    for name in CONFIG_NAMES:
        candidate = base / "apigee-collector" / name
        if candidate.is_file():
            return candidate
    return None


def parse_backend(text: str) -> Backend:
    """`HOST:PORT` or `[IPv6]:PORT` → Backend; a UsageError naming `--backend` otherwise."""
    return _parse_backend(text)


def _read_config(
    path: Path | None, environ: Mapping[str, str], home: Path
) -> tuple[dict[str, Any], Path | None]:
    if path is None:
        path = default_config_path(environ, home)
        if path is None:
            return {}, None
    elif not path.is_file():
        raise InputError(path, "config file not found (--config)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, f"cannot read the config file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(path, f"the config file is not UTF-8 text (byte {exc.start})") from exc
    try:
        data = _load_toml(path, text) if path.suffix == ".toml" else yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML: {exc}") from exc
    if data is None:
        return {}, path
    if not isinstance(data, dict):
        raise InputError(path, "the config file must be a mapping of setting: value")
    config: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        if key in _SECRET_KEYS:
            raise InputError(path, f"'{raw_key}' may not be in a config file: use the environment, "
                                   "~/.netrc, --token-command or the prompt for secrets")
        if key == "backend":
            key = "backends"
        if key not in _CONFIG_KEYS:
            raise InputError(path, f"unknown setting '{raw_key}' (known: {', '.join(sorted(_CONFIG_KEYS))})")
        if key == "backends" and isinstance(value, str):
            value = [value]
        config[key] = value
    return config, path


def _load_toml(path: Path, text: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"not valid TOML: {exc}") from exc


def _check_name(flag: str, value: str) -> None:
    if not _EDGE_NAME.match(value) or value in (".", ".."):
        raise UsageError(f"{flag} {value!r}: an Edge name is letters, digits, '.', '_', '-' or '%' "
                         "(at most 255)")


def _check_mgmt_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--mgmt-url {value!r}: give an http(s) URL such as {DEFAULT_MGMT_URL}")
    if parts.username or parts.password:
        raise UsageError("--mgmt-url must not carry credentials: "
                         "use --username with APIGEE_PASSWORD or ~/.netrc")
    return value.rstrip("/")


def _check_url(flag: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{flag} {value!r}: give an http(s) URL")
    return value


def _parse_reproduce(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    try:
        argv = tuple(value) if isinstance(value, (list, tuple)) else tuple(shlex.split(str(value)))
    except ValueError as exc:
        raise UsageError(f"--reproduce: cannot split the command ({exc}); quote it as one argument") from exc
    if not argv or Path(argv[0]).name != "curl":
        # The command runs without a shell; only curl is accepted so a typo cannot run something else.
        raise UsageError("--reproduce takes a curl command, "
                         "e.g. --reproduce 'curl -sk https://api.example.com/v1/x'")
    if any(arg in ("|", ";", "&&", "||", ">", "<") for arg in argv):
        raise UsageError("--reproduce runs curl directly, without a shell: "
                         "remove pipes, redirections and ';'")
    return argv


def _parse_token_command(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    try:
        argv = tuple(value) if isinstance(value, (list, tuple)) else tuple(shlex.split(str(value)))
    except ValueError as exc:
        raise UsageError(f"--token-command: cannot split the command ({exc})") from exc
    if not argv:
        raise UsageError("--token-command is empty")
    return tuple(str(a) for a in argv)


def _parse_backend(text: str) -> Backend:
    text = text.strip()
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)", text) or re.fullmatch(r"([^:\[\]]+):(\d+)", text)
    if not match:
        raise UsageError(f"--backend {text!r}: give HOST:PORT (or [IPv6]:PORT)")
    host, port = match.group(1), int(match.group(2))
    if not 1 <= port <= 65535:
        raise UsageError(f"--backend {text!r}: port {port} is not between 1 and 65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host):
            raise UsageError(f"--backend {text!r}: {host!r} is not a host name or IP address") from None
    return Backend(host, port)


def _check_seconds(flag: str, value: Any, most: int) -> int:
    # a config file's `true` or `2.5` is not a number of seconds, though int() would make 1 and 2 of them
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise UsageError(f"{flag} {value!r}: give a whole number of seconds")
    try:
        seconds = int(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{flag} {value!r}: give a whole number of seconds") from exc
    if not 1 <= seconds <= most:
        raise UsageError(f"{flag} {seconds}: give 1 to {most} seconds")
    return seconds


def _expand(value: Any, home: Path) -> Path | None:
    if value is None or value == "":
        return None
    text = str(value)
    if text == "~" or text.startswith("~/"):
        return home / text[2:]
    return Path(text)


def _existing_file(flag: str, value: Any, home: Path) -> Path | None:
    path = _expand(value, home)
    if path is not None and not path.is_file():
        raise InputError(path, f"not found ({flag})")
    return path


def _credentials_from_netrc(
    mgmt_url: str, username: str | None, password: str | None, environ: Mapping[str, str], home: Path
) -> tuple[str | None, str | None]:
    """Fill the login and/or password from ~/.netrc (or $NETRC) for the management API host."""
    if username and password:
        return username, password
    path = Path(environ["NETRC"]) if environ.get("NETRC") else home / ".netrc"
    if not path.is_file():
        return username, password
    try:
        entry = netrc.netrc(str(path)).authenticators(urlsplit(mgmt_url).hostname or "")
    except (netrc.NetrcParseError, OSError) as exc:
        raise InputError(path, f"cannot read ~/.netrc: {exc}") from exc
    if entry is None:
        return username, password
    login, _account, secret = entry
    if username and login and login != username:
        return username, password  # a different account: do not mix credentials
    return (username or login or None), (password or secret or None)

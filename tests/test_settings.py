"""Run settings: precedence flags > environment > config file, validation naming the flag, secrets
kept apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.errors import InputError, UsageError
from collector.settings import (
    DEFAULT_MGMT_URL,
    Backend,
    RunSettings,
    complete_secrets,
    load_settings,
    parse_backend,
)

BASE = {"org": "lab-org", "env": "test", "proxy": "mtls-proxy", "token": "tok-SECRET-1"}


def _load(tmp_path: Path, flags: dict, environ: dict | None = None, config: str | None = None,
          name: str = "config.yaml") -> RunSettings:
    path = None
    if config is not None:
        path = tmp_path / name
        path.write_bytes(config.encode("utf-8", "surrogateescape"))
    return load_settings(flags, environ or {}, config_path=path, home=tmp_path)


def test_defaults(tmp_path: Path) -> None:
    # Given only the required names and a token, When loaded, Then DESIGN's defaults apply.
    s = _load(tmp_path, BASE)
    assert s.mgmt_url == DEFAULT_MGMT_URL
    assert s.trace is True and s.probe is None and s.capture_seconds == 30 and s.api_timeout == 30
    assert s.auth_kind() == "token" and s.missing_secret() is None


@pytest.mark.parametrize(
    "flags, environ, config, expected",
    [
        ({"mgmt_url": "http://flag:1"}, {"APIGEE_MGMT_URL": "http://env:2"}, "mgmt_url: http://file:3", "http://flag:1"),
        ({}, {"APIGEE_MGMT_URL": "http://env:2"}, "mgmt_url: http://file:3", "http://env:2"),
        ({}, {}, "mgmt-url: http://file:3/", "http://file:3"),
        ({}, {}, None, DEFAULT_MGMT_URL),
    ],
    ids=["flag-wins", "env-over-file", "file", "default"],
)
def test_precedence(tmp_path: Path, flags: dict, environ: dict, config: str | None, expected: str) -> None:
    # Given the same setting from several sources, When loaded, Then flag > env > config file > default.
    s = _load(tmp_path, {**BASE, **flags}, environ, config)
    assert s.mgmt_url == expected


def test_default_config_file_is_read(tmp_path: Path) -> None:
    # Given ~/.config/apigee-collector/config.yaml, When no --config is given, Then it is read.
    cfg = tmp_path / ".config" / "apigee-collector" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("capture-seconds: 7\nbackend: backend.example.com:8443\n")
    s = load_settings(BASE, {}, home=tmp_path)
    assert s.capture_seconds == 7 and s.backends == (Backend("backend.example.com", 8443),)
    assert s.config_file == cfg


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"org": "bad/org"}, "--org 'bad/org'"),
        ({"env": "../x"}, "--env '../x'"),
        ({"proxy": "a b"}, "--proxy 'a b'"),
        ({"org": None}, "--org is required"),
        ({"mgmt_url": "ftp://x"}, "--mgmt-url 'ftp://x'"),
        ({"mgmt_url": "https://u:p@x"}, "--mgmt-url must not carry credentials"),
        ({"backends": ["nohost"]}, "--backend 'nohost'"),
        ({"backends": ["h:70000"]}, "port 70000"),
        ({"backends": ["bad_host!:1"]}, "is not a host name"),
        ({"capture_seconds": 0}, "--capture-seconds 0"),
        ({"capture_seconds": "x"}, "--capture-seconds 'x'"),
        ({"api_timeout": 0}, "--api-timeout 0: give 1 to 600 seconds"),
        ({"api_timeout": 601}, "--api-timeout 601"),
        ({"api_timeout": "soon"}, "--api-timeout 'soon'"),
        ({"api_timeout": True}, "--api-timeout True: give a whole number"),
        ({"capture_seconds": 2.5}, "--capture-seconds 2.5: give a whole number"),
        ({"reproduce": "wget http://x"}, "--reproduce takes a curl command"),
        ({"reproduce": "curl http://x | sh"}, "without a shell"),
        ({"reproduce": "curl 'unterminated"}, "cannot split"),
        ({"reproduce": "curl http://x", "url": "http://y"}, "alternatives"),
        ({"url": "file:///etc/passwd"}, "--url 'file:///etc/passwd'"),
        ({"case": "x/y"}, "--case 'x/y'"),
        ({"no_api": True}, "--no-api needs --backend"),
        ({"token": None}, "no management API credentials"),
    ],
)
def test_bad_settings_name_the_flag(tmp_path: Path, flags: dict, message: str) -> None:
    # Given one bad value, When loaded, Then a UsageError (exit 2) names the flag and the defect.
    with pytest.raises(UsageError) as err:
        _load(tmp_path, {**BASE, **flags})
    assert message in str(err.value)
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    "config, message",
    [
        ("password: hunter2", "'password' may not be in a config file"),
        ("token: abc", "'token' may not be in a config file"),
        ("colour: red", "unknown setting 'colour'"),
        ("- a\n- b", "must be a mapping"),
        ("a: [", "not valid YAML"),
        ("\udcff: x", "not UTF-8"),
    ],
)
def test_bad_config_file(tmp_path: Path, config: str, message: str) -> None:
    # Given a config file with one defect, When loaded, Then an InputError names the file and the defect.
    with pytest.raises(InputError) as err:
        _load(tmp_path, BASE, config=config)
    assert message in str(err.value) and "config.yaml" in str(err.value)


def test_missing_config_and_inventory_files(tmp_path: Path) -> None:
    # Given paths that do not exist, When loaded, Then InputError names the file.
    with pytest.raises(InputError, match="config file not found"):
        load_settings(BASE, {}, config_path=tmp_path / "nope.yaml", home=tmp_path)
    with pytest.raises(InputError, match=r"not found \(--inventory\)"):
        _load(tmp_path, {**BASE, "inventory": str(tmp_path / "inv.yaml")})


def test_toml_config(tmp_path: Path) -> None:
    # Given a TOML config file (tomllib, or tomli on Python 3.10), When loaded, Then its settings apply.
    config = "capture-seconds = 9\ntrace = false\napi-timeout = 90\n"
    s = _load(tmp_path, BASE, config=config, name="config.toml")
    assert s.capture_seconds == 9 and s.trace is False and s.api_timeout == 90


def test_invalid_toml_config_names_the_file(tmp_path: Path) -> None:
    # Given a config.toml that is not TOML, When loaded, Then InputError names that file and says so.
    with pytest.raises(InputError, match="not valid TOML") as raised:
        _load(tmp_path, BASE, config="capture-seconds = = 9\n", name="config.toml")
    assert raised.value.file == str(tmp_path / "config.toml")


def test_password_from_environment_and_netrc(tmp_path: Path) -> None:
    # Given --username and APIGEE_PASSWORD, Then basic auth; given only ~/.netrc for the host, Then its login.
    flags = {**BASE, "token": None, "mgmt_url": "http://127.0.0.1:9999"}
    s = _load(tmp_path, {**flags, "username": "ops"}, {"APIGEE_PASSWORD": "pw-SECRET"})
    assert s.auth_kind() == "basic" and s.secrets.password == "pw-SECRET"
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login netrc-user password netrc-SECRET\n")
    s = _load(tmp_path, flags)
    assert (s.username, s.secrets.password) == ("netrc-user", "netrc-SECRET")
    # A different user on the command line does not borrow the netrc password.
    s = _load(tmp_path, {**flags, "username": "other"})
    assert s.secrets.password is None and s.missing_secret() == "password"


def test_missing_password_prompts_only_through_the_given_prompt(tmp_path: Path) -> None:
    # Given a username without a password, When no prompt is available, Then UsageError; with one, it is used.
    s = _load(tmp_path, {**BASE, "token": None, "username": "ops"})
    with pytest.raises(UsageError, match="not a terminal"):
        complete_secrets(s, None)
    done = complete_secrets(s, lambda what: f"typed-{what}")
    assert done.secrets.password == "typed-password" and done.missing_secret() is None


def test_sudo_password_prompt(tmp_path: Path) -> None:
    # Given --sudo-password-prompt, When completed, Then the sudo password is asked and only flagged in
    # the manifest.
    s = _load(tmp_path, {**BASE, "sudo_password_prompt": True})
    assert s.missing_secret() == "sudo password"
    done = complete_secrets(s, lambda what: "sudo-SECRET")
    assert done.to_manifest()["sudo_password"] is True


def test_manifest_and_repr_never_hold_secrets(tmp_path: Path) -> None:
    # Given every kind of secret, When serialised or printed, Then none appears.
    s = _load(
        tmp_path,
        {**BASE, "username": "ops", "token_command": "get-token --password cmd-SECRET",
         "reproduce": "curl -u ops:curl-SECRET https://x/y", "sudo_password_prompt": True},
        {"APIGEE_PASSWORD": "pw-SECRET"},
    ).with_secrets(sudo_password="sudo-SECRET")
    text = json.dumps(s.to_manifest()) + repr(s) + repr(s.secrets)
    for secret in ("tok-SECRET-1", "pw-SECRET", "cmd-SECRET", "curl-SECRET", "sudo-SECRET"):
        assert secret not in text
    assert s.to_manifest()["reproduction"] == "curl"


@pytest.mark.parametrize(
    "text, expected",
    [("backend.example.com:443", Backend("backend.example.com", 443)),
     ("127.0.0.21:8443", Backend("127.0.0.21", 8443)),
     ("[::1]:8443", Backend("::1", 8443))],
)
def test_parse_backend(text: str, expected: Backend) -> None:
    # Given HOST:PORT forms, When parsed, Then host and port come out (IPv6 in brackets).
    assert parse_backend(text) == expected
    assert str(parse_backend(text)) == text


def test_no_api_names_default(tmp_path: Path) -> None:
    # Given --no-api without org/env/proxy, When loaded, Then placeholders name the bundle and no auth
    # is needed.
    s = _load(tmp_path, {"no_api": True, "backends": ["127.0.0.1:8443"]})
    assert (s.org, s.env, s.proxy) == ("no-org", "no-env", "no-proxy") and s.auth_kind() is None


def test_reproduce_is_an_argv(tmp_path: Path) -> None:
    # Given a curl command with quotes, When loaded, Then it is split like a shell would, without a shell.
    s = _load(tmp_path, {**BASE, "reproduce": "curl -sk -H 'X-Test: a b' https://x/y"})
    assert s.reproduce == ("curl", "-sk", "-H", "X-Test: a b", "https://x/y")

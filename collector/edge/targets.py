"""TargetEndpoint XML and target server documents: where the MP connects and with which SSLInfo."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from collector.errors import InputError

DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class SslInfo:
    """An `<SSLInfo>` element or a target server's `sSLInfo` object (string and real booleans accepted).

    Attributes:
        keystore / truststore: a store name or ``ref://NAME`` as written; None when absent.
        key_alias: the `KeyAlias` (never a reference); None when absent.
        protocols / ciphers: `<Protocols>` and `<Ciphers>` as written (JSSE names); () when absent, and the
            message processor then offers its JVM's defaults.
        common_name: the `<CommonName>` the backend certificate must hold, None when absent (Edge then checks
            no name of its own). common_name_wildcard: its `wildcardMatch`.
    """

    enabled: bool
    client_auth_enabled: bool
    keystore: str | None = None
    key_alias: str | None = None
    truststore: str | None = None
    ignore_validation_errors: bool = False
    protocols: tuple[str, ...] = ()
    ciphers: tuple[str, ...] = ()
    common_name: str | None = None
    common_name_wildcard: bool = False


@dataclass(frozen=True)
class TargetEndpoint:
    """One `apiproxy/targets/NAME.xml`: a direct `<URL>` or `<LoadBalancer><Server name=…>` entries.

    Attributes:
        url: the `<URL>` text, None in the target-server form.
        servers: target server names from `<LoadBalancer>`, () in the URL form.
        ssl: the inline `<SSLInfo>`, None when absent (the target-server form takes TLS from the server).
    """

    name: str
    url: str | None
    servers: tuple[str, ...] = ()
    ssl: SslInfo | None = None


@dataclass(frozen=True)
class TargetServer:
    """`GET …/targetservers/{name}` (the JSON key is `sSLInfo`, exact case); ``port`` None when absent."""

    name: str
    host: str
    port: int | None
    enabled: bool = True
    ssl: SslInfo | None = None


def parse_bool(value: object, default: bool = False) -> bool:
    """Edge writes booleans as ``"true"`` strings or real booleans; anything else is `default`."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return default


def split_url(url: str) -> tuple[str, str | None, int | None]:
    """(scheme, host, port) of a target URL; host is None when it holds a flow variable (``{…}``)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return "", None, None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if not host or "{" in url.split("//", 1)[-1].split("/", 1)[0]:
        return scheme, None, None
    return scheme, host, port if port is not None else DEFAULT_PORTS.get(scheme)


def parse_target_endpoint(data: bytes, name: str, *, source: str) -> TargetEndpoint:
    """Parse one TargetEndpoint XML; InputError (naming `source`) when it is not usable XML."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InputError(source, "TargetEndpoint XML with a DTD or entities is refused")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise InputError(source, f"not well-formed XML: {exc}") from exc
    connection = root.find("HTTPTargetConnection")
    if connection is None:
        # LocalTargetConnection (proxy chaining) or a hosted target: no TLS to a backend.
        return TargetEndpoint(root.get("name") or name, None)
    url = _text(connection.find("URL"))
    servers = tuple(s.get("name", "") for s in connection.findall("LoadBalancer/Server") if s.get("name"))
    element = connection.find("SSLInfo")
    return TargetEndpoint(
        root.get("name") or name, url, servers, _ssl_from_xml(element) if element is not None else None
    )


def parse_target_server(data: Any) -> TargetServer:
    """Parse a target server document; ValueError names the missing field."""
    if not isinstance(data, dict):
        raise ValueError("target server document is not a JSON object")
    name, host = data.get("name"), data.get("host")
    if not isinstance(name, str) or not isinstance(host, str) or not host:
        raise ValueError("target server document needs 'name' and 'host'")
    port = data.get("port")
    port = int(port) if isinstance(port, (int, str)) and str(port).strip().isdigit() else None
    ssl = data.get("sSLInfo", data.get("SSLInfo"))
    return TargetServer(
        name,
        host,
        port,
        parse_bool(data.get("isEnabled"), True),
        _ssl_from_json(ssl) if isinstance(ssl, dict) else None,
    )


def _text(element: ElementTree.Element | None) -> str | None:
    if element is None or element.text is None or not element.text.strip():
        return None
    return element.text.strip()


def _ssl_from_xml(element: ElementTree.Element) -> SslInfo:
    common_name = element.find("CommonName")
    return SslInfo(
        enabled=parse_bool(_text(element.find("Enabled"))),
        client_auth_enabled=parse_bool(_text(element.find("ClientAuthEnabled"))),
        keystore=_text(element.find("KeyStore")),
        key_alias=_text(element.find("KeyAlias")),
        truststore=_text(element.find("TrustStore")),
        ignore_validation_errors=parse_bool(_text(element.find("IgnoreValidationErrors"))),
        protocols=tuple(t for t in (_text(p) for p in element.findall("Protocols/Protocol")) if t),
        ciphers=tuple(t for t in (_text(c) for c in element.findall("Ciphers/Cipher")) if t),
        common_name=_text(common_name),
        common_name_wildcard=common_name is not None and parse_bool(common_name.get("wildcardMatch")),
    )


def _ssl_from_json(data: dict[str, Any]) -> SslInfo:
    def text(key: str) -> str | None:
        value = data.get(key)
        return value.strip() if isinstance(value, str) and value.strip() else None

    def names(key: str) -> tuple[str, ...]:
        value = data.get(key)
        return tuple(str(v) for v in value) if isinstance(value, list) else ()

    # `commonName` is an object ({"value", "wildcardMatch"}); a plain string is read as its value.
    common_name = data.get("commonName")
    if isinstance(common_name, dict):
        name, wildcard = common_name.get("value"), parse_bool(common_name.get("wildcardMatch"))
    else:
        name, wildcard = common_name, False

    return SslInfo(
        enabled=parse_bool(data.get("enabled")),
        client_auth_enabled=parse_bool(data.get("clientAuthEnabled")),
        keystore=text("keyStore"),
        key_alias=text("keyAlias"),
        truststore=text("trustStore"),
        ignore_validation_errors=parse_bool(data.get("ignoreValidationErrors")),
        protocols=names("protocols"),
        ciphers=names("ciphers"),
        common_name=name.strip() if isinstance(name, str) and name.strip() else None,
        common_name_wildcard=wildcard,
    )

"""The Apigee Edge management API emulator: a real HTTP server that answers every call `collect` makes.

It serves the shapes of /work/shared/reference/edge-api.md (deployments at env and org level, `/v1/servers`,
the proxy revision bundle zip built on the fly, target servers with `sSLInfo`, references, keystores, aliases,
certs computed from real PEMs, debug sessions fed by the MP simulator's transactions file) and enforces
Basic and Bearer auth. Tests inject faults per path prefix (`fail`, `reset`, `delay`, `invalid_json`); it
is test infrastructure, not a mock of our client.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import io
import json
import socket
import struct
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

MAX_TRACE_TRANSACTIONS = 20  # Edge keeps at most 20 messages per debug session


@dataclass(frozen=True)
class EmulatorConfig:
    """What the emulated Edge org holds.

    Attributes:
        org / env / proxy / revision: the one deployed proxy revision.
        username / password: the Basic-auth user with rights; token: the accepted Bearer token.
        message_processors: (uuid, internal IP) of each MP the revision is deployed to.
        backend_host / backend_port: the target URL's host and port (or the target server's).
        target_style: ``"url"`` (`<URL>` + inline `<SSLInfo>`) or ``"target-server"`` (`<LoadBalancer>`).
        keystore / key_alias / keystore_reference: the MP keystore, its alias and the reference naming it
            (an empty reference makes SSLInfo name the keystore literally).
        truststore / truststore_reference: the same for the truststore.
        keystore_entries: (alias, PEM certs of the chain leaf first, has_key); empty = an empty keystore.
        truststore_certs: (name, PEM) trusted certificates.
        transactions_file: JSON lines written by the MP simulator (may not exist yet).
        forbidden_username / forbidden_password: a user that authenticates but has no rights (403); the
            password defaults to `password`.
        target_server_name: the target server's name in target-server style.
        client_auth_enabled: the `ClientAuthEnabled` value written into SSLInfo / sSLInfo.
        protocols / ciphers: SSLInfo `<Protocols>` / `<Ciphers>` (sSLInfo `protocols` / `ciphers`);
            () = absent.
        common_name: SSLInfo `<CommonName>` (sSLInfo `commonName`), ``None`` = absent.
        router_uuid: a router also listed in deployments and `/v1/servers` (our client must skip it).
        proxy_bundle: served instead of the generated proxy bundle zip (hostile bundles); ``None``: generated.
        extra_fields: added to every JSON object answered with 200 (e.g. secrets seeded into API documents).
    """

    org: str
    env: str
    proxy: str
    revision: str
    username: str
    password: str
    token: str
    message_processors: list[tuple[str, str]]
    backend_host: str
    backend_port: int
    target_style: str
    keystore: str
    key_alias: str
    keystore_reference: str
    truststore: str
    truststore_reference: str
    keystore_entries: list[tuple[str, list[str], bool]]
    truststore_certs: list[tuple[str, str]]
    transactions_file: Path
    address: str = "127.0.0.1"
    port: int = 0
    forbidden_username: str | None = None
    forbidden_password: str | None = None
    target_server_name: str = "backend-ts"
    client_auth_enabled: bool = True
    protocols: tuple[str, ...] = ()
    ciphers: tuple[str, ...] = ()
    common_name: str | None = None
    router_uuid: str = "0b6c2f5e-7a31-4c9e-9d1a-2f4b8e6c1d10"
    management_server_uuid: str = "13cee956-d3a7-4577-8f0f-1694564179e4"
    proxy_bundle: bytes | None = None
    extra_fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Fault:
    prefix: str
    kind: str  # "status", "reset", "delay", "invalid_json", "oversize", "endless", "trickle", "redirect"
    status: int = 500
    seconds: float = 0.0
    times: int | None = None  # None = forever
    size: int = 0  # oversize: bytes of the body
    location: str = ""  # redirect: the Location header


@dataclass
class _Session:
    name: str
    revision: str
    timeout: int
    created_ms: int
    file_offset: int
    transaction_ids: list[str] = field(default_factory=list)


class _NotFound(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Reply:
    def __init__(self, status: int, body: bytes, content_type: str, *, headers: dict[str, str] | None = None,
                 shape: str = "whole", size: int = 0, interval: float = 0.0) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}
        # how the body goes out (test-only faults): "whole"; "oversize" (`size` bytes, Content-Length said);
        # "endless" (chunked, never ends); "trickle" (one byte every `interval` seconds)
        self.shape = shape
        self.size = size
        self.interval = interval


class Emulator:
    """A running emulator; `url` is the base URL without `/v1`. Use as a context manager or call `stop()`."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._sessions: dict[str, _Session] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path with query) in arrival order
        self.authorizations: list[str] = []  # "basic:<user>", "bearer", "none", "bad" per request
        handler = _handler_class(self)
        self._server = ThreadingHTTPServer((config.address, config.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="edge-emulator",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reconfigure(self, config: EmulatorConfig) -> None:
        """Serve another org state from now on (the lab switching scenarios); sessions and faults stay."""
        if (config.address, config.port) != (self.config.address, self.config.port) and config.port:
            raise ValueError("the emulator cannot move to another address or port")
        self.config = dataclasses.replace(config, address=self.config.address, port=self.config.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- fault injection -------------------------------------------------------------------------------------
    def fail(self, path_prefix: str, status: int, times: int | None = 1) -> None:
        """Answer `status` (an Edge-style JSON error) to the next `times` requests (None: always)."""
        self._add(_Fault(path_prefix, "status", status=status, times=times))

    def reset(self, path_prefix: str, times: int | None = 1) -> None:
        """Close the connection without any answer (a connection reset) for the next `times` requests."""
        self._add(_Fault(path_prefix, "reset", times=times))

    def delay(self, path_prefix: str, seconds: float, times: int | None = None) -> None:
        """Wait `seconds` before answering requests under `path_prefix`."""
        self._add(_Fault(path_prefix, "delay", seconds=seconds, times=times))

    def invalid_json(self, path_prefix: str, times: int | None = None) -> None:
        """Answer 200 with a body that is not JSON (as a login page or a broken proxy would)."""
        self._add(_Fault(path_prefix, "invalid_json", times=times))

    def oversize(self, path_prefix: str, size: int, times: int | None = None) -> None:
        """Answer 200 with a `size`-byte JSON-looking body (announced in Content-Length), in blocks."""
        self._add(_Fault(path_prefix, "oversize", size=size, times=times))

    def endless(self, path_prefix: str, times: int | None = None) -> None:
        """Answer 200 with a chunked body that never ends (until the client hangs up)."""
        self._add(_Fault(path_prefix, "endless", times=times))

    def trickle(self, path_prefix: str, interval: float, times: int | None = None) -> None:
        """Answer 200, then send the body a byte every `interval` seconds (each read succeeds, none ends)."""
        self._add(_Fault(path_prefix, "trickle", seconds=interval, times=times))

    def redirect(self, path_prefix: str, location: str, status: int = 302, times: int | None = None) -> None:
        """Answer a redirect to `location` (a login page in front of the management API)."""
        self._add(_Fault(path_prefix, "redirect", status=status, location=location, times=times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def requests_to(self, path_prefix: str) -> list[tuple[str, str]]:
        """The requests received so far whose path starts with `path_prefix`."""
        with self._lock:
            return [r for r in self.requests if r[1].startswith(path_prefix)]

    def sessions(self) -> list[str]:
        """Names of the debug sessions that exist now (deleted ones are gone)."""
        with self._lock:
            return list(self._sessions)

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_faults(self, path: str) -> list[_Fault]:
        """Every matching delay, then at most one answering fault: the one with the longest prefix, so a fault
        on `/v1/organizations/o` does not fire for a more specific path that has its own fault."""
        with self._lock:
            matching = [f for f in self._faults if path.startswith(f.prefix)]
            delays = [f for f in matching if f.kind == "delay"]
            answers = sorted((f for f in matching if f.kind != "delay"), key=lambda f: -len(f.prefix))
            taken = delays + answers[:1]
            for fault in taken:
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
        return taken

    # -- auth ------------------------------------------------------------------------------------------------
    def _authorize(self, header: str | None) -> tuple[int, str]:
        """(0 | 401 | 403, who) for an Authorization header value."""
        cfg = self.config
        if not header:
            return 401, "none"
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return (0, "bearer") if hmac.compare_digest(value.strip(), cfg.token) else (401, "bad")
        if scheme.lower() == "basic":
            try:
                user, _, password = (
                    base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
                )
            except ValueError:
                return 401, "bad"
            if user == cfg.username and hmac.compare_digest(password, cfg.password):
                return 0, f"basic:{user}"
            forbidden_password = (
                cfg.forbidden_password if cfg.forbidden_password is not None else cfg.password
            )
            if cfg.forbidden_username and user == cfg.forbidden_username and password == forbidden_password:
                return 403, f"basic:{user}"
        return 401, "bad"

    # -- routing ---------------------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str]) -> _Reply | None:
        """The reply to one request; None means: drop the connection."""
        split = urlsplit(raw_path)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        status, who = self._authorize(headers.get("authorization"))
        with self._lock:
            self.requests.append((method, raw_path))
            self.authorizations.append(who)
        for fault in self._take_faults(path):
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind == "reset":
                return None
            elif fault.kind == "status":
                return _error(
                    fault.status, "messaging.runtime.InjectedFault", f"injected HTTP {fault.status}"
                )
            elif fault.kind == "invalid_json":
                return _Reply(200, b"<html><body>Please log in</body></html>", "text/html")
            elif fault.kind in ("oversize", "endless", "trickle"):
                return _Reply(200, b"", "application/json", shape=fault.kind, size=fault.size,
                              interval=fault.seconds)
            elif fault.kind == "redirect":
                return _Reply(fault.status, b"", "text/html", headers={"Location": fault.location})
        if status == 401:
            return _error(401, "security.class.unauthorized", "Unauthorized: bad or missing credentials")
        if status == 403:
            return _error(403, "security.class.forbidden", f"{who} is not allowed to access {path}")
        segments = [unquote(s) for s in path.split("/") if s]
        try:
            reply = self._route(method, _expand_shorthand(segments), query)
        except _NotFound as missing:
            return _error(404, missing.code, missing.message)
        return self._with_extra_fields(reply)

    def _with_extra_fields(self, reply: _Reply) -> _Reply:
        if not self.config.extra_fields or reply.status != 200 or reply.content_type != "application/json":
            return reply
        document = json.loads(reply.body)
        if not isinstance(document, dict):
            return reply
        return _json({**document, **self.config.extra_fields})

    def _route(self, method: str, seg: list[str], query: dict[str, str]) -> _Reply:
        cfg = self.config
        if seg[:1] != ["v1"]:
            raise _NotFound("messaging.runtime.UnknownResource", "Unknown resource")
        seg = seg[1:]
        if seg == ["servers"] and method == "GET":
            return _json(self._servers(query.get("pod")))
        if len(seg) < 2 or seg[0] != "organizations":
            raise _NotFound("messaging.runtime.UnknownResource", "Unknown resource")
        if seg[1] != cfg.org:
            raise _NotFound(
                "organizations.OrganizationDoesNotExist", f"Organization : {seg[1]} does not exist"
            )
        rest = seg[2:]
        if not rest:
            return _json({"name": cfg.org, "environments": [cfg.env], "type": "paid"})
        if rest[0] == "apis":
            return self._org_apis(method, rest[1:], query)
        if rest[0] == "environments" and len(rest) >= 2:
            if rest[1] != cfg.env:
                raise _NotFound(
                    "messaging.config.beans.EnvironmentDoesNotExist",
                    f"Environment {rest[1]} does not exist in organization {cfg.org}",
                )
            return self._env(method, rest[2:], query)
        raise _NotFound("messaging.runtime.UnknownResource", "Unknown resource")

    def _org_apis(self, method: str, rest: list[str], query: dict[str, str]) -> _Reply:
        cfg = self.config
        if not rest:
            return _json([cfg.proxy])
        self._check_proxy(rest[0])
        rest = rest[1:]
        if not rest:
            return _json(
                {
                    "name": cfg.proxy,
                    "revision": [cfg.revision],
                    "metaData": {"createdAt": 1700000000000, "createdBy": cfg.username},
                }
            )
        if rest == ["deployments"]:
            return _json(
                {
                    "environment": [{"name": cfg.env, "revision": [self._deployed_revision()]}],
                    "name": cfg.proxy,
                    "organization": cfg.org,
                }
            )
        if rest[0] == "revisions":
            if len(rest) == 1:
                return _json([cfg.revision])
            self._check_revision(rest[1])
            if len(rest) == 2:
                if query.get("format") == "bundle":
                    bundle = cfg.proxy_bundle if cfg.proxy_bundle is not None else self._bundle_zip()
                    return _Reply(200, bundle, "application/octet-stream")
                return _json(self._revision_document())
            if rest[2:] == ["deployments"]:
                return _json(
                    {
                        "aPIProxy": cfg.proxy,
                        "environment": [
                            {
                                "configuration": {
                                    "basePath": "/",
                                    "configVersion": "SHA-512:0f3c",
                                    "steps": [],
                                },
                                "name": cfg.env,
                                "server": self._deployment_servers(),
                                "state": "deployed",
                            }
                        ],
                        "name": cfg.revision,
                        "organization": cfg.org,
                    }
                )
        raise _NotFound("messaging.runtime.UnknownResource", "Unknown resource")

    def _env(self, method: str, rest: list[str], query: dict[str, str]) -> _Reply:
        cfg = self.config
        if not rest:
            return _json({"name": cfg.env, "properties": {"property": []}})
        kind, tail = rest[0], rest[1:]
        if kind == "apis" and tail:
            self._check_proxy(tail[0])
            tail = tail[1:]
            if tail == ["deployments"]:
                return _json(
                    {
                        "environment": cfg.env,
                        "name": cfg.proxy,
                        "organization": cfg.org,
                        "revision": [self._deployed_revision()],
                    }
                )
            if len(tail) >= 2 and tail[0] == "revisions":
                self._check_revision(tail[1])
                if tail[2:] == ["deployments"]:
                    return _json(
                        {
                            "aPIProxy": cfg.proxy,
                            "configuration": {"basePath": "/", "steps": []},
                            "environment": cfg.env,
                            "name": cfg.revision,
                            "organization": cfg.org,
                            "revision": cfg.revision,
                            "server": self._deployment_servers(),
                            "state": "deployed",
                        }
                    )
                if len(tail) >= 3 and tail[2] == "debugsessions":
                    return self._debugsessions(method, tail[1], tail[3:], query)
        if kind == "targetservers":
            return self._targetservers(tail)
        if kind == "references":
            return self._references(tail)
        if kind == "keystores":
            return self._keystores(tail)
        raise _NotFound("messaging.runtime.UnknownResource", "Unknown resource")

    def _check_proxy(self, name: str) -> None:
        if name != self.config.proxy:
            raise _NotFound(
                "messaging.config.beans.ApplicationDoesNotExist",
                f"APIProxy named {name} does not exist in organization {self.config.org}",
            )

    def _check_revision(self, revision: str) -> None:
        if revision != self.config.revision:
            raise _NotFound(
                "messaging.config.beans.ApplicationRevisionDoesNotExist",
                f"Revision {revision} for APIProxy {self.config.proxy} does not exist",
            )

    # -- deployments and servers ----------------------------------------------------------------------------
    def _deployment_servers(self) -> list[dict[str, Any]]:
        servers = [
            {
                "pod": {"name": "gateway", "region": "dc-1"},
                "status": "deployed",
                "type": ["message-processor"],
                "uUID": uuid,
            }
            for uuid, _ in self.config.message_processors
        ]
        servers.append(
            {
                "pod": {"name": "gateway", "region": "dc-1"},
                "status": "deployed",
                "type": ["router"],
                "uUID": self.config.router_uuid,
            }
        )
        return servers

    def _deployed_revision(self) -> dict[str, Any]:
        return {
            "configuration": {"basePath": "/", "steps": []},
            "name": self.config.revision,
            "server": self._deployment_servers(),
            "state": "deployed",
        }

    def _servers(self, pod: str | None) -> list[dict[str, Any]]:
        cfg = self.config
        tags = {"property": [{"name": "jmx.rmi.port", "value": "1101"}]}
        entries: list[dict[str, Any]] = [
            {
                "externalHostName": f"mp{i}",
                "externalIP": ip,
                "internalHostName": f"mp{i}",
                "internalIP": ip,
                "isUp": True,
                "pod": "gateway",
                "reachable": True,
                "region": "dc-1",
                "tags": tags,
                "type": ["message-processor"],
                "uUID": uuid,
            }
            for i, (uuid, ip) in enumerate(cfg.message_processors, start=1)
        ]
        entries.append(
            {
                "internalIP": cfg.address,
                "isUp": True,
                "pod": "gateway",
                "reachable": True,
                "region": "dc-1",
                "tags": {"property": []},
                "type": ["router"],
                "uUID": cfg.router_uuid,
            }
        )
        entries.append(
            {
                "internalIP": cfg.address,
                "isUp": True,
                "pod": "central",
                "reachable": True,
                "region": "dc-1",
                "tags": {"property": []},
                "type": [
                    "dc-datastore",
                    "management-server",
                    "cache-datastore",
                    "keyvaluemap-datastore",
                    "counter-datastore",
                    "kms-datastore",
                ],
                "uUID": cfg.management_server_uuid,
            }
        )
        return [e for e in entries if pod is None or e["pod"] == pod]

    # -- proxy revision -------------------------------------------------------------------------------------
    def _revision_document(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "configurationVersion": {"majorVersion": 4, "minorVersion": 0},
            "contextInfo": f"Revision {cfg.revision} of application {cfg.proxy}, in organization {cfg.org}",
            "createdAt": 1700000000000,
            "createdBy": cfg.username,
            "description": "",
            "displayName": cfg.proxy,
            "lastModifiedAt": 1700000000000,
            "lastModifiedBy": cfg.username,
            "name": cfg.proxy,
            "policies": [],
            "proxyEndpoints": ["default"],
            "resourceFiles": {"resourceFile": []},
            "resources": [],
            "revision": cfg.revision,
            "targetEndpoints": ["default"],
            "targetServers": [cfg.target_server_name] if cfg.target_style == "target-server" else [],
            "targets": [],
            "type": "Application",
        }

    def _ssl_values(self) -> dict[str, str]:
        cfg = self.config
        return {
            "keyStore": f"ref://{cfg.keystore_reference}" if cfg.keystore_reference else cfg.keystore,
            "trustStore": f"ref://{cfg.truststore_reference}" if cfg.truststore_reference else cfg.truststore,
            "keyAlias": cfg.key_alias,
        }

    def _target_xml(self) -> str:
        cfg = self.config
        if cfg.target_style == "target-server":
            connection = (
                f"    <LoadBalancer>\n      <Server name={quoteattr(cfg.target_server_name)}/>\n"
                "    </LoadBalancer>\n    <Path>/</Path>\n"
            )
        elif cfg.target_style == "url":
            ssl = self._ssl_values()
            connection = (
                "    <Properties/>\n    <SSLInfo>\n      <Enabled>true</Enabled>\n"
                f"      <ClientAuthEnabled>{str(cfg.client_auth_enabled).lower()}</ClientAuthEnabled>\n"
                f"      <KeyStore>{escape(ssl['keyStore'])}</KeyStore>\n"
                f"      <KeyAlias>{escape(ssl['keyAlias'])}</KeyAlias>\n"
                f"      <TrustStore>{escape(ssl['trustStore'])}</TrustStore>\n"
                "      <IgnoreValidationErrors>false</IgnoreValidationErrors>\n"
                f"{self._tls_elements_xml()}    </SSLInfo>\n"
                f"    <URL>https://{escape(cfg.backend_host)}:{cfg.backend_port}</URL>\n"
            )
        else:
            raise ValueError(f"unknown target_style {cfg.target_style!r}")
        return (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<TargetEndpoint name="default">\n'
            '  <Description/>\n  <FaultRules/>\n  <PreFlow name="PreFlow">\n    <Request/>\n    <Response/>\n'
            '  </PreFlow>\n  <PostFlow name="PostFlow">\n    <Request/>\n    <Response/>\n  </PostFlow>\n'
            f"  <Flows/>\n  <HTTPTargetConnection>\n{connection}  </HTTPTargetConnection>\n"
            "</TargetEndpoint>\n"
        )

    def _tls_elements_xml(self) -> str:
        """`<Protocols>`, `<Ciphers>` and `<CommonName>` of SSLInfo, each only when configured."""
        cfg = self.config
        xml = ""
        if cfg.protocols:
            xml += ("      <Protocols>\n" + "".join(f"        <Protocol>{escape(p)}</Protocol>\n"
                                                 for p in cfg.protocols) + "      </Protocols>\n")
        if cfg.ciphers:
            xml += ("      <Ciphers>\n" + "".join(f"        <Cipher>{escape(c)}</Cipher>\n"
                                               for c in cfg.ciphers) + "      </Ciphers>\n")
        if cfg.common_name:
            xml += f"      <CommonName>{escape(cfg.common_name)}</CommonName>\n"
        return xml

    def _bundle_zip(self) -> bytes:
        cfg = self.config
        descriptor = (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<APIProxy revision="{cfg.revision}" name={quoteattr(cfg.proxy)}>\n'
            f"  <DisplayName>{escape(cfg.proxy)}</DisplayName>\n"
            "  <ProxyEndpoints>\n    <ProxyEndpoint>default</ProxyEndpoint>\n  </ProxyEndpoints>\n"
            "  <TargetEndpoints>\n    <TargetEndpoint>default</TargetEndpoint>\n  </TargetEndpoints>\n"
            "</APIProxy>\n"
        )
        proxy_endpoint = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<ProxyEndpoint name="default">\n'
            '  <PreFlow name="PreFlow">\n    <Request/>\n    <Response/>\n  </PreFlow>\n'
            f"  <HTTPProxyConnection>\n    <BasePath>/{escape(cfg.proxy)}</BasePath>\n"
            "    <VirtualHost>secure</VirtualHost>\n  </HTTPProxyConnection>\n"
            '  <RouteRule name="default">\n    <TargetEndpoint>default</TargetEndpoint>\n'
            "  </RouteRule>\n</ProxyEndpoint>\n"
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"apiproxy/{cfg.proxy}.xml", descriptor)
            archive.writestr("apiproxy/proxies/default.xml", proxy_endpoint)
            archive.writestr("apiproxy/targets/default.xml", self._target_xml())
        return buffer.getvalue()

    # -- target servers and references ----------------------------------------------------------------------
    def _targetservers(self, tail: list[str]) -> _Reply:
        cfg = self.config
        names = [cfg.target_server_name] if cfg.target_style == "target-server" else []
        if not tail:
            return _json(names)
        if tail[0] not in names or len(tail) > 1:
            raise _NotFound(
                "messaging.config.beans.TargetServerDoesNotExist",
                f"Target server {tail[0]} does not exist in environment {cfg.env}",
            )
        ssl = self._ssl_values()
        ssl_info: dict[str, Any] = {
            "ciphers": list(cfg.ciphers),
            "clientAuthEnabled": str(cfg.client_auth_enabled).lower(),
            "enabled": "true",
            "ignoreValidationErrors": False,
            "keyAlias": ssl["keyAlias"],
            "keyStore": ssl["keyStore"],
            "protocols": list(cfg.protocols),
            "trustStore": ssl["trustStore"],
        }
        if cfg.common_name:
            # The hybrid/X TargetServer shape; Edge's is not documented (docs/edge-fault-shapes.md).
            ssl_info["commonName"] = {"value": cfg.common_name, "wildcardMatch": False}
        return _json(
            {
                "host": cfg.backend_host,
                "isEnabled": True,
                "name": cfg.target_server_name,
                "port": cfg.backend_port,
                "sSLInfo": ssl_info,
            }
        )

    def _reference_map(self) -> dict[str, tuple[str, str]]:
        cfg = self.config
        refs = {}
        if cfg.keystore_reference:
            refs[cfg.keystore_reference] = (cfg.keystore, "KeyStore")
        if cfg.truststore_reference:
            refs[cfg.truststore_reference] = (cfg.truststore, "TrustStore")
        return refs

    def _references(self, tail: list[str]) -> _Reply:
        refs = self._reference_map()
        if not tail:
            return _json(list(refs))
        if tail[0] not in refs or len(tail) > 1:
            raise _NotFound(
                "keymanagement.service.reference_doesnot_exist",
                f"Reference {tail[0]} does not exist in environment {self.config.env}",
            )
        refers, kind = refs[tail[0]]
        return _json({"name": tail[0], "refers": refers, "resourceType": kind})

    # -- keystores, aliases, certs ---------------------------------------------------------------------------
    def _stores(self) -> dict[str, list[tuple[str, list[str], bool]]]:
        cfg = self.config
        stores = {cfg.keystore: list(cfg.keystore_entries)}
        stores[cfg.truststore] = [(name, [pem], False) for name, pem in cfg.truststore_certs]
        return stores

    def _keystores(self, tail: list[str]) -> _Reply:
        cfg = self.config
        stores = self._stores()
        if not tail:
            return _json(list(stores))
        name = tail[0]
        if name not in stores:
            raise _NotFound(
                "keymanagement.service.keystore_doesnot_exist",
                f"Keystore : {name} does not exist in environment {cfg.env}",
            )
        entries = stores[name]
        tail = tail[1:]
        if not tail:
            return _json(
                {
                    "aliases": [_alias_ref(alias, has_key) for alias, _, has_key in entries],
                    "certs": [f"{alias}-cert" for alias, _, _ in entries],
                    "keys": [alias for alias, _, has_key in entries if has_key],
                    "name": name,
                }
            )
        by_alias = {alias: (pems, has_key) for alias, pems, has_key in entries}
        by_cert = {f"{alias}-cert": pems for alias, pems, _ in entries}
        if tail == ["aliases"]:
            return _json(list(by_alias))
        if tail[0] == "aliases" and len(tail) in (2, 3):
            if tail[1] not in by_alias:
                raise _NotFound(
                    "keymanagement.service.alias_doesnot_exist",
                    f"Alias {tail[1]} does not exist in keystore {name}",
                )
            pems, has_key = by_alias[tail[1]]
            if len(tail) == 3 and tail[2] == "certificate":
                return _Reply(200, "".join(pems).encode(), "application/x-pem-file")
            if len(tail) == 2:
                document: dict[str, Any] = {
                    "alias": tail[1],
                    "certsInfo": {
                        "certInfo": [cert_info(pem) for pem in pems],
                        "certName": f"{tail[1]}-cert",
                    },
                }
                if has_key:
                    document["keyName"] = f"{tail[1]}-key"
                return _json(document)
        if tail == ["certs"]:
            return _json(list(by_cert))
        if tail[0] == "certs" and len(tail) in (2, 3):
            if tail[1] not in by_cert:
                raise _NotFound(
                    "keymanagement.service.certificate_doesnot_exist",
                    f"Certificate {tail[1]} does not exist in keystore {name}",
                )
            if len(tail) == 3 and tail[2] == "export":
                return _Reply(200, "".join(by_cert[tail[1]]).encode(), "application/x-pem-file")
            if len(tail) == 2:
                return _json({"certInfo": [cert_info(pem) for pem in by_cert[tail[1]]], "certName": tail[1]})
        raise _NotFound("messaging.runtime.UnknownResource", "Unknown resource")

    # -- debug sessions --------------------------------------------------------------------------------------
    def _debugsessions(self, method: str, revision: str, tail: list[str], query: dict[str, str]) -> _Reply:
        cfg = self.config
        if not tail and method == "POST":
            name = query.get("session", "")
            if not name:
                return _error(400, "messaging.runtime.session.InvalidName", "Session name is required")
            timeout = int(query.get("timeout", "600") or 600)
            with self._lock:
                if name in self._sessions:
                    return _error(
                        409, "messaging.runtime.session.AlreadyExists", f"Session {name} already exists"
                    )
                self._sessions[name] = _Session(
                    name, revision, timeout, int(time.time() * 1000), _file_size(cfg.transactions_file)
                )
            return _json({"name": name}, status=201)
        if not tail and method == "GET":
            return _json(self.sessions())
        with self._lock:
            session = self._sessions.get(tail[0]) if tail else None
        if session is None:
            raise _NotFound(
                "messaging.runtime.session.DoesNotExist", f"Session {tail[0] if tail else ''} does not exist"
            )
        rest = tail[1:]
        if not rest and method == "DELETE":
            with self._lock:
                self._sessions.pop(session.name, None)
            return _json({"name": session.name})
        transactions = self._session_transactions(session)
        if rest == ["data"] and method == "GET":
            return _json(list(transactions))
        if len(rest) == 2 and rest[0] == "data" and method == "GET":
            if rest[1] not in transactions:
                raise _NotFound(
                    "messaging.runtime.session.TransactionDoesNotExist",
                    f"Transaction {rest[1]} does not exist in session {session.name}",
                )
            return _json(transaction_document(transactions[rest[1]]))
        raise _NotFound("messaging.runtime.UnknownResource", "Unknown resource")

    def _session_transactions(self, session: _Session) -> dict[str, dict[str, Any]]:
        cfg = self.config
        found: dict[str, dict[str, Any]] = {}
        for record in _read_transactions(cfg.transactions_file, session):
            if (record.get("org"), record.get("env"), record.get("api")) != (cfg.org, cfg.env, cfg.proxy):
                continue
            if str(record.get("rev", session.revision)) != session.revision:
                continue
            txid = hashlib.sha1(
                f"{session.name}/{record.get('message_id')}/{len(found)}".encode()
            ).hexdigest()
            found[txid] = record
            if len(found) >= MAX_TRACE_TRANSACTIONS:
                break
        return found


def start_emulator(config: EmulatorConfig) -> Emulator:
    """Start the emulator on `config.address:config.port` (0 = any free port) in a background thread."""
    return Emulator(config)


# -- documents -----------------------------------------------------------------------------------------------
def java_dn(name: x509.Name) -> str:
    """A DN the way Edge (Java's X500Principal) prints it: most specific first, ``, `` between RDNs."""
    overrides = {NameOID.EMAIL_ADDRESS: "EMAILADDRESS"}
    return ", ".join(rdn.rfc4514_string(overrides) for rdn in reversed(name.rdns))


def _signature_name(cert: x509.Certificate) -> str:
    oid_name = getattr(cert.signature_algorithm_oid, "_name", "")
    hash_name = cert.signature_hash_algorithm.name.upper() if cert.signature_hash_algorithm else ""
    if "ecdsa" in oid_name.lower():
        kind = "ECDSA"
    elif "dsa" in oid_name.lower() and "rsa" not in oid_name.lower():
        kind = "DSA"
    elif "ed25519" in oid_name.lower() or "ed448" in oid_name.lower():
        return oid_name.upper()
    else:
        kind = "RSA"
    return f"{hash_name}with{kind}"


def _public_key_text(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA Public Key, {key.key_size} bits"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC Public Key, {key.key_size} bits"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA Public Key, {key.key_size} bits"
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return "EdDSA Public Key"
    return "Public Key"


def _serial_text(serial: int) -> str:
    # Java prints the DER INTEGER bytes, so a high first bit gets a leading 00 (Edge's "00:92:85:…").
    raw = serial.to_bytes((serial.bit_length() + 8) // 8, "big")
    return ":".join(f"{b:02x}" for b in raw)


def cert_info(pem: str) -> dict[str, Any]:
    """The Edge `certInfo` entry of a PEM certificate (epoch-ms dates, Java DNs, `isValid` Yes/No)."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    now = datetime.now(timezone.utc)
    try:
        constraints = cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
        basic = "CA:TRUE" if constraints.ca else "CA:FALSE"
        if constraints.ca and constraints.path_length is not None:
            basic += f", pathlen:{constraints.path_length}"
    except x509.ExtensionNotFound:
        basic = "CA:FALSE"
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        names = [str(v) for v in san.get_values_for_type(x509.DNSName)]
        names += [str(v) for v in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return {
        "basicConstraints": basic,
        "expiryDate": int(not_after.timestamp() * 1000),
        "isValid": "Yes" if not_before <= now <= not_after else "No",
        "issuer": java_dn(cert.issuer),
        "publicKey": _public_key_text(cert),
        "serialNumber": _serial_text(cert.serial_number),
        "sigAlgName": _signature_name(cert),
        "subject": java_dn(cert.subject),
        "subjectAlternativeNames": names,
        "validFrom": int(not_before.timestamp() * 1000),
        "version": cert.version.value + 1,
    }


def _alias_ref(alias: str, has_key: bool) -> dict[str, str]:
    ref = {"aliasName": alias, "cert": f"{alias}-cert"}
    if has_key:
        ref["key"] = f"{alias}-key"
    return ref


def _trace_time(ms: int) -> str:
    # Edge trace timestamps look like "08-09-15 14:44:03:825" (dd-MM-yy HH:mm:ss:SSS).
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.strftime("%d-%m-%y %H:%M:%S:") + f"{ms % 1000:03d}"


def _properties(**values: str) -> dict[str, Any]:
    return {"property": [{"name": name.replace("_", "."), "value": value} for name, value in values.items()]}


def _state_change(source: str, target: str, ms: int) -> dict[str, Any]:
    return {
        "id": "StateChange",
        "results": [
            {
                "ActionResult": "DebugInfo",
                "accessList": [],
                "properties": {
                    "property": [{"name": "To", "value": target}, {"name": "From", "value": source}]
                },
                "timestamp": _trace_time(ms),
            }
        ],
    }


def transaction_document(record: dict[str, Any]) -> dict[str, Any]:
    """The Edge trace JSON of one MP-simulator record: StateChange/FlowInfo/Error points, no fixed indexes."""
    ms = int(record.get("time") or time.time() * 1000)
    message_id = str(record.get("message_id", ""))
    status = int(record.get("status") or 0)
    cause = record.get("error_cause")
    request_headers = [{"name": k, "value": str(v)} for k, v in (record.get("request_headers") or {}).items()]
    # How many policy points precede the target call varies with the message, like real proxies do.
    extra = int(hashlib.sha1(message_id.encode()).hexdigest(), 16) % 3
    points: list[dict[str, Any]] = [{"id": "Paused", "results": []}, {"id": "Resumed", "results": []}]
    points.append(
        {
            "id": "StateChange",
            "results": [
                {
                    "ActionResult": "DebugInfo",
                    "accessList": [],
                    "properties": {
                        "property": [
                            {"name": "To", "value": "REQ_HEADERS_PARSED"},
                            {"name": "From", "value": "REQ_START"},
                        ]
                    },
                    "timestamp": _trace_time(ms),
                },
                {
                    "ActionResult": "RequestMessage",
                    "headers": request_headers,
                    "uRI": str(record.get("path", "/")),
                    "verb": str(record.get("method", "GET")),
                },
            ],
        }
    )
    points.append(_state_change("REQ_HEADERS_PARSED", "PROXY_REQ_FLOW", ms + 1))
    for index in range(extra):
        points.append(
            {
                "id": "Condition",
                "results": [
                    {
                        "ActionResult": "DebugInfo",
                        "accessList": [],
                        "properties": _properties(
                            ExpressionResult="true", Expression=f'(request.verb != "X{index}")'
                        ),
                        "timestamp": _trace_time(ms + 1),
                    }
                ],
            }
        )
    points.append(_state_change("PROXY_REQ_FLOW", "TARGET_REQ_FLOW", ms + 2))
    points.append(
        {
            "id": "FlowInfo",
            "results": [
                {
                    "ActionResult": "DebugInfo",
                    "accessList": [],
                    "properties": _properties(
                        target_name="default",
                        target_url=f"https://{record.get('backend', '')}",
                        apiproxy_name=str(record.get("api", "")),
                        apiproxy_revision=str(record.get("rev", "")),
                    ),
                    "timestamp": _trace_time(ms + 3),
                }
            ],
        }
    )
    if cause:
        points.append(
            {
                "id": "Error",
                "results": [
                    {
                        "ActionResult": "DebugInfo",
                        "accessList": [],
                        "properties": _properties(
                            error_class="com.apigee.errors.http.server.ServiceUnavailableException",
                            state="TARGET_REQ_FLOW",
                            type="ErrorPoint",
                            error_cause=str(cause),
                            error=str(cause),
                        ),
                        "timestamp": _trace_time(ms + 4),
                    }
                ],
            }
        )
        points.append(_state_change("TARGET_REQ_FLOW", "ERROR", ms + 5))
        final_state = "ERROR"
    else:
        points.append(_state_change("TARGET_REQ_FLOW", "REQ_SENT", ms + 4))
        points.append(_state_change("REQ_SENT", "RESP_START", ms + 5))
        points.append(_state_change("RESP_START", "TARGET_RESP_FLOW", ms + 6))
        final_state = "TARGET_RESP_FLOW"
    response_headers = [
        {"name": "Content-Type", "value": "application/json"},
        {"name": "X-Apigee.Message-ID", "value": message_id},
    ]
    points.append(
        {
            "id": "FlowInfo",
            "results": [
                {
                    "ActionResult": "DebugInfo",
                    "accessList": [],
                    "properties": _properties(
                        type="AnalyticsPoint", description="Analytics Data Recorded", messageid=message_id
                    ),
                    "timestamp": _trace_time(ms + 7),
                },
                {
                    "ActionResult": "ResponseMessage",
                    "content": str(record.get("response_body", "")),
                    "headers": response_headers,
                    "reasonPhrase": "Service Unavailable" if status == 503 else "OK",
                    "statusCode": str(status),
                },
            ],
        }
    )
    points.append(_state_change(final_state, "END", ms + 8))
    return {"completed": True, "point": points}


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_transactions(path: Path, session: _Session) -> Iterator[dict[str, Any]]:
    """Records appended after the session began (by offset; by time when the file was truncated since)."""
    try:
        data = path.read_bytes()
    except OSError:
        return
    by_time = len(data) < session.file_offset
    body = data if by_time else data[session.file_offset :]
    for line in body.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line the simulator is still writing
        if not isinstance(record, dict):
            continue
        if by_time and int(record.get("time") or 0) < session.created_ms:
            continue
        yield record


def _expand_shorthand(segments: list[str]) -> list[str]:
    """`/v1/o/ORG/e/ENV/...` is shorthand for `/v1/organizations/ORG/environments/ENV/...`."""
    out = list(segments)
    if len(out) > 2 and out[1] == "o":
        out[1] = "organizations"
        if len(out) > 4 and out[3] == "e":
            out[3] = "environments"
    return out


def edge_json(value: Any) -> bytes:
    """Pretty-printed the way Edge prints (`"a" : "b"`)."""
    return json.dumps(value, indent=2, separators=(",", " : ")).encode()


def _json(value: Any, status: int = 200) -> _Reply:
    return _Reply(status, edge_json(value), "application/json")


def _error(status: int, code: str, message: str) -> _Reply:
    return _json({"code": code, "message": message, "contexts": []}, status=status)


def _handler_class(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
        server_version = "Apigee-Edge-Emulator"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = emulator.handle(self.command, self.path, headers)
            if reply is None:
                # SO_LINGER 0 makes close() send a TCP RST: the client sees a connection reset.
                self.close_connection = True
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                return
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.shape == "whole":
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                else:
                    self._send_faulty_body(reply)
            except OSError:
                self.close_connection = True  # the client gave up (a timeout test): nothing to answer to

        def _send_faulty_body(self, reply: _Reply) -> None:
            """The test-only body shapes: huge, endless (chunked) or trickling."""
            block = b"[" + b"0," * 32767 + b"0]"
            if reply.shape == "oversize":
                self.send_header("Content-Length", str(reply.size))
                self.end_headers()
                left = reply.size
                while left > 0:
                    left -= self.wfile.write(block[: min(left, len(block))]) or 0
                return
            self.close_connection = True
            if reply.shape == "endless":
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while True:  # until the client hangs up (OSError ends it)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            self.send_header("Content-Length", str(1024 * 1024))
            self.end_headers()
            while True:  # trickle: one byte at a time, each within any per-read timeout
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(reply.interval)

        do_GET = do_POST = do_DELETE = do_PUT = _serve

        def finish(self) -> None:
            with contextlib.suppress(OSError):  # the connection was reset on purpose
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass  # keep test output quiet

    return Handler

"""Resolve a proxy's TLS setup: deployed revision, MPs, targets, references, keystores and backends.

One walk (`build_resolution`) follows the playbook's chain over a `DocumentSource`: live, the source fetches
each document from the management API and saves it raw (`resolve_proxy`); offline, it reads the same paths
from a bundle's `edge/` folder (`resolution_from_documents`). This module does no I/O of its own.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from collector.bundle import layout
from collector.edge.deployments import (
    MessageProcessor,
    deployed_revisions,
    join_message_processors,
    message_processor_uuids,
    parse_deployments,
    parse_servers,
)
from collector.edge.keystores import parse_alias, parse_cert, parse_keystore
from collector.edge.proxy_bundle import read_target_endpoints
from collector.edge.references import Reference, parse_reference, reference_name
from collector.edge.targets import (
    SslInfo,
    TargetEndpoint,
    parse_target_endpoint,
    parse_target_server,
    split_url,
)
from collector.errors import EdgeAuthError, EdgeError, EdgeNotFoundError, InputError

__all__ = [
    "Backend",
    "DocumentRequest",
    "DocumentSource",
    "ManagementApi",
    "MessageProcessor",
    "Resolution",
    "TargetTls",
    "build_resolution",
    "resolution_from_documents",
    "resolve_proxy",
]

PUBLIC_CLOUD_HOST = "api.enterprise.apigee.com"


class ManagementApi(Protocol):
    """What resolve/trace need from `collector.edge.client.EdgeClient` (kept as a protocol so this module and
    the offline analyzer never import httpx)."""

    base_url: str
    sink: Any

    def get_json(
        self, path: str, *, what: str, document: str | None = None, params: Mapping[str, str] | None = None
    ) -> Any: ...

    def get_bytes(
        self,
        path: str,
        *,
        what: str,
        document: str | None = None,
        params: Mapping[str, str] | None = None,
        accept: str = "*/*",
    ) -> bytes: ...

    def post(
        self,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        document: str | None = None,
    ) -> bytes: ...

    def delete(self, path: str, *, what: str, params: Mapping[str, str] | None = None) -> bytes: ...

    def lookup_addresses(self, host: str) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class DocumentRequest:
    """One management API GET and the bundle path its body is kept under.

    Attributes:
        api_path: relative to `/v1`, components already quoted.
        what: the object, for errors (``keystore 'ks1' in environment 'test'``).
        required: without it nothing can be resolved: a failure is raised, not turned into a finding.
    """

    path: str
    api_path: str
    what: str
    params: tuple[tuple[str, str], ...] = ()
    required: bool = False


class DocumentSource(Protocol):
    """Where the walk gets documents: None means unavailable, and `why_missing` then says why."""

    def json(self, request: DocumentRequest) -> Any | None: ...

    def bytes(self, request: DocumentRequest) -> bytes | None: ...

    def why_missing(self, request: DocumentRequest) -> str: ...

    def addresses(self, host: str) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class TargetTls:
    """The TLS setup of one TargetEndpoint (or one of its target servers), references resolved.

    Attributes:
        name: the TargetEndpoint name (``default``).
        url: its `<URL>`, None in the target-server form.
        host / port: the backend; None when unknown (flow variable in the URL, target server unavailable).
        target_server: the target server name, None in the URL form.
        keystore / truststore: resolved store names (None when absent or the reference did not resolve).
        keystore_reference / truststore_reference: the reference names when SSLInfo used ``ref://``.
        key_alias: the `KeyAlias`, None when absent.
    """

    name: str
    url: str | None
    host: str | None
    port: int | None
    target_server: str | None
    ssl_enabled: bool
    client_auth_enabled: bool
    keystore: str | None
    keystore_reference: str | None
    key_alias: str | None
    truststore: str | None
    truststore_reference: str | None
    ignore_validation_errors: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class Backend:
    """A backend the MPs call; ``addresses`` are its IPs for capture filters (() when it did not resolve)."""

    host: str
    port: int | None
    addresses: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "addresses": list(self.addresses)}


@dataclass(frozen=True)
class Resolution:
    """The proxy's resolved TLS setup (`edge/resolution.json`).

    Attributes:
        revisions: deployed revisions in the env, newest first (the newest one's bundle was resolved).
        message_processors: MPs the revisions run on, with addresses on Private Cloud.
        targets: one entry per TargetEndpoint, or per target server of a load-balanced one.
        findings: what is wrong or unknown, in the playbook's words (an empty keystore, a missing alias…).
    """

    org: str
    env: str
    proxy: str
    revisions: tuple[str, ...]
    message_processors: tuple[MessageProcessor, ...]
    targets: tuple[TargetTls, ...]
    backends: tuple[Backend, ...]
    findings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "org": self.org,
            "env": self.env,
            "proxy": self.proxy,
            "revisions": list(self.revisions),
            "message_processors": [m.to_json() for m in self.message_processors],
            "targets": [t.to_json() for t in self.targets],
            "backends": [b.to_json() for b in self.backends],
            "findings": list(self.findings),
        }


def build_resolution(org: str, env: str, proxy: str, source: DocumentSource) -> Resolution:
    """Walk deployments -> servers -> bundle -> targets -> target servers -> references -> keystores.

    Pure over `source`. Raises only when a required document (deployments, proxy bundle) is unavailable or
    unusable; everything else missing or wrong becomes a finding.
    """
    return _Walk(org, env, proxy, source).run()


def resolve_proxy(
    client: ManagementApi,
    org: str,
    env: str,
    proxy: str,
    *,
    private_cloud: bool | None = None,
    lookup: Callable[[str], tuple[str, ...]] | None = None,
) -> Resolution:
    """Fetch (and save through `client.sink`) every document the playbook needs, then resolve them.

    `private_cloud`: True fetches `/v1/servers?pod=gateway` and fails if it cannot; False skips it; None (the
    default) skips it on `api.enterprise.apigee.com` and otherwise tries it, a failure becoming a finding.
    `lookup` resolves backend names to IPs (default: `client.lookup_addresses`). The Resolution is saved at
    `layout.EDGE_RESOLUTION`. Raises EdgeNotFoundError naming the missing org/env/proxy, or saying the proxy
    is not deployed in the env; EdgeAuthError on 401/403; EdgeError when the management API fails.
    """
    if private_cloud is None:
        servers = "skip" if urlsplit(client.base_url).hostname == PUBLIC_CLOUD_HOST else "try"
    else:
        servers = "require" if private_cloud else "skip"
    source = _ClientSource(client, org, env, proxy, servers, lookup or client.lookup_addresses)
    resolution = build_resolution(org, env, proxy, source)
    if client.sink is not None:
        client.sink.save(layout.EDGE_RESOLUTION, json.dumps(resolution.to_json(), indent=2).encode() + b"\n")
    if not resolution.revisions:
        raise EdgeNotFoundError(
            f"deployment of API proxy {proxy!r}",
            client.base_url,
            f"{proxy!r} has no deployed revision in environment {env!r}",
            "deploy it, or check --env",
        )
    return resolution


def resolution_from_documents(read: Callable[[str], bytes | None]) -> Resolution:
    """Rebuild the Resolution offline from a bundle's `edge/` documents (`read(path)` -> bytes or None).

    Backend addresses come from the saved `edge/resolution.json` (DNS answers at collection time).
    Raises InputError when the deployments document or the proxy bundle is missing or unusable.
    """
    source = _BundleSource(read)
    return build_resolution(source.org, source.env, source.proxy, source)


# -- the walk ------------------------------------------------------------------------------------------------
class _Walk:
    def __init__(self, org: str, env: str, proxy: str, source: DocumentSource) -> None:
        self.org, self.env, self.proxy, self.source = org, env, proxy, source
        self.env_path = f"/organizations/{_q(org)}/environments/{_q(env)}"
        self.findings: list[str] = []
        self._references: dict[str, Reference | None] = {}
        self._stores: set[str] = set()

    def run(self) -> Resolution:
        revisions = self._revisions()
        if not revisions:
            self.findings.append(
                f"API proxy {self.proxy!r} has no deployed revision in environment {self.env!r}"
            )
            return Resolution(self.org, self.env, self.proxy, (), (), (), (), tuple(self.findings))
        if len(revisions) > 1:
            self.findings.append(
                f"several revisions are deployed ({', '.join(r.revision for r in revisions)}); "
                f"the TLS setup of revision {revisions[0].revision} was resolved"
            )
        processors = self._message_processors(message_processor_uuids(revisions))
        targets = [
            t for endpoint in self._target_endpoints(revisions[0].revision) for t in self._targets(endpoint)
        ]
        for target in targets:
            if target.keystore:
                self._keystore(target.keystore, target.key_alias if target.client_auth_enabled else None)
            if target.truststore:
                self._keystore(target.truststore, None, truststore=True)
        return Resolution(
            self.org,
            self.env,
            self.proxy,
            tuple(r.revision for r in revisions),
            processors,
            tuple(targets),
            self._backends(targets),
            tuple(dict.fromkeys(self.findings)),
        )

    def _revisions(self) -> tuple[Any, ...]:
        request = DocumentRequest(
            layout.EDGE_DEPLOYMENTS,
            f"{self.env_path}/apis/{_q(self.proxy)}/deployments",
            f"deployments of API proxy {self.proxy!r} in environment {self.env!r}",
            required=True,
        )
        data = self._required(self.source.json(request), request)
        try:
            return deployed_revisions(parse_deployments(data, self.env))
        except ValueError as exc:
            raise InputError(layout.EDGE_DEPLOYMENTS, str(exc)) from exc

    def _message_processors(self, uuids: tuple[str, ...]) -> tuple[MessageProcessor, ...]:
        request = DocumentRequest(
            layout.EDGE_SERVERS, "/servers", "message processor addresses", params=(("pod", "gateway"),)
        )
        data = self.source.json(request)
        addresses = None
        if data is None:
            self.findings.append(
                f"message processor addresses are unknown: {self.source.why_missing(request)}"
            )
        else:
            try:
                addresses = parse_servers(data)
            except ValueError as exc:
                self.findings.append(f"{layout.EDGE_SERVERS}: {exc}")
        processors = join_message_processors(uuids, addresses)
        if not processors:
            self.findings.append("the deployment lists no message processor")
        missing = [p.uuid for p in processors if p.address is None]
        if addresses is not None and missing:
            self.findings.append(
                f"message processor(s) {', '.join(missing)} not listed by /v1/servers?pod=gateway"
            )
        return processors

    def _target_endpoints(self, revision: str) -> list[TargetEndpoint]:
        request = DocumentRequest(
            layout.EDGE_PROXY_BUNDLE,
            f"/organizations/{_q(self.org)}/apis/{_q(self.proxy)}/revisions/{_q(revision)}",
            f"bundle of API proxy {self.proxy!r} revision {revision}",
            params=(("format", "bundle"),),
            required=True,
        )
        data = self._required(self.source.bytes(request), request)
        endpoints = read_target_endpoints(data, source=layout.EDGE_PROXY_BUNDLE)
        if not endpoints:
            self.findings.append(
                f"the bundle of revision {revision} has no target endpoint (apiproxy/targets/)"
            )
        return [
            parse_target_endpoint(
                body, name, source=f"{layout.EDGE_PROXY_BUNDLE}:apiproxy/targets/{name}.xml"
            )
            for name, body in sorted(endpoints.items())
        ]

    def _targets(self, endpoint: TargetEndpoint) -> list[TargetTls]:
        if endpoint.servers:
            return [self._server_target(endpoint, server) for server in endpoint.servers]
        if endpoint.url is None:
            self.findings.append(
                f"target endpoint {endpoint.name!r} has no <URL> or <LoadBalancer>: no backend call"
            )
            return []
        scheme, host, port = split_url(endpoint.url)
        if host is None:
            self.findings.append(
                f"target endpoint {endpoint.name!r}: the backend host of {endpoint.url!r} is not "
                "known before run time; give --backend HOST:PORT"
            )
        return [self._tls(endpoint.name, endpoint.url, host, port, None, endpoint.ssl, scheme == "https")]

    def _server_target(self, endpoint: TargetEndpoint, name: str) -> TargetTls:
        request = DocumentRequest(
            layout.target_server_document(name),
            f"{self.env_path}/targetservers/{_q(name)}",
            f"target server {name!r} in environment {self.env!r}",
        )
        data = self.source.json(request)
        server = None
        if data is None:
            self.findings.append(
                f"target server {name!r} (target endpoint {endpoint.name!r}) is unavailable: "
                f"{self.source.why_missing(request)}"
            )
        else:
            try:
                server = parse_target_server(data)
            except ValueError as exc:
                self.findings.append(f"{request.path}: {exc}")
        if server is not None and not server.enabled:
            self.findings.append(f"target server {name!r} is disabled (isEnabled false)")
        host, port = (server.host, server.port) if server else (None, None)
        return self._tls(endpoint.name, None, host, port, name, server.ssl if server else None, False)

    def _tls(
        self,
        name: str,
        url: str | None,
        host: str | None,
        port: int | None,
        server: str | None,
        ssl: SslInfo | None,
        https_url: bool,
    ) -> TargetTls:
        where = f"target server {server!r}" if server else f"target endpoint {name!r}"
        ssl = ssl or SslInfo(enabled=False, client_auth_enabled=False)
        if not ssl.enabled and not https_url:
            self.findings.append(f"{where}: TLS is not enabled, so there is no two-way TLS to this backend")
        elif not ssl.client_auth_enabled:
            self.findings.append(
                f"{where}: ClientAuthEnabled is not true, so the message processor never sends a "
                "client certificate"
            )
        if ssl.client_auth_enabled and not ssl.keystore:
            self.findings.append(f"{where}: ClientAuthEnabled is true but SSLInfo names no KeyStore")
        if ssl.client_auth_enabled and not ssl.key_alias:
            self.findings.append(f"{where}: ClientAuthEnabled is true but SSLInfo names no KeyAlias")
        keystore, keystore_ref = self._store(ssl.keystore, "KeyStore", where)
        truststore, truststore_ref = self._store(ssl.truststore, "TrustStore", where)
        return TargetTls(
            name,
            url,
            host,
            port,
            server,
            ssl.enabled or https_url,
            ssl.client_auth_enabled,
            keystore,
            keystore_ref,
            ssl.key_alias,
            truststore,
            truststore_ref,
            ssl.ignore_validation_errors,
        )

    def _store(self, value: str | None, kind: str, where: str) -> tuple[str | None, str | None]:
        """(store name, reference name) of a `KeyStore`/`TrustStore` value."""
        ref = reference_name(value)
        if ref is None:
            return value, None
        if ref not in self._references:
            request = DocumentRequest(
                layout.reference_document(ref),
                f"{self.env_path}/references/{_q(ref)}",
                f"reference {ref!r} in environment {self.env!r}",
            )
            data = self.source.json(request)
            reference = None
            if data is None:
                self.findings.append(
                    f"reference {ref!r} ({kind} of {where}) is unavailable: "
                    f"{self.source.why_missing(request)}"
                )
            else:
                try:
                    reference = parse_reference(data)
                except ValueError as exc:
                    self.findings.append(f"{request.path}: {exc}")
            self._references[ref] = reference
        reference = self._references[ref]
        if reference is None:
            return None, ref
        if reference.resource_type and reference.resource_type.lower() != kind.lower():
            self.findings.append(
                f"reference {ref!r} is a {reference.resource_type} reference but {where} uses it "
                f"as its {kind}"
            )
        return reference.refers, ref

    def _keystore(self, name: str, alias: str | None, truststore: bool = False) -> None:
        role = "truststore" if truststore else "keystore"
        key = f"{name}\0{alias}"
        if key in self._stores:
            return
        self._stores.add(key)
        request = DocumentRequest(
            layout.keystore_document(name),
            f"{self.env_path}/keystores/{_q(name)}",
            f"{role} {name!r} in environment {self.env!r}",
        )
        data = self.source.json(request)
        if data is None:
            self.findings.append(f"{role} {name!r} is unavailable: {self.source.why_missing(request)}")
            return
        try:
            store = parse_keystore(data)
        except ValueError as exc:
            self.findings.append(f"{request.path}: {exc}")
            return
        if not store.keys and not store.certs and not store.aliases:
            what = (
                "the message processor has no client certificate to send"
                if not truststore
                else "it trusts nothing"
            )
            self.findings.append(f"{role} {name!r} is empty (no key, no certificate): {what}")
        if alias is not None and (store.keys or store.certs or store.aliases):
            listed = [a.alias for a in store.aliases] or list(store.keys)
            if alias not in listed:
                self.findings.append(
                    f"keystore {name!r} has no alias {alias!r} (the KeyAlias); it holds: "
                    f"{', '.join(listed) or 'nothing'}"
                )
            self._alias(name, alias, present=alias in listed)
        for cert in store.certs:
            self._cert(name, cert)

    def _alias(self, keystore: str, alias: str, *, present: bool) -> None:
        request = DocumentRequest(
            layout.alias_document(keystore, alias),
            f"{self.env_path}/keystores/{_q(keystore)}/aliases/{_q(alias)}",
            f"alias {alias!r} of keystore {keystore!r}",
        )
        data = self.source.json(request)
        if data is None:
            if present:
                self.findings.append(
                    f"alias {alias!r} of keystore {keystore!r} is unavailable: "
                    f"{self.source.why_missing(request)}"
                )
            return
        try:
            document = parse_alias(data)
        except ValueError as exc:
            self.findings.append(f"{request.path}: {exc}")
            return
        if document.key_name is None:
            self.findings.append(
                f"alias {alias!r} of keystore {keystore!r} has a certificate but no private key"
            )
        if not document.chain:
            self.findings.append(f"alias {alias!r} of keystore {keystore!r} holds no certificate")
        elif document.chain[0].is_valid not in (None, "Yes"):
            self.findings.append(
                f"the certificate of alias {alias!r} ({document.chain[0].subject}) is not valid now "
                f"(isValid {document.chain[0].is_valid})"
            )

    def _cert(self, keystore: str, cert: str) -> None:
        request = DocumentRequest(
            layout.cert_document(keystore, cert),
            f"{self.env_path}/keystores/{_q(keystore)}/certs/{_q(cert)}",
            f"cert {cert!r} of keystore {keystore!r}",
        )
        data = self.source.json(request)
        if data is None:
            self.findings.append(
                f"cert {cert!r} of keystore {keystore!r} is unavailable: {self.source.why_missing(request)}"
            )
            return
        try:
            parse_cert(data)
        except ValueError as exc:
            self.findings.append(f"{request.path}: {exc}")

    def _backends(self, targets: list[TargetTls]) -> tuple[Backend, ...]:
        backends = []
        for host, port in dict.fromkeys((t.host, t.port) for t in targets if t.host):
            assert host is not None
            addresses = (host,) if _is_ip(host) else self.source.addresses(host)
            if not addresses:
                self.findings.append(
                    f"backend host {host!r} does not resolve here: capture filters need its IP "
                    "(give --backend IP:PORT)"
                )
            backends.append(Backend(host, port, tuple(addresses)))
        return tuple(backends)

    def _required(self, value: Any, request: DocumentRequest) -> Any:
        if value is None:
            raise InputError(
                request.path, f"{request.what} is unavailable: {self.source.why_missing(request)}"
            )
        return value


# -- sources -------------------------------------------------------------------------------------------------
class _ClientSource:
    """Fetches from the management API (saving each body through the client's sink)."""

    def __init__(
        self,
        client: ManagementApi,
        org: str,
        env: str,
        proxy: str,
        servers: str,
        lookup: Callable[[str], tuple[str, ...]],
    ) -> None:
        self.client, self.org, self.env, self.proxy = client, org, env, proxy
        self.servers, self.lookup = servers, lookup
        self._missing: dict[str, str] = {}

    def json(self, request: DocumentRequest) -> Any | None:
        return self._fetch(request, binary=False)

    def bytes(self, request: DocumentRequest) -> bytes | None:
        return self._fetch(request, binary=True)

    def why_missing(self, request: DocumentRequest) -> str:
        return self._missing.get(request.path, "not fetched")

    def addresses(self, host: str) -> tuple[str, ...]:
        return self.lookup(host)

    def _fetch(self, request: DocumentRequest, *, binary: bool) -> Any | None:
        required = request.required
        if request.path == layout.EDGE_SERVERS:
            if self.servers == "skip":
                self._missing[request.path] = (
                    "public cloud: Apigee does not publish message processor addresses"
                )
                return None
            required = self.servers == "require"
        params = dict(request.params)
        try:
            if binary:
                return self.client.get_bytes(
                    request.api_path,
                    what=request.what,
                    document=request.path,
                    params=params,
                    accept="application/octet-stream",
                )
            return self.client.get_json(
                request.api_path, what=request.what, document=request.path, params=params
            )
        except EdgeNotFoundError as exc:
            if request.path == layout.EDGE_DEPLOYMENTS:
                self._explain_missing_deployment(exc)
            if required:
                raise
            self._missing[request.path] = exc.problem
        except EdgeAuthError:
            if required or request.path != layout.EDGE_SERVERS:
                raise
            self._missing[request.path] = "this account may not list servers (HTTP 401/403)"
        except EdgeError as exc:
            if required:
                raise
            self._missing[request.path] = exc.problem
        return None

    def _explain_missing_deployment(self, cause: EdgeNotFoundError) -> None:
        """Turn a 404 on deployments into one naming the missing org, env or proxy."""
        org_path = f"/organizations/{_q(self.org)}"
        for path, what in (
            (org_path, f"organization {self.org!r}"),
            (f"{org_path}/environments/{_q(self.env)}", f"environment {self.env!r} of {self.org!r}"),
            (f"{org_path}/apis/{_q(self.proxy)}", f"API proxy {self.proxy!r} in {self.org!r}"),
        ):
            try:
                self.client.get_json(path, what=what)
            except EdgeNotFoundError as missing:
                raise missing from cause
            except EdgeError:
                continue  # this account may not read it: it cannot tell us what is missing
        raise EdgeNotFoundError(
            cause.what,
            cause.url,
            f"{self.proxy!r} is not deployed in {self.env!r} ({cause.problem})",
            "deploy it, or check --env",
        ) from cause


class _BundleSource:
    """Reads the documents a run saved (`edge/…`); misses are findings, never network calls."""

    def __init__(self, read: Callable[[str], bytes | None]) -> None:
        self.read = read
        self._missing: dict[str, str] = {}
        saved = self._load(layout.EDGE_RESOLUTION) or {}
        deployments = self._load(layout.EDGE_DEPLOYMENTS) or {}
        self.org = str(saved.get("org") or deployments.get("organization") or "")
        self.env = str(saved.get("env") or _env_of(deployments))
        self.proxy = str(saved.get("proxy") or deployments.get("name") or deployments.get("aPIProxy") or "")
        self._addresses = {
            str(b.get("host")): tuple(str(a) for a in b.get("addresses") or [])
            for b in saved.get("backends") or []
            if isinstance(b, dict)
        }

    def json(self, request: DocumentRequest) -> Any | None:
        data = self.read(request.path)
        if data is None:
            self._missing[request.path] = f"{request.path} is not in the bundle"
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            if request.required:
                raise InputError(request.path, f"not valid JSON: {exc}") from exc
            self._missing[request.path] = f"{request.path} is not valid JSON"
            return None

    def bytes(self, request: DocumentRequest) -> bytes | None:
        data = self.read(request.path)
        if data is None:
            self._missing[request.path] = f"{request.path} is not in the bundle"
        return data

    def why_missing(self, request: DocumentRequest) -> str:
        return self._missing.get(request.path, f"{request.path} is not in the bundle")

    def addresses(self, host: str) -> tuple[str, ...]:
        return self._addresses.get(host, ())

    def _load(self, path: str) -> dict[str, Any] | None:
        data = self.read(path)
        try:
            value = json.loads(data) if data is not None else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def _env_of(deployments: dict[str, Any]) -> str:
    env = deployments.get("environment")
    if isinstance(env, str):
        return env
    if isinstance(env, list) and len(env) == 1 and isinstance(env[0], dict):
        return str(env[0].get("name") or "")
    return ""


def _q(component: str) -> str:
    return quote(component, safe="")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True

"""The walk: deployments -> servers -> bundle -> targets -> target servers -> references -> keystores."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from collector import layout
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
from collector.edge.resolve.model import Backend, DocumentRequest, DocumentSource, Resolution, TargetTls
from collector.edge.targets import (
    SslInfo,
    TargetEndpoint,
    parse_target_endpoint,
    parse_target_server,
    split_url,
)
from collector.errors import InputError

T = TypeVar("T")


def build_resolution(org: str, env: str, proxy: str, source: DocumentSource) -> Resolution:
    """Walk deployments -> servers -> bundle -> targets -> target servers -> references -> keystores.

    Pure over `source`. Raises only when a required document (deployments, proxy bundle) is unavailable or
    unusable; everything else missing or wrong becomes a finding.
    """
    return _Walk(org, env, proxy, source).run()


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
        addresses = self._parsed(
            request, parse_servers, "the /v1/servers list of message processor addresses"
        )
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
        server = self._parsed(
            request, parse_target_server, f"target server {name!r} (target endpoint {endpoint.name!r})"
        )
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
            ssl.protocols,
            ssl.ciphers,
            ssl.common_name,
            ssl.common_name_wildcard,
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
            self._references[ref] = self._parsed(
                request, parse_reference, f"reference {ref!r} ({kind} of {where})"
            )
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
        store = self._parsed(request, parse_keystore, f"{role} {name!r}")
        if store is None:
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
            self._cert(name, cert, export=truststore)

    def _alias(self, keystore: str, alias: str, *, present: bool) -> None:
        request = DocumentRequest(
            layout.alias_document(keystore, alias),
            f"{self.env_path}/keystores/{_q(keystore)}/aliases/{_q(alias)}",
            f"alias {alias!r} of keystore {keystore!r}",
        )
        # A 404 for an alias the keystore does not list was already reported as the missing alias.
        document = self._parsed(
            request, parse_alias, f"alias {alias!r} of keystore {keystore!r}" if present else None
        )
        if document is None:
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

    def _cert(self, keystore: str, cert: str, *, export: bool = False) -> None:
        request = DocumentRequest(
            layout.cert_document(keystore, cert),
            f"{self.env_path}/keystores/{_q(keystore)}/certs/{_q(cert)}",
            f"cert {cert!r} of keystore {keystore!r}",
        )
        self._parsed(request, parse_cert, f"cert {cert!r} of keystore {keystore!r}")
        if export:
            # A truststore's certificates themselves (public): the backend chain is verified against them
            # offline, which the names in the cert document alone cannot do.
            pem = DocumentRequest(
                layout.cert_pem(keystore, cert),
                f"{self.env_path}/keystores/{_q(keystore)}/certs/{_q(cert)}/export",
                f"certificate {cert!r} of truststore {keystore!r}",
            )
            if self.source.bytes(pem) is None:
                self.findings.append(
                    f"certificate {cert!r} of truststore {keystore!r} is unavailable: "
                    f"{self.source.why_missing(pem)}"
                )

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

    def _parsed(self, request: DocumentRequest, parse: Callable[[Any], T], label: str | None) -> T | None:
        """The parsed document, or None with a finding: `label` is unavailable (why), or the parse defect."""
        data = self.source.json(request)
        if data is None:
            if label is not None:
                self.findings.append(f"{label} is unavailable: {self.source.why_missing(request)}")
            return None
        try:
            return parse(data)
        except ValueError as exc:
            self.findings.append(f"{request.path}: {exc}")
            return None

    def _required(self, value: Any, request: DocumentRequest) -> Any:
        if value is None:
            raise InputError(
                request.path, f"{request.what} is unavailable: {self.source.why_missing(request)}"
            )
        return value


def _q(component: str) -> str:
    return quote(component, safe="")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True

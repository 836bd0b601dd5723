"""Resolving the proxy's TLS setup: live against the emulator, offline from saved documents, and pure on the
verbatim examples of edge-api.md."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from collector import layout
from collector.edge.client import BasicAuth, EdgeClient
from collector.edge.documents import DirectorySink, DocumentSink
from collector.edge.resolve import (
    Backend,
    DocumentRequest,
    MessageProcessor,
    Resolution,
    TargetTls,
    build_resolution,
    resolution_from_documents,
    resolve_proxy,
)
from collector.errors import EdgeAuthError, EdgeError, EdgeNotFoundError, InputError
from tests.edge.conftest import (
    BACKEND_HOST,
    BACKEND_PORT,
    ENV,
    MESSAGE_PROCESSORS,
    ORG,
    PASSWORD,
    PROXY,
    REVISION,
    USERNAME,
)
from tests.lab.emulator import Emulator, EmulatorConfig, start_emulator

ENV_PATH = f"/v1/organizations/{ORG}/environments/{ENV}"


def _resolve(emulator: Emulator, sink: DocumentSink | None = None, **options: Any) -> Resolution:
    with EdgeClient(
        emulator.url, BasicAuth(USERNAME, PASSWORD), timeout=5, retries=1, backoff=0.001, sink=sink
    ) as client:
        return resolve_proxy(client, ORG, ENV, PROXY, **options)


def _no_dns(host: str) -> tuple[str, ...]:
    return ()


@pytest.mark.parametrize("style", ["url", "target-server"])
@pytest.mark.parametrize(
    "scenario, findings",
    [
        (
            "missing-client-certificate",
            [
                "keystore 'mp-keystore' is empty (no key, no certificate): the message "
                "processor has no client certificate to send"
            ],
        ),
        ("ca-mismatch", []),
        ("healthy", []),
    ],
)
def test_live_resolution_per_scenario(
    make_config: Callable[..., EmulatorConfig], tmp_path: Path, style: str, scenario: str, findings: list[str]
) -> None:
    sink = DirectorySink(tmp_path / "bundle")
    with start_emulator(make_config(scenario, style)) as emulator:
        resolution = _resolve(emulator, sink)
    assert resolution.revisions == (REVISION,)
    assert resolution.message_processors == tuple(MessageProcessor(u, ip) for u, ip in MESSAGE_PROCESSORS)
    assert resolution.targets == (
        TargetTls(
            "default",
            f"https://{BACKEND_HOST}:{BACKEND_PORT}" if style == "url" else None,
            BACKEND_HOST,
            BACKEND_PORT,
            "backend-ts" if style == "target-server" else None,
            True,
            True,
            "mp-keystore",
            "mp-keystore-ref",
            "myKey",
            "mp-truststore",
            "mp-truststore-ref",
            False,
        ),
    )
    assert resolution.backends == (Backend(BACKEND_HOST, BACKEND_PORT, (BACKEND_HOST,)),)
    assert list(resolution.findings) == findings
    # Every document the playbook asks for is saved, with its URL
    saved = {str(p.relative_to(tmp_path / "bundle")) for p in (tmp_path / "bundle").rglob("*") if p.is_file()}
    expected = {
        layout.EDGE_DEPLOYMENTS,
        layout.EDGE_SERVERS,
        layout.EDGE_PROXY_BUNDLE,
        layout.EDGE_RESOLUTION,
        layout.EDGE_SOURCES,
        layout.reference_document("mp-keystore-ref"),
        layout.reference_document("mp-truststore-ref"),
        layout.keystore_document("mp-keystore"),
        layout.keystore_document("mp-truststore"),
        layout.cert_document("mp-truststore", "caA-cert"),
        layout.cert_pem("mp-truststore", "caA-cert"),
    }
    if scenario != "missing-client-certificate":
        expected |= {
            layout.alias_document("mp-keystore", "myKey"),
            layout.cert_document("mp-keystore", "myKey-cert"),
        }
    if style == "target-server":
        expected.add(layout.target_server_document("backend-ts"))
    assert saved == expected
    # The truststore's certificate itself is kept, so the backend chain can be verified offline
    anchors = x509.load_pem_x509_certificates(
        (tmp_path / "bundle" / layout.cert_pem("mp-truststore", "caA-cert")).read_bytes())
    assert [a.subject.rfc4514_string() for a in anchors] and all(
        a.extensions.get_extension_for_class(x509.BasicConstraints).value.ca for a in anchors)
    sources = json.loads((tmp_path / "bundle" / layout.EDGE_SOURCES).read_text())
    assert set(sources) == expected - {layout.EDGE_SOURCES, layout.EDGE_RESOLUTION}
    # And the offline rebuild from those files gives the same resolution
    assert resolution_from_documents(sink.read) == resolution


@pytest.mark.parametrize(
    "overrides, finding",
    [
        ({"client_auth_enabled": False}, "target endpoint 'default': ClientAuthEnabled is not true"),
        (
            {"keystore_entries": [("other", [], True)]},
            "keystore 'mp-keystore' has no alias 'myKey' (the KeyAlias); it holds: other",
        ),
        (
            {"keystore_entries": "no-key"},
            "alias 'myKey' of keystore 'mp-keystore' has a certificate but no private key",
        ),
    ],
    ids=["no-client-auth", "missing-alias", "alias-without-key"],
)
def test_keystore_problems_are_findings(
    make_config: Callable[..., EmulatorConfig], pki: Any, overrides: dict[str, Any], finding: str
) -> None:
    if overrides.get("keystore_entries") == "no-key":
        alias, chain, _ = pki.keystore_entries("healthy")[0]
        overrides = {"keystore_entries": [(alias, chain, False)]}
    with start_emulator(make_config("healthy", **overrides)) as emulator:
        resolution = _resolve(emulator)
    assert any(f.startswith(finding) for f in resolution.findings), resolution.findings


@pytest.mark.parametrize(
    "path, finding",
    [
        (
            f"{ENV_PATH}/references/mp-keystore-ref",
            "reference 'mp-keystore-ref' (KeyStore of target server "
            "'backend-ts') is unavailable: not found (HTTP 404",
        ),
        (f"{ENV_PATH}/keystores/mp-keystore", "keystore 'mp-keystore' is unavailable: not found (HTTP 404"),
        (
            f"{ENV_PATH}/keystores/mp-keystore/certs",
            "cert 'myKey-cert' of keystore 'mp-keystore' is unavailable: HTTP 500 after 2 attempts",
        ),
        (
            f"{ENV_PATH}/targetservers/backend-ts",
            "target server 'backend-ts' (target endpoint 'default') is unavailable: not found",
        ),
        (
            "/v1/servers",
            "the /v1/servers list of message processor addresses is unavailable: this account may not "
            "list servers",
        ),
    ],
    ids=["reference", "keystore", "cert-500", "target-server", "servers-forbidden"],
)
def test_unavailable_documents_are_findings(
    make_config: Callable[..., EmulatorConfig], path: str, finding: str
) -> None:
    status = 500 if "certs" in path else 403 if path == "/v1/servers" else 404
    with start_emulator(make_config("healthy", "target-server")) as emulator:
        emulator.fail(path, status, times=None)
        resolution = _resolve(emulator)
    assert any(f.startswith(finding) for f in resolution.findings), resolution.findings


@pytest.mark.parametrize(
    "org, env, proxy, named",
    [
        ("nope", ENV, PROXY, "organization 'nope'"),
        (ORG, "nope", PROXY, "environment 'nope'"),
        (ORG, ENV, "nope", "API proxy 'nope'"),
    ],
)
def test_missing_org_env_or_proxy_is_named(
    emulator: Emulator, org: str, env: str, proxy: str, named: str
) -> None:
    with (
        EdgeClient(emulator.url, BasicAuth(USERNAME, PASSWORD), retries=0) as client,
        pytest.raises(EdgeNotFoundError) as caught,
    ):
        resolve_proxy(client, org, env, proxy)
    assert caught.value.what.startswith(named)


def test_undeployed_proxy(emulator: Emulator) -> None:
    emulator.fail(f"{ENV_PATH}/apis/{PROXY}/deployments", 404, times=1)
    with pytest.raises(EdgeNotFoundError, match=f"'{PROXY}' is not deployed in '{ENV}'"):
        _resolve(emulator)


def test_deployment_without_revisions_is_not_found(emulator: Emulator) -> None:
    emulator.fail(f"{ENV_PATH}/apis/{PROXY}/deployments", 401, times=1)
    with pytest.raises(EdgeAuthError):
        _resolve(emulator)


def test_public_cloud_does_not_ask_for_servers(emulator: Emulator) -> None:
    sink = DocumentSink()
    resolution = _resolve(emulator, sink, private_cloud=False, lookup=_no_dns)
    assert all(mp.address is None for mp in resolution.message_processors)
    assert layout.EDGE_SERVERS not in sink.documents
    assert not emulator.requests_to("/v1/servers")
    assert any("public cloud" in f for f in resolution.findings)


def test_private_cloud_requires_servers(emulator: Emulator) -> None:
    emulator.fail("/v1/servers", 500, times=None)
    with pytest.raises(EdgeError, match="HTTP 500"):
        _resolve(emulator, private_cloud=True)


def test_literal_store_names_and_unresolvable_backend(make_config: Callable[..., EmulatorConfig]) -> None:
    config = make_config(
        "healthy", keystore_reference="", truststore_reference="", backend_host="backend.invalid"
    )
    with start_emulator(config) as emulator:
        resolution = _resolve(emulator, lookup=_no_dns)
    target = resolution.targets[0]
    assert (target.keystore, target.keystore_reference, target.truststore_reference) == (
        "mp-keystore",
        None,
        None,
    )
    assert resolution.backends == (Backend("backend.invalid", BACKEND_PORT, ()),)
    assert any("does not resolve here" in f for f in resolution.findings)


# -- pure walk over the verbatim documents of edge-api.md ----------------------------------------------------
class _Documents:
    """A DocumentSource over a dict of bundle path -> JSON value or bytes."""

    def __init__(
        self, documents: dict[str, Any], addresses: dict[str, tuple[str, ...]] | None = None
    ) -> None:
        self.documents, self.dns = documents, addresses or {}

    def json(self, request: DocumentRequest) -> Any | None:
        return self.documents.get(request.path)

    def bytes(self, request: DocumentRequest) -> bytes | None:
        return self.documents.get(request.path)

    def why_missing(self, request: DocumentRequest) -> str:
        return "absent"

    def addresses(self, host: str) -> tuple[str, ...]:
        return self.dns.get(host, ())


def _bundle(target_xml: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("apiproxy/targets/default.xml", target_xml)
    return buffer.getvalue()


DEPLOYMENTS = {
    "environment": "test",
    "name": "hotels",
    "organization": "myorg",
    "revision": [
        {
            "configuration": {"basePath": "/", "steps": []},
            "name": "1",
            "state": "deployed",
            "server": [
                {
                    "pod": {"name": "gateway", "region": "dc-1"},
                    "status": "deployed",
                    "type": ["message-processor"],
                    "uUID": "276bc250-7dd0-46a5-a583-fd11eba786f8",
                }
            ],
        }
    ],
}
LOAD_BALANCED = (
    b'<TargetEndpoint name="default"><HTTPTargetConnection><LoadBalancer>'
    b'<Server name="badSSLWithClientCert"/></LoadBalancer></HTTPTargetConnection></TargetEndpoint>'
)
TARGET_SERVER = {
    "host": "client.badssl.com",
    "isEnabled": True,
    "name": "badSSLWithClientCert",
    "port": 443,
    "sSLInfo": {
        "clientAuthEnabled": "true",
        "enabled": "true",
        "ignoreValidationErrors": False,
        "keyAlias": "badSSLClientCert",
        "keyStore": "ref://badSSLKeyStoreRef",
    },
}
REFERENCE = {"name": "badSSLKeyStoreRef", "refers": "MyTestKeystore", "resourceType": "KeyStore"}
KEYSTORE = {
    "aliases": [{"aliasName": "myTestAlias", "cert": "myTestAlias-cert", "key": "myTestAlias-key"}],
    "certs": ["myTestAlias-cert"],
    "keys": ["myTestAlias"],
    "name": "MyTestKeystore",
}
CERT = {
    "certInfo": [
        {
            "basicConstraints": "CA:FALSE",
            "expiryDate": 1470268707000,
            "isValid": "No",
            "issuer": "EMAILADDRESS=test@test.com, CN=api-ssl.example.com, OU=E2E, O=Apigee, L=San Jose, "
            "ST=CA, C=US",
            "publicKey": "RSA Public Key, 2048 bits",
            "serialNumber": "00:92:85:f7:e5:3b:c5:30:26",
            "sigAlgName": "SHA1withRSA",
            "subject": "EMAILADDRESS=test@test.com, CN=api-ssl.example.com, OU=E2E, O=Apigee, L=San Jose, "
            "ST=CA, C=US",
            "subjectAlternativeNames": [],
            "validFrom": 1438732707000,
            "version": 1,
        }
    ],
    "certName": "myTestAlias-cert",
}
SERVERS = [
    {
        "internalIP": "192.168.1.11",
        "type": ["message-processor"],
        "uUID": "276bc250-7dd0-46a5-a583-fd11eba786f8",
    }
]


def _verbatim(**changes: Any) -> dict[str, Any]:
    documents: dict[str, Any] = {
        layout.EDGE_DEPLOYMENTS: DEPLOYMENTS,
        layout.EDGE_SERVERS: SERVERS,
        layout.EDGE_PROXY_BUNDLE: _bundle(LOAD_BALANCED),
        layout.target_server_document("badSSLWithClientCert"): TARGET_SERVER,
        layout.reference_document("badSSLKeyStoreRef"): REFERENCE,
        layout.keystore_document("MyTestKeystore"): KEYSTORE,
        layout.cert_document("MyTestKeystore", "myTestAlias-cert"): CERT,
    }
    documents.update(changes)
    return {k: v for k, v in documents.items() if v is not None}


def test_verbatim_documents_resolve() -> None:
    # Given edge-api.md's examples chained (target server -> ref -> keystore whose alias is not the KeyAlias)
    source = _Documents(_verbatim(), {"client.badssl.com": ("104.154.89.105",)})
    # When the walk runs
    resolution = build_resolution("myorg", "test", "hotels", source)
    # Then the target server's string booleans, the reference and the MP address are resolved,
    # and the missing KeyAlias is a finding
    assert resolution.message_processors == (
        MessageProcessor("276bc250-7dd0-46a5-a583-fd11eba786f8", "192.168.1.11"),
    )
    target = resolution.targets[0]
    assert (target.host, target.port, target.ssl_enabled, target.client_auth_enabled) == (
        "client.badssl.com",
        443,
        True,
        True,
    )
    assert (target.keystore, target.keystore_reference, target.key_alias) == (
        "MyTestKeystore",
        "badSSLKeyStoreRef",
        "badSSLClientCert",
    )
    assert resolution.backends == (Backend("client.badssl.com", 443, ("104.154.89.105",)),)
    assert resolution.findings == (
        "keystore 'MyTestKeystore' has no alias 'badSSLClientCert' (the KeyAlias); it holds: myTestAlias",
    )


def test_resolution_carries_the_sslinfo_the_report_compares() -> None:
    # Given the verbatim target server with versions, suites and a CommonName in its sSLInfo
    server = {**TARGET_SERVER, "sSLInfo": {**TARGET_SERVER["sSLInfo"], "protocols": ["TLSv1.2"],
                                           "ciphers": ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"],
                                           "commonName": {"value": "*.badssl.com", "wildcardMatch": True}}}
    documents = _verbatim(**{layout.target_server_document("badSSLWithClientCert"): server})
    # When resolved
    target = build_resolution("myorg", "test", "hotels", _Documents(documents)).targets[0]
    # Then the target keeps them, and edge/resolution.json writes them as JSON lists
    assert (target.protocols, target.ciphers) == (("TLSv1.2",), ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",))
    assert (target.common_name, target.common_name_wildcard) == ("*.badssl.com", True)
    saved = json.loads(json.dumps(target.to_json()))
    assert saved["protocols"] == ["TLSv1.2"] and saved["common_name"] == "*.badssl.com"


@pytest.mark.parametrize(
    "changes, finding",
    [
        (
            {layout.keystore_document("MyTestKeystore"): {"certs": [], "keys": [], "name": "MyTestKeystore"}},
            "keystore 'MyTestKeystore' is empty (no key, no certificate)",
        ),
        (
            {layout.reference_document("badSSLKeyStoreRef"): None},
            "reference 'badSSLKeyStoreRef' (KeyStore of target server 'badSSLWithClientCert') is "
            "unavailable: absent",
        ),
        (
            {layout.reference_document("badSSLKeyStoreRef"): {**REFERENCE, "resourceType": "TrustStore"}},
            "reference 'badSSLKeyStoreRef' is a TrustStore reference but target server "
            "'badSSLWithClientCert' uses it as its KeyStore",
        ),
        (
            {
                layout.target_server_document("badSSLWithClientCert"): {
                    **TARGET_SERVER,
                    "sSLInfo": {**TARGET_SERVER["sSLInfo"], "clientAuthEnabled": False},
                }
            },
            "target server 'badSSLWithClientCert': ClientAuthEnabled is not true",
        ),
        (
            {layout.EDGE_SERVERS: None},
            "the /v1/servers list of message processor addresses is unavailable: absent",
        ),
        (
            {layout.EDGE_DEPLOYMENTS: {**DEPLOYMENTS, "revision": []}},
            "API proxy 'hotels' has no deployed revision",
        ),
    ],
    ids=[
        "empty-keystore",
        "missing-reference",
        "reference-kind",
        "no-client-auth",
        "no-servers",
        "undeployed",
    ],
)
def test_verbatim_variants_become_findings(changes: dict[str, Any], finding: str) -> None:
    resolution = build_resolution("myorg", "test", "hotels", _Documents(_verbatim(**changes)))
    assert any(f.startswith(finding) for f in resolution.findings), resolution.findings


def test_offline_rebuild_needs_deployments_and_bundle() -> None:
    documents = {layout.EDGE_DEPLOYMENTS: json.dumps(DEPLOYMENTS).encode()}
    with pytest.raises(InputError, match="edge/proxy-bundle.zip"):
        resolution_from_documents(documents.get)
    with pytest.raises(InputError, match="edge/deployments.json"):
        resolution_from_documents({}.get)
    with pytest.raises(InputError, match="not valid JSON"):
        resolution_from_documents({layout.EDGE_DEPLOYMENTS: b"<html>"}.get)


def test_offline_rebuild_reads_names_and_addresses_from_saved_documents() -> None:
    # Given an edge/ folder without resolution.json, Then org/env/proxy come from the deployments document
    documents = {
        path: value if isinstance(value, bytes) else json.dumps(value).encode()
        for path, value in _verbatim().items()
    }
    resolution = resolution_from_documents(documents.get)
    assert (resolution.org, resolution.env, resolution.proxy) == ("myorg", "test", "hotels")
    assert resolution.backends == (Backend("client.badssl.com", 443, ()),)
    # And with resolution.json, the recorded DNS answers come back
    documents[layout.EDGE_RESOLUTION] = json.dumps(
        {
            **resolution.to_json(),
            "backends": [{"host": "client.badssl.com", "port": 443, "addresses": ["104.154.89.105"]}],
        }
    ).encode()
    assert resolution_from_documents(documents.get).backends[0].addresses == ("104.154.89.105",)


def test_undeployed_proxy_named_even_when_the_org_is_not_readable(emulator: Emulator) -> None:
    # A 403 on the organization cannot say what is missing: the next checks still can
    emulator.fail(f"{ENV_PATH}/apis/{PROXY}/deployments", 404, times=1)
    emulator.fail(f"/v1/organizations/{ORG}", 403, times=1)
    with pytest.raises(EdgeNotFoundError, match=f"'{PROXY}' is not deployed in '{ENV}'"):
        _resolve(emulator)

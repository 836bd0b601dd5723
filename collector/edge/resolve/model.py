"""What resolution produces and consumes: the resolved TLS setup and the document requests behind it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from collector.edge.deployments import MessageProcessor
from collector.settings import Backend

# Backend is the run's one backend type (settings.py, the layer below edge/ and remote/); re-exported here.
__all__ = [
    "PUBLIC_CLOUD_HOST",
    "Backend",
    "DocumentRequest",
    "DocumentSource",
    "ManagementApi",
    "Resolution",
    "TargetTls",
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
        protocols / ciphers: SSLInfo <Protocols>/<Ciphers> as written (``()``: the MP's JVM defaults),
            what the probe offers the backend in the MP's place and the report sets beside the wire.
        common_name / common_name_wildcard: SSLInfo <CommonName> and its wildcardMatch, as
            `edge.targets.SslInfo` reads them.
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
    protocols: tuple[str, ...] = ()
    ciphers: tuple[str, ...] = ()
    common_name: str | None = None
    common_name_wildcard: bool = False

    def to_json(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in vars(self).items()}


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

"""Resolve a proxy's TLS setup: deployed revision, MPs, targets, references, keystores and backends.

One walk (`walk.build_resolution`) follows the playbook's chain over a `DocumentSource`: live, the source
fetches each document from the management API and saves it raw (`resolve_proxy`); offline, it reads the same
paths from a bundle's `edge/` folder (`resolution_from_documents`). Roles: `model.py` the values,
`walk.py` the pure walk, `sources.py` the two document sources. Nothing here imports network code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlsplit

from collector import layout
from collector.edge.deployments import MessageProcessor
from collector.edge.resolve.model import (
    PUBLIC_CLOUD_HOST,
    Backend,
    DocumentRequest,
    DocumentSource,
    ManagementApi,
    Resolution,
    TargetTls,
)
from collector.edge.resolve.sources import BundleSource, ClientSource
from collector.edge.resolve.walk import build_resolution
from collector.errors import EdgeNotFoundError

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
    source = ClientSource(client, org, env, proxy, servers, lookup or client.lookup_addresses)
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
    source = BundleSource(read)
    return build_resolution(source.org, source.env, source.proxy, source)

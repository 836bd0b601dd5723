"""Where the walk gets documents: the management API (saving each body) or a bundle's saved `edge/` folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from collector import layout
from collector.edge.resolve.model import DocumentRequest, ManagementApi
from collector.errors import EdgeAuthError, EdgeError, EdgeNotFoundError, InputError


class ClientSource:
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


class BundleSource:
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
        except (ValueError, RecursionError) as exc:  # RecursionError: nested thousands deep
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
        except (ValueError, RecursionError):
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

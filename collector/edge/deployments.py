"""Deployment and server documents: which revision runs in the env, on which MPs, at which IPs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MESSAGE_PROCESSOR = "message-processor"


@dataclass(frozen=True)
class DeployedServer:
    """One `server[]` entry of a deployment: an MP or router uuid; ``types`` is empty when Edge gave none."""

    uuid: str
    types: tuple[str, ...] = ()
    status: str = ""

    @property
    def is_message_processor(self) -> bool:
        """An entry without types is kept: better one host too many than a missing MP."""
        return not self.types or MESSAGE_PROCESSOR in self.types


@dataclass(frozen=True)
class DeployedRevision:
    """A revision of the proxy in the env, with its `state` (``deployed``, ``undeployed``, ``error``…)."""

    revision: str
    state: str
    servers: tuple[DeployedServer, ...] = ()


@dataclass(frozen=True)
class MessageProcessor:
    """An MP the revision is deployed to; ``address`` is its `internalIP`, None when `/v1/servers` is unknown
    (public cloud) or does not list the uuid."""

    uuid: str
    address: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"uuid": self.uuid, "address": self.address}


def parse_deployments(data: Any, env: str) -> tuple[DeployedRevision, ...]:
    """The revisions of the proxy in `env` from any of Edge's deployment shapes; ValueError when none fits.

    Shapes: env-level `{environment, revision: [{name, server, state}]}`; org-level per proxy
    `{environment: [{name, revision: [...]}]}`; org-level per revision `{environment: [{name, server, state}],
    name: REV}`; env-level per revision `{revision: REV, server, state}`.
    """
    if not isinstance(data, dict):
        raise ValueError("deployment document is not a JSON object")
    revisions = data.get("revision")
    if isinstance(revisions, list):
        return tuple(_revision(entry, "revision[]") for entry in revisions)
    environments = data.get("environment")
    if isinstance(environments, list):
        found: list[DeployedRevision] = []
        for entry in environments:
            if not isinstance(entry, dict) or entry.get("name") != env:
                continue
            if isinstance(entry.get("revision"), list):
                found += [_revision(r, "environment[].revision[]") for r in entry["revision"]]
            else:
                found.append(_revision({**entry, "name": data.get("name")}, "environment[]"))
        return tuple(found)
    if isinstance(revisions, (str, int)) and "server" in data:
        return (_revision({**data, "name": revisions}, "document"),)
    raise ValueError("deployment document has neither 'revision' nor 'environment'")


def deployed_revisions(revisions: tuple[DeployedRevision, ...]) -> tuple[DeployedRevision, ...]:
    """The revisions whose state is `deployed`, newest first."""
    live = [r for r in revisions if r.state.lower() == "deployed"]
    return tuple(sorted(live, key=lambda r: (_number(r.revision), r.revision), reverse=True))


def message_processor_uuids(revisions: tuple[DeployedRevision, ...]) -> tuple[str, ...]:
    """Uuids of the MPs (not routers) the revisions run on, first-seen order, no repeats."""
    uuids = [s.uuid for r in revisions for s in r.servers if s.is_message_processor]
    return tuple(dict.fromkeys(uuids))


def parse_servers(data: Any) -> dict[str, str]:
    """`/v1/servers?pod=gateway` -> uuid -> `internalIP` of each MP; ValueError on a wrong shape."""
    if not isinstance(data, list):
        raise ValueError("server list is not a JSON array")
    addresses: dict[str, str] = {}
    for entry in data:
        if not isinstance(entry, dict):
            continue
        types = entry.get("type") or []
        types = [types] if isinstance(types, str) else types
        uuid, address = entry.get("uUID"), entry.get("internalIP") or entry.get("externalIP")
        if MESSAGE_PROCESSOR in types and isinstance(uuid, str) and isinstance(address, str) and address:
            addresses[uuid] = address
    return addresses


def join_message_processors(
    uuids: tuple[str, ...], addresses: dict[str, str] | None
) -> tuple[MessageProcessor, ...]:
    """Each MP uuid with its address from `parse_servers` (None when unknown)."""
    return tuple(MessageProcessor(uuid, (addresses or {}).get(uuid)) for uuid in uuids)


def _revision(entry: Any, where: str) -> DeployedRevision:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is not a JSON object")
    name = entry.get("name")
    if not isinstance(name, (str, int)) or isinstance(name, bool):
        raise ValueError(f"{where} has no revision name")
    servers = []
    for server in entry.get("server") or []:
        if isinstance(server, dict) and isinstance(server.get("uUID"), str):
            types = server.get("type") or []
            types = [types] if isinstance(types, str) else [str(t) for t in types]
            servers.append(DeployedServer(server["uUID"], tuple(types), str(server.get("status", ""))))
    return DeployedRevision(str(name), str(entry.get("state", "deployed")), tuple(servers))


def _number(revision: str) -> int:
    return int(revision) if revision.isdigit() else -1

"""Deployment and server documents, in every shape edge-api.md quotes."""

from __future__ import annotations

from typing import Any

import pytest

from collector.edge.deployments import (
    DeployedRevision,
    DeployedServer,
    MessageProcessor,
    deployed_revisions,
    join_message_processors,
    message_processor_uuids,
    parse_deployments,
    parse_servers,
)

MP_UUID = "f2e5e34a-5630-43a9-8fef-48a5b9da76d1"
SERVER = {
    "pod": {"name": "pod1", "region": "us-central1"},
    "status": "deployed",
    "type": ["message-processor"],
    "uUID": MP_UUID,
}
ROUTER = {
    "pod": {"name": "pod1", "region": "us-central1"},
    "status": "deployed",
    "type": ["router"],
    "uUID": "r-1",
}

# edge-api.md §1.4, S-DEP verbatim (env-level), with server entries added.
ENV_LEVEL = {
    "environment": "test",
    "name": "hotels",
    "organization": "myorg",
    "revision": [
        {
            "configuration": {"basePath": "/", "steps": []},
            "name": "1",
            "server": [SERVER, ROUTER],
            "state": "deployed",
        }
    ],
}
# edge-api.md §1.4, the CacheNotFound playbook's org-level per-revision example, verbatim.
ORG_REVISION = {
    "aPIProxy": "TestCache",
    "environment": [
        {
            "configuration": {"basePath": "/", "configVersion": "SHA-512:x", "steps": []},
            "name": "prod",
            "server": [SERVER],
            "state": "deployed",
        }
    ],
    "name": "2",
    "organization": "kkalckstein-eval",
}
ORG_PROXY = {
    "environment": [
        {
            "name": "test",
            "revision": [
                {"name": "3", "server": [SERVER], "state": "deployed"},
                {"name": "2", "server": [], "state": "undeployed"},
            ],
        },
        {"name": "prod", "revision": [{"name": "1", "server": [], "state": "deployed"}]},
    ],
    "name": "hotels",
    "organization": "myorg",
}
ENV_REVISION = {
    "aPIProxy": "hotels",
    "configuration": {"basePath": "/", "steps": []},
    "environment": "test",
    "name": "5",
    "organization": "myorg",
    "revision": "5",
    "server": [SERVER],
    "state": "deployed",
}
# edge-api.md §1.6, verbatim (tags trimmed).
SERVERS = [
    {
        "externalHostName": "localhost",
        "externalIP": "192.168.1.11",
        "internalHostName": "localhost",
        "internalIP": "192.168.1.11",
        "isUp": True,
        "pod": "gateway",
        "reachable": True,
        "region": "dc-1",
        "tags": {"property": []},
        "type": ["message-processor"],
        "uUID": "276bc250-7dd0-46a5-a583-fd11eba786f8",
    },
    {
        "internalIP": "192.168.1.11",
        "isUp": True,
        "pod": "gateway",
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
        "uUID": "13cee956-d3a7-4577-8f0f-1694564179e4",
    },
]


@pytest.mark.parametrize(
    "document, env, revisions",
    [
        (ENV_LEVEL, "test", [("1", "deployed", 2)]),
        (ORG_REVISION, "prod", [("2", "deployed", 1)]),
        (ORG_REVISION, "test", []),
        (ORG_PROXY, "test", [("3", "deployed", 1), ("2", "undeployed", 0)]),
        (ENV_REVISION, "test", [("5", "deployed", 1)]),
        ({"environment": "test", "name": "p", "organization": "o", "revision": []}, "test", []),
    ],
    ids=["env-level", "org-revision", "org-revision-other-env", "org-proxy", "env-revision", "undeployed"],
)
def test_every_deployment_shape(
    document: dict[str, Any], env: str, revisions: list[tuple[str, str, int]]
) -> None:
    # Given a deployment document in one of Edge's shapes, When it is parsed for env,
    # Then the revisions, states and server counts come out
    parsed = parse_deployments(document, env)
    assert [(r.revision, r.state, len(r.servers)) for r in parsed] == revisions


@pytest.mark.parametrize("document", [[], {"name": "x"}, {"revision": [{"server": []}]}, "text"])
def test_wrong_shapes_are_value_errors(document: object) -> None:
    with pytest.raises(ValueError):
        parse_deployments(document, "test")


def test_only_deployed_revisions_newest_first_and_only_message_processors() -> None:
    # Given revisions 2 (deployed), 10 (deployed), 3 (undeployed), servers an MP and a router
    revisions = (
        DeployedRevision("2", "deployed", (DeployedServer("a", ("message-processor",)),)),
        DeployedRevision("10", "deployed", (DeployedServer("b", ("router",)), DeployedServer("c"))),
        DeployedRevision("3", "undeployed", (DeployedServer("d", ("message-processor",)),)),
    )
    # When filtered, Then 10 comes before 2 and routers are dropped (typeless entries kept)
    live = deployed_revisions(revisions)
    assert [r.revision for r in live] == ["10", "2"]
    assert message_processor_uuids(live) == ("c", "a")


def test_servers_join_message_processors_to_internal_ips() -> None:
    # Given the verbatim /v1/servers?pod=gateway answer, When joined with deployment uuids,
    # Then the MP gets its internalIP, the management server is not an MP, an unknown uuid has no address
    addresses = parse_servers(SERVERS)
    assert addresses == {"276bc250-7dd0-46a5-a583-fd11eba786f8": "192.168.1.11"}
    joined = join_message_processors(("276bc250-7dd0-46a5-a583-fd11eba786f8", "unknown"), addresses)
    assert joined == (
        MessageProcessor("276bc250-7dd0-46a5-a583-fd11eba786f8", "192.168.1.11"),
        MessageProcessor("unknown", None),
    )
    assert join_message_processors(("x",), None) == (MessageProcessor("x", None),)
    with pytest.raises(ValueError):
        parse_servers({"servers": []})

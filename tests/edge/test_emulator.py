"""The API emulator itself: shapes, auth, debug sessions, fault injection (plain httpx, not our client)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import httpx
import pytest
from cryptography import x509

from collector.edge.targets import parse_target_endpoint, parse_target_server
from tests.edge.conftest import ENV, ORG, PASSWORD, PROXY, REVISION, TOKEN, USERNAME, append_transaction
from tests.lab.emulator import Emulator, EmulatorConfig, java_dn, start_emulator

ENV_PATH = f"/v1/organizations/{ORG}/environments/{ENV}"


def _client(
    emulator: Emulator, auth: httpx.Auth | tuple[str, str] | None = (USERNAME, PASSWORD)
) -> httpx.Client:
    return httpx.Client(base_url=emulator.url, auth=auth, trust_env=False, timeout=10)


@pytest.mark.parametrize(
    "auth, status",
    [
        (None, 401),
        (("nobody@example.com", "x"), 401),
        ((USERNAME, "wrong"), 401),
        (("viewer@example.com", PASSWORD), 403),
        ((USERNAME, PASSWORD), 200),
    ],
    ids=["none", "unknown-user", "wrong-password", "forbidden-user", "right"],
)
def test_basic_auth_is_enforced(emulator: Emulator, auth: tuple[str, str] | None, status: int) -> None:
    with _client(emulator, auth) as client:
        assert client.get(f"/v1/organizations/{ORG}").status_code == status


@pytest.mark.parametrize("token, status", [(TOKEN, 200), ("other", 401)])
def test_bearer_auth_is_enforced(emulator: Emulator, token: str, status: int) -> None:
    with _client(emulator, None) as client:
        response = client.get(f"/v1/organizations/{ORG}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status


def test_deployments_list_message_processors_and_a_router(emulator: Emulator) -> None:
    with _client(emulator) as client:
        env_level = client.get(f"{ENV_PATH}/apis/{PROXY}/deployments").json()
        org_level = client.get(
            f"/v1/organizations/{ORG}/apis/{PROXY}/revisions/{REVISION}/deployments"
        ).json()
        servers = client.get("/v1/servers", params={"pod": "gateway"}).json()
    assert [r["name"] for r in env_level["revision"]] == [REVISION]
    uuids = {s["uUID"] for s in env_level["revision"][0]["server"] if "message-processor" in s["type"]}
    assert uuids == {uuid for uuid, _ in emulator.config.message_processors}
    assert org_level["environment"][0]["name"] == ENV and org_level["name"] == REVISION
    assert {s["uUID"]: s["internalIP"] for s in servers if "message-processor" in s["type"]} == dict(
        emulator.config.message_processors
    )


def test_edge_pretty_prints_json(emulator: Emulator) -> None:
    with _client(emulator) as client:
        text = client.get(f"{ENV_PATH}/references/mp-keystore-ref").text
    assert '"refers" : "mp-keystore"' in text


@pytest.mark.parametrize("style", ["url", "target-server"])
def test_bundle_zip_holds_the_target_endpoint(make_config: Callable[..., EmulatorConfig], style: str) -> None:
    with start_emulator(make_config(style=style)) as emulator, _client(emulator) as client:
        data = client.get(
            f"/v1/organizations/{ORG}/apis/{PROXY}/revisions/{REVISION}", params={"format": "bundle"}
        ).content
        target_server = client.get(f"{ENV_PATH}/targetservers/backend-ts")
    target = zipfile.ZipFile(io.BytesIO(data)).read("apiproxy/targets/default.xml").decode()
    if style == "url":
        assert "<KeyStore>ref://mp-keystore-ref</KeyStore>" in target
        assert "<URL>https://127.0.0.21:9443</URL>" in target
        assert target_server.status_code == 404
    else:
        assert '<Server name="backend-ts"/>' in target and "<SSLInfo>" not in target
        ssl_info = target_server.json()["sSLInfo"]
        assert ssl_info["enabled"] == "true" and ssl_info["clientAuthEnabled"] == "true"
        assert ssl_info["keyStore"] == "ref://mp-keystore-ref"


@pytest.mark.parametrize("style", ["url", "target-server"])
def test_the_served_sslinfo_carries_protocols_ciphers_and_common_name(
        make_config: Callable[..., EmulatorConfig], style: str) -> None:
    # Given a target whose SSLInfo sets Protocols, Ciphers and CommonName (a lab scenario's TargetTls),
    # When the bundle and the target server are fetched, Then the collector's own parsers read them back.
    config = make_config(style=style, protocols=("TLSv1.2",),
                         ciphers=("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",), common_name="backend.lab")
    with start_emulator(config) as emulator, _client(emulator) as client:
        data = client.get(
            f"/v1/organizations/{ORG}/apis/{PROXY}/revisions/{REVISION}", params={"format": "bundle"}
        ).content
        server = client.get(f"{ENV_PATH}/targetservers/backend-ts")
    xml = zipfile.ZipFile(io.BytesIO(data)).read("apiproxy/targets/default.xml")
    if style == "url":
        ssl = parse_target_endpoint(xml, "default", source="bundle").ssl
        assert b"<CommonName>backend.lab</CommonName>" in xml
    else:
        ssl = parse_target_server(server.json()).ssl
        assert server.json()["sSLInfo"]["commonName"] == {"value": "backend.lab", "wildcardMatch": False}
    assert ssl is not None
    assert (ssl.protocols, ssl.ciphers) == (("TLSv1.2",), ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",))


def test_empty_keystore_looks_like_edge(make_config: Callable[..., EmulatorConfig]) -> None:
    with start_emulator(make_config("missing-client-certificate")) as emulator, _client(emulator) as client:
        keystore = client.get(f"{ENV_PATH}/keystores/mp-keystore").json()
        alias = client.get(f"{ENV_PATH}/keystores/mp-keystore/aliases/myKey")
    assert keystore == {"aliases": [], "certs": [], "keys": [], "name": "mp-keystore"}
    assert alias.status_code == 404
    assert alias.json()["code"] == "keymanagement.service.alias_doesnot_exist"


def test_alias_document_describes_the_real_chain(emulator: Emulator) -> None:
    with _client(emulator) as client:
        alias = client.get(f"{ENV_PATH}/keystores/mp-keystore/aliases/myKey").json()
        cert_doc = client.get(f"{ENV_PATH}/keystores/mp-keystore/certs/myKey-cert").json()
        pem = client.get(f"{ENV_PATH}/keystores/mp-keystore/aliases/myKey/certificate").text
    leaf = x509.load_pem_x509_certificates(pem.encode())[0]
    info = alias["certsInfo"]["certInfo"][0]
    assert alias["keyName"] == "myKey-key"
    assert info["subject"] == java_dn(leaf.subject) == "CN=client-good, OU=mp, O=Lab Org, C=US"
    assert info["issuer"] == "CN=Lab CA A, OU=caA, O=Lab Org, C=US"
    assert info["validFrom"] == int(leaf.not_valid_before_utc.timestamp() * 1000)
    assert info["version"] == 3 and info["basicConstraints"] == "CA:FALSE"
    assert alias["certsInfo"]["certInfo"][1]["basicConstraints"].startswith("CA:TRUE")
    assert cert_doc["certName"] == "myKey-cert" and cert_doc["certInfo"] == alias["certsInfo"]["certInfo"]


def test_debug_session_returns_only_new_matching_transactions(emulator: Emulator) -> None:
    config = emulator.config
    sessions = f"{ENV_PATH}/apis/{PROXY}/revisions/{REVISION}/debugsessions"
    append_transaction(config, "before-session")
    with _client(emulator) as client:
        created = client.post(sessions, params={"session": "s1", "timeout": "60"})
        append_transaction(config, "rrt-1")
        append_transaction(config, "other-api", api="someone-else")
        ids = client.get(f"{sessions}/s1/data").json()
        document = client.get(f"{sessions}/s1/data/{ids[0]}").json()
        listed = client.get(sessions).json()
        deleted = client.delete(f"{sessions}/s1")
        gone = client.get(f"{sessions}/s1/data")
    assert created.status_code == 201 and listed == ["s1"] and deleted.status_code == 200
    assert len(ids) == 1 and document["completed"] is True
    assert "rrt-1" in str(document) and "Received fatal alert: bad_certificate" in str(document)
    assert gone.status_code == 404


def test_faults_are_injected_per_path_and_counted(emulator: Emulator) -> None:
    path = f"/v1/organizations/{ORG}"
    emulator.fail(path, 500, times=2)
    with _client(emulator) as client:
        statuses = [client.get(path).status_code for _ in range(3)]
        emulator.invalid_json(path, times=1)
        html = client.get(path)
        emulator.reset(path, times=1)
        with pytest.raises(httpx.TransportError):
            client.get(path)
        emulator.delay(path, 0.01, times=1)
        delayed = client.get(path)
    assert statuses == [500, 500, 200]
    assert html.headers["content-type"] == "text/html"
    assert delayed.status_code == 200
    assert len(emulator.requests_to(path)) == 6


@pytest.mark.parametrize(
    "path, code",
    [
        ("/v1/organizations/nope", "organizations.OrganizationDoesNotExist"),
        (f"/v1/organizations/{ORG}/environments/nope", "messaging.config.beans.EnvironmentDoesNotExist"),
        (f"{ENV_PATH}/apis/nope/deployments", "messaging.config.beans.ApplicationDoesNotExist"),
        (
            f"/v1/organizations/{ORG}/apis/{PROXY}/revisions/99",
            "messaging.config.beans.ApplicationRevisionDoesNotExist",
        ),
        (f"{ENV_PATH}/references/nope", "keymanagement.service.reference_doesnot_exist"),
        (f"{ENV_PATH}/keystores/nope", "keymanagement.service.keystore_doesnot_exist"),
    ],
)
def test_missing_objects_answer_edge_404s(emulator: Emulator, path: str, code: str) -> None:
    with _client(emulator) as client:
        response = client.get(path)
    assert response.status_code == 404 and response.json()["code"] == code


def test_the_most_specific_fault_answers_and_only_it_is_used(emulator: Emulator) -> None:
    organization, keystores = f"/v1/organizations/{ORG}", f"{ENV_PATH}/keystores"
    emulator.fail(organization, 403, times=1)
    emulator.fail(keystores, 500, times=1)
    with _client(emulator) as client:
        statuses = [client.get(keystores).status_code, client.get(keystores).status_code]
        statuses.append(client.get(organization).status_code)
    # The keystores fault answers first; the org-wide one then covers the sub-path once; then nothing is left
    assert statuses == [500, 403, 200]

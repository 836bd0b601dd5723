"""TargetEndpoint XML and target server documents (edge-api.md §1.3 and §2 examples, verbatim)."""

from __future__ import annotations

from typing import Any

import pytest

from collector.edge.targets import (
    SslInfo,
    TargetEndpoint,
    TargetServer,
    parse_bool,
    parse_target_endpoint,
    parse_target_server,
    split_url,
)
from collector.errors import InputError

ONE_WAY = b"""<TargetEndpoint name="default">
  <HTTPTargetConnection>
    <Properties/>
    <SSLInfo>
      <Enabled>true</Enabled>
      <TrustStore>ref://myTrustStoreRef</TrustStore>
    </SSLInfo>
    <URL>https://mocktarget.apigee.net</URL>
  </HTTPTargetConnection>
</TargetEndpoint>"""

TWO_WAY = b"""<TargetEndpoint name="backend">
  <HTTPTargetConnection>
    <SSLInfo>
      <Enabled>true</Enabled>
      <ClientAuthEnabled>true</ClientAuthEnabled>
      <KeyStore>ref://myKeystoreRef</KeyStore>
      <KeyAlias>myKeyAlias</KeyAlias>
      <TrustStore>ref://myTruststoreRef</TrustStore>
      <IgnoreValidationErrors>false</IgnoreValidationErrors>
      <Protocols><Protocol>TLSv1.2</Protocol></Protocols>
    </SSLInfo>
    <URL>https://backend.example:8443/v1</URL>
  </HTTPTargetConnection>
</TargetEndpoint>"""

LOAD_BALANCER = b"""<TargetEndpoint name="default">
  <HTTPTargetConnection>
    <LoadBalancer>
      <Server name="target1"/>
      <Server name="target2"/>
    </LoadBalancer>
    <Path>/v1</Path>
  </HTTPTargetConnection>
</TargetEndpoint>"""

# apigee/devrel southbound-mtls edge.template.json (edge-api.md §1.3): string and real booleans mixed.
DEVREL_SERVER = {
    "host": "client.badssl.com",
    "isEnabled": True,
    "name": "badSSLWithClientCert",
    "port": 443,
    "sSLInfo": {
        "clientAuthEnabled": "true",
        "enabled": "true",
        "ignoreValidationErrors": False,
        "keyAlias": "badSSLClientCert",
        "keyStore": "badSSLKeyStore",
    },
}


@pytest.mark.parametrize(
    "xml, expected",
    [
        (
            ONE_WAY,
            TargetEndpoint(
                "default",
                "https://mocktarget.apigee.net",
                (),
                SslInfo(True, False, None, None, "ref://myTrustStoreRef"),
            ),
        ),
        (
            TWO_WAY,
            TargetEndpoint(
                "backend",
                "https://backend.example:8443/v1",
                (),
                SslInfo(
                    True,
                    True,
                    "ref://myKeystoreRef",
                    "myKeyAlias",
                    "ref://myTruststoreRef",
                    False,
                    ("TLSv1.2",),
                ),
            ),
        ),
        (LOAD_BALANCER, TargetEndpoint("default", None, ("target1", "target2"), None)),
        (
            b'<TargetEndpoint name="local"><LocalTargetConnection><Path>/x</Path></LocalTargetConnection>'
            b"</TargetEndpoint>",
            TargetEndpoint("local", None),
        ),
    ],
    ids=["one-way", "two-way", "load-balancer", "local"],
)
def test_target_endpoint_xml(xml: bytes, expected: TargetEndpoint) -> None:
    # Given a TargetEndpoint from the docs, When parsed, Then URL, servers and SSLInfo come out
    assert parse_target_endpoint(xml, "fallback", source="t.xml") == expected


@pytest.mark.parametrize(
    "xml, defect",
    [
        (b"<TargetEndpoint><HTTPTargetConnection>", "not well-formed XML"),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><TargetEndpoint>&a;</TargetEndpoint>', "DTD"),
    ],
)
def test_broken_target_xml_is_an_input_error(xml: bytes, defect: str) -> None:
    with pytest.raises(InputError, match=defect) as caught:
        parse_target_endpoint(xml, "default", source="edge/proxy-bundle.zip:apiproxy/targets/default.xml")
    assert caught.value.file.endswith("default.xml")


def test_verbatim_target_server_document() -> None:
    # Given the devrel example with "true" strings and a real false, Then both are booleans
    assert parse_target_server(DEVREL_SERVER) == TargetServer(
        "badSSLWithClientCert",
        "client.badssl.com",
        443,
        True,
        SslInfo(True, True, "badSSLKeyStore", "badSSLClientCert", None, False),
    )


def test_target_server_with_references_and_no_port() -> None:
    # Given the virtual-host style sSLInfo with ref:// values (edge-api.md §1.3), Then they stay as written
    document: dict[str, Any] = {
        "host": "h",
        "name": "n",
        "isEnabled": "false",
        "sSLInfo": {
            "ciphers": [],
            "clientAuthEnabled": "true",
            "enabled": "true",
            "ignoreValidationErrors": False,
            "keyAlias": "secure-two-way",
            "keyStore": "ref://secure-two-way",
            "protocols": [],
            "trustStore": "ref://truststore-inbound-test",
        },
    }
    server = parse_target_server(document)
    assert server.port is None and server.enabled is False
    assert server.ssl is not None and server.ssl.keystore == "ref://secure-two-way"


@pytest.mark.parametrize("document", [{"name": "n"}, {"host": "h"}, []])
def test_broken_target_server_documents(document: object) -> None:
    with pytest.raises(ValueError):
        parse_target_server(document)


@pytest.mark.parametrize(
    "value, expected",
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE ", True),
        ("false", False),
        ("yes", False),
        (None, False),
        (1, False),
    ],
)
def test_parse_bool(value: object, expected: bool) -> None:
    assert parse_bool(value) is expected


@pytest.mark.parametrize(
    "url, parts",
    [
        ("https://mocktarget.apigee.net", ("https", "mocktarget.apigee.net", 443)),
        ("http://10.0.0.5:8080/x", ("http", "10.0.0.5", 8080)),
        ("https://[::1]:9443", ("https", "::1", 9443)),
        ("https://{backend.host}/x", ("https", None, None)),
        ("https://host:notaport", ("", None, None)),
    ],
)
def test_split_url(url: str, parts: tuple[str, str | None, int | None]) -> None:
    assert split_url(url) == parts


NEGOTIATION = b"""<TargetEndpoint name="default">
  <HTTPTargetConnection>
    <SSLInfo>
      <Enabled>true</Enabled>
      <TrustStore>ref://myTruststoreRef</TrustStore>
      <Protocols><Protocol>TLSv1.2</Protocol><Protocol>TLSv1.3</Protocol></Protocols>
      <Ciphers><Cipher>TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256</Cipher><Cipher> </Cipher></Ciphers>
      <CommonName wildcardMatch="true">*.backend.example</CommonName>
    </SSLInfo>
    <URL>https://api.backend.example</URL>
  </HTTPTargetConnection>
</TargetEndpoint>"""


def test_target_endpoint_protocols_ciphers_and_common_name() -> None:
    # Given an SSLInfo that limits versions and suites and names the certificate's CommonName (with wildcard)
    ssl = parse_target_endpoint(NEGOTIATION, "default", source="t.xml").ssl
    # Then each is read as written (an empty <Cipher> is none), the wildcard flag from its attribute
    assert ssl == SslInfo(True, False, None, None, "ref://myTruststoreRef", False, ("TLSv1.2", "TLSv1.3"),
                          ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",), "*.backend.example", True)


def test_common_name_without_wildcard_attribute_is_an_exact_match() -> None:
    xml = NEGOTIATION.replace(b' wildcardMatch="true"', b"")
    ssl = parse_target_endpoint(xml, "default", source="t.xml").ssl
    assert ssl is not None and (ssl.common_name, ssl.common_name_wildcard) == ("*.backend.example", False)


@pytest.mark.parametrize(
    "common_name, expected",
    [
        ({"value": "backend.example", "wildcardMatch": "true"}, ("backend.example", True)),
        ({"value": "backend.example"}, ("backend.example", False)),
        ("backend.example", ("backend.example", False)),
        ({"value": "  "}, (None, False)),
        (None, (None, False)),
        (["not", "a", "name"], (None, False)),
    ],
)
def test_target_server_common_name(common_name: object, expected: tuple[str | None, bool]) -> None:
    # Given a target server whose sSLInfo carries commonName as the management API writes it (an object with
    # value and wildcardMatch), a bare string, or garbage
    document: dict[str, Any] = {"host": "h", "name": "n", "sSLInfo": {
        "enabled": "true", "protocols": ["TLSv1.3"], "ciphers": ["TLS_AES_128_GCM_SHA256"],
        "commonName": common_name}}
    ssl = parse_target_server(document).ssl
    # Then the name and the wildcard flag come out, garbage as no name
    assert ssl is not None and (ssl.common_name, ssl.common_name_wildcard) == expected
    assert (ssl.protocols, ssl.ciphers) == (("TLSv1.3",), ("TLS_AES_128_GCM_SHA256",))

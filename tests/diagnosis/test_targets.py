"""Which connections went to the backend in question: targets read from a saved resolution, and the scope
that decides whether a connection attempt is the backend's or only a note."""

from __future__ import annotations

import json

import pytest

from collector.diagnosis.targets import (
    BackendTarget,
    ConfiguredTls,
    attempt_frames,
    attempts_elsewhere_lines,
    backend_scope,
    split_attempts,
    split_endpoint,
    targets_from_resolution,
)
from collector.edge.resolve import TargetTls
from collector.tls.handshake import AttemptEnd, ConnectionAttempt
from tests.diagnosis.builders import handshake
from tests.diagnosis.conftest import resolution


def _target(host: str, port: int | None, *addresses: str, **kwargs: object) -> BackendTarget:
    return BackendTarget(host, port, tuple(addresses), **kwargs)  # type: ignore[arg-type]  # str fields only


def _attempt(
    server: str,
    end: AttemptEnd = AttemptEnd.REFUSED,
    frames: tuple[int, int] = (1, 2),
    client: str = "127.0.0.11:40000",
) -> ConnectionAttempt:
    return ConnectionAttempt(client, server, end, frames=frames, source="mp1.pcap")


def test_targets_from_a_saved_resolution_carry_their_backends_addresses() -> None:
    # Given a resolution with a URL target, a target-server target, a target whose host is a flow variable,
    # and the backends resolved at collection time
    data = resolution()
    data["targets"] += [
        {
            "name": "lb",
            "url": None,
            "host": "ts.lab",
            "port": None,
            "target_server": "ts1",
            "ssl_enabled": True,
        },
        {"name": "dyn", "url": "https://{request.host}/", "host": None, "port": None, "target_server": None},
    ]
    data["backends"] = [
        {"host": "backend.lab", "port": 8443, "addresses": ["10.0.0.5", "10.0.0.5"]},
        {"host": "ts.lab", "port": None, "addresses": ["10.0.0.6"]},
    ]
    # When read
    targets = targets_from_resolution(data, "edge/resolution.json")
    # Then each known target has its addresses (once), its form, and the resolution as its source
    assert [(t.host, t.port, t.addresses, t.effective_port) for t in targets] == [
        ("backend.lab", 8443, ("10.0.0.5",), 8443),
        ("ts.lab", None, ("10.0.0.6",), 443),
    ]
    assert targets[0].describe() == "TargetEndpoint default <URL> https://backend.lab:8443"
    assert targets[1].describe() == "TargetServer ts1 (ts.lab:443)"
    assert {t.source for t in targets} == {"edge/resolution.json"}
    assert targets[1].to_json()["target_server"] == "ts1"


@pytest.mark.parametrize("data", [None, [], {"targets": "x"}, {"targets": [1, {"host": ""}]}])
def test_a_resolution_of_another_shape_gives_no_target(data: object) -> None:
    assert targets_from_resolution(data, "r.json") == ()


def test_an_http_url_without_port_means_port_80() -> None:
    assert _target("plain.lab", None, url="http://plain.lab/").effective_port == 80


SCOPES = {
    # name: (targets, handshakes' (server, sni), endpoint, counts as the backend, its target's host)
    "no target, no handshake: everything counts": ([], [], "127.0.0.1:9", True, None),
    "no target: the server the MP spoke TLS to": (
        [],
        [("127.0.0.21:8443", None)],
        "127.0.0.21:8443",
        True,
        None,
    ),
    "no target: another port is not it": ([], [("127.0.0.21:8443", None)], "127.0.0.21:9", False, None),
    "target address and port": ([_target("b.lab", 8443, "10.0.0.5")], [], "10.0.0.5:8443", True, "b.lab"),
    "target address, other port": ([_target("b.lab", 8443, "10.0.0.5")], [], "10.0.0.5:9443", False, None),
    "other address, target port": ([_target("b.lab", 8443, "10.0.0.5")], [], "10.0.0.6:8443", False, None),
    "IP literal host": ([_target("10.0.0.7", 443)], [], "10.0.0.7:443", True, "10.0.0.7"),
    "IPv6 written long": ([_target("b.lab", 443, "2001:db8:0:0::1")], [], "[2001:db8::1]:443", True, "b.lab"),
    "address learnt from a handshake's SNI": (
        [_target("b.lab", 8443)],
        [("127.0.0.21:8443", "b.lab")],
        "127.0.0.21:8443",
        True,
        "b.lab",
    ),
    "SNI-learnt address, other host on the port": (
        [_target("b.lab", 8443)],
        [("127.0.0.21:8443", "b.lab")],
        "127.0.0.22:8443",
        False,
        None,
    ),
    "address unknown: the port decides": ([_target("b.lab", 8443)], [], "127.0.0.22:8443", True, "b.lab"),
}


@pytest.mark.parametrize("targets,servers,endpoint,included,host", SCOPES.values(), ids=SCOPES.keys())
def test_backend_scope(
    targets: list[BackendTarget],
    servers: list[tuple[str, str | None]],
    endpoint: str,
    included: bool,
    host: str | None,
) -> None:
    # Given the known targets and the handshakes of the capture
    handshakes = [handshake(server=server, sni=sni) for server, sni in servers]
    # When the scope is built, Then the endpoint is (or is not) the backend in question, and of which target
    scope = backend_scope(targets, handshakes)
    assert scope.includes(endpoint) is included
    target = scope.target_for(endpoint)
    assert (target.host if target else None) == host


def test_attempts_split_into_the_backends_and_the_others_with_a_line_each() -> None:
    # Given refused attempts to the target and to another port, and an unanswered one elsewhere
    scope = backend_scope([_target("b.lab", 8443, "10.0.0.5", target_server="ts1")], [])
    attempts = [
        _attempt("10.0.0.5:8443"),
        _attempt("10.0.0.5:9999", frames=(5, 6)),
        _attempt("10.0.0.5:9999", frames=(7, 8)),
        _attempt("10.0.0.9:22", AttemptEnd.UNANSWERED, (9, 12)),
    ]
    # When split
    towards, elsewhere = split_attempts(scope, attempts)
    # Then only the target's attempt counts, and the others are noted per endpoint and ending, with frames
    assert towards == attempts[:1] and elsewhere == attempts[1:]
    assert attempts_elsewhere_lines(scope, attempts) == [
        "10.0.0.5:9999: 2 connection attempt(s) refused (frames 5–6, 7–8 (mp1.pcap)): not a target of this"
        " proxy (TargetServer ts1 (b.lab:8443)), so noted, not judged",
        "10.0.0.9:22: 1 connection attempt(s) unanswered (frames 9–12 (mp1.pcap)): not a target of this proxy"
        " (TargetServer ts1 (b.lab:8443)), so noted, not judged",
    ]


def test_attempt_frames_lists_five_and_counts_the_rest() -> None:
    attempts = [_attempt("10.0.0.5:8443", frames=(n, n + 1)) for n in range(1, 15, 2)]
    assert attempt_frames(attempts) == "frames 1–2, 3–4, 5–6, 7–8, 9–10 (mp1.pcap) and 2 more"


@pytest.mark.parametrize(
    "endpoint,expected",
    [
        ("10.0.0.5:443", ("10.0.0.5", 443)),
        ("[2001:db8:0::1]:8443", ("2001:db8::1", 8443)),
        ("backend", ("backend", 0)),
    ],
)
def test_split_endpoint(endpoint: str, expected: tuple[str, int]) -> None:
    assert split_endpoint(endpoint) == expected


def test_a_target_keeps_the_sslinfo_the_resolution_recorded() -> None:
    # Given a resolution written by edge/resolve (TargetTls.to_json) with versions, suites and a CommonName
    tls = TargetTls("default", "https://backend.lab:8443", "backend.lab", 8443, None, True, True, "ks",
                    "ksRef", "key1", "ts", "tsRef", False, ("TLSv1.2",),
                    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",), "*.lab", True)
    data = json.loads(json.dumps({"targets": [tls.to_json()], "backends": []}))
    # When read back by the analysis
    target, = targets_from_resolution(data, "edge/resolution.json")
    # Then the configured SSLInfo comes with the target
    assert target.tls == ConfiguredTls(True, "ks", "ksRef", "key1", "ts", "tsRef", False, ("TLSv1.2",),
                                       ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",), "*.lab", True)
    assert target.to_json()["tls"] == {**ConfiguredTls().to_json(), **{
        "client_auth_enabled": True, "keystore": "ks", "keystore_reference": "ksRef", "key_alias": "key1",
        "truststore": "ts", "truststore_reference": "tsRef", "protocols": ["TLSv1.2"],
        "ciphers": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"], "common_name": "*.lab",
        "common_name_wildcard": True}}


def test_a_resolution_written_before_the_sslinfo_was_recorded_gives_none() -> None:
    data = resolution()
    for key in ("client_auth_enabled", "keystore", "key_alias"):
        del data["targets"][0][key]
    assert targets_from_resolution(data, "r.json")[0].tls is None
    # and garbage in the lists is left out, not shown
    data["targets"][0].update(client_auth_enabled="yes", protocols=["TLSv1.2", 3, None], ciphers="x")
    tls = targets_from_resolution(data, "r.json")[0].tls
    assert tls is not None
    assert (tls.client_auth_enabled, tls.protocols, tls.ciphers) == (False, ("TLSv1.2",), ())

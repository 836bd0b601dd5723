"""Every lab scenario, named by the cause `collect` should find in it: which backend runs, how, and the
target's SSLInfo the emulator serves and the MP simulator runs.

A scenario's `TargetTls` is computed once (`target_tls`): the emulator writes it into the proxy bundle's
`<SSLInfo>` (or the target server's `sSLInfo`) and serves its truststore certificates, and the MP simulator is
started from the same value, so the management-API documents in a bundle describe the configuration that
failed. What Edge answers the client and logs for each failure: docs/edge-fault-shapes.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.lab.pki import BACKEND_HOST

HEALTHY_CAUSE = "handshake-ok"
UNAVAILABLE = "messaging.adaptors.http.flow.ServiceUnavailable"
SSL_HANDSHAKE_FAILED = "messaging.adaptors.http.flow.SslHandshakeFailed"


@dataclass(frozen=True)
class TargetTls:
    """The target's TLS setup: SSLInfo's `Protocols`, `Ciphers`, `CommonName` and TrustStore contents, plus
    whether the MP sends SNI.

    Attributes:
        protocols / ciphers: SSLInfo `<Protocols>` / `<Ciphers>`; () = the JVM's defaults (element absent).
        common_name: SSLInfo `<CommonName>`: when set the MP verifies that the backend certificate holds
            this name (JSSE endpoint identification), as Edge does; ``None`` = no name check.
        truststore: the lab CAs ("caA", "caB") in the truststore the SSLInfo's TrustStore reference names.
        sni: the MP sends server_name `BACKEND_HOST`. Not an SSLInfo element: on Edge for Private Cloud it is
            the MP's `conf_system_jsse.enableSNIExtension` property (docs/edge-fault-shapes.md).
    """

    protocols: tuple[str, ...] = ()
    ciphers: tuple[str, ...] = ()
    common_name: str | None = None
    truststore: tuple[str, ...] = ("caA",)
    sni: bool = True

    @property
    def sni_name(self) -> str | None:
        return BACKEND_HOST if self.sni else None


@dataclass(frozen=True)
class Scenario:
    """One lab scenario.

    Attributes:
        name: the scenario id (`--scenario`), the cause id it reproduces except for "healthy".
        cause: what `collect` names.
        keystore: the MP keystore (pki.KEYSTORE_SCENARIOS).
        backend / tls_version: the backend kind and the only TLS version it accepts, when the user does not
            say; `backends` lists the kinds the scenario can run with.
        mode: "tls" (two-way TLS backend), "sni" (nginx whose default server rejects handshakes without a
            known server_name), "plain" (HTTP on the port), "closed" (nothing listens).
        certificate: the backend certificate ("good", "expired", "wrong-name").
        backend_ciphers: the OpenSSL cipher string the backend allows ("" = its defaults).
        tls: the target's TLS setup, or the protocol-mismatch rule (`target_tls`).
        errorcode: the fault's errorcode the client gets (docs/edge-fault-shapes.md).
    """

    name: str
    cause: str
    keystore: str = "healthy"
    backend: str = "java"
    tls_version: str = "1.2"
    backends: tuple[str, ...] = ("java", "openssl", "nginx")
    mode: str = "tls"
    certificate: str = "good"
    backend_ciphers: str = ""
    tls: TargetTls = TargetTls()
    errorcode: str = UNAVAILABLE

    def target_tls(self, tls_version: str) -> TargetTls:
        """The TargetTls against a backend accepting only `tls_version`."""
        if self.name == "protocol-mismatch":
            # The MP allows only the version the backend does not: both directions by the backend's version.
            return TargetTls(protocols=("TLSv1.3" if tls_version == "1.2" else "TLSv1.2",))
        return self.tls


_OPENSSL = ("openssl",)
SCENARIO_LIST: tuple[Scenario, ...] = (
    Scenario("ca-mismatch", "ca-mismatch", keystore="ca-mismatch"),
    Scenario("missing-client-certificate", "missing-client-certificate",
             keystore="missing-client-certificate"),
    Scenario("healthy", HEALTHY_CAUSE),
    # TLS 1.2 for the certificate judgements, so the capture shows the backend's chain (TLS 1.3 encrypts it).
    Scenario("server-certificate-untrusted", "server-certificate-untrusted", backend="openssl",
             backends=_OPENSSL, tls=TargetTls(truststore=("caB",)), errorcode=SSL_HANDSHAKE_FAILED),
    Scenario("server-certificate-expired", "server-certificate-expired", backend="openssl", backends=_OPENSSL,
             certificate="expired", errorcode=SSL_HANDSHAKE_FAILED),
    Scenario("server-hostname-mismatch", "server-hostname-mismatch", backend="openssl", backends=_OPENSSL,
             certificate="wrong-name", tls=TargetTls(common_name=BACKEND_HOST),
             errorcode=SSL_HANDSHAKE_FAILED),
    Scenario("protocol-mismatch", "protocol-mismatch", backend="openssl", tls_version="1.3",
             backends=_OPENSSL),
    Scenario("cipher-mismatch", "cipher-mismatch", backend="openssl", backends=_OPENSSL,
             backend_ciphers="ECDHE-RSA-AES256-GCM-SHA384",
             tls=TargetTls(protocols=("TLSv1.2",), ciphers=("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",))),
    Scenario("sni-required", "sni-required", backend="nginx", backends=("nginx",), mode="sni",
             tls=TargetTls(sni=False)),
    Scenario("backend-not-tls", "backend-not-tls", backend="nginx", backends=("nginx",), mode="plain"),
    Scenario("connection-refused", "connection-refused", backend="none", backends=("none",), mode="closed"),
)
SCENARIOS: dict[str, Scenario] = {s.name: s for s in SCENARIO_LIST}
SCENARIO_IDS: tuple[str, ...] = tuple(SCENARIOS)


def scenario(name: str) -> Scenario:
    """The scenario `name`; ValueError listing the valid ids otherwise."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; valid scenarios: {', '.join(SCENARIO_IDS)}")
    return SCENARIOS[name]

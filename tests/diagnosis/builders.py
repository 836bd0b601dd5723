"""Builders of the values the pure rules judge: handshakes as a capture would show them, keystore
evidence, probes."""

from __future__ import annotations

from datetime import datetime, timezone

from cryptography import x509

from collector.diagnosis.evidence import Evidence, KeystoreEvidence
from collector.edge.keystores import CertInfo
from collector.tls.handshake import (
    Alert,
    CertificateRequest,
    CertificateSummary,
    ClientCertificate,
    Handshake,
    Outcome,
    ProbeResult,
)
from collector.tls.names import name_from_string

CA_A = "CN=Lab CA A,OU=caA,O=Lab Org,C=US"
CA_B = "CN=Lab CA B,OU=caB,O=Lab Org,C=US"
ROOT = "CN=Lab Root,O=Lab Org,C=US"
INTERMEDIATE = "CN=Lab Intermediate,O=Lab Org,C=US"
JAVA_CA_A = "CN=Lab CA A, OU=caA, O=Lab Org, C=US"
JAVA_CA_B = "CN=Lab CA B, OU=caB, O=Lab Org, C=US"
BACKEND = "127.0.0.21:8443"
MP = "127.0.0.11:53122"

ALERT_NAMES = {40: "handshake_failure", 42: "bad_certificate", 46: "certificate_unknown", 48: "unknown_ca",
               70: "protocol_version", 116: "certificate_required"}


def der(rfc4514: str) -> bytes:
    return name_from_string(rfc4514).public_bytes()


def request(*names: str, with_der: bool = True, frame: int | None = 7) -> CertificateRequest:
    """A CertificateRequest as the capture reader builds it (text plus DER), or as a probe file has it."""
    return CertificateRequest(
        ca_names=tuple(x509.Name.from_rfc4514_string(n).rfc4514_string() for n in names),
        ca_names_der=tuple(der(n) for n in names) if with_der else (),
        signature_algorithms=("rsa_pss_rsae_sha256",),
        frame=frame,
    )


def alert(code: int, sender: str = "server", frame: int | None = 10) -> Alert:
    description = ALERT_NAMES.get(code, f"alert_{code}")
    return Alert(sender=sender, level="fatal", description=description, code=code, frame=frame)


def handshake(
    *,
    cr: CertificateRequest | None = None,
    sent: bool | None = None,
    client_chain: tuple[CertificateSummary, ...] = (),
    alerts: tuple[Alert, ...] = (),
    outcome: Outcome = Outcome.FAILED,
    version: str = "TLSv1.2",
    server: str = BACKEND,
    sni: str | None = "backend.lab",
    http_status: int | None = None,
    source: str = "lab.pcap",
    client: str = MP,
) -> Handshake:
    cert = None if sent is None else ClientCertificate(sent=sent, chain=client_chain, frame=9)
    return Handshake(
        client=client, server=server, sni=sni, version=version, certificate_request=cr,
        client_certificate=cert, alerts=alerts, outcome=outcome, source=source, frames=(4, 12),
        http_status=http_status,
        encrypted_records=5 if outcome == Outcome.OPAQUE else 0,
    )


def empty_cert_failed(*names: str, code: int = 42, **kwargs: object) -> Handshake:
    """The playbook's capture: CertificateRequest, empty client Certificate, fatal alert."""
    return handshake(cr=request(*names), sent=False, alerts=(alert(code),), **kwargs)  # type: ignore[arg-type]


def opaque_tls13(**kwargs: object) -> Handshake:
    return handshake(outcome=Outcome.OPAQUE, version="TLSv1.3", **kwargs)  # type: ignore[arg-type]


def info(issuer: str, subject: str = "CN=mp-client, O=Lab Org, C=US") -> CertInfo:
    return CertInfo(subject=subject, issuer=issuer, valid_from=datetime(2025, 1, 1, tzinfo=timezone.utc))


def alias_entry(*issuers: str, alias: str = "myKey", keystore: str | None = "myKeystore",
                has_key: bool | None = True, source: str = "alias.json") -> KeystoreEvidence:
    chain = tuple(info(i) for i in issuers)
    return KeystoreEvidence(keystore, alias, has_key, chain, source, f"{alias}-cert", "alias")


def empty_keystore(name: str = "myKeystore", source: str = "keystore-no-key.json") -> KeystoreEvidence:
    return KeystoreEvidence(name, None, False, (), source, None, "keystore")


def probe(cr: CertificateRequest | None, target: str = BACKEND,
          sni: str | None = "backend.lab") -> ProbeResult:
    hs = Handshake(client="127.0.0.1:40000", server=target, sni=sni, version="TLSv1.3",
                   certificate_request=cr, outcome=Outcome.FAILED, source="probe")
    return ProbeResult(target=target, sni=sni, via=None, handshake=hs,
                       reaction="fatal alert certificate_required (116)")


def evidence(*handshakes: Handshake, keystores: tuple[KeystoreEvidence, ...] = (),
             probes: tuple[ProbeResult, ...] = (), key_alias: str | None = None,
             keystore: str | None = None) -> Evidence:
    return Evidence(handshakes=handshakes, keystores=keystores, probes=probes, key_alias=key_alias,
                    keystore=keystore, sources=("lab.pcap",))

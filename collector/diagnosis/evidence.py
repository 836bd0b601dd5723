"""Evidence: what the inputs say about the handshakes, the MP's keystore and the backend's
acceptable CA names.

The types and how parts combine; `inputs.py` builds them from files (`load_evidence`) and support bundles
(`evidence_from_bundle`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from collector.diagnosis.jsse_messages import JsseSign
from collector.diagnosis.targets import BackendTarget
from collector.edge.keystores import CertInfo, parse_alias, parse_cert, parse_keystore, sniff_edge_document
from collector.tls.handshake import CertificateSummary, ConnectionAttempt, Handshake, ProbeResult

StoredCertificate = CertInfo | CertificateSummary


@dataclass(frozen=True)
class KeystoreEvidence:
    """One key entry (or one chain) of the MP's keystore, as one document showed it.

    Attributes:
        keystore: keystore name, ``None`` when the document does not say (a PEM file, a lone cert document).
        alias: alias name, ``None`` for a keystore-wide fact (an empty keystore) or a chain of unknown alias.
        has_key: True when the entry holds a private key, False when the document shows it holds none,
            ``None`` when the document cannot tell (cert documents, PEM chains).
        chain: the stored certificates, leaf first (empty when the document lists names only).
        source: the file (or bundle path) the fact comes from, cited in evidence lines.
        cert: the cert name the entry uses (keystore and cert documents), to join a cert document to
            its alias.
        document: ``keystore``, ``alias``, ``cert`` or ``pem``.
    """

    keystore: str | None
    alias: str | None
    has_key: bool | None
    chain: tuple[StoredCertificate, ...]
    source: str
    cert: str | None = None
    document: str = ""


@dataclass(frozen=True)
class TrustedCertificate:
    """One certificate of the MP's truststore (the anchors a backend chain is verified against).

    Attributes:
        subject / issuer: RFC 4514 names (an Edge cert document's Java spelling when `der` is ``None``).
        source: the file or bundle path it was read from, cited in evidence lines.
        der: the certificate itself; ``None`` when the document holds names only (an Edge cert JSON), so the
            chain can be judged by issuer name but no signature can be checked.
        truststore: the truststore's name when the input says it (a bundle's resolution), else ``None``.
    """

    subject: str
    issuer: str
    source: str
    der: bytes | None = field(default=None, repr=False)
    truststore: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"subject": self.subject, "issuer": self.issuer, "source": self.source,
                "truststore": self.truststore, "names_only": self.der is None}


@dataclass(frozen=True)
class Evidence:
    """Everything `diagnose()` judges; built from files, bundles or a live run.

    Attributes:
        handshakes: every TLS handshake found in the captures, in capture order.
        keystores: one entry per alias/chain known from Edge documents or PEM files.
        probes: active probe results (their CertificateRequest supplies CA names TLS 1.3 hides).
        key_alias: the `KeyAlias` of the target's SSLInfo, ``None`` when unknown.
        keystore: the keystore the target uses (after `ref://` resolution), ``None`` when unknown.
        notes: facts about the inputs worth showing (decryption used, truncated captures...).
        sources: every input file or bundle path read.
        jsse_signs: what the MP's JSSE said about the failure (its system.log lines for the message id, the
            trace's error.cause), in the order read.
        truststore: the MP truststore's certificates (a bundle's truststore, `collect analyze --truststore`);
            empty when no truststore is known, and the backend chain's trust is then not judged.
        truststore_name: the truststore the target's SSLInfo names (after `ref://`), ``None`` when unknown.
        target_hosts: the backend host names of the targets (URL or target server host), the name the MP
            checks the backend certificate against when it sends no SNI.
        connection_attempts: TCP connections of the captures that carried no byte (refused, unanswered,
            closed without data), in capture order; one seen by two captures counts once, like a handshake.
        targets: where the proxy's targets send the message processor (`edge/resolution.json`), ``()`` when
            unknown; decides which connection attempts are the backend's.
    """

    handshakes: tuple[Handshake, ...] = ()
    keystores: tuple[KeystoreEvidence, ...] = ()
    probes: tuple[ProbeResult, ...] = ()
    key_alias: str | None = None
    notes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    keystore: str | None = None
    jsse_signs: tuple[JsseSign, ...] = ()
    truststore: tuple[TrustedCertificate, ...] = ()
    truststore_name: str | None = None
    target_hosts: tuple[str, ...] = ()
    connection_attempts: tuple[ConnectionAttempt, ...] = ()
    targets: tuple[BackendTarget, ...] = ()


def combine_evidence(parts: Sequence[Evidence]) -> Evidence:
    """One Evidence holding every part, in order; the first known key alias and keystore win.

    A connection captured on both ends (the MP's and the backend's capture) counts once: the first capture
    that shows it is kept and a note says where else it was seen.
    """
    handshakes, duplicates = _unique_handshakes(h for p in parts for h in p.handshakes)
    attempts, seen_twice = _first_capture_only((a for p in parts for a in p.connection_attempts),
                                               "connection attempt(s)")
    return Evidence(
        handshakes=handshakes,
        keystores=tuple(k for p in parts for k in p.keystores),
        probes=tuple(r for p in parts for r in p.probes),
        key_alias=next((p.key_alias for p in parts if p.key_alias), None),
        notes=tuple(n for p in parts for n in p.notes) + duplicates + seen_twice,
        sources=tuple(s for p in parts for s in p.sources),
        keystore=next((p.keystore for p in parts if p.keystore), None),
        jsse_signs=tuple(s for p in parts for s in p.jsse_signs),
        truststore=tuple(c for p in parts for c in p.truststore),
        truststore_name=next((p.truststore_name for p in parts if p.truststore_name), None),
        target_hosts=tuple(dict.fromkeys(h for p in parts for h in p.target_hosts)),
        connection_attempts=attempts,
        targets=tuple(t for p in parts for t in p.targets),
    )


def _unique_handshakes(handshakes: Iterable[Handshake]) -> tuple[tuple[Handshake, ...], tuple[str, ...]]:
    return _first_capture_only(handshakes, "connection(s)")


_Seen = TypeVar("_Seen", Handshake, ConnectionAttempt)


def _first_capture_only(items: Iterable[_Seen], what: str) -> tuple[tuple[_Seen, ...], tuple[str, ...]]:
    """Keep each connection (client, server) from the first capture that shows it; a note counts the rest."""
    first_source: dict[tuple[str, str], str] = {}
    kept: list[_Seen] = []
    seen_again: dict[tuple[str, str], int] = {}
    for item in items:
        key = (item.client, item.server)
        source = first_source.setdefault(key, item.source)
        if source != item.source:  # the same connection, seen by another host's capture
            pair = (item.source, source)
            seen_again[pair] = seen_again.get(pair, 0) + 1
            continue
        kept.append(item)
    notes = tuple(f"{again}: {n} {what} also captured in {first}, counted once"
                  for (again, first), n in seen_again.items())
    return tuple(kept), notes


def keystore_evidence_from_document(
    data: Any, source: str, keystore: str | None = None
) -> tuple[KeystoreEvidence, ...]:
    """The key entries an Edge keystore, alias or cert document shows; ValueError when it is malformed.

    `keystore` names the keystore when the document's location says it (a bundle's `edge/keystores/NAME/`).
    """
    kind = sniff_edge_document(data)
    if kind == "keystore":
        doc = parse_keystore(data)
        if doc.aliases:
            return tuple(
                KeystoreEvidence(doc.name, ref.alias, ref.key is not None, (), source, ref.cert, "keystore")
                for ref in doc.aliases
            )
        # Older Edge lists key names only; Edge names the key after its alias.
        entries = tuple(
            KeystoreEvidence(doc.name, key, True, (), source, None, "keystore") for key in doc.keys
        )
        return entries or (KeystoreEvidence(doc.name, None, False, (), source, None, "keystore"),)
    if kind == "alias":
        alias = parse_alias(data)
        return (KeystoreEvidence(keystore, alias.alias, alias.key_name is not None, alias.chain, source,
                                 alias.cert_name, "alias"),)
    if kind == "cert":
        cert = parse_cert(data)
        return (KeystoreEvidence(keystore, None, None, cert.chain, source, cert.cert_name, "cert"),)
    raise ValueError("not an Edge keystore, alias or cert document")


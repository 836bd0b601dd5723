"""The MP truststore as evidence: from `collect analyze --truststore FILE` (PEM, DER or an Edge cert JSON) and
from a bundle (the truststore the resolution names, its certificates saved as PEM beside their cert JSON).

Kept apart from the keystore evidence on purpose: a truststore's certificates are anchors for the backend's
chain, never client certificates, and the keystore judgement must not see them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509

from collector import layout
from collector.diagnosis.bundles import BundleFiles
from collector.diagnosis.evidence import Evidence, TrustedCertificate
from collector.edge.keystores import parse_cert, sniff_edge_document
from collector.errors import InputError
from collector.tls.names import name_to_rfc4514

_MAX_FILE = 8 << 20  # a truststore file of certificates is a few KB; anything this large is another file
_PEM_BEGIN = b"-----BEGIN"
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"
_DER_SEQUENCE = 0x30

# What cryptography raises for bytes that are not the certificate it expects.
_DECODE_ERRORS = (ValueError, TypeError)


def truststore_from_files(paths: Sequence[Path]) -> Evidence:
    """The certificates of every `--truststore` file; InputError names the file and what is wrong with it."""
    certificates: list[TrustedCertificate] = []
    notes: list[str] = []
    for path in paths:
        found = truststore_file(path)
        certificates.extend(found)
        if any(c.der is None for c in found):
            notes.append(f"{path.name}: an Edge cert document holds names only: the backend chain is judged"
                         " by issuer name, its signatures are not checked")
    return Evidence(truststore=tuple(certificates), notes=tuple(notes), sources=tuple(str(p) for p in paths))


def truststore_file(path: Path) -> tuple[TrustedCertificate, ...]:
    """One truststore file: PEM (one or more certificates), DER (one certificate) or an Edge cert document."""
    data = _read(path)
    stripped = data.lstrip()
    if stripped.startswith(_PEM_BEGIN):
        return _pem_certificates(path, data)
    if stripped[:1] in (b"{", b"["):
        return _cert_document(path, data)
    if data[0] == _DER_SEQUENCE:
        try:
            return (_trusted(x509.load_der_x509_certificate(data), path.name),)
        except _DECODE_ERRORS as exc:
            raise InputError(path, "is not a readable DER certificate") from exc
    raise InputError(path, "is not a truststore certificate (PEM, DER or an Edge cert JSON document)")


def truststore_from_bundle(files: BundleFiles, name: str | None) -> Evidence:
    """The certificates of truststore `name` saved in the bundle (`layout.cert_pem`); a cert JSON without its
    PEM still gives the certificate's names. No truststore named, or none of its certificates saved: no
    truststore, and a note says why the chain's trust is not judged."""
    if name is None:
        return Evidence()
    folder = layout.keystore_dir(name)
    certificates: list[TrustedCertificate] = []
    sources: list[str] = []
    names_only = False
    for rel in files.matching(f"{folder}/certs/*.pem"):
        for cert in _pem_or_note(files, rel):
            certificates.append(TrustedCertificate(cert.subject, cert.issuer, files.cite(rel), cert.der,
                                                   name))
        sources.append(files.cite(rel))
    for rel in files.matching(f"{folder}/certs/*.json"):
        if files.exists(rel[: -len(".json")] + ".pem"):
            continue
        try:
            found = _cert_document(Path(files.where(rel)), files.read(rel))
        except InputError:
            continue  # the keystore reader reports a malformed cert document; here it only lacks names
        certificates.extend(TrustedCertificate(c.subject, c.issuer, files.cite(rel), None, name)
                            for c in found)
        sources.append(files.cite(rel))
        names_only = names_only or bool(found)
    notes = []
    if not certificates:
        notes.append(f"truststore {name}: none of its certificates is in the bundle ({folder}/certs/): the"
                     " backend chain's trust is not judged")
    elif names_only:
        notes.append(f"truststore {name}: some certificates are known by name only (cert JSON without its"
                     " PEM): their signatures are not checked")
    return Evidence(truststore=tuple(certificates), truststore_name=name, notes=tuple(notes),
                    sources=tuple(sources))


def anchors_of(certificates: Sequence[TrustedCertificate]) -> list[x509.Certificate]:
    """The truststore certificates that can verify a signature (those read from PEM or DER)."""
    return [x509.load_der_x509_certificate(c.der) for c in certificates if c.der is not None]


def _pem_or_note(files: BundleFiles, rel: str) -> tuple[TrustedCertificate, ...]:
    try:
        return _pem_certificates(Path(files.where(rel)), files.read(rel))
    except InputError:
        return ()  # a damaged export is one anchor fewer; the bundle's other certificates still count


def _read(path: Path) -> bytes:
    if not path.exists():
        raise InputError(path, "does not exist")
    if path.is_dir():
        raise InputError(path, "is a directory, not a truststore certificate file")
    try:
        if path.stat().st_size > _MAX_FILE:
            raise InputError(path, f"is larger than {_MAX_FILE >> 20} MB, too large for a truststore file")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise InputError(path, "is empty")
    return data


def _pem_certificates(path: Path, data: bytes) -> tuple[TrustedCertificate, ...]:
    if _PEM_CERT not in data:
        if b"PRIVATE KEY-----" in data:
            raise InputError(path, "is a private key; a truststore holds certificates only (never share"
                                   " private keys)")
        raise InputError(path, "holds no PEM certificate")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except _DECODE_ERRORS as exc:
        raise InputError(path, "holds a PEM certificate that cannot be read") from exc
    return tuple(_trusted(cert, path.name) for cert in certs)


def _cert_document(path: Path, data: bytes) -> tuple[TrustedCertificate, ...]:
    try:
        parsed: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(path, "is not valid JSON, so not an Edge cert document") from exc
    if sniff_edge_document(parsed) != "cert":
        raise InputError(path, "is JSON but not an Edge cert document (certName and certInfo)")
    try:
        document = parse_cert(parsed)
    except ValueError as exc:
        raise InputError(path, f"is not a valid Edge cert document: {exc}") from exc
    if not document.chain:
        raise InputError(path, "is an Edge cert document without any certificate (empty certInfo)")
    return tuple(TrustedCertificate(c.subject, c.issuer, path.name) for c in document.chain)


def _trusted(cert: x509.Certificate, source: str) -> TrustedCertificate:
    # Imported here: `collect analyze` of a capture alone has no truststore, and this import is ~14 ms
    from cryptography.hazmat.primitives.serialization import Encoding

    return TrustedCertificate(name_to_rfc4514(cert.subject), name_to_rfc4514(cert.issuer), source,
                              cert.public_bytes(Encoding.DER))

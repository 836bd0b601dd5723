"""What the MP's JSSE key manager would do with its keystore for a given list of acceptable CA names.

JSSE (SunX509 and PKIX alike) offers an alias only when it holds a private key and ANY certificate of its
stored chain has an issuer equal (X500Principal canonical form) to one of the server's CA names; an empty
list lets every key entry qualify. When nothing qualifies it sends an empty Certificate message.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cryptography import x509

from collector.diagnosis.evidence import KeystoreEvidence, StoredCertificate
from collector.layout import safe_component
from collector.tls.handshake import CertificateRequest, CertificateSummary
from collector.tls.names import name_from_der, name_from_string, names_match

_DOCUMENT_ORDER = {"keystore": 0, "alias": 1, "cert": 2, "pem": 3}


class KeystoreVerdict(str, enum.Enum):
    """What the keystore evidence says about the client certificate JSSE would send."""

    UNKNOWN = "unknown"  # no keystore evidence, or no chain known for the key entry
    NO_KEY = "no-key"  # no key entry (or none under KeyAlias): the playbook's "No Client Certificate"
    NO_ACCEPTABLE_ISSUER = "no-acceptable-issuer"  # the playbook's "Certificate Authority Mismatch"
    ACCEPTABLE = "acceptable"  # JSSE would have offered this entry


@dataclass(frozen=True)
class AcceptableName:
    """One acceptable CA name: the text to show and the parsed name (``None`` when it cannot be parsed)."""

    text: str
    name: x509.Name | None


@dataclass(frozen=True)
class KeystoreCheck:
    """The verdict with its evidence lines and the names the resolution needs.

    Attributes:
        keystore / alias: the keystore and alias judged, ``None`` when unknown.
        leaf_issuer: issuer of the judged chain's leaf (as the document spells it), ``None`` without a chain.
        chain_length: certificates in the judged chain (1 means the keystore holds the leaf only).
    """

    verdict: KeystoreVerdict
    evidence: tuple[str, ...]
    keystore: str | None = None
    alias: str | None = None
    leaf_issuer: str | None = None
    chain_length: int = 0


def acceptable_names(request: CertificateRequest) -> tuple[AcceptableName, ...]:
    """The CA names of a CertificateRequest, parsed from DER when the capture kept it, else from the text."""
    names = []
    for index, text in enumerate(request.ca_names):
        der = request.ca_names_der[index] if index < len(request.ca_names_der) else None
        parsed = name_from_der(der) if der else None
        if parsed is None:
            parsed = _parse_text(text)
        names.append(AcceptableName(text, parsed))
    return tuple(names)


def merge_entries(entries: Sequence[KeystoreEvidence]) -> tuple[KeystoreEvidence, ...]:
    """Join keystore listings, alias documents, cert documents and PEM chains that describe the same entry."""
    merged: list[KeystoreEvidence] = []
    for entry in sorted(entries, key=lambda e: _DOCUMENT_ORDER.get(e.document, 9)):
        index = _find_partner(merged, entry)
        if index is None:
            merged.append(entry)
            continue
        old = merged[index]
        if entry.document == "cert" and old.chain:
            continue  # the alias document already showed this certificate's chain
        merged[index] = replace(
            old,
            keystore=old.keystore or entry.keystore,
            has_key=entry.has_key if entry.has_key is not None else old.has_key,
            chain=entry.chain or old.chain,
            source=entry.source if entry.chain or entry.has_key is not None else old.source,
            cert=old.cert or entry.cert,
        )
    return tuple(merged)


def check_keystore(
    entries: Sequence[KeystoreEvidence],
    key_alias: str | None,
    keystore: str | None,
    ca_names: Sequence[AcceptableName] | None,
) -> KeystoreCheck:
    """Apply JSSE's alias choice to the keystore evidence;
    `ca_names` ``None`` means the CA list is unknown."""
    if not entries:
        return KeystoreCheck(KeystoreVerdict.UNKNOWN, ())
    relevant = [e for e in merge_entries(entries) if _same_keystore(e.keystore, keystore)]
    if not relevant:
        return KeystoreCheck(KeystoreVerdict.UNKNOWN,
                             (f"the keystore documents given are not for keystore {keystore}",))
    listings = [e for e in entries if e.document == "keystore" and _same_keystore(e.keystore, keystore)]
    name = keystore or next((e.keystore for e in relevant if e.keystore), None)
    if key_alias:
        named = [e for e in relevant if e.alias and e.alias.casefold() == key_alias.casefold()]
        if not named and listings:
            aliases = sorted({e.alias for e in listings if e.alias})
            listed = f"it lists {', '.join(aliases)}" if aliases else "it holds no alias"
            line = f"{listings[0].source}: keystore {name} has no alias {key_alias} (the KeyAlias); {listed}"
            return KeystoreCheck(KeystoreVerdict.NO_KEY, (line,), name, key_alias)
        if named and all(e.has_key is False for e in named):
            line = f"{named[0].source}: alias {key_alias} in keystore {name} holds no private key"
            return KeystoreCheck(KeystoreVerdict.NO_KEY, (line,), name, key_alias)
        candidates = ([e for e in named if e.has_key is not False]
                      + [e for e in relevant if e.alias is None and e.chain])
    else:
        definitive = [e for e in relevant if e.has_key is not None]
        candidates = [e for e in relevant if e.has_key is not False]
        if (definitive and not any(e.has_key for e in definitive)) or not candidates:
            relevant = definitive or relevant
            sources = ", ".join(sorted({e.source for e in relevant}))
            line = f"{sources}: keystore {name or '(unnamed)'} holds no private key (no key entry to send)"
            return KeystoreCheck(KeystoreVerdict.NO_KEY, (line,), name)
    return _check_chains(candidates, ca_names, name, key_alias)


def _check_chains(
    candidates: list[KeystoreEvidence],
    ca_names: Sequence[AcceptableName] | None,
    keystore: str | None,
    key_alias: str | None,
) -> KeystoreCheck:
    chains = [e for e in candidates if e.chain]
    alias = key_alias or next((e.alias for e in candidates if e.alias), None)
    if not chains:
        where = ", ".join(sorted({e.source for e in candidates})) or "the keystore documents"
        line = f"{where}: the key entry's certificate chain is unknown (add the alias or cert document)"
        return KeystoreCheck(KeystoreVerdict.UNKNOWN, (line,), keystore, alias)
    first = chains[0]

    def found(verdict: KeystoreVerdict, lines: tuple[str, ...]) -> KeystoreCheck:
        """A verdict on the first stored chain."""
        return KeystoreCheck(verdict, lines, keystore, first.alias or alias, first.chain[0].issuer,
                             len(first.chain))

    if ca_names is None:
        return found(KeystoreVerdict.UNKNOWN, ())
    if not ca_names:
        line = f"{first.source}: the server named no acceptable CA, so JSSE would offer this key entry"
        return found(KeystoreVerdict.ACCEPTABLE, (line,))
    parsed = [ca for ca in ca_names if ca.name is not None]
    comparable = False
    for entry in chains:
        for position, cert in enumerate(entry.chain):
            issuer = _issuer_name(cert)
            if issuer is None:
                continue
            comparable = True
            for ca in parsed:
                assert ca.name is not None
                if names_match(issuer, ca.name):
                    what = "leaf" if position == 0 else f"certificate {position + 1} of the stored chain"
                    line = f"{entry.source}: {what} was issued by {cert.issuer}, an acceptable CA"
                    return KeystoreCheck(KeystoreVerdict.ACCEPTABLE, (line,), keystore, entry.alias or alias,
                                         entry.chain[0].issuer, len(entry.chain))
    if not comparable or not parsed:
        line = f"{first.source}: the issuers or the CA names could not be parsed, so they cannot be compared"
        return found(KeystoreVerdict.UNKNOWN, (line,))
    return found(KeystoreVerdict.NO_ACCEPTABLE_ISSUER, tuple(_mismatch_line(e) for e in chains))


def _mismatch_line(entry: KeystoreEvidence) -> str:
    if len(entry.chain) == 1:
        return f"{entry.source}: leaf issuer {entry.chain[0].issuer} is not an acceptable CA"
    issuers = "; ".join(dict.fromkeys(c.issuer for c in entry.chain))
    return (f"{entry.source}: no certificate of the stored chain ({len(entry.chain)} certificates) "
            f"was issued by an acceptable CA (issuers: {issuers})")


def _issuer_name(cert: StoredCertificate) -> x509.Name | None:
    if isinstance(cert, CertificateSummary) and cert.issuer_der:
        decoded = name_from_der(cert.issuer_der)
        if decoded is not None:
            return decoded
    return _parse_text(cert.issuer)


def _parse_text(text: str) -> x509.Name | None:
    if text.startswith("hex:"):
        return name_from_der(bytes.fromhex(text[4:])) if _is_hex(text[4:]) else None
    try:
        return name_from_string(text)
    except ValueError:
        return None


def _is_hex(text: str) -> bool:
    return len(text) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in text)


def _same_keystore(a: str | None, b: str | None) -> bool:
    # Bundle folders hold file-name-safe names, so compare those forms.
    return a is None or b is None or safe_component(a) == safe_component(b)


def _find_partner(merged: list[KeystoreEvidence], entry: KeystoreEvidence) -> int | None:
    for index, old in enumerate(merged):
        if not _same_keystore(old.keystore, entry.keystore):
            continue
        if entry.alias and old.alias and old.alias.casefold() == entry.alias.casefold():
            return index
        if entry.document == "cert" and entry.cert and old.cert == entry.cert:
            return index
    return None

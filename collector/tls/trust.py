"""Judge a backend's certificate chain as the MP's JSSE would: trust path, then validity, then the name.

JSSE's order decides which exception the MP logs, so it is kept here: PKIX path building (``unable to find
valid certification path``) first, then validity (``validity check failed``), then endpoint identification
(``No subject alternative DNS name matching … found``). Pure: certificates in, a verdict out.

The trust path is decided by `cryptography`'s X.509 verifier (RFC 5280 path building against the
truststore). That verifier is stricter than JSSE about extensions (it refuses, for example, a CA without key
usage), so a chain it refuses is walked again by name and signature, as PKIX does: when that walk reaches a
trust anchor the chain counts as trusted and the objection is kept as a note: the MP would have accepted it.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from collector.tls.names import name_to_rfc4514

_MAX_PATH = 10  # longer presented chains than this are not real backends


class ChainStatus(str, enum.Enum):
    """The first problem JSSE would report for a chain, or none; values are written to JSON."""

    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    NAME_MISMATCH = "name-mismatch"
    NO_CHAIN = "no-chain"
    UNKNOWN_TRUST = "unknown-trust"  # valid dates and name, but no truststore to judge the path against


@dataclass(frozen=True)
class OutOfValidity:
    """A chain certificate outside its validity at the handshake's time."""

    subject: str
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True)
class ChainVerdict:
    """What the MP would have said of the backend's chain.

    Attributes:
        status: the first problem in JSSE's order, `TRUSTED` when none, `UNKNOWN_TRUST` without a truststore.
        leaf_subject / leaf_issuer: RFC 4514 names of the presented leaf ("" without a chain).
        missing_issuer: the issuer the truststore lacks (the top of the presented chain's issuer), for
            `UNTRUSTED`; ``None`` otherwise.
        out_of_validity: chain certificates outside their validity at `checked_at`.
        name: the name checked against the leaf (SNI or target host), ``None`` when no name was checked.
        leaf_names: the leaf's DNS and IP subject alternative names (or its CN when it has none).
        checked_at: the time the chain was judged at (the handshake's capture time).
        note: why the strict verifier objected although the path reaches an anchor ("" when it did not).
    """

    status: ChainStatus
    leaf_subject: str = ""
    leaf_issuer: str = ""
    missing_issuer: str | None = None
    out_of_validity: tuple[OutOfValidity, ...] = ()
    name: str | None = None
    leaf_names: tuple[str, ...] = ()
    checked_at: datetime | None = None
    note: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "leaf_subject": self.leaf_subject,
            "leaf_issuer": self.leaf_issuer,
            "missing_issuer": self.missing_issuer,
            "out_of_validity": [
                {"subject": o.subject, "not_before": o.not_before.isoformat(),
                 "not_after": o.not_after.isoformat()}
                for o in self.out_of_validity
            ],
            "name": self.name,
            "leaf_names": list(self.leaf_names),
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "note": self.note,
        }


def judge_chain(chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate] | None,
                at: datetime, name: str | None = None) -> ChainVerdict:
    """The verdict on a presented chain (leaf first) against a truststore (``None``: not known) at time `at`.

    `name` is the host the MP connected to (its SNI, or the target's host when it sends none); ``None`` skips
    the name check, as Edge does when the TargetEndpoint does not ask for it.
    """
    if not chain:
        return ChainVerdict(ChainStatus.NO_CHAIN, checked_at=at, name=name)
    at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    leaf = chain[0]
    base = ChainVerdict(ChainStatus.TRUSTED, leaf_subject=name_to_rfc4514(leaf.subject),
                        leaf_issuer=name_to_rfc4514(leaf.issuer), name=name, leaf_names=leaf_names(leaf),
                        checked_at=at)
    note = ""
    if anchors is not None:
        trusted, missing, note = _judge_path(list(chain[:_MAX_PATH]), list(anchors))
        if not trusted:
            return replace(base, status=ChainStatus.UNTRUSTED, missing_issuer=missing, note=note)
    outside = tuple(_out_of_validity(c) for c in chain[:_MAX_PATH] if not _valid_at(c, at))
    if outside:
        expired = any(o.not_after < at for o in outside)
        return replace(base, status=ChainStatus.EXPIRED if expired else ChainStatus.NOT_YET_VALID,
                        out_of_validity=outside, note=note)
    if name is not None and not name_matches(leaf, name):
        return replace(base, status=ChainStatus.NAME_MISMATCH, note=note)
    return replace(base, status=ChainStatus.TRUSTED if anchors is not None else ChainStatus.UNKNOWN_TRUST,
                    note=note)


def leaf_names(leaf: x509.Certificate) -> tuple[str, ...]:
    """The names a client may match: DNS and IP subject alternative names, else the subject's CN."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    except ValueError:  # a malformed extension reads as no names; the chain is still judged on the rest
        san = None
    if san is not None:
        names = [*san.get_values_for_type(x509.DNSName),
                 *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]
        if names:
            return tuple(names)
    return tuple(str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME))


def name_matches(leaf: x509.Certificate, name: str) -> bool:
    """JSSE's HTTPS endpoint identification: an IP needs an IP SAN; a host name a DNS SAN (one leftmost
    wildcard label), or the CN when the certificate has no DNS SAN."""
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        address = None
    names = leaf_names(leaf)
    if address is not None:
        return any(_same_ip(n, address) for n in names)
    wanted = name.rstrip(".").lower()
    return any(_dns_match(n.rstrip(".").lower(), wanted) for n in names if not _is_ip(n))


def _judge_path(chain: list[x509.Certificate],
                anchors: list[x509.Certificate]) -> tuple[bool, str | None, str]:
    """(trusted, missing issuer, note): the strict verifier first, then the PKIX-like walk."""
    if not anchors:
        return False, name_to_rfc4514(top_of_chain(chain).issuer), "the truststore holds no certificate"
    leaf = chain[0]
    # Judge the path alone: validity and the name are checked afterwards, in JSSE's order.
    middle = leaf.not_valid_before_utc + (leaf.not_valid_after_utc - leaf.not_valid_before_utc) / 2
    try:
        verifier = (verification.PolicyBuilder().store(verification.Store(anchors)).time(middle)
                    .max_chain_depth(_MAX_PATH).build_server_verifier(_own_subject(leaf)))
        verifier.verify(leaf, chain[1:])
        return True, None, ""
    except verification.VerificationError as exc:
        objection = str(exc)
    except ValueError as exc:  # e.g. a certificate the verifier cannot parse at all
        objection = str(exc)
    if _walk_reaches_anchor(chain, anchors):
        return True, None, f"strict RFC 5280 verification objected ({objection}); JSSE accepts this path"
    return False, name_to_rfc4514(top_of_chain(chain).issuer), ""


def _own_subject(leaf: x509.Certificate) -> verification.Subject:
    """A name the leaf carries, so that the strict verifier judges the path and not the name."""
    names = leaf_names(leaf)
    first = names[0] if names else "invalid"
    if _is_ip(first):
        return verification.IPAddress(ipaddress.ip_address(first))
    return verification.DNSName(first)


def _walk_reaches_anchor(chain: list[x509.Certificate], anchors: list[x509.Certificate]) -> bool:
    """Follow issuers by name and signature from the leaf through the presented chain to a trust anchor."""
    current = chain[0]
    pool = chain[1:]
    for _ in range(_MAX_PATH + 1):
        for anchor in anchors:
            if anchor.subject == current.issuer and _signed_by(current, anchor):
                return True
            if anchor == current:
                return True
        parent = next((c for c in pool if c.subject == current.issuer and _signed_by(current, c)), None)
        if parent is None or parent == current:
            return False
        current = parent
    return False


def top_of_chain(chain: Sequence[x509.Certificate]) -> x509.Certificate:
    """The last certificate reachable by issuer name from the leaf inside the presented chain."""
    current = chain[0]
    for _ in range(len(chain)):
        parent = next((c for c in chain if c.subject == current.issuer and c != current), None)
        if parent is None:
            break
        current = parent
    return current


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):  # another name, an unusable key type, a bad signature
        return False
    return True


def _valid_at(cert: x509.Certificate, at: datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _out_of_validity(cert: x509.Certificate) -> OutOfValidity:
    return OutOfValidity(name_to_rfc4514(cert.subject), cert.not_valid_before_utc, cert.not_valid_after_utc)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _same_ip(text: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(text) == address
    except ValueError:
        return False


def _dns_match(pattern: str, host: str) -> bool:
    """RFC 6125 6.4.3 as JSSE applies it: a wildcard stands for exactly one whole leftmost label."""
    if not pattern.startswith("*."):
        return pattern == host
    suffix = pattern[1:]  # ".example.com"
    head, _, rest = host.partition(".")
    return bool(head) and "." + rest == suffix and suffix.count(".") >= 2

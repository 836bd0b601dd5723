"""judge_chain on real certificates made here: trust path, validity and name, in JSSE's order."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.tls.trust import ChainStatus, judge_chain, name_matches

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lab"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(cn: str, issuer: Issued | None, *, ca: bool, sans: tuple[str, ...] = (),
           days: tuple[int, int] = (-30, 365), key_usage: bool = True) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name(cn))
               .issuer_name(issuer.cert.subject if issuer else _name(cn))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW + timedelta(days=days[0])).not_valid_after(NOW + timedelta(days=days[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    if key_usage:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False),
            critical=True)
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]),
                                        critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n) for n in sans]),
            critical=False)
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    root_a = _issue("Root A", None, ca=True)
    root_b = _issue("Root B", None, ca=True)
    inter = _issue("Intermediate A1", root_a, ca=True)
    loose_root = _issue("Loose Root", None, ca=True, key_usage=False)
    return {
        "root_a": root_a, "root_b": root_b, "inter": inter,
        "leaf": _issue("backend.lab", inter, ca=False, sans=("backend.lab", "127.0.0.21")),
        "expired": _issue("backend.lab", inter, ca=False, sans=("backend.lab",), days=(-400, -1)),
        "future": _issue("backend.lab", inter, ca=False, sans=("backend.lab",), days=(5, 400)),
        "wildcard": _issue("*.lab.example", inter, ca=False, sans=("*.lab.example",)),
        "cn_only": _issue("legacy.lab", inter, ca=False),
        "loose_root": loose_root,
        "loose_leaf": _issue("loose.lab", loose_root, ca=False, sans=("loose.lab",)),
    }


CASES = [
    # name, chain (leaf first), anchors (None: truststore unknown), name checked, expected status
    ("chain to a trusted root", ["leaf", "inter"], ["root_a"], "backend.lab", ChainStatus.TRUSTED),
    ("root not in the truststore", ["leaf", "inter"], ["root_b"], "backend.lab", ChainStatus.UNTRUSTED),
    ("intermediate missing from the chain", ["leaf"], ["root_a"], "backend.lab", ChainStatus.UNTRUSTED),
    ("empty truststore", ["leaf", "inter"], [], "backend.lab", ChainStatus.UNTRUSTED),
    ("expired leaf, trusted path", ["expired", "inter"], ["root_a"], "backend.lab", ChainStatus.EXPIRED),
    ("leaf not yet valid", ["future", "inter"], ["root_a"], "backend.lab", ChainStatus.NOT_YET_VALID),
    ("untrusted beats expired", ["expired", "inter"], ["root_b"], "backend.lab", ChainStatus.UNTRUSTED),
    ("name not in SAN", ["leaf", "inter"], ["root_a"], "other.lab", ChainStatus.NAME_MISMATCH),
    ("IP in an IP SAN", ["leaf", "inter"], ["root_a"], "127.0.0.21", ChainStatus.TRUSTED),
    ("IP not in SAN", ["leaf", "inter"], ["root_a"], "127.0.0.22", ChainStatus.NAME_MISMATCH),
    ("expired beats the name", ["expired", "inter"], ["root_a"], "other.lab", ChainStatus.EXPIRED),
    ("no name asked", ["leaf", "inter"], ["root_a"], None, ChainStatus.TRUSTED),
    ("no truststore known", ["leaf", "inter"], None, "backend.lab", ChainStatus.UNKNOWN_TRUST),
    ("no truststore, expired", ["expired", "inter"], None, "backend.lab", ChainStatus.EXPIRED),
    ("wildcard matches one label", ["wildcard", "inter"], ["root_a"], "api.lab.example", ChainStatus.TRUSTED),
    ("wildcard is not two labels", ["wildcard", "inter"], ["root_a"], "a.b.lab.example",
     ChainStatus.NAME_MISMATCH),
    ("CN when no SAN", ["cn_only", "inter"], ["root_a"], "legacy.lab", ChainStatus.TRUSTED),
    ("CA without key usage: JSSE's path", ["loose_leaf"], ["loose_root"], "loose.lab", ChainStatus.TRUSTED),
    ("no chain at all", [], ["root_a"], "backend.lab", ChainStatus.NO_CHAIN),
]


@pytest.mark.parametrize(("chain", "anchors", "name", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_judge_chain(pki: dict[str, Issued], chain: list[str], anchors: list[str] | None, name: str | None,
                     expected: ChainStatus) -> None:
    # Given a presented chain and a truststore, When it is judged at the capture's time, Then JSSE's first
    # objection (or none) is the status.
    verdict = judge_chain([pki[c].cert for c in chain],
                          None if anchors is None else [pki[a].cert for a in anchors], NOW, name)
    assert verdict.status is expected, verdict


def test_untrusted_names_the_missing_issuer(pki: dict[str, Issued]) -> None:
    # Given the chain leaf -> Intermediate A1 and a truststore with Root B only, Then the missing issuer is
    # Root A (the issuer of the top of the presented chain).
    verdict = judge_chain([pki["leaf"].cert, pki["inter"].cert], [pki["root_b"].cert], NOW, "backend.lab")
    assert verdict.missing_issuer == "CN=Root A,O=Lab"
    assert verdict.leaf_issuer == "CN=Intermediate A1,O=Lab"


def test_untrusted_without_the_intermediate_names_it(pki: dict[str, Issued]) -> None:
    verdict = judge_chain([pki["leaf"].cert], [pki["root_a"].cert], NOW, "backend.lab")
    assert verdict.missing_issuer == "CN=Intermediate A1,O=Lab"


def test_expired_lists_the_certificate_and_dates(pki: dict[str, Issued]) -> None:
    verdict = judge_chain([pki["expired"].cert, pki["inter"].cert], [pki["root_a"].cert], NOW)
    assert [o.subject for o in verdict.out_of_validity] == ["CN=backend.lab,O=Lab"]
    assert verdict.out_of_validity[0].not_after < NOW
    assert verdict.to_json()["out_of_validity"][0]["subject"] == "CN=backend.lab,O=Lab"  # type: ignore[index]


def test_loose_path_keeps_the_strict_objection_as_a_note(pki: dict[str, Issued]) -> None:
    verdict = judge_chain([pki["loose_leaf"].cert], [pki["loose_root"].cert], NOW, "loose.lab")
    assert verdict.note.startswith("strict RFC 5280 verification objected")


def test_naive_time_is_utc(pki: dict[str, Issued]) -> None:
    naive = NOW.replace(tzinfo=None)
    assert judge_chain([pki["leaf"].cert, pki["inter"].cert], [pki["root_a"].cert], naive).status \
        is ChainStatus.TRUSTED


@pytest.mark.parametrize(("name", "expected"), [
    ("BACKEND.LAB", True), ("backend.lab.", True), ("[127.0.0.21]", True), ("backend", False), ("", False)])
def test_name_matches_edge_forms(pki: dict[str, Issued], name: str, expected: bool) -> None:
    assert name_matches(pki["leaf"].cert, name) is expected

"""The lab PKI: who issued what, what each MP keystore really holds, and reuse of an existing directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.lab.pki import CA_A_NAME, CA_B_NAME, LabPki, create_pki


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certificates_are_issued_by_the_planned_cas(lab_pki: LabPki) -> None:
    ca_a = _cert(lab_pki.ca_a_cert)
    ca_b = _cert(lab_pki.ca_b_cert)
    assert ca_a.subject.rfc4514_string() == CA_A_NAME.replace(", ", ",")
    assert ca_b.subject.rfc4514_string() == CA_B_NAME.replace(", ", ",")
    assert _cert(lab_pki.backend_cert).issuer == ca_a.subject
    assert _cert(lab_pki.client_good_cert).issuer == ca_a.subject
    assert _cert(lab_pki.client_wrongca_cert).issuer == ca_b.subject
    sans = _cert(lab_pki.backend_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["backend.lab", "localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.21"]


@pytest.mark.parametrize(
    ("scenario", "leaf_issuer"),
    [("healthy", CA_A_NAME), ("ca-mismatch", CA_B_NAME)],
)
def test_key_stores_hold_myKey_with_its_chain(lab_pki: LabPki, scenario: str, leaf_issuer: str) -> None:
    store = pkcs12.load_pkcs12(lab_pki.mp_keystore(scenario).read_bytes(), lab_pki.password.encode())
    assert store.key is not None and store.cert is not None
    assert store.cert.friendly_name == b"myKey"
    assert store.cert.certificate.issuer.rfc4514_string() == leaf_issuer.replace(", ", ",")
    [(alias, chain, has_key)] = lab_pki.keystore_entries(scenario)
    assert (alias, len(chain), has_key) == ("myKey", 2, True)


def test_missing_keystore_has_no_key_entry(lab_pki: LabPki) -> None:
    store = pkcs12.load_pkcs12(lab_pki.mp_keystore_missing.read_bytes(), lab_pki.password.encode())
    assert store.key is None and store.cert is None
    assert len(store.additional_certs) == 1
    assert lab_pki.keystore_entries("missing-client-certificate") == []


def test_create_pki_reuses_a_valid_directory(lab_pki: LabPki) -> None:
    before = lab_pki.client_good_cert.read_bytes()
    again = create_pki(lab_pki.directory)
    assert again == lab_pki
    assert again.client_good_cert.read_bytes() == before


def test_unknown_scenario_is_refused(lab_pki: LabPki) -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        lab_pki.mp_keystore("no-such-scenario")

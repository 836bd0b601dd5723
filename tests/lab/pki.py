"""The lab's certificates: two CAs, the backend's server cert, client certs and the Java keystores."""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

PASSWORD = "changeit"
KEY_ALIAS = "myKey"
# Bump when the contents change so that an old directory is regenerated instead of reused.
_PKI_VERSION = 2
_MARKER = "pki.json"

CA_A_NAME = "CN=Lab CA A, OU=caA, O=Lab Org, C=US"
CA_B_NAME = "CN=Lab CA B, OU=caB, O=Lab Org, C=US"
BACKEND_HOST = "backend.lab"
BACKEND_ADDRESS = "127.0.0.21"
OTHER_HOST = "other.lab"  # the only name the wrong-name backend certificate holds

# The MP keystore scenarios; tests/lab/scenarios.py lists every lab scenario (these and the TLS failures).
KEYSTORE_SCENARIOS = ("missing-client-certificate", "ca-mismatch", "healthy")


@dataclass(frozen=True)
class LabPki:
    """Every file of the lab PKI; PEMs for OpenSSL/nginx/the emulator, PKCS12 stores for the Java programs.

    Attributes:
        directory: where everything lives.
        ca_a_cert / ca_b_cert: CA-A (trusted by the backend) and CA-B (unknown to it), PEM.
        backend_cert / backend_key / backend_chain: backend.lab server cert, its key, and cert + CA-A (PEM).
        backend_expired_cert: a backend.lab certificate issued by CA-A that expired yesterday (backend_key's).
        backend_wrongname_cert: a certificate issued by CA-A for other.lab only (backend_key's).
        backend_keystore: PKCS12 with the server key entry (alias "backend") for the Java backend.
        backend_truststore: PKCS12 trusting CA-A only (the Java backend's client-auth truststore).
        client_good_cert / client_good_key: client cert issued by CA-A.
        client_wrongca_cert / client_wrongca_key: client cert issued by CA-B.
        mp_keystore_healthy / mp_keystore_ca_mismatch / mp_keystore_missing: the MP keystores per scenario.
        mp_truststore: PKCS12 trusting CA-A (for the backend's server certificate).
        password / key_alias: of every PKCS12 store and the MP key entry.
    """

    directory: Path
    ca_a_cert: Path
    ca_a_key: Path
    ca_b_cert: Path
    ca_b_key: Path
    backend_cert: Path
    backend_key: Path
    backend_chain: Path
    backend_expired_cert: Path
    backend_wrongname_cert: Path
    backend_keystore: Path
    backend_truststore: Path
    client_good_cert: Path
    client_good_key: Path
    client_wrongca_cert: Path
    client_wrongca_key: Path
    mp_keystore_healthy: Path
    mp_keystore_ca_mismatch: Path
    mp_keystore_missing: Path
    mp_truststore: Path
    password: str = PASSWORD
    key_alias: str = KEY_ALIAS

    def mp_keystore(self, scenario: str) -> Path:
        """The PKCS12 keystore the MP uses in `scenario` (one of KEYSTORE_SCENARIOS)."""
        stores = {
            "missing-client-certificate": self.mp_keystore_missing,
            "ca-mismatch": self.mp_keystore_ca_mismatch,
            "healthy": self.mp_keystore_healthy,
        }
        if scenario not in stores:
            raise ValueError(f"unknown scenario {scenario!r};"
                             f" expected one of {', '.join(KEYSTORE_SCENARIOS)}")
        return stores[scenario]

    def keystore_entries(self, scenario: str) -> list[tuple[str, list[str], bool]]:
        """(alias, PEM chain leaf first, has_key) of the key entries `mp_keystore(scenario)` holds."""
        if scenario == "missing-client-certificate":
            return []
        if scenario == "ca-mismatch":
            chain = [self.client_wrongca_cert, self.ca_b_cert]
        else:
            chain = [self.client_good_cert, self.ca_a_cert]
        self.mp_keystore(scenario)
        return [(self.key_alias, [p.read_text() for p in chain], True)]

    def truststore_certs(self, names: tuple[str, ...] = ("caA",)) -> list[tuple[str, str]]:
        """(name, PEM) of the MP truststore's certificates: the lab CAs `names` ("caA", "caB")."""
        cas = {"caA": self.ca_a_cert, "caB": self.ca_b_cert}
        unknown = [n for n in names if n not in cas]
        if unknown:
            raise ValueError(f"unknown truststore certificate {unknown[0]!r}; expected caA or caB")
        return [(name, cas[name].read_text()) for name in names]

    def backend_certificate(self, kind: str) -> Path:
        """The backend's certificate: "good", "expired" or "wrong-name" (by CA-A, all for backend_key)."""
        certs = {"good": self.backend_cert, "expired": self.backend_expired_cert,
                 "wrong-name": self.backend_wrongname_cert}
        if kind not in certs:
            raise ValueError(f"unknown backend certificate {kind!r}; expected one of {', '.join(certs)}")
        return certs[kind]


def create_pki(directory: Path) -> LabPki:
    """Generate the lab PKI into `directory`, or reuse what a previous call generated there."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    pki = _paths(directory)
    # A lock, because several test processes or labs may share one directory.
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_valid(pki):
            _generate(pki)
    return pki


def _paths(d: Path) -> LabPki:
    return LabPki(
        directory=d,
        ca_a_cert=d / "caA.pem",
        ca_a_key=d / "caA.key",
        ca_b_cert=d / "caB.pem",
        ca_b_key=d / "caB.key",
        backend_cert=d / "backend.pem",
        backend_key=d / "backend.key",
        backend_chain=d / "backend-chain.pem",
        backend_expired_cert=d / "backend-expired.pem",
        backend_wrongname_cert=d / "backend-wrongname.pem",
        backend_keystore=d / "backend-keystore.p12",
        backend_truststore=d / "backend-truststore.p12",
        client_good_cert=d / "client-good.pem",
        client_good_key=d / "client-good.key",
        client_wrongca_cert=d / "client-wrongca.pem",
        client_wrongca_key=d / "client-wrongca.key",
        mp_keystore_healthy=d / "mp-keystore-healthy.p12",
        mp_keystore_ca_mismatch=d / "mp-keystore-ca-mismatch.p12",
        mp_keystore_missing=d / "mp-keystore-missing.p12",
        mp_truststore=d / "mp-truststore.p12",
    )


def _files(pki: LabPki) -> list[Path]:
    return [v for v in vars(pki).values() if isinstance(v, Path) and v != pki.directory]


def _is_valid(pki: LabPki) -> bool:
    marker = pki.directory / _MARKER
    if not marker.exists() or not all(p.exists() and p.stat().st_size > 0 for p in _files(pki)):
        return False
    try:
        if json.loads(marker.read_text()).get("version") != _PKI_VERSION:
            return False
        certs = [pki.ca_a_cert, pki.ca_b_cert, pki.backend_cert, pki.client_good_cert,
                 pki.client_wrongca_cert, pki.backend_wrongname_cert]
        now = datetime.datetime.now(datetime.timezone.utc)
        return all(x509.load_pem_x509_certificate(p.read_bytes()).not_valid_after_utc > now for p in certs)
    except (ValueError, OSError):
        return False


def _generate(pki: LabPki) -> None:
    (pki.directory / _MARKER).unlink(missing_ok=True)
    ca_a_key, ca_a = _make_ca(CA_A_NAME)
    ca_b_key, ca_b = _make_ca(CA_B_NAME)
    backend_key, backend = _make_leaf(
        "CN=backend.lab, O=Lab Org, C=US", ca_a_key, ca_a, server=True,
        sans=[x509.DNSName(BACKEND_HOST), x509.DNSName("localhost"),
              x509.IPAddress(ipaddress.ip_address(BACKEND_ADDRESS))],
    )
    # Same key as the good certificate, so one key file serves every backend certificate.
    _, expired = _make_leaf("CN=backend.lab, O=Lab Org, C=US", ca_a_key, ca_a, server=True,
                            sans=[x509.DNSName(BACKEND_HOST)], key=backend_key,
                            valid=(_now() - datetime.timedelta(days=30), _now() - datetime.timedelta(days=1)))
    _, wrongname = _make_leaf(f"CN={OTHER_HOST}, O=Lab Org, C=US", ca_a_key, ca_a, server=True,
                              sans=[x509.DNSName(OTHER_HOST)], key=backend_key)
    good_key, good = _make_leaf("CN=client-good, OU=mp, O=Lab Org, C=US", ca_a_key, ca_a, server=False)
    wrong_key, wrong = _make_leaf("CN=client-wrongca, OU=mp, O=Lab Org, C=US", ca_b_key, ca_b, server=False)

    for path, key in ((pki.ca_a_key, ca_a_key), (pki.ca_b_key, ca_b_key), (pki.backend_key, backend_key),
                      (pki.client_good_key, good_key), (pki.client_wrongca_key, wrong_key)):
        _write(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), mode=0o600)
    for path, certs in ((pki.ca_a_cert, [ca_a]), (pki.ca_b_cert, [ca_b]), (pki.backend_cert, [backend]),
                        (pki.backend_chain, [backend, ca_a]), (pki.client_good_cert, [good]),
                        (pki.backend_expired_cert, [expired]), (pki.backend_wrongname_cert, [wrongname]),
                        (pki.client_wrongca_cert, [wrong])):
        _write(path, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))

    _write(pki.backend_keystore, _key_store("backend", backend_key, backend, ca_a))
    _write(pki.mp_keystore_healthy, _key_store(KEY_ALIAS, good_key, good, ca_a))
    _write(pki.mp_keystore_ca_mismatch, _key_store(KEY_ALIAS, wrong_key, wrong, ca_b))
    # keytool writes the trustedCertEntry attribute Java needs to see a certificate without key;
    # cryptography's PKCS12 writer has no way to mark a bag as trusted.
    _trust_store(pki.backend_truststore, pki.ca_a_cert, "caA")
    _trust_store(pki.mp_truststore, pki.ca_a_cert, "caA")
    # The "no client certificate" keystore: a valid store whose only entry is a trusted cert, no key entry.
    _trust_store(pki.mp_keystore_missing, pki.ca_b_cert, "caB")
    _write(pki.directory / _MARKER, json.dumps({"version": _PKI_VERSION}).encode())


def _name(display: str) -> x509.Name:
    """'CN=x, OU=y, O=z, C=US' (Java's display order, most specific first) -> a Name encoded C, O, OU, CN."""
    return x509.Name.from_rfc4514_string(",".join(part.strip() for part in display.split(",")))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _make_ca(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = _name(name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(days=1))
        .not_valid_after(_now() + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_leaf(name: str, ca_key: rsa.RSAPrivateKey, ca: x509.Certificate, *, server: bool,
               sans: list[x509.GeneralName] | None = None, key: rsa.RSAPrivateKey | None = None,
               valid: tuple[datetime.datetime, datetime.datetime] | None = None,
               ) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    not_before, not_after = valid or (_now() - datetime.timedelta(days=1),
                                      _now() + datetime.timedelta(days=825))
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name)).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _key_store(alias: str, key: rsa.RSAPrivateKey, cert: x509.Certificate, ca: x509.Certificate) -> bytes:
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(10000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(PASSWORD.encode())
    )
    return pkcs12.serialize_key_and_certificates(alias.encode(), key, cert, [ca], encryption)


def _trust_store(path: Path, cert: Path, alias: str) -> None:
    path.unlink(missing_ok=True)
    keytool = shutil.which("keytool")
    if keytool is None:
        raise RuntimeError("keytool (JDK) not found on PATH; run scripts/setup.sh")
    subprocess.run(
        [keytool, "-importcert", "-noprompt", "-alias", alias, "-file", str(cert), "-keystore", str(path),
         "-storetype", "PKCS12", "-storepass", PASSWORD],
        check=True, capture_output=True, timeout=60,
    )


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)

"""Edge keystore, alias and cert documents (the playbook's "get cert for keystore" output), parsed into
values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class CertInfo:
    """One entry of an Edge `certInfo` list; DNs stay in Edge's Java spelling (`CN=…, O=…, C=…`).

    Attributes:
        subject / issuer: as Edge printed them (parse with `collector.tls.names.name_from_string`).
        valid_from / expiry: UTC times, ``None`` when the document has none.
        serial: Edge's `serialNumber` (``00:92:…``), ``""`` when absent.
        is_valid: Edge's `isValid` (``Yes``/``No``/``Not yet``), ``None`` when absent.
        basic_constraints: Edge's `basicConstraints` (``CA:FALSE``), ``None`` when absent.
    """

    subject: str
    issuer: str
    valid_from: datetime | None = None
    expiry: datetime | None = None
    serial: str = ""
    is_valid: str | None = None
    basic_constraints: str | None = None

    def to_json(self) -> dict[str, str]:
        """Same keys as `CertificateSummary.to_json()`, so chains from both print alike."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.valid_from.isoformat() if self.valid_from else "",
            "not_after": self.expiry.isoformat() if self.expiry else "",
        }


@dataclass(frozen=True)
class AliasRef:
    """One alias listed in a keystore document; ``cert``/``key`` are ``None`` when the alias has none."""

    alias: str
    cert: str | None
    key: str | None


@dataclass(frozen=True)
class KeystoreDocument:
    """`GET …/keystores/{keystore}`: the names of its keys, certs and aliases (older Edge lists no
    aliases)."""

    name: str
    keys: tuple[str, ...]
    certs: tuple[str, ...]
    aliases: tuple[AliasRef, ...] = ()


@dataclass(frozen=True)
class AliasDocument:
    """`GET …/keystores/{keystore}/aliases/{alias}`: the stored chain, leaf first.

    Attributes:
        key_name: the private key's name, ``None`` when the alias holds a certificate only (no key).
        cert_name: ``certsInfo.certName``, ``None`` when absent.
    """

    alias: str
    key_name: str | None
    cert_name: str | None
    chain: tuple[CertInfo, ...]


@dataclass(frozen=True)
class CertDocument:
    """`GET …/keystores/{keystore}/certs/{cert}`: the certificate (chain), leaf first."""

    cert_name: str
    chain: tuple[CertInfo, ...]


def sniff_edge_document(data: object) -> str | None:
    """``"keystore"``, ``"alias"`` or ``"cert"`` when `data` looks like that Edge document, else ``None``."""
    if not isinstance(data, dict):
        return None
    if "certsInfo" in data and "alias" in data:
        return "alias"
    if "certInfo" in data and "certName" in data:
        return "cert"
    if "name" in data and ("keys" in data or "certs" in data):
        return "keystore"
    return None


def parse_keystore(data: dict[str, Any]) -> KeystoreDocument:
    """Parse a keystore document; ValueError names the missing or malformed field."""
    _require_object(data, "keystore document")
    aliases = []
    for index, entry in enumerate(_list(data, "aliases", required=False)):
        where = f"aliases[{index}]"
        _require_object(entry, where)
        name = _optional_str(entry, "aliasName", where) or _optional_str(entry, "alias", where)
        if not name:
            raise ValueError(f"{where} has no aliasName")
        aliases.append(
            AliasRef(name, _optional_str(entry, "cert", where), _optional_str(entry, "key", where))
        )
    return KeystoreDocument(
        name=_str(data, "name", "keystore document"),
        keys=tuple(_str_items(data, "keys")),
        certs=tuple(_str_items(data, "certs")),
        aliases=tuple(aliases),
    )


def parse_alias(data: dict[str, Any]) -> AliasDocument:
    """Parse an alias document; ValueError names the missing or malformed field."""
    _require_object(data, "alias document")
    certs_info = data.get("certsInfo")
    if not isinstance(certs_info, dict):
        raise ValueError("missing field 'certsInfo' (an object with 'certInfo')")
    return AliasDocument(
        alias=_str(data, "alias", "alias document"),
        key_name=_optional_str(data, "keyName", "alias document"),
        cert_name=_optional_str(certs_info, "certName", "certsInfo"),
        chain=_chain(certs_info, "certsInfo.certInfo"),
    )


def parse_cert(data: dict[str, Any]) -> CertDocument:
    """Parse a cert document; ValueError names the missing or malformed field."""
    _require_object(data, "cert document")
    return CertDocument(cert_name=_str(data, "certName", "cert document"), chain=_chain(data, "certInfo"))


def _chain(holder: dict[str, Any], where: str) -> tuple[CertInfo, ...]:
    field = where.rsplit(".", 1)[-1]
    entries = holder.get(field)
    if not isinstance(entries, list):
        raise ValueError(f"missing field '{where}' (a list of certificates)")
    return tuple(_cert_info(entry, f"{where}[{index}]") for index, entry in enumerate(entries))


def _cert_info(entry: object, where: str) -> CertInfo:
    _require_object(entry, where)
    assert isinstance(entry, dict)
    return CertInfo(
        subject=_str(entry, "subject", where),
        issuer=_str(entry, "issuer", where),
        valid_from=_time(entry.get("validFrom"), f"{where}.validFrom"),
        expiry=_time(entry.get("expiryDate"), f"{where}.expiryDate"),
        serial=_optional_str(entry, "serialNumber", where) or "",
        is_valid=_flag(entry.get("isValid")),
        basic_constraints=_optional_str(entry, "basicConstraints", where),
    )


def _time(value: object, where: str) -> datetime | None:
    """Edge writes epoch milliseconds, as a number or a string; ISO 8601 strings are accepted too."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"'{where}' is a boolean, expected epoch milliseconds")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"'{where}' is out of range: {value}") from exc
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"'{where}' is neither epoch milliseconds nor ISO 8601: {value!r}") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise ValueError(f"'{where}' has type {type(value).__name__}, expected epoch milliseconds")


def _flag(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


def _require_object(value: object, where: str) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{where} is not a JSON object")


def _str(holder: dict[str, Any], key: str, where: str) -> str:
    value = holder.get(key)
    if value is None:
        raise ValueError(f"missing field '{key}' in {where}")
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValueError(f"field '{key}' in {where} is not a string")
    return str(value)


def _optional_str(holder: dict[str, Any], key: str, where: str) -> str | None:
    value = holder.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValueError(f"field '{key}' in {where} is not a string")
    return str(value)


def _list(holder: dict[str, Any], key: str, required: bool = True) -> list[Any]:
    value = holder.get(key)
    if value is None:
        if required:
            raise ValueError(f"missing field '{key}' (a list)")
        return []
    if not isinstance(value, list):
        raise ValueError(f"field '{key}' is not a list")
    return value


def _str_items(holder: dict[str, Any], key: str) -> list[str]:
    items = _list(holder, key)
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"field '{key}' must list names (strings)")
    return items

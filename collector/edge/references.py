"""References (`ref://NAME`): the indirection from SSLInfo to a keystore or truststore name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REF_PREFIX = "ref://"


@dataclass(frozen=True)
class Reference:
    """`GET …/references/{name}`: ``refers`` is the keystore/truststore name; ``resource_type`` is
    ``KeyStore`` or ``TrustStore`` (``""`` when absent)."""

    name: str
    refers: str
    resource_type: str = ""


def reference_name(value: str | None) -> str | None:
    """``"ref://myKeystoreRef"`` -> ``"myKeystoreRef"``; None for a literal store name or no value."""
    if value and value.strip().lower().startswith(REF_PREFIX):
        return value.strip()[len(REF_PREFIX) :] or None
    return None


def parse_reference(data: Any) -> Reference:
    """Parse a reference document; ValueError names the missing field."""
    if not isinstance(data, dict):
        raise ValueError("reference document is not a JSON object")
    name, refers = data.get("name"), data.get("refers")
    if not isinstance(name, str) or not name:
        raise ValueError("missing field 'name' in reference document")
    if not isinstance(refers, str) or not refers:
        raise ValueError(f"reference {name!r} has no 'refers'")
    kind = data.get("resourceType")
    return Reference(name, refers, kind if isinstance(kind, str) else "")

"""The closed set of causes (DESIGN.md "Analysis vocabulary") and the verdict type."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Cause(str, enum.Enum):
    """What went wrong, valued exactly as `diagnosis.cause` in `collect analyze --json`."""

    MISSING_CLIENT_CERTIFICATE = "missing-client-certificate"
    CA_MISMATCH = "ca-mismatch"
    CLIENT_CERTIFICATE_NOT_SENT = "client-certificate-not-sent"
    CLIENT_CERTIFICATE_REJECTED = "client-certificate-rejected"
    HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH = "handshake-failed-before-client-auth"
    ENCRYPTED_HANDSHAKE = "encrypted-handshake"
    HANDSHAKE_OK = "handshake-ok"
    NO_TLS_HANDSHAKE = "no-tls-handshake"


@dataclass(frozen=True)
class Diagnosis:
    """The verdict: one cause, a one-line summary, evidence lines citing frames and documents, the fix.

    Attributes:
        backend: the failing backend (``ip:port`` and SNI) the cause describes, ``None`` when none applies.
        counts: per backend, outcome -> number of handshakes (``{"127.0.0.21:8443 (sni)": {"failed": 3}}``).
    """

    cause: Cause
    summary: str
    evidence: tuple[str, ...]
    resolution: str
    backend: str | None = None
    counts: dict[str, dict[str, int]] | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "cause": self.cause.value,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "resolution": self.resolution,
            "backend": self.backend,
            "counts": self.counts or {},
        }

"""The verdict's values: the closed set of causes (DESIGN.md "Analysis vocabulary"), the diagnosis, and what
the reports print for a cause. Stdlib only, so the report writer can take these values without the rules."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Cause(str, enum.Enum):
    """What went wrong, valued exactly as `diagnosis.cause` in `collect analyze --json`.

    Each value has one spec module in `diagnosis/causes/` and one line in `causes/registry.py`.
    """

    MISSING_CLIENT_CERTIFICATE = "missing-client-certificate"
    CA_MISMATCH = "ca-mismatch"
    CLIENT_CERTIFICATE_NOT_SENT = "client-certificate-not-sent"
    CLIENT_CERTIFICATE_REJECTED = "client-certificate-rejected"
    SERVER_CERTIFICATE_UNTRUSTED = "server-certificate-untrusted"
    SERVER_CERTIFICATE_EXPIRED = "server-certificate-expired"
    SERVER_HOSTNAME_MISMATCH = "server-hostname-mismatch"
    PROTOCOL_MISMATCH = "protocol-mismatch"
    CIPHER_MISMATCH = "cipher-mismatch"
    SNI_REQUIRED = "sni-required"
    BACKEND_NOT_TLS = "backend-not-tls"
    CONNECTION_REFUSED = "connection-refused"
    HANDSHAKE_FAILED_BEFORE_CLIENT_AUTH = "handshake-failed-before-client-auth"
    ENCRYPTED_HANDSHAKE = "encrypted-handshake"
    HANDSHAKE_OK = "handshake-ok"
    NO_TLS_HANDSHAKE = "no-tls-handshake"


@dataclass(frozen=True)
class ProbedFact:
    """One fact an active probe established (`collect probe`, or the run's probe stage), never a capture.

    Attributes:
        kind: ``chain``, ``protocols``, ``ciphers`` or ``sni``.
        target: ``host:port`` probed. via: the MP the probe ran on, ``None`` for the collector's machine.
        status: the short answer: a chain status (``trusted``, ``untrusted``, ``expired``, ``name-mismatch``,
            ``unknown-trust``), ``accepted``/``mismatch`` for protocols and ciphers, ``required``/
            ``not-required``/``undecided`` for SNI.
        detail: one sentence for the reader. values: the lists behind it (offered and accepted versions or
            suites, the SNI name...), JSON-ready.
    """

    kind: str
    target: str
    via: str | None
    status: str
    detail: str
    values: Mapping[str, object] | None = None

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "target": self.target, "via": self.via, "status": self.status,
                "detail": self.detail, "values": dict(self.values or {}), "origin": "probed"}


@dataclass(frozen=True)
class Diagnosis:
    """The verdict: one cause, a one-line summary, evidence lines citing frames and documents, the fix.

    Attributes:
        backend: the failing backend (``ip:port`` and SNI) the cause describes, ``None`` when none applies.
        counts: per backend, outcome -> number of handshakes (``{"127.0.0.21:8443 (sni)": {"failed": 3}}``).
        chain: the verdict on the backend's certificate chain (status, missing issuer, dates, names, what
            decided it), ``None`` when the cause does not rest on it.
        probed: what probes of the backends established (marked as probed, not captured), in input order.
        named_from_probe: True when the cause rests on a probe alone: no capture shows the failure.
    """

    cause: Cause
    summary: str
    evidence: tuple[str, ...]
    resolution: str
    backend: str | None = None
    counts: dict[str, dict[str, int]] | None = None
    chain: Mapping[str, object] | None = None
    probed: tuple[ProbedFact, ...] = ()
    named_from_probe: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "cause": self.cause.value,
            "summary": self.summary,
            "evidence": list(self.evidence),
            "resolution": self.resolution,
            "backend": self.backend,
            "counts": self.counts or {},
            "chain": dict(self.chain) if self.chain is not None else None,
            "named_from_probe": self.named_from_probe,
            "probed": [fact.to_json() for fact in self.probed],
        }


# The playbook's section names, as SUMMARY.md's "Playbook sections tried" table prints them.
SECTION_COMMON = "Common Diagnosis Steps"
SECTION_NO_CLIENT_CERTIFICATE = "Cause: No Client Certificate"
SECTION_CA_MISMATCH = "Cause: Certificate Authority Mismatch"


@dataclass(frozen=True)
class SectionResult:
    """What one playbook section found for a cause.

    Attributes:
        section: the section's name (``SECTION_*``). ran: whether the tool carried it out.
        finding: what it found, or why it was not run.
    """

    section: str
    ran: bool
    finding: str


@dataclass(frozen=True)
class CauseReport:
    """What SUMMARY.md and report.html print for a cause: the same words in both, from the cause's spec.

    Attributes:
        cause: the cause this content belongs to.
        title: the heading of the Diagnosis section.
        body: the paragraph under it, written as SUMMARY.md prints it: hard line breaks, `code` spans and
            "quoted" names; report.html joins the lines and typesets the spans and quotes.
        wire: what the capture showed, for the "Common Diagnosis Steps" row (``capture: …``).
        sections: the playbook sections the verdict answers, in the order the table lists them.
        healthy: True when the verdict says nothing is broken (report.html shows it as good news).
        must_gather: checklist keys (`bundle/checklist.py`) the verdict rests on; when given, the cause's
            section lists each item with its state, so the reader sees what to collect next.
    """

    cause: Cause
    title: str
    body: str
    wire: str
    sections: tuple[SectionResult, ...]
    healthy: bool = False
    must_gather: tuple[str, ...] = ()

    @property
    def headline(self) -> str:
        """The title as the reports' page heading says it (``Protocol mismatch``, without ``Cause: ``)."""
        return self.title.removeprefix("Cause: ")

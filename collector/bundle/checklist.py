"""The playbook's "Must Gather Diagnostic Information" checklist and which playbook sections ran, as values.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from collector.diagnosis.verdict import (
    SECTION_CA_MISMATCH,
    SECTION_COMMON,
    SECTION_NO_CLIENT_CERTIFICATE,
    CauseReport,
    SectionResult,
)

__all__ = [
    "CHECKLISTS", "SECTION_CA_MISMATCH", "SECTION_COMMON", "SECTION_NO_CLIENT_CERTIFICATE", "ChecklistItem",
    "Cloud", "ItemState", "SectionResult", "Symptom", "build_checklist", "build_sections",
]


class Cloud(str, enum.Enum):
    """Which must-gather list applies."""

    PUBLIC = "public"
    PRIVATE = "private"


class ItemState(str, enum.Enum):
    """A checklist item's state, as printed in SUMMARY.md."""

    COLLECTED = "collected"
    MISSING = "missing"
    NOT_APPLICABLE = "not applicable"


# Checklist keys: the run says which of them it has (bundle paths) with these names.
ORG, ENV, PROXY, CURL, TRACE, BACKEND_CAPTURE = "org", "env", "proxy", "curl", "trace", "backend-capture"
ERROR_MESSAGE, PROXY_BUNDLE, MP_LOG, CAPTURE, KEYSTORE_CERT = (
    "error-message", "proxy-bundle", "mp-log", "capture", "keystore-cert")

# The playbook's words, in its order.
CHECKLISTS: dict[Cloud, tuple[tuple[str, str], ...]] = {
    Cloud.PUBLIC: (
        (ORG, "Organization name"),
        (ENV, "Environment name"),
        (PROXY, "API proxy name"),
        (CURL, "Complete curl command to reproduce the error"),
        (TRACE, "Trace file showing the error"),
        (BACKEND_CAPTURE, "TCP/IP packets captured on the backend server"),
    ),
    Cloud.PRIVATE: (
        (ERROR_MESSAGE, "Complete error message observed"),
        (PROXY_BUNDLE, "API proxy bundle"),
        (TRACE, "Trace file showing the error"),
        (MP_LOG, "Message Processor logs /opt/apigee/var/log/edge-message-processor/logs/system.log"),
        (CAPTURE, "TCP/IP packets captured on the backend server or the Message Processor"),
        (KEYSTORE_CERT, "Output of the Get cert for keystore API"),
    ),
}


@dataclass(frozen=True)
class ChecklistItem:
    """One must-gather item.

    Attributes:
        key: one of the checklist keys above. label: the playbook's words.
        paths: bundle paths holding it (empty unless collected).
        reason: why it is missing or not applicable ("" when collected).
    """

    key: str
    label: str
    state: ItemState
    paths: tuple[str, ...] = ()
    reason: str = ""


def build_checklist(
    cloud: str, present: Mapping[str, str | Sequence[str] | None], reasons: Mapping[str, str]
) -> list[ChecklistItem]:
    """The must-gather list of `cloud` (``public``/``private``) from what the run has.

    `present` maps a checklist key to the bundle path(s) holding it; a key mapped to ``None`` (or nothing) is
    *missing* and a key left out is *not applicable*; `reasons` says why for either. Keys of the other cloud's
    list are ignored, so the run may pass one mapping for both.
    """
    items = []
    for key, label in CHECKLISTS[Cloud(cloud)]:
        if key not in present:
            items.append(ChecklistItem(key, label, ItemState.NOT_APPLICABLE, (), reasons.get(key, "")))
            continue
        value = present[key]
        paths = (value,) if isinstance(value, str) else tuple(value or ())
        if paths:
            items.append(ChecklistItem(key, label, ItemState.COLLECTED, paths))
        else:
            items.append(ChecklistItem(key, label, ItemState.MISSING, (), reasons.get(key, "not collected")))
    return items


@dataclass(frozen=True)
class Symptom:
    """What the failing request showed; every field is ``None`` when it was not observed.

    Attributes:
        http_status: status of the reproduction (503 expected). errorcode / faultstring: from its fault body.
        error_cause: the trace's ``error.cause``. message_id: ``X-Apigee.Message-ID``.
        mp_log_line: the MP's ``handshakeFailed`` line for that message id.
    """

    http_status: int | None = None
    errorcode: str | None = None
    faultstring: str | None = None
    error_cause: str | None = None
    message_id: str | None = None
    mp_log_line: str | None = None


# The cause sections the table lists when no cause was named.
_UNDECIDED_SECTIONS = (SECTION_NO_CLIENT_CERTIFICATE, SECTION_CA_MISMATCH)


def build_sections(cause_report: CauseReport | None, symptom: Symptom) -> tuple[SectionResult, ...]:
    """Which playbook sections the run carried out and what each found, from the cause's report content (its
    spec's `CauseReport`, ``None`` when no cause was named) and the symptom."""
    seen = []
    if symptom.http_status is not None:
        seen.append(f"HTTP {symptom.http_status}")
    if symptom.error_cause:
        seen.append(f"trace error.cause: {symptom.error_cause}")
    if symptom.message_id:
        seen.append(f"X-Apigee.Message-ID {symptom.message_id}")
    if symptom.mp_log_line:
        seen.append("the MP log has the handshakeFailed line")
    if cause_report is None:
        ran = bool(seen)
        seen.append("the captures could not be analyzed")
        return (SectionResult(SECTION_COMMON, ran, "; ".join(seen)),
                *(SectionResult(name, False, "undecided: no analysis") for name in _UNDECIDED_SECTIONS))
    seen.append(f"capture: {cause_report.wire}")
    return (SectionResult(SECTION_COMMON, True, "; ".join(seen)),
            *cause_report.sections)

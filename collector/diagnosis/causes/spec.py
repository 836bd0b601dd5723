"""The shape of a cause: its rule, its texts (with variants) and its report content, in one value."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from collector.diagnosis.backends import Facts
from collector.diagnosis.verdict import Cause, CauseReport

# Placeholders several causes' texts use, with the words printed when the evidence does not know the value.
SHARED_DEFAULTS: Mapping[str, str] = {
    "backend": "the backend",
    "keystore": "the keystore named by the target's SSLInfo",
    "alias": "the alias the target's KeyAlias names",
    "acceptable": "see the certificate request",
    "reaction": "no alert seen",
}


class Cited(str, enum.Enum):
    """What on the wire a cause rests on: the annotated capture (`diagnosis/citations.py`) comments on the
    frames that carried it."""

    CLIENT_HELLO = "client-hello"  # versions and suites offered, the SNI or its absence
    SERVER_HELLO = "server-hello"  # the version and suite chosen
    SERVER_CERTIFICATE = "server-certificate"  # the backend's chain, with the chain verdict
    CERTIFICATE_REQUEST = "certificate-request"  # the acceptable CA names
    CLIENT_CERTIFICATE = "client-certificate"  # what the message processor sent, or that it was empty
    ALERT = "alert"  # who ended the handshake, and why
    NON_TLS_REPLY = "non-tls-reply"  # what came back instead of TLS
    CONNECTION_ATTEMPT = "connection-attempt"  # the SYN, and the RST (or nothing) that answered it


@dataclass(frozen=True)
class Finding:
    """A rule's verdict before its texts are rendered.

    Attributes:
        backend: the backend the finding describes, ``None`` when none applies.
        evidence: lines citing frames and documents.
        values: the placeholders of the texts this finding knows ("" means unknown: the default prints).
        variant: a key of the spec's `variants`, "" for the cause's own texts.
        chain: the verdict on the backend's certificate chain the finding rests on (JSON-ready), ``None``
            when the cause does not judge it.
        from_probe: True when only a probe shows the failure (no capture does): the verdict says so.
    """

    backend: str | None
    evidence: tuple[str, ...]
    values: Mapping[str, str] = field(default_factory=dict)
    variant: str = ""
    chain: Mapping[str, object] | None = None
    from_probe: bool = False


Rule = Callable[[Facts], "Finding | None"]


@dataclass(frozen=True)
class Texts:
    """`str.format` texts: the one-line summary and the fix; unknown placeholders print their default."""

    summary: str
    resolution: str


@dataclass(frozen=True)
class CauseSpec:
    """Everything about one cause; `registry.REGISTRY` lists the specs in the order their rules are tried.

    Attributes:
        cause: the cause's id. rule: facts -> finding, or ``None`` to let the next cause's rule try.
        texts: summary and resolution. variants: other texts a finding picks by name when evidence narrows it.
        defaults: words for this cause's own placeholders (`SHARED_DEFAULTS` holds the common ones).
        report: the heading, paragraph, capture line and playbook sections SUMMARY.md and report.html print.
        cites: what on the wire the verdict rests on, commented in the annotated capture for Wireshark.
    """

    cause: Cause
    rule: Rule
    texts: Texts
    report: CauseReport
    variants: Mapping[str, Texts] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)
    cites: tuple[Cited, ...] = ()

    def texts_for(self, variant: str = "") -> Texts:
        """The cause's texts, or those of one of its variants."""
        return self.variants.get(variant, self.texts) if variant else self.texts

    def render(self, template: str, values: Mapping[str, str]) -> str:
        """Fill a text; a value the finding does not know prints as its default wording."""
        known = {k: v for k, v in values.items() if v}
        return template.format_map({**SHARED_DEFAULTS, **self.defaults, **known})

"""What a probe asks a backend beyond one handshake, as data: which of the MP's protocol versions and cipher
suites it accepts, whether it needs SNI, and what the MP would say of its certificate chain.

Pure: `run_survey` drives a handshake function it is given (pyOpenSSL on this machine, `openssl s_client` on
an MP) within a fixed number of handshakes, and `check_chain` judges a chain with `tls.trust`. The shapes
here are what `collect probe --json` writes under ``survey`` and what the diagnosis cites as probed facts.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography import x509

from collector.tls.jsse_defaults import (
    JSSE_DEFAULT_CIPHER_SUITES,
    JSSE_DEFAULT_PROTOCOLS,
    JSSE_DEFAULTS_NAME,
    is_tls13_suite,
    openssl_name,
    protocol_name,
)
from collector.tls.trust import ChainStatus, ChainVerdict, judge_chain

# Handshakes one survey may make, the first (the probe's own) included: 2 per offered version at most, 1 for
# SNI, and what is left lists the accepted suites one by one. A backend sees a short burst, never a scan.
MAX_HANDSHAKES = 16
MAX_CHAIN = 10  # certificates of a presented chain judged; real backends send 2 to 4
_VERSION_ORDER = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_UNTESTABLE = frozenset({"SSLv3"})  # OpenSSL 1.1+ cannot send it, so the probe cannot tell


class ProtocolStatus(str, enum.Enum):
    """What the backend did with one offered version; values are written to JSON."""

    ACCEPTED = "accepted"  # a handshake in this version with the MP's suites completed
    SUITES_REFUSED = "suites-refused"  # the version, yes, but none of the MP's suites for it
    REFUSED = "refused"  # not even with the probe's broad suite list
    NO_SUITE = "no-offered-suite"  # the MP's Ciphers hold no suite of this version: it cannot offer it
    UNTESTED = "untested"  # the probe cannot send it (SSLv3), or the handshake budget ran out


@dataclass(frozen=True)
class Offer:
    """What the message processor offers: its `SSLInfo` <Protocols>/<Ciphers>, else JSSE's defaults.

    Attributes:
        protocols / ciphers: names as JSSE spells them (``TLSv1.2``, IANA suite names).
        source: where they come from, e.g. ``SSLInfo`` or ``JSSE 17 defaults``, for each of the two.
    """

    protocols: tuple[str, ...]
    ciphers: tuple[str, ...]
    protocols_source: str
    ciphers_source: str

    def to_json(self) -> dict[str, object]:
        return {"protocols": list(self.protocols), "ciphers": list(self.ciphers),
                "protocols_source": self.protocols_source, "ciphers_source": self.ciphers_source}


def make_offer(protocols: Sequence[str] = (), ciphers: Sequence[str] = (),
               source: str = "SSLInfo") -> Offer:
    """The MP's offer: the given (configured) names, JSSE's defaults for what is not given.

    Raises ValueError naming a protocol that is no TLS version name.
    """
    versions = []
    for text in protocols:
        name = protocol_name(text)
        if name is None:
            raise ValueError(f"{text!r} is not a TLS version (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)")
        versions.append(name)
    suites = [c.strip().upper() for c in ciphers if c.strip()]
    return Offer(
        tuple(dict.fromkeys(versions)) or JSSE_DEFAULT_PROTOCOLS,
        tuple(dict.fromkeys(suites)) or JSSE_DEFAULT_CIPHER_SUITES,
        source if versions else JSSE_DEFAULTS_NAME,
        source if suites else JSSE_DEFAULTS_NAME,
    )


@dataclass(frozen=True)
class AttemptSpec:
    """One handshake to try: a version (``None``: the probe's range), suites (IANA names; ``None``: the
    probe's broad list) and the server name (``None``: no server_name extension)."""

    version: str | None
    suites: tuple[str, ...] | None
    sni: str | None


@dataclass(frozen=True)
class AttemptOutcome:
    """How one handshake went.

    `error`: no TLS conversation at all (refused, unreachable): the survey stops there.
    """

    accepted: bool
    version: str | None = None
    cipher: str | None = None  # IANA name
    detail: str = ""
    error: bool = False


@dataclass(frozen=True)
class Attempt:
    """One handshake of the survey, as JSON shows it (the why, what was offered, what came back)."""

    purpose: str  # "protocol", "protocol-any-suite", "sni", "cipher"
    spec: AttemptSpec
    outcome: AttemptOutcome

    def to_json(self) -> dict[str, object]:
        return {"purpose": self.purpose, "version": self.spec.version,
                "suites": None if self.spec.suites is None else list(self.spec.suites),
                "sni": self.spec.sni, "accepted": self.outcome.accepted,
                "negotiated_version": self.outcome.version, "negotiated_cipher": self.outcome.cipher,
                "detail": self.outcome.detail}


@dataclass(frozen=True)
class ProtocolResult:
    """One offered version: status, the suite the backend chose among the MP's, and how it answered."""

    version: str
    status: ProtocolStatus
    cipher: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        return {"version": self.version, "status": self.status.value, "cipher": self.cipher,
                "detail": self.detail}


@dataclass(frozen=True)
class SniCheck:
    """A handshake with the server name compared with one without it.

    required: True when the backend answered with the name and refused without; ``None`` when not compared
    (an IP target has no name to send, or the handshake with the name failed too).
    """

    required: bool | None
    name: str | None
    with_name: str
    without_name: str

    def to_json(self) -> dict[str, object]:
        return {"required": self.required, "name": self.name, "with_name": self.with_name,
                "without_name": self.without_name}


@dataclass(frozen=True)
class ChainCheck:
    """The backend chain judged as the MP's JSSE would (`tls.trust.judge_chain`).

    Attributes:
        status: a `ChainStatus` value. reason: one sentence saying why (untrusted issuer, expired, hostname
            mismatch...). truststore: what it was verified against (``None``: no truststore known, trust not
            judged). verdict: the full `ChainVerdict` JSON.
    """

    status: str
    reason: str
    truststore: str | None
    verdict: dict[str, object]

    def to_json(self) -> dict[str, object]:
        return {"status": self.status, "reason": self.reason, "truststore": self.truststore,
                "verdict": self.verdict}


@dataclass(frozen=True)
class ProbeSurvey:
    """Everything the survey learned, and the handshakes it took.

    Attributes:
        offer: what the MP offers (configured or JSSE's defaults).
        protocols: one result per offered version, in the offer's order.
        accepted_ciphers: offered suites the backend accepted (IANA names); `ciphers_complete` False when the
            handshake budget ran out before every offered suite was tried.
        refused_ciphers: offered suites it refused (known only for versions whose listing completed).
        untested_ciphers: offered suites the probe's OpenSSL cannot send.
        sni: the comparison with and without server_name, ``None`` when not made.
        chain: the chain verdict, ``None`` when the backend sent no chain the probe could read.
        attempts: the survey's handshakes after the probe's own (`handshakes` counts both).
        timeout: seconds each handshake was allowed.
        stopped: why the survey stopped early ("" when it did not).
        max_handshakes: the budget it had (the probe's own handshake counts).
    """

    offer: Offer
    protocols: tuple[ProtocolResult, ...] = ()
    accepted_ciphers: tuple[str, ...] = ()
    refused_ciphers: tuple[str, ...] = ()
    untested_ciphers: tuple[str, ...] = ()
    ciphers_complete: bool = True
    sni: SniCheck | None = None
    chain: ChainCheck | None = None
    attempts: tuple[Attempt, ...] = ()
    timeout: float = 0.0
    stopped: str = ""
    max_handshakes: int = MAX_HANDSHAKES

    @property
    def handshakes(self) -> int:
        """Handshakes with the backend: the probe's own and the survey's."""
        return 1 + len(self.attempts)

    @property
    def accepted_protocols(self) -> tuple[str, ...]:
        """Offered versions the backend accepts (with the MP's suites or not)."""
        return tuple(p.version for p in self.protocols
                     if p.status in (ProtocolStatus.ACCEPTED, ProtocolStatus.SUITES_REFUSED))

    @property
    def protocol_mismatch(self) -> bool:
        """Every offered version was tried and the backend refused each, whatever the suites."""
        tried = [p for p in self.protocols if p.status is not ProtocolStatus.UNTESTED]
        refused = (ProtocolStatus.REFUSED, ProtocolStatus.NO_SUITE)
        return bool(tried) and all(p.status in refused for p in tried)

    @property
    def cipher_mismatch(self) -> bool:
        """The backend accepts an offered version, but none of the MP's suites in any of them."""
        statuses = {p.status for p in self.protocols}
        return ProtocolStatus.SUITES_REFUSED in statuses and ProtocolStatus.ACCEPTED not in statuses

    def to_json(self) -> dict[str, object]:
        return {
            "offer": self.offer.to_json(),
            "protocols": [p.to_json() for p in self.protocols],
            "accepted_protocols": list(self.accepted_protocols),
            "accepted_ciphers": list(self.accepted_ciphers),
            "refused_ciphers": list(self.refused_ciphers),
            "untested_ciphers": list(self.untested_ciphers),
            "ciphers_complete": self.ciphers_complete,
            "protocol_mismatch": self.protocol_mismatch,
            "cipher_mismatch": self.cipher_mismatch,
            "sni": self.sni.to_json() if self.sni else None,
            "chain": self.chain.to_json() if self.chain else None,
            "handshakes": self.handshakes,
            "max_handshakes": self.max_handshakes,
            "timeout_seconds": self.timeout,
            "stopped": self.stopped,
            "attempts": [a.to_json() for a in self.attempts],
        }


Handshaker = Callable[[AttemptSpec], AttemptOutcome]


def run_survey(attempt: Handshaker, offer: Offer, sni: str | None, *, timeout: float,
               chain: ChainCheck | None = None, baseline_version: str | None = None,
               max_handshakes: int = MAX_HANDSHAKES) -> ProbeSurvey:
    """Ask the backend about the offer in at most `max_handshakes` handshakes (the probe's own counts).

    Order of questions, most telling first: each offered version with the MP's suites (and, when refused, with
    any suite: is it the version or the suites?), then SNI, then the accepted suites one by one.
    `baseline_version` is the version of the probe's own handshake (made with `sni`): the SNI comparison
    repeats it without the name when no offered version was accepted.
    """
    budget = _Budget(attempt, max_handshakes - 1)
    untested = tuple(s for s in offer.ciphers if openssl_name(s) is None)
    protocols: list[ProtocolResult] = []
    chosen: dict[str, str] = {}
    for version in sorted(offer.protocols, key=_version_rank, reverse=True):
        protocols.append(_protocol(budget, version, _suites_for(offer, version), sni, chosen))
    sni_check = _sni(budget, sni, protocols, baseline_version)
    accepted, refused, complete = _list_suites(budget, offer, sni, chosen)
    by_offer = {p.version: p for p in protocols}
    return ProbeSurvey(
        offer=offer,
        protocols=tuple(by_offer[v] for v in offer.protocols),
        accepted_ciphers=accepted,
        refused_ciphers=refused,
        untested_ciphers=untested,
        ciphers_complete=complete,
        sni=sni_check,
        chain=chain,
        attempts=tuple(budget.attempts),
        timeout=timeout,
        stopped=budget.stopped,
        max_handshakes=max_handshakes,
    )


def first_attempt(offer: Offer, sni: str | None) -> AttemptSpec | None:
    """The survey's first handshake (the dry-run plan shows it): the highest offered version the probe can
    send, with the offered suites for it; ``None`` when there is none."""
    for version in sorted(offer.protocols, key=_version_rank, reverse=True):
        suites = _suites_for(offer, version)
        if version not in _UNTESTABLE and suites:
            return AttemptSpec(version, suites, sni)
    return None


class _Budget:
    """The handshake function behind a counter; it stops after a connection error (nothing more to learn)."""

    def __init__(self, attempt: Handshaker, left: int) -> None:
        self._attempt = attempt
        self.left = left
        self.total = left + 1
        self.attempts: list[Attempt] = []
        self.stopped = ""

    def can(self) -> bool:
        return self.left > 0 and not self.stopped

    def __call__(self, purpose: str, spec: AttemptSpec) -> AttemptOutcome | None:
        if not self.can():
            if not self.stopped:
                self.stopped = f"the budget of {self.total} handshakes ran out"
            return None
        self.left -= 1
        outcome = self._attempt(spec)
        self.attempts.append(Attempt(purpose, spec, outcome))
        if outcome.error:
            self.stopped = f"a handshake could not connect: {outcome.detail}"
        return outcome


def _suites_for(offer: Offer, version: str) -> tuple[str, ...]:
    """The offered suites the probe can send for `version`: TLS 1.3 suites for TLS 1.3, the others below."""
    wanted = version == "TLSv1.3"
    return tuple(s for s in offer.ciphers if is_tls13_suite(s) == wanted and openssl_name(s) is not None)


def _protocol(budget: _Budget, version: str, suites: tuple[str, ...], sni: str | None,
              chosen: dict[str, str]) -> ProtocolResult:
    if version in _UNTESTABLE:
        return ProtocolResult(version, ProtocolStatus.UNTESTED, detail="the probe's OpenSSL cannot send it")
    if not suites:
        return ProtocolResult(version, ProtocolStatus.NO_SUITE,
                              detail=f"no offered cipher suite is usable with {version}")
    first = budget("protocol", AttemptSpec(version, suites, sni))
    if first is None or first.error:
        return ProtocolResult(version, ProtocolStatus.UNTESTED,
                              detail=first.detail if first else budget.stopped)
    if first.accepted:
        if first.cipher:
            chosen[version] = first.cipher
        return ProtocolResult(version, ProtocolStatus.ACCEPTED, first.cipher, "handshake completed")
    broad = budget("protocol-any-suite", AttemptSpec(version, None, sni))
    if broad is None or broad.error:
        return ProtocolResult(version, ProtocolStatus.UNTESTED,
                              detail=f"with the MP's suites: {first.detail}; then {budget.stopped}")
    if broad.accepted:
        return ProtocolResult(version, ProtocolStatus.SUITES_REFUSED, None,
                              f"refused the MP's {len(suites)} suite(s) ({first.detail}); accepted"
                              f" {broad.cipher or 'another suite'} from the probe's own list")
    return ProtocolResult(version, ProtocolStatus.REFUSED, None, first.detail)


def _sni(budget: _Budget, sni: str | None, protocols: Sequence[ProtocolResult],
         baseline_version: str | None) -> SniCheck | None:
    if not sni:
        return SniCheck(None, None, "",
                        "not compared: the target is an IP address, so no server name is sent")
    with_name = next((p for p in protocols if p.status is ProtocolStatus.ACCEPTED), None)
    version = with_name.version if with_name else baseline_version
    if version is None:
        return SniCheck(None, sni, f"refused with server_name {sni}", "not compared")
    # The same version both times, so that only the name differs.
    without = budget("sni", AttemptSpec(version, None, None))
    if without is None:
        return None
    return SniCheck(not without.accepted, sni, f"accepted with server_name {sni} ({version})", _said(without))


def _said(outcome: AttemptOutcome) -> str:
    if outcome.accepted:
        return f"accepted without server_name ({outcome.version})"
    return f"refused without server_name: {outcome.detail}"


def _list_suites(budget: _Budget, offer: Offer, sni: str | None,
                 chosen: dict[str, str]) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """Take each accepted suite out of the offer and ask again, until the backend refuses the rest."""
    accepted: list[str] = []
    refused: list[str] = []
    complete = True
    for version, first in chosen.items():
        remaining = [s for s in _suites_for(offer, version) if s not in accepted]
        current: str | None = first
        while current is not None:
            if current not in accepted:
                accepted.append(current)
            remaining = [s for s in remaining if s != current]
            if not remaining:
                break
            outcome = budget("cipher", AttemptSpec(version, tuple(remaining), sni))
            if outcome is None or outcome.error:
                complete = False
                break
            if not outcome.accepted:
                refused.extend(s for s in remaining if s not in refused and s not in accepted)
                break
            current = outcome.cipher if outcome.cipher in remaining else None
            if current is None:  # it chose a suite we did not offer: nothing more to learn from it
                complete = False
    order = {s: i for i, s in enumerate(offer.ciphers)}
    return (tuple(sorted(accepted, key=lambda s: order.get(s, len(order)))),
            tuple(s for s in offer.ciphers if s in refused and s not in accepted), complete)


def _version_rank(version: str) -> int:
    return _VERSION_ORDER.index(version) if version in _VERSION_ORDER else -1


def check_chain(chain_der: Sequence[bytes], anchors: Sequence[x509.Certificate] | None, name: str | None,
                truststore: str | None = None, at: datetime | None = None) -> ChainCheck | None:
    """The backend chain (DER, leaf first) judged against `anchors` (``None``: no truststore known) and
    `name`; ``None`` when there is no readable chain."""
    try:
        chain = [x509.load_der_x509_certificate(der) for der in chain_der[:MAX_CHAIN]]
    except ValueError:
        return None
    if not chain:
        return None
    verdict = judge_chain(chain, anchors, at or datetime.now(timezone.utc), name)
    return ChainCheck(verdict.status.value, chain_reason(verdict, truststore),
                      truststore if anchors is not None else None, verdict.to_json())


def chain_reason(verdict: ChainVerdict, truststore: str | None) -> str:
    """One sentence: why the MP would accept or refuse the chain, in JSSE's order."""
    store = truststore or "the truststore"
    status = verdict.status
    if status is ChainStatus.UNTRUSTED:
        return (f"untrusted issuer: the chain does not lead to a certificate of {store}"
                f" (missing issuer {verdict.missing_issuer})")
    if status in (ChainStatus.EXPIRED, ChainStatus.NOT_YET_VALID):
        first = verdict.out_of_validity[0]
        word = "expired" if status is ChainStatus.EXPIRED else "not yet valid"
        return (f"{word}: {first.subject} is valid {first.not_before:%Y-%m-%d} to {first.not_after:%Y-%m-%d}")
    if status is ChainStatus.NAME_MISMATCH:
        return (f"hostname mismatch: {verdict.name} is not among the certificate's names"
                f" ({', '.join(verdict.leaf_names) or 'none'}); Edge checks it when SSLInfo has <CommonName>")
    if status is ChainStatus.TRUSTED:
        return (f"trusted: the chain leads to a certificate of {store}, within its dates"
                + (f", and names {verdict.name}" if verdict.name else ""))
    if status is ChainStatus.UNKNOWN_TRUST:
        return ("trust not judged (no truststore given: --truststore FILE); the dates"
                + (f" and the name {verdict.name}" if verdict.name else "") + " are fine")
    return "no chain"


def survey_from_json(data: Any) -> ProbeSurvey | None:
    """Read back `ProbeSurvey.to_json()` (``None`` for ``None``).

    Raises KeyError/TypeError/ValueError when malformed.
    """
    if data is None:
        return None
    offer = data["offer"]
    sni = data.get("sni")
    chain = data.get("chain")
    return ProbeSurvey(
        offer=Offer(tuple(offer["protocols"]), tuple(offer["ciphers"]), str(offer["protocols_source"]),
                    str(offer["ciphers_source"])),
        protocols=tuple(ProtocolResult(str(p["version"]), ProtocolStatus(p["status"]), p.get("cipher"),
                                       str(p.get("detail", ""))) for p in data.get("protocols", [])),
        accepted_ciphers=tuple(str(c) for c in data.get("accepted_ciphers", [])),
        refused_ciphers=tuple(str(c) for c in data.get("refused_ciphers", [])),
        untested_ciphers=tuple(str(c) for c in data.get("untested_ciphers", [])),
        ciphers_complete=bool(data.get("ciphers_complete", True)),
        sni=None if sni is None else SniCheck(sni.get("required"), sni.get("name"), str(sni["with_name"]),
                                              str(sni["without_name"])),
        chain=None if chain is None else ChainCheck(
            str(chain["status"]), str(chain["reason"]), chain.get("truststore"),
            dict(chain.get("verdict") or {})),
        attempts=tuple(
            Attempt(str(a["purpose"]),
                    AttemptSpec(a.get("version"), None if a.get("suites") is None else tuple(a["suites"]),
                                a.get("sni")),
                    AttemptOutcome(bool(a["accepted"]), a.get("negotiated_version"),
                                   a.get("negotiated_cipher"), str(a.get("detail", ""))))
            for a in data.get("attempts", [])),
        timeout=float(data.get("timeout_seconds", 0.0)),
        stopped=str(data.get("stopped", "")),
        max_handshakes=int(data.get("max_handshakes", MAX_HANDSHAKES)),
    )


def render_survey(survey: ProbeSurvey) -> list[str]:
    """The operator's view: chain verdict, versions, suites, SNI, and the handshakes it took."""
    offer = survey.offer
    lines = []
    if survey.chain is not None:
        lines.append(f"Chain verdict: {survey.chain.reason}")
    lines.append(f"The MP offers ({offer.protocols_source}): {', '.join(offer.protocols)}")
    for result in survey.protocols:
        suite = f" with {result.cipher}" if result.cipher else ""
        lines.append(f"  {result.version}: {result.status.value}{suite} ({result.detail})")
    if survey.protocol_mismatch:
        lines.append("  => protocol mismatch: the backend accepts none of the MP's versions")
    lines.append(f"Cipher suites ({offer.ciphers_source}, {len(offer.ciphers)} offered):"
                 f" the backend accepts {len(survey.accepted_ciphers)}"
                 + ("" if survey.ciphers_complete else " at least (the handshake budget ran out)"))
    lines.extend(f"  accepted {name}" for name in survey.accepted_ciphers)
    if survey.untested_ciphers:
        lines.append(f"  not tried (this OpenSSL lacks them): {', '.join(survey.untested_ciphers)}")
    if survey.cipher_mismatch:
        lines.append("  => cipher mismatch: the backend accepts the version but none of the MP's suites")
    if survey.sni is not None:
        if survey.sni.required is None and not survey.sni.name:
            lines.append(f"SNI: {survey.sni.without_name}")
        elif survey.sni.required is None:
            lines.append(f"SNI: undecided ({survey.sni.with_name}; {survey.sni.without_name})")
        else:
            word = "REQUIRED" if survey.sni.required else "not required"
            lines.append(f"SNI: {word}: {survey.sni.with_name}; {survey.sni.without_name}")
    lines.append(f"Handshakes: {survey.handshakes} (at most {survey.max_handshakes},"
                 f" {survey.timeout:g} s each)" + (f"; stopped: {survey.stopped}" if survey.stopped else ""))
    return lines

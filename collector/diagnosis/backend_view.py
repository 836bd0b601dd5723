"""Per backend, the target's configured SSLInfo beside what the wire (capture) and the probe showed, one row
per aspect (TLS versions, suites, SNI, chain, CA names...), the rows where they disagree marked with why:
report.html's "Configured vs observed" tables. Pure over `Evidence`; the template only renders the rows.

Public API: `backend_views(evidence)`, its `BackendView` / `Row` / `Cell` / `Source`, and `ProbedFacts` with
`probed_facts` (the one place probe findings are read, see there).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import NameOID

from collector.diagnosis.backends import first_fatal, is_encrypted, sent_no_client_hello
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.keymanager import KeystoreVerdict, acceptable_names, check_keystore
from collector.diagnosis.negotiation import offer_accepts
from collector.diagnosis.probed import probe_facts
from collector.diagnosis.server_chain import chain_verdict, refused_chain
from collector.diagnosis.targets import BackendTarget, ConfiguredTls, backend_scope, split_endpoint
from collector.diagnosis.verdict import ProbedFact
from collector.tls.handshake import (
    AttemptEnd,
    CertificateRequest,
    ConnectionAttempt,
    Handshake,
    Outcome,
    ProbeResult,
)
from collector.tls.jsse_defaults import suite_name
from collector.tls.trust import ChainStatus, ChainVerdict, leaf_names

# Alerts whose number names the disagreement (RFC 8446 6.2).
HANDSHAKE_FAILURE = 40
PROTOCOL_VERSION = 70
UNRECOGNIZED_NAME = 112
_LISTED_SUITES = 6  # a JSSE ClientHello offers ~40 suites: a cell lists a few and counts the rest
_LISTED_NAMES = 4  # CA names, leaf names
# Chain statuses the MP's JSSE refuses whatever SSLInfo says about names (the name row judges names).
_REFUSED_CHAIN = frozenset({ChainStatus.UNTRUSTED.value, ChainStatus.EXPIRED.value,
                            ChainStatus.NOT_YET_VALID.value})
CONNECTION = "TLS on the connection"


class Source(str, enum.Enum):
    """Where a cell's fact comes from: the proxy's documents, the capture, or an active probe."""

    CONFIGURED = "configured"
    CAPTURED = "captured"
    PROBED = "probed"


@dataclass(frozen=True)
class Cell:
    """One source's fact about one aspect.

    Attributes:
        text: what it says, ``""`` when this source says nothing about the aspect.
        where: where to look it up (``edge/resolution.json``, ``frames 4–12 (hosts/mp1/capture.pcap)``,
            ``probe of host:443 via mp1``), ``""`` with no text.
    """

    source: Source
    text: str = ""
    where: str = ""


@dataclass(frozen=True)
class Row:
    """One aspect of the backend connection as each source shows it.

    Attributes:
        aspect: e.g. ``TLS versions``.
        mismatch: why the row is marked (the sources disagree, or the wire shows this aspect failing),
            ``""`` when nothing is wrong or nothing can be compared.
    """

    aspect: str
    configured: Cell
    captured: Cell
    probed: Cell
    mismatch: str = ""

    @property
    def cells(self) -> tuple[Cell, Cell, Cell]:
        return (self.configured, self.captured, self.probed)


@dataclass(frozen=True)
class BackendView:
    """One backend: the target that sends the MP there (if known) and the rows.

    Attributes:
        backend: ``ip:port (sni)`` of the captured connections, else the target's or probe's ``host:port``.
        target: the target's description (`BackendTarget.describe`), ``""`` when no target matches.
        shown: which captured handshake the captured column shows, of how many (``""`` without a capture).
        configured_from / captured_from / probed_from: where each column's facts come from (the resolution,
            the shown handshake's frames, the probe shown); a cell's `Cell.where` differs only when one fact
            comes from elsewhere (connection attempts, say).
    """

    backend: str
    target: str
    shown: str
    rows: tuple[Row, ...]
    configured_from: str = ""
    captured_from: str = ""
    probed_from: str = ""

    @property
    def mismatches(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.mismatch)


@dataclass(frozen=True)
class ProbedFacts:
    """What active probes found about one backend, as the rows read it.

    Attributes:
        probes: the probe results of this backend (each one handshake: the version and suite it negotiated,
            the SNI it sent, the chain, the CA names and the reaction; and the survey, when one was made).
        accepted_versions / accepted_suites: the versions and suites (IANA names) the backend accepts among
            those the MP offers; ``None`` when not probed.
        offered_versions / offered_suites: what the survey offered as the MP's (its SSLInfo, or JSSE's
            defaults: `offer_source`); ``()`` when not probed.
        sni_required: whether the backend refuses a ClientHello without server_name; ``None`` when unknown.
        chain: the probe's chain fact (its status and why), judged against the MP truststore when known;
            ``None`` when not judged.
        facts: every probed fact of this backend, as the diagnosis lists them (`diagnosis.probed`).
    """

    probes: tuple[ProbeResult, ...] = ()
    accepted_versions: tuple[str, ...] | None = None
    accepted_suites: tuple[str, ...] | None = None
    offered_versions: tuple[str, ...] = ()
    offered_suites: tuple[str, ...] = ()
    offer_source: str = ""
    sni_required: bool | None = None
    chain: ProbedFact | None = None
    facts: tuple[ProbedFact, ...] = ()


def probed_facts(evidence: Evidence, probes: Sequence[ProbeResult]) -> ProbedFacts:
    """The probe findings of one backend: the one place the rows read them.

    The facts are `diagnosis.probed`'s (the same the diagnosis cites as probed evidence), the first probe's
    fact of each kind winning. Without a survey (an older probe result) SNI is still known to be required
    when a probe with server_name got a ServerHello and one without was refused.
    """
    facts = tuple(fact for probe in probes for fact in probe_facts(probe, evidence))

    def first(kind: str) -> ProbedFact | None:
        return next((f for f in facts if f.kind == kind), None)

    protocols, ciphers, sni = first("protocols"), first("ciphers"), first("sni")
    accepted_suites = _listed(ciphers, "accepted")
    return ProbedFacts(
        tuple(probes),
        accepted_versions=_listed(protocols, "accepted"),
        accepted_suites=None if accepted_suites is None else tuple(suite_name(s) for s in accepted_suites),
        offered_versions=_listed(protocols, "offered") or (),
        offered_suites=tuple(suite_name(s) for s in _listed(ciphers, "offered") or ()),
        offer_source=str((protocols.values or {}).get("source", "")) if protocols is not None else "",
        sni_required=_sni_required(sni, probes),
        chain=first("chain"),
        facts=facts,
    )


def _listed(fact: ProbedFact | None, key: str) -> tuple[str, ...] | None:
    values = (fact.values or {}).get(key) if fact is not None else None
    return tuple(str(v) for v in values) if isinstance(values, (list, tuple)) else None


def _sni_required(fact: ProbedFact | None, probes: Sequence[ProbeResult]) -> bool | None:
    if fact is not None and fact.status in ("required", "not-required"):
        return fact.status == "required"
    with_sni = [p for p in probes if p.sni and p.handshake.version]
    without = [p for p in probes if not p.sni and p.handshake.version is None
               and p.handshake.outcome is Outcome.FAILED and not p.handshake.server_chain]
    return True if with_sni and without else None


ProbeReader = Callable[[Evidence, Sequence[ProbeResult]], ProbedFacts]


def backend_views(evidence: Evidence, read_probes: ProbeReader = probed_facts) -> tuple[BackendView, ...]:
    """One view per backend: every known target, then every other server the captures or probes show.

    `read_probes` turns one backend's probe results into `ProbedFacts` (`probed_facts`; a test can hand the
    rows the facts the probe will report)."""
    return tuple(_view(evidence, group, read_probes) for group in _group(evidence))


# -- grouping ----------------------------------------------------------------------------------------------


@dataclass
class _Group:
    target: BackendTarget | None
    server: str
    handshakes: list[Handshake] = field(default_factory=list)
    attempts: list[ConnectionAttempt] = field(default_factory=list)
    probes: list[ProbeResult] = field(default_factory=list)


def _group(evidence: Evidence) -> list[_Group]:
    scope = backend_scope(evidence.targets, evidence.handshakes)
    by_target: dict[int, _Group] = {}
    by_server: dict[str, _Group] = {}
    groups: list[_Group] = []

    def group_of(server: str) -> _Group:
        target = scope.target_for(server) if evidence.targets else None
        if target is not None:
            return by_target[id(target)]
        if server not in by_server:
            by_server[server] = _Group(None, server)
            groups.append(by_server[server])
        return by_server[server]

    for target in evidence.targets:
        by_target[id(target)] = _Group(target, _host_port(target.host, target.effective_port))
        groups.append(by_target[id(target)])
    for handshake in evidence.handshakes:
        group_of(handshake.server).handshakes.append(handshake)
    for attempt in evidence.connection_attempts:
        # With targets known, an attempt elsewhere is not a backend of this proxy (a note in the diagnosis);
        # without, the server the MP tried to reach is the backend.
        if not evidence.targets or scope.target_for(attempt.server) is not None:
            group_of(attempt.server).attempts.append(attempt)
    for probe in evidence.probes:
        _probe_group(probe, groups, by_server).probes.append(probe)
    return [g for g in groups if g.target is not None or g.handshakes or g.attempts or g.probes]


def _probe_group(probe: ProbeResult, groups: list[_Group], by_server: dict[str, _Group]) -> _Group:
    """The group whose target host:port or captured server the probe went to; else a group of its own."""
    host, port = split_endpoint(probe.target)
    for group in groups:
        target = group.target
        if target is not None and port == target.effective_port and host in {
                split_endpoint(_host_port(name, port))[0] for name in (target.host, *target.addresses)}:
            return group
        if probe.target in (group.server, *(h.server for h in group.handshakes)) or \
                probe.handshake.server in (h.server for h in group.handshakes):
            return group
        if probe.sni and any(h.sni == probe.sni and split_endpoint(h.server)[1] == port
                             for h in group.handshakes):
            return group
    by_server[probe.target] = _Group(None, probe.target)
    groups.append(by_server[probe.target])
    return by_server[probe.target]


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- one view ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Seen:
    """What one group's rows read: the configured SSLInfo, the handshake shown, the probes."""

    evidence: Evidence
    target: BackendTarget | None
    tls: ConfiguredTls | None
    handshake: Handshake | None
    attempts: tuple[ConnectionAttempt, ...]
    probed: ProbedFacts
    verdict: ChainVerdict | None

    @property
    def probe(self) -> ProbeResult | None:
        """The probe the probed column shows: one that got a ServerHello, else the first."""
        probes = self.probed.probes
        return next((p for p in probes if p.handshake.version), probes[0] if probes else None)

    @property
    def cited(self) -> str:
        return _cite(self.handshake) if self.handshake is not None else ""

    @property
    def probe_cited(self) -> str:
        probe = self.probe
        if probe is None:
            return ""
        return f"probe of {probe.target}" + (f" via {probe.via}" if probe.via else "")

    @property
    def configured_where(self) -> str:
        return self.target.source if self.target is not None else ""


def _view(evidence: Evidence, group: _Group, read_probes: ProbeReader) -> BackendView:
    handshakes = group.handshakes
    shown = next((h for h in handshakes if h.outcome is not Outcome.ESTABLISHED), None) or \
        (handshakes[0] if handshakes else None)
    target = group.target
    seen = _Seen(evidence, target, target.tls if target is not None else None, shown, tuple(group.attempts),
                 read_probes(evidence, group.probes),
                 chain_verdict(shown, evidence) if shown is not None else None)
    every = (_connection(seen), _versions(seen), _suites(seen), _sni(seen), _chain(seen), _name(seen),
             _ca_names(seen), _client_certificate(seen), _outcome(seen))
    # An aspect no source says anything about (no client authentication anywhere, say) is left out, and so
    # are the TLS aspects of a plain HTTP target nothing showed TLS for.
    plain = target is not None and target.ssl_enabled is False and shown is None and not group.probes
    rows = tuple(r for r in every if (r.mismatch or any(c.text for c in r.cells))
                 and not (plain and r.aspect != CONNECTION))
    label = (f"{shown.server} ({shown.sni})" if shown.sni else shown.server) if shown is not None \
        else group.server
    return BackendView(label, target.describe() if target is not None else "",
                       _shown_text(shown, handshakes), rows, seen.configured_where, seen.cited,
                       seen.probe_cited)


def _shown_text(shown: Handshake | None, handshakes: Sequence[Handshake]) -> str:
    if shown is None:
        return ""
    if len(handshakes) == 1:
        return f"the one captured handshake, {_cite(shown)}"
    which = "the first failed" if shown.outcome is not Outcome.ESTABLISHED else "the first"
    return f"{which} of {len(handshakes)} captured handshakes, {_cite(shown)}"


def _cite(handshake: Handshake) -> str:
    if handshake.frames is None:
        return handshake.source or "capture"
    first, last = handshake.frames
    frames = f"frames {first}–{last}" if last != first else f"frame {first}"
    return f"{frames} ({handshake.source})" if handshake.source else frames


def _configured(seen: _Seen, text: str) -> Cell:
    return Cell(Source.CONFIGURED, text, seen.configured_where if text else "")


def _captured(seen: _Seen, text: str) -> Cell:
    return Cell(Source.CAPTURED, text, seen.cited if text and seen.handshake is not None else "")


def _probed(seen: _Seen, text: str) -> Cell:
    return Cell(Source.PROBED, text, seen.probe_cited if text else "")


_NOT_RECORDED = "not recorded (the bundle's resolution predates SSLInfo details)"


# -- the rows ----------------------------------------------------------------------------------------------


def _connection(seen: _Seen) -> Row:
    target, h = seen.target, seen.handshake
    configured = ""
    if target is not None and target.ssl_enabled is not None:
        configured = "TLS (SSLInfo Enabled, or an https URL)" if target.ssl_enabled else "plain HTTP (no TLS)"
    captured, mismatch = "", ""
    if h is not None:
        if h.non_tls_reply is not None:
            captured = f"not TLS: the backend answered \u201c{h.non_tls_reply.first_bytes}\u201d"
            mismatch = "the backend does not speak TLS on this port"
        elif sent_no_client_hello(h):
            captured = "connected; the MP sent no ClientHello"
        else:
            captured = "TLS handshake"
    elif seen.attempts:
        ends = sorted({a.end.value for a in seen.attempts})
        captured = f"{len(seen.attempts)} connection attempt(s) {', '.join(ends)}, no handshake"
        if any(a.end is AttemptEnd.REFUSED for a in seen.attempts):
            mismatch = "nothing listens there: the connection was refused"
    if target is not None and target.ssl_enabled is False and h is not None and h.client_hello is not None:
        mismatch = "the target is plain HTTP but the capture shows TLS"
    probe = seen.probe
    probed = ""
    if probe is not None:
        probed = "TLS handshake" if probe.handshake.version else probe.reaction
    return Row(CONNECTION, _configured(seen, configured),
               Cell(Source.CAPTURED, captured, _attempts_cited(seen) if h is None and captured else
                    (seen.cited if captured else "")),
               _probed(seen, probed), mismatch)


def _attempts_cited(seen: _Seen) -> str:
    first = seen.attempts[0]
    if first.frames is None:
        return first.source
    return f"frames {first.frames[0]}–{first.frames[1]} ({first.source})" if first.source \
        else f"frames {first.frames[0]}–{first.frames[1]}"


def _versions(seen: _Seen) -> Row:
    tls, h, probed = seen.tls, seen.handshake, seen.probed
    configured = _list_or_default(seen, tls.protocols if tls is not None else None)
    captured = mismatch = ""
    offer = h.client_hello if h is not None else None
    if h is not None and offer is not None:
        captured = "offered " + ", ".join(offer.versions)
        captured += f"; the backend chose {h.version}" if h.version else "; no ServerHello"
        extra = [v for v in offer.versions if tls is not None and tls.protocols and v not in tls.protocols]
        alert = first_fatal(h)
        if extra:
            mismatch = (f"the ClientHello offered {', '.join(extra)}, which <Protocols> does not list: the"
                        " deployed SSLInfo is not this one")
        elif h.version and not offer_accepts(offer, h.version):
            mismatch = f"the backend chose {h.version}, which the ClientHello did not offer"
        elif alert is not None and alert.code == PROTOCOL_VERSION:
            mismatch = f"alert protocol_version ({PROTOCOL_VERSION}) from the {_who(alert.sender)}"
    elif h is not None and h.version:
        captured = f"{h.version} (the ClientHello was not captured)"
    probe_text = ""
    if probed.accepted_versions is not None:
        probe_text = "accepts " + (", ".join(probed.accepted_versions) or "none of the MP's versions")
        if probed.offered_versions:
            probe_text += f" (offered {', '.join(probed.offered_versions)}: {probed.offer_source})"
        mp_versions = (tls.protocols if tls is not None and tls.protocols else offer.versions if offer
                       else probed.offered_versions)
        if mp_versions and not set(mp_versions) & set(probed.accepted_versions) and not mismatch:
            mismatch = f"the backend accepts none of {', '.join(mp_versions)}"
    elif seen.probe is not None and seen.probe.handshake.version:
        probe_text = f"negotiated {seen.probe.handshake.version}"
    return Row("TLS versions", _configured(seen, configured), _captured(seen, captured),
               _probed(seen, probe_text), mismatch)


def _suites(seen: _Seen) -> Row:
    tls, h, probed = seen.tls, seen.handshake, seen.probed
    configured = _list_or_default(seen, tls.ciphers if tls is not None else None, listed=_LISTED_SUITES)
    wanted = {suite_name(c) for c in tls.ciphers} if tls is not None and tls.ciphers else set()
    captured = mismatch = ""
    offer = h.client_hello if h is not None else None
    if h is not None and offer is not None:
        offered = _some(offer.cipher_suites, _LISTED_SUITES)
        captured = f"offered {len(offer.cipher_suites)} suite(s): {offered}"
        captured += f"; the backend chose {h.cipher}" if h.cipher else "; no ServerHello"
        # Signalling values and suites without a name are not what <Ciphers> lists.
        suites = [suite_name(s) for s in offer.cipher_suites if "SCSV" not in s and not s.startswith("0x")]
        extra = [s for s in suites if wanted and s not in wanted]
        alert = first_fatal(h)
        if extra:
            mismatch = (f"the ClientHello offered {_some(extra, 3)}, which <Ciphers> does not list: the"
                        " deployed SSLInfo is not this one")
        elif h.cipher and wanted and suite_name(h.cipher).startswith("TLS_") and \
                suite_name(h.cipher) not in wanted:
            mismatch = f"the backend chose {suite_name(h.cipher)}, which <Ciphers> does not list"
        elif (alert is not None and alert.code == HANDSHAKE_FAILURE and alert.sender == "server"
              and h.version is None and not h.server_chain):
            mismatch = (f"the backend refused the ClientHello with handshake_failure ({HANDSHAKE_FAILURE})"
                        " before any ServerHello: usually no cipher suite in common")
    elif h is not None and h.cipher:
        captured = f"{h.cipher} (the ClientHello was not captured)"
    probe_text = ""
    if probed.accepted_suites is not None:
        probe_text = "accepts " + (_some(probed.accepted_suites, _LISTED_SUITES)
                                   or "none of the MP's suites")
        if probed.offered_suites:
            probe_text += f" (of {len(probed.offered_suites)} offered: {probed.offer_source})"
        mp_suites = wanted or ({suite_name(s) for s in offer.cipher_suites} if offer
                               else set(probed.offered_suites))
        if mp_suites and not mp_suites & set(probed.accepted_suites) and not mismatch:
            mismatch = "the backend accepts none of the suites the MP offers"
    elif seen.probe is not None and seen.probe.handshake.cipher:
        probe_text = f"negotiated {suite_name(seen.probe.handshake.cipher)}"
    return Row("Cipher suites", _configured(seen, configured), _captured(seen, captured),
               _probed(seen, probe_text), mismatch)


def _sni(seen: _Seen) -> Row:
    target, h, probed = seen.target, seen.handshake, seen.probed
    host = target.host if target is not None else None
    configured = ""
    if host is not None:
        configured = (f"target host {host} is an address: no server_name" if _is_address(host)
                      else f"target host {host} (the MP sends it as server_name)")
    captured = mismatch = ""
    if h is not None and h.client_hello is not None:
        captured = f"server_name {h.sni}" if h.sni else "no server_name sent"
        alert = first_fatal(h)
        refused_name = alert is not None and alert.code == UNRECOGNIZED_NAME and alert.sender == "server"
        if not h.sni and (refused_name or probed.sni_required):
            mismatch = "the backend requires SNI and the MP sent no server_name"
        elif refused_name:
            mismatch = f"the backend does not know the name {h.sni} (unrecognized_name)"
        elif h.sni and host is not None and not _is_address(host) and h.sni.lower() != host.lower():
            mismatch = f"the MP sent {h.sni}, not the target host {host}"
    elif probed.sni_required and host is not None and _is_address(host):
        mismatch = f"the backend requires SNI; the target host {host} is an address, so the MP sends none"
    probe_text = ""
    probe = seen.probe
    if probed.sni_required is not None:
        probe_text = "required: refused without server_name" if probed.sni_required else "not required"
    elif probe is not None:
        probe_text = f"sent {probe.sni}" if probe.sni else "sent none"
    if probed.sni_required and probe_text and probe is not None and probe.sni:
        probe_text += f" (answered with {probe.sni})"
    return Row("SNI (server_name)", _configured(seen, configured), _captured(seen, captured),
               _probed(seen, probe_text), mismatch)


def _chain(seen: _Seen) -> Row:
    tls, h, verdict, evidence = seen.tls, seen.handshake, seen.verdict, seen.evidence
    store = tls.truststore if tls is not None and tls.truststore else evidence.truststore_name
    configured = ""
    if store or evidence.truststore:
        configured = f"TrustStore {store}" if store else "the MP truststore (name unknown)"
        if tls is not None and tls.truststore_reference:
            configured += f" (ref://{tls.truststore_reference})"
        configured += (f": {len(evidence.truststore)} certificate(s) known" if evidence.truststore
                       else ": its certificates are not in the bundle")
    elif tls is not None:
        configured = "no TrustStore"
    if tls is not None and tls.ignore_validation_errors:
        configured += "; IgnoreValidationErrors true"
    captured = mismatch = ""
    if h is not None and h.server_chain:
        leaf = h.server_chain[0]
        captured = f"{len(h.server_chain)} certificate(s): {leaf.subject}, issued by {leaf.issuer}"
        if verdict is not None:
            captured += f"; {_verdict_text(verdict)}"
            ignored = tls is not None and tls.ignore_validation_errors
            if verdict.status in (ChainStatus.UNTRUSTED, ChainStatus.EXPIRED, ChainStatus.NOT_YET_VALID) \
                    and not ignored:
                mismatch = _verdict_text(verdict)
        alert = first_fatal(h)
        if not mismatch and refused_chain(h) and alert is not None:
            mismatch = f"the MP refused the chain: fatal alert {alert.description} ({alert.code})"
    elif h is not None and is_encrypted(h):
        captured = "encrypted (TLS 1.3 without a key log)"
    probe_text = ""
    probe = seen.probe
    if probe is not None and probe.handshake.server_chain:
        leaf = probe.handshake.server_chain[0]
        probe_text = f"{len(probe.handshake.server_chain)} certificate(s): {leaf.subject}, issued by " \
            f"{leaf.issuer}"
    fact = seen.probed.chain
    if fact is not None:
        reason = fact.detail.removeprefix("backend chain: ")
        probe_text = f"{probe_text}; {reason}" if probe_text else reason
        if fact.status in _REFUSED_CHAIN and not mismatch and not (tls is not None and
                                                                   tls.ignore_validation_errors):
            mismatch = reason
    return Row("Server certificate chain", _configured(seen, configured), _captured(seen, captured),
               _probed(seen, probe_text), mismatch)


def _verdict_text(verdict: ChainVerdict) -> str:
    if verdict.status is ChainStatus.UNTRUSTED:
        return f"not trusted: the truststore lacks {verdict.missing_issuer or 'its issuer'}"
    if verdict.status in (ChainStatus.EXPIRED, ChainStatus.NOT_YET_VALID):
        out = verdict.out_of_validity[0] if verdict.out_of_validity else None
        word = "expired" if verdict.status is ChainStatus.EXPIRED else "not yet valid"
        if out is None:
            return word
        return f"{word}: {out.subject} valid {out.not_before:%Y-%m-%d} to {out.not_after:%Y-%m-%d}"
    if verdict.status is ChainStatus.UNKNOWN_TRUST:
        return "trust not judged: no truststore certificate in the bundle"
    if verdict.status is ChainStatus.NAME_MISMATCH:
        return "trusted, dates valid; the name does not match (see the name row)"
    return "trusted by the truststore, dates valid"


def _name(seen: _Seen) -> Row:
    tls, h, verdict = seen.tls, seen.handshake, seen.verdict
    configured = ""
    if tls is not None:
        wildcard = " (wildcardMatch)" if tls.common_name_wildcard else ""
        configured = f"CommonName {tls.common_name}{wildcard}" if tls.common_name else "no CommonName"
    captured = mismatch = ""
    leaf = _leaf(h)
    if leaf is not None:
        names = leaf_names(leaf)
        captured = "the certificate names " + (_some(names, _LISTED_NAMES) or "nothing")
        if verdict is not None and verdict.name:
            matched = verdict.status is not ChainStatus.NAME_MISMATCH
            captured += f"; {verdict.name} {'matches' if matched else 'does not match'}"
            if not matched:
                mismatch = f"the certificate does not hold {verdict.name}"
        if tls is not None and tls.common_name and not _common_name_matches(leaf, tls.common_name,
                                                                            tls.common_name_wildcard):
            mismatch = f"the certificate's common name is not {tls.common_name}"
    probe_text = ""
    probe = seen.probe
    if probe is not None and probe.handshake.server_chain:
        probe_text = f"leaf {probe.handshake.server_chain[0].subject}"
    return Row("Certificate host name", _configured(seen, configured), _captured(seen, captured),
               _probed(seen, probe_text), mismatch)


def _ca_names(seen: _Seen) -> Row:
    tls, h, evidence = seen.tls, seen.handshake, seen.evidence
    keystore = (tls.keystore if tls is not None else None) or evidence.keystore
    alias = (tls.key_alias if tls is not None else None) or evidence.key_alias
    configured = ""
    if tls is not None and not tls.client_auth_enabled:
        configured = "no client authentication (ClientAuthEnabled false)"
    elif keystore or alias:
        configured = f"KeyStore {keystore or '?'}, KeyAlias {alias or '?'}"
    request = h.certificate_request if h is not None else None
    probe = seen.probe
    probe_request = probe.handshake.certificate_request if probe is not None else None
    captured = ""
    if request is not None:
        captured = _names_text(request)
    elif h is not None and is_encrypted(h):
        captured = "encrypted (TLS 1.3 without a key log)"
    elif h is not None and h.version is not None:
        captured = "no CertificateRequest: the backend asked for no client certificate"
    mismatch = ""
    asked = request or probe_request
    if asked is not None and configured:
        check = check_keystore(evidence.keystores, alias, keystore, acceptable_names(asked))
        if check.leaf_issuer:
            configured += f": its certificate is issued by {check.leaf_issuer}"
        if check.verdict is KeystoreVerdict.NO_ACCEPTABLE_ISSUER:
            mismatch = (f"the keystore's certificate (issuer {check.leaf_issuer}) is not among the"
                        " acceptable CA names")
        elif check.verdict is KeystoreVerdict.NO_KEY:
            mismatch = f"the keystore holds no key to send under KeyAlias {alias or '?'}"
    if asked is not None and tls is not None and not tls.client_auth_enabled:
        mismatch = "the backend asks for a client certificate; ClientAuthEnabled is not true"
    probe_text = _names_text(probe_request) if probe_request is not None else (
        "no CertificateRequest" if probe is not None and probe.handshake.version else "")
    return Row("Acceptable CA names", _configured(seen, configured), _captured(seen, captured),
               _probed(seen, probe_text), mismatch)


def _client_certificate(seen: _Seen) -> Row:
    tls, h = seen.tls, seen.handshake
    configured = "" if tls is None else (
        "ClientAuthEnabled true: the MP sends its key's certificate" if tls.client_auth_enabled
        else "ClientAuthEnabled false: the MP sends none")
    captured = mismatch = ""
    if h is not None and h.client_certificate is not None:
        sent = h.client_certificate
        if not sent.sent:
            captured = "empty (Certificate Length: 0)"
            if h.certificate_request is not None:
                mismatch = "the backend asked for a client certificate and the MP sent an empty one"
        elif sent.chain:
            captured = f"sent: {sent.chain[0].subject}, issued by {sent.chain[0].issuer}"
        else:
            captured = "sent"
    elif h is not None and h.certificate_request is None and h.version is not None and not is_encrypted(h):
        captured = "none (not asked)"
    probe = seen.probe
    probe_text = ""
    if probe is not None and probe.handshake.certificate_request is not None:
        probe_text = f"without a client certificate: {probe.reaction}"
    return Row("Client certificate", _configured(seen, configured), _captured(seen, captured),
               _probed(seen, probe_text), mismatch)


def _outcome(seen: _Seen) -> Row:
    h = seen.handshake
    captured = mismatch = ""
    if h is not None:
        alert = first_fatal(h)
        captured = h.outcome.value
        if alert is not None:
            captured += f": fatal alert {alert.description} ({alert.code}) from the {_who(alert.sender)}"
            mismatch = f"fatal alert {alert.description} ({alert.code}) from the {_who(alert.sender)}"
        elif h.http_status is not None:
            captured += f", then HTTP {h.http_status}"
        elif h.outcome is Outcome.FAILED:
            mismatch = "the handshake failed"
    elif seen.attempts:
        captured = "no handshake"
    probe = seen.probe
    return Row("Outcome", Cell(Source.CONFIGURED), _captured(seen, captured),
               _probed(seen, probe.reaction if probe is not None else ""), mismatch)


# -- small helpers ------------------------------------------------------------------------------------------


def _list_or_default(seen: _Seen, values: tuple[str, ...] | None, listed: int = 10) -> str:
    if seen.target is None:
        return ""
    if values is None:
        return _NOT_RECORDED
    return _some(values, listed) if values else "not set: the MP's JVM defaults"


def _some(values: Sequence[str], listed: int) -> str:
    shown = ", ".join(values[:listed])
    return shown + (f" and {len(values) - listed} more" if len(values) > listed else "")


def _names_text(request: CertificateRequest) -> str:
    if not request.ca_names:
        return "a CertificateRequest naming no CA (any issuer)"
    return "; ".join(request.ca_names[:_LISTED_NAMES]) + (
        f" and {len(request.ca_names) - _LISTED_NAMES} more" if len(request.ca_names) > _LISTED_NAMES else "")


def _who(sender: str) -> str:
    return "backend" if sender == "server" else "MP"


def _leaf(handshake: Handshake | None) -> x509.Certificate | None:
    if handshake is None or not handshake.server_chain_der:
        return None
    try:
        return x509.load_der_x509_certificate(handshake.server_chain_der[0])
    except ValueError:
        return None


def _common_name_matches(leaf: x509.Certificate, wanted: str, wildcard: bool) -> bool:
    """Edge's `<CommonName>` check: the leaf's common name equals the configured value; with
    ``wildcardMatch="true"`` a configured ``*.example.com`` also holds ``api.example.com`` (one label)."""
    wanted = wanted.lower().rstrip(".")
    for name in (str(a.value).lower().rstrip(".")
                 for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)):
        if name == wanted:
            return True
        if wildcard and wanted.startswith("*.") and "." in name and name.split(".", 1)[1] == wanted[2:]:
            return True
    return False


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True

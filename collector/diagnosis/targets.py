"""Which connections went to the backend in question: the proxy's targets (`edge/resolution.json`) matched to
the capture's endpoints, so that a refused attempt to some other port is a note, not the cause.

Public API: `BackendTarget` and `targets_from_resolution` (read by `inputs.py`); `BackendScope` and
`backend_scope(targets, handshakes)`; `split_attempts`, `attempt_frames` and `attempts_elsewhere_lines` (what
the transport causes and the causes that must not ignore a stray attempt say about connection attempts).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.tls.handshake import AttemptEnd, ConnectionAttempt, Handshake

_LISTED = 5  # attempts cited one by one in an evidence line; the rest are counted


@dataclass(frozen=True)
class ConfiguredTls:
    """The target's SSLInfo as `edge/resolution.json` recorded it (references resolved): what the report sets
    beside what the wire or the probe showed.

    Attributes:
        keystore / truststore: the resolved store names; ``*_reference``: the ``ref://`` names when used.
        protocols / ciphers: `<Protocols>` / `<Ciphers>`, ``()`` when not set (the MP's JVM defaults apply).
        common_name: the `<CommonName>` the certificate must hold, ``None`` when not set.
    """

    client_auth_enabled: bool = False
    keystore: str | None = None
    keystore_reference: str | None = None
    key_alias: str | None = None
    truststore: str | None = None
    truststore_reference: str | None = None
    ignore_validation_errors: bool = False
    protocols: tuple[str, ...] = ()
    ciphers: tuple[str, ...] = ()
    common_name: str | None = None
    common_name_wildcard: bool = False

    def to_json(self) -> dict[str, object]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in vars(self).items()}


@dataclass(frozen=True)
class BackendTarget:
    """Where one TargetEndpoint (or one of its target servers) sends the message processor.

    Attributes:
        host / port: the backend as the target names it; port ``None`` when the target does not say (https
            then means 443, http 80).
        addresses: its IP addresses as resolved at collection time (``()`` when unknown: the analysis never
            looks names up).
        name: the TargetEndpoint's name. url: its `<URL>`, ``None`` in the target-server form.
        target_server: the TargetServer's name, ``None`` in the URL form.
        ssl_enabled: whether the target's SSLInfo enables TLS, ``None`` when the document does not say.
        source: where it was read (a bundle path), cited in evidence lines.
        tls: the target's SSLInfo, ``None`` when the resolution does not record it (written before it did).
    """

    host: str
    port: int | None
    addresses: tuple[str, ...] = ()
    name: str = ""
    url: str | None = None
    target_server: str | None = None
    ssl_enabled: bool | None = None
    source: str = ""
    tls: ConfiguredTls | None = None

    @property
    def effective_port(self) -> int:
        """The port the message processor connects to: the target's, else the scheme's default."""
        if self.port is not None:
            return self.port
        return 80 if (self.url or "").lower().startswith("http://") else 443

    def describe(self) -> str:
        """``TargetServer ts1 (backend.lab:8443)`` or ``TargetEndpoint default <URL> https://…``."""
        where = _endpoint(self.host, self.effective_port)
        if self.target_server:
            return f"TargetServer {self.target_server} ({where})"
        if self.url:
            return f"TargetEndpoint {self.name or 'default'} <URL> {self.url}"
        return f"TargetEndpoint {self.name or 'default'} ({where})"

    def to_json(self) -> dict[str, object]:
        return {"host": self.host, "port": self.port, "addresses": list(self.addresses), "name": self.name,
                "url": self.url, "target_server": self.target_server, "ssl_enabled": self.ssl_enabled,
                "source": self.source, "tls": self.tls.to_json() if self.tls is not None else None}


def targets_from_resolution(data: Any, cite: str) -> tuple[BackendTarget, ...]:
    """The targets of a saved resolution (`Resolution.to_json()`), each with the addresses its backend entry
    lists; targets whose host is unknown (a flow variable in the URL) are left out."""
    if not isinstance(data, dict):
        return ()
    addresses: dict[tuple[str, Any], list[str]] = {}
    for backend in data.get("backends") or []:
        if isinstance(backend, dict) and backend.get("host"):
            found = [str(a) for a in backend.get("addresses") or [] if a]
            addresses.setdefault((str(backend["host"]), backend.get("port")), []).extend(found)
    targets = []
    for target in data.get("targets") or []:
        if not isinstance(target, dict) or not target.get("host"):
            continue
        host, port = str(target["host"]), target.get("port")
        ssl = target.get("ssl_enabled")
        targets.append(BackendTarget(
            host=host,
            port=port if isinstance(port, int) else None,
            addresses=tuple(dict.fromkeys(addresses.get((host, port), []))),
            name=str(target.get("name") or ""),
            url=str(target["url"]) if target.get("url") else None,
            target_server=str(target["target_server"]) if target.get("target_server") else None,
            ssl_enabled=ssl if isinstance(ssl, bool) else None,
            source=cite,
            tls=_configured_tls(target),
        ))
    return tuple(targets)


def _configured_tls(target: dict[str, Any]) -> ConfiguredTls | None:
    """The SSLInfo fields of a resolution's target; ``None`` when it has none (an older resolution)."""
    if "client_auth_enabled" not in target:
        return None

    def text(key: str) -> str | None:
        value = target.get(key)
        return value if isinstance(value, str) and value else None

    def names(key: str) -> tuple[str, ...]:
        value = target.get(key)
        return tuple(str(v) for v in value if isinstance(v, str) and v) if isinstance(value, list) else ()

    return ConfiguredTls(
        client_auth_enabled=target.get("client_auth_enabled") is True,
        keystore=text("keystore"),
        keystore_reference=text("keystore_reference"),
        key_alias=text("key_alias"),
        truststore=text("truststore"),
        truststore_reference=text("truststore_reference"),
        ignore_validation_errors=target.get("ignore_validation_errors") is True,
        protocols=names("protocols"),
        ciphers=names("ciphers"),
        common_name=text("common_name"),
        common_name_wildcard=target.get("common_name_wildcard") is True,
    )


@dataclass(frozen=True)
class BackendScope:
    """Which server endpoints (``ip:port``) are the backend in question.

    Attributes:
        targets: the known targets (``()``: none known, so the capture's own TLS servers decide).
        endpoints: endpoint -> its target (``None`` when no target is known: the servers the MP spoke TLS
            to); ``None`` as a whole when everything counts (no target known and no handshake).
        ports: port -> target, for targets whose addresses are unknown: any address on such a port counts.
    """

    targets: tuple[BackendTarget, ...]
    endpoints: Mapping[str, BackendTarget | None] | None
    ports: Mapping[int, BackendTarget] = field(default_factory=dict)

    def includes(self, endpoint: str) -> bool:
        if self.endpoints is None:
            return True
        return _normal(endpoint) in self.endpoints or split_endpoint(endpoint)[1] in self.ports

    def target_for(self, endpoint: str) -> BackendTarget | None:
        """The target an endpoint belongs to, ``None`` when no target is known or none matches."""
        if self.endpoints is not None and (target := self.endpoints.get(_normal(endpoint))) is not None:
            return target
        return self.ports.get(split_endpoint(endpoint)[1])


def backend_scope(targets: Sequence[BackendTarget], handshakes: Sequence[Handshake]) -> BackendScope:
    """The backend in question: the targets' endpoints when the resolution is known (a handshake whose SNI is
    a target's host name shows that name's address too), else the servers the captured handshakes went to,
    else everything."""
    if not targets:
        servers: dict[str, BackendTarget | None] = {_normal(h.server): None for h in handshakes}
        return BackendScope((), servers or None)
    endpoints: dict[str, BackendTarget | None] = {}
    ports: dict[int, BackendTarget] = {}
    for target in targets:
        port = target.effective_port
        known = _addresses(target)
        known |= {split_endpoint(h.server)[0] for h in handshakes
                  if h.sni and h.sni.lower() == target.host.lower() and split_endpoint(h.server)[1] == port}
        for address in known:
            endpoints.setdefault(_endpoint(address, port), target)
        if not known:
            ports.setdefault(port, target)
    return BackendScope(tuple(targets), endpoints, ports)


def split_attempts(scope: BackendScope, attempts: Iterable[ConnectionAttempt]
                   ) -> tuple[list[ConnectionAttempt], list[ConnectionAttempt]]:
    """(attempts towards the backend in question, attempts elsewhere), each in capture order."""
    towards: list[ConnectionAttempt] = []
    elsewhere: list[ConnectionAttempt] = []
    for attempt in attempts:
        (towards if scope.includes(attempt.server) else elsewhere).append(attempt)
    return towards, elsewhere


def attempt_frames(attempts: Sequence[ConnectionAttempt]) -> str:
    """``frames 1–2, 5–6 (file) and 3 more``: where to look in the capture."""
    spans = []
    for attempt in attempts[:_LISTED]:
        if attempt.frames:
            first, last = attempt.frames
            spans.append(f"{first}–{last}" if last != first else str(first))
    sources = sorted({a.source for a in attempts if a.source})
    text = ("frames " + ", ".join(spans)) if spans else "frames unknown"
    if sources:
        text += f" ({', '.join(sources)})"
    if len(attempts) > _LISTED:
        text += f" and {len(attempts) - _LISTED} more"
    return text


def attempts_elsewhere_lines(scope: BackendScope, attempts: Sequence[ConnectionAttempt]) -> list[str]:
    """One line per endpoint that is not the backend in question, saying why it is not the cause."""
    _, elsewhere = split_attempts(scope, attempts)
    by_server: dict[tuple[str, AttemptEnd], list[ConnectionAttempt]] = {}
    for attempt in elsewhere:
        by_server.setdefault((attempt.server, attempt.end), []).append(attempt)
    why = ("not a target of this proxy (" + "; ".join(t.describe() for t in scope.targets) + ")"
           if scope.targets else "no TLS handshake went there")
    return [f"{server}: {len(group)} connection attempt(s) {end.value} ({attempt_frames(group)}): {why}, so"
            " noted, not judged" for (server, end), group in by_server.items()]


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """``ip:port`` or ``[v6]:port`` -> (normalised address, port); port 0 when there is none."""
    address, _, port = endpoint.rpartition(":")
    if not address:
        return endpoint, 0
    return _normal_address(address.strip("[]")), int(port) if port.isdigit() else 0


def _normal(endpoint: str) -> str:
    address, port = split_endpoint(endpoint)
    return _endpoint(address, port)


def _addresses(target: BackendTarget) -> set[str]:
    known = {_normal_address(a) for a in target.addresses}
    if _is_address(target.host):
        known.add(_normal_address(target.host))
    return known


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _normal_address(text: str) -> str:
    try:
        return ipaddress.ip_address(text.strip("[]")).compressed
    except ValueError:
        return text.lower()

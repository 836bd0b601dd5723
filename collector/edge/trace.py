"""Debug sessions (trace): start one, fetch its transactions, pull message ids and error causes."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from collector import layout
from collector.edge.resolve import ManagementApi
from collector.errors import EdgeAuthError, EdgeError, EdgeNotFoundError

MESSAGE_ID_NAMES = frozenset({"x-apigee.message-id", "messageid"})
TARGET_REQUEST_STATES = ("TARGET_REQ_FLOW", "REQ_SENT")


@dataclass(frozen=True)
class TraceSession:
    """A debug session on one deployed revision; `timeout_seconds` was sent explicitly to Edge."""

    org: str
    env: str
    proxy: str
    revision: str
    name: str
    timeout_seconds: int

    @property
    def api_path(self) -> str:
        """`…/apis/P/revisions/R/debugsessions/NAME`, relative to `/v1`."""
        q = _q
        return (
            f"/organizations/{q(self.org)}/environments/{q(self.env)}/apis/{q(self.proxy)}/revisions/"
            f"{q(self.revision)}/debugsessions/{q(self.name)}"
        )


@dataclass(frozen=True)
class TraceError:
    """An error recorded in a trace: the flow state it happened in, Edge's `error` and `error.cause`."""

    state: str
    error: str
    cause: str

    def to_json(self) -> dict[str, str]:
        return {"state": self.state, "error": self.error, "cause": self.cause}


@dataclass(frozen=True)
class TraceFacts:
    """What one transaction shows: ``target_errors`` are the errors of the target request flow."""

    message_ids: tuple[str, ...]
    error_causes: tuple[str, ...]
    errors: tuple[TraceError, ...]
    target_errors: tuple[TraceError, ...]
    status_codes: tuple[str, ...]


@dataclass(frozen=True)
class TraceResult:
    """A session's transactions, folded: message ids and error causes in transaction order, no repeats."""

    session: TraceSession
    transaction_ids: tuple[str, ...]
    message_ids: tuple[str, ...]
    error_causes: tuple[str, ...]
    target_errors: tuple[TraceError, ...]

    def to_json(self) -> dict[str, Any]:
        s = self.session
        return {
            "session": s.name,
            "org": s.org,
            "env": s.env,
            "proxy": s.proxy,
            "revision": s.revision,
            "timeout_seconds": s.timeout_seconds,
            "transaction_ids": list(self.transaction_ids),
            "message_ids": list(self.message_ids),
            "error_causes": list(self.error_causes),
            "target_errors": [e.to_json() for e in self.target_errors],
        }


def start_trace(
    client: ManagementApi,
    org: str,
    env: str,
    proxy: str,
    revision: str,
    *,
    timeout_seconds: int = 600,
    name: str | None = None,
    filters: Mapping[str, str] | None = None,
) -> TraceSession:
    """Create a debug session (always with an explicit `timeout`); `filters`: ``header_X``/``qparam_X``."""
    session = TraceSession(
        org,
        env,
        proxy,
        revision,
        name or f"collect-{int(time.time())}-{secrets.token_hex(3)}",
        int(timeout_seconds),
    )
    collection = session.api_path.rsplit("/", 1)[0]
    params = {"session": session.name, "timeout": str(session.timeout_seconds), **dict(filters or {})}
    client.post(collection, what=f"debug session on {proxy!r} revision {revision} in {env!r}", params=params)
    return session


def collect_trace(
    client: ManagementApi, session: TraceSession, *, wait_seconds: float = 0, poll_seconds: float = 1.0
) -> TraceResult:
    """Fetch every transaction of `session`, save each at `layout.trace_transaction(txid)` and the summary at
    `layout.TRACE_SESSION` (through `client.sink`). Polls up to `wait_seconds` while no transaction arrived.
    A transaction that cannot be fetched is left out (listed in the summary's `unavailable`)."""
    deadline = time.monotonic() + wait_seconds
    what = f"transactions of debug session {session.name!r}"
    while True:
        listed = client.get_json(f"{session.api_path}/data", what=what)
        ids = tuple(str(i) for i in listed) if isinstance(listed, list) else ()
        if ids or time.monotonic() >= deadline:
            break
        time.sleep(poll_seconds)
    facts: dict[str, TraceFacts] = {}
    unavailable: dict[str, str] = {}
    for txid in ids:
        try:
            document = client.get_json(
                f"{session.api_path}/data/{_q(txid)}",
                what=f"trace transaction {txid}",
                document=layout.trace_transaction(txid),
            )
        except EdgeAuthError:
            raise
        except EdgeError as exc:
            unavailable[txid] = exc.problem
            continue
        facts[txid] = extract_trace_facts(document)
    result = TraceResult(
        session,
        ids,
        _unique(m for f in facts.values() for m in f.message_ids),
        _unique(c for f in facts.values() for c in f.error_causes),
        tuple(dict.fromkeys(e for f in facts.values() for e in f.target_errors)),
    )
    if client.sink is not None:
        summary = result.to_json()
        summary["transactions"] = {
            txid: {
                "message_ids": list(f.message_ids),
                "error_causes": list(f.error_causes),
                "status_codes": list(f.status_codes),
                "target_errors": [e.to_json() for e in f.target_errors],
            }
            for txid, f in facts.items()
        }
        summary["unavailable"] = unavailable
        client.sink.save(layout.TRACE_SESSION, json.dumps(summary, indent=2).encode() + b"\n")
    return result


def stop_trace(client: ManagementApi, session: TraceSession) -> None:
    """Delete the session (Edge discards its data: collect first). A session already gone is fine."""
    with contextlib.suppress(EdgeNotFoundError):
        client.delete(session.api_path, what=f"debug session {session.name!r}")


def skipped_trace_summary(reason: str) -> bytes:
    """The `layout.TRACE_SESSION` body for a run without trace (`--no-trace`, `--dry-run`, no API access)."""
    return (
        json.dumps(
            {
                "session": None,
                "skipped": True,
                "reason": reason,
                "transaction_ids": [],
                "message_ids": [],
                "error_causes": [],
                "target_errors": [],
            },
            indent=2,
        ).encode()
        + b"\n"
    )


def extract_trace_facts(transaction: Any) -> TraceFacts:
    """Message ids, error causes and errors from one transaction's JSON, found by name anywhere in each point.

    Points are read in order; a `StateChange` point's ``To`` sets the flow state that later errors belong to
    (unless the error names its own ``state``). Nothing depends on point indexes.
    """
    points = transaction.get("point") if isinstance(transaction, dict) else None
    if not isinstance(points, list):
        points = [transaction]
    state = ""
    message_ids: list[str] = []
    causes: list[str] = []
    errors: list[TraceError] = []
    statuses: list[str] = []
    for point in points:
        pairs = list(_name_values(point))
        names = {name.lower(): value for name, value in pairs}
        point_id = point.get("id") if isinstance(point, dict) else None
        if point_id == "StateChange" and "to" in names:
            state = names["to"]
        message_ids += [value for name, value in pairs if name.lower() in MESSAGE_ID_NAMES and value]
        statuses += [str(s) for s in _values_of(point, "statusCode")]
        cause = names.get("error.cause", "")
        if cause:
            causes.append(cause)
        if cause or point_id == "Error":
            errors.append(TraceError(names.get("state") or state, names.get("error", ""), cause))
    target = tuple(e for e in errors if e.state.upper().startswith(TARGET_REQUEST_STATES))
    return TraceFacts(_unique(message_ids), _unique(causes), tuple(errors), target, tuple(statuses))


def _name_values(node: Any) -> Iterator[tuple[str, str]]:
    """Every ``{"name": …, "value": …}`` pair below `node` (properties, headers, flow variables)."""
    if isinstance(node, dict):
        name, value = node.get("name"), node.get("value")
        if isinstance(name, str) and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            yield name, str(value)
        for child in node.values():
            if isinstance(child, (dict, list)):
                yield from _name_values(child)
    elif isinstance(node, list):
        for child in node:
            yield from _name_values(child)


def _values_of(node: Any, key: str) -> Iterator[Any]:
    if isinstance(node, dict):
        if key in node and isinstance(node[key], (str, int)):
            yield node[key]
        for child in node.values():
            yield from _values_of(child, key)
    elif isinstance(node, list):
        for child in node:
            yield from _values_of(child, key)


def _unique(values: Iterator[str] | list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _q(component: str) -> str:
    return quote(component, safe="")

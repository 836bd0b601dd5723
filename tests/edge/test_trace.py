"""Debug sessions against the emulator, and the pure extraction of message ids and error causes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from collector import layout
from collector.edge.client import BasicAuth, EdgeClient
from collector.edge.documents import DocumentSink
from collector.edge.trace import (
    TraceError,
    TraceSession,
    collect_trace,
    extract_trace_facts,
    skipped_trace_summary,
    start_trace,
    stop_trace,
)
from collector.errors import EdgeNotFoundError
from tests.edge.conftest import ENV, ORG, PASSWORD, PROXY, REVISION, USERNAME, append_transaction
from tests.lab.emulator import Emulator, transaction_document

BAD_CERTIFICATE = "Received fatal alert: bad_certificate"


def _client(emulator: Emulator, sink: DocumentSink | None = None) -> EdgeClient:
    return EdgeClient(
        emulator.url, BasicAuth(USERNAME, PASSWORD), timeout=5, retries=1, backoff=0.001, sink=sink
    )


def test_trace_lifecycle_finds_message_ids_and_causes(emulator: Emulator) -> None:
    sink = DocumentSink()
    append_transaction(emulator.config, "rrt-before")  # before the session: not part of it
    with _client(emulator, sink) as client:
        session = start_trace(client, ORG, ENV, PROXY, REVISION, timeout_seconds=120, name="collect-test")
        append_transaction(emulator.config, "rrt-failing-1")
        append_transaction(emulator.config, "rrt-ok", status=200, error_cause=None)
        result = collect_trace(client, session)
        stop_trace(client, session)
    assert emulator.requests_to(f"/v1/organizations/{ORG}")[0][1].endswith("session=collect-test&timeout=120")
    assert emulator.sessions() == []
    assert result.message_ids == ("rrt-failing-1", "rrt-ok")
    assert result.error_causes == (BAD_CERTIFICATE,)
    assert result.target_errors == (TraceError("TARGET_REQ_FLOW", BAD_CERTIFICATE, BAD_CERTIFICATE),)
    assert len(result.transaction_ids) == 2
    for txid in result.transaction_ids:
        assert json.loads(sink.documents[layout.trace_transaction(txid)])["completed"] is True
    summary = json.loads(sink.documents[layout.TRACE_SESSION])
    assert summary["session"] == "collect-test" and summary["message_ids"] == ["rrt-failing-1", "rrt-ok"]
    assert set(summary["transactions"]) == set(result.transaction_ids)


def test_empty_session_waits_then_returns_nothing(emulator: Emulator) -> None:
    with _client(emulator) as client:
        session = start_trace(client, ORG, ENV, PROXY, REVISION, timeout_seconds=60)
        result = collect_trace(client, session, wait_seconds=0.05, poll_seconds=0.01)
        stop_trace(client, session)
    assert result.transaction_ids == () and result.message_ids == () and result.error_causes == ()
    assert len(emulator.requests_to(f"/v1/organizations/{ORG}/environments/{ENV}/apis/{PROXY}")) >= 3


def test_stopping_a_session_that_is_gone_is_fine(emulator: Emulator) -> None:
    session = TraceSession(ORG, ENV, PROXY, REVISION, "never-created", 60)
    with _client(emulator) as client:
        stop_trace(client, session)
        with pytest.raises(EdgeNotFoundError, match="debug session 'never-created'"):
            collect_trace(client, session)


def test_a_transaction_that_fails_to_download_is_listed_not_fatal(emulator: Emulator) -> None:
    sink = DocumentSink()
    with _client(emulator, sink) as client:
        session = start_trace(client, ORG, ENV, PROXY, REVISION, name="s2")
        append_transaction(emulator.config, "rrt-1")
        emulator.fail(
            f"/v1/organizations/{ORG}/environments/{ENV}/apis/{PROXY}/revisions/{REVISION}/debugsessions/"
            "s2/data/",
            500,
            times=None,
        )
        result = collect_trace(client, session)
    assert len(result.transaction_ids) == 1 and result.message_ids == ()
    assert list(json.loads(sink.documents[layout.TRACE_SESSION])["unavailable"]) == list(
        result.transaction_ids
    )


def test_skipped_trace_summary() -> None:
    summary = json.loads(skipped_trace_summary("--no-trace"))
    assert summary["skipped"] is True and summary["reason"] == "--no-trace" and summary["message_ids"] == []


# -- pure extraction -----------------------------------------------------------------------------------------
# edge-api.md §1.7, the spec's transaction example, verbatim: no error, no message id.
SPEC_EXAMPLE = {
    "completed": True,
    "point": [
        {"id": "Paused", "results": []},
        {"id": "Resumed", "results": []},
        {
            "id": "StateChange",
            "results": [
                {
                    "ActionResult": "DebugInfo",
                    "properties": {
                        "property": [
                            {"name": "To", "value": "REQ_HEADERS_PARSED"},
                            {"name": "From", "value": "REQ_START"},
                        ]
                    },
                    "timestamp": "08-09-15 14:44:03:825",
                }
            ],
        },
    ],
}


def _error_point(cause: str, state: str | None = None) -> dict[str, Any]:
    properties = [{"name": "error.cause", "value": cause}, {"name": "error", "value": cause}]
    if state:
        properties.append({"name": "state", "value": state})
    return {"id": "Error", "results": [{"ActionResult": "DebugInfo", "properties": {"property": properties}}]}


def _state(target: str) -> dict[str, Any]:
    return {
        "id": "StateChange",
        "results": [
            {"ActionResult": "DebugInfo", "properties": {"property": [{"name": "To", "value": target}]}}
        ],
    }


def _emulated(**record: Any) -> dict[str, Any]:
    base = {
        "time": 1_700_000_000_000,
        "message_id": "m-1",
        "org": ORG,
        "env": ENV,
        "api": PROXY,
        "rev": REVISION,
        "status": 503,
        "error_cause": BAD_CERTIFICATE,
        "backend": "127.0.0.21:9443",
    }
    return transaction_document({**base, **record})


@pytest.mark.parametrize(
    "transaction, message_ids, causes, target_states",
    [
        (SPEC_EXAMPLE, (), (), ()),
        (_emulated(), ("m-1",), (BAD_CERTIFICATE,), ("TARGET_REQ_FLOW",)),
        (
            _emulated(message_id="other-id-with-more-points"),
            ("other-id-with-more-points",),
            (BAD_CERTIFICATE,),
            ("TARGET_REQ_FLOW",),
        ),
        (_emulated(status=200, error_cause=None), ("m-1",), (), ()),
        # An error without its own state belongs to the flow the last StateChange entered
        (
            {"point": [_state("TARGET_REQ_FLOW"), _error_point(BAD_CERTIFICATE)]},
            (),
            (BAD_CERTIFICATE,),
            ("TARGET_REQ_FLOW",),
        ),
        # A proxy-flow error is an error, but not the target request flow's
        (
            {"point": [_state("PROXY_REQ_FLOW"), _error_point("Invalid API key")]},
            (),
            ("Invalid API key",),
            (),
        ),
        # Headers in any result, any case
        (
            {
                "point": [
                    {
                        "id": "FlowInfo",
                        "results": [{"headers": [{"name": "x-apigee.message-id", "value": "h-1"}]}],
                    }
                ]
            },
            ("h-1",),
            (),
            (),
        ),
        ({"unexpected": "shape"}, (), (), ()),
        ([], (), (), ()),
    ],
    ids=[
        "spec-example",
        "emulated-failure",
        "emulated-other-layout",
        "emulated-success",
        "state-from-flow",
        "proxy-flow-error",
        "header-anywhere",
        "unknown-shape",
        "not-an-object",
    ],
)
def test_extract_trace_facts(
    transaction: Any, message_ids: tuple[str, ...], causes: tuple[str, ...], target_states: tuple[str, ...]
) -> None:
    # Given a transaction, When facts are extracted, Then ids, causes and target errors come out by name
    facts = extract_trace_facts(transaction)
    assert facts.message_ids == message_ids
    assert facts.error_causes == causes
    assert tuple(e.state for e in facts.target_errors) == target_states

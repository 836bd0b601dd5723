"""The collection stages of `collect`, one function each; every outcome becomes a StepResult
(fail forward)."""

from __future__ import annotations

import importlib
import json
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from collector import interrupts, layout
from collector.bundle import redactors
from collector.edge import trace as edge_trace
from collector.edge.documents import DirectorySink
from collector.edge.resolve import resolve_proxy
from collector.errors import EdgeAuthError, EdgeNotFoundError, InputError, UsageError
from collector.inventory import ROLE_BACKEND, ROLE_MESSAGE_PROCESSOR, InventoryHost, hosts_from_addresses
from collector.progress import Stage
from collector.remote.fleet import ConnectionSettings, Fleet
from collector.remote.host_steps import CAPTURE_MEGABYTES, RunInputs, backend_own_addresses
from collector.run.context import EDGE_HOST, LOCAL_HOST, RunContext, failed_step
from collector.run.reproduce import Reproduction, get_url, redact_argv, redact_url, run_curl
from collector.settings import Backend
from collector.steps import Step, StepResult, StepStatus
from collector.tls.survey import Offer, make_offer

if TYPE_CHECKING:
    from collector.edge.client import EdgeClient

TRACE_MARGIN_SECONDS = 120
SETTLE_SECONDS = 1.0  # let tcpdump and the debug session settle before the reproduction
MARK_SECONDS = 2.0  # before the window ends, the captures note their packet counts (Fleet.mark_captures)


# --- files --------------------------------------------------------------------------------------------------

def write_text(ctx: RunContext, relative: str, text: str) -> None:
    """Write one bundle file through the writer (redacted, 0600)."""
    ctx.bundle_writer.write_text(relative, text, collector="run")


def write_json(ctx: RunContext, relative: str, data: Any) -> None:
    write_text(ctx, relative, json.dumps(data, indent=2) + "\n")


def write_raw_json(ctx: RunContext, relative: str, data: Any) -> None:
    """A file for the raw directory (imported, redacted, with the collectors' files before the
    final analysis)."""
    if not layout.is_inside(relative):
        raise ValueError(f"{relative!r} is outside the bundle")
    path = ctx.staging / relative
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(data, indent=2) + "\n")


# --- 1. resolve ---------------------------------------------------------------------------------------------

def make_edge_client(ctx: RunContext, *, sink: bool = True) -> EdgeClient:
    """The management API client with the run's credentials (token, token command, Basic, or ~/.netrc)."""
    from collector.edge import client as edge  # noqa: PLC0415 - httpx: ~0.1 s a --no-api run never needs

    s = ctx.settings
    auth: edge.BearerAuth | edge.BasicAuth | None
    if s.secrets.token:
        auth = edge.BearerAuth(s.secrets.token)
    elif s.token_command:
        auth = edge.BearerAuth(edge.token_from_command(list(s.token_command)))
    elif s.username and s.secrets.password:
        auth = edge.BasicAuth(s.username, s.secrets.password)
    else:
        auth = edge.auth_from_netrc(s.mgmt_url)
    return edge.EdgeClient(s.mgmt_url, auth, timeout=s.api_timeout,
                           sink=DirectorySink(ctx.staging) if sink else None)


def resolve(ctx: RunContext, *, sink: bool = True) -> None:
    """Ask the management API for the deployment, MPs, TLS setup and backends (credentials refused: raise)."""
    s = ctx.settings
    if s.no_api:
        ctx.skip(EDGE_HOST, Step.RESOLVE, "no-api", "--no-api: the management API was not used",
                 StepStatus.NOT_APPLICABLE)
    else:
        ctx.observer.stage_started(Stage.RESOLVE, f"{s.org}/{s.env}/{s.proxy} at {s.mgmt_url}")
        started = time.monotonic()
        try:
            ctx.client = make_edge_client(ctx, sink=sink)
            ctx.resolution = resolve_proxy(ctx.client, s.org, s.env, s.proxy,
                                           private_cloud=False if s.public_cloud else None)
        except (EdgeAuthError, EdgeNotFoundError, UsageError, InputError):
            raise  # the operator must fix the credentials, the token command or the names: exit 2, no bundle
        except Exception as exc:  # noqa: BLE001 - the API is down or broken: record it and collect on the hosts
            ctx.record(failed_step(EDGE_HOST, Step.RESOLVE, exc, time.monotonic() - started))
        else:
            ctx.record(StepResult(EDGE_HOST, Step.RESOLVE, StepStatus.OK, seconds=time.monotonic() - started))
            for finding in ctx.resolution.findings:
                ctx.observer.note(finding)
    _collect_peers(ctx)


def _collect_peers(ctx: RunContext) -> None:
    """Backend and MP addresses for the capture filters, from the resolution, --backend and the inventory.

    Each backend target keeps the SNI its source gives (the resolution's is the target's host name), port
    filled in (443 when the target does not say).
    """
    backends: dict[tuple[str, int], Backend] = {}
    addresses: list[str] = []
    resolution = ctx.resolution
    if resolution is not None:
        for backend in resolution.backends:
            port = backend.port or 443
            backends.setdefault((backend.host, port), Backend(backend.host, port, sni=backend.sni))
            addresses += list(backend.addresses) or _lookup(backend.host)
        ctx.mp_addresses += [mp.address for mp in resolution.message_processors if mp.address]
    for given in ctx.settings.backends:
        port = given.port or 443
        backends.setdefault((given.host, port), Backend(given.host, port, sni=given.sni))
        addresses += _lookup(given.host)
    if ctx.inventory is not None:
        addresses += [h.address for h in ctx.inventory.backends]
        ctx.mp_addresses += [h.address for h in ctx.inventory.message_processors]
    ctx.backend_targets = list(backends.values())
    ctx.backend_ports = list(dict.fromkeys(b.port for b in ctx.backend_targets if b.port is not None))
    ctx.backend_addresses = list(dict.fromkeys(addresses))
    ctx.mp_addresses = list(dict.fromkeys(ctx.mp_addresses))


def _lookup(host: str) -> list[str]:
    """The IPs of a backend host name (the capture filter wants addresses); the name itself
    when unresolvable."""
    try:
        answers = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        return list(dict.fromkeys(str(info[4][0]) for info in answers))
    except OSError:
        return [host]


# --- 2. hosts and captures ----------------------------------------------------------------------------------

def plan_hosts(ctx: RunContext) -> list[InventoryHost]:
    """The SSH hosts of the run: the inventory's, plus MPs the API named that the inventory lacks
    (private cloud)."""
    hosts = list(ctx.inventory.hosts) if ctx.inventory is not None else []
    known = {h.address for h in hosts}
    if ctx.resolution is not None and not ctx.settings.public_cloud:
        discovered = [mp.address for mp in ctx.resolution.message_processors
                      if mp.address and mp.address not in known]
        if discovered and ctx.inventory is None:
            hosts += hosts_from_addresses(discovered, ROLE_MESSAGE_PROCESSOR)
        elif discovered:
            for address in discovered:
                ctx.skip(address, Step.CONNECT, "not-in-inventory",
                         f"{address}: the management API lists this message processor but the inventory "
                         "has no host with that address; add it to capture there")
    return hosts


def connect_hosts(ctx: RunContext, hosts: list[InventoryHost]) -> None:
    s = ctx.settings
    if not hosts:
        ctx.skip(LOCAL_HOST, Step.CONNECT, "no-hosts",
                 "no SSH hosts: give --inventory to capture on message processors and backends")
        return
    ctx.observer.stage_started(Stage.CONNECT, ", ".join(h.name for h in hosts))
    settings = ConnectionSettings(
        known_hosts=s.known_hosts,
        accept_new_host_keys=s.accept_new_host_keys,
        sudo_password=s.secrets.sudo_password,
    )
    # a host's system.log starts its way into the bundle (redaction, on another core) as soon as it is here
    writer = ctx.writer
    ctx.fleet = Fleet(hosts, settings, ctx.staging, ctx.run_id, delivered=None if writer is None else
                      lambda rel: writer.copy_file_soon(rel, ctx.staging / rel))
    ctx.record_all(ctx.fleet.connect())


def run_inputs(ctx: RunContext, hosts: Sequence[InventoryHost]) -> RunInputs:
    """What every host argv of this run is built from; the run and its --dry-run plan both call this."""
    port = ctx.backend_ports[0] if len(ctx.backend_ports) == 1 else None
    mps = [h for h in hosts if h.role == ROLE_MESSAGE_PROCESSOR]
    backends = [h.address for h in hosts if h.role == ROLE_BACKEND]
    return RunInputs(
        run_id=ctx.run_id,
        backend_addresses=tuple(ctx.backend_addresses),
        mp_addresses=tuple(ctx.mp_addresses) or backend_own_addresses(backends, ctx.backend_addresses, port),
        port=port,
        capture_seconds=ctx.settings.capture_seconds,
        message_ids=tuple(ctx.message_ids),
        probe_targets=tuple(ctx.backend_targets),
        probe_via=mps[0].name if mps else None,
        probe_offers=tuple(offer_for(ctx, b) for b in ctx.backend_targets),
    )


def offer_for(ctx: RunContext, backend: Backend) -> Offer:
    """What the MP offers this backend, which the probe's survey offers in its place: the SSLInfo
    <Protocols>/<Ciphers> of its target (the resolution), JSSE's defaults for what it does not set or when
    the target is unknown."""
    targets = ctx.resolution.targets if ctx.resolution is not None else ()
    port = backend.port or 443
    target = next((t for t in targets if t.host == backend.host and (t.port or 443) == port), None)
    if target is None:
        return make_offer()
    try:
        return make_offer(target.protocols, target.ciphers, source=f"SSLInfo of target {target.name}")
    except ValueError as exc:
        ctx.observer.note(f"{target.name}: SSLInfo <Protocols> {exc}; the probe offers JSSE's defaults")
        return make_offer()


def start_captures(ctx: RunContext) -> None:
    if ctx.fleet is None:
        return
    if not ctx.backend_addresses and not ctx.mp_addresses:
        ctx.skip(LOCAL_HOST, Step.START_CAPTURE, "no-peers", "no backend or MP address is known to filter on")
        return
    ctx.observer.stage_started(Stage.CAPTURE, f"backends {', '.join(ctx.backend_addresses) or '-'}; "
                                              f"message processors {', '.join(ctx.mp_addresses) or '-'}")
    inputs = run_inputs(ctx, ctx.fleet.hosts)
    if not ctx.mp_addresses and inputs.mp_addresses:
        ctx.observer.note("the message processors' addresses are unknown: the backends capture every client "
                          f"on port {inputs.port}")
    ctx.record_all(ctx.fleet.start_captures(
        inputs.backend_addresses, inputs.mp_addresses, inputs.port,
        max_seconds=inputs.max_seconds, max_megabytes=CAPTURE_MEGABYTES,
    ))


def stop_captures(ctx: RunContext) -> None:
    if ctx.fleet is None:
        return
    ctx.observer.stage_started(Stage.STOP_CAPTURE, "stopping tcpdump and fetching the captures")
    results = ctx.record_all(ctx.fleet.stop_captures())
    ctx.captured += [r.host for r in results if r.status is StepStatus.OK and r.step == Step.FETCH_CAPTURE]


# --- 3. trace and reproduction ------------------------------------------------------------------------------

def start_trace(ctx: RunContext) -> None:
    s = ctx.settings
    if not s.trace or ctx.client is None or ctx.resolution is None:
        if not s.trace:
            reason, message = "disabled", "--no-trace: no debug session was started"
        else:
            reason, message = "no-api", "no debug session: the management API was not used or not resolved"
        ctx.skip(EDGE_HOST, Step.TRACE, reason, message,
                 StepStatus.NOT_APPLICABLE if s.no_api else StepStatus.SKIPPED)
        write_raw_json(ctx, layout.TRACE_SESSION, json.loads(edge_trace.skipped_trace_summary(message)))
        return

    revision = _revision(ctx.resolution.revisions)
    ctx.observer.stage_started(Stage.TRACE, f"debug session on revision {revision}")
    started = time.monotonic()
    try:
        ctx.trace_session = edge_trace.start_trace(ctx.client, s.org, s.env, s.proxy, revision,
                                                   timeout_seconds=s.capture_seconds + TRACE_MARGIN_SECONDS)
    except Exception as exc:  # noqa: BLE001 - no trace: the capture and the logs still tell the story
        ctx.record(failed_step(EDGE_HOST, Step.START_TRACE, exc, time.monotonic() - started))
    else:
        ctx.record(StepResult(EDGE_HOST, Step.START_TRACE, StepStatus.OK, seconds=time.monotonic() - started))


def _revision(revisions: Sequence[str]) -> str:
    return str(revisions[0] if revisions else "1")  # newest first


# What only the stages after the window use (analysis, diagnosis, reports: ~0.4 s of imports, ~0.25 s to
# compile the report templates; detect-secrets ~0.3 s when nothing was redacted yet), made ready while the
# window is open, when the run only waits, rather than before the first host is reached or after the last.
LATER_STAGES = ("collector.run.analysis", "collector.run.reports")


def warm_up(ctx: RunContext) -> None:
    if ctx.writer is not None and ctx.fleet is not None:
        # each MP's log will come: their redaction workers start meanwhile
        ctx.writer.start_workers(len(ctx.fleet.inventory.message_processors))
    load_later_stages()


def load_later_stages() -> None:
    """Import and prepare what the stages after the window need (idempotent). Ctrl-C and SIGTERM wait until
    it is done: an interrupt in the middle of an import leaves that module half-made for the rest of the
    process, and then every redaction or report of the partial bundle would fail."""
    with interrupts.held():
        for module in LATER_STAGES:
            importlib.import_module(module)
        redactors.load_rules()  # detect-secrets' patterns, ~0.3 s: the first redaction needs them
        importlib.import_module("collector.bundle.report").load_templates()


def reproduce_during_window(ctx: RunContext) -> None:
    """Run the reproduction while the window is open and tick the countdown once a second."""
    s = ctx.settings
    total = float(s.capture_seconds)
    ctx.observer.stage_started(Stage.REPRODUCE, _reproduction_label(ctx))
    outcome: list[Reproduction] = []
    worker: threading.Thread | None = None
    if s.reproduce or s.url:
        timeout = max(5.0, total + 30.0)

        def work() -> None:
            if s.reproduce:
                outcome.append(run_curl(s.reproduce, timeout))
            else:
                outcome.append(get_url(str(s.url), timeout))

        time.sleep(min(SETTLE_SECONDS, total / 4))
        worker = threading.Thread(target=work, name="reproduce", daemon=True)
        worker.start()
    else:
        ctx.observer.note(f"reproduce the failing call now: the capture window is open for {int(total)} s")
    deadline = time.monotonic() + total
    warm_up(ctx)
    # The captures note their packet counts MARK_SECONDS before the end: one that receives nothing more stops
    # at once (no wait for what tcpdump may still hold), which the reproduction's traffic has usually ended.
    mark_at = deadline - MARK_SECONDS if ctx.fleet is not None and total > MARK_SECONDS + 1 else None
    while True:
        now = time.monotonic()
        left = deadline - now
        if left <= 0 and (worker is None or not worker.is_alive()):
            break
        if mark_at is not None and now >= mark_at and ctx.fleet is not None:
            ctx.fleet.mark_captures()
            mark_at = None
        ctx.observer.window_tick(max(0.0, left), total)
        pause = min(1.0, max(0.05, left)) if left > 0 else 0.2
        if mark_at is not None:
            pause = min(pause, max(0.05, mark_at - now))
        time.sleep(pause)
    ctx.observer.window_tick(0.0, total)
    if worker is None:
        ctx.skip(LOCAL_HOST, Step.REPRODUCE, "manual",
                 "no --reproduce or --url: the operator reproduced by hand",
                 StepStatus.NOT_APPLICABLE)
        return
    result = outcome[0]
    ctx.reproduction = result
    write_text(ctx, layout.REQUEST_COMMAND, result.command + "\n")
    write_text(ctx, layout.REQUEST_RESPONSE, result.response)
    ctx.message_ids += [m for m in result.message_ids if m not in ctx.message_ids]
    if result.status is not None:
        ctx.observer.note(f"the reproduction was answered with HTTP {result.status}")
    if result.error:
        ctx.record(StepResult(LOCAL_HOST, Step.REPRODUCE, StepStatus.FAILED, "reproduction-failed",
                              f"{LOCAL_HOST} -> {Step.REPRODUCE}: {result.error}", result.seconds))
    else:
        ctx.record(StepResult(LOCAL_HOST, Step.REPRODUCE, StepStatus.OK, seconds=result.seconds))


def _reproduction_label(ctx: RunContext) -> str:
    if ctx.settings.reproduce:
        return " ".join(redact_argv(ctx.settings.reproduce))
    if ctx.settings.url:
        return f"GET {redact_url(ctx.settings.url)}"
    return "waiting for the operator's reproduction"


def fetch_trace(ctx: RunContext) -> None:
    session, client = ctx.trace_session, ctx.client
    if session is None or client is None:
        return
    wait = 5.0 if ctx.reproduction is not None else 2.0  # Edge lists a transaction a moment after it ends
    result = ctx.attempt(EDGE_HOST, Step.FETCH_TRACE,
                         lambda: edge_trace.collect_trace(client, session, wait_seconds=wait))
    ctx.attempt(EDGE_HOST, Step.STOP_TRACE, lambda: edge_trace.stop_trace(client, session))
    if result is None:
        return
    ctx.trace_result = result
    ctx.message_ids += [m for m in result.message_ids if m not in ctx.message_ids]
    if not (ctx.staging / layout.TRACE_SESSION).exists():
        write_raw_json(ctx, layout.TRACE_SESSION, {
            "session": session.name,
            "transaction_ids": list(result.transaction_ids),
            "message_ids": list(result.message_ids),
            "error_causes": list(result.error_causes),
        })


# --- 4. gather ----------------------------------------------------------------------------------------------

def gather(ctx: RunContext) -> None:
    if ctx.fleet is None:
        return
    ids = ", ".join(ctx.message_ids) or "no message id"
    ctx.observer.stage_started(Stage.GATHER, f"system.log lines for {ids} and host facts")
    ctx.record_all(ctx.fleet.gather(ctx.message_ids))

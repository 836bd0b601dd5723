"""`collect`: the stages of the playbook in order, each host × step recorded, one bundle at the end
(fail forward).

1. resolve (management API, or --no-api)   2. connect to every host   3. start captures everywhere
4. start the trace   5. reproduce during the window   6. stop captures and fetch them   7. fetch the trace
8. gather logs for the message ids and host facts   9. probe when the capture cannot show the CA names
10. analyze the staging bundle (same code as `collect analyze`)   11. reports, manifest, packaging
"""

from __future__ import annotations

from collector.inventory import Inventory, load_inventory
from collector.progress import NullObserver, RunObserver
from collector.remote.host_steps import new_run_id
from collector.run.context import LOCAL_HOST, RunContext
from collector.run.outcome import RunOutcome, build_outcome
from collector.run.package import open_bundle, package, remove_raw
from collector.run.plan import dry_run
from collector.run.stages import (
    connect_hosts,
    fetch_trace,
    gather,
    load_later_stages,
    plan_hosts,
    reproduce_during_window,
    resolve,
    start_captures,
    start_trace,
    stop_captures,
)
from collector.settings import RunSettings
from collector.steps import Step, StepStatus

__all__ = ["RunOutcome", "load_run_inventory", "new_run_id", "run_collect"]


def run_collect(settings: RunSettings, observer: RunObserver | None = None) -> RunOutcome:
    """Run the whole playbook; never raises for a failing host or step (those are StepResults).

    Raises UsageError/InputError/EdgeAuthError/EdgeNotFoundError (exit 2) before anything is written when the
    settings, the inventory, the credentials or the names are wrong. SIGINT (KeyboardInterrupt) during the
    collection stops the captures on every host and still writes a partial bundle.
    """
    observer = observer or NullObserver()
    if settings.dry_run:
        return dry_run(settings, observer, load_run_inventory(settings))
    inventory = load_run_inventory(settings)
    writer, raw = open_bundle(settings)
    ctx = RunContext(settings, observer, raw, new_run_id(), writer=writer, inventory=inventory)
    try:
        return _run(ctx)
    finally:
        writer.abort()  # a no-op once finalized; otherwise nothing half-written stays
        remove_raw(raw)


def _run(ctx: RunContext) -> RunOutcome:
    observer = ctx.observer
    resolve(ctx)
    try:
        _collect(ctx)
    except KeyboardInterrupt:
        ctx.interrupted = True
        observer.note("interrupted: stopping the captures on every host, then writing a partial bundle")
        _stop_after_interrupt(ctx)
    finally:
        _close(ctx)
    try:
        load_later_stages()  # already done during the window, unless the run never got there
        from collector.run.analysis import analyze  # noqa: PLC0415 - loaded by load_later_stages

        analyze(ctx)
        bundle, directory = package(ctx)
    except KeyboardInterrupt:
        return build_outcome(None, ctx.diagnosis, ctx.steps, interrupted=True)
    return build_outcome(bundle, ctx.diagnosis, ctx.steps, directory=directory, interrupted=ctx.interrupted)


def load_run_inventory(settings: RunSettings) -> Inventory | None:
    """The --inventory hosts, ``None`` without one."""
    if settings.inventory is None:
        return None
    return load_inventory(settings.inventory)


def _collect(ctx: RunContext) -> None:
    hosts = plan_hosts(ctx)
    connect_hosts(ctx, hosts)
    start_captures(ctx)
    start_trace(ctx)
    try:
        reproduce_during_window(ctx)
    finally:
        stop_captures(ctx)
    fetch_trace(ctx)
    gather(ctx)


def _stop_after_interrupt(ctx: RunContext) -> None:
    """Stop (and fetch) the captures once more; a second interrupt leaves it to Fleet.close()."""
    try:
        if ctx.fleet is not None and not any(s.step == Step.STOP_CAPTURE for s in ctx.steps):
            ctx.record_all(ctx.fleet.stop_captures())
        if ctx.trace_session is not None:
            fetch_trace(ctx)
    except KeyboardInterrupt:
        pass
    # Recorded as a failure so the manifest and SUMMARY.md say the bundle is incomplete.
    ctx.skip(LOCAL_HOST, Step.COLLECT, "interrupted",
             "the run was interrupted (SIGINT/SIGTERM): later stages skipped",
             StepStatus.FAILED)


def _close(ctx: RunContext) -> None:
    """Always: stop any capture still running and close every SSH connection; what the close had to clean up
    (captures an interrupt left running) is recorded as `cleanup` steps."""
    if ctx.fleet is None:
        return
    try:
        ctx.record_all(ctx.fleet.close())
    except KeyboardInterrupt:
        ctx.record_all(ctx.fleet.close())
    except Exception as exc:  # noqa: BLE001 - closing must not cost the bundle
        ctx.skip(LOCAL_HOST, Step.CLOSE, "close-failed", f"closing connections: {exc}")

"""A raw collection (playbooks/collect.yml's output) turned into the standard bundle, exactly as
`collect run` does.

`package_raw` resolves the proxy through the management API when it may, puts the collection's files where
`collect run` fetches to, replays the playbook's steps, then analyzes, reports and packages with the run's own
stages.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import Any

from collector.errors import UsageError
from collector.progress import NullObserver, RunObserver, Stage
from collector.remote.host_steps import new_run_id
from collector.run.analysis import analyze
from collector.run.context import EDGE_HOST, LOCAL_HOST, RunContext
from collector.run.outcome import RunOutcome, build_outcome
from collector.run.package import open_bundle, package, remove_raw
from collector.run.raw_collection import RUN_RECORD, RawCollection, read_raw_collection
from collector.run.stages import resolve
from collector.settings import RunSettings
from collector.steps import Step, StepResult, StepStatus

__all__ = ["package_raw", "read_raw_collection", "settings_flags"]


def settings_flags(collection: RawCollection, flags: Mapping[str, Any]) -> dict[str, Any]:
    """The flags with org/env/proxy (and, with --no-api, the backends) filled from the collection's record.

    A name given on the command line must match the record: packaging another proxy's capture under this
    proxy's name would send the ticket the wrong evidence.
    """
    merged = dict(flags)
    names = {"org": collection.org, "env": collection.env, "proxy": collection.proxy}
    for key, recorded in names.items():
        given = merged.get(key)
        if given is None and recorded is not None:
            merged[key] = recorded
        elif given is not None and recorded is not None and given != recorded:
            raise UsageError(
                f"--{key} {given!r}: the collection in {collection.root} was made for "
                f"{key} {recorded!r} ({RUN_RECORD}); give the matching name or another --from"
            )
    if merged.get("no_api") and not merged.get("backends") and collection.backend_port:
        merged["backends"] = [_backend_text(a, collection.backend_port) for a in collection.backend_addresses]
    return merged


def package_raw(
    settings: RunSettings, collection: RawCollection, observer: RunObserver | None = None
) -> RunOutcome:
    """Resolve (unless --no-api), import the collection, analyze, report and package; like `run_collect`, a
    failing step is recorded, never raised. Raises EdgeAuthError/EdgeNotFoundError (exit 2) before writing."""
    observer = observer or NullObserver()
    writer, staging = open_bundle(settings)
    ctx = RunContext(
        settings,
        observer,
        staging,
        collection.run_id or new_run_id(),
        writer=writer,
        inventory=collection.inventory(),
    )
    try:
        resolve(ctx)
        observer.stage_started(
            Stage.GATHER,
            f"importing the collection in {collection.root} "
            f"({len(collection.hosts)} host(s), {len(collection.files)} file(s))",
        )
        _stage_files(ctx, collection)
        _replay(ctx, collection)
        analyze(ctx)
        bundle, directory = package(ctx)
    finally:
        writer.abort()  # a no-op once finalized
        remove_raw(staging)
    return build_outcome(bundle, ctx.diagnosis, ctx.steps, directory=directory)


def _backend_text(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


# --- packaging ----------------------------------------------------------------------------------------------


def _stage_files(ctx: RunContext, collection: RawCollection) -> None:
    """Put the collection's files into the run's private raw directory, where `collect run` fetches to.

    Hard links when the file systems allow (captures can be large); the raw directory only ever gains new
    files, and removing it removes the links, never the collection's files.
    """
    for rel, source in collection.files:
        target = ctx.staging / rel
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
            target.chmod(0o600)


def _replay(ctx: RunContext, collection: RawCollection) -> None:
    """The playbook's steps and findings, recorded as if this run had made them."""
    ctx.record_all(collection.steps)
    ctx.captured += collection.captured()
    ctx.message_ids += [m for m in collection.message_ids if m not in ctx.message_ids]
    ctx.reproduction = collection.reproduction
    result = collection.reproduction
    if result is None:
        ctx.skip(
            LOCAL_HOST,
            Step.REPRODUCE,
            "manual",
            "no reproduction was recorded: the operator reproduced by hand",
            StepStatus.NOT_APPLICABLE,
        )
    elif result.error:
        ctx.record(
            StepResult(
                LOCAL_HOST,
                Step.REPRODUCE,
                StepStatus.FAILED,
                "reproduction-failed",
                f"{LOCAL_HOST} -> reproduce: {result.error}",
                result.seconds,
            )
        )
    else:
        ctx.record(StepResult(LOCAL_HOST, Step.REPRODUCE, StepStatus.OK, seconds=result.seconds))
    ctx.skip(
        EDGE_HOST,
        Step.TRACE,
        "not-collected",
        f"collected with {collection.producer or 'playbooks/collect.yml'}, which starts no debug session: "
        "attach a trace by hand",
        StepStatus.NOT_APPLICABLE,
    )
    if collection.ignored:
        ctx.skip(
            LOCAL_HOST,
            Step.IMPORT,
            "not-in-layout",
            f"left out of the bundle (not part of the raw layout): {', '.join(collection.ignored[:20])}",
            StepStatus.NOT_APPLICABLE,
        )

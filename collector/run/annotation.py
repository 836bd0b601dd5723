"""`analysis/BACKEND.pcapng`: each backend's captures (MP side and backend side) merged for Wireshark, the
frames the diagnosis cites commented (`diagnosis/citations.py` says which and how, `tls/merged_capture.py`
writes them)."""

from __future__ import annotations

import ipaddress
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

from collector import layout
from collector.diagnosis.causes import Diagnosis
from collector.diagnosis.citations import AnnotationPlan, plan_annotation
from collector.diagnosis.evidence import Evidence
from collector.diagnosis.targets import split_endpoint
from collector.inventory import ROLE_BACKEND, ROLE_MESSAGE_PROCESSOR
from collector.run.context import LOCAL_HOST, RunContext
from collector.steps import Step, StepStatus
from collector.tls.merged_capture import CaptureSource, Endpoint, merge_captures

_ROLE_WORDS = {ROLE_MESSAGE_PROCESSOR: "message processor", ROLE_BACKEND: "backend"}
MAX_NOTES = 5  # merge notes shown as progress; the captures' own damage is in the analysis notes already
# An annotated capture holds each input packet once (16 more bytes of header each): twice the inputs' size is
# room for any plain capture, and stops a gzip bomb from becoming a huge bundle file.
SIZE_FACTOR, SIZE_MARGIN = 2, 16 << 20


def annotate_captures(ctx: RunContext, evidence: Evidence, diagnosis: Diagnosis) -> None:
    """Write one annotated capture per backend the captures show; a step says why when there is none."""
    sources = capture_sources(ctx)
    plan = plan_annotation(diagnosis, evidence)
    if not sources or not plan.backends:
        why = "no host capture in the bundle" if not sources else "the captures show no backend connection"
        ctx.skip(LOCAL_HOST, Step.ANNOTATE, "nothing-to-annotate", why, StepStatus.NOT_APPLICABLE)
        return
    ctx.observer.note(f"merging {len(sources)} host capture(s) into an annotated capture per backend "
                      f"({len(plan.backends)}) for Wireshark")
    written = ctx.attempt(LOCAL_HOST, Step.ANNOTATE, lambda: write_annotated(ctx, sources, plan))
    if written:
        ctx.annotated_captures = written


def capture_sources(ctx: RunContext) -> list[CaptureSource]:
    """Every host capture of the bundle, named after its inventory host (the folder name when the inventory
    does not know the folder)."""
    root = ctx.bundle_root
    hosts = {layout.safe_component(h.name): h for h in ctx.inventory.hosts} if ctx.inventory else {}
    sources = []
    for path in sorted(root.glob(f"{layout.HOSTS_DIR}/*/{layout.HOST_CAPTURE}")):
        rel = path.relative_to(root).as_posix()
        folder = rel.split("/")[1]
        host = hosts.get(folder)
        name = host.name if host is not None else folder
        role = _ROLE_WORDS.get(host.role, host.role) if host is not None else "host"
        sources.append(CaptureSource(path, name, rel, f"{role} {name}: {rel}"))
    return sources


def write_annotated(ctx: RunContext, sources: list[CaptureSource], plan: AnnotationPlan) -> list[str]:
    """The annotated captures, written through the bundle writer; returns their bundle paths."""
    targets = _paths(plan.backends)
    writer = ctx.bundle_writer
    with ExitStack() as stack:
        outputs: dict[Endpoint | None, BinaryIO] = {}
        for endpoint, rel in targets.items():
            stream = stack.enter_context(writer.open_stream(rel, collector="annotate"))
            outputs[None if len(targets) == 1 else endpoint] = stream
        limit = SIZE_FACTOR * sum(_size(source.path) for source in sources) + SIZE_MARGIN
        summary = merge_captures(sources, outputs, plan.comments, max_bytes=limit)
    for note in summary.notes[:MAX_NOTES]:
        ctx.observer.note(f"annotated capture: {note}")
    if plan.left_out:
        ctx.observer.note(f"annotated capture: {plan.left_out} more backend(s) in the captures have none "
                          f"(the first {len(plan.backends)} do)")
    return list(targets.values())


def _paths(backends: tuple[str, ...]) -> dict[Endpoint, str]:
    """Each backend's endpoint and bundle path (``-2``... when two endpoints make the same file name); an
    endpoint that is not ``ip:port`` has no capture of its own."""
    paths: dict[Endpoint, str] = {}
    for backend in backends:
        address, port = split_endpoint(backend)
        try:
            ipaddress.ip_address(address)
        except ValueError:
            continue
        rel, serial = layout.annotated_capture(backend), 1
        while rel in paths.values():
            serial += 1
            rel = layout.annotated_capture(f"{backend}-{serial}")
        paths[(address, port)] = rel
    return paths


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the merge notes the file it cannot open

"""Redaction of everything written to a bundle, by what the file is: captures kept, archives rewritten member
by member, compressed files redacted inside (however deep, within limits), everything else through every rule.

Pure: no file is opened here. What a file is comes from its bytes, except that only a file at a capture path
(`archives.is_capture_path`) is ever kept as a capture: a log that happens to start like a pcap is still
redacted. A file that cannot be redacted safely raises `UnredactableError` and stays out of the bundle.
IP addresses are kept on purpose: captures and the analysis need them.
"""

from __future__ import annotations

import gzip
import io
import shutil
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from collector.bundle.archives import (
    SNIFF_BYTES,
    FileKind,
    is_capture_path,
    is_key_file,
    rewrite_tar,
    rewrite_zip,
    sniff_kind,
)
from collector.bundle.pieces import PIECE_BYTES
from collector.bundle.stream import (
    MAX_LINES_PER_RULE,
    RULE_LINE_TOO_LONG,
    Redaction,
    StreamRedactor,
)
from collector.errors import BundleError

__all__ = ["MAX_LINES_PER_RULE", "PIECE_BYTES", "RULE_KEY_FILE", "RULE_LINE_TOO_LONG", "Redaction",
           "StreamRedactor", "UnredactableError", "redact_bytes", "redact_seekable", "redact_stream",
           "redact_text", "summarize_redactions"]

READ_BYTES = 64 * 1024
RULE_KEY_FILE = "private-key-file"  # a whole archive member holding only key material, dropped
TRUNCATED_NOTE = b"\n[apigee-collector: the compressed file ended early; the rest of it is missing]\n"
MAX_NESTING = 4  # gzip in gzip in zip in tar...: deeper than this is not a file we collect
MAX_IN_MEMORY_BYTES = 256 * 1024 * 1024  # an archive (and its members, inflated) is rewritten in memory
_MIB_IN_MEMORY = MAX_IN_MEMORY_BYTES // (1024 * 1024)
MAX_INFLATED_BYTES = 4 * 1024 * 1024 * 1024  # a compressed stream redacted on the fly (a bomb stops here)
# A redacted gzip is written at level 2: on an 8 MiB MP system.log, levels 1 and 2 cost the same CPU (~0.05 s,
# both zlib's fast strategy) and 2 is 8% smaller (1.05 vs 1.14 MB); 3 costs 20% more for 2% less; 6 and
# the old default 9 cost 3x and 5x (0.16 s, 0.26 s) for 0.93 and 0.85 MB. The hosts send `gzip -1`.
GZIP_LEVEL = 2


class UnredactableError(BundleError):
    """A file that cannot be redacted safely (compressed too deep or too large, unreadable compressed data):
    it does not enter the bundle, and the run records the step as failed for this reason."""

    reason = "unredactable"


@dataclass
class _Meter:
    """Bytes inflated so far for one top-level file, shared by every level inside it."""

    inflated: int = 0


@dataclass
class _Budget:
    """What one level of a file may still cost: nesting depth and bytes inflated (shared with all levels)."""

    source: str
    limit: int = MAX_INFLATED_BYTES
    depth: int = 0
    meter: _Meter = field(default_factory=_Meter)
    layers: list[bool] = field(default_factory=list)  # per gzip layer of this stream: did it end cleanly

    @property
    def left(self) -> int:
        return self.limit - self.meter.inflated

    def take(self, size: int) -> None:
        self.meter.inflated += size
        if self.meter.inflated > self.limit:
            raise UnredactableError(
                f"{self.source}: more than {self.limit // (1024 * 1024)} MiB once decompressed; it was not "
                "written to the bundle, because it cannot be checked for secrets within that limit")

    def deeper(self, *, same_stream: bool = False) -> _Budget:
        if self.depth + 1 > MAX_NESTING:
            raise UnredactableError(
                f"{self.source}: compressed or archived more than {MAX_NESTING} levels deep; it was not "
                "written to the bundle, because it cannot be checked for secrets")
        return _Budget(self.source, self.limit, self.depth + 1, self.meter,
                       self.layers if same_stream else [])


def redact_text(text: str, source: str) -> tuple[str, list[Redaction]]:
    """Mask every secret in `text` (a file destined for `source`) and record what was masked where."""
    engine = StreamRedactor(source)
    data = text.encode("utf-8", "surrogatepass")
    out = engine.feed(data) + engine.finish()
    return out.decode("utf-8", "surrogatepass"), engine.redactions


def redact_stream(src: BinaryIO, dst: BinaryIO, source: str) -> list[Redaction]:
    """Copy text from `src` to `dst` redacted, in bounded memory; compression is the caller's business."""
    engine = StreamRedactor(source)
    while block := src.read(READ_BYTES):
        dst.write(engine.feed(block))
    dst.write(engine.finish())
    return engine.redactions


def redact_bytes(data: bytes, source: str) -> tuple[bytes, list[Redaction]]:
    """Redact a whole file by kind (see the module); unchanged input is returned as is."""
    return _redact_bytes(data, source, _Budget(source, limit=MAX_IN_MEMORY_BYTES))


def redact_seekable(src: BinaryIO, out: BinaryIO, rel_path: str) -> list[Redaction]:
    """Copy a seekable file to `out` redacted by kind, like `redact_bytes`, but streaming text (plain or
    compressed, however many gzip layers) in bounded memory and keeping captures byte for byte."""
    budget = _Budget(rel_path)
    kind = sniff_kind(src.read(SNIFF_BYTES))
    src.seek(0)
    if kind is FileKind.CAPTURE and is_capture_path(rel_path):
        shutil.copyfileobj(src, out, READ_BYTES)
        return []
    if kind in (FileKind.ZIP, FileKind.TAR):
        in_memory = _Budget(rel_path, limit=MAX_IN_MEMORY_BYTES)
        new, found = _redact_bytes(_read_bounded(src, rel_path), rel_path, in_memory)
        out.write(new)
        return found
    if kind is FileKind.GZIP:
        return _redact_gzip_stream(src, out, rel_path, budget)
    engine = StreamRedactor(rel_path)
    while block := src.read(READ_BYTES):
        out.write(engine.feed(block))
    out.write(engine.finish())
    return engine.redactions


def _read_bounded(src: BinaryIO, source: str) -> bytes:
    data = src.read(MAX_IN_MEMORY_BYTES + 1)
    if len(data) > MAX_IN_MEMORY_BYTES:
        raise UnredactableError(f"{source}: an archive larger than {_MIB_IN_MEMORY} MiB; it was not written "
                                "to the bundle, because it cannot be checked for secrets")
    return data


def _redact_bytes(data: bytes, source: str, budget: _Budget) -> tuple[bytes, list[Redaction]]:
    kind = sniff_kind(data[:SNIFF_BYTES])
    if kind is FileKind.CAPTURE and is_capture_path(source):
        return data, []
    if kind is FileKind.GZIP:
        out = io.BytesIO()
        inner = budget.deeper()
        found = _redact_gzip_stream(io.BytesIO(data), out, source, inner)
        return (data if not found and all(inner.layers) else out.getvalue()), found
    if kind in (FileKind.ZIP, FileKind.TAR):
        return _redact_archive(data, source, kind, budget.deeper())
    engine = StreamRedactor(source)
    out_bytes = engine.feed(data) + engine.finish()
    return (data if out_bytes == data else out_bytes), engine.redactions


def _redact_gzip_stream(src: BinaryIO, out: BinaryIO, source: str, budget: _Budget) -> list[Redaction]:
    """Peel every gzip layer on the fly, redact what is inside by its kind, and write it gzip'd once."""
    blocks: Iterator[bytes] = iter(lambda: src.read(READ_BYTES), b"")
    while True:
        blocks = _gunzip_blocks(blocks, budget)
        head, blocks = _peek(blocks)
        if not head and not all(budget.layers):
            raise UnredactableError(f"{source}: not a readable gzip file; it was not written to the bundle, "
                                    "because its content must be checked for secrets first")
        kind = sniff_kind(head)
        if kind is not FileKind.GZIP:
            break
        budget = budget.deeper(same_stream=True)
    if kind is FileKind.CAPTURE and is_capture_path(source) and len(budget.layers) == 1:
        src.seek(0)  # a gzip'd capture at a capture path: kept as it came
        shutil.copyfileobj(src, out, READ_BYTES)
        return []
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="", compresslevel=GZIP_LEVEL) as packed:
        if kind in (FileKind.ZIP, FileKind.TAR):
            inner = b"".join(_bounded(blocks, source))
            new, found = _redact_bytes(inner, source, budget.deeper())
            packed.write(new)
        else:
            engine = StreamRedactor(source)
            for block in blocks:
                packed.write(engine.feed(block))
            packed.write(engine.finish())
            found = engine.redactions
        packed.write(b"" if all(budget.layers) else TRUNCATED_NOTE)
    return found


def _bounded(blocks: Iterator[bytes], source: str) -> Iterator[bytes]:
    total = 0
    for block in blocks:
        total += len(block)
        if total > MAX_IN_MEMORY_BYTES:
            raise UnredactableError(f"{source}: an archive larger than {_MIB_IN_MEMORY} MiB once "
                                    "decompressed; it was not written to the bundle, because it cannot be "
                                    "checked for secrets")
        yield block


def _peek(blocks: Iterator[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """The first `SNIFF_BYTES` of a block stream, and the same stream from its start."""
    head = bytearray()
    taken: list[bytes] = []
    for block in blocks:
        taken.append(block)
        head += block
        if len(head) >= SNIFF_BYTES:
            break

    def _again() -> Iterator[bytes]:
        yield from taken
        yield from blocks

    return bytes(head[:SNIFF_BYTES]), _again()


def _gunzip_blocks(blocks: Iterator[bytes], budget: _Budget) -> Iterator[bytes]:
    """Decompress every gzip member of a block stream, block by block. Records in `budget.layers` whether the
    data ended cleanly (False when it ends early or turns into garbage: what came before is kept, a cut log
    is still worth reading)."""
    index = len(budget.layers)
    budget.layers.append(False)

    def _run() -> Iterator[bytes]:
        inflate = zlib.decompressobj(wbits=31)
        for raw in blocks:
            block = raw
            while block:
                try:
                    # bounded output per call, so a bomb never sits in memory at once
                    piece = inflate.decompress(block, READ_BYTES)
                    while piece:
                        budget.take(len(piece))
                        yield piece
                        tail = inflate.unconsumed_tail
                        piece = b"" if inflate.eof else inflate.decompress(tail, READ_BYTES)
                except zlib.error:
                    return
                if not inflate.eof:
                    break
                block = inflate.unused_data
                if not block.strip(b"\x00"):
                    block = b""  # zero padding after the last member (tape-style blocks)
                elif block[:2] != b"\x1f\x8b":
                    return
                else:
                    inflate = zlib.decompressobj(wbits=31)
        budget.layers[index] = inflate.eof

    return _run()


def _redact_archive(data: bytes, source: str, kind: FileKind,
                    budget: _Budget) -> tuple[bytes, list[Redaction]]:
    found: list[Redaction] = []
    changed = False

    def _rewrite(member: str, content: bytes) -> bytes | None:
        nonlocal changed
        where = f"{source}!{member}"
        if is_key_file(member):
            found.append(Redaction(where, RULE_KEY_FILE, 0, 1))
            changed = True
            return None
        budget.take(len(content))
        new, member_found = _redact_bytes(content, where, budget)
        found.extend(member_found)
        changed = changed or new != content
        return new

    rewrite: Callable[..., bytes] = rewrite_zip if kind is FileKind.ZIP else rewrite_tar
    out = rewrite(data, source, _rewrite, max_member_bytes=budget.left)
    return (out if changed else data), found


def summarize_redactions(redactions: Sequence[Redaction]) -> dict[str, int]:
    """Secrets masked per rule, for the manifest and the summary."""
    totals: dict[str, int] = {}
    for r in redactions:
        totals[r.rule] = totals.get(r.rule, 0) + r.count
    return dict(sorted(totals.items()))

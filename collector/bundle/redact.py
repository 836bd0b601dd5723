"""Redaction of everything written to a bundle: text, bytes, streams and archives, each redaction recorded.

Pure: no file is opened here. Text is processed in pieces of whole lines (a line longer than `PIECE_BYTES` is cut
after a `,;{}[]&` delimiter when it has one), so memory stays bounded for multi-megabyte logs and one-line JSON.
IP addresses are kept on purpose: captures and the analysis need them.
"""

from __future__ import annotations

import gzip
import io
import shutil
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from collector.bundle.archives import SNIFF_BYTES, FileKind, is_key_file, rewrite_tar, rewrite_zip, sniff_kind
from collector.bundle.redactors import PrivateKeyRedactor, Redactor, new_redactors
from collector.errors import BundleError

PIECE_BYTES = 256 * 1024
READ_BYTES = 64 * 1024
MAX_LINES_PER_RULE = 200  # per file and rule; further lines are summed into one `line=0` record
RULE_KEY_FILE = "private-key-file"  # a whole archive member holding only key material, dropped
TRUNCATED_NOTE = b"\n[apigee-collector: the compressed file ended early; the rest of it is missing]\n"
_SPLIT_AFTER = tuple(bytes([c]) for c in b",;{}[]&")


@dataclass(frozen=True)
class Redaction:
    """Secrets masked by one rule on one line of one bundle file.

    Attributes:
        file: bundle path; an archive member is ``ARCHIVE!MEMBER`` (``edge/proxy-bundle.zip!apiproxy/x.pem``).
        rule: the redactor's name (``authorization``, ``cookie``, ``curl-user``, ``url-credentials``,
            ``secret-parameter``, ``header-property``, ``jwt``, ``private-key``, ``private-key-file``).
        line: 1-based line in the file as written; 0 for a dropped member, or for the sum of the lines past
            the first `MAX_LINES_PER_RULE` of that rule in that file.
        count: secrets masked there.
    """

    file: str
    rule: str
    line: int
    count: int

    def to_json(self) -> dict[str, object]:
        return {"file": self.file, "rule": self.rule, "line": self.line, "count": self.count}


class _Recorder:
    """Collects redactions of one file, per rule and line, with a bounded number of records."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._lines: dict[str, dict[int, int]] = {}
        self._overflow: dict[str, int] = {}

    def add(self, rule: str, line: int, count: int = 1) -> None:
        lines = self._lines.setdefault(rule, {})
        if line in lines or len(lines) < MAX_LINES_PER_RULE:
            lines[line] = lines.get(line, 0) + count
        else:
            self._overflow[rule] = self._overflow.get(rule, 0) + count

    def redactions(self) -> list[Redaction]:
        found = [Redaction(self.file, rule, line, n) for rule, lines in self._lines.items() for line, n in lines.items()]
        found += [Redaction(self.file, rule, 0, n) for rule, n in self._overflow.items()]
        return sorted(found, key=lambda r: (r.line, r.rule))


class StreamRedactor:
    """Redacts text fed in arbitrary byte blocks; returns redacted bytes as soon as whole pieces are available."""

    def __init__(self, source: str, rules: Sequence[Redactor] | None = None) -> None:
        self._rules = list(rules) if rules is not None else new_redactors()
        self._buffer = bytearray()
        self._lines_done = 0  # line breaks already written
        self._recorder = _Recorder(source)

    @property
    def redactions(self) -> list[Redaction]:
        return self._recorder.redactions()

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        return self._drain(final=False)

    def finish(self) -> bytes:
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> bytes:
        out: list[bytes] = []
        start = 0
        while (end := _piece_end(self._buffer, start, final)) > start:
            out.append(self._redact_piece(bytes(self._buffer[start:end])))
            start = end
        del self._buffer[:start]
        return b"".join(out)

    def _redact_piece(self, raw: bytes) -> bytes:
        # surrogateescape keeps undecodable bytes (and a character cut between pieces) exactly as they were
        text = raw.decode("utf-8", "surrogateescape")
        for rule in self._rules:
            text, lines = rule.redact(text)
            for line in lines:
                self._recorder.add(rule.name, self._lines_done + line + 1)
        self._lines_done += text.count("\n")
        return text.encode("utf-8", "surrogateescape")


def _piece_end(buffer: bytearray, start: int, final: bool) -> int:
    """End of the next piece to redact: whole lines up to `PIECE_BYTES`, or a cut long line; `start` if none yet."""
    limit = min(start + PIECE_BYTES, len(buffer))
    newline = buffer.rfind(b"\n", start, limit)
    if newline >= 0:
        return newline + 1
    if len(buffer) - start >= PIECE_BYTES:
        cut = max(buffer.rfind(d, start, limit) for d in _SPLIT_AFTER)
        return cut + 1 if cut >= 0 else limit
    return len(buffer) if final else start


def redact_text(text: str, source: str) -> tuple[str, list[Redaction]]:
    """Mask every secret in `text` (a file destined for `source`) and record what was masked where."""
    engine = StreamRedactor(source)
    data = text.encode("utf-8", "surrogatepass")
    out = engine.feed(data) + engine.finish()
    return out.decode("utf-8", "surrogatepass"), engine.redactions


def redact_stream(src: BinaryIO, dst: BinaryIO, source: str) -> list[Redaction]:
    """Copy text from `src` to `dst` redacted, in bounded memory; compressed input/output is the caller's choice."""
    engine = StreamRedactor(source)
    while block := src.read(READ_BYTES):
        dst.write(engine.feed(block))
    dst.write(engine.finish())
    return engine.redactions


def redact_bytes(data: bytes, source: str) -> tuple[bytes, list[Redaction]]:
    """Redact a whole file by kind: captures kept, zip/tar members rewritten (key files dropped), gzip by its
    content, binary files cleared of PEM private keys only, text by every rule. Unchanged input is returned as is."""
    kind = sniff_kind(data[:SNIFF_BYTES])
    if kind is FileKind.CAPTURE:
        return data, []
    if kind is FileKind.GZIP:
        return _redact_gzip(data, source)
    if kind in (FileKind.ZIP, FileKind.TAR):
        return _redact_archive(data, source, kind)
    rules: list[Redactor] | None = [PrivateKeyRedactor()] if kind is FileKind.BINARY else None
    engine = StreamRedactor(source, rules)
    out = engine.feed(data) + engine.finish()
    return (data if out == data else out), engine.redactions


def _redact_gzip(data: bytes, source: str) -> tuple[bytes, list[Redaction]]:
    inner = bytearray()
    complete = _gunzip_into(io.BytesIO(data), inner.extend)
    if not inner and not complete:
        raise BundleError(f"{source}: not a readable gzip file; it was not written to the bundle, because its "
                          "content must be checked for secrets first")
    if sniff_kind(bytes(inner[:SNIFF_BYTES])) is FileKind.CAPTURE:
        return data, []  # a (possibly cut) capture is kept as it came
    new_inner, found = redact_bytes(bytes(inner), source)
    if complete and new_inner == inner:
        return data, found
    return gzip.compress(new_inner + (b"" if complete else TRUNCATED_NOTE), mtime=0), found


def _gunzip_into(src: BinaryIO, sink: Callable[[bytes], object]) -> bool:
    """Decompress every gzip member of src into sink, block by block; False when the data ends early or turns
    into garbage (what came before is kept: a cut log is still worth reading)."""
    inflate = zlib.decompressobj(wbits=31)
    while block := src.read(READ_BYTES):
        while block:
            try:
                sink(inflate.decompress(block))
            except zlib.error:
                return False
            if not inflate.eof:
                break
            block = inflate.unused_data
            if not block.strip(b"\x00"):
                block = b""  # zero padding after the last member (tape-style blocks)
            elif block[:2] != b"\x1f\x8b":
                return False
            else:
                inflate = zlib.decompressobj(wbits=31)
    return inflate.eof


def _redact_archive(data: bytes, source: str, kind: FileKind) -> tuple[bytes, list[Redaction]]:
    found: list[Redaction] = []
    changed = False

    def _rewrite(member: str, content: bytes) -> bytes | None:
        nonlocal changed
        where = f"{source}!{member}"
        if is_key_file(member):
            found.append(Redaction(where, RULE_KEY_FILE, 0, 1))
            changed = True
            return None
        new, member_found = redact_bytes(content, where)
        found.extend(member_found)
        changed = changed or new != content
        return new

    rewrite = rewrite_zip if kind is FileKind.ZIP else rewrite_tar
    out = rewrite(data, source, _rewrite)
    return (out if changed else data), found


def summarize_redactions(redactions: Sequence[Redaction]) -> dict[str, int]:
    """Secrets masked per rule, for the manifest and the summary."""
    totals: dict[str, int] = {}
    for r in redactions:
        totals[r.rule] = totals.get(r.rule, 0) + r.count
    return dict(sorted(totals.items()))


def redact_seekable(src: BinaryIO, out: BinaryIO, rel_path: str) -> list[Redaction]:
    """Copy a seekable file to `out` redacted by kind, like `redact_bytes`, but streaming text (plain or gzip'd)
    in bounded memory and keeping captures byte for byte."""
    head = src.read(SNIFF_BYTES)
    src.seek(0)
    kind = sniff_kind(head)
    if kind is FileKind.CAPTURE:
        shutil.copyfileobj(src, out, READ_BYTES)
        return []
    if kind in (FileKind.ZIP, FileKind.TAR):
        new, found = redact_bytes(src.read(), rel_path)
        out.write(new)
        return found
    if kind is FileKind.GZIP:
        head = bytearray()
        _gunzip_into(io.BytesIO(src.read(4 * READ_BYTES)), head.extend)
        inner_kind = sniff_kind(bytes(head[:SNIFF_BYTES]))
        src.seek(0)
        if inner_kind is FileKind.CAPTURE:
            shutil.copyfileobj(src, out, READ_BYTES)
            return []
        if inner_kind in (FileKind.ZIP, FileKind.TAR, FileKind.GZIP) or not head:
            new, found = redact_bytes(src.read(), rel_path)
            out.write(new)
            return found
        engine = StreamRedactor(rel_path, [PrivateKeyRedactor()] if inner_kind is FileKind.BINARY else None)
        with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as packed:
            complete = _gunzip_into(src, lambda block: packed.write(engine.feed(block)))
            packed.write(engine.finish() + (b"" if complete else TRUNCATED_NOTE))
        return engine.redactions
    engine = StreamRedactor(rel_path, [PrivateKeyRedactor()] if kind is FileKind.BINARY else None)
    while block := src.read(READ_BYTES):
        out.write(engine.feed(block))
    out.write(engine.finish())
    return engine.redactions

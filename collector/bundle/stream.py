"""Streaming redaction of one file's bytes: pieces of whole lines through every rule, each redaction recorded.

Memory stays bounded for multi-megabyte logs and one-line JSON (`pieces.py` says where a long line is cut).
Every rule runs on every file, whatever its bytes look like: a log with NUL bytes after a crash is still a
log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collector.bundle.pieces import PieceCutter, lines_to_fold, trigger_bytes
from collector.bundle.redactors import TRIGGER_WORDS, Redactor, new_redactors
from collector.bundle.scan import Scans

MAX_LINES_PER_RULE = 200  # per file and rule; further lines are summed into one `line=0` record
RULE_LINE_TOO_LONG = "line-too-long"  # a line too long to redact safely, replaced by a note
LINE_DROPPED_NOTE = b"[apigee-collector: a line of %d bytes was removed here: too long to redact safely]"
_TRIGGERS = trigger_bytes(TRIGGER_WORDS)


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
        found = [Redaction(self.file, rule, line, n)
                 for rule, lines in self._lines.items() for line, n in lines.items()]
        found += [Redaction(self.file, rule, 0, n) for rule, n in self._overflow.items()]
        return sorted(found, key=lambda r: (r.line, r.rule))


def _secrets_in(line: bytes) -> int:
    """How many secrets a fresh set of rules masks in `line`."""
    text = line.decode("utf-8", "surrogateescape")
    count = 0
    for rule in new_redactors():
        text, lines = rule.redact(text)
        count += len(lines)
    return count


class StreamRedactor:
    """Redacts bytes fed in arbitrary blocks; returns redacted bytes as soon as whole pieces are available.

    Lines whose trigger words are broken up by NUL bytes (UTF-16/32 text) are redacted without their NULs; a
    line too long to redact safely (`pieces.MAX_LINE_BYTES` with no safe place to cut) is replaced by a note.
    """

    def __init__(self, source: str, rules: Sequence[Redactor] | None = None) -> None:
        self._rules = list(rules) if rules is not None else new_redactors()
        self._buffer = bytearray()
        self._lines_done = 0  # line breaks already written
        self._recorder = _Recorder(source)
        self._cutter = PieceCutter(TRIGGER_WORDS)
        self._dropping = 0  # 1 + bytes of an over-long line dropped so far (0: not dropping)

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
        while start < len(self._buffer):
            if self._dropping:
                start, note = self._drop_line(start)
                out.append(note)
                continue
            end = self._cutter.next_end(self._buffer, start, final)
            if end is None:  # longer than MAX_LINE_BYTES with no safe place to cut
                self._dropping = 1
                continue
            if end <= start:
                break
            out.append(self._redact_piece(bytes(self._buffer[start:end])))
            start = end
        del self._buffer[:start]
        if final and self._dropping:
            out.append(self._drop_note(b""))
        return b"".join(out)

    def _drop_line(self, start: int) -> tuple[int, bytes]:
        """Skip the over-long line up to its line break; the note replaces it once the break is seen."""
        newline = self._buffer.find(b"\n", start)
        if newline < 0:
            self._dropping += len(self._buffer) - start
            return len(self._buffer), b""
        self._dropping += newline - start
        return newline + 1, self._drop_note(b"\n")

    def _drop_note(self, end: bytes) -> bytes:
        dropped, self._dropping = self._dropping - 1, 0
        self._recorder.add(RULE_LINE_TOO_LONG, self._lines_done + 1)
        self._lines_done += end.count(b"\n")
        return LINE_DROPPED_NOTE % dropped + end

    def _redact_piece(self, raw: bytes) -> bytes:
        for start, end in reversed(lines_to_fold(raw, _TRIGGERS)):
            folded = raw[start:end].replace(b"\x00", b"")
            if _secrets_in(folded) > _secrets_in(raw[start:end]):  # else the line keeps its NULs as they were
                raw = raw[:start] + folded + raw[end:]
        # surrogateescape keeps undecodable bytes (and a character cut between pieces) exactly as they were
        text = raw.decode("utf-8", "surrogateescape")
        scans = Scans()  # the trigger words of this piece, found once for every rule
        for rule in self._rules:
            text, lines = rule.redact(text, scans)
            for line in lines:
                self._recorder.add(rule.name, self._lines_done + line + 1)
        self._lines_done += text.count("\n")
        return text.encode("utf-8", "surrogateescape")

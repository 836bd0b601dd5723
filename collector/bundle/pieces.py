"""Where a byte stream is cut into pieces for redaction, and the lines whose words hide behind NUL bytes.

Redaction runs on pieces of whole lines, so memory stays bounded. A line longer than `PIECE_BYTES` must be
cut somewhere, and a cut must never split a secret from its name (`password=` | `s3cr3t`) or a token in two:
a line is only cut just after a blank or separator, and only where no rule's trigger word starts within
`CUT_MARGIN_BYTES` before the cut or `CUT_BEFORE_WORD_BYTES` after it. A line with no such place is redacted
whole, up to `MAX_LINE_BYTES`; a longer one cannot be redacted safely and is dropped (the caller writes a
note in its place).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PIECE_BYTES = 256 * 1024
CUT_MARGIN_BYTES = 8 * 1024  # no secret's name and value are further apart than this on one line
MAX_LINE_BYTES = 32 * 1024 * 1024
CUT_BEFORE_WORD_BYTES = 256  # nor does a match begin further than this before its trigger word
_WORD_TAIL = 64  # a trigger word (with NULs between its letters) is never longer than this
_LOOKAHEAD = CUT_BEFORE_WORD_BYTES + _WORD_TAIL
# A cut goes right after one of these (never before a NUL, which would split a UTF-16 character).
_BOUNDARY_BYTES = b" \t\r\x0b\x0c,;&{}[]<>\"'"
_BOUNDARY = re.compile(rb"[\s,;&{}\[\]<>\"'](?=[^\x00])")


class PieceCutter:
    """Finds the end of the next piece in a growing buffer; remembers how far a long line was searched."""

    def __init__(self, words: Iterable[str]) -> None:
        self._words = trigger_bytes(words)
        self._searched_to = -1  # buffer offset up to which the current long line holds no place to cut

    def next_end(self, buffer: bytearray, start: int, final: bool) -> int | None:
        """End of the next piece starting at `start`: whole lines up to `PIECE_BYTES`, or a long line cut at
        a safe place; `start` when more data is needed first; None when the line at `start` is longer than
        `MAX_LINE_BYTES` with no safe place (the caller drops it)."""
        limit = min(start + PIECE_BYTES, len(buffer))
        newline = buffer.rfind(b"\n", start, limit)
        if newline >= 0:
            self._searched_to = -1
            return newline + 1
        if len(buffer) - start < PIECE_BYTES:
            return len(buffer) if final else start
        # A place to cut is only trusted with the bytes after it in view (a word starting just after it).
        avail = len(buffer) if final else len(buffer) - _LOOKAHEAD
        if self._searched_to < start:  # a new long line: its first PIECE_BYTES, cut at the last safe place
            cut = self._safe_cut(buffer, start + 1, min(start + PIECE_BYTES, avail), last=True)
            if cut is not None:
                return cut
            self._searched_to = min(start + PIECE_BYTES, avail)
        # Past PIECE_BYTES: the end of the line or the first safe place, whichever comes first.
        hi = min(avail, start + MAX_LINE_BYTES)
        while self._searched_to < hi:
            lo, step_end = self._searched_to, min(hi, self._searched_to + PIECE_BYTES)
            newline = buffer.find(b"\n", lo, step_end)
            cut = self._safe_cut(buffer, lo, newline if newline >= 0 else step_end, last=False)
            if cut is not None or newline >= 0:
                self._searched_to = -1
                return cut if cut is not None else newline + 1
            self._searched_to = step_end
        if final:
            self._searched_to = -1
            return len(buffer)
        if len(buffer) - start >= MAX_LINE_BYTES:
            self._searched_to = -1
            return None
        return start

    def _safe_cut(self, buffer: bytearray, lo: int, hi: int, *, last: bool) -> int | None:
        """The last (or first) offset in [lo, hi] just after a blank or separator, with no trigger word
        starting within the margin before it nor just after it (a match can begin a few characters before
        its word: `"name": "` before `Authorization`, a quote before `password`)."""
        safe_from = lo
        intervals: list[tuple[int, int]] = []
        for word_start in self._word_starts(buffer, max(lo - CUT_MARGIN_BYTES - _WORD_TAIL, 0),
                                            min(hi + _LOOKAHEAD, len(buffer))):
            blocked_from, blocked_to = word_start - CUT_BEFORE_WORD_BYTES, word_start + CUT_MARGIN_BYTES
            if blocked_from > safe_from:
                intervals.append((safe_from, min(blocked_from - 1, hi)))
            safe_from = max(safe_from, blocked_to + 1)
        if safe_from <= hi:
            intervals.append((safe_from, hi))
        for a, b in reversed(intervals) if last else intervals:
            cut = _boundary_in(buffer, a, b, last=last)
            if cut is not None:
                return cut
        return None

    def _word_starts(self, buffer: bytearray, lo: int, hi: int) -> list[int]:
        """Sorted offsets in [lo, hi) where a trigger word starts, NUL-spelled ones (UTF-16 text) included."""
        region = bytes(buffer[lo:hi]).lower()
        offsets: list[int] | None = None
        if b"\x00" in region:  # find the words in the text without its NULs, then map back
            offsets = [i for i, byte in enumerate(region) if byte]
            region = region.replace(b"\x00", b"")
        starts: list[int] = []
        for word in self._words:
            pos = region.find(word)
            while pos >= 0:
                starts.append(lo + (pos if offsets is None else offsets[pos]))
                pos = region.find(word, pos + 1)
        return sorted(starts)


def _boundary_in(buffer: bytearray, a: int, b: int, *, last: bool) -> int | None:
    """The last (or first) offset p in [a, b] right after a boundary byte and not before a NUL."""
    if a > b:
        return None
    if not last:
        match = _BOUNDARY.search(buffer, max(a - 1, 0), min(b + 1, len(buffer)))
        return match.end() if match is not None and a <= match.end() <= b else None
    pos = b
    while pos >= a:  # backwards, one boundary byte at a time
        found = max(buffer.rfind(bytes([c]), max(a - 1, 0), pos) for c in _BOUNDARY_BYTES)
        if found < 0 or found + 1 < a:
            return None
        cut = found + 1
        if cut >= len(buffer) or buffer[cut] != 0:
            return cut
        pos = found
    return None


def trigger_bytes(words: Iterable[str]) -> tuple[bytes, ...]:
    """The trigger words as lower-case bytes, for `str.find`-speed scans of raw bytes."""
    return tuple(sorted({w.lower().encode() for w in words if w}))


def lines_to_fold(piece: bytes, words: tuple[bytes, ...]) -> list[tuple[int, int]]:
    """(start, end) of each line of `piece` that holds NUL bytes and a trigger word once they are removed (a
    word spelled with NULs between its letters, as in UTF-16 text): the lines whose secrets NULs may hide."""
    spans: list[tuple[int, int]] = []
    nul = piece.find(b"\x00")
    while nul >= 0:
        start = piece.rfind(b"\n", 0, nul) + 1
        end = piece.find(b"\n", nul)
        end = len(piece) if end < 0 else end
        folded = piece[start:end].replace(b"\x00", b"").lower()
        if any(word in folded for word in words):
            spans.append((start, end))
        nul = piece.find(b"\x00", end)
    return spans

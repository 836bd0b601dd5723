"""Where the redactors' trigger words stand in one piece of text: searched once, shared by every rule.

Each rule only runs its full patterns on the lines that hold one of its words (`redactors._Trigger`). The
words are searched in the lower-cased text; a `TextScan` lower-cases a text once and finds each word once,
however many rules ask for it (`pass`, `token`, `key` gate several). A rule that changes the text gets a new
scan of the changed text from the same `Scans`, so a later rule never reads the offsets of an older version.

With google-re2 installed (the `fast` extra), every registered word is found in one pass over the text, ~10x
faster than one `str.find` pass per word; without it (a platform with no wheel), the words are searched one
by one with the same results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_WORDS: frozenset[str] = frozenset()  # every word a rule asks about (`register`); replaced, never changed
_INNER: dict[str, tuple[str, ...]] = {}  # word -> the other registered words that stand inside it


def register(words: tuple[str, ...] | set[str]) -> None:
    """Declare words some rule will ask about (lower case): they are all found in one pass when google-re2 is
    installed, and a word that holds another one (`api_key` holds `key`) is only searched where that one was
    found otherwise."""
    global _WORDS
    if not _WORDS.issuperset(words):
        _WORDS = _WORDS.union(words)
        _INNER.clear()


def _inner(word: str) -> tuple[str, ...]:
    inner = _INNER.get(word)
    if inner is None:
        inner = _INNER[word] = tuple(sorted(w for w in _WORDS if w != word and w in word))
    return inner


def lower_same_length(text: str) -> str:
    """`text` lower-cased with every offset kept: U+0130 grows when lower-cased, so it stands as `i` (the
    words are ASCII, so any one character would do); should another character grow, only ASCII is
    lower-cased."""
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = text.replace("\u0130", "i").lower()
        if len(lowered) != len(text):
            lowered = text.translate(_ASCII_LOWER)
    return lowered


def _load_re2() -> Any | None:
    try:
        import re2
    except ImportError:  # the `fast` extra is not installed: every word is searched on its own
        return None
    return re2


_RE2 = _load_re2()
FAST = _RE2 is not None  # find the registered words in one pass (tests compare both ways)
_one_pass_built: _OnePass | None = None  # built on first use, once every rule has registered its words


class _OnePass:
    """Every registered word found in one pass: google-re2 runs one alternation of all of them as a DFA over
    the lower-cased text as bytes (every character that is not ASCII turned into `?`, so offsets stay those of
    the text; no word holds one). Its matches do not overlap, so a word that starts inside another's match
    (`pass` inside `-storepass`... or the shorter of two words at one offset) is checked there by hand: a word
    that occurs is either matched or starts inside a match, so no occurrence is missed."""

    def __init__(self, words: frozenset[str]) -> None:
        assert _RE2 is not None
        self.registered = words
        self.words = frozenset(w for w in words if w and w.isascii() and "?" not in w)
        options = _RE2.Options()
        options.encoding = _RE2.Options.Encoding.LATIN1  # bytes are bytes, whatever UTF-8 says
        options.never_capture = True
        ordered = sorted(self.words, key=lambda w: (-len(w), w))
        self._regex = _RE2.compile(b"|".join(_RE2.escape(w.encode("ascii")) for w in ordered), options)
        self._names = {w.encode("ascii"): w for w in self.words}
        # word -> (offset, other word, its bytes) for each word that may start at that offset of a match of it
        by_first: dict[str, list[str]] = {}
        for other in sorted(self.words):
            by_first.setdefault(other[0], []).append(other)
        self._inside: dict[str, tuple[tuple[int, str, bytes], ...]] = {
            word: tuple((at, other, other.encode("ascii"))
                        for at in range(len(word)) for other in by_first.get(word[at], ())
                        if (at or other != word) and _fits(word[at:], other))
            for word in self.words}

    def scan(self, lowered: str) -> dict[str, list[int]]:
        """Every offset of every word in `lowered`, per word found (absent words are left out)."""
        data = lowered.encode("ascii", "replace")
        hits: dict[str, list[int]] = {}
        names, inside = self._names, self._inside
        for match in self._regex.finditer(data):
            start, end = match.span()
            word = names[data[start:end]]
            hits.setdefault(word, []).append(start)
            for at, other, raw in inside[word]:
                if data.startswith(raw, start + at):
                    hits.setdefault(other, []).append(start + at)
        for found in hits.values():
            found.sort()
        return hits


def _fits(tail: str, other: str) -> bool:
    """True when `other` can start where `tail` (the end of a word) starts: they agree where both stand."""
    return tail.startswith(other) if len(other) <= len(tail) else other.startswith(tail)


def _one_pass() -> _OnePass | None:
    global _one_pass_built
    words = _WORDS
    if not FAST or _RE2 is None or not words:
        return None
    built = _one_pass_built
    if built is None or built.registered is not words:
        try:
            built = _one_pass_built = _OnePass(words)
        except _RE2.error:  # (never seen: 82 literal words) search word by word, as without the extra
            return None
    return built


def find_all(lowered: str, word: str) -> list[int]:
    """Every offset where `word` starts in `lowered`, overlapping ones included, in increasing order."""
    found: list[int] = []
    pos = lowered.find(word)
    while pos >= 0:
        found.append(pos)
        pos = lowered.find(word, pos + 1)
    return found


@dataclass(frozen=True)
class Shape:
    """A cheap test that every match of one pattern passes, for a pattern that no word gates: in the text with
    each byte mapped through `table` (which folds a character class of the pattern to one byte), `needle`
    stands within every match. Only ASCII text is tested so (elsewhere `\\d` or case folding reach further).

    Attributes:
        table: a `bytes.translate` table (`fold_table`).
        needle: what every match becomes through `table`, or a part of it.
    """

    table: bytes
    needle: bytes


def fold_table(chars: bytes, to: bytes) -> bytes:
    """A `bytes.translate` table that maps each of `chars` to the one byte `to` and keeps every other byte."""
    return bytes.maketrans(chars, to * len(chars))


class TextScan:
    """The words found in one text, lower-cased: each word is searched at most once."""

    __slots__ = ("_covered", "_folded", "_hits", "lowered", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.lowered = lower_same_length(text)
        self._folded: dict[bytes, bytes] = {}  # the ASCII text through a `fold_table`, per table
        one_pass = _one_pass()
        self._hits: dict[str, list[int]] = one_pass.scan(self.lowered) if one_pass is not None else {}
        self._covered = one_pass.words if one_pass is not None else frozenset()  # absent unless in _hits

    def hits(self, word: str) -> list[int]:
        """Every offset where `word` (lower case) starts in the lower-cased text, in increasing order."""
        found = self._hits.get(word)
        if found is None:
            if word in self._covered:
                return []
            if any(not self.hits(inner) for inner in _inner(word)):
                found = []  # a word it holds is not there, so neither is it
            else:
                found = find_all(self.lowered, word)
            self._hits[word] = found
        return found

    def has(self, word: str) -> bool:
        return bool(self.hits(word))

    def line_spans(self, words: tuple[str, ...]) -> list[tuple[int, int]]:
        """(start, end) of every line that holds one of `words`, without its line break, in text order."""
        text = self.text
        spans: list[tuple[int, int]] = []
        for hit in sorted(pos for word in words for pos in self.hits(word)):
            if spans and hit < spans[-1][1]:
                continue
            start = text.rfind("\n", 0, hit) + 1
            end = text.find("\n", hit)
            spans.append((start, len(text) if end < 0 else end))
        return spans

    def shape_spans(self, shape: Shape) -> list[tuple[int, int]] | None:
        """(start, end) of every line where `shape` stands, in text order; None for a text that is not ASCII
        (no line can be ruled out there)."""
        folded = self._folded.get(shape.table)
        if folded is None:
            if not self.text.isascii():
                return None
            folded = self._folded[shape.table] = self.text.encode("ascii").translate(shape.table)
        spans: list[tuple[int, int]] = []
        hit = folded.find(shape.needle)
        while hit >= 0:
            start = folded.rfind(b"\n", 0, hit) + 1
            end = folded.find(b"\n", hit)
            end = len(folded) if end < 0 else end
            spans.append((start, end))
            hit = folded.find(shape.needle, end)
        return spans


class Scans:
    """The scan of the latest version of one piece: the rules pass it along, and a rule that changed the text
    gets (and leaves for the next rule) a scan of the new text."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: TextScan | None = None

    def of(self, text: str) -> TextScan:
        last = self._last
        if last is None or (last.text is not text and last.text != text):
            last = self._last = TextScan(text)
        return last

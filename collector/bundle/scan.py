"""Where the redactors' trigger words stand in one piece of text: searched once, shared by every rule.

Each rule only runs its full patterns on the lines that hold one of its words (`redactors._Trigger`). The
words are searched in the lower-cased text; a `TextScan` lower-cases a text once and finds each word once,
however many rules ask for it (`pass`, `token`, `key` gate several). A rule that changes the text gets a new
scan of the changed text from the same `Scans`, so a later rule never reads the offsets of an older version.
"""

from __future__ import annotations

from dataclasses import dataclass

_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_WORDS: set[str] = set()  # every word a rule asks about (`register`)
_INNER: dict[str, tuple[str, ...]] = {}  # word -> the other registered words that stand inside it


def register(words: tuple[str, ...] | set[str]) -> None:
    """Declare words some rule will ask about (lower case): a word that holds another one (`api_key` holds
    `key`) is only searched where that one was found."""
    new = set(words) - _WORDS
    if new:
        _WORDS.update(new)
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

    __slots__ = ("_folded", "_hits", "lowered", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.lowered = lower_same_length(text)
        self._hits: dict[str, list[int]] = {}
        self._folded: dict[bytes, bytes] = {}  # the ASCII text through a `fold_table`, per table

    def hits(self, word: str) -> list[int]:
        """Every offset where `word` (lower case) starts in the lower-cased text, in increasing order."""
        found = self._hits.get(word)
        if found is None:
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

"""The trigger-word scan shared by every rule of a piece: the same words and lines each rule found alone."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.bundle.redactors import TRIGGER_WORDS, new_redactors
from collector.bundle.scan import Scans, TextScan, lower_same_length
from tests.bundle.test_redact import CASES

WORDS = sorted(TRIGGER_WORDS | {'"name', 'name\\"'})
# text where lower-casing is not one ASCII letter for one: U+0130 (grows), the Kelvin sign (becomes `k`),
# NULs, a character undecodable as UTF-8 (kept as a lone surrogate), and every word in upper case
ODD = ["PASS\u0130WORD=x t\u0130ken \u212aEY=1 \x00p\x00w\x00d \udcff secret",
       "\u0130" * 3 + "Authorization: Bearer abcdefgh\n" + "\u212a" * 2 + "ey=1\n",
       " ".join(w.upper() for w in WORDS)]


def _naive_hits(text: str, word: str) -> list[int]:
    return [m.start() for m in re.finditer(f"(?={re.escape(word)})", lower_same_length(text))]


@pytest.mark.parametrize("text", [c[1] for c in CASES] + ODD)
def test_scan_finds_every_word_where_find_does(text: str) -> None:
    scan = TextScan(text)
    for word in WORDS:
        assert scan.hits(word) == _naive_hits(text, word), word


def test_lowered_text_keeps_every_offset() -> None:
    text = "a\u0130b\u212aC\udcff"
    assert lower_same_length(text) == "aib\u212ac\udcff".replace("\u212a", "k")
    assert len(lower_same_length(text)) == len(text)


def test_a_changed_text_gets_a_new_scan() -> None:
    scans = Scans()
    first = scans.of("password=a\n")
    assert scans.of("password=a\n") is first  # an equal text, even another object
    second = scans.of("password=REDACTED\n")
    assert second is not first and second.text == "password=REDACTED\n"


def _redact_alone(text: str) -> tuple[str, list[list[int]]]:
    lines = []
    for rule in new_redactors():
        text, found = rule.redact(text)  # each rule scans the text itself
        lines.append(found)
    return text, lines


def _redact_shared(text: str) -> tuple[str, list[list[int]]]:
    lines = []
    scans = Scans()
    for rule in new_redactors():
        text, found = rule.redact(text, scans)
        lines.append(found)
    return text, lines


@pytest.mark.parametrize("text", ["\n".join(c[1] for c in CASES), *[c[1] for c in CASES], *ODD])
def test_a_shared_scan_redacts_like_each_rule_alone(text: str) -> None:
    assert _redact_shared(text) == _redact_alone(text)


_PIECES = st.sampled_from([c[1] for c in CASES] + ODD + WORDS + ["plain log line", "\n", " ", "=", '"'])


@settings(max_examples=150, deadline=None)
@given(parts=st.lists(_PIECES, min_size=1, max_size=12))
def test_a_shared_scan_redacts_like_each_rule_alone_on_mixed_text(parts: list[str]) -> None:
    text = "".join(parts)
    assert _redact_shared(text) == _redact_alone(text)

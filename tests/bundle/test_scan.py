"""The trigger-word scan shared by every rule of a piece: the same words and lines each rule found alone."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.bundle import scan as scan_module
from collector.bundle.redact import redact_text
from collector.bundle.redactors import (
    MASK,
    TRIGGER_WORDS,
    _format_trigger,
    _mask_format_span,
    _substitute,
    new_redactors,
)
from collector.bundle.scan import Scans, TextScan, lower_same_length
from collector.bundle.secret_formats import _GATES, SecretFormat, _shape, formats, gate_words
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


# --- the shapes of the formats no word gates (secret_formats._SHAPES) ---

SHAPED = {f.pattern.pattern: f for f in formats() if f.shape is not None}
# real-looking tokens of each shaped format (Telegram's and Discord's documented examples)
TOKENS = {
    r"\d{8,10}:[0-9A-Za-z_-]{35}": ["110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq",
                                   "1234567890:AAF-mMrzb1CX_yJ8cW9ftk2r6VrxsL4Hc0s"],
    r"[MNO][a-zA-Z\d_-]{23,25}\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}": [
        "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs",
        "NzkyNzE1NDU0MTk2MDg4ODQy.X-hvzA.Ovy4MCQywSkoMRRclStW4xAYK7I"],
    r"AC[a-z0-9]{32}": ["AC0123456789abcdef0123456789abcdef", "ACe9c4f2b7a01d3e5f7a9b1c3d5e7f9a1b"],
    r"SK[a-z0-9]{32}": ["SK0123456789abcdef0123456789abcdef", "SKz9y8x7w6v5u4t3s2r1q0p9o8n7m6l5k4"],
}


def test_the_pinned_detect_secrets_formats_without_words_all_have_a_shape() -> None:
    # a release that changes one of these patterns leaves it unshaped: it then runs on every line (slower)
    assert sorted(SHAPED) == sorted(TOKENS)
    assert all(f.gate or f.shape for f in formats())


@pytest.mark.parametrize(("pattern", "token"), [(p, t) for p, tokens in TOKENS.items() for t in tokens])
@pytest.mark.parametrize("around", ["ascii", "non-ascii"])
def test_each_shaped_format_masks_its_tokens(pattern: str, token: str, around: str) -> None:
    assert SHAPED[pattern].pattern.fullmatch(token)
    other = "caf\u00e9 \u4e2d" if around == "non-ascii" else "cafe"
    text = f"2026-11-27 10:00:00,000 INFO {other} 10:01:02\nbot={token} ok\nlast line 12345678\n"
    out, found = redact_text(text, "f.log")
    assert token not in out and f"bot={MASK} ok" in out
    assert [(r.rule, r.line) for r in found] == [("secret-format", 2)]


def test_unicode_digits_still_reach_the_telegram_pattern() -> None:
    # `\d` matches Arabic-Indic digits: text that is not ASCII is never ruled out by a shape
    token = "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"
    assert SHAPED[r"\d{8,10}:[0-9A-Za-z_-]{35}"].pattern.fullmatch(token)
    out, found = redact_text(f"id {token} end\n", "f.log")
    assert out == f"id {MASK} end\n" and found


_ASCII = st.characters(min_codepoint=9, max_codepoint=126)
_NEAR = st.text(st.sampled_from("0123456789aAcCkKsSmMnNoO_-.:\n "), max_size=60)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), pattern=st.sampled_from(sorted(TOKENS)))
def test_a_shape_never_hides_a_match(data: st.DataObject, pattern: str) -> None:
    # Given ASCII text holding matches of the pattern among near misses
    compiled = SHAPED[pattern].pattern
    parts = data.draw(st.lists(st.one_of(_NEAR, st.from_regex(compiled, fullmatch=True, alphabet=_ASCII)),
                               min_size=1, max_size=6))
    text = "".join(parts)
    shape = SHAPED[pattern].shape
    assert shape is not None
    # Then every match lies on a line the shape gives
    spans = TextScan(text).shape_spans(shape)
    assert spans is not None
    for match in compiled.finditer(text):
        assert any(start <= match.start() and match.end() <= end for start, end in spans), match


def test_a_word_gate_holds_only_for_the_pattern_it_was_read_from() -> None:
    # Given the pinned detect-secrets: every pattern of a detector with gate words is gated (none left slow)
    assert all(f.gate for f in formats() if f.detector in _GATES)
    # When a release changes an AWS pattern so that a match no longer needs one of the gate words
    shipped = next(f.pattern for f in formats() if f.detector == "AWSKeyDetector")
    changed = re.compile(shipped.pattern.replace("AKIA", "AKIB"), shipped.flags)
    assert gate_words("AWSKeyDetector", shipped) == _GATES["AWSKeyDetector"]
    # Then the changed pattern gets no gate: it runs on every line
    assert gate_words("AWSKeyDetector", changed) == ()
    assert gate_words("AWSKeyDetector", re.compile(shipped.pattern, shipped.flags | re.IGNORECASE)) == ()


def test_a_format_with_neither_words_nor_shape_runs_on_every_line() -> None:
    # Given a format detect-secrets might add, or a shaped one whose pattern a release changed
    unknown = SecretFormat("SomeNewDetector", re.compile(r"zq_[0-9]{6}"))
    changed = re.compile(r"\d{8,10}:[0-9A-Za-z_-]{36}")
    assert _shape("TelegramBotTokenDetector", changed, ()) is None
    assert _format_trigger(unknown) is None
    # When it runs on a piece with none of the known words or shapes
    text = "plain line\nvalue zq_123456 here\n"
    out, lines = _substitute(unknown.pattern, text, _mask_format_span, _format_trigger(unknown), Scans())
    # Then it still masks on any line
    assert out == f"plain line\nvalue {MASK} here\n" and lines == [1]


# --- one pass with google-re2 (the `fast` extra) against str.find word by word ---

def test_the_fast_extra_is_installed() -> None:
    # scripts/setup.sh installs it; without it the tests below would compare the word search with itself
    assert scan_module.FAST, "google-re2 is missing: bash scripts/setup.sh installs the `fast` extra"


def _hits_both_ways(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, list[int]], ...]:
    found = []
    for fast in (True, False):
        monkeypatch.setattr(scan_module, "FAST", fast)
        scan = TextScan(text)
        found.append({word: scan.hits(word) for word in WORDS})
    return found[0], found[1]


# words that overlap each other or themselves, so one pass over non-overlapping matches must find the rest
OVERLAPS = ["-storepass -keypass --proxy-user -us -u -b", "apapap0 apapf", "xoxoxox", "oauth2-bearer-b",
            "glpat-u ghp__authtoken", "name\\\"value\\\" \"name=", "private_keyeyj", "k_live__authtoken",
            "passecretoken", "awsecret", "api_key_api-keyey"]
VARIED = ([c[1] for c in CASES] + ODD + OVERLAPS
          + ["".join(c.upper() if i % 2 else c for i, c in enumerate(w)) for w in WORDS]  # mixed case
          + [" ".join(WORDS) * 40 + "\n" + "x" * 300_000 + " password=1"]  # a long line
          + ["\x00".join(" ".join(WORDS)), "\u00e9" + "\u0130".join(WORDS) + "\udcff" + "\u4e2d".join(WORDS)])


@pytest.mark.parametrize("text", VARIED)
def test_one_pass_finds_what_each_word_search_finds(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = _hits_both_ways(text, monkeypatch)
    assert fast == slow
    assert all(positions == _naive_hits(text, word) for word, positions in slow.items())


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.one_of(st.sampled_from(WORDS), st.sampled_from([w[:2] for w in WORDS]),
                                st.sampled_from([w[-2:] for w in WORDS]), st.text(max_size=3)), max_size=20))
def test_one_pass_finds_every_overlap(parts: list[str]) -> None:
    text = "".join(parts)
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, slow = _hits_both_ways(text, monkeypatch)
    assert fast == slow


@pytest.mark.parametrize("text", VARIED + ["\n".join(VARIED)])
def test_both_ways_redact_alike(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    found = []
    for fast in (True, False):
        monkeypatch.setattr(scan_module, "FAST", fast)
        found.append(redact_text(text, "f.log"))
    assert found[0] == found[1]

"""The redactors' state across pieces of one file (a PEM block or a name/value pair cut between pieces)."""

from __future__ import annotations

from collector.bundle.redactors import (
    MASK,
    PRIVATE_KEY_MARKER,
    HeaderPropertyRedactor,
    PrivateKeyRedactor,
    new_redactors,
)


def test_private_key_block_cut_between_pieces_is_dropped_whole() -> None:
    # Given a PEM key whose BEGIN and END arrive in different pieces
    redactor = PrivateKeyRedactor()
    # When the pieces are redacted in turn
    first, lines1 = redactor.redact("keep\n-----BEGIN PRIVATE KEY-----\nMIIE")
    middle, lines2 = redactor.redact("AAAA\nBBBB\n")
    last, lines3 = redactor.redact("CCCC\n-----END PRIVATE KEY-----\nafter\n")
    # Then only the marker stands where the block was, recorded once on its line
    assert first + middle + last == f"keep\n{PRIVATE_KEY_MARKER}\nafter\n"
    assert (lines1, lines2, lines3) == ([1], [], [])


def test_unterminated_private_key_drops_the_rest() -> None:
    redactor = PrivateKeyRedactor()
    out, _ = redactor.redact("a\n-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE\nmore\n")
    assert out == f"a\n{PRIVATE_KEY_MARKER}"


def test_header_value_in_the_next_piece_is_masked() -> None:
    # Given a trace header whose name ends one piece and whose value starts the next
    redactor = HeaderPropertyRedactor()
    # When both pieces are redacted
    _first, _ = redactor.redact('[{"name": "Authorization",')
    second, lines = redactor.redact(' "value": "Bearer abc"}, {"name": "Host", "value": "h"}]')
    # Then the value is masked and the next header kept
    assert second == f' "value": "{MASK}"}}, {{"name": "Host", "value": "h"}}]'
    assert lines == [0]


def test_header_value_too_far_from_its_name_is_left() -> None:
    # Given a sensitive name with no value within three lines
    redactor = HeaderPropertyRedactor()
    out, lines = redactor.redact('{"name": "Cookie"}\n\n\n\n\n{"name": "Host", "value": "h"}')
    # Then an unrelated value further down is not touched
    assert '"value": "h"' in out and lines == []


def test_each_file_gets_fresh_redactors() -> None:
    # Given a redactor set left inside a PEM block by one file
    first = new_redactors()
    first[0].redact("-----BEGIN PRIVATE KEY-----\n")
    # When a new set is made for the next file
    second = new_redactors()
    # Then it starts clean
    assert second[0].redact("plain\n") == ("plain\n", [])
    assert [r.name for r in second] == [r.name for r in first]

"""Stream: one TCP direction's bytes in order, whatever order, copies and overlaps the segments came in."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.tls.reassembly import MAX_PENDING, Stream

ISN = 0xFFFFFFF0  # near the wrap-around, so every case also crosses 2**32

# (case, segments as (offset from ISN+1, payload) with None offset meaning the SYN,
#  expected stream with gaps as ints)
CASES = [
    ("in order", [(None, b""), (0, b"abc"), (3, b"def")], [b"abc", b"def"]),
    ("swapped", [(None, b""), (3, b"def"), (0, b"abc")], [b"abc", b"def"]),
    ("duplicate", [(None, b""), (0, b"abc"), (0, b"abc"), (3, b"def")], [b"abc", b"def"]),
    ("overlapping retransmission", [(None, b""), (0, b"abcd"), (2, b"cdefg")], [b"abcd", b"efg"]),
    (
        "pending overlaps pending",
        [(None, b""), (4, b"efgh"), (2, b"cdef"), (0, b"ab")],
        [b"ab", b"cdef", b"gh"],
    ),
    ("old data after the fact", [(None, b""), (0, b"abcdef"), (1, b"bc")], [b"abcdef"]),
    ("no SYN: starts where we came in", [(10, b"klm"), (13, b"nop")], [b"klm", b"nop"]),
    (
        "bigger copy replaces smaller pending",
        [(None, b""), (3, b"d"), (3, b"defg"), (0, b"abc")],
        [b"abc", b"defg"],
    ),
]


def _feed(stream: Stream, segments: list[tuple[int | None, bytes]]) -> list[bytes | int]:
    out: list[bytes | int] = []
    for offset, payload in segments:
        if offset is None:
            out += stream.add(ISN, payload, syn=True)
        else:
            out += stream.add((ISN + 1 + offset) & 0xFFFFFFFF, payload)
    return out


@pytest.mark.parametrize("case, segments, expected", CASES, ids=[c[0] for c in CASES])
def test_segments_come_out_in_stream_order(case: str, segments: list, expected: list) -> None:
    # Given segments in the order of the case, When fed, Then the stream comes out contiguous and once
    assert _feed(Stream(), segments) == expected


def test_a_hole_is_reported_as_a_gap_at_the_end() -> None:
    # Given a segment lost between two others
    stream = Stream()
    out = _feed(stream, [(None, b""), (0, b"abc"), (8, b"ijk")])
    # When the connection ends, Then the hole is a gap and the rest is delivered
    assert out + stream.flush() == [b"abc", 5, b"ijk"]
    assert stream.gaps == 5


def test_too_much_waiting_behind_a_hole_declares_it_lost() -> None:
    # Given a hole and more than MAX_PENDING bytes behind it, Then we skip the hole rather than buffer forever
    stream = Stream()
    out = _feed(stream, [(None, b""), (0, b"a")])
    chunk = b"x" * 65536
    for index in range(MAX_PENDING // len(chunk) + 1):
        out += stream.add((ISN + 1 + 10 + index * len(chunk)) & 0xFFFFFFFF, chunk)
    assert out[:2] == [b"a", 9] and sum(len(p) for p in out[2:] if isinstance(p, bytes)) > MAX_PENDING


def test_bytes_cut_by_the_snap_length_are_a_gap() -> None:
    stream = Stream()
    out = _feed(stream, [(None, b"")]) + stream.add((ISN + 1) & 0xFFFFFFFF, b"ab", missing=3)
    out += stream.add((ISN + 6) & 0xFFFFFFFF, b"fg")
    assert out == [b"ab", 3, b"fg"]


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=400),
    cuts=st.lists(st.integers(1, 399), max_size=12),
    order=st.randoms(use_true_random=False),
    copies=st.lists(st.integers(0, 20), max_size=6),
)
def test_any_order_and_duplication_gives_the_stream_back(
    data: bytes, cuts: list, order: object, copies: list
) -> None:
    # Given the stream cut into segments, shuffled, with some segments repeated, When fed after the SYN
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    segments = [(start, data[start:end]) for start, end in itertools.pairwise(bounds)]
    segments += [segments[i % len(segments)] for i in copies]
    order.shuffle(segments)  # type: ignore[attr-defined]
    stream = Stream()
    out = _feed(stream, [(None, b""), *segments]) + stream.flush()
    # Then exactly the original bytes come out, with no gap
    assert b"".join(p for p in out if isinstance(p, bytes)) == data and stream.gaps == 0

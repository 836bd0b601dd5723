"""RecordReader: TLS records out of a byte stream, across segment boundaries and after gaps."""

from __future__ import annotations

import pytest

from collector.tls.records import RecordReader, looks_like_tls, plausible_header


def _record(kind: int, body: bytes, version: bytes = b"\x03\x03") -> bytes:
    return bytes([kind]) + version + len(body).to_bytes(2, "big") + body


HELLO = _record(22, b"\x01" + b"h" * 40, b"\x03\x01")
DATA = _record(23, b"d" * 100)
ALERT = _record(21, b"\x02\x28")


@pytest.mark.parametrize(
    "chunks",
    [
        [HELLO + DATA + ALERT],
        [HELLO[:3], HELLO[3:] + DATA[:50], DATA[50:], ALERT],
        [bytes([b]) for b in HELLO + DATA + ALERT],
    ],
    ids=["one piece", "split records", "byte by byte"],
)
def test_records_come_out_whole_however_the_bytes_arrive(chunks: list[bytes]) -> None:
    # Given the same three records cut differently, When fed, Then the same three records come out
    reader = RecordReader()
    records = [r for chunk in chunks for r in reader.feed(chunk)]
    assert [(r.content_type, r.version, len(r.body)) for r in records] == [
        (22, 0x0301, 41),
        (23, 0x0303, 100),
        (21, 0x0303, 2),
    ]
    assert records[1].header == DATA[:5]
    # bytes, never a view of the reader's buffer (it changes as more arrives) nor an unhashable bytearray
    assert {type(part) for r in records for part in (r.header, r.body)} == {bytes}


def test_after_a_gap_the_reader_resynchronises_on_the_next_header() -> None:
    # Given half a record, then a gap, then the tail of that record and two whole records
    reader = RecordReader()
    assert reader.feed(DATA[:40]) == []
    reader.skip_gap()
    records = reader.feed(DATA[70:] + ALERT + HELLO)
    # Then the tail is dropped and the whole records are read
    assert [r.content_type for r in records] == [21, 22]


def test_a_stream_that_is_not_tls_marks_the_reader_broken() -> None:
    reader = RecordReader()
    assert reader.feed(HELLO + b"GET / HTTP/1.1\r\n") and reader.broken
    assert reader.feed(DATA) == []


@pytest.mark.parametrize(
    "head, expected",
    [
        (HELLO, True),
        (ALERT, True),
        (HELLO[:3], True),
        (DATA, False),
        (b"GET / HTTP/1.1", False),
        (_record(22, b"x", b"\x03\x05"), False),
        (b"\x16\x03\x01\x48\x01", False),
        (b"\x16", False),
    ],
)
def test_tls_is_recognised_by_its_first_bytes(head: bytes, expected: bool) -> None:
    assert looks_like_tls(head) is expected


def test_header_plausibility() -> None:
    assert plausible_header(_record(23, b"x" * 18432))
    assert not plausible_header(b"\x17\x03\x03\x48\x01")  # longer than any legal ciphertext
    assert not plausible_header(b"\x19\x03\x03\x00\x01")  # unknown content type

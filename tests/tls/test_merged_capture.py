"""collector/tls/merged_capture.py and pcapng_writer.py, checked with the real tshark/capinfos: two hosts'
captures of the same real handshake (an Ethernet pcap in microseconds on the MP, a two-interface pcapng with
Linux cooked SLL2 in nanoseconds on the backend, 40 µs later) merged in time order, commented, read back."""

from __future__ import annotations

import gzip
import struct
import subprocess
import tracemalloc
from pathlib import Path

import pytest

from collector.diagnosis.analyze import analyze_paths
from collector.tls.capture import read_handshakes
from collector.tls.merged_capture import CaptureSource, merge_captures
from collector.tls.pcapng_writer import MAX_OPTION, option_text
from tests.tls.conftest import capture_path
from tests.tls.rewrite import LATENCY_NS, backend_side_copy, frames_for, segments, stamps_ns, write_pcapng

FIXTURE = "ca-mismatch-java-tls12.pcap"


def _tshark(path: Path, *fields: str) -> list[list[str]]:
    args = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a"]
    for field in fields:
        args += ["-e", field]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in done.stdout.splitlines()]


def _merge(tmp_path: Path, sources: list[CaptureSource], comments: dict[tuple[str, int], tuple[str, ...]],
           name: str = "merged.pcapng", max_bytes: int | None = None) -> tuple[Path, object]:
    out = tmp_path / name
    with out.open("wb") as stream:
        summary = merge_captures(sources, {None: stream}, comments, max_bytes)
    return out, summary


def test_two_hosts_merge_in_time_order_with_comments_on_both_copies(tmp_path: Path) -> None:
    # Given the MP's capture and the backend's (other format, link types and resolution), and comments on
    # the MP capture's CertificateRequest and alert frames
    mp = capture_path(FIXTURE)
    handshake = read_handshakes(mp).handshakes[0]
    assert handshake.certificate_request is not None and handshake.alerts
    request, alert = handshake.certificate_request.frame, handshake.alerts[0].frame
    assert request is not None and alert is not None
    comments = {("mp1.pcap", request): ("CertificateRequest: acceptable CA names CN=Lab CA A",),
                ("mp1.pcap", alert): ("fatal alert bad_certificate (42) from the backend",)}
    sources = [CaptureSource(mp, "mp1", "mp1.pcap", "message processor mp1"),
               CaptureSource(backend_side_copy(mp, tmp_path), "backend", "backend.pcapng", "backend")]
    # When merged
    out, _ = _merge(tmp_path, sources, comments)
    # Then tshark sees every packet of both, strictly in time order, each on its host's interface, with the
    # link type of its source, and both copies of each cited packet carry the comment
    rows = _tshark(out, "frame.time_epoch", "frame.interface_name", "frame.interface_id", "frame.encap_type",
                   "frame.comment")
    packets = len(stamps_ns(mp))
    assert len(rows) == 2 * packets
    assert [float(r[0]) for r in rows] == sorted(float(r[0]) for r in rows)
    assert {r[1] for r in rows} == {"mp1", "backend"}
    encaps = {(r[1], r[3]) for r in rows}
    assert encaps == {("mp1", "1"), ("backend", "1"), ("backend", "210")}  # 210: Wireshark's SLL2 encap
    commented = [(r[1], r[4]) for r in rows if r[4]]
    assert commented.count(("mp1", "CertificateRequest: acceptable CA names CN=Lab CA A")) == 1
    assert commented.count(("backend", "CertificateRequest: acceptable CA names CN=Lab CA A")) == 1
    assert commented.count(("mp1", "fatal alert bad_certificate (42) from the backend")) == 1
    assert commented.count(("backend", "fatal alert bad_certificate (42) from the backend")) == 1
    # the backend's copy arrives 40 µs later, kept to the nanosecond
    first_mp = next(float(r[0]) for r in rows if r[1] == "mp1")
    first_backend = next(float(r[0]) for r in rows if r[1] == "backend")
    assert round((first_backend - first_mp) * 1e6) == LATENCY_NS // 1000
    info = subprocess.run(["capinfos", "-I", str(out)], capture_output=True, text=True, timeout=60,
                          check=True).stdout
    assert "nanoseconds" in info and "Number of interfaces in file: 3" in info
    assert "Strict time order:   True" in subprocess.run(
        ["capinfos", "-o", str(out)], capture_output=True, text=True, timeout=60, check=True).stdout


def test_the_merged_file_reads_back_to_the_same_cause(tmp_path: Path) -> None:
    # Given the two hosts' captures of one failing handshake, merged
    mp, backend = capture_path(FIXTURE), backend_side_copy(capture_path(FIXTURE), tmp_path)
    sources = [CaptureSource(mp, "mp1", "mp1.pcap"), CaptureSource(backend, "backend", "backend.pcapng")]
    out, _ = _merge(tmp_path, sources, {("mp1.pcap", 1): ("a comment on the first SYN",)})
    # When `collect analyze` reads the merged pcapng (several IDBs, comments), Then it names the same cause
    # as the two captures do
    assert analyze_paths([out]).diagnosis.cause == analyze_paths([mp, backend]).diagnosis.cause
    result = read_handshakes(out)
    assert result.packets == 2 * len(stamps_ns(mp)) and not result.notes


@pytest.mark.parametrize("file_format", ["pcap", "pcapng"])
def test_packets_the_snap_length_cut_stay_marked_as_cut(tmp_path: Path, file_format: str) -> None:
    # Given the MP's capture with every packet cut to 100 bytes by editcap (as tcpdump -s 100 would have),
    # in either format
    cut = tmp_path / f"cut.{file_format}"
    subprocess.run(["editcap", "-F", file_format, "-s", "100", str(capture_path(FIXTURE)), str(cut)],
                   check=True, timeout=60, capture_output=True)
    source = _tshark(cut, "frame.len", "frame.cap_len")
    assert any(int(length) > int(kept) for length, kept in source)
    # When merged, Then each packet keeps its length on the wire beside the bytes kept, as the source says:
    # Wireshark marks the cut ones "packet size limited during capture" instead of showing them whole
    out, _ = _merge(tmp_path, [CaptureSource(cut, "mp1", "mp1.pcap")], {})
    assert _tshark(out, "frame.len", "frame.cap_len") == source


def test_outputs_per_backend_keep_only_that_backends_packets(tmp_path: Path) -> None:
    # Given two captures of two different backends and one output per backend endpoint
    first, second = capture_path(FIXTURE), capture_path("failures/sni-required-java-nginx-tls12.pcap")
    servers = [read_handshakes(p).handshakes[0].server for p in (first, second)]
    endpoints = [(s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])) for s in servers]
    assert endpoints[0] != endpoints[1]
    paths = [tmp_path / "a.pcapng", tmp_path / "b.pcapng"]
    with paths[0].open("wb") as a, paths[1].open("wb") as b:
        summary = merge_captures([CaptureSource(first, "mp1", "a"), CaptureSource(second, "mp2", "b")],
                                 {endpoints[0]: a, endpoints[1]: b}, {})
    # Then each file holds that backend's connection only, from the capture that shows it
    for path, server in zip(paths, servers, strict=True):
        handshakes = read_handshakes(path).handshakes
        assert handshakes and {h.server for h in handshakes} == {server}
    assert summary.packets[endpoints[0]] == len(stamps_ns(first))


def test_hostile_names_comments_and_damaged_captures_still_make_a_valid_file(tmp_path: Path) -> None:
    # Given a host name with control characters, invalid UTF-8 (surrogate-escaped bytes) and a huge comment,
    # a capture cut in the middle of a packet, one that is not a capture at all, and one with an impossible
    # packet length after its first packet
    mp = capture_path(FIXTURE)
    data = mp.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-1])  # inside the last packet
    text = tmp_path / "text.pcap"
    text.write_text("not a capture\n")
    huge_length = tmp_path / "huge.pcap"
    first_len = struct.unpack_from("<I", data, 24 + 8)[0]
    second = 24 + 16 + first_len
    huge_length.write_bytes(data[:second] + data[second:second + 8] + struct.pack("<II", 1 << 30, 1 << 30)
                            + data[second + 16:])
    odd = "mp1\x00\n\udcff\u202eevil" + "x" * 300
    sources = [CaptureSource(cut, odd, "cut", "odd\x1b[31m"), CaptureSource(text, "t", "text"),
               CaptureSource(huge_length, "h", "huge")]
    comments = {("cut", 1): ("A" * 100_000, "CN=\udc80\x00 evil\nline")}
    # When merged
    out, summary = _merge(tmp_path, sources, comments)
    # Then tshark reads it without complaint: the name is valid UTF-8 with the odd bytes escaped, the
    # comment is cut to the option limit, and the damaged inputs are notes, not failures
    rows = _tshark(out, "frame.interface_name", "frame.comment")
    names = {r[0] for r in rows}
    assert names == {option_text(odd).decode(), "h"}
    assert "\\x00" in option_text(odd).decode() and "\\udcff" in option_text(odd).decode()
    comment = rows[0][1]
    assert comment.startswith("AAAA") and len(comment.encode()) <= MAX_OPTION + 100
    assert "CN=\\udc80\\x00 evil\\nline" in comment
    assert len(rows) == len(stamps_ns(mp)) - 1 + 1  # the cut file loses its last packet, huge keeps one
    notes = " ".join(summary.notes)  # type: ignore[attr-defined]
    assert "text: left out" in notes and "truncated" in notes and "impossible length" in notes


def test_option_text_is_utf8_without_control_characters_and_bounded() -> None:
    # Given any text, Then the option is valid UTF-8, printable, and at most the limit
    for text in ("plain", "é ü 日本", "\x00\x1f\x7f", "\udc80\udcff", "x" * 10_000, "日" * 5000):
        value = option_text(text)
        decoded = value.decode("utf-8")
        assert decoded.isprintable() and len(value) <= MAX_OPTION
    assert option_text("é ü 日本") == "é ü 日本".encode()


@pytest.mark.parametrize("frames", [0, 1])
def test_a_source_without_packets_or_with_one_still_makes_a_readable_file(tmp_path: Path,
                                                                          frames: int) -> None:
    # Given a capture holding only its header (or one packet), When merged, Then tshark reads the result
    mp = capture_path(FIXTURE)
    data = mp.read_bytes()
    first_len = struct.unpack_from("<I", data, 24 + 8)[0]
    short = tmp_path / "short.pcap"
    short.write_bytes(data[:24] if frames == 0 else data[: 24 + 16 + first_len])
    out, summary = _merge(tmp_path, [CaptureSource(short, "mp1", "s")], {})
    assert len(_tshark(out, "frame.number")) == frames
    assert not summary.notes  # type: ignore[attr-defined]


def test_a_big_capture_is_merged_in_bounded_memory(tmp_path: Path) -> None:
    # Given two captures of 12 MB each (a real handshake followed by 8,000 full-size data segments) and a
    # comment to mirror (so every frame is decoded)
    mp = capture_path(FIXTURE)
    data = mp.read_bytes()
    frame = data[24 + 16 : 24 + 16 + struct.unpack_from("<I", data, 24 + 8)[0]]
    filler = frame + b"\x00" * (1500 - len(frame))
    record = struct.pack("<IIII", 1_800_000_000, 0, len(filler), len(filler)) + filler
    big = [tmp_path / "a.pcap", tmp_path / "b.pcap"]
    for path in big:
        path.write_bytes(data + record * 8_000)
    sources = [CaptureSource(big[0], "mp1", "a"), CaptureSource(big[1], "backend", "b")]
    # When merged with memory traced
    tracemalloc.start()
    try:
        out, summary = _merge(tmp_path, sources, {("a", 1): ("first SYN",)})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Then everything is written, and the peak stays a few read buffers, far below the inputs' 24 MB
    assert summary.packets[None] == 2 * (len(stamps_ns(mp)) + 8_000)  # type: ignore[attr-defined]
    assert out.stat().st_size > 2 * 8_000 * 1500
    assert peak < 8 << 20, peak


def test_packets_of_an_undescribed_interface_are_left_out_with_a_note(tmp_path: Path) -> None:
    # Given a pcapng whose second packet names interface 5, which the file never described
    frames = [frames_for(segments(capture_path(FIXTURE))[:2], 1)[0]] * 3
    odd = write_pcapng(tmp_path / "odd.pcapng", [(0, frames[0]), (5, frames[1]), (0, frames[2])], [1])
    # When merged, Then the other packets are kept and a note counts the one left out
    out, summary = _merge(tmp_path, [CaptureSource(odd, "mp1", "odd")], {})
    assert len(_tshark(out, "frame.number")) == 2
    assert any("1 packet(s) of an interface the file never described" in n
               for n in summary.notes)  # type: ignore[attr-defined]


def test_a_gzip_bomb_stops_at_the_size_limit(tmp_path: Path) -> None:
    # Given a 4 KiB .pcap.gz that inflates to 256 Ki empty packets (4 MiB)
    bomb = tmp_path / "bomb.pcap.gz"
    with gzip.open(bomb, "wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        handle.write(b"\x00" * (4 << 20))
    # When merged with a 256 KiB limit, Then the output stops below it, and a note says so
    out, summary = _merge(tmp_path, [CaptureSource(bomb, "mp1", "bomb")], {}, max_bytes=256 << 10)
    assert out.stat().st_size <= 256 << 10
    assert 0 < len(_tshark(out, "frame.number")) < 256 << 10
    assert any("size limit" in note for note in summary.notes)  # type: ignore[attr-defined]

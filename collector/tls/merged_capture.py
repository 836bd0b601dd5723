"""Several hosts' captures merged in time order into pcapng: one interface per host, comments on cited frames.

Public API: `CaptureSource`, `merge_captures(sources, outputs, comments) -> MergeSummary`.

Why memory stays bounded on captures of any size: the sources are read lazily, frame by frame, and merged
with `heapq.merge`, which holds one frame per source; packets are written as they come. What is kept is the
comments (given, bounded by the caller) and the TCP identity of each commented frame.

A comment names a frame of one source (its `cite`, and the frame number `read_handshakes` gives it). The same
packet seen by another host (the MP sends the ClientHello its backend receives) carries the comment too: it is
recognised by its TCP identity (addresses, ports, sequence number, payload length, SYN/FIN/RST), so a
support engineer filtering on either host's interface sees it. Behind a NAT the identities differ and only the
cited frame carries the comment.
"""

from __future__ import annotations

import heapq
import ipaddress
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from collector.errors import CaptureFormatError
from collector.tls.capture import open_frames
from collector.tls.packets import TCP_FIN, TCP_RST, TCP_SYN, Segment, decode_segment
from collector.tls.pcap import PcapReader
from collector.tls.pcapng import PcapngReader
from collector.tls.pcapng_writer import MAX_LINKTYPE, MAX_OPTION, PcapngWriter

APPLICATION = "apigee-collector"
_STREAM_ERRORS = (OSError, EOFError, zlib.error)  # damaged gzip data, read lazily
_CONTROL = TCP_SYN | TCP_FIN | TCP_RST

Endpoint = tuple[str, int]  # ("10.0.9.20", 8443): a backend's address and port
_Identity = tuple[bytes, int, bytes, int, int, int, int]


@dataclass(frozen=True)
class CaptureSource:
    """One host's capture.

    Attributes:
        path: the capture file (pcap or pcapng, gzip allowed).
        host: the host it was taken on: the interface name Wireshark shows.
        cite: how handshakes name this capture in their `source` (a bundle path), to match comments.
        description: the interface description (role, where the file came from).
    """

    path: Path
    host: str
    cite: str
    description: str = ""


@dataclass(frozen=True)
class MergeSummary:
    """What was written.

    Attributes:
        packets: per output (its endpoint, ``None`` for the one output of everything), packets written.
        comments: per output, packets written with a comment.
        notes: facts about the inputs (unreadable or damaged captures, packets that could not be kept).
    """

    packets: Mapping[Endpoint | None, int]
    comments: Mapping[Endpoint | None, int]
    notes: tuple[str, ...]


def merge_captures(sources: Sequence[CaptureSource], outputs: Mapping[Endpoint | None, BinaryIO],
                   comments: Mapping[tuple[str, int], Sequence[str]],
                   max_bytes: int | None = None) -> MergeSummary:
    """Write every source's frames, in time order, to `outputs`.

    `outputs` is either ``{None: stream}`` (every frame goes there) or one stream per backend endpoint (a
    frame goes to the output of the endpoint its TCP segment comes from or goes to; others are left out).
    `comments` maps (source cite, frame number) to the frame's comments. An unreadable source is a note.
    An output stops before it would pass `max_bytes` (a gzip bomb must not become a huge bundle file).
    """
    notes: list[str] = []
    mirrored = _cited_identities(sources, comments)
    routes = {_endpoint_key(e): e for e in outputs if e is not None}
    writers = {endpoint: _Output(PcapngWriter(stream, APPLICATION), max_bytes)
               for endpoint, stream in outputs.items()}
    skipped: dict[str, int] = {}
    with ExitStack() as stack:
        streams = []
        for index, source in enumerate(sources):
            reader = _open(source, stack, notes)
            if reader is not None:
                streams.append(_frames(index, source, reader, notes))
        for stamp, index, number, linktype, data, length in heapq.merge(*streams):
            source = sources[index]
            if linktype < 0 or linktype > MAX_LINKTYPE:
                skipped[source.cite] = skipped.get(source.cite, 0) + 1
                continue
            segment = decode_segment(linktype, data) if (routes or mirrored) and len(data) >= 20 else None
            comment = comments.get((source.cite, number), ())
            if not comment and segment is not None and mirrored:
                found = mirrored.get(_identity(segment))
                if found is not None and found[0] != index:
                    comment = found[1]
            for endpoint in _destinations(segment, routes) if routes else (None,):
                writers[endpoint].add(source, index, linktype, stamp, data, length, comment)
            if all(w.full for w in writers.values()):
                break
    notes += [f"the annotated capture stops after {w.writer.packets} packet(s): it reached its size limit of "
              f"{w.limit} bytes" for w in writers.values() if w.full]
    notes += [f"{cite}: {count} packet(s) of an interface the file never described (or of a link type pcapng "
              "cannot hold) were left out" for cite, count in skipped.items()]
    return MergeSummary({e: w.writer.packets for e, w in writers.items()},
                        {e: w.comments for e, w in writers.items()}, tuple(notes))


class _Output:
    """One output file: its writer, its size limit, and the interface of each (source, link type) it has
    described."""

    def __init__(self, writer: PcapngWriter, limit: int | None) -> None:
        self.writer = writer
        self.limit = limit
        self.full = False
        self.interfaces: dict[tuple[int, int], int] = {}
        self.comments = 0

    def add(self, source: CaptureSource, index: int, linktype: int, stamp: int, data: bytes,
            original_length: int | None, comments: Sequence[str]) -> None:
        # a generous bound on this packet's blocks: an IDB, the EPB, its padding and comments
        cost = 1024 + len(data) + sum(min(len(c) * 4, MAX_OPTION) + 8 for c in comments)
        if self.full or (self.limit is not None and self.writer.written + cost > self.limit):
            self.full = True
            return
        interface = self.interfaces.get((index, linktype))
        if interface is None:
            interface = self.writer.add_interface(linktype, source.host, source.description)
            self.interfaces[(index, linktype)] = interface
        self.writer.add_packet(interface, stamp, data, original_length, comments=comments)
        self.comments += bool(comments)


def _open(source: CaptureSource, stack: ExitStack, notes: list[str]) -> PcapReader | PcapngReader | None:
    try:
        return stack.enter_context(open_frames(source.path))
    except CaptureFormatError as error:
        notes.append(f"{source.cite}: left out: {error.defect}")
    except _STREAM_ERRORS as error:
        notes.append(f"{source.cite}: left out: {error}")
    return None


def _frames(index: int, source: CaptureSource, reader: PcapReader | PcapngReader,
            notes: list[str]) -> Iterator[tuple[int, int, int, int, bytes, int | None]]:
    """(time ns, source index, frame number, link type, data, original length) of each frame; a frame
    without a timestamp takes the one before it, so it stays where the file put it. The original length
    keeps a frame the snap length cut marked as cut in the merged file."""
    number = last = 0
    try:
        for linktype, data in reader:
            number += 1
            stamp = reader.frame_time()
            last = last if stamp is None else stamp
            yield last, index, number, linktype, data, reader.frame_length()
    except _STREAM_ERRORS as error:
        notes.append(f"{source.cite}: cannot be read past packet {number} ({error}); merged up to there")
    notes.extend(f"{source.cite}: {note}" for note in reader.notes)


def _cited_identities(sources: Sequence[CaptureSource], comments: Mapping[tuple[str, int], Sequence[str]]
                      ) -> dict[_Identity, tuple[int, Sequence[str]]]:
    """The TCP identity of every commented frame, with its source index and comment. Each source with
    comments is read up to its last commented frame (they are handshake frames: near the start, usually)."""
    wanted: dict[str, dict[int, Sequence[str]]] = {}
    for (cite, number), comment in comments.items():
        wanted.setdefault(cite, {})[number] = comment
    found: dict[_Identity, tuple[int, Sequence[str]]] = {}
    for index, source in enumerate(sources):
        frames = wanted.get(source.cite)
        if not frames:
            continue
        last = max(frames)
        with ExitStack() as stack:
            reader = _open(source, stack, [])  # the merge opens it again and notes what is wrong, once
            if reader is None:
                continue
            try:
                for number, (linktype, data) in enumerate(reader, start=1):
                    if number in frames:
                        segment = decode_segment(linktype, data) if len(data) >= 20 else None
                        if segment is not None:
                            found.setdefault(_identity(segment), (index, frames[number]))
                    if number >= last:
                        break
            except _STREAM_ERRORS:
                continue  # the merge notes the damage when it reads the same file
    return found


def _identity(segment: Segment) -> _Identity:
    return (segment.src, segment.sport, segment.dst, segment.dport, segment.seq,
            segment.end - segment.start + segment.missing, segment.flags & _CONTROL)


def _endpoint_key(endpoint: Endpoint) -> tuple[bytes, int]:
    return ipaddress.ip_address(endpoint[0].strip("[]")).packed, endpoint[1]


def _destinations(segment: Segment | None, routes: Mapping[tuple[bytes, int], Endpoint]) -> list[Endpoint]:
    if segment is None:
        return []
    hits = [routes.get((segment.dst, segment.dport)), routes.get((segment.src, segment.sport))]
    return list(dict.fromkeys(e for e in hits if e is not None))

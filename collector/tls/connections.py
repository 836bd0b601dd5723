"""Which TCP connections the capture reader follows, and the bounds on how many it keeps.

Public API: `ConnectionTable(keylog, source, clock, limits)` with `add_frame(linktype, data)`, `frames` and
`result(notes) -> CaptureResult`; `Limits` (the bounds; defaults `MAX_CONNECTIONS`, `MAX_SETTLED`,
`MAX_ATTEMPTS`).

Why memory stays bounded on any capture (a million one-packet connections included):
- Until its first payload byte a connection is a small `_Opening` (endpoints, first frame and time, the
  SYN/FIN/RST segments to replay); the full `Session` (reassembly, records, messages) is built only when data
  arrives.
- A connection whose first bytes are not TLS is dropped at once, and so is one whose TLS handshake is settled
  (its `Handshake` is built first) or that closed when nothing its later packets could bring would change
  its `Handshake` (`Session.closed_for_good`). Each leaves a marker so that its later packets cost one
  lookup; at most `MAX_SETTLED` markers are kept, the oldest connections' forgotten first (their stragglers
  would be read as a connection seen from the middle, which is judged by its first bytes again).
- A connection that ends without carrying a byte becomes a `ConnectionAttempt` (refused: SYN answered by RST;
  closed without data; unanswered) and is dropped; at most `MAX_ATTEMPTS` are listed, the rest are counted in
  a note.
- At most `MAX_CONNECTIONS` connections are followed at once. When another one opens, the quarter that has
  been idle longest (fewest frames since their last packet) is let go: a TLS one keeps the `Handshake` seen so
  far, with a note saying the reader stopped following it.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections import Counter
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Final

from collector.tls.handshake import AttemptEnd, ConnectionAttempt, Handshake, capture_time
from collector.tls.keylog import KeyLog
from collector.tls.packets import (
    ETHERNET,
    LINUX_SLL,
    LINUX_SLL2,
    SUPPORTED_LINKTYPES,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    decode_segment,
)
from collector.tls.pcap import MAX_FRAME, Consumer
from collector.tls.session import Session

MAX_CONNECTIONS = 20_000  # connections followed at once (far above an MP's pool to one backend)
MAX_SETTLED = 50_000  # finished connections whose later packets are still recognised and skipped
MAX_ATTEMPTS = 1_000  # connection attempts listed one by one; more are counted
_CONTROL: Final = TCP_SYN | TCP_FIN | TCP_RST
_KEPT_CONTROL: Final = 4  # SYN, SYN-ACK, and a FIN or RST each way are all a Session needs replayed

# A connection's key from one side: source address, destination address, source port, destination port, as
# their bytes follow each other in an IPv4 header without options and its TCP header: the reader's common
# case makes it with one slice of the frame, and a dict lookup on it decides most packets.
Key = bytes
_PORTS = struct.Struct(">HH").pack
# An IPv4 header without options and the TCP header after it: total length, fragment field, protocol, sequence
# number, data offset, flags (the addresses and ports are read as the connection's key, in one slice)
_IPV4_TCP: Final = struct.Struct(">2xH2xHxB14xI4xBB").unpack_from
# The link types read without `decode_segment` when they carry IPv4 without options, nearly every frame: where
# the IP header starts, and where the link header's protocol field says 0x0800. Ethernet is a capture on one
# interface; Linux cooked (SLL2 from tcpdump 4.99, SLL before) is what `tcpdump -i any`, the run's, writes.
_IPV4_AFTER = {ETHERNET: (14, 12), LINUX_SLL: (16, 14), LINUX_SLL2: (20, 0)}
_ENHANCED_PACKET_BLOCK: Final = 6  # pcapng's packet block with interface and time


@dataclass(frozen=True)
class Limits:
    """The reader's bounds (see the module docstring); smaller ones show the policy on a small file.

    Attributes:
        connections: connections followed at once.
        settled: settled connections whose later packets are still recognised.
        attempts: connection attempts without data listed one by one.
    """

    connections: int = MAX_CONNECTIONS
    settled: int = MAX_SETTLED
    attempts: int = MAX_ATTEMPTS


@dataclass(frozen=True)
class CaptureResult:
    """Everything one capture file showed.

    Attributes:
        handshakes: one per TLS connection, in the order their first record appeared.
        packets: frames in the file (the frame numbers Wireshark shows run from 1 to this).
        tls_connections: TCP connections recognised as TLS by their first bytes.
        notes: facts about the file itself (truncation, unsupported link types, damage, bounds reached).
        connection_attempts: TCP connections that carried no byte (refused, unanswered, closed without data),
            in capture order; at most `Limits.attempts` (a note counts the rest).
    """

    handshakes: tuple[Handshake, ...]
    packets: int
    tls_connections: int
    notes: tuple[str, ...]
    connection_attempts: tuple[ConnectionAttempt, ...] = ()


class _Settled:
    """Stands in for a connection that can no longer change: its later packets cost a dict lookup."""

    done = True
    seen_record = True


_SETTLED_ONE: Final = _Settled()
# Told apart by its first item, never by the tuple's identity: compiled (mypyc), a fixed-length tuple is
# unboxed and boxed again at will, so `is` on it does not hold (collector/tls/compiled_reader.py).
_SETTLED: Final = (_SETTLED_ONE, 0)
DEFAULT_LIMITS = Limits()


class _Opening:
    """A connection before its first payload byte: what a Session will need replayed, and nothing more."""

    __slots__ = (
        "answered", "back", "client", "control", "done", "fins", "first_frame", "key", "seen", "started"
    )
    seen_record = False

    def __init__(self, key: Key, frame: int, started: int | None) -> None:
        self.key = key  # side 0 sent the first packet seen
        self.back = _reversed(key)  # the key of side 1's packets
        self.first_frame = self.seen = frame
        self.started = started
        self.client: int | None = None  # the side that sent a SYN without ACK
        self.answered = False  # a SYN-ACK came back
        self.fins = 0  # bit per side
        # (side, seq, flags, frame) of the SYN/FIN/RST segments
        self.control: list[tuple[int, int, int, int]] = []
        self.done = False

    def ending(self, index: int, flags: int) -> AttemptEnd | None:
        """How the attempt ends with this segment from side `index`; None while it may still carry data."""
        if flags & TCP_RST:
            if self.client is not None and not self.answered and index != self.client:
                return AttemptEnd.REFUSED
            return AttemptEnd.CLOSED_WITHOUT_DATA if self.answered else None
        if flags & TCP_FIN:
            self.fins |= 1 << index
        return AttemptEnd.CLOSED_WITHOUT_DATA if self.fins == 3 and self.answered else None


class ConnectionTable:
    """Routes TCP segments to their connection; the module docstring says what it keeps and for how long."""

    def __init__(
        self,
        keylog: KeyLog | None,
        source: str,
        clock: Callable[[], int | None],
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.keylog = keylog
        self.limits = limits
        self.source = source
        self.clock = clock  # capture time (ns) of the frame being added
        self.frames = 0
        self.connections: dict[Key, tuple[_Opening | Session | _Settled, int]] = {}
        self.followed: dict[Key, _Opening | Session] = {}  # by the key of their side 0, in opening order
        self.settled_keys = 0
        self.handshakes: list[Handshake] = []  # of connections no longer followed
        self.attempts: list[ConnectionAttempt] = []
        self.attempts_unlisted = 0
        self.let_go = 0
        self.unsupported: Counter[int] = Counter()

    def add_frame(self, linktype: int, data: bytes, clock: Callable[[], int | None] | None = None) -> None:
        """One captured frame; `clock` tells its capture time (the table's own clock when not given)."""
        self.frames += 1
        link = _IPV4_AFTER.get(linktype)
        if (link is not None and len(data) >= link[0] + 40 and data[link[0]] == 0x45
                and data[link[1]] == 8 and data[link[1] + 1] == 0):
            ip = link[0]  # one unpack instead of `decode_segment`
            total, fragment, protocol, seq, data_offset, flags = _IPV4_TCP(data, ip)
            if protocol != 6 or fragment & 0x3FFF:
                return
            size = len(data)
            end = ip + total if total else size
            missing = 0
            if end > size:  # the snap length cut the packet
                captured_end, missing = size, end - size
            else:
                captured_end = end
            start = ip + 20 + (data_offset >> 4) * 4
            if start > captured_end:
                start = captured_end
            key = data[ip + 12 : ip + 24]
        else:
            segment = decode_segment(linktype, data) if len(data) >= 20 else None
            if segment is None:
                if linktype not in SUPPORTED_LINKTYPES:
                    self.unsupported[linktype] += 1
                return
            src, sport, dst, dport, seq, flags, data, start, captured_end, missing = segment
            key = src + dst + _PORTS(sport, dport)
        self._add_segment(key, seq, flags, data, start, captured_end, missing, clock or self.clock)

    def pcap_consumer(self, linktype: int, order: str, time_at: Callable[[bytes, int], int]) -> Consumer:
        """A `PcapReader.read_into` consumer feeding this table: the frames `add_frame` would get, with the
        common cases decided inline (a packet of a settled connection, a bare ACK, a segment in the middle of
        a sealed record nobody can open), so that most packets cost one unpack and a lookup, and no copy.
        `time_at(buf, pos)` tells the capture time of the record at `pos`."""
        return self._consumer(linktype, time_at, struct.Struct(order + "I").unpack_from, None, order=order)

    def pcapng_consumer(
        self, linktype: int, also: AbstractSet[int], order: str, time_at: Callable[[bytes, int], int | None]
    ) -> Consumer:
        """The same for `PcapngReader.read_into`: it takes the enhanced packet blocks of interface 0 (of
        `linktype`) and of the interfaces in `also` (of the same link type), and stops at any other block,
        which the reader reads itself."""
        return self._consumer(linktype, time_at, None, struct.Struct(order + "III8xI").unpack_from, also)

    def _consumer(
        self,
        linktype: int,
        time_at: Callable[[bytes, int], int | None],
        caplen_at: Callable[[bytes, int], tuple[int, ...]] | None,
        block_at: Callable[[bytes, int], tuple[int, ...]] | None,
        also: AbstractSet[int] = frozenset(),
        order: str = "<",
    ) -> Consumer:
        """A pcap consumer (`caplen_at` reads a record's captured length) or a pcapng one (`block_at` reads
        an enhanced packet block's type, length, interface and captured length; it takes interface 0 and those
        in `also`): one loop for both formats, as what follows a frame's header is the same. `order` is a pcap
        file's byte order."""
        link = _IPV4_AFTER.get(linktype)
        ip, kind_at = link or (0, 0)
        least = ip + 40 if link is not None else 1 << 32  # any other link type: every frame to `add_frame`
        connections, settled = self.connections, _SETTLED_ONE
        add_frame, add_segment = self.add_frame, self._add_segment
        where = [b"", 0]  # the record header of the frame being added, for `clock`
        header = 16 if block_at is None else 28  # the bytes before a frame
        # A pcap record's captured length, its link header's protocol, its IP version byte, the connection's
        # key and the TCP flags in one unpack (the protocol read in the file's byte order, hence the value it
        # has for 0x0800 there)
        probe = struct.Struct(
            f"{order}8xI{16 + kind_at - 12}xH{max(0, ip - kind_at - 2)}xB11x12s9xB"
        ).unpack_from
        span = 16 + ip + 34 if link is not None else 1 << 62  # another link type: never probed
        ipv4 = 0x0008 if order == "<" else 0x0800

        def clock() -> int | None:
            return time_at(where[0], where[1])  # type: ignore[arg-type]  # (bytes, int), set before each call

        def consume(buf: bytes, pos: int) -> tuple[int, int]:
            # what the unpacks give, typed: compiled, the loop then works on machine integers
            caplen: int
            kind: int
            version: int
            length: int
            interface: int
            key: bytes
            control: int
            total: int
            fragment: int
            protocol: int
            seq: int
            data_offset: int
            flags: int
            size = len(buf)
            first = frames = self.frames
            while pos + header <= size:
                if block_at is None:
                    if pos + span <= size:
                        caplen, kind, version, key, control = probe(buf, pos)
                    else:  # a record too short to be common (or cut): the probe would run past the buffer
                        (caplen,) = caplen_at(buf, pos + 8)  # type: ignore[misc]  # one of the two is given
                        kind = version = 0
                    frame_at = pos + 16
                    following = end = frame_at + caplen
                    if end > size:
                        break
                    common = caplen >= least and version == 0x45 and kind == ipv4
                else:
                    kind, length, interface, caplen = block_at(buf, pos)
                    following = pos + length
                    if (kind != _ENHANCED_PACKET_BLOCK or (interface and interface not in also)
                            or following > size or length & 3 or not 32 <= length <= MAX_FRAME):
                        break  # another block, another link type, a cut or damaged block: the reader's
                    frame_at = pos + 28
                    if caplen > length - 32:  # as the reader slices it
                        caplen = length - 32
                    end = frame_at + caplen
                    common = (caplen >= least and buf[frame_at + ip] == 0x45
                              and buf[frame_at + kind_at] == 8 and buf[frame_at + kind_at + 1] == 0)
                    if common:
                        key, control = buf[frame_at + ip + 12 : frame_at + ip + 24], buf[frame_at + ip + 33]
                if not common:  # not IPv4 without options on the link type's usual header: the general path
                    self.frames = frames
                    where[0], where[1] = buf, pos
                    add_frame(linktype, buf[frame_at:end], clock)
                    frames = self.frames
                    pos = following
                    continue
                frames += 1
                at = frame_at + ip
                entry = connections.get(key)
                # a packet of a connection that can no longer change (protocol and fragment do not matter:
                # anything else with these bytes would be skipped too), unless it is a SYN opening it again;
                # a connection is let go (marked settled) as soon as it is done
                if entry is not None and entry[0] is settled and control & 0x12 != TCP_SYN:
                    pos = following
                    continue
                total, fragment, protocol, seq, data_offset, flags = _IPV4_TCP(buf, at)
                if protocol != 6 or fragment & 0x3FFF:
                    pos = following
                    continue
                packet_end = at + total if total else end
                missing = 0
                if packet_end > end:  # the snap length cut the packet
                    captured_end, missing = end, packet_end - end
                else:
                    captured_end = packet_end
                start = at + 20 + (data_offset >> 4) * 4
                if start > captured_end:
                    start = captured_end
                if entry is not None and not (flags & TCP_SYN and not flags & TCP_ACK):
                    connection, index = entry
                    connection.seen = frames  # type: ignore[union-attr]  # a settled one continued above
                    length = captured_end - start
                    if not length and not missing and not flags & _CONTROL:
                        pos = following
                        continue  # a bare ACK
                    if type(connection) is Session and length and not missing and not flags & _CONTROL:
                        # Session.add_segment's first case, without the call: the middle of a sealed record
                        # nobody can open, in order; only its length matters
                        side = connection.sides[index]
                        records, stream = side.records, side.stream
                        if records._skip > length and seq == stream.next_seq and not stream._pending:
                            records._skip -= length
                            stream.next_seq = (seq + length) & 0xFFFFFFFF
                            pos = following
                            continue
                        # (a side still in its handshake is not sealed: the general path, without the call)
                        if side.protected and connection.add_sealed(
                                index, seq, buf, start, captured_end, frames):
                            if connection.done:
                                self.frames = frames
                                self._let_go(connection, "")
                            pos = following
                            continue
                self.frames = frames
                where[0], where[1] = buf, pos
                add_segment(key, seq, flags, buf, start, captured_end, missing, clock)
                frames = self.frames
                pos = following
            self.frames = frames
            return pos, frames - first

        return consume

    def _add_segment(
        self,
        key: Key,
        seq: int,
        flags: int,
        data: bytes,
        start: int,
        captured_end: int,
        missing: int,
        clock: Callable[[], int | None],
    ) -> None:
        """One TCP segment (payload `data[start:captured_end]`) of frame `self.frames`; `clock` tells its
        capture time, asked only when it opens a connection."""
        entry = self.connections.get(key)
        if entry is not None and flags & TCP_SYN and not flags & TCP_ACK and entry[0].seen_record:
            if not isinstance(entry[0], _Settled):
                self._let_go(entry[0], "")  # the port pair is reused by a new connection
            entry = None
        if entry is None:
            entry = self._open(key, clock())
        connection, index = entry
        if connection.done:
            return
        connection.seen = self.frames  # type: ignore[union-attr]  # a done (settled) connection returned above
        if captured_end == start and not missing and not flags & _CONTROL:
            return  # a bare ACK: nothing for an opening to keep nor for a session to read
        if type(connection) is _Opening:
            if captured_end == start and not missing:
                self._add_control(connection, index, seq, flags)
                return
            connection = self._start_session(connection)
        session: Session = connection  # type: ignore[assignment]  # not done, and an _Opening became one above
        session.add_segment(index, seq, flags, data[start:captured_end], missing, self.frames)
        if session.done or (flags & (TCP_FIN | TCP_RST) and session.closed_for_good()):
            self._let_go(session, "")

    def _open(self, key: Key, started: int | None) -> tuple[_Opening, int]:
        if len(self.followed) >= self.limits.connections:
            self._let_go_idle()
        if self.settled_keys > 2 * self.limits.settled:
            self._forget_settled()
        opening = _Opening(key, self.frames, started)
        self.connections[key] = (opening, 0)
        self.connections[opening.back] = (opening, 1)
        self.followed[key] = opening
        return opening, 0

    def _add_control(self, opening: _Opening, index: int, seq: int, flags: int) -> None:
        """A segment without payload (SYN, SYN-ACK, ACK, FIN, RST) of a connection that carried nothing."""
        if flags & TCP_SYN:
            if flags & TCP_ACK:
                opening.answered = True
            elif opening.client is None:
                opening.client = index
        if flags & _CONTROL and len(opening.control) < _KEPT_CONTROL:
            opening.control.append((index, seq, flags, self.frames))
        if flags & (TCP_FIN | TCP_RST) and (end := opening.ending(index, flags)) is not None:
            self._record_attempt(opening, end)
            self._forget(opening)

    def _start_session(self, opening: _Opening) -> Session:
        """The first payload byte: build the Session and replay the segments it has not seen."""
        key = opening.key
        ends = _endpoints(key)
        session = Session(opening.first_frame, ends, self.keylog)
        session.key, session.back = key, opening.back
        session.started, session.seen = opening.started, self.frames
        for index, seq, flags, frame in opening.control:
            session.add_segment(index, seq, flags, b"", 0, frame)
        self.connections[key] = (session, 0)
        self.connections[opening.back] = (session, 1)
        self.followed[key] = session
        return session

    def _let_go(self, connection: _Opening | Session, note: str) -> None:
        """Stop following a connection: a TLS one's Handshake is built, anything else is dropped."""
        if isinstance(connection, _Opening):
            if connection.client is not None and not connection.answered:
                self._record_attempt(connection, AttemptEnd.UNANSWERED)
            elif connection.answered and connection.fins:
                self._record_attempt(connection, AttemptEnd.CLOSED_WITHOUT_DATA)
            self._forget(connection)  # nothing was read: a straggler is again a small opening
            return
        if connection.tls:
            if note:
                connection.notes.append(note)
            connection.flush(self.frames)
            self.handshakes.append(connection.to_handshake(self.source))
        key, back = connection.key, connection.back
        assert key is not None and back is not None  # every Session the table follows was started here
        self.connections[key] = self.connections[back] = _SETTLED
        del self.followed[key]
        self.settled_keys += 2

    def _forget(self, opening: _Opening) -> None:
        del self.connections[opening.key], self.connections[opening.back], self.followed[opening.key]

    def _record_attempt(self, opening: _Opening, end: AttemptEnd) -> None:
        if len(self.attempts) >= self.limits.attempts:
            self.attempts_unlisted += 1
            return
        key, client = opening.key, opening.client or 0
        ends = _endpoints(key)
        self.attempts.append(
            ConnectionAttempt(
                client=ends[client],
                server=ends[1 - client],
                end=end,
                captured_at=capture_time(opening.started),
                frames=(opening.first_frame, opening.seen),
                source=self.source,
            )
        )

    def _let_go_idle(self) -> None:
        """Too many connections at once: let go of the quarter idle longest."""
        followed = sorted(self.followed.values(), key=lambda connection: connection.seen)
        for connection in followed[: max(1, len(followed) // 4)]:
            self.let_go += 1
            note = ""
            if isinstance(connection, Session) and connection.tls:
                note = (
                    f"the reader stopped following this connection at frame {self.frames} (idle since frame "
                    f"{connection.seen}): more than {self.limits.connections} connections were open at once"
                )
            self._let_go(connection, note)

    def _forget_settled(self) -> None:
        """Forget the markers of the oldest settled connections down to `Limits.settled` (dict order is
        opening order). In place: the pcap consumer holds this dict."""
        drop = self.settled_keys - self.limits.settled
        stale: list[Key] = []
        for key, entry in self.connections.items():
            if len(stale) >= drop:
                break
            if entry[0] is _SETTLED_ONE:
                stale.append(key)
        for key in stale:
            del self.connections[key]
        self.settled_keys -= len(stale)

    def result(self, notes: list[str]) -> CaptureResult:
        """Everything read: connections still followed are judged as the capture left them."""
        for connection in list(self.followed.values()):
            self._let_go(connection, "")
        handshakes = sorted(self.handshakes, key=lambda h: h.frames or (0, 0))
        attempts = sorted(self.attempts, key=lambda a: a.frames or (0, 0))
        for linktype, count in sorted(self.unsupported.items()):
            if linktype < 0:
                notes.append(f"{count} packets name an interface the file never described; they were skipped")
            else:
                notes.append(
                    f"{count} packets have link type {linktype}, which is not supported; they were skipped"
                )
        if self.let_go:
            notes.append(
                f"more than {self.limits.connections} connections were open at once: the reader let go "
                f"of {self.let_go} idle ones early (a TLS one's handshake shows what was seen until then)"
            )
        if self.attempts_unlisted:
            notes.append(
                f"{self.attempts_unlisted} more connection attempts without data are not listed "
                f"(the first {self.limits.attempts} are)"
            )
        return CaptureResult(tuple(handshakes), self.frames, len(handshakes), tuple(notes), tuple(attempts))


def _reversed(key: Key) -> Key:
    """The key of the same connection seen from its other side."""
    size = (len(key) - 4) // 2
    return key[size : 2 * size] + key[:size] + key[2 * size + 2 :] + key[2 * size : 2 * size + 2]


def _endpoints(key: Key) -> tuple[str, str]:
    """The ``address:port`` texts of the key's source and destination."""
    size = (len(key) - 4) // 2
    ports = key[2 * size :]
    return (
        f"{_address(key[:size])}:{ports[0] << 8 | ports[1]}",
        f"{_address(key[size : 2 * size])}:{ports[2] << 8 | ports[3]}",
    )


@functools.lru_cache(maxsize=1024)  # an MP capture holds few addresses, on thousands of connections
def _address(address: bytes) -> str:
    if len(address) == 4:
        return f"{address[0]}.{address[1]}.{address[2]}.{address[3]}"
    return f"[{ipaddress.IPv6Address(address).compressed}]"

"""TCP reassembly of one direction: in-order bytes out of retransmitted, reordered, overlapping or
missing segments.

Public API: `Stream` with `add(seq, payload, syn) -> list[bytes | int]` (an int is a gap of that many
bytes) and `flush() -> list[bytes | int]` at the end of the connection.
"""

from __future__ import annotations

from typing import Final

_MASK: Final = 0xFFFFFFFF
_HALF: Final = 1 << 31
MAX_PENDING: Final = 1 << 20  # out-of-order bytes held waiting for a hole to fill before we call it a gap


class Stream:
    """One direction of a TCP connection.

    Attributes:
        next_seq: the sequence number of the next byte we expect, None until the first SYN or data segment.
        gaps: bytes that never arrived (declared lost once the pending buffer overflowed or the stream ended).
    """

    __slots__ = ("_pending", "_pending_bytes", "gaps", "next_seq")

    def __init__(self) -> None:
        self.next_seq: int | None = None
        self._pending: dict[int, bytes] = {}
        self._pending_bytes = 0
        self.gaps = 0

    def add(self, seq: int, payload: bytes, syn: bool = False, missing: int = 0) -> list[bytes | int]:
        """Take one segment; return the bytes (and gaps) that became contiguous, in stream order.

        `missing` is the part of the payload the capture cut off (snap length): a gap right after `payload`.
        """
        if syn:
            seq = (seq + 1) & _MASK
            if self.next_seq is None:
                self.next_seq = seq
        if not payload and not missing:
            return []
        if self.next_seq is None:  # connection seen from the middle: start where we came in
            self.next_seq = seq
        offset = (seq - self.next_seq) & _MASK
        if offset == 0:
            self.next_seq = (seq + len(payload) + missing) & _MASK
            if missing:
                self.gaps += missing
                return self._drain([payload, missing])
            return self._drain([payload]) if self._pending else [payload]
        if offset >= _HALF:  # starts before what we already have: retransmission or overlap
            overlap = _MASK + 1 - offset
            if overlap >= len(payload):
                return []
            self.next_seq = (seq + len(payload)) & _MASK
            return self._drain([payload[overlap:]])
        held = self._pending.get(seq)
        if held is None or len(held) < len(payload):
            self._pending[seq] = payload
            self._pending_bytes += len(payload) - (len(held) if held else 0)
        if self._pending_bytes > MAX_PENDING:
            return self._skip_hole()
        return []

    def flush(self) -> list[bytes | int]:
        """At the end of the connection, give up on the holes and deliver whatever is pending."""
        out: list[bytes | int] = []
        while self._pending:
            out.extend(self._skip_hole())
        return out

    def _skip_hole(self) -> list[bytes | int]:
        """Declare the bytes before the earliest pending segment lost and continue from there."""
        assert self.next_seq is not None
        base = self.next_seq
        first = min(self._pending, key=lambda s: (s - base) & _MASK)
        gap = (first - base) & _MASK
        self.gaps += gap
        self.next_seq = first
        return self._drain([gap])

    def _drain(self, out: list[bytes | int]) -> list[bytes | int]:
        """Move pending segments that are now contiguous (or overlap what we have) to `out`."""
        progress = True
        while progress and self._pending:
            progress = False
            for seq in list(self._pending):
                offset = (seq - self.next_seq) & _MASK  # type: ignore[operator]  # set by the first segment, before any is pending
                if offset != 0 and offset < _HALF:
                    continue
                payload = self._pending.pop(seq)
                self._pending_bytes -= len(payload)
                overlap = 0 if offset == 0 else _MASK + 1 - offset
                if overlap < len(payload):
                    out.append(payload[overlap:])
                    self.next_seq = (seq + len(payload)) & _MASK
                progress = True
        return out

"""Writing pcapng: one section, interfaces with a name and nanosecond timestamps, packets with a comment.

Public API: `PcapngWriter(stream, application)` with `add_interface(...) -> int` and
`add_packet(..., comments)`; `option_text(text, limit) -> bytes`.

Whatever the text comes from (a host name from an inventory, a DN from a hostile certificate), an option
written here is valid UTF-8 without control characters and fits its 16-bit length field, so Wireshark and
tshark show it as it is.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import BinaryIO

_SHB, _IDB, _EPB = 0x0A0D0D0A, 1, 6
_OPT_END, _OPT_COMMENT, _SHB_USERAPPL, _IF_NAME, _IF_DESCRIPTION, _IF_TSRESOL = 0, 1, 4, 2, 3, 9
_NANOSECONDS = 9  # if_tsresol: 10^-9 s per tick, so every input's resolution fits without loss
MAX_OPTION = 4096  # bytes of one text option; a longer text is cut (a comment is a pointer, not a report)
MAX_LINKTYPE = 0xFFFF  # an IDB's link type field is 16 bits
_MAX_TIME = (1 << 64) - 1


def option_text(text: str, limit: int = MAX_OPTION) -> bytes:
    """`text` as an option value: anything unprintable (control characters, lone surrogates) escaped as
    ``\\xNN``/``\\uNNNN``, then cut to `limit` bytes on a character boundary, ``…`` marking the cut."""
    cleaned = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    data = cleaned.encode("utf-8")
    if len(data) <= limit:
        return data
    ellipsis = "…".encode()
    return data[: limit - len(ellipsis)].decode("utf-8", "ignore").encode("utf-8") + ellipsis


class PcapngWriter:
    """Writes one pcapng section to `stream` (little-endian, as the machine writing it usually is)."""

    def __init__(self, stream: BinaryIO, application: str) -> None:
        self._stream = stream
        self.interfaces = 0
        self.packets = 0
        self.written = 0  # bytes
        header = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)  # byte-order magic, version 1.0, length unknown
        self._block(_SHB, header + _options([(_SHB_USERAPPL, option_text(application))]))

    def add_interface(self, linktype: int, name: str, description: str = "") -> int:
        """Describe an interface (timestamps in nanoseconds); returns its id for `add_packet`.

        Raises ValueError for a link type an IDB cannot hold (the caller skips that interface's packets)."""
        if not 0 <= linktype <= MAX_LINKTYPE:
            raise ValueError(f"link type {linktype} does not fit a pcapng interface")
        options = [(_IF_NAME, option_text(name)), (_IF_TSRESOL, bytes([_NANOSECONDS]))]
        if description:
            options.insert(1, (_IF_DESCRIPTION, option_text(description)))
        self._block(_IDB, struct.pack("<HHI", linktype, 0, 0) + _options(options))
        self.interfaces += 1
        return self.interfaces - 1

    def add_packet(self, interface: int, nanoseconds: int, data: bytes, original_length: int | None = None,
                   comments: Sequence[str] = ()) -> None:
        """One Enhanced Packet Block, one opt_comment per comment; `nanoseconds` since the Unix epoch (clamped
        to what 64 bits hold)."""
        stamp = min(max(nanoseconds, 0), _MAX_TIME)
        length = len(data)
        original = max(length, original_length or 0)
        body = struct.pack("<IIIII", interface, stamp >> 32, stamp & 0xFFFFFFFF, length, original)
        body += data + b"\x00" * (-length % 4)
        if comments:
            body += _options([(_OPT_COMMENT, option_text(comment)) for comment in comments])
        self._block(_EPB, body)
        self.packets += 1

    def _block(self, kind: int, body: bytes) -> None:
        total = len(body) + 12
        self._stream.write(struct.pack("<II", kind, total) + body + struct.pack("<I", total))
        self.written += total


def _options(options: list[tuple[int, bytes]]) -> bytes:
    out = [struct.pack("<HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)
           for code, value in options]
    return b"".join(out) + struct.pack("<HH", _OPT_END, 0)

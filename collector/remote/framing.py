"""Framed remote output: the payload between per-call markers; stray shell output (banners, motd) apart."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

# scripts/frame.sh wraps every remote command: `NONCE:begin\n` PAYLOAD `NONCE:end:RC:SHA256\n` on stdout
# and `NONCE:begin\n` ... `NONCE:end\n` on stderr. The nonce is 128 random bits sent as the first line of
# stdin, so neither a login banner nor a file's content can forge a marker.
FRAME_SCRIPT = (resources.files("collector.remote") / "scripts" / "frame.sh").read_text(encoding="utf-8")
_TRAILER_MAX = 200  # "RC:SHA256" is about 70 bytes
_AFTER_KEEP = 70_000  # on a terminal the command's stderr (at most 64 KiB) follows the end marker


def new_nonce() -> str:
    return secrets.token_hex(16)


def frame_argv(argv: list[str], hashed: bool) -> list[str]:
    """`argv` run inside the frame; `hashed` also sends the host-side sha256 of the payload. On a terminal
    (a channel with a pty) the frame sends the command's stderr after the payload, see `Frame.tty_stderr`."""
    return ["sh", "-c", FRAME_SCRIPT, "collector-frame", "hash" if hashed else "plain", *argv]


@dataclass(frozen=True)
class Frame:
    """What the frame said about one command.

    Attributes:
        complete: both markers were seen; when False, nothing below can be trusted.
        exit_code: the wrapped command's own exit code (from the end marker); `None` when not complete.
        host_sha256: the payload's sha256 computed on the host; `None` unless hashed and complete.
        payload_sha256: the sha256 of the payload bytes received here.
        payload_bytes: bytes handed to the sink.
        stray_bytes: bytes outside the frame (banners, wrapper output): discarded, never part of the payload.
        tty_stderr: the command's stderr when it ran on a terminal (sent after the payload); `None` otherwise.
    """

    complete: bool
    exit_code: int | None
    host_sha256: str | None
    payload_sha256: str
    payload_bytes: int
    stray_bytes: int
    tty_stderr: bytes | None = None


class Deframer:
    """Feeds a command's stdout chunks through; only the bytes between the markers reach `sink`."""

    def __init__(self, nonce: str, sink: Callable[[bytes], object]) -> None:
        self._begin = f"{nonce}:begin\n".encode()
        self._end = f"{nonce}:end:".encode()
        self._sink = sink
        self._buffer = bytearray()
        self._state = "before"  # before -> payload -> trailer -> after
        self._hash = hashlib.sha256()
        self._trailer = b""
        self._after = bytearray()
        self._nonce = nonce
        self.payload_bytes = 0
        self.stray_bytes = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while self._buffer:
            if self._state == "before":
                if not self._seek(self._begin, "payload", deliver=False):
                    return
            elif self._state == "payload":
                if not self._seek(self._end, "trailer", deliver=True):
                    return
            elif self._state == "trailer":
                newline = self._buffer.find(b"\n")
                if newline < 0:
                    if len(self._buffer) > _TRAILER_MAX:
                        self._state = "broken"
                    return
                self._trailer = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                self._state = "after"
            else:  # after the frame, or a broken trailer: stray, except a terminal's stderr section
                if self._state == "after" and len(self._after) < _AFTER_KEEP:
                    self._after += self._buffer[: _AFTER_KEEP - len(self._after)]
                self.stray_bytes += len(self._buffer)
                self._buffer.clear()

    def _seek(self, marker: bytes, next_state: str, deliver: bool) -> bool:
        """Find `marker`; pass (or drop) what precedes it. False: not yet seen (a marker may straddle chunks,
        so its length minus one bytes stay buffered)."""
        index = self._buffer.find(marker)
        upto = index if index >= 0 else max(0, len(self._buffer) - len(marker) + 1)
        if upto:
            chunk = bytes(self._buffer[:upto])
            if deliver:
                self._hash.update(chunk)
                self.payload_bytes += len(chunk)
                self._sink(chunk)
            else:
                self.stray_bytes += len(chunk)
            del self._buffer[:upto]
        if index < 0:
            return False
        del self._buffer[: len(marker)]
        self._state = next_state
        return True

    def finish(self) -> Frame:
        self.stray_bytes += len(self._buffer) if self._state in ("before", "after", "broken") else 0
        rc_text, _, sha = self._trailer.decode("ascii", "replace").partition(":")
        complete = self._state == "after" and rc_text.lstrip("-").isdigit()
        tty_stderr = None
        begin, end = f"{self._nonce}:stderr\n".encode(), f"{self._nonce}:stderr-end\n".encode()
        start = self._after.find(begin)
        if start >= 0:
            stop = self._after.find(end, start)
            tty_stderr = bytes(self._after[start + len(begin) : stop if stop >= 0 else len(self._after)])
            section = len(tty_stderr) + len(begin) + (len(end) if stop >= 0 else 0)
            self.stray_bytes -= min(self.stray_bytes, section)
        return Frame(
            complete=complete,
            tty_stderr=tty_stderr,
            exit_code=int(rc_text) if complete else None,
            host_sha256=sha if complete and len(sha) == 64 else None,
            payload_sha256=self._hash.hexdigest(),
            payload_bytes=self.payload_bytes,
            stray_bytes=self.stray_bytes,
        )


def strip_stderr(data: bytes, nonce: str) -> bytes:
    """The command's own stderr: what lies between the stderr markers (all of it when they are missing)."""
    begin, end = f"{nonce}:begin\n".encode(), f"{nonce}:end\n".encode()
    start = data.find(begin)
    if start >= 0:
        data = data[start + len(begin) :]
    stop = data.find(end)
    return data[:stop] if stop >= 0 else data

"""NSS key log files (SSLKEYLOGFILE, `openssl s_server -keylogfile`): TLS 1.3 traffic secrets by
client random.

Public API: `is_keylog(head) -> bool`, `load_keylog(path) -> KeyLog` (raises InputError), `KeyLog` with
`secret(client_random, label)` and `merge(other)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from collector.errors import InputError

CLIENT_HANDSHAKE = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
SERVER_HANDSHAKE = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
CLIENT_TRAFFIC = "CLIENT_TRAFFIC_SECRET_0"
SERVER_TRAFFIC = "SERVER_TRAFFIC_SECRET_0"
_USED = frozenset({CLIENT_HANDSHAKE, SERVER_HANDSHAKE, CLIENT_TRAFFIC, SERVER_TRAFFIC})
_LINE = re.compile(r"([A-Z][A-Z0-9_]*) ([0-9a-fA-F]{64}) ((?:[0-9a-fA-F]{2}){1,128})")
_LINE_START = re.compile(r"[A-Z][A-Z0-9_]* [0-9a-fA-F]")
_MAX_SIZE = 64 << 20


@dataclass(frozen=True)
class KeyLog:
    """Secrets from one or more key logs, keyed by the ClientHello random (32 bytes) and the NSS label."""

    secrets: Mapping[bytes, Mapping[str, bytes]] = field(default_factory=dict)

    def secret(self, client_random: bytes, label: str) -> bytes | None:
        return self.secrets.get(client_random, {}).get(label)

    def merge(self, other: KeyLog) -> KeyLog:
        """A key log holding both; entries of `other` win where both name the same random and label."""
        merged = {random: dict(labels) for random, labels in self.secrets.items()}
        for random, labels in other.secrets.items():
            merged.setdefault(random, {}).update(labels)
        return KeyLog(MappingProxyType({r: MappingProxyType(v) for r, v in merged.items()}))


def is_keylog(head: bytes) -> bool:
    """True when the first meaningful line of `head` is an NSS key log line (``LABEL <64 hex> <hex>``)."""
    lines = head.splitlines()
    for index, raw in enumerate(lines[:20]):
        line = raw.strip().decode("ascii", "replace")
        if not line or line.startswith("#"):
            continue
        if index == len(lines) - 1 and not head.endswith(b"\n"):  # the head cut this line short
            return _LINE_START.match(line) is not None
        return _LINE.fullmatch(line) is not None
    return False


def load_keylog(path: Path) -> KeyLog:
    """Parse a key log; TLS 1.2 CLIENT_RANDOM and other labels are accepted and ignored."""
    try:
        if path.stat().st_size > _MAX_SIZE:
            raise InputError(path, f"is larger than {_MAX_SIZE >> 20} MB, too large for a key log")
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as error:
        raise InputError(path, "is not a text file, so not an NSS key log") from error
    except IsADirectoryError as error:
        raise InputError(path, "is a directory, not an NSS key log") from error
    except OSError as error:
        raise InputError(path, f"cannot be read ({error.strerror or error})") from error
    secrets: dict[bytes, dict[str, bytes]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise InputError(path, f"line {number} is not an NSS key log line 'LABEL CLIENT_RANDOM SECRET'")
        label, random, secret = match.groups()
        if label in _USED:
            secrets.setdefault(bytes.fromhex(random), {})[label] = bytes.fromhex(secret)
    if not secrets and not any(_LINE.fullmatch(x.strip()) for x in text.splitlines()):
        raise InputError(path, "holds no NSS key log lines")
    return KeyLog(MappingProxyType({r: MappingProxyType(v) for r, v in secrets.items()}))

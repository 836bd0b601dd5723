"""Ctrl-C and SIGTERM held back while bookkeeping must not be cut in half.

Public API: `held()`, a context manager: SIGINT and SIGTERM received in the block are delivered when it ends.
An interrupt raised in the middle of an import leaves that module half-made for the rest of the process; one
raised between listing a thread and starting it leaves a thread nobody can join.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def held() -> Iterator[None]:
    """SIGINT and SIGTERM received in the block are delivered when it ends (Python handlers only ever run in
    the main thread, so elsewhere there is nothing to hold)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    previous = {s: handler for s, handler in previous.items() if handler is not None}  # not set from Python
    for signum in previous:
        signal.signal(signum, lambda number, _frame: received.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            signal.raise_signal(received[0])

"""Redaction on the machine's other cores: large files (MP system.logs, captures) are redacted into the bundle
by worker processes while the run goes on with other hosts, instead of one after the other at the end.

A 16-host run with 8 MiB logs spent most of its time after the host work redacting the logs one by one on one
core. Redaction is CPU-bound Python (the GIL rules out threads), so the work goes to processes.

A worker is a fresh interpreter running this module (`python -m collector.bundle.workers`), fed one file at a
time as a JSON line on its stdin, answering with one JSON line. Not `multiprocessing`: its children re-import
the caller's main module and, with fork, would inherit locks held by the run's SSH threads. Workers ignore
SIGINT: on Ctrl-C the run decides, and `stop` ends them before the partial bundle directory is removed, so no
worker writes into a directory being deleted. A worker whose parent died sees its stdin end and exits.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import IO, BinaryIO

from collector import interrupts
from collector.bundle.redact import Redaction, UnredactableError, redact_seekable
from collector.bundle.redactors import load_rules
from collector.errors import BundleError

MAX_WORKERS = 8
# Smaller files are redacted in the run's own process: handing them over would cost more than it saves.
MIN_WORKER_BYTES = 256 * 1024  # on disk: a gzip'd log of 256 KiB holds ~2.5 MB of text
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding this `collector` package


class WorkerGone(Exception):
    """The worker ended without answering (killed, out of memory, stopped): the caller redacts the file."""


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's or taskset's limit, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def open_private(target: str | Path) -> BinaryIO:
    """A bundle file opened for writing: created or truncated, 0600 whatever the umask, never through a link
    (the writer's own files and the workers' both open this way)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


def redact_file(src_path: str, target_path: str, rel_path: str) -> list[Redaction]:
    """Redact `src_path` into the new file `target_path` (`open_private`), as `rel_path`; on any failure
    nothing is left at `target_path`."""
    out = open_private(target_path)
    try:
        with out, Path(src_path).open("rb") as src:
            return redact_seekable(src, out, rel_path)
    except BaseException:
        Path(target_path).unlink(missing_ok=True)
        raise


class RedactionWorkers:
    """Up to `jobs` worker processes, started on first use; `submit` is thread-safe (host threads call it)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, min(jobs, MAX_WORKERS))
        self._tasks: queue.Queue[tuple[Future[list[Redaction]], str, str, str] | None] = queue.Queue()
        self._processes: list[subprocess.Popen[bytes]] = []
        self._feeders: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._idle = 0  # feeders waiting for a task (their worker started or starting)

    def start(self, files: int) -> None:
        """Start the workers `files` large files will need now (each takes ~0.3 s to load the redaction
        code), so the first files find them ready."""
        with self._lock:
            while not self._stopped and len(self._feeders) < min(files, self.jobs):
                self._add_feeder()

    def submit(self, src_path: Path, target_path: Path, rel_path: str) -> Future[list[Redaction]] | None:
        """The redaction of one file, queued; None once stopped (the caller redacts it itself)."""
        future: Future[list[Redaction]] = Future()
        with self._lock:
            if self._stopped:
                return None
            # a new worker only when every one there is busy: a spare one costs ~0.3 s of CPU to load,
            # and the bundle would wait for it to end
            if self._tasks.qsize() >= self._idle and len(self._feeders) < self.jobs:
                self._add_feeder()
            self._tasks.put((future, str(src_path), str(target_path), rel_path))
        return future

    def _add_feeder(self) -> None:
        name = f"redaction-worker-{len(self._feeders)}"
        feeder = threading.Thread(target=self._feed, name=name, daemon=True)
        # Ctrl-C between listing the feeder and starting it left one that `stop` could not join (a run
        # interrupted as its window opened, while the workers started, ended in an internal error)
        with interrupts.held():
            self._feeders.append(feeder)
            self._idle += 1  # idle from now on: a file submitted next waits for it rather than start another
            feeder.start()

    def stop(self, *, cancel: bool) -> None:
        """Let the queued work finish (or, with `cancel`, drop it and kill the workers at once); idempotent.
        After it, no worker process is left."""
        with self._lock:
            self._stopped = True
            feeders = list(self._feeders)
            processes = list(self._processes)
        if cancel:
            for process in processes:
                process.kill()
            while True:
                try:
                    task = self._tasks.get_nowait()
                except queue.Empty:
                    break
                if task is not None:
                    task[0].set_exception(WorkerGone("stopped"))
        for _ in feeders:
            self._tasks.put(None)
        for feeder in feeders:
            feeder.join()

    def _feed(self, /) -> None:
        """One worker: start it, hand it tasks one at a time, end it when told (None) or when it dies."""
        process = self._start()
        try:
            while (task := self._tasks.get()) is not None:
                with self._lock:
                    self._idle -= 1
                try:
                    process = self._hand_over(process, task)
                finally:
                    with self._lock:
                        self._idle += 1
        finally:
            if process is not None:
                # between tasks, so nothing is half-written: no need to wait for a worker still loading
                # the rules, or for its teardown
                _end(process)

    def _hand_over(self, process: subprocess.Popen[bytes] | None,
                   task: tuple[Future[list[Redaction]], str, str, str]) -> subprocess.Popen[bytes] | None:
        """One task to the worker (started anew if there is none); the worker to use next."""
        future, src, target, rel = task
        if not future.set_running_or_notify_cancel():
            return process
        try:
            if process is None:
                process = self._start()
            if process is None:
                future.set_exception(WorkerGone("no redaction worker could be started"))
            elif not _answer(process, future, src, target, rel):
                process = _end(process)  # the next task gets a new worker
        except Exception as exc:  # noqa: BLE001 - no python, a garbled answer: the caller redacts it
            if not future.done():
                future.set_exception(WorkerGone(f"the redaction worker for {rel} failed: {exc}"))
            process = _end(process)
        return process

    def _start(self) -> subprocess.Popen[bytes] | None:
        with self._lock:
            if self._stopped:
                return None
            try:
                process = subprocess.Popen(
                    [sys.executable, "-m", "collector.bundle.workers"], cwd=_PACKAGE_ROOT,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    env={k: v for k, v in os.environ.items() if not k.startswith("APIGEE_")},  # no secrets
                )
            except OSError:
                return None  # no interpreter to start (frozen, removed): each task says so
            self._processes.append(process)
            return process


def _end(process: subprocess.Popen[bytes] | None) -> subprocess.Popen[bytes] | None:
    """Kill and reap a worker (one that cannot go on, or one between tasks at the end); None: the next task
    starts a new one."""
    if process is not None:
        process.kill()
        process.wait()
    return None


def _answer(process: subprocess.Popen[bytes], future: Future[list[Redaction]], src: str, target: str,
            rel: str) -> bool:
    """Send one task, settle `future` with the answer; False when the worker is gone."""
    stdin, stdout = process.stdin, process.stdout
    if stdin is None or stdout is None:
        raise ValueError("a worker is started with pipes")
    try:
        stdin.write(json.dumps({"src": src, "target": target, "rel": rel}).encode() + b"\n")
        stdin.flush()
        line = stdout.readline()
    except (OSError, ValueError):
        line = b""
    if not line:
        future.set_exception(WorkerGone(f"the redaction worker for {rel} ended"))
        return False
    reply = json.loads(line)
    if "found" in reply:
        future.set_result([Redaction(f["file"], f["rule"], f["line"], f["count"]) for f in reply["found"]])
    elif reply.get("error") == "unredactable":
        future.set_exception(UnredactableError(reply["message"]))
    elif reply.get("error") == "bundle":
        future.set_exception(BundleError(reply["message"]))
    else:
        future.set_exception(OSError(reply.get("message", "the redaction worker failed")))
    return True


def _serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """A worker's loop: one JSON task per line in, one JSON answer per line out, until the input ends."""
    for line in requests:
        task = json.loads(line)
        try:
            found = redact_file(task["src"], task["target"], task["rel"])
            reply: dict[str, object] = {"found": [r.to_json() for r in found]}
        except UnredactableError as exc:
            reply = {"error": "unredactable", "message": exc.message}
        except BundleError as exc:
            reply = {"error": "bundle", "message": exc.message}
        except (OSError, EOFError, ValueError) as exc:  # zlib.error is not one: it is caught below
            reply = {"error": "os", "message": str(exc)}
        except Exception as exc:  # noqa: BLE001 - any other failure is the caller's to report, not ours
            reply = {"error": "os", "message": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply).encode() + b"\n")
        replies.flush()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Workers start while the capture window is open: the first file, which comes later, finds the rules
    # built.
    load_rules()
    _serve(sys.stdin.buffer, sys.stdout.buffer)

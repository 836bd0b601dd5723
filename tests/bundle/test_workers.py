"""Redaction in worker processes (real `python -m collector.bundle.workers` children): the same bundle bytes
and redaction records as in-process, failures worded the same, and no worker or stray file left after an
abort."""

from __future__ import annotations

import gzip
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from collector.bundle.package import BundleWriter
from collector.bundle.redact import MAX_NESTING, UnredactableError
from collector.bundle.workers import MIN_WORKER_BYTES, RedactionWorkers
from collector.errors import BundleError
from tests.lab.sshd import child_pids
from tests.remote.conftest import processes_with

NAME = "apigee-diag-org-env-proxy-20261202T120000Z"
SECRET = "Zx9SecretToken42"
LOG = "hosts/mp1/system.log.gz"


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A gzip'd MP log larger than MIN_WORKER_BYTES on disk (random ids keep it from compressing away), with a
    secret on a few lines; and its text."""
    rng = random.Random(7)
    text = "".join(
        f"2026-12-02 12:00:{i % 60:02d},000 org:acme messageid:rrt-{rng.getrandbits(64):016x} INFO "
        + (f"Authorization: Bearer {SECRET}{i}\n" if i % 9973 == 0
           else f"step {rng.getrandbits(48):x} done\n")
        for i in range(60_000)
    ).encode()
    data = gzip.compress(text, compresslevel=1)
    assert len(data) >= MIN_WORKER_BYTES
    path = tmp_path_factory.mktemp("log") / "system.log.gz"
    path.write_bytes(data)
    return path, text


def _workers_of_this_process() -> list[int]:
    """Live `collector.bundle.workers` processes started by this test process."""
    return sorted(set(processes_with("collector.bundle.workers")) & set(child_pids(os.getpid())))


def test_a_worker_writes_what_the_run_itself_would(tmp_path: Path, big_log: tuple[Path, bytes]) -> None:
    # Given a large gzip'd log with secrets
    src, text = big_log
    # When one writer redacts it in a worker and another in its own process
    with BundleWriter(tmp_path / "a", NAME) as pooled, BundleWriter(tmp_path / "b", NAME) as inline:
        pooled.use_workers(2)
        assert pooled.copy_file_soon(LOG, src)
        assert not inline.copy_file_soon(LOG, src)  # no workers: the caller copies
        a = pooled.copy_file(LOG, src, collector="mp1")
        b = inline.copy_file(LOG, src, collector="mp1")
        # Then the bundle files, the redaction records and the file records are the same
        assert gzip.decompress(a.read_bytes()) == gzip.decompress(b.read_bytes())
        assert SECRET.encode() not in gzip.decompress(a.read_bytes())
        assert text.count(b"Bearer") == len(pooled.redactions) == len(inline.redactions)
        assert pooled.redactions == inline.redactions
        assert pooled.file_meta == inline.file_meta
        assert oct(a.stat().st_mode & 0o777) == "0o600"
        pooled.finalize()
    # And no worker outlives the bundle
    assert _workers_of_this_process() == []


def test_small_files_stay_in_the_run(tmp_path: Path) -> None:
    src = tmp_path / "small.log"
    src.write_bytes(b"token=abc\n")
    with BundleWriter(tmp_path / "out", NAME) as writer:
        writer.use_workers(2)
        assert not writer.copy_file_soon("hosts/mp1/small.log", src)
        assert _workers_of_this_process() == []


def test_a_file_a_worker_cannot_redact_fails_as_in_the_run(tmp_path: Path) -> None:
    # Given a log gzip'd more times than redaction unwraps, large enough for a worker
    data = os.urandom(MIN_WORKER_BYTES)
    for _ in range(MAX_NESTING + 2):
        data = gzip.compress(data, compresslevel=0)
    src = tmp_path / "deep.log.gz"
    src.write_bytes(data)
    with BundleWriter(tmp_path / "a", NAME) as pooled, BundleWriter(tmp_path / "b", NAME) as inline:
        pooled.use_workers(2)
        assert pooled.copy_file_soon(LOG, src)
        # Then the worker's refusal is the same error, with the same words, and nothing is left behind
        with pytest.raises(UnredactableError) as from_worker:
            pooled.copy_file(LOG, src)
        with pytest.raises(UnredactableError) as in_run:
            inline.copy_file(LOG, src)
        assert str(from_worker.value) == str(in_run.value)
        assert not pooled.path(LOG).exists()


def test_a_killed_worker_costs_nothing_but_time(tmp_path: Path, big_log: tuple[Path, bytes]) -> None:
    # Given a large log handed to a worker
    src, _ = big_log
    with BundleWriter(tmp_path / "out", NAME) as writer:
        writer.use_workers(2)
        assert writer.copy_file_soon(LOG, src)
        # When the worker is killed (out of memory, an operator's kill) while it works
        deadline = time.monotonic() + 10
        while not (pids := _workers_of_this_process()) and time.monotonic() < deadline:
            time.sleep(0.01)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        # Then the run redacts the file itself: the bundle still has it, redacted
        path = writer.copy_file(LOG, src, collector="mp1")
        assert SECRET.encode() not in gzip.decompress(path.read_bytes())
        assert {r.rule for r in writer.redactions} == {"authorization"}


def test_abort_ends_the_workers_before_the_directory_goes(tmp_path: Path,
                                                         big_log: tuple[Path, bytes]) -> None:
    # Given several large logs queued for the workers
    sources = [big_log[0]] * 4
    out = tmp_path / "out"
    writer = BundleWriter(out, NAME)
    writer.use_workers(2)
    for i, src in enumerate(sources):
        assert writer.copy_file_soon(f"hosts/mp{i}/system.log.gz", src)
    deadline = time.monotonic() + 10
    while not _workers_of_this_process() and time.monotonic() < deadline:
        time.sleep(0.01)
    # When the run is interrupted and aborts the bundle while they work
    writer.abort()
    # Then no worker is left and nothing reappears in --out afterwards
    assert _workers_of_this_process() == []
    time.sleep(0.5)
    assert list(out.iterdir()) == []
    # And a later copy is refused the way any write after abort is
    with pytest.raises(BundleError):
        writer.copy_file("hosts/mp0/system.log.gz", sources[0])


def test_no_interpreter_for_workers_costs_nothing_but_time(tmp_path: Path, big_log: tuple[Path, bytes],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a run whose interpreter cannot be started again (a frozen or removed executable)
    monkeypatch.setattr("sys.executable", str(tmp_path / "no-such-python"))
    src, _ = big_log
    with BundleWriter(tmp_path / "out", NAME) as writer:
        writer.use_workers(2)
        assert writer.copy_file_soon(LOG, src)
        # Then the file is redacted by the run itself, and no worker exists
        path = writer.copy_file(LOG, src, collector="mp1")
        assert SECRET.encode() not in gzip.decompress(path.read_bytes())
        assert _workers_of_this_process() == []


def test_workers_started_ahead_end_with_the_bundle(tmp_path: Path) -> None:
    # Given workers started before any file (the run starts them during the capture window)
    with BundleWriter(tmp_path / "out", NAME) as writer:
        writer.use_workers(2)
        writer.start_workers(5)  # five large files to come: as many workers as allowed
        deadline = time.monotonic() + 10
        while len(_workers_of_this_process()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(_workers_of_this_process()) == 2
        # When no file ever needs them and the bundle is finished
        writer.write_text("SUMMARY.md", "done\n")
        writer.finalize()
    # Then none is left
    assert _workers_of_this_process() == []


def test_no_more_workers_start_than_files_to_come(tmp_path: Path) -> None:
    with BundleWriter(tmp_path / "out", NAME) as writer:
        writer.use_workers(4)
        writer.start_workers(1)  # one MP: one log to come
        deadline = time.monotonic() + 10
        while not _workers_of_this_process() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert len(_workers_of_this_process()) == 1
    assert _workers_of_this_process() == []


def test_a_file_goes_to_an_idle_worker_rather_than_a_new_one(tmp_path: Path,
                                                             big_log: tuple[Path, bytes]) -> None:
    # Given one worker started ahead and idle, and room for four
    src, _ = big_log
    with BundleWriter(tmp_path / "out", NAME) as writer:
        writer.use_workers(4)
        writer.start_workers(1)
        deadline = time.monotonic() + 10
        while not _workers_of_this_process() and time.monotonic() < deadline:
            time.sleep(0.01)
        started = _workers_of_this_process()
        # When one large file comes
        assert writer.copy_file_soon(LOG, src)
        writer.copy_file(LOG, src, collector="mp1")
        # Then the idle worker redacted it and no other was started
        assert _workers_of_this_process() == started and len(started) == 1
        writer.write_text("SUMMARY.md", "done\n")
        writer.finalize()
    assert _workers_of_this_process() == []


def test_ctrl_c_while_workers_start_leaves_none_and_stop_still_works() -> None:
    # Given Ctrl-C arriving at any moment while the run starts its workers (it does so as the capture window
    # opens, which is when an operator may give up), When the run then stops them, Then that works and leaves
    # no worker: an interrupt between listing a worker's thread and starting it once made `stop` fail with
    # "cannot join thread before it is started", and the run end in an internal error.
    rng = random.Random(15)
    interrupted = 0
    for _ in range(40):
        workers = RedactionWorkers(2)
        timer = threading.Timer(rng.uniform(0, 0.0004), os.kill, (os.getpid(), signal.SIGINT))
        try:
            timer.start()
            workers.start(2)
            timer.join()
            time.sleep(0.01)  # the handler runs in this thread, at its next instruction
        except KeyboardInterrupt:
            interrupted += 1
        finally:
            timer.cancel()
            workers.stop(cancel=True)
    assert interrupted == 40
    deadline = time.monotonic() + 10
    while _workers_of_this_process() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _workers_of_this_process() == []

"""system.log collection on a real lab host: rotated plain and gzipped files, multi-MB, budget."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from collector.inventory import InventoryHost
from collector.remote import logs
from collector.remote.connection import ConnectionSettings, HostError, open_host
from tests.lab.sshd import SshHosts

MESSAGE_ID = "rrt-07a1b2c3d4e5f6-a-gce-987-654"
OTHER_ID = "rrt-other-message-1"


def _lines(tag: str, count: int) -> bytes:
    return b"".join(
        b"2026-11-27 09:00:00,000 org:o env:e api:p rev:1 messageid:%s-%08d INFO filler text\n"
        % (tag.encode(), i)
        for i in range(count)
    )


@pytest.fixture(scope="module")
def rotated_logs(lab: SshHosts) -> Iterator[dict[str, bytes]]:
    """mp2's system.log (newest, ~2.5 MB), system.log.1 (plain) and system.log.2.gz (oldest), ids in each."""
    log = lab.host("mp2").system_log
    log.parent.mkdir(parents=True, exist_ok=True)
    hit = f"2026-11-27 09:00:01,000 messageid:{MESSAGE_ID} ERROR handshake failed: bad_certificate\n".encode()
    other = f"2026-11-27 09:00:02,000 messageid:{OTHER_ID} ERROR other\n".encode()
    contents = {
        "system.log.2.gz": _lines("old", 20_000) + hit + _lines("old-after", 50),
        "system.log.1": _lines("mid", 20_000) + other + _lines("mid-after", 50),
        "system.log": _lines("new", 30_000) + hit + _lines("new-after", 5),
    }
    now = time.time()
    for age, (name, data) in zip((7200, 3600, 0), contents.items(), strict=True):
        path = log.with_name(name)
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        os.utime(path, (now - age, now - age))
    yield contents
    for name in contents:
        log.with_name(name).unlink()


@pytest.fixture
def mp2(lab_inventory) -> InventoryHost:  # type: ignore[no-untyped-def]
    return next(h for h in lab_inventory.hosts if h.name == "mp2")


@pytest.mark.lab
def test_list_logs_newest_first_with_uncompressed_sizes(
    mp2: InventoryHost, settings: ConnectionSettings, rotated_logs: dict[str, bytes]
) -> None:
    with open_host(mp2, settings) as connection:
        files = logs.list_logs(connection)
    assert [Path(f.path).name for f in files] == ["system.log", "system.log.1", "system.log.2.gz"]
    assert [f.size for f in files] == [len(rotated_logs[Path(f.path).name]) for f in files]


@pytest.mark.lab
def test_excerpt_survives_binary_bytes_in_the_log(
    mp2: InventoryHost, settings: ConnectionSettings, rotated_logs: dict[str, bytes], tmp_path: Path
) -> None:
    # Given a live system.log with a NUL byte before the failing line (GNU grep then calls it binary)
    log = mp2.system_log  # the lab host root is local, so the test can write the log directly
    size = Path(log).stat().st_size
    with Path(log).open("ab") as handle:
        handle.write(b"2026-11-27 09:00:03,000 WARN BIN - \x00\x01\xff\n")
        handle.write(f"2026-11-27 09:00:04,000 messageid:{OTHER_ID} ERROR after the binary line\n".encode())
    try:
        # When the excerpt is taken
        with open_host(mp2, settings) as connection:
            files = logs.list_logs(connection)
            logs.write_excerpt(connection, files, [OTHER_ID], 1, tmp_path / "excerpt")
    finally:
        os.truncate(log, size)
    # Then the lines come through as text, not as "binary file matches"
    text = (tmp_path / "excerpt").read_bytes()
    assert b"after the binary line" in text and b"binary file matches" not in text


@pytest.mark.lab
def test_excerpt_covers_plain_and_gzipped_files_with_context(
    mp2: InventoryHost, settings: ConnectionSettings, rotated_logs: dict[str, bytes], tmp_path: Path
) -> None:
    with open_host(mp2, settings) as connection:
        files = logs.list_logs(connection)
        result = logs.write_excerpt(connection, files, [MESSAGE_ID, OTHER_ID], 3, tmp_path / "excerpt")
    text = (tmp_path / "excerpt").read_text()
    assert result.exit_code == 0
    assert text.count(MESSAGE_ID) == 2 and text.count(OTHER_ID) == 1
    # chronological: the gzipped rotation first, labelled with its own name; 3 lines of context each side
    assert text.index("system.log.2.gz:") < text.index("system.log.1:") < text.index("system.log:")
    assert "messageid:old-00019999" in text and "messageid:old-after-00000002" in text
    assert "messageid:old-00019996" not in text


@pytest.mark.lab
def test_excerpt_without_a_match_is_empty_not_an_error(
    mp2: InventoryHost, settings: ConnectionSettings, rotated_logs: dict[str, bytes], tmp_path: Path
) -> None:
    with open_host(mp2, settings) as connection:
        result = logs.write_excerpt(
            connection, logs.list_logs(connection), ["rrt-nowhere"], 3, tmp_path / "ex"
        )
    assert result.exit_code == 1 and (tmp_path / "ex").read_bytes() == b""


@pytest.mark.lab
@pytest.mark.parametrize("budget", [1_000_000, 2_600_000, 100_000_000])
def test_log_within_budget_keeps_the_newest_data(
    mp2: InventoryHost,
    settings: ConnectionSettings,
    rotated_logs: dict[str, bytes],
    tmp_path: Path,
    budget: int,
) -> None:
    everything = rotated_logs["system.log.2.gz"] + rotated_logs["system.log.1"] + rotated_logs["system.log"]
    with open_host(mp2, settings) as connection:
        selection = logs.write_log(connection, logs.list_logs(connection), budget, tmp_path / "system.log.gz")
    kept = gzip.decompress((tmp_path / "system.log.gz").read_bytes())
    assert kept == everything[-budget:]
    assert selection.total_bytes == len(kept)
    assert (tmp_path / "system.log.gz").stat().st_size < len(kept) / 5  # compressed on the wire


@pytest.mark.lab
def test_missing_log_is_reported(mp2: InventoryHost, settings: ConnectionSettings) -> None:
    with (
        open_host(replace(mp2, system_log="/nonexistent/system.log"), settings) as connection,
        pytest.raises(HostError) as caught,
    ):
        logs.list_logs(connection)
    assert caught.value.reason == "log-missing" and "/nonexistent/system.log" in caught.value.message


@pytest.mark.parametrize(
    ("sizes", "budget", "expected_files", "cut"),
    [
        ([100, 50, 25], 1000, ["c", "b", "a"], 0),  # everything fits
        ([100, 50, 25], 100, ["a"], 0),  # exactly the newest file
        ([100, 50, 25], 120, ["b", "a"], 20),  # the newest, and the last 20 bytes of the one before
        ([100, 50, 25], 10, ["a"], 10),  # part of the newest file only
        ([], 10, [], 0),
    ],
)
def test_select_logs(sizes: list[int], budget: int, expected_files: list[str], cut: int) -> None:
    # Given files newest first (a, b, c) / When the budget is applied
    files = [
        logs.LogFile(path=name, mtime=100 - i, size=size)
        for i, (name, size) in enumerate(zip("abc"[: len(sizes)], sizes, strict=True))
    ]
    selection = logs.select_logs(files, budget)
    # Then whole newer files are kept, oldest first, the oldest kept one cut to what was left
    assert [f.path for f in selection.files] == expected_files
    assert selection.first_file_bytes == cut
    assert selection.total_bytes == min(budget, sum(sizes))


def test_parse_log_listing_orders_by_time_then_rotation_number() -> None:
    # Given a listing where rotations share an mtime / When parsed / Then system.log, .1, .2.gz; junk ignored
    text = "5\t10\t/l/system.log.2.gz\n5\t10\t/l/system.log.1\n5\t3\t/l/system.log\nnot a line\n"
    assert [f.path for f in logs.parse_log_listing(text)] == [
        "/l/system.log",
        "/l/system.log.1",
        "/l/system.log.2.gz",
    ]

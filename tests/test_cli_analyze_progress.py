"""`collect analyze` shows its reading progress on a terminal (a real pty), nothing when stderr is piped."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

from tests.tls import rewrite

ROOT = Path(__file__).resolve().parents[1]
COLLECT = ROOT / ".venv" / "bin" / "collect"
CAPTURE = "tests/fixtures/captures/healthy-java-tls12.pcap"


def _stderr_on_a_pty(*args: str) -> tuple[int, str]:
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen([str(COLLECT), "analyze", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=follower, env=env)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return process.wait(timeout=60), seen.decode("utf-8", "replace")


def test_progress_shows_on_a_terminal() -> None:
    # Given a real capture, When analyzed with stderr on a pseudo-terminal
    status, stderr = _stderr_on_a_pty(CAPTURE, "--json")
    # Then the reading of the capture is shown there
    assert status == 0
    assert "reading healthy-java-tls12.pcap" in stderr


def test_progress_shows_for_a_pcapng_too(tmp_path: Path) -> None:
    # Given the same capture saved as pcapng (its own reading loop), When analyzed on a pseudo-terminal
    linktype, frames = rewrite.read_pcap(ROOT / CAPTURE)
    path = rewrite.write_pcapng(tmp_path / "saved.pcapng", [(0, frame) for frame in frames], [linktype])
    status, stderr = _stderr_on_a_pty(str(path), "--json")
    # Then its reading is shown too
    assert status == 0
    assert "reading saved.pcapng" in stderr


def test_no_progress_when_stderr_is_piped() -> None:
    # Given the same capture, When stderr is a pipe
    result = subprocess.run([str(COLLECT), "analyze", CAPTURE, "--json"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    # Then stderr stays empty and stdout is the JSON alone
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.startswith("{")

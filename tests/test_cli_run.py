"""`collect run` / `collect --org …` as a user calls it: real process, real files, exit codes, one
JSON object."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from collector.cli import cli

SECRET = "cli-Pw-SECRET-7"


def _collect(*args: str, env: dict[str, str] | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("APIGEE_")}
    environment.update(env or {})
    environment["HOME"] = str(cwd or Path.cwd())  # no ~/.netrc or config file of the machine leaks in
    return subprocess.run([sys.executable, "-m", "collector", *args], env=environment, cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_help_explains_every_option_and_has_examples() -> None:
    # Given the run command, When --help is read, Then every option has help text and both examples are there.
    command = cli.commands["run"]
    for param in command.params:
        if param.name != "help":
            assert getattr(param, "help", None), f"{param.name} has no help"
    done = _collect("run", "--help")
    assert done.returncode == 0
    assert "--public-cloud" in done.stdout and "--inventory hosts.yaml" in done.stdout
    assert "Exit codes" in done.stdout


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--env", "e", "--proxy", "p", "--token", "t"], {}, "--org is required"),
        (["--org", "o/x", "--env", "e", "--proxy", "p", "--token", "t"], {}, "--org 'o/x'"),
        (["--org", "o", "--env", "e", "--proxy", "p", "--token", "t", "--backend", "nope"], {},
         "--backend 'nope'"),
        (["--org", "o", "--env", "e", "--proxy", "p", "--username", "ops"], {}, "not a terminal"),
        (["--org", "o", "--env", "e", "--proxy", "p"], {}, "no management API credentials"),
        (["--org", "o", "--env", "e", "--proxy", "p", "--token", "t", "--inventory", "/nonexistent.yaml"], {},
         "not found (--inventory)"),
        (["--org", "o", "--env", "e", "--proxy", "p", "--token", "t", "--capture-seconds", "x"], {},
         "--capture-seconds"),
    ],
    ids=["no-org", "bad-org", "bad-backend", "password-no-tty", "no-credentials",
         "no-inventory", "bad-seconds"],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], env: dict, message: str) -> None:
    # Given bad flags, When collect runs, Then it exits 2 with one line naming the flag, and writes nothing.
    done = _collect(*args, "--out", str(tmp_path), env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.glob("apigee-diag-*"))


def test_credentials_refused_exit_2(tmp_path: Path) -> None:
    # Given a management API that refuses the credentials (a real local server answering 401), Then exit 2.
    import http.server
    import threading

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = _collect("--org", "o", "--env", "e", "--proxy", "p",
                        "--mgmt-url", f"http://127.0.0.1:{server.server_address[1]}",
                        "--username", "ops", "--out", str(tmp_path),
                        env={"APIGEE_PASSWORD": SECRET}, cwd=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 2, done.stderr
    assert SECRET not in done.stderr + done.stdout
    assert not list(tmp_path.glob("apigee-diag-*")) and not list(tmp_path.glob(".apigee-diag-*"))


def test_no_api_run_without_hosts_writes_a_bundle_and_one_json(tmp_path: Path) -> None:
    # Given --no-api with a backend nobody listens on and no probe, When run with --json,
    # Then exit 0, one JSON object on stdout naming the bundle, files 0600 inside the tar.
    port = _closed_port()
    done = _collect("--no-api", "--backend", f"127.0.0.1:{port}", "--no-probe", "--capture-seconds", "1",
                    "--out", str(tmp_path), "--case", "CASE-1", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["exit_code"] == 0 and result["complete"] is True
    assert result["diagnosis"]["cause"] == "no-tls-handshake"
    bundle = Path(result["bundle"])
    assert bundle.exists() and "CASE-1" in bundle.name and oct(bundle.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(bundle) as tar:
        files = [m for m in tar.getmembers() if m.isfile()]
        assert all(m.mode == 0o600 for m in files)
        names = {m.name.split("/", 1)[1] for m in files}
    assert {"SUMMARY.md", "manifest.json", "analysis/diagnosis.json", "trace/session.json"} <= names
    verify = _collect("verify", str(bundle), cwd=tmp_path)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_probe_failure_makes_the_bundle_partial(tmp_path: Path) -> None:
    # Given --no-api and no capture (so the probe runs) against a closed port, Then exit 3 and the text output
    # names the failed step and the bundle.
    port = _closed_port()
    done = _collect("--no-api", "--backend", f"127.0.0.1:{port}", "--capture-seconds", "1",
                    "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "failed: " in done.stdout and "bundle: " in done.stdout and "(partial)" in done.stdout


def test_environment_and_config_file_feed_the_run(tmp_path: Path) -> None:
    # Given the backend in the config file and --dry-run, When run, Then the plan shows it (no SSH, no API).
    config = tmp_path / "collect.yaml"
    config.write_text(f"no-api: true\nbackend: 127.0.0.1:{_closed_port()}\ncapture-seconds: 2\n")
    done = _collect("run", "--config", str(config), "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "dry run: no-org/no-env/no-proxy (no management API)" in done.stdout
    assert "window: 2 s" in done.stdout


def test_terminal_progress_shows_hosts_steps_and_countdown() -> None:
    # Given a terminal, When a run reports progress, Then each host x step is one line and the window
    # counts down.
    import io

    from rich.console import Console

    from collector.cli.terminal_progress import RichObserver
    from collector.progress import Stage
    from collector.steps import StepResult, StepStatus

    buffer = io.StringIO()
    observer = RichObserver(Console(file=buffer, force_terminal=True, width=120, color_system=None))
    observer.stage_started(Stage.CONNECT, "mp1, backend")
    observer.step_finished(StepResult("mp1", "connect", StepStatus.OK, seconds=0.4))
    observer.step_finished(StepResult("backend", "connect", StepStatus.FAILED, "unreachable",
                                      "backend -> connect: refused"))
    for left in (3, 2, 1, 0):
        observer.window_tick(left, 3)
    text = buffer.getvalue()
    assert "connect" in text and "mp1" in text and "backend -> connect: refused" in text
    assert "capture window closed after 3 s" in text


_WHICH_OBSERVER = (
    "import sys; from collector.cli.run import make_observer; "
    "print(type(make_observer()).__name__, 'rich' in sys.modules)"
)


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_progress_is_rich_on_a_terminal_and_rich_loads_only_there(terminal: bool) -> None:
    # Given stderr on a real pseudo-terminal, or on a pipe
    main_end, other_end = os.openpty() if terminal else os.pipe()
    try:
        done = subprocess.run([sys.executable, "-c", _WHICH_OBSERVER], stderr=other_end,
                              stdout=subprocess.PIPE, text=True, timeout=60, check=True)
    finally:
        os.close(main_end)
        os.close(other_end)
    # Then a terminal gets the rich observer; a pipe gets plain lines, without rich ever imported
    assert done.stdout.split() == (["RichObserver", "True"] if terminal else ["PlainObserver", "False"])


def test_failing_token_command_is_a_usage_error(tmp_path: Path) -> None:
    # Given a token command that fails, When collect runs, Then exit 2 naming the command, and nothing
    # is written.
    done = _collect("--org", "o", "--env", "e", "--proxy", "p", "--mgmt-url", "http://127.0.0.1:1",
                    "--token-command", "false", "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "token command 'false'" in done.stderr
    assert not list(tmp_path.glob("*apigee-diag-*"))


def test_dry_run_json_is_one_object_with_the_plan(tmp_path: Path) -> None:
    # Given --dry-run --json without the API, Then one JSON object whose plan lists the backend and no hosts.
    port = _closed_port()
    done = _collect("--no-api", "--backend", f"127.0.0.1:{port}", "--dry-run", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)["plan"]
    assert plan["backends"] == [{"host": "127.0.0.1", "port": port, "sni": None}] and plan["hosts"] == []

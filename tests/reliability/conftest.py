"""Reliability suite helpers: run the real `collect` process against the lab, open what it wrote, and look at
the lab hosts afterwards (tcpdump processes, run directories, files outside the output directory)."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector import layout
from collector.cli import main
from tests.e2e.conftest import lab_roots_kept_traversable, resolved_inventory
from tests.lab.lab import Lab
from tests.lab.sshd import NOSUDO_USER, SshHosts, SshHostSpec, child_pids, start_ssh_hosts

ROOT = Path(__file__).resolve().parents[2]
COLLECT = ROOT / ".venv" / "bin" / "collect"
RUN_DIR_PREFIX = "apigee-collector-"
CAPTURE_MARGIN_SECONDS = 120  # collector/run/stages.py: the remote tcpdump outlives the window by this much
# Extra SSH hosts, one fault each, beside the lab's healthy mp1, mp2 and backend (addresses no other
# test uses).
FAULT_HOSTS = {
    "mp-down": "127.0.8.11",
    "mp-wrongkey": "127.0.8.12",
    "mp-newkey": "127.0.8.13",
    "mp-unknown": "127.0.8.14",
    "mp-notcpdump": "127.0.8.15",
    "mp-nosudo": "127.0.8.16",
    "mp-full": "127.0.8.17",
    "mp-drop": "127.0.8.18",
}


def command() -> list[str]:
    """The installed `collect` entry point (the module when the venv script is missing)."""
    return [str(COLLECT)] if COLLECT.exists() else [sys.executable, "-m", "collector"]


@dataclass
class Run:
    """One finished `collect` process and what it left in its output directory."""

    returncode: int
    stdout: str
    stderr: str
    out: Path

    @property
    def terminal(self) -> str:
        return self.stdout + self.stderr

    @property
    def archives(self) -> list[Path]:
        return sorted(self.out.glob("apigee-diag-*.tar.gz"))

    @property
    def bundle(self) -> Path:
        archives = self.archives
        assert len(archives) == 1, (archives, self.terminal)
        return archives[0]

    def members(self) -> dict[str, tarfile.TarInfo]:
        """Bundle path (without the top folder) -> tar member, directories included."""
        with tarfile.open(self.bundle) as tar:
            return {m.name.partition("/")[2]: m for m in tar.getmembers() if "/" in m.name}

    def read(self, rel: str) -> bytes:
        with tarfile.open(self.bundle) as tar:
            member = next(m for m in tar.getmembers() if m.name.partition("/")[2] == rel)
            handle = tar.extractfile(member)
            assert handle is not None, rel
            return handle.read()

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.read(layout.MANIFEST))

    def steps(self) -> list[dict[str, Any]]:
        return list(self.manifest()["steps"])

    def step(self, host: str, step: str) -> dict[str, Any]:
        found = [s for s in self.steps() if s["host"] == host and s["step"] == step]
        assert found, (host, step, [(s["host"], s["step"], s["status"]) for s in self.steps()])
        return found[0]

    def failed(self, host: str) -> list[dict[str, Any]]:
        return [s for s in self.steps() if s["host"] == host and s["status"] == "failed"]

    def leftovers(self) -> list[str]:
        """Anything in the output directory that is not a finished bundle (partial or raw working dirs)."""
        return sorted(p.name for p in self.out.iterdir() if p.name.startswith("."))


def bundle_texts(archive: Path) -> dict[str, bytes]:
    """Every bundle file's bytes, with gzip files and zip members opened too (a secret must not
    hide there)."""
    texts: dict[str, bytes] = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            handle = tar.extractfile(member)
            assert handle is not None
            data = handle.read()
            texts[member.name] = data
            if data[:2] == b"\x1f\x8b":
                texts[member.name + "!gunzip"] = gzip.decompress(data)
            if data[:4] == b"PK\x03\x04":
                with zipfile.ZipFile(io.BytesIO(data)) as archive_zip:
                    for info in archive_zip.infolist():
                        texts[f"{member.name}!{info.filename}"] = archive_zip.read(info)
    return texts


def no_traceback(run: Run) -> None:
    assert "Traceback" not in run.terminal, run.terminal


def run_collect(lab: Lab | None, out: Path, *args: str, env: dict[str, str] | None = None,
                timeout: float = 180) -> Run:
    """`collect ARGS --out OUT` with no terminal on stdin; the lab's API password in the environment."""
    out.mkdir(parents=True, exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("APIGEE_")}
    environment["HOME"] = str(out.parent)
    if lab is not None:
        environment["APIGEE_PASSWORD"] = lab.password
    environment.update(env or {})
    argv = [*command(), *args, "--out", str(out)]
    if lab is None:
        done = subprocess.run(argv, env=environment, cwd=out, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, check=False)
    else:
        with lab_roots_kept_traversable(lab):
            done = subprocess.run(argv, env=environment, cwd=out, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=timeout, check=False)
    return Run(done.returncode, done.stdout, done.stderr, out)


def base_args(lab: Lab, inventory: Path | None = None, known_hosts: Path | None = None,
              capture_seconds: int = 2) -> list[str]:
    return ["--org", lab.org, "--env", lab.env, "--proxy", lab.proxy, "--mgmt-url", str(lab.emulator_url),
            "--username", lab.username, "--inventory", str(inventory or resolved_inventory(lab)),
            "--known-hosts", str(known_hosts or lab.known_hosts), "--capture-seconds", str(capture_seconds)]


def during_window(lab: Lab, out: Path, args: list[str], action: Callable[[subprocess.Popen[str]], None],
                  env: dict[str, str] | None = None) -> Run:
    """Start collect, call `action(process)` once the capture window is open, and wait for the run to end."""
    out.mkdir(parents=True, exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("APIGEE_")}
    environment.update(HOME=str(out.parent), APIGEE_PASSWORD=lab.password, **(env or {}))
    with lab_roots_kept_traversable(lab):
        process = subprocess.Popen([*command(), *args, "--out", str(out)], env=environment, cwd=out,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        assert process.stderr is not None
        seen: list[str] = []
        deadline = time.monotonic() + 90
        for line in process.stderr:  # plain progress lines: stderr is not a terminal
            seen.append(line)
            if "collect: reproduce:" in line or time.monotonic() > deadline:
                break
        time.sleep(0.5)  # the captures are listening; the reproduction is under way
        action(process)
        stdout, stderr = process.communicate(timeout=150)
    return Run(process.returncode, stdout, "".join(seen) + stderr, out)


def invoke(argv: list[str]) -> tuple[int, str]:
    """`collect ARGV` in this process (the console entry point itself): exit code and all output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        else:
            code = 0
    return code, out.getvalue() + err.getvalue()


def clean_output(output: str) -> None:
    assert "Traceback" not in output, output
    assert "internal error" not in output, output


# --- what the hosts hold ------------------------------------------------------------------------------------

def capture_dirs(hosts: SshHosts) -> list[Path]:
    return [Path(os.path.realpath(h.capture_dir)) for h in hosts.hosts]


def run_dirs(dirs: list[Path]) -> list[Path]:
    """Our per-run directories left in the hosts' capture dirs."""
    return [p for d in dirs if d.is_dir() for p in d.glob(RUN_DIR_PREFIX + "*")]


@dataclass(frozen=True)
class RemoteCapture:
    """A tcpdump found running for one of the given capture dirs, and the `timeout` wrapping it."""

    pid: int
    argv: tuple[str, ...]
    wrapper_pid: int | None
    wrapper_argv: tuple[str, ...]

    @property
    def limit_seconds(self) -> int | None:
        """The time limit of its `timeout` wrapper (`timeout -s INT -k 10 N tcpdump ...`)."""
        argv = list(self.wrapper_argv)
        for index, word in enumerate(argv):
            if Path(word).name == "tcpdump" or word.endswith("/tcpdump"):
                previous = argv[index - 1] if index else ""
                return int(previous) if previous.isdigit() else None
        return None


def running_captures(dirs: list[Path]) -> list[RemoteCapture]:
    """tcpdump processes writing into any of `dirs` (ours: the -w path is inside a capture dir)."""
    found = []
    prefixes = [str(d) + "/" for d in dirs]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = tuple(a.decode(errors="replace")
                         for a in (proc / "cmdline").read_bytes().split(b"\0")[:-1])
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if not argv or not Path(argv[0]).name.startswith("tcpdump") or "-w" not in argv:
            continue
        target = argv[argv.index("-w") + 1] if argv.index("-w") + 1 < len(argv) else ""
        if not any(target.startswith(p) for p in prefixes):
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        try:
            parent_argv = tuple(a.decode(errors="replace")
                                for a in Path(f"/proc/{parent}/cmdline").read_bytes().split(b"\0")[:-1])
        except OSError:
            parent_argv = ()
        is_timeout = bool(parent_argv) and Path(parent_argv[0]).name == "timeout"
        found.append(RemoteCapture(int(proc.name), argv, parent if is_timeout else None,
                                   parent_argv if is_timeout else ()))
    return found


def stop_leftover_captures(dirs: list[Path]) -> None:
    """Clean up after a SIGKILLed or disconnected run: stop its captures (by PID) and remove its run dirs."""
    for capture in running_captures(dirs):
        for pid in filter(None, (capture.wrapper_pid, capture.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while running_captures(dirs) and time.monotonic() < deadline:
        time.sleep(0.1)
    for directory in run_dirs(dirs):
        subprocess.run(["rm", "-rf", "--", str(directory)], check=False)


# --- a lab with one fault per extra host --------------------------------------------------------------------

@dataclass
class FaultLab:
    """The shared lab plus the fault hosts, one inventory naming all of them and a known_hosts to match."""

    lab: Lab
    hosts: SshHosts
    inventory: Path
    known_hosts: Path

    @property
    def all_capture_dirs(self) -> list[Path]:
        lab_hosts = self.lab.ssh
        assert lab_hosts is not None
        return capture_dirs(lab_hosts) + capture_dirs(self.hosts)


def _log_line(message_id: str, text: str) -> str:
    return (f"2026-11-27 10:00:00,000 org:lab-org env:test api:mtls-proxy rev:3 messageid:{message_id} "
            f"NIOThread@0 INFO X - {text}\n")


@pytest.fixture(scope="session")
def fault_lab(lab_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultLab]:
    """`ca-mismatch` lab + eight fault hosts: down, wrong client key, changed host key, unknown host key, no
    tcpdump, no sudo, full capture dir, and one whose SSH link the test drops mid-capture."""
    lab = lab_factory("ca-mismatch")
    root = tmp_path_factory.mktemp("reliability-faults")
    specs = [SshHostSpec(name, address, "message-processor", root / "roots" / name)
             for name, address in FAULT_HOSTS.items()]
    with start_ssh_hosts(root / "ssh", specs) as hosts:
        for host in hosts.hosts:
            host.system_log.write_text(_log_line("rrt-none", "quiet host"))
        hosts.fill_capture_dir("mp-full")
        inventory = yaml.safe_load(resolved_inventory(lab).read_text())
        for host in hosts.hosts:
            entry: dict[str, Any] = {"address": host.address, "port": host.port, "role": host.role,
                                     "system_log": os.path.realpath(host.system_log),
                                     "capture_dir": os.path.realpath(host.capture_dir),
                                     "identity_file": str(hosts.client_key)}
            if host.name == "mp-wrongkey":
                entry["identity_file"] = str(hosts.wrong_client_key())
            if host.name == "mp-notcpdump":
                entry["tcpdump"] = "/nonexistent/tcpdump"
            if host.name == "mp-nosudo":
                entry["user"] = NOSUDO_USER
            inventory["hosts"][host.name] = entry
        inventory_path = root / "inventory.yaml"
        inventory_path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        known = hosts.write_known_hosts_with_wrong_key(root / "fault_known_hosts", ["mp-newkey"])
        unknown = hosts.host("mp-unknown")
        lines = [line for line in known.read_text().splitlines()
                 if line and not line.startswith(f"[{unknown.address}]:{unknown.port} ")]
        lines += Path(str(lab.known_hosts)).read_text().splitlines()
        known_hosts = root / "known_hosts"
        known_hosts.write_text("\n".join(lines) + "\n")
        hosts.stop_host("mp-down")
        yield FaultLab(lab, hosts, inventory_path, known_hosts)
        stop_leftover_captures(capture_dirs(hosts))


def sshd_sessions(hosts: SshHosts, name: str) -> list[int]:
    """PIDs of the per-connection sshd processes of one lab host (children of its listening sshd)."""
    return child_pids(hosts._procs[name].pid)  # the lab keeps no other handle on a host's sshd


ROW_ID = re.compile(r"(?<![A-Za-z0-9])([FHSKT]\d{2})(?![0-9])", re.IGNORECASE)

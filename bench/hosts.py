"""Benchmark: host-side collection on 1 and 16 lab hosts — `collect run --no-api` vs plain parallel OpenSSH vs
ansible-core (issue 15, item 3; issue 5).

How to run (from the repository root, as root, after scripts/setup.sh; about 10 minutes):

    .venv/bin/python -m bench.hosts [--hosts 1 16] [--window 5] [--log-mb 8] [--repeat 3]
                                    [--before DIR] [--ansible-forks 0] [--skip ours before plain ansible]

What it does, for each host count N:
1. Starts N real sshd lab hosts on 127.0.6.x (tests/lab/sshd.py): N-1 message processors and one backend (one
   message processor when N = 1). Every MP gets its own copy of one --log-mb MiB synthetic system.log
   (bench/log_extraction.py builds it once in /var/tmp/apigee-collector-bench).
2. Runs, --repeat rounds interleaved (ansible once):
   - plain:   the issue's reference: OpenSSH `ssh` to every host at once, one connection per step: start
              tcpdump detached (sudo); after the window SIGINT it, wait for its exit and `cat` the pcap;
              `tail -c 50 MB | gzip -1` of the log; the facts script;
   - ours:    `collect run --no-api --capture-seconds W --no-probe` in a fresh interpreter, doing all a run
              does: connect (host keys checked), sudo check, start + listening check, the window, the
              lossless stop (commands.py), sha256 of each file on the host and on arrival, framed output,
              trust-file checks, cleanup, logs (newest 50 MB gzip -1), facts, then analysis and the bundle;
   - before:  the same with the collector package from --before DIR (another version, e.g. main's:
              `git archive main collector templates | tar -x -C DIR`): a before/after from one run;
   - ansible: `ansible-playbook`, forks = hosts, the very same command lines (commands.py) through the
              `command` module, `fetch` for the files, ControlPersist and pipelining on.
   The captures filter on the backend port (BACKEND_PORT), as `collect run` does when the backend has one
   port. No message-id excerpt: a --no-api run without a reproduction has no id to look for.
3. Checks each produced a readable pcap per host and prints the overhead beyond the capture window: for ours
   (and before) the host stages, from its `connect` progress line to its `analyze` line on stderr (the span
   holding all the host work the plain way does, and more), and beside it its whole run (interpreter start
   to bundle); for plain and ansible their whole run. Medians over the rounds, and the ratio to plain.
Not part of the test suite (timings are not tests); numbers depend on the machine's load, which on this shared
2-core machine was 5-14 (other helpers' suites): compare within one run only.

Measured here (2026-12-02, 2 vCPU shared by the collector, every lab sshd/shell/sudo/gzip/tcpdump and other
helpers' suites; window 5 s, --log-mb 2, 3 rounds, ansible once, `before` = main at d6b5802, this branch's
base), overhead beyond the window in seconds, median (min-max); load = 1-min load average. Two runs:

    first run (load ~2)                                        last run, main merged in (load 4-10)
    hosts  method    overhead          / plain  whole run      overhead          / plain  whole run
        1  plain     1.20 (1.06-1.42)    1.00                  2.51 (2.39-2.88)    1.00
        1  ours      0.91 (0.77-0.98)    0.76     2.16         1.14 (1.08-1.70)    0.45     5.07
        1  before    2.11 (1.93-2.11)    1.76     3.38         2.13 (1.91-2.48)    0.85     4.92
        1  ansible   6.41                5.36                 12.17                4.85
       16  plain     5.81 (4.85-7.44)    1.00                  6.45 (5.84-8.48)    1.00
       16  ours      3.01 (2.80-3.03)    0.52     8.39         3.38 (2.99-3.43)    0.52     9.04
       16  before    3.84 (3.75-3.86)    0.66     9.22         3.72 (3.68-3.99)    0.58     9.18
       16  ansible  21.99                3.78                 25.74                3.99
    Targets: <= 1.5 s at one host (1.14 s, 0.91 s): met; <= 1.0x plain at 16 hosts (0.52x): met.

    slowest host per step (median s), first run  connect  start  stop(+fetch, cleanup)  logs  facts
        1 host   ours                               0.08   0.22                   0.23  0.20   0.17
        1 host   before                             0.11   0.22                   1.45  0.15   0.15
       16 hosts  ours                               0.19   0.75                   0.80  0.53   0.53
       16 hosts  before                             0.19   0.56                   1.81  0.51   0.55

What moved the figures (issue 15, item 3):
- The stop no longer waits >= 1.2 s for the capture file to stop growing (main's settle). It asks tcpdump for
  its counters (SIGUSR1) and sends SIGINT once the kernel's "received by filter" count has been still for
  1.2 s (a TPACKET_V3 block is handed over at most ~1 s after its first packet: measured max 0.995 s) and
  tcpdump sleeps in poll; check-capture records the count at the start, so a capture idle since then stops at
  once. Stop step 1.45 -> 0.23 s at one host, 1.81 -> 0.80 s at 16; overhead 2.11 -> 0.91 s at one host,
  3.84 -> 3.01 s at 16 (last run: 2.13 -> 1.14 s and 3.72 -> 3.38 s). Lossless: tests/remote/test_capture.py
  sends 300 packets right before the stop and finds all of them (an immediate SIGINT, as the plain way does,
  kept ~230; of a single packet, 0).
- Late in the window (2 s before its end) every capture notes its count again, in the background. Not seen
  above (the bench's captures see no traffic): with a reproduction's 100 packets early in a 5 s window the
  stop took 1.45 s without that mark and 0.13 s with it (8 rounds each, all packets kept).
- check-capture waits on the host for "listening" (20 ms steps) instead of the collector polling every
  100 ms over SSH, and records the count detached: within noise here (start 0.22 s either way at one host).
- Not done / not needed for the targets: SSH connects during earlier stages (a --no-api run has none
  before connect), fewer round trips per host (each command keeps its own sudo, frame, hash and audit line),
  paramiko cipher choice (the collector's CPU is not the bound at these sizes).
On 2 cores the lab hosts' CPU bounds the 16-host figures. Ours spends more of it than plain (sudo, framing,
sha256, trust checks for every command) and than before (16 hosts: 5.9 s against 4.1 s; with a 3 s window,
which has no mark, 5.2 against 4.3 s: the mark is ~0.8 s of it, the counters and the host-side listening
loop the rest), and its start step's slowest host is 0.2-0.35 s slower than before's at 16 hosts (0.88 vs
0.53 s in the last run; equal at one host): not yet explained; the net is still lower. Plain varies most
(16 OpenSSH clients doing sntrup761 key exchanges at once: 4.9-8.5 s here, 21-22 s in earlier runs at load
7-11, where ours stayed at 3.0-6.1 s).
Ours' whole run adds the interpreter start, analysis and the bundle, and that part grew with the logs: the
bundle writer redacted every gzip'd log on one core after the host stages (~1.7 s per 8 MiB log).

The whole run (2026-12-02, later session, `--repeat 3 --skip ansible`, medians; whole run beyond the window):

    log per MP   hosts  plain   ours: host stages  / plain   whole run  / plain
    8 MiB            1   1.45                0.93     0.64        2.51     1.74
    8 MiB           16   8.03                5.43     0.68        9.98     1.24   (start of day: 30.4 s, 3.9x)
    2 MiB            1   1.39                0.90     0.65        2.38     1.72
    2 MiB           16   7.13                4.66     0.65        7.05     0.99

What moved the whole run (16 hosts, 8 MiB logs: 30.4 s -> 10.0 s beyond the window):
- Redaction itself (bench/redaction.py; CPU per 8 MiB gz log 1.5 -> 0.3 s, same output): gzip level 9 -> 2
  for the redacted log, one trigger-word scan per piece shared by all rules, shape gates for the four
  word-less detect-secrets formats, and all words in one google-re2 pass (the optional `fast` extra; 0.8 s
  without it).
- Redaction in worker processes (collector/bundle/workers.py): a host's log goes to a worker as soon as it is
  fetched (Fleet.delivered), while the other hosts still work; the workers start during the window.
  Analyze stage 24.7 -> ~3 s.
- Each host goes on to its facts when its logs are in (Fleet.gather), not when the slowest host's are.
- Imports and template compiling the later stages need (~0.5 s of CPU, detect-secrets ~0.3 s of it) happen
  during the window (stages.load_later_stages), not before the first host is reached.
Left then at 16 hosts: ~0.9 s interpreter start and imports before `connect`, ~3 s of redaction after the
host stages (15 x 0.3 s of CPU on 2 cores, shared here with the 16 lab hosts' own work), ~1 s to write the
.tar.gz. At one host the interpreter start (~0.9 s) alone was most of the gap to plain's 1.4 s.

The next session (2026-12-02, later; same bench, 3 rounds, medians; seconds beyond the window; the 2 MiB
rows were measured before the last change, rich, below):

    log per MP   hosts  plain   ours: host stages  / plain   whole run  / plain   (before, no bytecode)
    8 MiB            1   1.46                0.97     0.66        1.80     1.23    2.51 (1.74x)
    8 MiB           16   8.26                5.22     0.63        9.01     1.09    9.98 (1.24x)
    2 MiB            1   1.38                0.84     0.61        1.45     1.05    2.38 (1.72x)
    2 MiB           16   7.63                4.81     0.63        6.35     0.83    7.05 (0.99x)

What moved it (8 MiB; whole run / plain at 16 hosts in successive runs, bytecode already there: 1.25 ->
1.17 with the stored logs -> 1.15 with fewer imports -> 1.12 with the idle-worker rule -> 1.09 without rich;
at one host: 2.85 s -> 2.57 s with bytecode (stage lines) -> 1.95 s -> 1.80 s without rich (this bench)):
- Bytecode (`bench.byte_compile`, and scripts/setup.sh): with PYTHONDONTWRITEBYTECODE set, as on these
  machines, every `collect` start compiled ~150 modules from source (~0.35 s of the 1.0 s before `connect`).
  An installed tool has its bytecode; the bench now measures that, for every tree it runs.
- The bundle's .tar.gz stores already-compressed files (the gzip'd logs) in stored deflate blocks instead of
  deflating them again (bundle/tarball.py): 0.004 s per 8 MiB log instead of 0.05 s, ~0.7 s at 16 hosts.
- Redaction workers build their rules (detect-secrets, ~0.2-0.4 s) while the window is open rather than on
  their first file; a file goes to an idle worker instead of starting another (one MP started two); workers
  end by kill between tasks instead of after their interpreter's teardown (~0.1 s each, waited for).
- `collect` freezes the GC when the command is done: the interpreter's teardown no longer runs a full
  collection over everything loaded (~0.1 s at the end of every command here).
- --no-api runs do not import httpx before the first host, nor the diagnosis, resolution and trace types;
  a run whose stderr is not a terminal (this bench, scripts, CI) does not import rich (~0.07 s).
Left: at 16 hosts ~3 s of redaction after the host stages on these 2 cores (the logs all arrive late in
`gather`, when the 15 MPs' `gzip -1` and sshd compete for the same CPUs), and ~0.5 s of imports before
`connect`. At one host the chain after the window is stop (~0.25 s) -> fetch the log (~0.25 s) -> redact it
(~0.35 s, one worker) -> bundle (~0.15 s); with the start (~0.55 s) that is the 1.8 s.

A new machine (2026-12-02, evening; the same code, then the tarball's ciphertext probe, which these small
captures do not reach; 3 rounds, medians, seconds beyond the window, 8 MiB logs). The machine's speed
moved within the hour (the dense analyze bench went 0.85 -> 1.8 s CPU for ours), so two runs:

                        faster hour                               slower hour
    hosts  method    host stages  / plain  whole run  / plain    host stages  / plain  whole run  / plain
        1  plain            1.11     1.00       1.11     1.00           1.31     1.00       1.31     1.00
        1  ours             0.72     0.65       1.14     1.03           0.85     0.65       1.45     1.11
       16  plain            5.34     1.00       5.34     1.00           7.45     1.00       7.45     1.00
       16  ours             2.85     0.53       4.95     0.93           3.90     0.52       6.78     0.91
    Targets: <= 1.5 s at one host (1.14 s, 1.45 s) and <= 1.0x plain at 16 hosts (0.93x, 0.91x), whole run
    included: met in both; on the previous machine (above) the one-host figure was 1.80 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from bench import byte_compile
from bench.log_extraction import ensure_log
from collector import layout
from collector.inventory import (
    ROLE_BACKEND,
    ROLE_MESSAGE_PROCESSOR,
    Inventory,
    InventoryHost,
    load_inventory,
)
from collector.remote import commands
from tests.lab.sshd import LAB_USER, SshHosts, SshHostSpec, start_ssh_hosts

LOG_BUDGET = 50_000_000
# The backend's TLS port: `collect run` narrows the capture filter to it when the backend has one port.
# Without it, every lab capture (all on one loopback, `-i any`) would also record the benchmark's own SSH
# sessions to its peers, which on real, separate hosts it never sees; the stop then waits for those captures
# to settle.
BACKEND_PORT = 8443
LOG_STORE = Path("/var/tmp/apigee-collector-bench")
SPARE_BACKEND = "127.0.6.250"  # the backend address the MPs filter on when no lab host is one (1 host)


def _specs(count: int, work: Path) -> list[SshHostSpec]:
    roles = (
        [ROLE_MESSAGE_PROCESSOR] if count == 1 else [ROLE_MESSAGE_PROCESSOR] * (count - 1) + [ROLE_BACKEND]
    )
    return [
        SshHostSpec(f"h{i:02d}", f"127.0.6.{i + 1}", role, work / "roots" / f"h{i:02d}")
        for i, role in enumerate(roles)
    ]


def _copy_log(path: Path, shared: Path) -> None:
    """Each MP reads its own system.log: a copy (the run refuses a log with more than one name — a hard link
    could name any file on the host — so the old hard-linked copies no longer do)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    subprocess.run(["cp", "--reflink=auto", str(shared), str(path)], check=True)
    shutil.chown(path, user=LAB_USER)


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


class HostCpu:
    """A cpuacct cgroup holding the lab's sshd masters: every process they fork (sessions, shells, sudo, grep,
    gzip, and tcpdump even once orphaned) is charged to it. (Reaped-children times do not work here: sshd's
    session processes are not reaped back up to the master.) Unavailable -> reads as NaN."""

    def __init__(self, lab: SshHosts) -> None:
        self.path: Path | None = CPUACCT / f"apigee-bench-hosts-{os.getpid()}"
        try:
            self.path.mkdir(exist_ok=True)
            for host in lab.hosts:
                pid = (lab.workdir / "sshd" / host.name / "sshd.pid").read_text().strip()
                (self.path / "cgroup.procs").write_text(pid)
        except OSError:
            self.path = None

    def seconds(self) -> float:
        if self.path is None:
            return float("nan")
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def remove(self) -> None:
        """After the lab stopped."""
        if self.path is not None:
            try:
                for pid in (self.path / "cgroup.procs").read_text().split():  # a straggler: back to the root
                    (CPUACCT / "cgroup.procs").write_text(pid)
                self.path.rmdir()
            except OSError:
                pass


class Usage:
    """CPU seconds spent during one run: by the collector process (threads included), by its child processes
    (ansible-playbook, ssh, scp), by the lab hosts (HostCpu), and the whole machine's busy fraction (other
    jobs included)."""

    def __init__(self, host_cpu: HostCpu) -> None:
        self.host_cpu = host_cpu
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float, float, float]:
        times = os.times()
        cpu = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = (cpu[3] + cpu[4]) / os.sysconf("SC_CLK_TCK")
        total = sum(cpu[:8]) / os.sysconf("SC_CLK_TCK")
        return (
            times.user + times.system,
            times.children_user + times.children_system,
            self.host_cpu.seconds(),
            idle,
            total,
        )

    def stop(self) -> dict[str, float]:
        end = self._sample()
        delta = [b - a for a, b in zip(self.start, end, strict=True)]
        return {
            "collector": delta[0],
            "children": delta[1],
            "hosts": delta[2],
            "busy": 1 - delta[3] / delta[4] if delta[4] else 0.0,
        }


def _peers(inventory: Inventory) -> tuple[list[str], list[str]]:
    backends = [h.address for h in inventory.backends] or [SPARE_BACKEND]
    return backends, [h.address for h in inventory.message_processors]


def run_ours(inventory_path: Path, inventory: Inventory, lab: SshHosts, out: Path, window: float,
             phases: dict[str, float], source: Path | None = None) -> tuple[float, float]:
    """`collect run --no-api` as an operator runs it: a fresh interpreter, the whole run, one bundle. Returns
    the wall time and the host stages' span: from the `connect` stage to the `analyze` stage (its progress
    lines on stderr, timed as they arrive) — connect, captures, window, stop + fetch, logs, facts, close:
    the host work the plain way also does. Before it: interpreter start and the inventory; after it:
    analysis, reports, redaction and packaging of the bundle. `source`: run the collector package found
    there instead (another version's tree, for a before/after in one run)."""
    backends, _ = _peers(inventory)
    collect = [str(Path(sys.executable).with_name("collect"))]
    env = dict(os.environ)
    if source is not None:
        collect = [sys.executable, "-c", "from collector.entry import main; main()"]
        env.update(PYTHONPATH=str(source), PYTHONDONTWRITEBYTECODE="1")
    argv = [*collect, "run", "--no-api", "--inventory", str(inventory_path), "--known-hosts",
            str(lab.known_hosts), "--backend", f"{backends[0]}:{BACKEND_PORT}", "--capture-seconds",
            str(int(window)), "--no-probe", "--keep-directory", "--json", "--out", str(out)]
    marks: dict[str, float] = {}
    started = time.monotonic()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          cwd=out) as proc:  # not the repository: `-c` would import its collector first
        stdout = []
        reader = threading.Thread(target=lambda: stdout.append(proc.stdout.read() if proc.stdout else ""))
        reader.start()
        errors = []
        for line in proc.stderr or ():
            stage = line.removeprefix("collect: ").split(":", 1)[0]
            marks.setdefault(stage, time.monotonic())
            errors.append(line)
        reader.join()
        code = proc.wait()
    seconds = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"ours: exit {code}: {''.join(stdout)[-2000:]} {''.join(errors)[-2000:]}")
    result = json.loads("".join(stdout))
    for step in result["steps"]:  # the slowest host of each step
        phases[step["step"]] = max(phases.get(step["step"], 0.0), step.get("seconds") or 0.0)
    directory = Path(result["directory"])
    for host in inventory.hosts:
        _check_pcap(directory / layout.host_file(host.name, layout.HOST_CAPTURE))
    return seconds, marks["analyze"] - marks["connect"]


def _plain_commands(host: InventoryHost, backends: list[str], mps: list[str]) -> dict[str, str]:
    """The host work the plain way: tcpdump detached, then SIGINT, its exit, `cat` of the pcap; gzip -1 of
    the newest log; facts — each a shell line for one `ssh` connection."""
    directory = shlex.quote(f"{host.capture_dir}/plain-{host.name}")
    peers = backends if host.role == ROLE_MESSAGE_PROCESSOR else mps
    capture_filter = " ".join(shlex.quote(w) for w in commands.capture_filter(peers, BACKEND_PORT))
    start = (f"umask 077; mkdir {directory} && {{ setsid nohup {shlex.quote(host.tcpdump)} -i any -s 0 -U "
             f"-w {directory}/c.pcap {capture_filter} >{directory}/log 2>&1 </dev/null & "
             f"echo $! >{directory}/pid; }}")
    # tcpdump is orphaned: once it exits it is a zombie until init reaps it, so wait for "not running".
    stop = (f"p=$(cat {directory}/pid); kill -INT $p; while [ -e /proc/$p ] && "
            f"[ \"$(sed 's/.*) //' /proc/$p/stat | cut -c1)\" != Z ]; do sleep 0.02; done; "
            f"cat {directory}/c.pcap; rm -rf {directory}")
    plan = {"start": f"sudo -n sh -c {shlex.quote(start)}", "stop": f"sudo -n sh -c {shlex.quote(stop)}",
            "facts": commands.render(commands.gather_facts(host.tcpdump, host.capture_dir))}
    if host.role == ROLE_MESSAGE_PROCESSOR:
        log = shlex.quote(host.system_log)
        plan["log"] = f"sudo -n sh -c {shlex.quote(f'tail -c {LOG_BUDGET} {log} | gzip -1 -c')}"
    return plan


def run_plain(inventory: Inventory, lab: SshHosts, out: Path, window: float) -> float:
    """OpenSSH `ssh` to every host at once, one connection per step (issue 15's reference)."""
    backends, mps = _peers(inventory)
    plans = {h.name: _plain_commands(h, backends, mps) for h in inventory.hosts}
    options = ["-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={lab.known_hosts}", "-o",
               "StrictHostKeyChecking=yes", "-i", str(lab.client_key)]

    def ssh(host: InventoryHost, line: str, stdout: Path | None = None) -> None:
        argv = ["ssh", *options, "-p", str(host.port), f"{host.user}@{host.address}", line]
        if stdout is None:
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            return
        with stdout.open("wb") as sink:
            subprocess.run(argv, check=True, stdout=sink)

    def finish(host: InventoryHost) -> None:
        plan = plans[host.name]
        local = out / host.name
        local.mkdir(parents=True, exist_ok=True)
        ssh(host, plan["stop"], local / "capture.pcap")
        if "log" in plan:
            ssh(host, plan["log"], local / "system.log.gz")
        ssh(host, plan["facts"], local / "facts.txt")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(inventory.hosts)) as pool:
        list(pool.map(lambda h: ssh(h, plans[h.name]["start"]), inventory.hosts))
        time.sleep(window)
        list(pool.map(finish, inventory.hosts))
    seconds = time.monotonic() - started
    for host in inventory.hosts:
        _check_pcap(out / host.name / "capture.pcap")
    return seconds


def _host_commands(host, run_id: str, backends: list[str], mps: list[str], window: float) -> dict:  # type: ignore[no-untyped-def]
    directory = commands.run_dir(host.capture_dir, run_id, host.name)
    peers = backends if host.role == ROLE_MESSAGE_PROCESSOR else mps
    sudo = commands.sudo_prefix(False)
    plan = {
        "dir": directory,
        "start": sudo
        + commands.start_capture(
            host.capture_dir,
            directory,
            host.tcpdump,
            commands.capture_filter(peers, BACKEND_PORT),
            int(window) + 60,
            50,
            1,
        ),
        "stop": sudo + commands.stop_capture(directory, run_id, host.user),
        "remove": sudo + commands.remove_run_dir(directory, run_id),
        "facts": commands.gather_facts(host.tcpdump, host.capture_dir),
        "is_mp": host.role == ROLE_MESSAGE_PROCESSOR,
    }
    if plan["is_mp"]:  # no message-id excerpt: a --no-api run without a reproduction has no id to look for
        plan["log"] = commands.stream_logs([host.system_log], LOG_BUDGET)
    return plan


def run_ansible(inventory: Inventory, lab: SshHosts, out: Path, window: float, forks: int) -> float:
    backends, mps = _peers(inventory)
    hosts = {}
    for host in inventory.hosts:
        plan = _host_commands(host, "benchansible", backends, mps, window)
        if plan["is_mp"]:
            plan["log"] = ["sh", "-c", f"{commands.render(plan['log'])} > {shlex.quote(plan['dir'])}/log.gz"]
        hosts[host.name] = {
            "ansible_host": host.address,
            "ansible_port": host.port,
            "ansible_user": host.user,
            "ansible_ssh_private_key_file": str(lab.client_key),
            "plan": plan,
        }
    (out / "inventory.json").write_text(json.dumps({"all": {"hosts": hosts}}))
    task = "      - {name: %s, ansible.builtin.command: {argv: '{{ plan.%s }}'}%s}\n"
    when_mp = ", when: plan.is_mp"
    playbook = (
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        + task % ("start", "start", "")
        + f"      - {{name: window, ansible.builtin.pause: {{seconds: {int(window)}}}, run_once: true}}\n"
        + task % ("stop", "stop", "")
        + f"      - {{name: fetch capture, ansible.builtin.fetch: {{src: '{{{{ plan.dir }}}}/capture.pcap', "
        f"dest: '{out}/{{{{ inventory_hostname }}}}/capture.pcap', flat: true}}}}\n"
        + task % ("log", "log", when_mp)
        + f"      - {{name: fetch log, ansible.builtin.fetch: {{src: '{{{{ plan.dir }}}}/log.gz', "
        f"dest: '{out}/{{{{ inventory_hostname }}}}/system.log.gz', flat: true}}{when_mp}}}\n"
        + task % ("facts", "facts", "")
        + task % ("remove", "remove", "")
    )
    (out / "play.yml").write_text(playbook)
    env = dict(
        os.environ,
        ANSIBLE_HOST_KEY_CHECKING="True",
        ANSIBLE_PIPELINING="True",
        ANSIBLE_SSH_ARGS=f"-o ControlMaster=auto -o ControlPersist=60s "
        f"-o UserKnownHostsFile={lab.known_hosts}",
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(out / "cp"),
        ANSIBLE_LOCAL_TEMP=str(out / "tmp"),
        ANSIBLE_PYTHON_INTERPRETER="/usr/bin/python3",
        ANSIBLE_NOCOLOR="1",
    )
    ansible = Path(sys.executable).with_name("ansible-playbook")
    started = time.monotonic()
    done = subprocess.run(
        [str(ansible), "-i", str(out / "inventory.json"), "-f", str(forks), str(out / "play.yml")],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"ansible: exit {done.returncode}: {done.stdout[-3000:]} {done.stderr[-1000:]}")
    for host in inventory.hosts:
        _check_pcap(out / host.name / "capture.pcap")
    return seconds


def _check_pcap(path: Path) -> None:
    subprocess.run(["tcpdump", "-r", str(path)], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--window", type=float, default=5.0, help="capture window, seconds (whole)")
    parser.add_argument("--log-mb", type=int, default=8, help="system.log size per MP (MiB)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per host count (medians are shown)")
    parser.add_argument(
        "--ansible-forks",
        type=int,
        default=0,
        help="ansible --forks; 0 = one per host (issue 5: forks = hosts)",
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="DIR",
        help="also run the collector package in DIR (`git archive main collector templates | tar -x -C DIR`) "
        "as method `before`, for a before/after from one run",
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["ours", "before", "plain", "ansible"])
    args = parser.parse_args()
    shared_log = ensure_log(LOG_STORE / f"system-{args.log_mb}m.log", args.log_mb)
    byte_compile(Path(__file__).resolve().parent.parent)
    if args.before:
        byte_compile(args.before)
    rows = []
    for count in args.hosts:
        with tempfile.TemporaryDirectory(prefix="bench-hosts-") as tmp:
            work = Path(tmp)
            with start_ssh_hosts(work / "lab", _specs(count, work)) as lab:
                host_cpu = HostCpu(lab)
                for host in lab.hosts:
                    if host.role == ROLE_MESSAGE_PROCESSOR:
                        _copy_log(host.system_log, shared_log)
                inventory_path = _resolved_inventory(lab, work / "hosts.yaml")
                inventory = load_inventory(inventory_path)
                ansible_forks = args.ansible_forks or count
                phases: dict[str, dict[str, list[float]]] = {}

                def ours(out: Path, name: str, source: Path | None = None, inv: Inventory = inventory,
                         lab: SshHosts = lab, path: Path = inventory_path,
                         phases: dict[str, dict[str, list[float]]] = phases) -> tuple[float, float]:
                    steps: dict[str, float] = {}
                    timed = run_ours(path, inv, lab, out, args.window, steps, source)
                    for step, seconds in steps.items():
                        phases.setdefault(name, {}).setdefault(step, []).append(seconds)
                    return timed

                runners: dict[str, Callable[[Path], float | tuple[float, float]]] = {
                    "plain": lambda out, inv=inventory, lab=lab: run_plain(inv, lab, out, args.window),
                    "ours": lambda out: ours(out, "ours"),
                    "before": lambda out: ours(out, "before", args.before),
                    "ansible": lambda out, inv=inventory, lab=lab, forks=ansible_forks: run_ansible(
                        inv, lab, out, args.window, forks
                    ),
                }
                skip = set(args.skip) | (set() if args.before else {"before"})
                results: dict[str, list[tuple[float, float, str, dict[str, float]]]] = {}
                for round_ in range(args.repeat):
                    for name, runner in runners.items():
                        if name in skip or (name == "ansible" and round_ > 0):
                            continue  # ansible: once (about 20 s at 1 host, a minute at 16)
                        out = work / f"out-{name}-{round_}"
                        out.mkdir()
                        load = Path("/proc/loadavg").read_text().split()[0]
                        usage = Usage(host_cpu)
                        timed = runner(out)
                        if name == "ansible":
                            _close_control_masters(out / "cp")
                        cpu = usage.stop()
                        seconds, span = timed if isinstance(timed, tuple) else (timed, timed)
                        results.setdefault(name, []).append(
                            (span - args.window, seconds - args.window, load, cpu)
                        )
                        print(
                            f"{count:3d} hosts  round {round_ + 1}  {name:8s} "
                            f"overhead {span - args.window:6.2f} s "
                            f"(whole run {seconds - args.window:6.2f} s)  load {load}  "
                            f"cpu: collector+children {cpu['collector'] + cpu['children']:.1f} s, "
                            f"lab hosts {cpu['hosts']:.1f} s, busy {cpu['busy']:.0%}",
                            flush=True,
                        )
                for name, runs in results.items():
                    overheads = [r[0] for r in runs]
                    rows.append((count, name, statistics.median(overheads), min(overheads), max(overheads),
                                 statistics.median(r[1] for r in runs), runs[0][2]))
                for name, steps in phases.items():
                    print(f"           {name}, slowest host per step (median s): "
                          + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in steps.items()
                                      if statistics.median(v) >= 0.005))
            host_cpu.remove()
    print(f"\n{args.log_mb} MiB log per MP, window {args.window:g} s, {args.repeat} rounds (ansible 1)")
    print("host stages = ours from its connect to its analyze progress line; whole run = from interpreter "
          "start to the bundle written (plain, ansible: their whole run both times); seconds beyond"
          " the window")
    print("hosts  method    host stages median (min-max)  / plain   whole run  / plain  load")
    plain = {count: median for count, name, median, *_ in rows if name == "plain"}
    for count, name, median, low, high, whole, load in rows:
        ratio = f"{median / plain[count]:7.2f}" if count in plain else "      -"
        whole_ratio = f"{whole / plain[count]:7.2f}" if count in plain else "      -"
        print(f"{count:5d}  {name:8s}  {median:6.2f} ({low:5.2f}-{high:5.2f})          {ratio}  {whole:10.2f}"
              f"  {whole_ratio}  {load:>5s}")


def _resolved_inventory(lab: SshHosts, path: Path) -> Path:
    """The lab's inventory with real paths: the host roots are symlinks out of a 0700 temp dir, which the lab
    user's SFTP cannot pass through (as tests/e2e does)."""
    lab.write_inventory(path)
    document = yaml.safe_load(path.read_text())
    for host in document["hosts"].values():
        for key in ("system_log", "capture_dir"):
            host[key] = os.path.realpath(host[key])
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _close_control_masters(control_dir: Path) -> None:
    """End ansible's ControlPersist masters: they would outlive the run by 60 s, holding sshd sessions
    open."""
    for socket_path in control_dir.glob("*"):
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "unused"],
            capture_output=True,
            check=False,
        )
    time.sleep(0.5)


if __name__ == "__main__":
    main()

"""The README demo: start a lab, run the whole `collect` against it, show the cause and the bundle, stop the
lab."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from tests.lab.lab import Lab, LabSpec, start_lab
from tests.lab.scenarios import scenario as lab_scenario

DEMO_CAPTURE_SECONDS = 5


def collect_argv(lab: Lab, out: Path, capture_seconds: int = DEMO_CAPTURE_SECONDS) -> list[str]:
    """The `collect` command line for this lab (credentials go in the environment, never on the command
    line)."""
    assert lab.emulator_url and lab.inventory and lab.known_hosts
    return [
        "collect", "--org", lab.org, "--env", lab.env, "--proxy", lab.proxy,
        "--mgmt-url", lab.emulator_url, "--username", lab.username,
        "--inventory", str(lab.inventory), "--known-hosts", str(lab.known_hosts),
        "--reproduce", f"curl -sS {lab.reproduction_url}",
        "--capture-seconds", str(capture_seconds), "--out", str(out),
    ]


def run_demo(spec: LabSpec) -> int:
    """Run the demo for `spec`; returns the process exit code (0 when `collect` named the expected cause)."""
    out = Path.cwd()
    with start_lab(spec, echo=print) as lab:
        argv = collect_argv(lab, out)
        env = dict(os.environ, APIGEE_PASSWORD=lab.password)
        print(f"\n$ APIGEE_PASSWORD=… {shlex.join(argv)}\n", flush=True)
        done = subprocess.run([sys.executable, "-m", "collector", *argv[1:]], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, check=False)
        print(done.stdout, end="", flush=True)
    # What `collect` should conclude (the demo fails loudly when it does not).
    expected = lab_scenario(spec.scenario).cause
    named = f"cause: {expected}" in done.stdout
    bundle = next(
        (line.split(" ", 2)[1] for line in done.stdout.splitlines() if line.startswith("bundle: ")), None
    )
    print(f"\ndemo {spec.scenario}: collect exited {done.returncode}; cause "
          f"{'is' if named else 'is NOT'} {expected}; bundle {bundle or '(none)'}; lab stopped")
    if bundle:
        print(f"check it with: .venv/bin/collect verify {bundle}")
    return 0 if done.returncode == 0 and named else 1

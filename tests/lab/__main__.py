"""The lab's command line: `python -m tests.lab up|down|capture|demo` (see --help)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from tests.lab.backends import BACKEND_KINDS, TLS_VERSIONS, LabError
from tests.lab.lab import PID_FILE, LabSpec, capture_traffic, start_lab, stop_lab_in
from tests.lab.scenarios import SCENARIO_IDS, SCENARIOS


def _scenario_id(text: str) -> str:
    if text not in SCENARIOS:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {text!r}; the valid scenarios (each named by the cause it reproduces) are: "
            + ", ".join(SCENARIO_IDS))
    return text


def _spec_arguments(parser: argparse.ArgumentParser, *, with_dir: bool = True) -> None:
    parser.add_argument("--scenario", type=_scenario_id, default="ca-mismatch", metavar="ID",
                        help=f"one of: {', '.join(SCENARIO_IDS)} (default ca-mismatch)")
    parser.add_argument("--backend", choices=BACKEND_KINDS, default=None,
                        help="backend kind (default: the scenario's)")
    parser.add_argument("--tls", choices=TLS_VERSIONS, default=None, dest="tls_version",
                        help="the only TLS version the backend accepts (default: the scenario's)")
    parser.add_argument("--mps", type=int, default=2, dest="message_processors",
                        help="number of MP simulators")
    parser.add_argument("--target-style", choices=("url", "target-server"), default="url")
    if with_dir:
        parser.add_argument("--dir", type=Path, default=Path(".lab"), dest="directory")


def _spec(args: argparse.Namespace) -> LabSpec:
    return LabSpec(scenario=args.scenario, backend=args.backend, tls_version=args.tls_version,
                   message_processors=args.message_processors, directory=args.directory,
                   target_style=args.target_style)


class _Stop(Exception):
    """SIGTERM/SIGHUP asked `up` to stop."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


def _up(args: argparse.Namespace) -> int:
    spec = _spec(args)
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGHUP, _raise_stop)
    pid_file = Path(spec.directory).resolve() / PID_FILE
    try:
        with start_lab(spec, echo=print) as lab:
            pid_file.parent.mkdir(parents=True, exist_ok=True)
            pid_file.write_text(f"{os.getpid()}\n")
            print(f"inventory:   {lab.inventory}\nknown_hosts: {lab.known_hosts}")
            print(f"lab.json:    {lab.lab_json}")
            print("running; Ctrl-C (or `python -m tests.lab down`) stops it", flush=True)
            while True:
                time.sleep(3600)
    except (KeyboardInterrupt, _Stop):
        print("stopping the lab", flush=True)
    finally:
        if pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
    return 0


def _down(args: argparse.Namespace) -> int:
    if stop_lab_in(args.directory):
        print(f"stopped the lab in {args.directory}")
    else:
        print(f"no running lab in {args.directory}")
    return 0


def _capture(args: argparse.Namespace) -> int:
    spec = LabSpec(scenario=args.scenario, backend=args.backend, tls_version=args.tls_version,
                   message_processors=1, directory=args.directory, ssh_hosts=False, emulator=False,
                   pki_directory=args.pki_directory)
    statuses = capture_traffic(spec, args.out, args.requests)
    keys = Path(args.out).with_suffix(".keys")
    backend = args.backend or SCENARIOS[args.scenario].backend
    print(f"{args.out}: {len(statuses)} reproduction(s), HTTP {', '.join(map(str, statuses))}"
          + (f"; key log {keys}" if keys.exists() and backend == "openssl" else ""))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from tests.lab.demo import run_demo

    return run_demo(_spec(args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the lab and keep it running in the foreground")
    _spec_arguments(up)
    up.set_defaults(run=_up)
    down = commands.add_parser("down", help="stop a lab `up` runs in another shell")
    down.add_argument("--dir", type=Path, default=Path(".lab"), dest="directory")
    down.set_defaults(run=_down)
    capture = commands.add_parser("capture", help="capture MP->backend reproductions into a pcap")
    _spec_arguments(capture, with_dir=False)
    capture.add_argument("--out", type=Path, required=True)
    capture.add_argument("--requests", type=int, default=1)
    capture.add_argument("--dir", type=Path, default=Path(".lab/capture"), dest="directory")
    capture.add_argument("--pki", type=Path, default=None, dest="pki_directory",
                         help="reuse the PKI in this directory (default: DIR/pki)")
    capture.set_defaults(run=_capture)
    demo = commands.add_parser("demo", help="start the lab, reproduce the failure, show the evidence, stop")
    _spec_arguments(demo)
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (LabError, ValueError) as error:
        print(f"lab: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

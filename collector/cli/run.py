"""`collect run` (and `collect --org …`): the whole playbook, with progress on a terminal and one result at
the end."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from collector.cli.group import cli, emit_json
from collector.progress import NullObserver, RunObserver, Stage
from collector.settings import RunSettings, complete_secrets, load_settings
from collector.steps import StepResult, StepStatus

EPILOG = """\b
Examples:
  # Private Cloud: MPs and backend reachable over SSH (inventory), password from the prompt
  collect --org acme --env prod --proxy payments --mgmt-url http://ms.internal:8080 \\
      --username ops@acme.com --inventory hosts.yaml --capture-seconds 20 \\
      --reproduce 'curl -sk https://api.acme.com/payments/v1/ping'

\b
  # Public Cloud: Apigee runs the MPs; capture on your backend only, token from gcloud-style helper
  export APIGEE_TOKEN=$(get_token)
  collect --org acme --env prod --proxy payments --public-cloud --inventory backend-only.yaml \\
      --url https://acme-prod.apigee.net/payments/v1/ping

\b
Credentials: --token / APIGEE_TOKEN, --token-command, or --username with the password from APIGEE_PASSWORD,
~/.netrc or a prompt (never a flag). Settings also come from environment variables and from
~/.config/apigee-collector/config.yaml (flags win, then the environment, then the file).
Exit codes: 0 complete, 3 bundle written but partial, 2 usage/input/credentials refused, 1 failed, no bundle,
130 interrupted before any bundle was written.
"""


@cli.command("run", epilog=EPILOG)
@click.option("--org", metavar="ORG", help="Edge organization of the failing proxy.")
@click.option("--env", metavar="ENV", help="Edge environment the proxy is deployed to.")
@click.option("--proxy", metavar="PROXY", help="API proxy whose calls to its backend fail (503).")
@click.option("--mgmt-url", metavar="URL",
              help="Management API base [env APIGEE_MGMT_URL; default https://api.enterprise.apigee.com]; "
                   "Private Cloud: http://MS-HOST:8080.")
@click.option("--username", metavar="NAME",
              help="Basic-auth user for the management API [env APIGEE_USERNAME]; the password comes from "
                   "APIGEE_PASSWORD, ~/.netrc or a prompt.")
@click.option("--token", metavar="TOKEN",
              help="Bearer token for MFA/SSO accounts [env APIGEE_TOKEN, preferred: flags show in `ps`].")
@click.option("--token-command", metavar="'CMD ARGS'",
              help="Command that prints a Bearer token (e.g. 'get_token'); run without a shell.")
@click.option("--inventory", metavar="FILE",
              help="Hosts and roles (our YAML or an Ansible inventory): "
                   "the MPs and backends to capture on over SSH. An Ansible inventory is read by "
                   "ansible-inventory (on the PATH, else beside collect's Python) when there is one, "
                   "else by the built-in reader; the two must agree.")
@click.option("--known-hosts", metavar="FILE",
              help="known_hosts file to verify host keys against [default ~/.ssh/known_hosts].")
@click.option("--accept-new-host-keys", is_flag=True,
              help="Trust and record host keys not yet known (never a changed key).")
@click.option("--no-api", is_flag=True,
              help="Do not use the management API: host-side collection only "
                   "(needs --backend or an inventory).")
@click.option("--backend", "backends", multiple=True, metavar="HOST:PORT",
              help="A backend to capture and probe (repeatable); added to the ones the API resolves.")
@click.option("--capture-seconds", type=int, metavar="N",
              help="Length of the reproduction/capture window in seconds [default 30].")
@click.option("--api-timeout", type=int, metavar="N",
              help="Seconds one management API answer may take, its whole body included, before the call "
                   "counts as failed (retried where that is safe) [default 30].")
@click.option("--trace/--no-trace", default=None,
              help="Start an Edge debug session (trace) for the window to get the message id and error.cause "
                   "[default: on].")
@click.option("--reproduce", metavar="'curl ...'",
              help="The failing call as a curl command; run during the window without a shell; secrets "
                   "redacted in the bundle.")
@click.option("--url", metavar="URL", help="Instead of --reproduce: GET this URL once during the window.")
@click.option("--public-cloud", is_flag=True,
              help="Edge Public Cloud: no SSH to MPs (Apigee runs them); the checklist follows the Public "
                   "Cloud must-gather list.")
@click.option("--out", metavar="DIR", help="Where the bundle goes [default: the current directory].")
@click.option("--case", metavar="ID", help="Support case id, added to the bundle name.")
@click.option("--keep-directory", is_flag=True, help="Keep the bundle directory next to the .tar.gz.")
@click.option("--dry-run", is_flag=True,
              help="Read-only: GET calls only (no trace, no SSH); "
                   "print the plan and the exact remote commands.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end instead of text.")
@click.option("--probe/--no-probe", default=None,
              help="Ask the backend for its acceptable CA names [default: automatically when handshakes are "
                   "TLS 1.3 or no capture was possible].")
@click.option("--sudo-password-prompt", is_flag=True,
              help="Prompt once for the sudo password used on the hosts (otherwise sudo must not need one).")
@click.option("--config", "config_file", metavar="FILE", type=click.Path(path_type=Path),
              help="Config file (YAML or TOML) [default ~/.config/apigee-collector/config.yaml].")
@click.pass_context
def run_command(ctx: click.Context, config_file: Path | None, as_json: bool, **_values: Any) -> int:
    """Run the whole playbook against ORG/ENV/PROXY and write one support bundle.

    Resolves the proxy's TLS setup through the management API, captures MP <-> backend traffic with tcpdump on
    every MP and backend over SSH while the failing call is reproduced (with a trace), gathers the MP
    system.log lines for the message id and host facts, probes the backend when needed, names the cause
    (missing-client-certificate, ca-mismatch, ...) with its evidence, and writes a checksummed .tar.gz.
    """
    # Imported here, not at the top: collector.run loads fabric, paramiko, httpx, cryptography and jinja2
    # (about 1 s), which `collect --help`, `verify` and `analyze` need not pay (every command module is
    # imported at start-up).
    from collector.run import run_collect

    flags = given_flags(ctx)
    flags["json"] = as_json
    settings = load_settings(flags, os.environ, config_path=config_file)
    settings = complete_secrets(settings, secret_prompter(settings) if sys.stdin.isatty() else None)
    observer = make_observer()
    with _sigterm_as_interrupt():
        outcome = run_collect(settings, observer)
    if as_json:
        emit_json(outcome.json)
    else:
        print_outcome(outcome)
    return outcome.exit_code


def given_flags(ctx: click.Context, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Only what the user typed: unset flags must not hide environment variables or the config file."""
    flags: dict[str, Any] = {}
    for name, value in ctx.params.items():
        if name in ("config_file", "as_json", *skip):
            continue
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            flags[name] = list(value) if name == "backends" else value
    return flags


def secret_prompter(settings: RunSettings) -> Callable[[str], str]:
    """The terminal prompt for a missing secret, saying whose secret it is."""

    def prompt(what: str) -> str:
        if what == "password":
            label = f"Management API password for {settings.username} at {settings.mgmt_url}"
        else:
            label = "sudo password for the hosts"
        return str(click.prompt(label, hide_input=True, err=True))

    return prompt


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a run like Ctrl-C: captures are stopped and a partial bundle is written."""

    def handler(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def make_observer() -> RunObserver:
    """Rich progress on a terminal, plain lines otherwise."""
    if sys.stderr.isatty():
        # rich (~0.07 s to import) only where it draws: scripts, pipes and CI runs start without it
        from collector.cli.terminal_progress import RichObserver  # noqa: PLC0415

        return RichObserver()
    return PlainObserver()


class PlainObserver(NullObserver):
    """Not a terminal: one plain line per stage and per failed step on stderr, no countdown."""

    def stage_started(self, stage: Stage, detail: str) -> None:
        click.echo(f"collect: {stage.value}: {detail}", err=True)

    def step_finished(self, result: StepResult) -> None:
        if result.status is StepStatus.FAILED:
            click.echo(f"collect: failed: {result.message or result.host + ' -> ' + result.step}", err=True)

    def note(self, text: str) -> None:
        click.echo(f"collect: {text}", err=True)


def print_outcome(outcome: Any) -> None:
    """The cause, its evidence and fix, failed steps and the bundle path (or the dry-run plan)."""
    if outcome.plan is not None:
        from collector.run.plan import render_plan  # here, not at the top: see run_command (start-up cost)

        click.echo(render_plan(outcome.plan))
        return
    diagnosis = outcome.diagnosis
    if diagnosis is not None:
        click.echo(f"cause: {diagnosis.cause.value}")
        click.echo(f"  {diagnosis.summary}")
        for line in diagnosis.evidence[:6]:
            click.echo(f"  - {line}")
        if diagnosis.resolution:
            click.echo(f"fix: {diagnosis.resolution}")
    failed = outcome.failed_steps
    for step in failed:
        click.echo(f"failed: {step.message or step.host + ' -> ' + step.step}")
    if outcome.bundle is not None:
        state = "interrupted, partial" if outcome.interrupted else ("partial" if failed else "complete")
        click.echo(f"bundle: {outcome.bundle} ({state})")
        if outcome.directory is not None:
            click.echo(f"directory: {outcome.directory}")
    else:
        click.echo("no bundle was written", err=True)

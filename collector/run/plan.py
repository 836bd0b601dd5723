"""`collect --dry-run`: resolve with GET calls only, then show what a run would capture, where, and with
which commands."""

from __future__ import annotations

import dataclasses
import enum
import json
from pathlib import Path
from typing import Any

from collector.inventory import Inventory, InventoryHost
from collector.progress import RunObserver
from collector.remote import commands
from collector.remote.host_steps import RunInputs, new_run_id, plan_host
from collector.run.context import RunContext
from collector.run.outcome import RunOutcome, build_outcome
from collector.run.reproduce import redact_argv, redact_url
from collector.run.stages import plan_hosts, resolve, run_inputs
from collector.settings import RunSettings
from collector.steps import StepStatus


def dry_run(settings: RunSettings, observer: RunObserver, inventory: Inventory | None) -> RunOutcome:
    """Resolve read-only (no documents written, no debug session, no SSH) and return the plan."""
    ctx = RunContext(settings, observer, Path("/nonexistent-dry-run"), new_run_id(), inventory=inventory)
    resolve(ctx, sink=False)
    hosts = plan_hosts(ctx)
    plan = build_plan(ctx, hosts)
    return build_outcome(None, None, ctx.steps, plan=plan, exit_code=1 if _failed(ctx) else 0)


def _failed(ctx: RunContext) -> bool:
    return any(s.status is StepStatus.FAILED for s in ctx.steps)


def build_plan(ctx: RunContext, hosts: list[InventoryHost]) -> dict[str, Any]:
    """The plan as one JSON-ready mapping (also what `--dry-run --json` prints under `plan`)."""
    s = ctx.settings
    resolution = ctx.resolution
    inputs = run_inputs(ctx, hosts)
    plan: dict[str, Any] = {
        "org": s.org, "env": s.env, "proxy": s.proxy,
        "mgmt_url": None if s.no_api else s.mgmt_url,
        "revisions": [str(r) for r in resolution.revisions] if resolution is not None else [],
        "message_processors": (
            [_plain(mp) for mp in resolution.message_processors] if resolution is not None else []
        ),
        "targets": [_plain(t) for t in resolution.targets] if resolution is not None else [],
        "backends": [{"host": b.host, "port": b.port, "sni": b.sni} for b in ctx.backend_targets],
        "backend_addresses": ctx.backend_addresses,
        "mp_addresses": ctx.mp_addresses,
        "findings": [_plain(f) for f in resolution.findings] if resolution is not None else [],
        "capture_seconds": s.capture_seconds,
        "trace": s.trace and not s.no_api,
        "reproduction": (" ".join(redact_argv(s.reproduce)) if s.reproduce
                         else (f"GET {redact_url(s.url)}" if s.url else None)),
        "hosts": [_host_plan(h, inputs, s.secrets.sudo_password is not None) for h in hosts],
    }
    return plan


def _host_plan(host: InventoryHost, inputs: RunInputs, sudo_password: bool) -> dict[str, Any]:
    """One host's part of the plan: every command the run would send, from remote/host_steps.py's builders."""
    planned = plan_host(host, inputs, sudo_password)
    peers = inputs.peers(host)
    argvs = {command.label: command.argv for command in planned}
    return {
        "name": host.name, "address": host.address, "port": host.port, "user": host.user, "role": host.role,
        "sudo": host.sudo,
        "capture_filter": " ".join(commands.capture_filter(peers, inputs.port)) if peers else None,
        "commands": {label: commands.render(argv) for label, argv in argvs.items()},
        "argv": argvs,
    }


def _plain(value: Any) -> Any:
    """A JSON-ready form of a resolution value (its own to_json when it has one)."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def render_plan(plan: dict[str, Any]) -> str:
    """The plan for a terminal: what would be resolved, captured and run (commands exactly as sent)."""
    lines = [f"dry run: {plan['org']}/{plan['env']}/{plan['proxy']}"
             + (f" via {plan['mgmt_url']}" if plan["mgmt_url"] else " (no management API)")]
    if plan["revisions"]:
        lines.append(f"deployed revision(s): {', '.join(plan['revisions'])}")
    lines.append("message processors:")
    lines += [f"  {_one_line(mp)}" for mp in plan["message_processors"]] or ["  (none resolved)"]
    lines.append("targets (keystore / alias / truststore):")
    lines += [f"  {_one_line(t)}" for t in plan["targets"]] or ["  (none resolved)"]
    lines.append("backends:")
    lines += [f"  {b['host']}:{b['port']}" + (f" (SNI {b['sni']})" if b["sni"] else "")
              for b in plan["backends"]] or ["  (none)"]
    for finding in plan["findings"]:
        lines.append(f"finding: {_one_line(finding)}")
    lines.append(f"window: {plan['capture_seconds']} s; trace: {'yes' if plan['trace'] else 'no'}; "
                 f"reproduction: {plan['reproduction'] or 'by hand'}")
    if not plan["hosts"]:
        lines.append("SSH hosts: none (give --inventory to capture on message processors and backends)")
    scripts: dict[str, str] = {}
    for host in plan["hosts"]:
        lines.append(f"host {host['name']} ({host['role']}) {host['user']}@{host['address']}:{host['port']}"
                     + (f" capture filter: {host['capture_filter']}" if host["capture_filter"] else ""))
        for step, argv in host["argv"].items():
            lines.append(f"  [{step}] {_short_command(argv, scripts)}")
    if scripts:
        lines.append("scripts (each runs as `sh -c SCRIPT NAME ARGS...`, every argument quoted; "
                     "`--json` has the full command lines):")
        for name, script in scripts.items():
            lines.append(f"  {name}:")
            lines += [f"    {line}" for line in script.strip("\n").splitlines()]
    return "\n".join(lines)


def _short_command(argv: list[str], scripts: dict[str, str]) -> str:
    """The command line with its `sh -c` script shown by name (the script is listed once, below the hosts)."""
    if "-c" in argv:
        at = argv.index("-c")
        if at + 2 < len(argv) and argv[at - 1] == "sh":
            name = argv[at + 2]
            scripts.setdefault(name, argv[at + 1])
            return commands.render(argv[:at + 1]) + f" <{name} script> " + commands.render(argv[at + 2:])
    return commands.render(argv)


def _one_line(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_one_line(v)}" for k, v in value.items() if v not in (None, "", [], {}))
    if isinstance(value, list):
        return "[" + "; ".join(_one_line(v) for v in value) + "]"
    return json.dumps(value) if not isinstance(value, str) else value

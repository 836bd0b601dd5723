"""The `collect` click group every command module registers on, and the one JSON printer the
commands share."""

from __future__ import annotations

import importlib
import json
from typing import Any

import click

from collector import __version__


def emit_json(data: Any) -> None:
    """Print one JSON document (the only JSON the commands print)."""
    click.echo(json.dumps(data, indent=2))


# Each command's module, imported when the command is first named: `collect analyze` then loads neither the
# playbook's settings, YAML and rich nor the other commands (about 50 ms of a short analysis).
COMMAND_MODULES = {
    "analyze": "collector.cli.analyze",
    "package": "collector.cli.package",
    "probe": "collector.cli.probe",
    "run": "collector.cli.run",
    "verify": "collector.cli.verify",
}


class _Commands(dict[str, click.Command]):
    """The group's commands by name; a command not registered yet is registered by importing its module."""

    def __missing__(self, name: str) -> click.Command:
        if name not in COMMAND_MODULES:
            raise KeyError(name)
        importlib.import_module(COMMAND_MODULES[name])  # its decorator registers it here
        return dict.__getitem__(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default


class _LazyGroup(click.Group):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _Commands(self.commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMAND_MODULES))


@click.group(
    cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
@click.version_option(__version__, prog_name="collect")
def cli() -> None:
    """Diagnose Apigee Edge 503s caused by TLS failures between a Message Processor and a backend (a client
    certificate the backend rejects or never gets, an untrusted, expired or misnamed backend certificate, no
    common protocol or cipher suite, SNI, a plaintext port, a refused connection), and build one support
    bundle for the ticket.

    \b
    Run the whole playbook:   collect --org ORG --env ENV --proxy PROXY [options]
                              (the same as: collect run --org ...)
    Analyze offline:          collect analyze capture.pcap [keystore.json cert.json keys.log ...]
    Ask a backend directly:   collect probe backend.example.com:443 [--via mp1]
    Check a bundle:           collect verify apigee-diag-....tar.gz
    Package a playbook run:   collect package --from DIR [--org ORG --env ENV --proxy PROXY]

    Run `collect COMMAND --help` for each command's options.

    \b
    Exit codes: 0 complete; 3 bundle written but partial (a host or step failed, or interrupted);
    2 usage, input or credentials refused; 1 failed, no bundle; 130 interrupted (Ctrl-C, SIGTERM)
    before any bundle was written.
    """

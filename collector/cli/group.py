"""The `collect` click group every command module registers on, and the one JSON printer the
commands share."""

from __future__ import annotations

import json
from typing import Any

import click

from collector import __version__


def emit_json(data: Any) -> None:
    """Print one JSON document (the only JSON the commands print)."""
    click.echo(json.dumps(data, indent=2))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
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

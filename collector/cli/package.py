"""`collect package --from DIR`: a raw collection (playbooks/collect.yml's output) packaged into the
standard bundle."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from collector.cli.group import cli, emit_json
from collector.cli.run import given_flags, make_observer, print_outcome, secret_prompter
from collector.settings import complete_secrets, load_settings

EPILOG = """\b
Example (after `ansible-playbook -i hosts.ini playbooks/collect.yml -e out=/tmp/raw ...`):
  APIGEE_PASSWORD=... collect package --from /tmp/raw --org acme --env prod --proxy payments \\
      --mgmt-url http://ms.internal:8080 --username ops@acme.com

\b
--org/--env/--proxy default to the names the playbook recorded (collection.json) and must match them.
Without management API access: --no-api (the backends come from the collection when it recorded the port,
else give --backend HOST:PORT). Exit codes: 0 complete, 3 bundle written but partial,
2 usage/input/credentials refused, 1 failed, no bundle.
"""


@cli.command("package", epilog=EPILOG)
@click.option(
    "--from",
    "from_dir",
    required=True,
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="The raw directory playbooks/collect.yml wrote (its `out`).",
)
@click.option("--org", metavar="ORG", help="Edge organization [default: from the collection].")
@click.option("--env", metavar="ENV", help="Edge environment [default: from the collection].")
@click.option("--proxy", metavar="PROXY", help="API proxy [default: from the collection].")
@click.option(
    "--mgmt-url",
    metavar="URL",
    help="Management API base [env APIGEE_MGMT_URL; default https://api.enterprise.apigee.com].",
)
@click.option(
    "--username",
    metavar="NAME",
    help="Basic-auth user [env APIGEE_USERNAME]; the password comes from APIGEE_PASSWORD, ~/.netrc or "
    "a prompt.",
)
@click.option(
    "--token", metavar="TOKEN", help="Bearer token [env APIGEE_TOKEN, preferred: flags show in `ps`]."
)
@click.option(
    "--token-command", metavar="'CMD ARGS'", help="Command that prints a Bearer token; run without a shell."
)
@click.option(
    "--no-api", is_flag=True, help="Do not use the management API: package the host-side files only."
)
@click.option(
    "--backend",
    "backends",
    multiple=True,
    metavar="HOST:PORT",
    help="A backend to probe when the captures cannot show its CA names (repeatable).",
)
@click.option(
    "--public-cloud", is_flag=True, help="Edge Public Cloud: the checklist follows its must-gather list."
)
@click.option("--out", metavar="DIR", help="Where the bundle goes [default: the current directory].")
@click.option("--case", metavar="ID", help="Support case id, added to the bundle name.")
@click.option("--keep-directory", is_flag=True, help="Keep the bundle directory next to the .tar.gz.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end instead of text.")
@click.option(
    "--probe/--no-probe",
    default=None,
    help="Ask the backend for its acceptable CA names [default: when the captures are TLS 1.3 or empty].",
)
@click.option(
    "--config",
    "config_file",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="Config file (YAML or TOML) [default ~/.config/apigee-collector/config.yaml].",
)
@click.pass_context
def package_command(
    ctx: click.Context, from_dir: Path, config_file: Path | None, as_json: bool, **_values: Any
) -> int:
    """Package a raw collection into the standard bundle: analysis, manifest, SUMMARY.md and report.html.

    DIR is what playbooks/collect.yml wrote (hosts/NAME/capture.pcap, system.log excerpt and log, facts.json,
    commands.log, request/, collection.json). With management API access the proxy's TLS setup (keystore,
    alias, certs) is resolved too, so the diagnosis can tell a missing certificate from a CA mismatch.
    """
    # Imported here, not at the top: collector.run loads fabric, paramiko, httpx, cryptography and jinja2
    # (about 1 s), which the other commands need not pay (every command module is imported at start-up).
    from collector.run.from_raw import package_raw, read_raw_collection, settings_flags

    collection = read_raw_collection(from_dir)
    flags = given_flags(ctx, skip=("from_dir",))
    flags["json"] = as_json
    settings = load_settings(settings_flags(collection, flags), os.environ, config_path=config_file)
    settings = complete_secrets(settings, secret_prompter(settings) if sys.stdin.isatty() else None)
    outcome = package_raw(settings, collection, make_observer())
    if as_json:
        emit_json(outcome.json)
    else:
        print_outcome(outcome)
    return outcome.exit_code

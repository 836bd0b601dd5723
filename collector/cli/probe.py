"""`collect probe`: ask a backend which client-certificate CAs it accepts, from here or from an MP over
SSH."""

from __future__ import annotations

from pathlib import Path

import click
from cryptography import x509

from collector.cli.group import cli, emit_json
from collector.errors import UsageError


@cli.command("probe")
@click.argument("target", metavar="HOST:PORT")
@click.option("--sni", metavar="NAME", help="Server name to send [default: HOST; none for an IP address].")
@click.option("--tls", "tls_version", type=click.Choice(["1.2", "1.3"]), help="Force this TLS version.")
@click.option(
    "--cert", metavar="PEM", help="Client certificate (chain) to offer; with --via, a path on that host."
)
@click.option(
    "--key", metavar="PEM", help="Its private key (unencrypted PEM); with --via, a path on that host."
)
@click.option(
    "--via", metavar="HOST", help="Probe from this inventory host (an MP) with its openssl s_client."
)
@click.option(
    "--inventory", metavar="FILE", type=click.Path(path_type=Path), help="Inventory holding --via's host."
)
@click.option("--known-hosts", metavar="FILE", type=click.Path(path_type=Path),
              help="known_hosts file to verify --via's host key against [default ~/.ssh/known_hosts].")
@click.option(
    "--accept-new-host-keys",
    is_flag=True,
    help="Trust and record host keys not yet known (never a changed key).",
)
@click.option("--timeout", type=click.FloatRange(min=1), default=None, metavar="S",
              help="Seconds to wait for the backend [default 10, or 20 with --via].")
@click.option("--truststore", "truststores", multiple=True, type=click.Path(path_type=Path), metavar="FILE",
              help="The MP truststore's certificates (PEM, DER or an Edge cert JSON; repeatable): verify the"
                   " backend chain against them.")
@click.option("--protocol", "protocols", multiple=True, metavar="TLSv1.2",
              help="A version the MP offers (SSLInfo <Protocols>; repeatable) [default: JSSE 17's].")
@click.option("--cipher", "ciphers", multiple=True, metavar="SUITE",
              help="A cipher suite the MP offers, IANA name (SSLInfo <Ciphers>; repeatable)"
                   " [default: JSSE 17's].")
@click.option("--check-name", metavar="NAME",
              help="The name to check the backend certificate against [default: the SNI, else HOST].")
@click.option("--no-survey", is_flag=True,
              help="Only the one handshake: no chain verdict, versions, suites or SNI comparison.")
@click.option("--json", "as_json", is_flag=True, help="Print the probe result as one JSON object.")
def probe_command(target: str, sni: str | None, tls_version: str | None, cert: str | None, key: str | None,
                  via: str | None, inventory: Path | None, known_hosts: Path | None,
                  accept_new_host_keys: bool, timeout: float | None, truststores: tuple[Path, ...],
                  protocols: tuple[str, ...], ciphers: tuple[str, ...], check_name: str | None,
                  no_survey: bool, as_json: bool) -> None:
    """Ask the backend HOST:PORT which client-certificate CA names it accepts ("Acceptable client certificate
    CA names"), and how it reacts to a client without a certificate (alert, or HTTP 400 from nginx).

    Works for TLS 1.2 and 1.3 (where a capture cannot show the CertificateRequest). IPv6: [::1]:8443.
    The server certificate is NOT verified during the handshake (the probe reads what the server sends, even
    from a backend nobody trusts); the survey after it judges the backend chain as the MP's JSSE would
    (against --truststore when given: untrusted issuer, expired, hostname mismatch), tries the versions and
    cipher suites the MP offers (--protocol/--cipher, else JSSE 17's defaults) and compares a handshake with
    and without SNI, in at most 16 handshakes of --timeout seconds each.
    With --cert/--key it also shows whether the backend accepts that client certificate.
    With --via MP it runs `openssl s_client` on that host over SSH, for backends only MPs can reach.
    """
    from collector.probe import DEFAULT_TIMEOUT, default_sni, parse_target
    from collector.tls.probe_results import probe_result_to_json, render_probe_result
    from collector.tls.survey import make_offer

    host, port = parse_target(target)
    server_name = sni or default_sni(host)
    if (cert is None) != (key is None):
        raise UsageError("--cert and --key go together")
    if no_survey and (truststores or protocols or ciphers or check_name):
        raise UsageError("--truststore, --protocol, --cipher and --check-name need the survey:"
                         " drop --no-survey")
    try:
        offer = None if no_survey else make_offer(protocols, ciphers, source="command line")
    except ValueError as exc:
        raise UsageError(f"--protocol {exc}") from exc
    anchors, store = _anchors(truststores)
    if via is None:
        if inventory or known_hosts or accept_new_host_keys:
            raise UsageError(
                "--inventory, --known-hosts and --accept-new-host-keys only apply with --via HOST"
            )
        from collector.probe import probe_backend, survey_backend

        local_cert, local_key = (Path(cert) if cert else None), (Path(key) if key else None)
        if offer is None:
            result = probe_backend(host, port, sni=server_name, tls_version=tls_version, cert=local_cert,
                                   key=local_key, timeout=timeout or DEFAULT_TIMEOUT)
        else:
            result = survey_backend(host, port, sni=server_name, offer=offer, anchors=anchors,
                                    truststore=store, check_name=check_name, tls_version=tls_version,
                                    cert=local_cert, key=local_key, timeout=timeout or DEFAULT_TIMEOUT)
    else:
        if inventory is None:
            raise UsageError("--via needs --inventory FILE (the inventory that names the host)")
        from collector.remote.connection import ConnectionSettings
        from collector.remote.sclient import probe_via_inventory

        settings = ConnectionSettings(known_hosts=known_hosts, accept_new_host_keys=accept_new_host_keys)
        result = probe_via_inventory(inventory, via, settings, host, port, server_name, timeout=timeout or 20,
                                     cert=cert, key=key, tls_version=tls_version, offer=offer,
                                     anchors=anchors, truststore=store, check_name=check_name)
    if as_json:
        emit_json(probe_result_to_json(result))
    else:
        click.echo(render_probe_result(result))


def _anchors(paths: tuple[Path, ...]) -> tuple[list[x509.Certificate] | None, str | None]:
    """The truststore files' certificates that can verify a signature, and how to name them; (None, None)
    without files (the chain's trust is then not judged)."""
    if not paths:
        return None, None
    from collector.diagnosis.truststores import anchors_of, truststore_from_files

    held = truststore_from_files(list(paths)).truststore
    anchors = anchors_of(held)
    if not anchors:
        raise UsageError("--truststore: no certificate with a key to verify against (an Edge cert JSON holds"
                         " names only; give the PEM or DER certificates)")
    names = ", ".join(p.name for p in paths)
    return anchors, f"the truststore given ({len(anchors)} certificate(s) from {names})"

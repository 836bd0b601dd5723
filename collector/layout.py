"""Every path inside a support bundle, written once: writers, readers, templates and tests import these."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import PurePosixPath

SUMMARY = "SUMMARY.md"
REPORT = "report.html"
MANIFEST = "manifest.json"

REQUEST_DIR = "request"
REQUEST_COMMAND = "request/command.txt"  # the reproduction command, secrets redacted
REQUEST_RESPONSE = "request/response.txt"  # status line, headers and body the reproduction received

EDGE_DIR = "edge"
EDGE_DEPLOYMENTS = "edge/deployments.json"
EDGE_SERVERS = "edge/servers.json"  # Private Cloud /v1/servers?pod=gateway
EDGE_PROXY_BUNDLE = "edge/proxy-bundle.zip"
EDGE_TARGET_SERVERS_DIR = "edge/targetservers"
EDGE_REFERENCES_DIR = "edge/references"
EDGE_KEYSTORES_DIR = "edge/keystores"
# the resolved TLS setup (targets, keystore, alias, truststore, backends)
EDGE_RESOLUTION = "edge/resolution.json"
EDGE_SOURCES = "edge/sources.json"  # document path -> request URL (no credentials)

TRACE_DIR = "trace"
TRACE_SESSION = "trace/session.json"  # session name, transaction ids, message ids and error causes found

HOSTS_DIR = "hosts"
HOST_CAPTURE = "capture.pcap"
HOST_LOG_EXCERPT = "system.log.excerpt"  # lines for the message id(s), with context
HOST_LOG = "system.log.gz"  # the newest part of the log(s) within the size budget
HOST_FACTS = "facts.json"
HOST_COMMANDS = "commands.log"  # every command run: time, exit code, duration, bytes

PROBE_DIR = "probe"
PROBE_RESULTS = "probe/results.json"

ANALYSIS_DIR = "analysis"
ANALYSIS_HANDSHAKES = "analysis/handshakes.json"
ANALYSIS_DIAGNOSIS = "analysis/diagnosis.json"

# A raw collection (what `collect package --from DIR` reads: the hosts/ folders above plus request/) carries
# its record of the run beside them; playbooks/collect.yml and the Fabric tasks (collector/fabric) write it.
# RAW_ names are the raw collection's, not bundle paths (a bundle never holds them).
RAW_RECORD = "collection.json"
RAW_FORMAT = "apigee-collector-raw/1"

_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


def safe_component(name: str) -> str:
    """A file-name-safe form of an org/env/proxy/host/keystore name (never empty, never `.`/`..`)."""
    cleaned = _NAME_OK.sub("_", name).strip("._") or "_"
    return cleaned[:80]


def annotated_capture(backend: str) -> str:
    """`analysis/BACKEND.pcapng`: every host's capture of one backend (``ip:port``) merged for Wireshark, the
    frames the diagnosis cites commented."""
    return f"{ANALYSIS_DIR}/{safe_component(backend)}.pcapng"


def host_dir(host: str) -> str:
    return f"{HOSTS_DIR}/{safe_component(host)}"


def host_file(host: str, name: str) -> str:
    return f"{host_dir(host)}/{name}"


def keystore_dir(keystore: str) -> str:
    return f"{EDGE_KEYSTORES_DIR}/{safe_component(keystore)}"


def keystore_document(keystore: str) -> str:
    return f"{keystore_dir(keystore)}/keystore.json"


def alias_document(keystore: str, alias: str) -> str:
    return f"{keystore_dir(keystore)}/aliases/{safe_component(alias)}.json"


def cert_document(keystore: str, cert: str) -> str:
    return f"{keystore_dir(keystore)}/certs/{safe_component(cert)}.json"


def cert_pem(keystore: str, cert: str) -> str:
    """A truststore certificate as PEM (`…/certs/{cert}/export`): the anchors a backend chain is
    verified with."""
    return f"{keystore_dir(keystore)}/certs/{safe_component(cert)}.pem"


def reference_document(reference: str) -> str:
    return f"{EDGE_REFERENCES_DIR}/{safe_component(reference)}.json"


def target_server_document(name: str) -> str:
    return f"{EDGE_TARGET_SERVERS_DIR}/{safe_component(name)}.json"


def trace_transaction(txid: str) -> str:
    return f"{TRACE_DIR}/{safe_component(txid)}.json"


def bundle_name(org: str, env: str, proxy: str, when: datetime | None = None, case: str | None = None) -> str:
    """`apigee-diag-ORG-ENV-PROXY-YYYYMMDDTHHMMSSZ`, with `-caseID` before the time when a case is given."""
    stamp = (when or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    parts = ["apigee-diag", safe_component(org), safe_component(env), safe_component(proxy)]
    if case:
        parts.append(safe_component(case))
    return "-".join(parts + [stamp])


def numbered_bundle_name(name: str, serial: int) -> str:
    """The `serial`-th name a bundle may take when earlier ones are taken in the output directory (two runs in
    the same second): `NAME`, then `NAME-2`, `NAME-3`..."""
    return name if serial <= 1 else f"{name}-{serial}"


def is_inside(path: str) -> bool:
    """True when a relative bundle path stays inside the bundle (no absolute path, no `..`)."""
    p = PurePosixPath(path)
    return not p.is_absolute() and ".." not in p.parts

"""Input files sniffed by content (captures, key logs, bundles, Edge JSON, PEM, probe results)
turned into Evidence."""

from __future__ import annotations

import functools
import gzip
import json
import tarfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from collector import layout
from collector.diagnosis.bundles import BundleFiles, open_bundle
from collector.diagnosis.evidence import (
    Evidence,
    KeystoreEvidence,
    combine_evidence,
    keystore_evidence_from_document,
)
from collector.diagnosis.jsse_messages import JsseSign, read_jsse_signs
from collector.diagnosis.targets import targets_from_resolution
from collector.diagnosis.truststores import truststore_from_bundle, truststore_from_files
from collector.edge.keystores import sniff_edge_document
from collector.errors import InputError
from collector.tls.capture import is_capture, read_handshakes
from collector.tls.certificates import load_pem_chain
from collector.tls.handshake import ProbeResult
from collector.tls.keylog import KeyLog, is_keylog, load_keylog

_HEAD = 4096
_GZIP_MAGIC = b"\x1f\x8b"
CaptureProgress = Callable[[Path, int, int], None]  # (capture file, bytes read so far, its size)
_MAX_JSON = 64 << 20
_MAX_EXCERPT = 16 << 20  # the excerpt holds the message id's lines with context: a few KB in practice
_HEADERS = 64 << 10


def load_evidence(
    paths: Sequence[Path], truststores: Sequence[Path] = (), progress: CaptureProgress | None = None
) -> Evidence:
    """Sniff each file by content and build the evidence: key logs first (captures need them), then every
    other file in the order given, then the MP truststore's certificate files (`--truststore`); raises
    InputError/CaptureFormatError naming the file. `progress(file, bytes read, size)` hears how the reading
    of each capture file goes."""
    kinds = [(path, _sniff(path)) for path in paths]
    keylog: KeyLog | None = None
    notes: list[str] = []
    for path, kind in kinds:
        if kind == "keylog":
            loaded = load_keylog(path)
            keylog = loaded if keylog is None else keylog.merge(loaded)
            notes.append(f"{path.name}: NSS key log with secrets for {len(loaded.secrets)} TLS connection(s)")
    parts = [Evidence(notes=tuple(notes))]
    for path, kind in kinds:
        if kind == "keylog":
            parts.append(Evidence(sources=(str(path),)))
        elif kind == "capture":
            parts.append(_capture_evidence(path, path.name, keylog, progress))
        elif kind == "bundle":
            parts.append(evidence_from_bundle(path, keylog))
        elif kind == "pem":
            parts.append(_pem_evidence(path))
        else:
            parts.append(_json_evidence(path))
    if truststores:
        parts.append(truststore_from_files(truststores))
    return combine_evidence(parts)


def evidence_from_bundle(root: Path, keylog: KeyLog | None = None) -> Evidence:
    """Captures, keystore documents, the resolved key alias and probe results of one support bundle (directory
    or `.tar.gz`, read in place) through `collector/layout.py` paths."""
    with open_bundle(root) as files:
        resolution = _bundle_resolution(files)
        parts = [resolution, _bundle_targets(files)]
        for rel in files.matching(f"{layout.HOSTS_DIR}/*/{layout.HOST_CAPTURE}"):
            parts.append(_bundle_capture(files, rel, keylog))
        parts.append(_bundle_keystores(files, _truststore_only_folders(files)))
        parts.append(truststore_from_bundle(files, resolution.truststore_name))
        parts.append(_bundle_jsse_signs(files))
        if files.exists(layout.PROBE_RESULTS):
            data = _json_or_error(files.read(layout.PROBE_RESULTS), files.where(layout.PROBE_RESULTS))
            probes = _probe_results(data, files.where(layout.PROBE_RESULTS))
            parts.append(Evidence(probes=probes, sources=(files.cite(layout.PROBE_RESULTS),)))
    return combine_evidence(parts)


def _sniff(path: Path) -> str:
    if not path.exists():
        raise InputError(path, "does not exist")
    if path.is_dir():
        if (path / layout.MANIFEST).is_file():
            return "bundle"
        raise InputError(path, f"is a directory but not a support bundle (no {layout.MANIFEST})")
    try:
        with path.open("rb") as stream:
            head = stream.read(_HEAD)
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror or exc})") from exc
    if not head:
        raise InputError(path, "is empty")
    if head.startswith(_GZIP_MAGIC):
        return _sniff_gzip(path)
    if is_capture(head):
        return "capture"
    if is_keylog(head):
        return "keylog"
    stripped = head.lstrip()
    if stripped.startswith(b"-----BEGIN"):
        return "pem"
    if stripped[:1] in (b"{", b"["):
        return "json"
    raise InputError(path, "is not a capture, support bundle, Edge keystore/alias/cert JSON, "
                           "PEM chain or NSS key log")


def _sniff_gzip(path: Path) -> str:
    try:
        with gzip.open(path, "rb") as stream:
            inner = stream.read(_HEAD)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(path, f"is a damaged gzip file ({exc})") from exc
    if is_capture(inner):
        return "capture"
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if member.name.rstrip("/").split("/")[-1] == layout.MANIFEST:
                    return "bundle"
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise InputError(
            path, f"is gzip-compressed but neither a capture nor a readable bundle ({exc})"
        ) from exc
    raise InputError(path, f"is a .tar.gz without {layout.MANIFEST}, so not a support bundle")


def _capture_evidence(
    path: Path, cite: str, keylog: KeyLog | None, progress: CaptureProgress | None = None
) -> Evidence:
    told = None if progress is None else functools.partial(progress, path)
    result = read_handshakes(path, keylog=keylog, progress=told)
    return _from_capture_result(result, cite)


def _from_capture_result(result: Any, cite: str) -> Evidence:
    # the reader names the file already when `cite` is its name: no copy of every handshake then
    handshakes = tuple(h if h.source == cite else replace(h, source=cite) for h in result.handshakes)
    attempts = tuple(a if a.source == cite else replace(a, source=cite) for a in result.connection_attempts)
    notes = tuple(f"{cite}: {note}" for note in result.notes)
    if not handshakes:
        notes += (f"{cite}: no TLS handshake among {result.packets} packet(s)",)
    return Evidence(handshakes=handshakes, notes=notes, sources=(cite,), connection_attempts=attempts)


def _bundle_capture(files: BundleFiles, rel: str, keylog: KeyLog | None) -> Evidence:
    """One host's capture; a damaged one (tcpdump killed, empty file) is a note,
    the rest of the bundle still counts."""
    try:
        result = read_handshakes(files.path_like(rel), keylog=keylog)
    except InputError as exc:
        defect = exc.defect
        return Evidence(notes=(f"{files.cite(rel)}: unreadable capture ({defect})",),
                        sources=(files.cite(rel),))
    return _from_capture_result(result, files.cite(rel))


def _bundle_keystores(files: BundleFiles, truststore_folders: frozenset[str] = frozenset()) -> Evidence:
    """The keystore documents of the bundle; the folders of truststores (`truststore_folders`) are not the
    MP's keystore: their certificates are anchors, read by `truststores.truststore_from_bundle`."""
    by_folder: dict[str, list[KeystoreEvidence]] = {}
    sources: list[str] = []
    notes: list[str] = []
    for rel in files.matching(f"{layout.EDGE_KEYSTORES_DIR}/*/**/*.json"):
        if rel.split("/")[2] in truststore_folders:
            continue
        cite = files.cite(rel)
        data = _json_or_error(files.read(rel), files.where(rel))
        kind = sniff_edge_document(data)
        if kind is None:
            notes.append(f"{cite}: not a keystore, alias or cert document (ignored)")
            continue
        folder = rel[len(layout.EDGE_KEYSTORES_DIR) + 1 :].split("/")[0]
        try:
            entries = keystore_evidence_from_document(data, cite, keystore=folder)
        except ValueError as exc:
            raise InputError(files.where(rel), f"is not a valid Edge {kind} document: {exc}") from exc
        by_folder.setdefault(folder, []).extend(entries)
        sources.append(cite)
    named: list[KeystoreEvidence] = []
    for folder, found in by_folder.items():
        # The folder name is file-name-safe; the keystore document beside the alias documents has the
        # real name.
        real = next((e.keystore for e in found if e.document == "keystore"), folder)
        named.extend(replace(e, keystore=real) for e in found)
    return Evidence(keystores=tuple(named), notes=tuple(notes), sources=tuple(sources))


def _bundle_resolution(files: BundleFiles) -> Evidence:
    """KeyAlias and keystore of the targets with client authentication, from `edge/resolution.json`."""
    if not files.exists(layout.EDGE_RESOLUTION):
        return Evidence()
    cite = files.cite(layout.EDGE_RESOLUTION)
    data = _json_or_error(files.read(layout.EDGE_RESOLUTION), files.where(layout.EDGE_RESOLUTION))
    targets = [t for t in data.get("targets", []) if isinstance(t, dict)] if isinstance(data, dict) else []
    with_auth = [t for t in targets if t.get("client_auth_enabled")] or targets
    aliases = [str(t["key_alias"]) for t in with_auth if t.get("key_alias")]
    keystores = [str(t["keystore"]) for t in with_auth if t.get("keystore")]
    notes = [f"{cite}: {finding}" for finding in (data.get("findings", []) if isinstance(data, dict) else [])]
    if len(set(aliases)) > 1 or len(set(keystores)) > 1:
        notes.append(f"{cite}: the targets use several keystores/aliases; judging by keystore "
                     f"{keystores[0] if keystores else '?'} alias {aliases[0] if aliases else '?'}")
    truststores = list(dict.fromkeys(str(t["truststore"]) for t in targets if t.get("truststore")))
    if len(truststores) > 1:
        notes.append(f"{cite}: the targets use several truststores; judging by truststore {truststores[0]}")
    hosts = tuple(dict.fromkeys(str(t["host"]) for t in targets if t.get("host")))
    return Evidence(key_alias=aliases[0] if aliases else None, keystore=keystores[0] if keystores else None,
                    notes=tuple(notes), sources=(cite,),
                    truststore_name=truststores[0] if truststores else None, target_hosts=hosts)


def _truststore_only_folders(files: BundleFiles) -> frozenset[str]:
    """Bundle folders (under `edge/keystores/`) of stores the targets use as truststore, never as keystore."""
    if not files.exists(layout.EDGE_RESOLUTION):
        return frozenset()
    data = _json_or_error(files.read(layout.EDGE_RESOLUTION), files.where(layout.EDGE_RESOLUTION))
    targets = [t for t in data.get("targets", []) if isinstance(t, dict)] if isinstance(data, dict) else []
    keystores = {layout.safe_component(str(t["keystore"])) for t in targets if t.get("keystore")}
    trusted = {layout.safe_component(str(t["truststore"])) for t in targets if t.get("truststore")}
    return frozenset(trusted - keystores)


def _bundle_targets(files: BundleFiles) -> Evidence:
    """Where the targets send the message processor (host, port, addresses), from `edge/resolution.json`."""
    if not files.exists(layout.EDGE_RESOLUTION):
        return Evidence()
    data = _json_or_error(files.read(layout.EDGE_RESOLUTION), files.where(layout.EDGE_RESOLUTION))
    return Evidence(targets=targets_from_resolution(data, files.cite(layout.EDGE_RESOLUTION)))


def _bundle_jsse_signs(files: BundleFiles) -> Evidence:
    """What the MP's JSSE said: the trace's error.cause, and the MP log lines of the reproduction's message id
    (context lines of other requests in the excerpt are not its words)."""
    ids: list[str] = []
    signs: list[JsseSign] = []
    sources = []
    if files.exists(layout.TRACE_SESSION):
        cite = files.cite(layout.TRACE_SESSION)
        session = _json_or_error(files.read(layout.TRACE_SESSION), files.where(layout.TRACE_SESSION))
        if isinstance(session, dict):
            ids += [str(m) for m in session.get("message_ids") or [] if m]
            causes = [str(c) for c in session.get("error_causes") or [] if c]
            signs += read_jsse_signs(causes, f"{cite} (error.cause)")
            sources.append(cite)
    if files.exists(layout.REQUEST_RESPONSE):
        ids += _message_id_headers(files.read(layout.REQUEST_RESPONSE)[:_HEADERS])
    for rel in files.matching(f"{layout.HOSTS_DIR}/*/{layout.HOST_LOG_EXCERPT}"):
        with files.open(rel) as stream:
            lines = stream.read(_MAX_EXCERPT).decode("utf-8", "replace").splitlines()
        if ids:
            lines = [line for line in lines if any(i in line for i in ids)]
        signs += read_jsse_signs(lines, files.cite(rel))
        sources.append(files.cite(rel))
    return Evidence(jsse_signs=tuple(signs), sources=tuple(sources))


def _message_id_headers(head: bytes) -> list[str]:
    """`X-Apigee.Message-ID` values among the reproduction's response headers."""
    values = []
    for raw in head.split(b"\r\n\r\n", 1)[0].splitlines():
        name, sep, value = raw.decode("latin-1").partition(":")
        if sep and name.strip().lower() == "x-apigee.message-id" and value.strip():
            values.append(value.strip())
    return values


def _pem_evidence(path: Path) -> Evidence:
    text = _read_text(path)
    if "PRIVATE KEY-----" in text and "CERTIFICATE-----" not in text:
        raise InputError(path, "is a private key; analyze needs the certificate chain only "
                               "(never share private keys)")
    chain = load_pem_chain(text)
    if not chain:
        raise InputError(path, "holds no PEM certificate")
    return Evidence(keystores=(KeystoreEvidence(None, None, None, chain, path.name, None, "pem"),),
                    sources=(str(path),))


def _json_evidence(path: Path) -> Evidence:
    if path.stat().st_size > _MAX_JSON:
        raise InputError(path, f"is larger than {_MAX_JSON >> 20} MB, too large for a JSON document")
    data = _json_or_error(_read_text(path).encode("utf-8"), str(path))
    kind = sniff_edge_document(data)
    if kind is not None:
        try:
            entries = keystore_evidence_from_document(data, path.name)
        except ValueError as exc:
            raise InputError(path, f"is not a valid Edge {kind} document: {exc}") from exc
        return Evidence(keystores=entries, sources=(str(path),))
    if isinstance(data, dict) and "targets" in data and "backends" in data:  # a saved edge/resolution.json
        return Evidence(targets=targets_from_resolution(data, path.name), sources=(str(path),))
    if isinstance(data, dict) and "target" in data and "handshake" in data:
        data = [data]  # one `collect probe --json` object
    if isinstance(data, list) and data and all(isinstance(i, dict) and "handshake" in i for i in data):
        return Evidence(probes=_probe_results(data, str(path)), sources=(str(path),))
    raise InputError(path, "is JSON but neither an Edge keystore/alias/cert document nor probe results")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, "is not UTF-8 text") from exc
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror or exc})") from exc


def _json_or_error(raw: bytes, cite: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(cite, "is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            cite, f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    except RecursionError as exc:  # json raises it for arrays/objects nested thousands deep
        raise InputError(cite, "is JSON nested too deeply to read") from exc


def _probe_results(data: object, where: str) -> tuple[ProbeResult, ...]:
    # Imported here: the probe's survey model (eight dataclasses, compiled at import) is ~5 % of what
    # `collect analyze` of a capture would import, and a capture never needs it
    from collector.tls.probe_results import probe_results_from_json

    return probe_results_from_json(data, where)

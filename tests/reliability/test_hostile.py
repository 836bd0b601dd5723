"""Hostile input through the real `collect`: names with shell metacharacters, quotes, newlines and unicode;
inventory values that reach the hosts; hostile proxy bundle zips; malformed inventories; truncated, garbage or
enormous captures. Each is handled or gets one clear error; never a traceback; nothing outside --out is
written and nothing reaches a shell unquoted (canary files, and the argv a wrapper records on the host)."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import os
import shutil
import stat
import struct
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.lab.sshd import LAB_USER
from tests.reliability.conftest import (
    FaultLab,
    Run,
    capture_dirs,
    clean_output,
    invoke,
    no_traceback,
    run_collect,
    run_dirs,
)

CANARY_NAME = "collector-canary"
# Shell metacharacters, quotes, whitespace, newlines, and a few non-ASCII letters and symbols.
HOSTILE = "$`\"'\\;|&<>(){}[]*?!~#= \t\n\r" + "éßπ中文😀\u202e\u00a0"


def _canary_payloads(canary: Path) -> list[str]:
    c = str(canary)
    return [f"$(touch {c})", f"`touch {c}`", f"; touch {c}", f"' ; touch {c} ; '", f'" && touch {c} "',
            f"\n touch {c}\n", f"| touch {c}"]


@contextlib.contextmanager
def _canary() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="reliability-canary-"))
    directory.chmod(0o777)  # writable by the lab user too: a command that got through would succeed
    try:
        yield directory / CANARY_NAME
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --- H01: hostile org / env / proxy names (property) --------------------------------------------------------

_hostile_text = st.text(alphabet=st.sampled_from(HOSTILE + "abc-._"), min_size=0, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(["--org", "--env", "--proxy"]), head=_hostile_text,
       bad=st.sampled_from(list(HOSTILE)), payload=st.integers(0, 6), tail=_hostile_text)
@example(flag="--proxy", head="p", bad="$", payload=0, tail="")
@example(flag="--org", head="", bad="\n", payload=2, tail="é")
def test_h01_hostile_org_env_proxy_names_are_refused(
    tmp_path: Path, flag: str, head: str, bad: str, payload: int, tail: str
) -> None:
    out = tmp_path / f"out-{uuid.uuid4().hex}"
    out.mkdir()
    with _canary() as canary:
        value = head + bad + _canary_payloads(canary)[payload] + tail
        names = {"--org": "o", "--env": "e", "--proxy": "p", flag: value}
        code, output = invoke(["--org", names["--org"], "--env", names["--env"], "--proxy", names["--proxy"],
                                "--mgmt-url", "http://127.0.0.1:9", "--token", "t", "--capture-seconds", "1",
                                "--out", str(out)])
        assert code == 2, output
        clean_output(output)
        assert output.count("\n") <= 2, output  # one clear error
        assert flag.lstrip("-") in output
        assert not canary.exists()
    assert list(out.iterdir()) == []


# --- H02: hostile inventory values and reproduction command that reach the host (property, lab) -------------

_WRAPPER = (
    "#!/bin/sh\n"
    "# Records the argv tcpdump really received on the host, one NUL-terminated word each, "
    "then runs tcpdump.\n"
    '# ${0%/*}, not $(dirname "$0"): command substitution drops the trailing newline a hostile folder name '
    "may end in.\n"
    """for word; do printf '%s\\0' "$word"; done >> "${0%/*}/argv.log"\n"""
    'exec /usr/bin/tcpdump "$@"\n'
)


def _path_segment(text: str) -> str:
    return text.replace("/", "_").replace("\0", "_") or "_"


@dataclasses.dataclass
class _HostileHost:
    capture_dir: Path
    system_log: Path
    tcpdump: Path

    @property
    def argv_log(self) -> Path:
        return self.tcpdump.parent / "argv.log"


def _hostile_host(base: Path, segment: str) -> _HostileHost:
    lab_user = LAB_USER
    capture_dir = base / f"cap {segment}"
    log_dir = base / f"log {segment}"
    bin_dir = base / f"bin {segment}"
    for directory in (capture_dir, log_dir, bin_dir):
        directory.mkdir()
        directory.chmod(0o755)
    capture_dir.chmod(0o1777)
    system_log = log_dir / "system.log"
    system_log.write_text("2026-11-27 10:00:00,000 org:o env:e api:p rev:1 messageid:rrt-x INFO quiet\n")
    system_log.chmod(0o644)
    tcpdump = bin_dir / "tcpdump"
    tcpdump.write_text(_WRAPPER)
    tcpdump.chmod(0o755)
    shutil.chown(bin_dir, user=lab_user)
    return _HostileHost(capture_dir, system_log, tcpdump)


@pytest.fixture(scope="module")
def hostile_base() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="reliability-hostile-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


_segment = st.text(alphabet=st.sampled_from(HOSTILE.replace("\n", "").replace("\r", "") + "ab-"), min_size=1,
                   max_size=10)


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segment=_segment, payload=st.integers(0, 6))
@example(segment="$(id)'\"`;|&é😀", payload=0)
@example(segment="ab", payload=5)  # folder names that end in a newline
@pytest.mark.lab
@pytest.mark.slow
def test_h02_hostile_paths_and_reproduction_reach_the_host_quoted(fault_lab: FaultLab, hostile_base: Path,
                                                                  tmp_path_factory: pytest.TempPathFactory,
                                                                  segment: str, payload: int) -> None:
    lab = fault_lab.lab
    base = Path(tempfile.mkdtemp(prefix="case-", dir=hostile_base))
    base.chmod(0o755)
    with _canary() as canary:
        host = _hostile_host(
            base, _path_segment(segment + _canary_payloads(canary)[payload].replace("/", "_"))
        )
        mp1 = next(h for h in lab.ssh.hosts if h.name == "mp1")
        inventory = {"defaults": {"user": LAB_USER, "identity_file": str(lab.client_key), "sudo": True},
                     "hosts": {"mp1": {"address": mp1.address, "port": mp1.port, "role": "message-processor",
                                       "capture_dir": str(host.capture_dir),
                                       "system_log": str(host.system_log),
                                       "tcpdump": str(host.tcpdump)}}}
        inventory_path = base / "inventory.yaml"
        inventory_path.write_text(yaml.safe_dump(inventory, allow_unicode=True))
        hostile_header = f"X-Hostile: {segment}{_canary_payloads(canary)[payload]}"
        curl = ["curl", "-sS", "-H", hostile_header, lab.reproduction_url]
        out = tmp_path_factory.mktemp("hostile-run") / "out"
        run = run_collect(lab, out, "--org", lab.org, "--env", lab.env, "--proxy", lab.proxy, "--no-api",
                          "--backend", f"{lab.backend.address}:{lab.backend.port}",
                          "--inventory", str(inventory_path), "--known-hosts", str(lab.known_hosts),
                          "--capture-seconds", "1",
                          "--reproduce", " ".join(_shell_quote(a) for a in curl), "--json")
        no_traceback(run)
        assert "internal error" not in run.terminal
        assert run.returncode in (0, 3), run.terminal
        assert not canary.exists()
        assert run.step("mp1", "start-capture")["status"] == "ok", run.step("mp1", "start-capture")
        assert run.step("mp1", "fetch-capture")["status"] == "ok"
        assert run.step("mp1", "logs")["status"] == "ok"
        # What tcpdump really got on the host: every hostile path arrived as one intact word.
        words = host.argv_log.read_bytes().split(b"\0")[:-1]
        argv = [w.decode() for w in words]
        target = argv[argv.index("-w") + 1]
        assert target.startswith(str(host.capture_dir) + "/apigee-collector-"), argv
        assert argv[-7:] == [
            "(", "host", lab.backend.address, ")", "and", "port", str(lab.backend.port)
        ], argv
        assert not run_dirs([host.capture_dir])
        assert not run_dirs(capture_dirs(lab.ssh))
        assert run.leftovers() == []
        command = run.read("request/command.txt").decode()
        assert "X-Hostile" in command


def _shell_quote(word: str) -> str:
    import shlex

    return shlex.quote(word)


# --- H03-H06: hostile proxy bundle zips from the management API ---------------------------------------------

def _zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in entries:
            archive.writestr(name, body)
    return buffer.getvalue()


def _good_target(lab: Any) -> bytes:
    return lab.emulator._bundle_zip()  # the emulator's own valid bundle, hostile entries are added to it


def _with_entries(valid: bytes, extra: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    entries: list[tuple[zipfile.ZipInfo | str, bytes]] = []
    with zipfile.ZipFile(io.BytesIO(valid)) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    return _zip(entries + extra)


def _symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()  # type: ignore[return-value]


def _hostile_zip(kind: str, lab: Any, escape: Path) -> bytes:
    valid = _good_target(lab)
    if kind == "dotdot":
        return _with_entries(valid, [("apiproxy/targets/../../../../.." + str(escape), b"<escaped/>")])
    if kind == "absolute":
        return _with_entries(valid, [(str(escape), b"<escaped/>")])
    if kind == "symlink":
        info, target = _symlink("apiproxy/targets/evil.xml", "/etc/shadow")  # type: ignore[misc]
        return _with_entries(valid, [(info, target)])
    bomb = b"<TargetEndpoint name='default'>" + b" " * (32 * 1024 * 1024) + b"</TargetEndpoint>"
    return _with_entries(valid, [("apiproxy/targets/bomb.xml", bomb)])


@pytest.mark.lab
@pytest.mark.parametrize("kind", [
    pytest.param("dotdot", id="H03-zip-dotdot-path"),
    pytest.param("absolute", id="H04-zip-absolute-path"),
    pytest.param("symlink", id="H05-zip-symlink"),
    pytest.param("bomb", id="H06-zip-decompression-bomb"),
])
def test_hostile_proxy_bundle_is_one_clear_error(fault_lab: FaultLab, tmp_path: Path, kind: str) -> None:
    lab = fault_lab.lab
    escape = Path(tempfile.gettempdir()) / f"reliability-escape-{uuid.uuid4().hex}.xml"
    original = lab.emulator.config
    lab.emulator.config = dataclasses.replace(original, proxy_bundle=_hostile_zip(kind, lab, escape))
    try:
        run = run_collect(lab, tmp_path / "out", "--org", lab.org, "--env", lab.env, "--proxy", lab.proxy,
                          "--mgmt-url", str(lab.emulator_url), "--username", lab.username, "--inventory",
                          str(fault_lab.inventory), "--known-hosts", str(fault_lab.known_hosts),
                          "--capture-seconds", "1", "--no-trace")
    finally:
        lab.emulator.config = original
    no_traceback(run)
    assert "internal error" not in run.terminal
    assert run.returncode == 2, run.terminal
    lines = [line for line in run.stderr.splitlines()
             if line.startswith("collect: ") and "proxy-bundle" in line]
    assert len(lines) == 1, run.stderr
    assert not escape.exists()
    assert list(run.out.iterdir()) == []  # nothing written, not even a partial bundle
    assert not run_dirs(fault_lab.all_capture_dirs)  # and no SSH host was touched


# --- H07: malformed inventories -----------------------------------------------------------------------------

MALFORMED_INVENTORIES = {
    "yaml-syntax": b"hosts:\n  mp1: {address: 127.0.0.11\n",
    "not-a-mapping": b"- just\n- a list\n",
    "hosts-is-a-list": b"hosts:\n  - 127.0.0.11\n",
    "unknown-key": b"hosts:\n  mp1: {address: 127.0.0.11, role: message-processor, rm_rf: yes}\n",
    "metachar-address": b"hosts:\n  mp1: {address: '127.0.0.11; touch CANARY', role: message-processor}\n",
    "metachar-name": b"hosts:\n  'mp$(touch CANARY)': {address: 127.0.0.11, role: message-processor}\n",
    "bad-port": b"hosts:\n  mp1: {address: 127.0.0.11, port: 'twenty-two', role: message-processor}\n",
    "bad-role": b"hosts:\n  mp1: {address: 127.0.0.11, role: database}\n",
    "binary": bytes(range(256)) * 8,
    "empty": b"",
    "yaml-bomb": b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                 b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                 b"hosts: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
    "ansible-ini-garbage": b"[message_processors\nmp1 ansible_host=127.0.0.11 ansible_port=notaport\n",
}


@pytest.mark.parametrize("case", [pytest.param(k, id=f"H07-{k}") for k in MALFORMED_INVENTORIES])
def test_h07_malformed_inventory_is_one_clear_error(tmp_path: Path, case: str) -> None:
    with _canary() as canary:
        path = tmp_path / "inventory.yaml"
        path.write_bytes(MALFORMED_INVENTORIES[case].replace(b"CANARY", str(canary).encode()))
        out = tmp_path / "out"
        code, output = invoke(["--org", "o", "--env", "e", "--proxy", "p", "--mgmt-url", "http://127.0.0.1:9",
                                "--token", "t", "--inventory", str(path), "--capture-seconds", "1",
                                "--out", str(out)])
        clean_output(output)
        assert code == 2, output
        assert str(path) in output, output
        assert output.count("\n") <= 2, output
        assert not canary.exists()
    assert not out.exists() or list(out.iterdir()) == []


# --- H08: truncated, garbage and enormous captures ----------------------------------------------------------

def _pcap_header(snaplen: int = 262144) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)


def _capture(kind: str, directory: Path, real: bytes) -> Path:
    path = directory / f"{kind}.pcap"
    if kind == "truncated":
        path.write_bytes(real[: len(real) * 2 // 3])
    elif kind == "garbage":
        path.write_bytes(os.urandom(256 * 1024))
    elif kind == "huge-record":  # a record header claiming a 4 GiB packet, then little data
        path.write_bytes(
            _pcap_header(0xFFFFFFFF) + struct.pack("<IIII", 0, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"x" * 64
        )
    elif kind == "gzip-bomb":  # 64 MiB of zeros (4 Mi empty records) inside a 64 KiB .pcap.gz
        path = directory / "bomb.pcap.gz"
        with gzip.open(path, "wb", compresslevel=1) as handle:
            handle.write(_pcap_header())
            chunk = b"\0" * (1 << 20)
            for _ in range(64):
                handle.write(chunk)
    return path


@pytest.mark.parametrize("kind", [pytest.param(k, id=f"H08-{k}")
                                  for k in ("truncated", "garbage", "huge-record", "gzip-bomb")])
def test_h08_bad_capture_is_handled_by_analyze(tmp_path: Path, fault_lab_capture: bytes, kind: str) -> None:
    path = _capture(kind, tmp_path, fault_lab_capture)
    before = set(tmp_path.iterdir())
    code, output = invoke(["analyze", str(path), "--json"])
    clean_output(output)
    assert code in (0, 2), output
    if code == 2:
        assert str(path) in output and output.count("\n") <= 2, output
    assert set(tmp_path.iterdir()) == before


@pytest.fixture(scope="module")
def fault_lab_capture() -> bytes:
    """A real capture of a failing handshake (the fixtures' own)."""
    captures = sorted(Path(__file__).parents[1].joinpath("fixtures", "captures").rglob("*.pcap"))
    assert captures
    return max(captures, key=lambda p: p.stat().st_size).read_bytes()


# --- H10: hostile support bundles given back to `collect analyze` / `collect verify` ------------------------

_TOP = "apigee-diag-o-e-p-20260101T000000Z/"


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = b"\0" * count
        self.left -= count
        return count


def _hostile_bundle(kind: str, path: Path, escape: Path) -> None:
    def member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o600
        return info, io.BytesIO(data)

    def special(name: str, kind_: bytes, target: str = "") -> tuple[tarfile.TarInfo, None]:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind_, target
        if kind_ == tarfile.CHRTYPE:
            info.devmajor, info.devminor = 1, 5
        return info, None

    capture = _TOP + "hosts/mp1/capture.pcap"
    members: list[tuple[tarfile.TarInfo, Any]] = [member(_TOP + "manifest.json", b"{}")]
    if kind == "dotdot":
        members.append(member(_TOP + "../../../.." + str(escape), b"x"))
    elif kind == "absolute":
        members.append(member(str(escape), b"x"))
    elif kind == "symlink":
        members.append(special(capture, tarfile.SYMTYPE, "/etc/shadow"))
    elif kind == "hardlink":
        members.append(special(capture, tarfile.LNKTYPE, "/etc/shadow"))
    elif kind == "device":
        members.append(special(capture, tarfile.CHRTYPE))
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as packed, \
            tarfile.open(fileobj=packed, mode="w|") as tar:
        for info, data in members:
            tar.addfile(info, data)
        if kind == "bomb":  # 256 MiB of zeros as a capture, ~1 MiB on disk
            info = tarfile.TarInfo(capture)
            info.size = 256 << 20
            tar.addfile(info, io.BufferedReader(_Zeros(info.size)))


@pytest.mark.parametrize("command", ["analyze", "verify"])
@pytest.mark.parametrize("kind", [pytest.param(k, id=f"H10-{k}")
                                  for k in ("dotdot", "absolute", "symlink", "hardlink", "device", "bomb")])
def test_h10_hostile_bundle_given_back_to_the_tool(tmp_path: Path, kind: str, command: str) -> None:
    escape = Path(tempfile.gettempdir()) / f"reliability-escape-{uuid.uuid4().hex}"
    path = tmp_path / f"{kind}.tar.gz"
    _hostile_bundle(kind, path, escape)
    before = set(tmp_path.iterdir())
    code, output = invoke([command, str(path)])
    clean_output(output)
    assert code in (0, 2), output
    if code == 2 or command == "verify":
        assert code == 2 and str(path) in output and output.count("\n") <= 2, output
    assert "root:" not in output  # /etc/shadow was never read
    assert not escape.exists()
    assert set(tmp_path.iterdir()) == before



# --- H11: JSON nested thousands deep given to `collect analyze` / `collect verify` --------------------------

@pytest.mark.parametrize("case", ["array", "object", "manifest"], ids=lambda c: f"H11-{c}")
def test_h11_deeply_nested_json_is_one_clear_error(tmp_path: Path, case: str) -> None:
    depth = 100_000
    if case == "manifest":
        path = tmp_path / "deep.tar.gz"
        data = ("[" * depth + "]" * depth).encode()
        with tarfile.open(path, "w:gz") as tar:
            info = tarfile.TarInfo(_TOP + "manifest.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        commands = ["verify", "analyze"]
    else:
        path = tmp_path / "deep.json"
        path.write_text("[" * depth + "]" * depth if case == "array" else '{"a":' * depth + "1" + "}" * depth)
        commands = ["analyze"]
    for command in commands:
        code, output = invoke([command, str(path)])
        clean_output(output)
        assert code in (0, 2), output
        if command == "verify" or case != "manifest":
            assert code == 2 and str(path) in output and output.count("\n") <= 2, output


# --- H12-H14: a malformed known_hosts, an unusable identity file, a config file that is not UTF-8 -----------

def _one_host_inventory(fault_lab: FaultLab, tmp_path: Path, **override: str) -> Path:
    inventory = yaml.safe_load(fault_lab.inventory.read_text())
    inventory["hosts"] = {"mp1": {**inventory["hosts"]["mp1"], **override}}
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def _host_only_run(fault_lab: FaultLab, tmp_path: Path, inventory: Path, known_hosts: Path) -> Run:
    lab = fault_lab.lab
    run = run_collect(lab, tmp_path / "out", "--org", lab.org, "--env", lab.env, "--proxy", lab.proxy,
                      "--no-api", "--backend", f"{lab.backend.address}:{lab.backend.port}", "--inventory",
                      str(inventory), "--known-hosts", str(known_hosts), "--capture-seconds", "1")
    no_traceback(run)
    assert "internal error" not in run.terminal, run.terminal
    return run


@pytest.mark.lab
@pytest.mark.parametrize("content", [
    pytest.param(bytes(range(128, 256)) * 8, id="H12-binary"),
    pytest.param(b"[127.0.0.11]:1 ssh-ed25519 notbase64!!\n", id="H12-bad-key-line"),
])
def test_h12_malformed_known_hosts_is_one_clear_error(
    fault_lab: FaultLab, tmp_path: Path, content: bytes
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_bytes(content + fault_lab.known_hosts.read_bytes())
    run = _host_only_run(fault_lab, tmp_path, _one_host_inventory(fault_lab, tmp_path), known_hosts)
    assert run.returncode in (2, 3), run.terminal
    assert str(known_hosts) in run.terminal


@pytest.mark.lab
@pytest.mark.parametrize("identity", ["/nonexistent/key", "garbage"], ids=["H13-missing", "H13-not-a-key"])
def test_h13_unusable_identity_file_is_named_not_unreachable(fault_lab: FaultLab, tmp_path: Path,
                                                             identity: str) -> None:
    if identity == "garbage":
        (tmp_path / "garbage").write_text("not a key\n")
        identity = str(tmp_path / "garbage")
    inventory = _one_host_inventory(fault_lab, tmp_path, identity_file=identity)
    run = _host_only_run(fault_lab, tmp_path, inventory, fault_lab.known_hosts)
    assert run.returncode == 3, run.terminal
    record = run.step("mp1", "connect")
    assert record["status"] == "failed" and record["reason"] != "unreachable", record
    assert identity in record["message"], record


def test_h14_config_file_not_utf8_is_one_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(b"\x00\xff: [unclosed\n")
    out = tmp_path / "out"
    code, output = invoke(["--org", "o", "--env", "e", "--proxy", "p", "--mgmt-url", "http://127.0.0.1:9",
                           "--token", "t", "--config", str(config), "--out", str(out)])
    clean_output(output)
    assert code == 2 and str(config) in output and output.count("\n") <= 2, output
    assert not out.exists() or list(out.iterdir()) == []

"""playbooks/collect.yml with real ansible-core against the lab's sshd hosts, then `collect package` on
its output."""

from __future__ import annotations

import dataclasses
import gzip
import json
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from collector import layout
from collector.remote import commands
from collector.remote.capture import count_pcap_records
from collector.remote.facts import HostFacts
from tests.lab.sshd import assert_run_left_nothing
from tests.playbooks.conftest import (
    BIN,
    COLLECT_YML,
    PLAYBOOKS,
    PackageRun,
    PlaybookRun,
    ansible_env,
    run_package,
    run_tool,
)

MPS = ("mp1", "mp2")
HOSTS = (*MPS, "backend")

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_syntax_check(tmp_path: Path) -> None:
    # Given an inventory with both groups, When ansible-playbook checks the syntax, Then it passes.
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[message_processors]\nmp1 ansible_host=127.0.0.11\n[backends]\nbackend ansible_host=127.0.0.21\n"
    )
    done = run_tool(
        [str(BIN / "ansible-playbook"), "--syntax-check", "-i", str(inventory), str(COLLECT_YML)],
        ansible_env(tmp_path),
        tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ansible_lint_is_clean(tmp_path: Path) -> None:
    # Given the playbook and its role, When ansible-lint runs offline (production profile), Then nothing
    # is found.
    done = run_tool(
        [str(BIN / "ansible-lint"), "--offline", "--profile", "production", "collect.yml", "roles/collector"],
        ansible_env(tmp_path),
        PLAYBOOKS,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_playbook_run_succeeds_on_every_host(playbook_run: PlaybookRun) -> None:
    done = playbook_run.done
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    record = playbook_run.record
    assert [h["name"] for h in record["hosts"]] == list(HOSTS)
    for host in record["hosts"]:
        failed = [s for s in host["steps"] if s["status"] == "failed"]
        assert not failed, failed
        assert {s["step"] for s in host["steps"]} >= {
            "start-capture",
            "stop-capture",
            "fetch-capture",
            "logs",
            "facts",
        }
    assert record["reproduction"]["status"] == 503
    assert record["message_ids"] == record["reproduction"]["message_ids"] != []


def test_raw_layout_matches_the_python_collector(playbook_run: PlaybookRun) -> None:
    # Then every host has the Python collector's files under layout.host_file, MPs also the logs.
    out = playbook_run.out
    for host in HOSTS:
        names = [layout.HOST_CAPTURE, layout.HOST_FACTS, layout.HOST_COMMANDS]
        if host in MPS:
            names += [layout.HOST_LOG_EXCERPT, layout.HOST_LOG]
        for name in names:
            assert (out / layout.host_file(host, name)).is_file(), layout.host_file(host, name)
        assert count_pcap_records(out / layout.host_file(host, layout.HOST_CAPTURE)) > 0
    assert (out / layout.REQUEST_COMMAND).read_text() == f"GET {playbook_run.lab.reproduction_url}\n"
    assert (out / layout.REQUEST_RESPONSE).read_text().startswith("HTTP/1.1 503 ")


def test_facts_json_uses_the_collectors_keys(playbook_run: PlaybookRun) -> None:
    facts = json.loads((playbook_run.out / layout.host_file("mp1", layout.HOST_FACTS)).read_text())
    assert set(facts) == {f.name for f in dataclasses.fields(HostFacts)}
    assert (
        facts["host"] == "mp1" and facts["role"] == "message-processor" and facts["address"] == "127.0.0.11"
    )
    assert facts["tcpdump"].startswith("tcpdump version") and isinstance(facts["capture_dir_free_kib"], int)
    assert abs(facts["clock_offset_seconds"]) <= facts["clock_uncertainty_seconds"] + 1


def test_excerpt_holds_the_handshake_failure(playbook_run: PlaybookRun) -> None:
    # Given the reproduction's message id, Then the MP that served it has the handshakeFailed line, prefixed
    # with the log's file name like the Python collector's grep -H output.
    message_id = playbook_run.record["message_ids"][0]
    excerpts = [(playbook_run.out / layout.host_file(h, layout.HOST_LOG_EXCERPT)).read_text() for h in MPS]
    hit = next(text for text in excerpts if message_id in text)
    # The message id's own line: context lines (grep -C, prefixed "system.log-") may hold earlier failures of
    # a lab other tests already used.
    line = next(line for line in hit.splitlines() if "handshakeFailed" in line and message_id in line)
    assert "system.log:" in line and "bad_certificate" in line


def test_log_is_the_newest_data_within_the_budget(playbook_run: PlaybookRun) -> None:
    # Given the MP's system.log (no rotated files), Then system.log.gz holds it whole (the budget is 50 MB).
    host = playbook_run.lab.ssh.host("mp1")  # type: ignore[union-attr]
    fetched = gzip.decompress((playbook_run.out / layout.host_file("mp1", layout.HOST_LOG)).read_bytes())
    assert fetched and host.system_log.read_bytes().startswith(fetched)


def test_commands_log_has_each_command(playbook_run: PlaybookRun) -> None:
    text = (playbook_run.out / layout.host_file("mp1", layout.HOST_COMMANDS)).read_text()
    for marker in (
        "collector-start-capture",
        "collector-check-capture",
        "collector-stop-capture",
        "collector-list-logs",
        "collector-excerpt-logs",
        "collector-stream-logs",
        "collector-facts",
        "collector-remove-run-dir",
        "collector-join-pcaps",
        "fetch ",
    ):
        assert marker in text, marker
    assert all("exit=" in line for line in text.splitlines())
    assert "timeout -s INT -k 10" in text and "-C" in text and "-W" in text


def test_role_sends_the_collectors_script_texts(playbook_run: PlaybookRun) -> None:
    # Given the commands the role ran on mp1, Then the scripts that need run-dir.sh's functions are the very
    # texts the Python collector sends (run-dir.sh first), up to the final newline `lookup` strips.
    text = (playbook_run.out / layout.host_file("mp1", layout.HOST_COMMANDS)).read_text()
    for argv in (commands.check_capture("/d"), commands.stop_capture("/d", "r1", "u"),
                 commands.remove_run_dir("/d-r1", "r1")):
        assert f" sh -c {shlex.quote(argv[2].rstrip())} {argv[3]} ".replace("\n", "\\n") in text, argv[3]


def test_nothing_is_left_on_the_hosts(playbook_run: PlaybookRun) -> None:
    # Then no tcpdump of this run is running, no run dir is left, and Ansible's temp and async dirs are empty.
    run_id = playbook_run.record["run_id"]
    assert_run_left_nothing(playbook_run.lab.ssh.hosts, run_id)  # type: ignore[union-attr]
    for directory in (playbook_run.remote_tmp, playbook_run.async_dir):
        left = [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []
        assert not left, left


def test_package_diagnoses_ca_mismatch(packaged: PackageRun) -> None:
    # When collect package bundles the raw directory with the management API documents, Then it is complete
    # and `collect analyze BUNDLE` names ca-mismatch.
    assert packaged.done.returncode == 0, packaged.done.stdout + packaged.done.stderr
    assert packaged.result["complete"] is True
    analyzed = subprocess.run(
        [sys.executable, "-m", "collector", "analyze", str(packaged.bundle), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert analyzed.returncode == 0, analyzed.stderr
    assert json.loads(analyzed.stdout)["diagnosis"]["cause"] == "ca-mismatch"
    verified = subprocess.run(
        [sys.executable, "-m", "collector", "verify", str(packaged.bundle)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_package_steps_and_checklist(packaged: PackageRun) -> None:
    steps = {(s["host"], s["step"]): s["status"] for s in packaged.result["steps"]}
    assert steps[("edge", "resolve")] == "ok" and steps[("mp1", "fetch-capture")] == "ok"
    assert steps[("edge", "trace")] == "not-applicable"
    with tarfile.open(packaged.bundle) as tar:
        top = tar.getmembers()[0].name.split("/", 1)[0]
        names = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
        summary = tar.extractfile(f"{top}/{layout.SUMMARY}").read().decode()  # type: ignore[union-attr]
    assert {layout.host_file(h, layout.HOST_CAPTURE) for h in HOSTS} <= names
    assert layout.keystore_document("myKeystore") in names and "collection.json" not in names
    capture_line = next(line for line in summary.splitlines() if line.startswith("| TCP/IP packets"))
    assert "| collected |" in capture_line


def test_package_without_api_names_what_to_collect(playbook_run: PlaybookRun, tmp_path: Path) -> None:
    # Given --no-api, When packaging, Then the names come from the record, the backend from the collection,
    # and without the keystore the cause is client-certificate-not-sent.
    run = run_package(playbook_run.lab, playbook_run.out, tmp_path, "--no-api")
    assert run.done.returncode == 0, run.done.stdout + run.done.stderr
    assert run.result["diagnosis"]["cause"] == "client-certificate-not-sent"
    assert Path(run.result["bundle"]).name.startswith("apigee-diag-lab-org-test-mtls-proxy-")


def test_package_of_a_partial_collection_exits_3(playbook_run: PlaybookRun, tmp_path: Path) -> None:
    # Given a collection where one host's logs step failed, Then the bundle is written and the exit code is 3.
    raw = tmp_path / "raw"
    shutil.copytree(playbook_run.out, raw)
    record = json.loads((raw / "collection.json").read_text())
    record["hosts"][1]["steps"][-1].update(status="failed", reason="log-missing", message="mp2 -> logs: gone")
    (raw / "collection.json").write_text(json.dumps(record))
    run = run_package(playbook_run.lab, raw, tmp_path / "out", "--no-api")
    assert run.done.returncode == 3, run.done.stdout + run.done.stderr
    assert run.result["bundle"] and run.result["complete"] is False

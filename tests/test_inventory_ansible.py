"""Ansible inventories through the real ansible-inventory and through the built-in reader: every feature an
operator's playbooks use, a dynamic inventory script, the two readers disagreeing, and each way it can fail.

Each ansible-inventory start costs about a second, so one inventory exercises many features at once."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from collector.errors import InputError
from collector.inventory import FIND, Inventory, InventoryHost, find_ansible_inventory, load_inventory
from collector.inventory.ansible_inventory import (
    parse_inventory_list,
    read_with_ansible,
    run_bounded,
    summarize_stderr,
)

ANSIBLE_INVENTORY = str(Path(sys.executable).parent / "ansible-inventory")
MP_LOG = "/opt/apigee/var/log/edge-message-processor/logs/system.log"

INI = """\
# Apigee planet, as the operator's playbooks read it
[all:vars]
ansible_user=ops
ansible_ssh_private_key_file=~/.ssh/ops_key

[message_processors]
mp[1:3] ansible_port=2200
mp[01:10:3]
mpx:2201 ansible_host=10.0.0.50 ansible_become=False   # a port in the pattern, a Python literal
[message_processors:vars]
ansible_become='yes'

[edge_backends]
be[a:c] ansible_host=10.0.1.5   # one address, three names

[backends:children]
edge_backends

[backends:vars]
ansible_user="svc"

[dc1]
mp2

[dc1:vars]
ansible_user=dc1ops

[routers]
r1 ansible_host=10.0.0.1
"""

YAML = """\
all:
  vars:
    ansible_user: ops
  children:
    message_processors:
      vars: {ansible_become: true}
      hosts:
        mp[1:2]: {ansible_port: 2200}
        mp[a:b]:
        'mp[08:12:2]:2022':
      children:
        mp_dc2:
          hosts:
            mp9: {ansible_host: 10.0.2.9, ansible_become: no}
    backends:
      hosts:
        be1: {ansible_host: 10.0.1.5, ansible_ssh_private_key_file: /keys/be1, ansible_user: svc}
    routers:
      hosts: {r1: {ansible_host: 10.0.0.1}}
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that does not reap is dead enough)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _both(path: Path, ssh_config: Path) -> tuple[Inventory, Inventory]:
    """The inventory as ansible-inventory gives it (which also checks it against the built-in reader), and as
    the built-in reader alone gives it."""
    return (
        load_inventory(path, ssh_config, ansible_inventory=ANSIBLE_INVENTORY),
        load_inventory(path, ssh_config, ansible_inventory=None),
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Given an Ansible project folder the operator runs collect from (ansible-inventory's playbook dir)
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "ssh_config", "")
    return tmp_path


def test_ansible_inventory_is_present() -> None:
    # The suite runs with ansible-core installed (a test dependency): no test below skips for lack of it.
    assert Path(ANSIBLE_INVENTORY).is_file() and os.access(ANSIBLE_INVENTORY, os.X_OK)


def test_ini_features_read_alike(project: Path) -> None:
    # Given an INI inventory with ranges (plain, zero-padded with a stride, letters), host:port, children,
    # group vars of another group (dc1), Python-literal values, comments, and group_vars/ host_vars/ beside it
    # and in the project folder
    inventory = _write(project / "inventory" / "hosts.ini", INI)
    group_vars, host_vars = project / "inventory" / "group_vars", project / "inventory" / "host_vars"
    _write(group_vars / "message_processors.yml", "collector_capture_dir: /var/tmp\n")
    _write(group_vars / "edge_backends" / "tools.yaml", "collector_tcpdump: /sbin/td\n")
    _write(host_vars / "mp1.yml", "ansible_host: 10.0.0.11\n")
    _write(host_vars / "mp04", "ansible_ssh_private_key_file: /keys/mp04\n")
    _write(project / "group_vars" / "all.yml", "collector_system_log: /var/log/mp/system.log\n")
    # When read by ansible-inventory and by the built-in reader
    by_ansible, builtin = _both(inventory, project / "ssh_config")
    # Then both give the same hosts with Ansible's precedence (dc1 sorts before message_processors, so mp2's
    # user comes from dc1; host vars beat group vars; group_vars/ files beat the inventory's group vars)
    assert by_ansible == builtin
    hosts = {h.name: h for h in by_ansible.hosts}
    assert list(hosts) == ["mp1", "mp2", "mp3", "mp01", "mp04", "mp07", "mp10", "mpx", "bea", "beb", "bec"]
    assert hosts["mp1"] == InventoryHost(
        name="mp1", address="10.0.0.11", port=2200, user="ops", identity_file="~/.ssh/ops_key", sudo=True,
        role="message-processor", system_log="/var/log/mp/system.log", capture_dir="/var/tmp",
    )
    assert (hosts["mp2"].user, hosts["mp3"].address, hosts["mp3"].port) == ("dc1ops", "mp3", 2200)
    assert (hosts["mp04"].identity_file, hosts["mp04"].port) == ("/keys/mp04", 22)
    assert (hosts["mpx"].address, hosts["mpx"].port, hosts["mpx"].sudo) == ("10.0.0.50", 2201, False)
    assert {(h.address, h.user, h.role, h.tcpdump, h.sudo) for h in by_ansible.backends} == {
        ("10.0.1.5", "svc", "backend", "/sbin/td", True)
    }


def test_yaml_features_read_alike(project: Path) -> None:
    # Given a YAML inventory with ranges in host keys, a port in a pattern, a child group, become, key file
    inventory = _write(project / "hosts.yml", YAML)
    _write(project / "host_vars" / "mpb.yaml", "ansible_user: root\n")
    _write(project / "group_vars" / "backends.json", '{"collector_system_log": "/var/log/be/system.log"}')
    # When read by both readers
    by_ansible, builtin = _both(inventory, project / "ssh_config")
    # Then they agree, and every setting is the one Ansible's playbooks would use
    assert by_ansible == builtin
    assert {h.system_log for h in by_ansible.backends} == {"/var/log/be/system.log"}
    got = {h.name: (h.address, h.port, h.user, h.identity_file, h.sudo, h.role) for h in by_ansible.hosts}
    mp = "message-processor"
    assert got == {
        "mp1": ("mp1", 2200, "ops", None, True, mp),
        "mp2": ("mp2", 2200, "ops", None, True, mp),
        "mpa": ("mpa", 22, "ops", None, True, mp),
        "mpb": ("mpb", 22, "root", None, True, mp),
        "mp08": ("mp08", 2022, "ops", None, True, mp),
        "mp10": ("mp10", 2022, "ops", None, True, mp),
        "mp12": ("mp12", 2022, "ops", None, True, mp),
        "mp9": ("10.0.2.9", 22, "ops", None, False, mp),
        "be1": ("10.0.1.5", 22, "svc", "/keys/be1", True, "backend"),
    }


def test_dynamic_inventory_script(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an executable that prints --list JSON, run with collect's own secret in the environment
    monkeypatch.setenv("APIGEE_PASSWORD", "apigee-secret-value")
    listing = {
        "_meta": {"hostvars": {
            "mp1": {"ansible_host": "10.0.0.11", "ansible_port": 2200, "ansible_become": True},
            "be1": {"ansible_host": "10.0.1.5", "ansible_user": "svc"},
        }},
        "all": {"children": ["planet"]},
        "planet": {"children": ["message_processors", "backends"]},
        "message_processors": {"hosts": ["mp1"]},
        "backends": {"hosts": ["be1"]},
    }
    seen = project / "environment.seen"
    body = f"#!/bin/sh\nenv > '{seen}'\ncat <<'EOF'\n{json.dumps(listing)}\nEOF\n"
    script = _write(project / "cmdb.sh", body)
    script.chmod(0o755)
    # When loaded (the default finds ansible-inventory beside this Python when it is not on the PATH)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    inventory = load_inventory(script, project / "ssh_config")
    # Then the script's hosts are ours, and the script never saw collect's management API password
    assert [(h.name, h.address, h.port, h.user, h.role) for h in inventory.hosts] == [
        ("mp1", "10.0.0.11", 2200, "apigee", "message-processor"),
        ("be1", "10.0.1.5", 22, "svc", "backend"),
    ]
    environment = seen.read_text()
    assert "HOME=" in environment and "apigee-secret-value" not in environment
    # And without ansible-inventory, a script is an error that says what reads it
    with pytest.raises(InputError, match="an executable \\(a dynamic inventory script\\), which only "
                                         "ansible-inventory reads: install ansible-core"):
        load_inventory(script, project / "ssh_config", ansible_inventory=None)


def test_readers_disagreeing_is_an_error(project: Path) -> None:
    # Given the operator's ansible.cfg, which turns off group_vars/ files, so ansible-inventory and the
    # built-in reader would give mp1 different capture dirs
    _write(project / "ansible.cfg", "[defaults]\nprecedence = all_inventory, groups_inventory\n")
    inventory = _write(project / "inventory" / "hosts", "[message_processors]\nmp1\n")
    _write(project / "inventory" / "group_vars" / "message_processors.yml", "collector_capture_dir: /tmp/c\n")
    # When loaded / Then collect stops and names the host, the field and both values
    with pytest.raises(InputError) as caught:
        load_inventory(inventory, project / "ssh_config", ansible_inventory=ANSIBLE_INVENTORY)
    assert str(caught.value).startswith(
        f"{inventory}: host mp1: ansible-inventory gives capture_dir '/tmp', collect's built-in reader (used "
        "where ansible-inventory is missing) gives '/tmp/c'; collect stops rather than guess"
    )


def test_ansible_inventory_failures(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a dynamic inventory that fails and prints a secret from the environment on stderr
    monkeypatch.setenv("CMDB_TOKEN", "tok-1234567890")
    script = _write(project / "cmdb.py", "#!/bin/sh\necho \"cannot reach the CMDB with tok-1234567890\" >&2\n"
                                         "printf '\\033[31mred\\033[0m\\n' >&2\nexit 3\n")
    script.chmod(0o755)
    # When loaded / Then one bounded line with ansible-inventory's reason, the secret masked, no escapes
    with pytest.raises(InputError) as caught:
        load_inventory(script, project / "ssh_config", ansible_inventory=ANSIBLE_INVENTORY)
    message = str(caught.value)
    assert message.startswith(f"{script}: ansible-inventory failed (exit 1): ")
    assert "cannot reach the CMDB with <CMDB_TOKEN>" in message and "tok-1234567890" not in message
    assert "\n" not in message and "\x1b" not in message and len(message) < 1000

    # Given a group_vars file encrypted with ansible-vault and no vault password set up
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret(b"vault-password"))])
    inventory = _write(project / "vaulted" / "hosts", "[message_processors]\nmp1\n")
    secret_vars = _write(project / "vaulted" / "group_vars" / "all.yml", "")
    secret_vars.write_bytes(vault.encrypt(b"ansible_become_password: hunter2\n"))
    # When loaded with ansible-inventory / Then its error, and how to give it the password
    with pytest.raises(InputError) as caught:
        load_inventory(inventory, project / "ssh_config", ansible_inventory=ANSIBLE_INVENTORY)
    assert "no vault secrets" in str(caught.value)
    assert "vault-encrypted files such as all.yml: set up the vault password as for your playbooks" in str(
        caught.value)
    # And the built-in reader says it cannot decrypt
    with pytest.raises(InputError, match="vault-encrypted, which collect's built-in reader cannot decrypt"):
        load_inventory(inventory, project / "ssh_config", ansible_inventory=None)

    # Given an ansible-inventory that does not finish in time / Then a bounded wait and a way out
    with pytest.raises(InputError) as caught:
        load_inventory(inventory, project / "ssh_config", ansible_inventory=ANSIBLE_INVENTORY, timeout=0.2)
    assert str(caught.value) == (
        f"{inventory}: ansible-inventory did not finish within 0.2 s (a dynamic inventory that hangs?); "
        f"write the inventory once with `ansible-inventory -i {inventory} --list --yaml > hosts.yml` and "
        "pass that"
    )

    # Given an ansible-inventory printing more than the bound / Then it is stopped and the message says so
    with pytest.raises(InputError, match="ansible-inventory printed more than 100 bytes; not an inventory"):
        read_with_ansible(_write(project / "plain", "[backends]\nbe1\n"), ANSIBLE_INVENTORY, max_output=100)

    # Given a YAML inventory with a misspelt key, which Ansible skips with a warning / Then the warning is the
    # reason given for having no hosts
    typo = _write(project / "typo.yml", "backends:\n  host:\n    be1:\n")
    with pytest.raises(InputError, match="no hosts .*; ansible-inventory warned: .*Skipping unexpected key "
                                         "\\(host\\) in group \\(backends\\)"):
        load_inventory(typo, project / "ssh_config", ansible_inventory=ANSIBLE_INVENTORY)

    # Given a program that cannot be run
    with pytest.raises(InputError, match="cannot run /nonexistent/ansible-inventory"):
        load_inventory(inventory, project / "ssh_config", ansible_inventory="/nonexistent/ansible-inventory")


def test_run_bounded_kills_what_it_started(tmp_path: Path) -> None:
    # Given a program that leaves a child running and never ends
    pid_file = tmp_path / "child.pid"
    run = run_bounded(["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], 0.5, 1000, os.environ)
    # Then it is stopped at the timeout, its child too
    assert (run.timed_out, run.returncode) == (True, None)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    # Given a program printing without end / Then it is stopped at the output bound
    run = run_bounded(["sh", "-c", "yes inventory"], 10, 100_000, os.environ)
    assert (run.overflowed, run.returncode) == (True, None) and len(run.stdout) <= 100_000 + 65536


@pytest.mark.parametrize(
    ("output", "defect"),
    [
        (b"WARNING: not json", "ansible-inventory printed no valid JSON (Expecting value at line 1 column 1"),
        (b"\xff\xfe\x00", "ansible-inventory printed no valid JSON"),
        (b"[" * 200_000, "ansible-inventory printed no valid JSON"),
        (b"[1, 2]", "ansible-inventory printed JSON that is not an inventory (expected an object)"),
        (b'{"_meta": {"hostvars": []}}', "ansible-inventory printed JSON whose _meta.hostvars is not an"),
        (b'{"mps": ["mp1"]}', "ansible-inventory printed JSON where group 'mps' is not an object"),
        (b'{"backends": {"hosts": "be1"}}',
         "ansible-inventory printed JSON where group 'backends': 'hosts' is not a list of names"),
    ],
)
def test_malformed_listing(output: bytes, defect: str) -> None:
    # Given what a broken plugin or script could make ansible-inventory print / Then InputError, no traceback
    with pytest.raises(InputError) as caught:
        parse_inventory_list(Path("inv"), output)
    assert str(caught.value).startswith(f"inv: {defect}")


def test_stderr_summary_is_one_bounded_line() -> None:
    # Given Ansible's report: framing lines, each reason said twice, a bell, and a long tail
    stderr = ("[WARNING]: Failed to parse with 'ini' plugin: boom\n\n<<< caused by >>>\nOrigin: /x\n"
              "Failed to parse with 'ini' plugin.\nboom\x07\n" + "x" * 5000).encode()
    # When summarized / Then one line, each reason once, no control character, bounded
    summary = summarize_stderr(stderr, {})
    assert summary.startswith("[WARNING]: Failed to parse with 'ini' plugin: boom | xxx")
    assert summary.endswith("x …") and "\x07" not in summary and len(summary) < 750


@pytest.mark.parametrize(
    ("pattern", "defect"),
    [
        ("mp[1:]", "host range [1:] has no end"),
        ("mp[01:5]", "host range [01:5]: begin and end must have the same width"),
        ("mp[1:10:0]", "host range [1:10:0]: step '0' is not a positive number"),
        ("mp[1:9:2:1]", "host range [1:9:2:1] must be [begin:end] or [begin:end:step]"),
        ("mp[a:5]", "host range [a:5] is neither numbers nor single letters"),
        ("mp[c:a]", "host range [c:a] begins after its end"),
        ("mp[1:99999]", "host range [1:99999] gives more than 10000 hosts"),
        ("mp[1:200]x[1:200]", "host pattern 'mp[1:200]x[1:200]' gives more than 10000 hosts"),
        ("mp[1:3", "host pattern 'mp[1:3' has a '[' without its ']'"),
    ],
)
def test_bad_host_ranges(tmp_path: Path, pattern: str, defect: str) -> None:
    # Given an INI inventory with a bad range / When the built-in reader reads it / Then line and defect
    path = _write(tmp_path / "hosts", f"[message_processors]\n{pattern} ansible_user=ops\n")
    with pytest.raises(InputError) as caught:
        load_inventory(path, _write(tmp_path / "ssh_config", ""), ansible_inventory=None)
    assert str(caught.value) == f"{path}: line 2: {defect}"


def test_builtin_reader_limits(tmp_path: Path) -> None:
    ssh_config = _write(tmp_path / "ssh_config", "")
    # Given a connection setting encrypted inline (!vault) or templated / Then the host and variable are named
    vaulted = _write(tmp_path / "vaulted.yml", "backends:\n  hosts:\n    be1:\n      ansible_user: !vault |\n"
                                                "        $ANSIBLE_VAULT;1.1;AES256\n        6631\n")
    with pytest.raises(InputError, match="host be1: ansible_user is vault-encrypted \\(!vault\\)"):
        load_inventory(vaulted, ssh_config, ansible_inventory=None)
    templated = _write(tmp_path / "templated", "[backends]\nbe1 ansible_user=\"{{ lookup('env', 'U') }}\"\n")
    with pytest.raises(InputError, match="host be1: ansible_user \"{{ lookup\\('env', 'U'\\) }}\" is a"):
        load_inventory(templated, ssh_config, ansible_inventory=None)
    # Given an inventory plugin's configuration, or a folder / Then only ansible-inventory reads it, and the
    # message says so
    plugin = _write(tmp_path / "aws_ec2.yml", "plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n")
    with pytest.raises(InputError, match="\\(plugin: amazon.aws.aws_ec2\\), which only ansible-inventory"):
        load_inventory(plugin, ssh_config, ansible_inventory=None)
    with pytest.raises(InputError, match="a folder, which only ansible-inventory reads"):
        load_inventory(tmp_path, ssh_config, ansible_inventory=None)


def test_finding_ansible_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an ansible-inventory on the PATH / Then it wins (the operator's Ansible, collections, config)
    on_path = tmp_path / "ansible-inventory"
    on_path.symlink_to(ANSIBLE_INVENTORY)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_ansible_inventory() == str(on_path)
    # Given none on the PATH / Then the one beside the Python running collect
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_ansible_inventory() == ANSIBLE_INVENTORY
    assert FIND == "find"

"""Inventories: our YAML, Ansible INI and YAML, ~/.ssh/config aliases, discovered hosts, every broken case."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.errors import InputError
from collector.inventory import (
    DEFAULT_SYSTEM_LOG,
    Inventory,
    InventoryHost,
    hosts_from_addresses,
    load_inventory,
)

OWN_YAML = """\
defaults: {user: apigee, port: 22, identity_file: ~/.ssh/id_ed25519, sudo: true,
           system_log: /opt/apigee/var/log/edge-message-processor/logs/system.log, capture_dir: /tmp}
hosts:
  mp1: {address: 10.0.0.11, role: message-processor}
  be1: {address: 10.0.1.5, role: backend, port: 2222}
"""

ANSIBLE_INI = """\
# Apigee planet
[all:vars]
ansible_user=ops
ansible_ssh_private_key_file=~/.ssh/ops_key

[message_processors]
mp1 ansible_host=10.0.0.11
mp2 ansible_host=10.0.0.12 ansible_port=2200 ansible_become=false

[edge_backends]
be1 ansible_host=10.0.1.5

[backends:children]
edge_backends

[backends:vars]
ansible_user=svc

[routers]
r1 ansible_host=10.0.0.1
"""

ANSIBLE_YAML = """\
all:
  vars:
    ansible_user: ops
  children:
    message_processors:
      hosts:
        mp1: {ansible_host: 10.0.0.11, ansible_become: true}
        mp2:
          ansible_host: 10.0.0.12
          collector_system_log: /var/log/mp/system.log
    backends:
      hosts:
        be1: {ansible_host: 10.0.1.5, ansible_port: 2222, ansible_user: svc}
    routers:
      hosts:
        r1: {ansible_host: 10.0.0.1}
"""

SSH_CONFIG = """\
Host bastion
  HostName 203.0.113.10
  User jump
Host mp-*
  User ops
  IdentityFile ~/.ssh/mp_key
Host mp-a
  HostName 10.0.0.21
  Port 2022
  ProxyJump jump@203.0.113.10:22
"""


def _write(tmp_path: Path, text: str, name: str = "hosts") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_our_yaml(tmp_path: Path) -> None:
    # Given the example / When loaded / Then defaults apply and per-host keys win
    inventory = load_inventory(_write(tmp_path, OWN_YAML), ssh_config=_write(tmp_path, "", "ssh_config"))
    assert inventory == Inventory(
        hosts=(
            InventoryHost(
                name="mp1",
                address="10.0.0.11",
                port=22,
                user="apigee",
                identity_file="~/.ssh/id_ed25519",
                sudo=True,
                role="message-processor",
                system_log=DEFAULT_SYSTEM_LOG,
                capture_dir="/tmp",
            ),
            InventoryHost(
                name="be1",
                address="10.0.1.5",
                port=2222,
                user="apigee",
                identity_file="~/.ssh/id_ed25519",
                sudo=True,
                role="backend",
                system_log=DEFAULT_SYSTEM_LOG,
                capture_dir="/tmp",
            ),
        )
    )
    assert [h.name for h in inventory.message_processors] == ["mp1"]
    assert [h.name for h in inventory.backends] == ["be1"]


def test_ansible_ini(tmp_path: Path) -> None:
    # Given an INI inventory with all/group vars and a child group / When loaded / Then the two role groups
    inventory = load_inventory(_write(tmp_path, ANSIBLE_INI), ssh_config=_write(tmp_path, "", "ssh_config"))
    hosts = {h.name: h for h in inventory.hosts}
    assert set(hosts) == {"mp1", "mp2", "be1"}
    assert (hosts["mp1"].address, hosts["mp1"].port, hosts["mp1"].user, hosts["mp1"].sudo) == (
        "10.0.0.11",
        22,
        "ops",
        True,
    )
    assert hosts["mp1"].identity_file == "~/.ssh/ops_key"
    assert (hosts["mp2"].port, hosts["mp2"].sudo) == (2200, False)
    assert (hosts["be1"].role, hosts["be1"].user) == ("backend", "svc")


def test_ansible_yaml(tmp_path: Path) -> None:
    inventory = load_inventory(
        _write(tmp_path, ANSIBLE_YAML, "hosts.yml"), ssh_config=_write(tmp_path, "", "ssh_config")
    )
    hosts = {h.name: h for h in inventory.hosts}
    assert set(hosts) == {"mp1", "mp2", "be1"}
    assert hosts["mp1"].user == "ops" and hosts["mp2"].system_log == "/var/log/mp/system.log"
    assert (hosts["be1"].role, hosts["be1"].port, hosts["be1"].user) == ("backend", 2222, "svc")


def test_ssh_config_aliases(tmp_path: Path) -> None:
    # Given inventory addresses that are ~/.ssh/config aliases / When loaded / Then HostName, Port, User,
    # IdentityFile and ProxyJump come from the config unless the inventory sets them for the host
    text = (
        "defaults: {user: apigee}\nhosts:\n  mpa: {address: mp-a, role: message-processor}\n"
        "  mpb: {address: mp-a, role: message-processor, user: root, port: 22}\n"
        "  be1: {address: 10.0.1.5, role: backend}\n"
    )
    inventory = load_inventory(_write(tmp_path, text), ssh_config=_write(tmp_path, SSH_CONFIG, "ssh_config"))
    mpa, mpb, be1 = inventory.hosts
    assert (mpa.address, mpa.port, mpa.user, mpa.identity_file, mpa.proxy_jump) == (
        "10.0.0.21",
        2022,
        "ops",
        str(Path("~/.ssh/mp_key").expanduser()),
        "jump@203.0.113.10:22",
    )
    assert (mpb.address, mpb.port, mpb.user) == ("10.0.0.21", 22, "root")
    assert (be1.address, be1.user, be1.proxy_jump) == ("10.0.1.5", "apigee", None)


def test_hosts_from_addresses() -> None:
    # Given MP addresses from the management API / When turned into hosts / Then named after the address
    hosts = hosts_from_addresses(
        ["10.0.0.11", "10.0.0.12", "10.0.0.11"], "message-processor", {"user": "ops", "port": 2222}
    )
    assert [(h.name, h.address, h.user, h.port, h.role) for h in hosts] == [
        ("10.0.0.11", "10.0.0.11", "ops", 2222, "message-processor"),
        ("10.0.0.12", "10.0.0.12", "ops", 2222, "message-processor"),
    ]
    with pytest.raises(ValueError):
        hosts_from_addresses(["10.0.0.1"], "router")


@pytest.mark.parametrize(
    ("name", "text", "defect"),
    [
        (
            "bad-yaml",
            "hosts:\n  mp1: {address: 10.0.0.11\n  mp2: x\n",
            "line 3: not valid YAML: expected ',' or '}', but got ':'",
        ),
        (
            "not-a-mapping",
            "- mp1\n- mp2\n",
            "not an inventory: expected a mapping with 'hosts' or Ansible groups",
        ),
        (
            "no-hosts",
            "hosts: {}\n",
            "no hosts (our YAML needs 'hosts:'; Ansible inventories need hosts in the groups "
            "message_processors or backends)",
        ),
        ("hosts-not-mapping", "hosts: [mp1]\n", "'hosts' must be a mapping of host name to settings"),
        (
            "unknown-default",
            "defaults: {usr: x}\nhosts:\n  mp1: {address: a, role: backend}\n",
            "defaults: unknown key 'usr' (known: port, user, identity_file, sudo, system_log, capture_dir, "
            "proxy_jump, tcpdump)",
        ),
        (
            "unknown-key",
            "hosts:\n  mp1: {adress: 10.0.0.11, role: message-processor}\n",
            "host mp1: unknown key 'adress' (known: address, role, port, user, identity_file, sudo, "
            "system_log, capture_dir, proxy_jump, tcpdump)",
        ),
        ("no-address", "hosts:\n  mp1: {role: message-processor}\n", "host mp1: no address"),
        (
            "bad-role",
            "hosts:\n  mp1: {address: 10.0.0.11, role: router}\n",
            "host mp1: role 'router' is not one of message-processor, backend",
        ),
        (
            "bad-port",
            "hosts:\n  mp1: {address: 10.0.0.11, role: backend, port: ssh}\n",
            "host mp1: port 'ssh' is not a number from 1 to 65535",
        ),
        (
            "port-range",
            "hosts:\n  mp1: {address: 10.0.0.11, role: backend, port: 70000}\n",
            "host mp1: port 70000 is not a number from 1 to 65535",
        ),
        (
            "bad-address",
            "hosts:\n  mp1: {address: '10.0.0.11; reboot', role: backend}\n",
            "host mp1: address '10.0.0.11; reboot' is not a host name or IP address",
        ),
        (
            "bad-name",
            "hosts:\n  'mp 1': {address: 10.0.0.11, role: backend}\n",
            "host 'mp 1': name may hold only letters, digits, '.', '_' and '-'",
        ),
        (
            "bad-sudo",
            "hosts:\n  mp1: {address: 10.0.0.11, role: backend, sudo: maybe}\n",
            "host mp1: sudo 'maybe' is not true or false",
        ),
        (
            "relative-log",
            "hosts:\n  mp1: {address: 10.0.0.11, role: backend, system_log: logs/system.log}\n",
            "host mp1: system_log 'logs/system.log' must be an absolute path",
        ),
        (
            "host-not-mapping",
            "hosts:\n  mp1: 10.0.0.11\n",
            "host mp1: settings must be a mapping (address, role, ...)",
        ),
        ("ini-header", "[message_processors\nmp1\n", "line 1: bad section header '[message_processors'"),
        (
            "ini-pair",
            "[message_processors]\nmp1 ansible_host\n",
            "line 2: expected key=value after host mp1, got 'ansible_host'",
        ),
        (
            "ini-vars",
            "[message_processors:vars]\nansible_user\n",
            "line 2: expected key=value in [message_processors:vars]",
        ),
        (
            "ini-port",
            "[backends]\nbe1 ansible_port=abc\n",
            "host be1: port 'abc' is not a number from 1 to 65535",
        ),
        (
            "ini-no-role-groups",
            "[routers]\nr1 ansible_host=10.0.0.1\n",
            "no hosts (our YAML needs 'hosts:'; Ansible inventories need hosts in the groups "
            "message_processors or backends)",
        ),
        (
            "ansible-yaml-key",
            "all:\n  children:\n    backends:\n      host: {be1: {}}\n",
            "group backends: unknown key 'host' (Ansible groups have hosts, children, vars)",
        ),
    ],
)
def test_broken_inventories(tmp_path: Path, name: str, text: str, defect: str) -> None:
    # Given one broken inventory per failure mode / When loaded by the built-in readers (ansible-inventory's
    # own messages are tested below) / Then InputError names file and defect
    path = _write(tmp_path, text, name)
    with pytest.raises(InputError) as caught:
        load_inventory(path, ssh_config=_write(tmp_path, "", "ssh_config"), ansible_inventory=None)
    assert str(caught.value) == f"{path}: {defect}"


def test_unreadable_inventory(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_inventory(tmp_path / "missing.yaml")
    assert caught.value.file == str(tmp_path / "missing.yaml")
    assert caught.value.defect.startswith("cannot read the inventory: ")


def test_ansible_variables_win_over_ssh_config(tmp_path: Path) -> None:
    # Given an Ansible group setting ansible_user and an ssh config matching the host by wildcard
    text = "[message_processors]\nmp-b\n\n[message_processors:vars]\nansible_user=deploy\n"
    inventory = load_inventory(_write(tmp_path, text), ssh_config=_write(tmp_path, SSH_CONFIG, "ssh_config"))
    # When loaded / Then the group's user wins, and what Ansible left unset comes from ssh config
    (host,) = inventory.hosts
    assert (host.address, host.user, host.identity_file) == (
        "mp-b",
        "deploy",
        str(Path("~/.ssh/mp_key").expanduser()),
    )

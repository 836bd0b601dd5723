"""ProxyJump chains of more than one hop (inventory and ~/.ssh/config aliases), on the lab's real sshd."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from collector.errors import InputError
from collector.inventory import InventoryHost, load_inventory
from collector.remote.connection import ConnectionSettings, HostError, open_host
from collector.remote.links import split_jumps
from tests.lab.sshd import SshHosts

pytestmark = pytest.mark.lab


def _logins(lab: SshHosts, name: str) -> int:
    return (lab.workdir / "sshd" / name / "sshd.log").read_text().count("Accepted publickey")


@pytest.mark.parametrize(
    ("chain", "hops"),
    [
        ("j1", [("me", "j1", 22)]),
        ("a@j1:2222,j2", [("a", "j1", 2222), ("me", "j2", 22)]),
        ("b@[2001:db8::1]:2200, c@10.0.0.1", [("b", "2001:db8::1", 2200), ("c", "10.0.0.1", 22)]),
        ("", []),
    ],
)
def test_split_jumps(chain: str, hops: list[tuple[str, str, int]]) -> None:
    # Given a ProxyJump chain, When split, Then each hop in order with the login user as the default user
    assert split_jumps(chain, "me") == hops


def test_two_hop_chain_from_the_inventory(
    mp1: InventoryHost, be1: InventoryHost, lab: SshHosts, settings: ConnectionSettings
) -> None:
    # Given mp1 reached through be1 and then mp2 (two jump hosts)
    mp2 = lab.host("mp2")
    chain = f"{be1.user}@{be1.address}:{be1.port},{lab.user}@{mp2.address}:{mp2.port}"
    before = {name: _logins(lab, name) for name in ("be1", "mp2", "mp1")}
    # When we connect and run a command
    with open_host(replace(mp1, proxy_jump=chain), settings) as connection:
        assert connection.run(["hostname"]).exit_code == 0
    # Then we logged in once on each hop and on the host
    logins = {name: _logins(lab, name) - count for name, count in before.items()}
    assert logins == {"be1": 1, "mp2": 1, "mp1": 1}


def test_two_hop_chain_from_ssh_config_aliases(
    lab: SshHosts, settings: ConnectionSettings, tmp_path: Path
) -> None:
    # Given ~/.ssh/config aliases: the MP jumps via `inner`, which itself jumps via `outer`
    mp, mp2, backend = lab.host("mp1"), lab.host("mp2"), lab.host("be1")
    (tmp_path / "ssh_config").write_text(
        f"Host outer\n  HostName {backend.address}\n  Port {backend.port}\n  User {lab.user}\n"
        f"Host inner\n  HostName {mp2.address}\n  Port {mp2.port}\n  User {lab.user}\n  ProxyJump outer\n"
        f"Host mp-alias\n  HostName {mp.address}\n  Port {mp.port}\n  User {lab.user}\n"
        f"  IdentityFile {lab.client_key}\n  ProxyJump inner\n"
    )
    (tmp_path / "hosts.yaml").write_text("hosts:\n  mp9: {address: mp-alias, role: message-processor}\n")
    # When the inventory is loaded
    host = load_inventory(tmp_path / "hosts.yaml", ssh_config=tmp_path / "ssh_config").hosts[0]
    # Then the chain is resolved hop by hop, outermost first
    assert host.proxy_jump == (
        f"{lab.user}@{backend.address}:{backend.port},{lab.user}@{mp2.address}:{mp2.port}"
    )
    before = {name: _logins(lab, name) for name in ("be1", "mp2")}
    with open_host(host, settings) as connection:
        assert connection.run(["whoami"]).stdout == f"{lab.user}\n"
    assert {name: _logins(lab, name) - count for name, count in before.items()} == {"be1": 1, "mp2": 1}


def test_an_unknown_key_on_the_second_hop_is_refused(
    mp1: InventoryHost, be1: InventoryHost, lab: SshHosts, tmp_path: Path
) -> None:
    # Given a known_hosts that lacks the second hop's key
    mp2 = lab.host("mp2")
    known = tmp_path / "known_hosts"
    known.write_text(
        "\n".join(line for line in lab.known_hosts.read_text().splitlines()
                  if not line.startswith(f"[{mp2.address}]:{mp2.port} ")) + "\n"
    )
    chain = f"{be1.user}@{be1.address}:{be1.port},{lab.user}@{mp2.address}:{mp2.port}"
    # When we connect through the chain, Then the hop's key is refused like a host's own
    with pytest.raises(HostError) as caught:
        open_host(replace(mp1, proxy_jump=chain), ConnectionSettings(known_hosts=known, connect_timeout=5))
    assert caught.value.reason == "host-key-unknown" and caught.value.host == "mp1"


def test_a_malformed_hop_names_the_inventory(tmp_path: Path) -> None:
    # Given an inventory whose proxy_jump holds a hop that is not [user@]host[:port]
    (tmp_path / "hosts.yaml").write_text(
        "hosts:\n  mp9: {address: 10.0.0.9, role: message-processor, proxy_jump: 'a@j1,b@j2:99999'}\n"
    )
    (tmp_path / "ssh_config").write_text("")
    # When it is loaded, Then the error names the file, the host and the hop
    with pytest.raises(InputError) as caught:
        load_inventory(tmp_path / "hosts.yaml", ssh_config=tmp_path / "ssh_config")
    assert "mp9" in str(caught.value) and "b@j2:99999" in str(caught.value)

"""What the role left on the hosts, read back over SSH, and proved by logging in with each key."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("all")
KEYS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "keys"
ADDRESSES = {"sshkeys-mol-role-1": "127.0.20.1", "sshkeys-mol-role-2": "127.0.20.2"}

# user -> keys that must log in, keys that must not.
EXPECTED = {
    "root": ({"admin", "alice", "bob", "new"}, {"old", "stale", "carol"}),
    "ecs-user": ({"alice", "carol", "new"}, {"admin", "old", "stale", "bob"}),
}
HOMES = {"root": "/root", "ecs-user": "/home/ecs-user"}


def pub(name: str) -> str:
    return " ".join((KEYS / f"{name}.pub").read_text().split()[:2])


def ssh_login(address: str, user: str, key: str) -> int:
    """A fresh ssh process with only this key: no agent, no shared connection, no config."""
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(KEYS / key), "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
         "-o", "ControlPath=none", "-o", "ControlMaster=no", "-o", "BatchMode=yes",
         "-o", "PasswordAuthentication=no", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "ConnectTimeout=10", "-p", "22", f"{user}@{address}", "true"],
        capture_output=True, timeout=60, check=False,
    ).returncode


def test_root_file_content_and_order(host):
    lines = host.file("/root/.ssh/authorized_keys").content_string.splitlines()
    keys = [line for line in lines if line and not line.startswith("#")]
    assert keys[0].endswith(pub("admin") + " admin@molecule")  # written by the image at boot
    # The old line is replaced in place by the new key, its options kept.
    assert keys[1] == f'no-agent-forwarding,no-X11-forwarding {pub("new")} new@molecule'
    assert keys[2:] == [f"{pub('alice')} alice@molecule", f"no-port-forwarding {pub('bob')} bob@molecule"]
    assert "# keys of the operations team" in lines
    assert not any(pub("old") in line for line in lines)


def test_ecs_user_file_is_exclusive(host):
    lines = host.file("/home/ecs-user/.ssh/authorized_keys").content_string.splitlines()
    keys = [line for line in lines if line and not line.startswith("#")]
    assert keys == [f'no-agent-forwarding,no-X11-forwarding {pub("new")} new@molecule',
                    f"{pub('alice')} alice@molecule", f"{pub('carol')} carol@molecule"]
    assert "# keys of the operations team" in lines


@pytest.mark.parametrize("user", sorted(HOMES))
def test_owner_and_modes(host, user):
    directory = host.file(f"{HOMES[user]}/.ssh")
    keys = host.file(f"{HOMES[user]}/.ssh/authorized_keys")
    assert directory.is_directory and directory.user == user and directory.mode == 0o700
    assert keys.is_file and not keys.is_symlink
    assert keys.user == user and keys.group == user and keys.mode == 0o600
    leftovers = host.run(f"ls -A {HOMES[user]}/.ssh").stdout.split()
    assert not [name for name in leftovers if ".tmp." in name]


@pytest.mark.parametrize("user", sorted(EXPECTED))
def test_each_added_key_logs_in_and_each_removed_key_does_not(host, user):
    address = ADDRESSES[host.backend.get_hostname()]
    allowed, refused = EXPECTED[user]
    outcome = {key: ssh_login(address, user, key) for key in sorted(allowed | refused)}
    assert {key for key, code in outcome.items() if code == 0} == allowed
    assert all(outcome[key] == 255 for key in refused), outcome


def test_info_module_agrees(host):
    info = host.ansible("sshkeys.ecs.authorized_keys_info", "user=ecs-user", check=False)
    comments = [key["comment"] for key in info["public_keys"]]
    assert comments == ["new@molecule", "alice@molecule", "carol@molecule"]
    assert info["invalid_lines"] == [] and info["weak_keys"] == []

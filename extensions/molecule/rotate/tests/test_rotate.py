"""What the rotation scenario must leave behind, read from the hosts and proved by real logins.

Each login here is a separate ssh process with one key, no agent and no connection sharing,
so it shows what sshd accepts now, not what an open connection still allows.
"""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest
import testinfra.utils.ansible_runner

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = RUNNER.get_hosts("all")

KEYS = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "keys")
KEYS_FILE = "/home/ecs-user/.ssh/authorized_keys"
OPTIONS = "no-agent-forwarding,no-port-forwarding"

# Which hosts end up rotated; the others keep the old key and never see the new one.
ROTATED = {"sshkeys-mol-rot-a", "sshkeys-mol-rot-b", "sshkeys-mol-rot-self"}


def public(name: str) -> str:
    with open(os.path.join(KEYS, f"{name}.pub"), encoding="ascii") as handle:
        return handle.read().strip()


def login(address: str, key: str) -> tuple[bool, str]:
    """(logged in and ran the command, ssh's stderr) for ecs-user with only this key."""
    token = secrets.token_hex(8)
    done = subprocess.run(
        ["ssh", "-T", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
         "-o", "ControlPath=none", "-o", "PasswordAuthentication=no", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
         "-i", os.path.join(KEYS, key), "-l", "ecs-user", address, f"echo {token}"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode == 0 and done.stdout.strip() == token, done.stderr


@pytest.fixture
def facts(host):
    variables = host.ansible.get_variables()
    return variables["inventory_hostname"], variables["ansible_host"]


def test_file_holds_the_right_keys(host, facts):
    name, _address = facts
    keys_file = host.file(KEYS_FILE)
    assert keys_file.user == "ecs-user"
    assert keys_file.mode == 0o600
    lines = keys_file.content_string.splitlines()
    # The comment and the admin key are untouched and keep their places.
    assert lines[0] == "# ecs-user: keys of the rotation scenario"
    assert lines[1] == public("admin")
    if name in ROTATED:
        # The new key took the old key's place and options; the old key is gone.
        assert lines[2:] == [f"{OPTIONS} {public('new')}"]
    else:
        assert lines[2:] == [f"{OPTIONS} {public('old')}"]


def test_logins(facts):
    name, address = facts
    new_ok, new_err = login(address, "new")
    old_ok, old_err = login(address, "old")
    if name in ROTATED:
        assert new_ok, new_err
        assert not old_ok
        assert "Permission denied" in old_err
    else:
        assert old_ok, old_err
        assert not new_ok
        assert "Permission denied" in new_err


def test_no_temporary_files_left(host):
    names = host.run("ls -A /home/ecs-user/.ssh").stdout.split()
    assert not [n for n in names if ".tmp." in n], names


def test_backup_only_where_asked(host, facts):
    name, _address = facts
    names = host.run("ls -A /home/ecs-user/.ssh").stdout.split()
    backups = [n for n in names if n.startswith("authorized_keys.") and n.endswith("~")]
    if name == "sshkeys-mol-rot-a":
        assert len(backups) == 1, names
        content = host.file(f"/home/ecs-user/.ssh/{backups[0]}").content_string
        assert f"{OPTIONS} {public('old')}" in content.splitlines()
    else:
        assert backups == []

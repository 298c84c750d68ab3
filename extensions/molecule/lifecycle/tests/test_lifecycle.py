"""What the lifecycle story leaves on each Linux instance after converge, read from the hosts and
proved by real logins.

Each login is a separate ssh process with one key, no agent and no connection sharing, so it
shows what sshd accepts now. Keys are compared as "type base64", the way sshd matches them.
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess

import pytest
import testinfra.utils.ansible_runner

RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
testinfra_hosts = RUNNER.get_hosts("os_linux")

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
KEYS = os.path.join(EPHEMERAL, "keys")
ADMIN = os.path.join(KEYS, "lifecycle-admin.pem")
LEGACY = os.path.join(EPHEMERAL, "fleet", "lifecycle-legacy")


def identity_of_private(path: str) -> str:
    """'type base64' of the public half of a private key file (ssh-keygen, not our code)."""
    line = subprocess.run(["ssh-keygen", "-y", "-f", path], capture_output=True, text=True, check=True).stdout
    return " ".join(line.split()[:2])


def identity_of_public(name: str) -> str:
    with open(os.path.join(KEYS, f"{name}.pub"), encoding="ascii") as handle:
        return " ".join(handle.read().split()[:2])


def identities(content: str) -> list[str]:
    """'type base64' of every key line, options skipped, in file order."""
    found = []
    for line in content.splitlines():
        fields = line.split()
        for index, field in enumerate(fields[:-1]):
            if field.startswith(("ssh-", "ecdsa-")):
                found.append(f"{field} {fields[index + 1]}")
                break
    return found


def login(address: str, user: str, key: str) -> tuple[bool, str]:
    """(logged in as user and ran a command, ssh's stderr) with only this key."""
    token = secrets.token_hex(8)
    done = subprocess.run(
        ["ssh", "-T", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
         "-o", "ControlPath=none", "-o", "PasswordAuthentication=no", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
         "-i", key, "-l", user, address, f"echo {token} $(id -un)"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode == 0 and done.stdout.split() == [token, user], done.stderr


@pytest.fixture
def address(host):
    return host.ansible.get_variables()["ansible_host"]


def test_private_key_saved_owner_only():
    mode = stat.S_IMODE(os.stat(ADMIN).st_mode)
    assert mode == 0o600, oct(mode)
    with open(ADMIN, encoding="ascii") as handle:
        assert "PRIVATE KEY" in handle.readline()


def test_root_holds_only_the_attached_key_pair(host):
    keys_file = host.file("/root/.ssh/authorized_keys")
    assert keys_file.mode == 0o600
    assert keys_file.user == "root"
    # The boot put the attached key pair in place of the launch key pair.
    assert identities(keys_file.content_string) == [identity_of_private(ADMIN)]


def test_ecs_user_file(host):
    keys_file = host.file("/home/ecs-user/.ssh/authorized_keys")
    assert keys_file.mode == 0o600
    assert keys_file.user == "ecs-user"
    assert host.file("/home/ecs-user/.ssh").mode == 0o700
    held = identities(keys_file.content_string)
    expected = {identity_of_private(ADMIN), identity_of_public("laptop"), identity_of_public("alice-new"),
                identity_of_public("deploy-new")}
    assert set(held) == expected
    assert len(held) == len(expected), "a key is listed twice"
    # The rotated key kept the old line's options.
    deploy = [line for line in keys_file.content_string.splitlines() if identity_of_public("deploy-new") in line]
    assert deploy[0].startswith("no-agent-forwarding,no-X11-forwarding ")


def test_removed_keys_are_gone(host):
    content = host.file("/home/ecs-user/.ssh/authorized_keys").content_string
    for name in ("alice-old", "deploy-old"):
        assert identity_of_public(name).split()[1] not in content
    assert identity_of_private(LEGACY).split()[1] not in host.file("/root/.ssh/authorized_keys").content_string


def test_no_temporary_files_left(host):
    for directory in ("/root/.ssh", "/home/ecs-user/.ssh"):
        names = host.run(f"ls -A {directory}").stdout.split()
        assert not [n for n in names if ".tmp" in n], names


@pytest.mark.parametrize(("user", "key"), [
    ("root", ADMIN),
    ("ecs-user", ADMIN),
    ("ecs-user", os.path.join(KEYS, "laptop")),
    ("ecs-user", os.path.join(KEYS, "alice-new")),
    ("ecs-user", os.path.join(KEYS, "deploy-new")),
])
def test_login_works(address, user, key):
    ok, err = login(address, user, key)
    assert ok, err


@pytest.mark.parametrize(("user", "key"), [
    ("root", LEGACY),
    ("ecs-user", os.path.join(KEYS, "alice-old")),
    ("ecs-user", os.path.join(KEYS, "deploy-old")),
    ("root", os.path.join(KEYS, "laptop")),
])
def test_login_refused(address, user, key):
    ok, err = login(address, user, key)
    assert not ok
    assert "Permission denied" in err

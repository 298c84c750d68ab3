# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The login proof: which ssh arguments survive, the command line, and reading ssh's output."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from ansible_collections.sshkeys.ecs.plugins.plugin_utils._login_proof import (
    ProofError,
    Target,
    check_private_key_file,
    command_line,
    interpret,
    prove,
    sanitise_args,
)

FP = "SHA256:" + "A" * 43
OTHER_FP = "SHA256:" + "B" * 43
TOKEN = "sshkeys-ecs-proof-0123"


@pytest.mark.parametrize("given, kept", [
    (["-C -o ControlMaster=auto -o ControlPersist=60s"], ["-C"]),
    (["-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no"],
     ["-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no"]),
    (["-o IdentityFile=/old -i /old2 -o IdentitiesOnly=no -o IdentityAgent=/sock"], []),
    (["-oPasswordAuthentication=yes", "-o", "User=root", "-o 'Port 2222'"], []),
    (["-l root -p 2200 -A -M -S /tmp/ctl -v -q -E /tmp/log"], []),
    (["-o 'ProxyCommand=ssh -W %h:%p bastion'"], ["-o", "ProxyCommand=ssh -W %h:%p bastion"]),
    (["-J jump@bastion:2222 -4"], ["-J", "jump@bastion:2222", "-4"]),
    (["-4Cv"], ["-4", "-C"]),
    (["-F /etc/ssh/fleet_config"], ["-F", "/etc/ssh/fleet_config"]),
    (["-o controlpath=/tmp/x"], []),
    ([""], []),
])
def test_sanitise_keeps_how_to_reach_the_host_only(given, kept):
    assert sanitise_args(given) == kept


@pytest.mark.parametrize("given", [["host.example.com"], ["-o"], ["--", "x"]])
def test_sanitise_refuses_what_is_not_an_option(given):
    with pytest.raises(ProofError):
        sanitise_args(given)


def test_command_line_puts_our_options_first():
    target = Target(host="h.example", user="ecs-user", port=2222, host_key_checking=False,
                    extra_args=["-o ControlMaster=auto -o UserKnownHostsFile=/k -i /old"], timeout=7)
    args = command_line(target, "/keys/new", TOKEN)
    assert args[0] == "ssh"
    joined = " ".join(args)
    for option in ("BatchMode=yes", "IdentitiesOnly=yes", "IdentityAgent=none", "ControlMaster=no",
                   "ControlPath=none", "PasswordAuthentication=no", "KbdInteractiveAuthentication=no",
                   "ConnectTimeout=7", "StrictHostKeyChecking=no", "UserKnownHostsFile=/k"):
        assert option in joined
    assert args[args.index("-i") + 1] == "/keys/new" and args.count("-i") == 1
    assert "/old" not in args and "ControlMaster=auto" not in joined
    assert args[args.index("-l") + 1] == "ecs-user"
    assert args[args.index("-p") + 1] == "2222"
    assert args[-3:] == ["--", "h.example", f"echo {TOKEN}"]
    assert joined.index("BatchMode=yes") < joined.index("UserKnownHostsFile=/k")


def test_command_line_keeps_host_key_checking_by_default():
    args = command_line(Target(host="h", user="u"), "/k", TOKEN)
    assert "StrictHostKeyChecking=no" not in args and "-p" not in args


ACCEPTED = f"debug1: Server accepts key: /keys/new ED25519 {FP} explicit\n"
AUTHENTICATED = 'Authenticated to h ([127.0.0.1]:22) using "publickey".\n'


@pytest.mark.parametrize("rc, stdout, stderr, forced, logged_in, refused, words", [
    (0, f"{TOKEN}\n", ACCEPTED + AUTHENTICATED, False, True, False, "ran the check command"),
    (255, "", "debug1: Offering public key\nu@h: Permission denied (publickey).\n", False, False, True,
     "Permission denied (publickey)"),
    (0, f"{TOKEN}\n", ACCEPTED.replace(FP, OTHER_FP) + AUTHENTICATED, False, False, False, "different key"),
    (0, "", ACCEPTED + AUTHENTICATED, False, False, False, "did not run"),
    (1, "rsync only\n", ACCEPTED + AUTHENTICATED, True, True, False, "forced command"),
    (255, "", "ssh: connect to host h port 22: Connection refused\n", False, False, False, "Connection refused"),
    (255, "", "Host key verification failed.\n", False, False, False, "Host key verification failed"),
    (0, f"{TOKEN}\n", AUTHENTICATED, False, False, False, "did not report which key"),
])
def test_interpret(rc, stdout, stderr, forced, logged_in, refused, words):
    outcome = interpret(rc, stdout, stderr, TOKEN, FP, forced)
    assert (outcome.logged_in, outcome.refused) == (logged_in, refused)
    assert words in outcome.detail
    assert "debug1" not in outcome.detail


def test_private_key_file_checks(tmp_path):
    path = tmp_path / "id"
    secret = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n-----END OPENSSH PRIVATE KEY-----\n"
    path.write_text(secret)
    path.chmod(0o644)
    with pytest.raises(ProofError, match="0644") as error:
        check_private_key_file(str(path), "new_private_key_path")
    assert "c2VjcmV0" not in str(error.value)
    path.chmod(0o600)
    assert check_private_key_file(str(path), "new_private_key_path") == secret.encode()
    with pytest.raises(ProofError, match="does not exist"):
        check_private_key_file(str(tmp_path / "missing"), "new_private_key_path")
    with pytest.raises(ProofError, match="not a regular file"):
        check_private_key_file(str(tmp_path), "new_private_key_path")


@pytest.mark.parametrize("kind", ["fifo", "socket", "device"])
def test_a_private_key_path_that_is_no_regular_file_fails_at_once(tmp_path, kind, no_hang):
    # open() of a FIFO waits for a writer: the task would hang for good.
    path = tmp_path / "id"
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
    else:
        path = Path("/dev/null")
    with pytest.raises(ProofError, match="not a regular file"):
        check_private_key_file(str(path), "new_private_key_path")


def fake_ssh(tmp_path, script: str) -> str:
    """An executable that stands in for ssh and records its arguments."""
    path = tmp_path / "ssh"
    path.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/args\"\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_prove_runs_ssh_and_echoes_the_token(tmp_path):
    script = ('eval "last=\\${$#}"\n'
              f'echo "debug1: Server accepts key: k ED25519 {FP} explicit" >&2\n'
              'echo \'Authenticated to h ([h]:22) using "publickey".\' >&2\n'
              'sh -c "$last"\n')
    target = Target(host="h", user="u", ssh_executable=fake_ssh(tmp_path, script))
    outcome, args = prove(target, "/keys/new", FP)
    assert outcome.logged_in, outcome.detail
    recorded = (tmp_path / "args").read_text().splitlines()
    assert recorded == args[1:]


def test_prove_reports_a_missing_ssh(tmp_path):
    outcome, _args = prove(Target(host="h", user="u", ssh_executable=str(tmp_path / "nope")), "/k", FP)
    assert not outcome.logged_in and "not found" in outcome.detail


def test_prove_reports_a_refusal(tmp_path):
    script = "echo 'u@h: Permission denied (publickey).' >&2\nexit 255\n"
    outcome, _args = prove(Target(host="h", user="u", ssh_executable=fake_ssh(tmp_path, script)), "/k", FP)
    assert outcome.refused and not outcome.logged_in
    assert os.path.exists(tmp_path / "args")

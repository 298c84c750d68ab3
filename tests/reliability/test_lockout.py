# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lockout: every way a rotation can fail leaves the old key working.

One sshd container from the instance image (tools/instance-run.sh, 127.0.15.0/25). Ansible logs
in as root with an admin key; the key rotated is ecs-user's: old ECDSA key -> new Ed25519 key.
Before each case ecs-user's authorized_keys is reset to a known file (the old key with an
option, a comment, another user's key); each case breaks the rotation in one way, and then
checks, over a fresh SSH connection of its own (no connection reuse, only that key offered),
that the old key still logs in, and that the file is byte for byte what it was.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import threading
import time
from typing import Any, Dict, List

import pytest

from relsupport import count_outcomes, logs_in, ssh_login

ORIGINAL_TEMPLATE = "# keys of ecs-user\n{old}\n{other}\n"
SECTION = dict(
    title="Lockout",
    order=30,
    columns=["way the rotation fails", "task failed", "rolled back", "old key logs in", "file as before"],
)


def _summary(rows: List[list]) -> str:
    counts = count_outcomes(rows)
    kept = sum(1 for row in rows if row[3] == "yes")
    return (f"{len(rows)} ways to break a rotation on a real sshd: in {kept} of them the old key still logged in "
            f"afterwards over a fresh SSH connection; {counts.get('passed', 0)} tests passed, "
            f"{counts.get('failed', 0)} failed.")


@pytest.fixture(scope="module")
def section(figures):
    return figures.section("lockout", summary=_summary, **SECTION)


@pytest.fixture(scope="module")
def host(ssh_hosts, keys):
    admin = keys("lockout-admin", "ecdsa")
    return ssh_hosts.start(admin, label="lockout")


@pytest.fixture
def setup(host, keys):
    """Reset ecs-user's file; returns the keys and the original text."""
    old, new, other = keys("lockout-old", "ecdsa"), keys("lockout-new", "ed25519"), keys("lockout-other", "rsa")
    original = ORIGINAL_TEMPLATE.format(old="no-agent-forwarding " + old.public, other=other.public)
    _write_file(host, original)
    host.exec("rm -f /etc/ssh/sshd_config.d/90-lockout.conf /etc/ssh/revoked_keys /home/ecs-user/.ssh/rc "
              "/home/ecs-user/.ssh/authorized_keys2 && kill -HUP 1")
    _wait_sshd(host)
    assert logs_in(host, old), "the old key must log in before the test"
    yield {"old": old, "new": new, "other": other, "original": original, "admin": keys("lockout-admin", "ecdsa")}
    host.exec("rm -f /etc/ssh/sshd_config.d/90-lockout.conf /home/ecs-user/.ssh/rc && kill -HUP 1", check=False)


def _write_file(host, text: str) -> None:
    host.exec("install -d -m 0700 -o ecs-user -g ecs-user /home/ecs-user/.ssh && "
              f"printf '%s' '{text}' > /home/ecs-user/.ssh/authorized_keys && "
              "chown ecs-user:ecs-user /home/ecs-user/.ssh/authorized_keys && chmod 0600 /home/ecs-user/.ssh/authorized_keys")


def _wait_sshd(host) -> None:
    for _attempt in range(100):
        try:
            with socket.create_connection((host.address, host.port), timeout=2) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("sshd did not come back")


def _sshd_config(host, text: str) -> None:
    host.exec(f"printf '%s\\n' '{text}' > /etc/ssh/sshd_config.d/90-lockout.conf && sshd -t && kill -HUP 1")
    _wait_sshd(host)


def _rotate(ansible, host, keys_: Dict[str, Any], **extra: Any):
    args = {"user": "ecs-user", "old_key": [keys_["old"].public], "new_key": keys_["new"].public,
            "new_private_key_path": str(keys_["new"].path), "verify_timeout": 5,
            "verify_ssh_args": ["-o StrictHostKeyChecking=no", "-o UserKnownHostsFile=/dev/null"]}
    args.update(extra)
    return ansible.run_task("sshkeys.ecs.authorized_key_rotate", args, hosts=host.name, verbosity=1,
                            inventory=host.inventory_line(keys_["admin"]))


def _judge(host, keys_, run, section, request, label: str) -> None:
    now = host.read("/home/ecs-user/.ssh/authorized_keys")
    old_ok = logs_in(host, keys_["old"])
    same = now == keys_["original"]
    section.add([label, "yes" if run.rc != 0 else "no", "yes" if run.result.get("rolled_back") else "no",
                 "yes" if old_ok else "NO", "yes" if same else "no"], node=request.node)
    assert run.rc != 0, f"the rotation did not fail: {run.result}"
    assert old_ok, "LOCKOUT: the old key no longer logs in"
    assert same, f"authorized_keys differs from the original:\n{now}"
    assert keys_["new"].public_body not in now


class SilentServer:
    """Accepts TCP connections on a loopback address and never says a word (a proof that hangs)."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self.conns: List[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn = self.sock.accept()[0]
            except OSError:
                return
            self.conns.append(conn)
            self.accepted.set()

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


def test_new_key_revoked_by_sshd(ansible, host, setup, section, request):
    """sshd refuses the new key (RevokedKeys): the login proof fails, the file is put back."""
    host.exec(f"printf '%s\\n' '{setup['new'].public}' > /etc/ssh/revoked_keys")
    _sshd_config(host, "RevokedKeys /etc/ssh/revoked_keys")
    run = _rotate(ansible, host, setup)
    _judge(host, setup, run, section, request, "new key refused by sshd (RevokedKeys)")
    assert run.result.get("step") == "new_key_login"


def test_new_key_type_disabled(ansible, host, setup, section, request):
    """sshd does not accept Ed25519 keys at all."""
    _sshd_config(host, "PubkeyAcceptedAlgorithms -ssh-ed25519")
    run = _rotate(ansible, host, setup)
    _judge(host, setup, run, section, request, "new key type disabled in sshd (PubkeyAcceptedAlgorithms)")
    assert run.result.get("rolled_back") is True


def test_wrong_new_private_key(ansible, host, setup, section, request):
    """The private key given for the proof is not the new key's: refused before the host is touched."""
    run = _rotate(ansible, host, setup, new_private_key_path=str(setup["other"].path))
    _judge(host, setup, run, section, request, "wrong new private key (not the new key's)")
    assert "holds the private key of" in run.msg


def test_new_key_options_refuse_login(ansible, host, setup, section, request):
    """The new line carries from= that excludes where the proof comes from."""
    run = _rotate(ansible, host, setup, keep_options=False, new_key='from="192.0.2.1" ' + setup["new"].public)
    _judge(host, setup, run, section, request, "new key line's from= option refuses the login")


def test_proof_as_wrong_user(ansible, host, setup, section, request):
    """The proof logs in as a user the new key is not for."""
    run = _rotate(ansible, host, setup, verify_user="nobody")
    _judge(host, setup, run, section, request, "login proof as another user")


def test_proof_host_unreachable(ansible, host, setup, section, request):
    """Nothing listens at the proof address (an unused loopback address of the pool)."""
    run = _rotate(ansible, host, setup, verify_host="127.0.15.126")
    _judge(host, setup, run, section, request, "proof host unreachable (connection refused)")


def test_proof_port_closed(ansible, host, setup, section, request):
    run = _rotate(ansible, host, setup, verify_port=1)
    _judge(host, setup, run, section, request, "proof port closed")


def test_proof_timeout(ansible, host, setup, section, request):
    """The proof connects to a server that accepts and never answers: the timeout ends it."""
    server = SilentServer(host.address)
    try:
        run = _rotate(ansible, host, setup, verify_port=server.port, verify_timeout=2)
    finally:
        server.close()
    _judge(host, setup, run, section, request, "proof times out (server accepts, never answers)")
    assert server.accepted.is_set()


def test_new_key_removed_before_old(ansible, host, setup, section, request):
    """A host step fails after the add: the proof login's ~/.ssh/rc takes the new key out again,
    so the remove step finds it gone and refuses; the file ends as it was."""
    rc = f"#!/bin/sh\nsed -i '/{setup['new'].public_body[-20:].replace('/', '.')}/d' ~/.ssh/authorized_keys\n"
    host.exec(f"printf '%s' '{rc}' > /home/ecs-user/.ssh/rc && chown ecs-user /home/ecs-user/.ssh/rc")
    run = _rotate(ansible, host, setup)
    host.exec("rm -f /home/ecs-user/.ssh/rc")
    _judge(host, setup, run, section, request, "host step fails after the add (new key gone before remove)")
    assert run.result.get("step") == "remove_old"


def test_old_key_still_accepted_elsewhere(ansible, host, setup, section, request):
    """verify_old_key_rejected: another AuthorizedKeysFile still lets the old key in after its
    removal, so the rotation is undone (the old line comes back)."""
    host.exec(f"printf '%s\\n' '{setup['old'].public}' > /home/ecs-user/.ssh/authorized_keys2 && "
              "chown ecs-user /home/ecs-user/.ssh/authorized_keys2")
    _sshd_config(host, "AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2")
    run = _rotate(ansible, host, setup, verify_old_key_rejected=True, old_private_key_path=str(setup["old"].path))
    host.exec("rm -f /home/ecs-user/.ssh/authorized_keys2")
    _sshd_config(host, "# none")
    _judge(host, setup, run, section, request, "old key still accepted after removal (second AuthorizedKeysFile)")
    assert run.result.get("step") == "old_key_rejected"


def test_controller_killed_during_proof(ansible, host, setup, section, request):
    """kill -9 of ansible-playbook while the proof hangs: nothing can undo the add, but the old key
    keeps working, the original lines are all there, and a second run finishes the rotation."""
    server = SilentServer(host.address)

    def kill_during_proof(proc, workdir):  # pylint: disable=unused-argument
        if server.accepted.wait(120):
            time.sleep(0.5)
        import os  # pylint: disable=import-outside-toplevel
        import signal  # pylint: disable=import-outside-toplevel
        os.killpg(proc.pid, signal.SIGKILL)

    args = {"user": "ecs-user", "old_key": [setup["old"].public], "new_key": setup["new"].public,
            "new_private_key_path": str(setup["new"].path), "verify_timeout": 60, "verify_port": server.port}
    try:
        run = ansible.run_task("sshkeys.ecs.authorized_key_rotate", args, hosts=host.name,
                               inventory=host.inventory_line(setup["admin"]), on_start=kill_during_proof)
    finally:
        server.close()
    now = host.read("/home/ecs-user/.ssh/authorized_keys")
    old_ok = logs_in(host, setup["old"])
    originals_kept = all(line in now.splitlines() for line in setup["original"].splitlines())
    # The second run: the file holds both keys (a rotation that stopped half way), so it proves
    # the new key and removes the old one.
    rerun = _rotate(ansible, host, setup, verify_timeout=10)
    after = host.read("/home/ecs-user/.ssh/authorized_keys")
    new_ok = logs_in(host, setup["new"])
    section.add(["controller killed (kill -9) during the proof", "killed", "no (cannot)",
                 "yes" if old_ok else "NO",
                 "original lines kept, new key added; a re-run completed the rotation" if originals_kept and rerun.rc == 0
                 else "no"], node=request.node)
    assert run.rc != 0 and server.accepted.is_set()
    assert old_ok, "LOCKOUT: the old key no longer logs in"
    assert originals_kept, now
    assert rerun.rc == 0, rerun.stdout[-3000:]
    assert new_ok and setup["old"].public_body not in after


def _judge_completed(host, keys_, run, section, request, label: str) -> None:
    """For the cases where the rotation must still complete: the new key logs in, the old one no
    longer does, and the task did not fail."""
    now = host.read("/home/ecs-user/.ssh/authorized_keys")
    new_ok, old_ok = logs_in(host, keys_["new"]), logs_in(host, keys_["old"])
    section.add([label, "yes" if run.rc != 0 else "no (rotation completed)", "no (not needed)",
                 f"no (replaced; the new key logs in: {'yes' if new_ok else 'NO'})",
                 "no (rotated)" if keys_["new"].public_body in now else "NO"], node=request.node)
    assert run.rc == 0, run.stdout[-3000:]
    assert new_ok, "LOCKOUT: the new key does not log in"
    assert not old_ok and keys_["old"].public_body not in now


def test_removal_inside_the_login_fails_half_way(ansible, host, setup, section, request):
    """The new key logs in, but the removal inside its login fails (ecs-user may not write its
    ~/.ssh, owned by root here): nothing was changed by it, and the removal runs again over
    Ansible's connection (as root), so the rotation completes with its proof."""
    host.exec("chown root:root /home/ecs-user/.ssh && chmod 0755 /home/ecs-user/.ssh")
    try:
        run = _rotate(ansible, host, setup)
    finally:
        host.exec("chown ecs-user:ecs-user /home/ecs-user/.ssh && chmod 0700 /home/ecs-user/.ssh")
    _judge_completed(host, setup, run, section, request,
                     "removal inside the new key's login fails half way (its ~/.ssh not writable)")
    assert run.result["verification"]["new_key_login"] is True
    assert "removed_in_login" not in run.result["verification"]


def test_connection_drops_after_the_removal_before_its_answer(ansible, host, setup, section, request, tmp_path):
    """The proof's session removes the old key, then its answer is lost (an ssh that keeps only
    the token line of the proof's output): the rotation is found done, not undone."""
    wrapper = tmp_path / "ssh"
    wrapper.write_text('#!/bin/sh\ncase "$*" in\n  *sshkeys-ecs-proof-*"&&"*) ssh "$@" | head -n 1 ;;\n'
                       '  *) exec ssh "$@" ;;\nesac\n')
    wrapper.chmod(0o755)
    line = host.inventory_line(setup["admin"]).rstrip("\n") + f" ansible_ssh_executable={wrapper}\n"
    args = {"user": "ecs-user", "old_key": [setup["old"].public], "new_key": setup["new"].public,
            "new_private_key_path": str(setup["new"].path), "verify_timeout": 5,
            "verify_ssh_args": ["-o StrictHostKeyChecking=no", "-o UserKnownHostsFile=/dev/null"]}
    run = ansible.run_task("sshkeys.ecs.authorized_key_rotate", args, hosts=host.name, verbosity=1, inventory=line)
    _judge_completed(host, setup, run, section, request,
                     "connection drops after the removal inside the login, before its answer")
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(setup["old"].path) + ".pub"],
                                 capture_output=True, text=True, check=True).stdout.split()[1]
    assert run.result["removed"] == [fingerprint]
    assert "removed_in_login" not in run.result["verification"]


def test_rotation_succeeds_when_nothing_breaks(ansible, host, setup, figures):
    """The control case: on the same host, with the same keys, an unbroken rotation goes through
    (so the failures above come from what each test broke, not from the setup)."""
    run = _rotate(ansible, host, setup)
    after = host.read("/home/ecs-user/.ssh/authorized_keys")
    assert run.rc == 0, run.stdout[-3000:]
    # Two round trips: the removal ran inside the new key's own login.
    assert run.result["verification"]["removed_in_login"] is True
    assert logs_in(host, setup["new"])
    assert not logs_in(host, setup["old"])
    assert hashlib.sha256(after.encode()).hexdigest() != hashlib.sha256(setup["original"].encode()).hexdigest()
    assert ssh_login(host, setup["new"], command="id -un").stdout.strip() == "ecs-user"

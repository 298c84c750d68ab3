# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Adversarial: the host side's promises under attack, on a real sshd, as root, against users
who control their own homes.

One container from the instance image (tools/instance-run.sh, 127.0.15.0/25). Ansible logs in as
root (and as ecs-user with become where that matters) with an admin key. Throwaway users are made
in the container (alice, bob, both in a group "team" that shares a file they can write but do not
own); a small syslog listener on the container's /dev/log records what the modules log there, so
that "never in any log" is checked where the logs really go. alice's own key proves, over a fresh
SSH connection of its own, who can still log in after each attack.

Each class of attack is a table in docs/reliability.md: the promise in its summary, one row per
attack with what the test saw. Hard-link attacks run with the kernel's fs.protected_hardlinks both
ways where this machine lets the suite switch it (root on the host; the setting is put back).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from relsupport import CONTAINERS_CONF, KeyPair, logs_in, make_key, promise_sections

ALICE_HOME = "/home/alice"
ALICE_KEYS = f"{ALICE_HOME}/.ssh/authorized_keys"
SYSLOG_FILE = "/var/log/rel-syslog.log"
PROTECTED_HARDLINKS = Path("/proc/sys/fs/protected_hardlinks")
# A listener on the container's /dev/log: every datagram a module sends to syslog, one per line.
SYSLOG_LISTENER = """
import os, socket
path = '/dev/log'
if os.path.exists(path):
    os.unlink(path)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
os.chmod(path, 0o666)
with open('%s', 'ab', buffering=0) as out:
    while True:
        out.write(sock.recv(65536) + b'\\n')
""" % SYSLOG_FILE

PROMISES = {
    "tilde": ("~ is the managed user's home",
              "A path with ~ names the home of the user whose keys are managed, whoever runs the module (root "
              "under become, or the controller for the rotation's checks); what cannot be resolved safely is "
              "refused before anything changes."),
    "empty": ("Nothing empties authorized_keys by accident",
              "An item that holds no key (empty, blank, only comments: an empty template or lookup) is an error; "
              "exclusive with no key to keep needs allow_empty=true. Every refused case leaves the file as it was "
              "and the user's key still logs in."),
    "hardlink": ("No hard link makes root read, lock or hand over another file",
                 "A keys file, lock file or backup with more than one hard link is refused, and no file the module "
                 "did not create changes owner; tried with the kernel's fs.protected_hardlinks as this machine "
                 "allows."),
    "secrets": ("No private key material in any output or log",
                "Private key lines in the user's file (as comments, in a key's comment or options, as unreadable "
                "lines) and private keys given in any option never reach stdout at -vvv, the controller's log "
                "file, results, diffs or the host's syslog, including during a rotation that fails and restores."),
    "encoding": ("Files that are not UTF-8 and control characters never break a run",
                 "A file with bytes that are not UTF-8 is kept byte for byte and every run with --diff succeeds; "
                 "control characters in the file are escaped in output; in input they are refused."),
    "fifo": ("Nothing the user plants stalls root's task",
             "A FIFO, socket or directory in place of authorized_keys, its lock file or a private key path fails "
             "the task at once, changing nothing."),
    "modes": ("Modes sshd refuses are repaired, never kept silently",
              "A keys file or ~/.ssh that others may write is repaired (sshd's StrictModes ignores it otherwise) "
              "and reported; a home others may write fails before anything changes."),
    "smaller": ("Small inputs with big effects",
                "NUL and escape characters, trailing slashes, append-only directories and paths check mode cannot "
                "write: each is refused with a clear error, in check mode exactly as in a real run."),
}


@pytest.fixture(scope="module")
def sections(figures):
    return promise_sections(figures, PROMISES, prefix="adversarial", title="Adversarial", first_order=100,
                            columns=["attack", "what the test checked", "seen"])


# -- the host and its users -------------------------------------------------------------------------

class Box:
    """The container, its admin key and the users' keys; helpers that run commands in it."""

    def __init__(self, host, admin: KeyPair, alice: KeyPair, bob: KeyPair) -> None:
        self.host, self.admin, self.alice, self.bob = host, admin, alice, bob

    def sh(self, command: str, user: str = "root", check: bool = True, data: Optional[bytes] = None,
           privileged: bool = False) -> subprocess.CompletedProcess:
        argv = ["podman", "exec", "-i", "--user", user]
        if privileged:
            argv.append("--privileged")
        argv += [self.host.name, "sh", "-c", command]
        proc = subprocess.run(argv, input=data or b"", capture_output=True, check=False, timeout=120,
                              env=dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF))
        if check and proc.returncode != 0:
            raise RuntimeError(f"{command!r} failed: {proc.stderr.decode(errors='replace')}")
        return proc

    def put(self, path: str, data: bytes, owner: str = "alice", mode: str = "600") -> None:
        quoted = shlex.quote(path)
        self.sh(f"cat > {quoted} && chown {owner}:{owner} {quoted} && chmod {mode} {quoted}", data=data)

    def read(self, path: str) -> bytes:
        return self.sh(f"cat {shlex.quote(path)}").stdout

    def stat(self, path: str) -> str:
        return self.sh(f"stat -c '%U %a %h %F' {shlex.quote(path)}", check=False).stdout.decode().strip()

    def reset_alice(self, text: Optional[str] = None) -> bytes:
        """alice's ~/.ssh as a careful user keeps it: 0700, her key (and text) in a 0600 file."""
        data = (text if text is not None else f"# alice\n{self.alice.public}\n").encode()
        self.sh(f"chattr -a {ALICE_HOME}/.ssh 2>/dev/null; rm -rf {ALICE_HOME}/.ssh && chmod 0700 {ALICE_HOME} && "
                f"install -d -m 0700 -o alice -g alice {ALICE_HOME}/.ssh", privileged=True)
        self.put(ALICE_KEYS, data)
        return data

    def syslog(self) -> str:
        return self.sh(f"cat {SYSLOG_FILE}", check=False).stdout.decode(errors="replace")

    def inventory(self, user: str = "root", become: bool = False) -> str:
        line = self.host.inventory_line(self.admin, user=user).rstrip("\n")
        if become:
            line += " ansible_become=true ansible_become_user=root"
        return line + "\n"


@pytest.fixture(scope="module")
def box(ssh_hosts, keys) -> Iterator[Box]:
    admin, alice, bob = keys("adv-admin", "ecdsa"), keys("adv-alice", "ed25519"), keys("adv-bob", "ed25519")
    host = ssh_hosts.start(admin, label="adversarial")
    found = Box(host, admin, alice, bob)
    found.sh("groupadd -f team && (id alice >/dev/null 2>&1 || useradd -m -s /bin/sh -G team alice) && "
             "(id bob >/dev/null 2>&1 || useradd -m -s /bin/sh -G team bob) && "
             "install -d -m 0755 /srv && printf 'team notes\\n' > /srv/team-notes && "
             "chown root:team /srv/team-notes && chmod 0664 /srv/team-notes && "
             "passwd -d alice >/dev/null && passwd -d bob >/dev/null")
    subprocess.run(["podman", "exec", "-d", host.name, "python3", "-c", SYSLOG_LISTENER], check=True,
                   env=dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF))
    for _attempt in range(50):
        if found.sh("test -S /dev/log", check=False).returncode == 0:
            break
        time.sleep(0.1)
    found.sh("python3 -c \"import syslog; syslog.syslog('listener-ready')\"")
    time.sleep(0.2)
    assert "listener-ready" in found.syslog(), "the syslog listener in the container does not record"
    bob_ssh = "/home/bob/.ssh"
    found.sh(f"install -d -m 0700 -o bob -g bob {bob_ssh}")
    found.put(f"{bob_ssh}/authorized_keys", f"{bob.public}\n".encode(), owner="bob")
    yield found


@pytest.fixture
def alice_file(box) -> bytes:
    data = box.reset_alice()
    assert logs_in(box.host, box.alice, user="alice"), "alice's key must log in before the attack"
    return data


@pytest.fixture(scope="module")
def private_key(tmp_path_factory) -> KeyPair:
    return make_key(tmp_path_factory.mktemp("adv-private"), "pasted", "rsa", bits=2048)


def body_lines(private: str) -> List[str]:
    return [line for line in private.splitlines() if line and not line.startswith("-----")]


def run(ansible, box: Box, module: str, args: Dict[str, Any], user: str = "root", become: bool = False,
        **kwargs: Any):
    kwargs.setdefault("verbosity", 3)
    return ansible.run_task(module, args, hosts=box.host.name, inventory=box.inventory(user, become),
                            timeout=kwargs.pop("timeout", 180), **kwargs)


def record(sections, name: str, request, attack: str, checked: str, seen: str) -> None:
    sections[name].add([attack, checked, seen], node=request.node)


@contextlib.contextmanager
def protected_hardlinks(value: int) -> Iterator[bool]:
    """Switch fs.protected_hardlinks for the block; yields False when the machine does not allow it."""
    try:
        before = PROTECTED_HARDLINKS.read_text().strip()
    except OSError:
        yield False
        return
    if before == str(value):
        yield True
        return
    try:
        PROTECTED_HARDLINKS.write_text(str(value))
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        PROTECTED_HARDLINKS.write_text(before)


# -- 3. ~ is the managed user's home ------------------------------------------------------------------

TILDE_PATHS = ["~/.ssh/authorized_keys", "~alice/.ssh/authorized_keys", "~/.ssh/../.ssh/authorized_keys"]


@pytest.mark.parametrize("become", [False, True], ids=["as root", "as ecs-user with become"])
@pytest.mark.parametrize("path", TILDE_PATHS)
def test_tilde_writes_the_managed_users_file(ansible, box, alice_file, sections, request, path, become):
    root_before = box.read("/root/.ssh/authorized_keys")
    result = run(ansible, box, "sshkeys.ecs.authorized_keys", {"user": "alice", "path": path, "keys": [box.bob.public]},
                 user="ecs-user" if become else "root", become=become)
    alice_now = box.read(ALICE_KEYS).decode()
    lock_owner = box.stat(f"{ALICE_HOME}/.ssh/.authorized_keys.lock").split(" ")[0]
    root_same = box.read("/root/.ssh/authorized_keys") == root_before
    record(sections, "tilde", request, f"path {path!r}, user alice, connected {'as ecs-user, become' if become else 'as root'}",
           "bob's key lands in alice's file; root's file untouched; lock file alice's",
           f"result path {result.result.get('path')}; root's file {'same' if root_same else 'CHANGED'}; lock owner {lock_owner}")
    assert result.rc == 0, result.msg
    assert result.result["path"] == ALICE_KEYS and box.bob.public_body in alice_now
    assert root_same and lock_owner == "alice"
    assert logs_in(box.host, box.bob, user="alice")


@pytest.mark.parametrize("path, words", [
    ("~bob/.ssh/authorized_keys", "another user's home"),
    ("~root/.ssh/authorized_keys", "another user's home"),
    ("~", "home directory"),
    (".ssh/authorized_keys", "absolute"),
    ("$HOME/.ssh/authorized_keys", "absolute"),
    ("/home/alice/.ssh/", "directory"),
    ("/home/alice/.ssh/authorized_keys\n", "whitespace"),
    ("/home/alice/.ssh/auth\u0000orized_keys", "NUL"),
])
@pytest.mark.parametrize("module", ["authorized_keys", "authorized_keys_info", "authorized_key_rotate"])
def test_paths_that_cannot_be_resolved_safely(ansible, box, alice_file, sections, request, path, words, module):
    args: Dict[str, Any] = {"user": "alice", "path": path}
    if module == "authorized_keys":
        args["keys"] = [box.bob.public]
    elif module == "authorized_key_rotate":
        args.update(old_key=[box.alice.public], new_key=box.bob.public, new_private_key_path=str(box.bob.path))
    before = {p: box.read(p) for p in (ALICE_KEYS, "/root/.ssh/authorized_keys", "/home/bob/.ssh/authorized_keys")}
    result = run(ansible, box, f"sshkeys.ecs.{module}", args, verbosity=0)
    after = {p: box.read(p) for p in before}
    record(sections, "tilde", request, f"{module} path {path!r}", "refused with a clear error; no file changed",
           result.msg[:120] or "(no message)")
    assert result.rc != 0 and words in result.msg, result.msg
    assert after == before and "Traceback" not in result.output


# -- 4. nothing empties the file by accident ------------------------------------------------------------

EMPTY_ITEMS = {
    "empty string": [""],
    "whitespace": ["   "],
    "newline only": ["\n"],
    "a comment": ["# alice's old key, removed"],
    "commented-out key": ["# ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDk8UXZMLhrCXhxEYSNCLYx1ggomvMkK1W+qBSRARZoH"],
    "empty list": [],
    "only absent entries": "absent",
}


@pytest.mark.parametrize("case", list(EMPTY_ITEMS))
def test_exclusive_with_empty_looking_keys_keeps_the_file(ansible, box, alice_file, sections, request, case):
    keys = EMPTY_ITEMS[case]
    if keys == "absent":
        keys = [{"key": box.bob.public, "state": "absent"}]
    result = run(ansible, box, "sshkeys.ecs.authorized_keys", {"user": "alice", "keys": keys, "exclusive": True},
                 verbosity=0)
    same = box.read(ALICE_KEYS) == alice_file
    still = logs_in(box.host, box.alice, user="alice")
    record(sections, "empty", request, f"exclusive=true with {case}", "refused; file unchanged; alice logs in",
           f"{'refused' if result.rc else 'ACCEPTED'}: {result.msg[:90]}; alice logs in: {'yes' if still else 'NO'}")
    assert result.rc != 0 and ("holds no key" in result.msg or "allow_empty" in result.msg), result.msg
    assert same and still


@pytest.mark.parametrize("source", ["lookup of an empty file", "template that renders nothing"])
def test_exclusive_with_an_empty_lookup_or_template(ansible, box, alice_file, sections, request, tmp_path, source):
    empty = tmp_path / "empty.pub"
    empty.write_text("")
    value = "{{ lookup('ansible.builtin.file', '%s') }}" % empty if source.startswith("lookup") else \
        "{{ team_keys | default([]) | join('\\n') }}"
    play = (f"- hosts: {box.host.name}\n  gather_facts: false\n  tasks:\n"
            f"    - name: run sshkeys.ecs.authorized_keys\n      sshkeys.ecs.authorized_keys:\n"
            f"        user: alice\n        exclusive: true\n        keys:\n          - \"{value}\"\n")
    result = ansible.run_playbook(play, inventory=box.inventory())
    same = box.read(ALICE_KEYS) == alice_file
    record(sections, "empty", request, f"exclusive=true with a {source}", "refused; file unchanged",
           f"{'refused' if result.rc else 'ACCEPTED'}: {result.msg[:100]}")
    assert result.rc != 0 and "holds no key" in result.msg and same


def test_allow_empty_does_what_it_says(ansible, box, alice_file, sections, request):
    result = run(ansible, box, "sshkeys.ecs.authorized_keys",
                 {"user": "alice", "keys": [], "exclusive": True, "allow_empty": True}, verbosity=0)
    now = box.read(ALICE_KEYS).decode()
    refused = not logs_in(box.host, box.alice, user="alice")
    record(sections, "empty", request, "exclusive=true, keys=[], allow_empty=true (the opt-in)",
           "every key removed, comments kept; alice's key refused by sshd",
           f"file now {now!r}; alice refused: {'yes' if refused else 'NO'}")
    assert result.rc == 0 and result.result["changed"] and now == "# alice\n" and refused


# -- 5. hard links -----------------------------------------------------------------------------------------

def _hardlink_case(box: Box, target: str, link: str) -> bool:
    """alice links her path to target (as alice, so the kernel's rules apply); False when refused."""
    box.sh(f"rm -f {link}", user="alice", check=False)
    return box.sh(f"ln {target} {link}", user="alice", check=False).returncode == 0


HARDLINK_CASES = [
    ("lock file -> shared group file", "/srv/team-notes", f"{ALICE_HOME}/.ssh/.authorized_keys.lock", "authorized_keys"),
    ("authorized_keys -> shared group file", "/srv/team-notes", ALICE_KEYS, "authorized_keys"),
    ("authorized_keys -> shared group file (info)", "/srv/team-notes", ALICE_KEYS, "authorized_keys_info"),
    ("lock file -> /etc/shadow", "/etc/shadow", f"{ALICE_HOME}/.ssh/.authorized_keys.lock", "authorized_keys"),
    ("authorized_keys -> /etc/shadow (info)", "/etc/shadow", ALICE_KEYS, "authorized_keys_info"),
    ("authorized_keys -> /etc/shadow, follow=true", "/etc/shadow", ALICE_KEYS, "authorized_keys"),
]


@pytest.mark.parametrize("protected", [1, 0], ids=["protected_hardlinks=1", "protected_hardlinks=0"])
@pytest.mark.parametrize("label, target, link, module", HARDLINK_CASES, ids=[case[0] for case in HARDLINK_CASES])
def test_hard_links_planted_by_the_user(ansible, box, alice_file, sections, request, protected, label, target, link,
                                        module):
    with protected_hardlinks(protected) as switched:
        if not switched:
            record(sections, "hardlink", request, f"{label}, protected_hardlinks={protected}",
                   "the kernel setting could not be switched here", "not tried")
            pytest.skip(f"fs.protected_hardlinks cannot be set to {protected} on this machine")
        planted = _hardlink_case(box, target, link)
    target_before = (box.stat(target), box.read(target))
    if not planted:
        record(sections, "hardlink", request, f"{label}, protected_hardlinks={protected}",
               "the link itself", "the kernel refused the link: nothing to attack")
        assert protected == 1
        return
    args: Dict[str, Any] = {"user": "alice"}
    if module == "authorized_keys":
        args["keys"] = [box.bob.public]
        if "follow" in label:
            args["follow"] = True
    result = run(ansible, box, f"sshkeys.ecs.{module}", args)
    target_after = (box.stat(target), box.read(target))
    leaked = [line for line in target_before[1].decode(errors="replace").splitlines()
              if len(line) > 6 and line in result.output]
    record(sections, "hardlink", request, f"{label}, protected_hardlinks={protected}",
           "refused; target's owner, mode and content unchanged; none of its lines in output",
           f"{'refused' if result.rc else 'ACCEPTED'}: {result.msg[:70]}; target {target_after[0]}; "
           f"lines shown: {len(leaked)}")
    box.sh(f"rm -f {link}")
    assert result.rc != 0 and "hard link" in result.msg, result.msg
    assert target_after == target_before and not leaked


# -- 6. private key material, in the file and in options ---------------------------------------------------

def _file_with(shape: str, private: str, alice: KeyPair) -> str:
    lines = private.splitlines()
    pasted = {
        "as comment lines": "".join(f"# {line}\n" for line in lines),
        "as unreadable lines": private,
        "in key comments": "".join(f"{alice.public.split()[0]} {alice.public_body} {line}\n" for line in lines),
        "in command= options": "".join(f'command="echo {line}" {alice.public}\n' for line in lines if "-" not in line),
        "indented after a key": "".join(f"    {line}\n" for line in lines),
    }[shape]
    return f"# alice\n{alice.public}\n{pasted}"


SECRET_SHAPES = ["as comment lines", "as unreadable lines", "in key comments", "in command= options",
                 "indented after a key"]


def _leaks(result, box: Box, private: str, since: int) -> List[str]:
    log = box.syslog()[since:]
    found = []
    for line in body_lines(private):
        for where, text in (("output", result.output), ("syslog", log)):
            if line in text or line in text.replace("\\n", "\n"):
                found.append(where)
    return sorted(set(found))


@pytest.mark.parametrize("shape", SECRET_SHAPES)
@pytest.mark.parametrize("task", ["authorized_keys --diff", "authorized_keys_info", "failed rotation (restore)"])
def test_private_key_lines_in_the_file_never_show(ansible, box, sections, request, private_key, shape, task):
    original = box.reset_alice(_file_with(shape, private_key.private, box.alice))
    since = len(box.syslog())
    if task.startswith("authorized_keys --diff"):
        result = run(ansible, box, "sshkeys.ecs.authorized_keys", {"user": "alice", "keys": [box.bob.public]},
                     diff=True)
        ok = result.rc == 0
    elif task == "authorized_keys_info":
        result = run(ansible, box, "sshkeys.ecs.authorized_keys_info", {"user": "alice"})
        ok = result.rc == 0
    else:
        # The proof goes to a port where nothing listens: it fails, and alice's file is restored
        # from the host's own copy.
        result = run(ansible, box, "sshkeys.ecs.authorized_key_rotate",
                     {"user": "alice", "old_key": [box.alice.public], "new_key": box.bob.public,
                      "new_private_key_path": str(box.bob.path), "verify_port": 9, "verify_timeout": 5,
                      "verify_ssh_args": ["-o StrictHostKeyChecking=no", "-o UserKnownHostsFile=/dev/null"]},
                     diff=True)
        ok = result.rc != 0 and result.result.get("rolled_back") and box.read(ALICE_KEYS) == original
    leaks = _leaks(result, box, private_key.private, since)
    record(sections, "secrets", request, f"private key {shape}; {task} at -vvv", "no body line in stdout, log file, "
           "result, diff or the host's syslog", f"run {'as expected' if ok else 'UNEXPECTED'}; leaks: "
           f"{', '.join(leaks) or 'none'}")
    assert ok, result.msg
    assert not leaks


OPTION_CASES = {
    "authorized_keys keys[]": ("sshkeys.ecs.authorized_keys", lambda p, b: {"user": "alice", "keys": [p]}),
    "authorized_keys comment": ("sshkeys.ecs.authorized_keys",
                                lambda p, b: {"user": "alice", "keys": [{"key": b.bob.public, "comment": p}]}),
    "authorized_keys options": ("sshkeys.ecs.authorized_keys",
                                lambda p, b: {"user": "alice", "keys": [{"key": b.bob.public, "options": p}]}),
    "authorized_keys options, one line": ("sshkeys.ecs.authorized_keys", lambda p, b: {
        "user": "alice", "keys": [{"key": b.bob.public, "options": 'command="' + "".join(body_lines(p)) + '"x'}]}),
    "authorized_keys replaces": ("sshkeys.ecs.authorized_keys",
                                 lambda p, b: {"user": "alice", "keys": [{"key": b.bob.public, "replaces": p}]}),
    "authorized_keys user": ("sshkeys.ecs.authorized_keys", lambda p, b: {"user": p, "keys": [b.bob.public]}),
    "authorized_keys path": ("sshkeys.ecs.authorized_keys",
                             lambda p, b: {"user": "alice", "path": p, "keys": [b.bob.public]}),
    "authorized_keys replace_missing": ("sshkeys.ecs.authorized_keys", lambda p, b: {
        "user": "alice", "keys": [b.bob.public], "replace_missing": p}),
    "authorized_keys_info path": ("sshkeys.ecs.authorized_keys_info", lambda p, b: {"user": "alice", "path": p}),
    "authorized_key_rotate new_key": ("sshkeys.ecs.authorized_key_rotate", lambda p, b: {
        "user": "alice", "old_key": [b.alice.public], "new_key": p, "verify": False, "accept_lockout_risk": True}),
    "authorized_key_rotate old_key": ("sshkeys.ecs.authorized_key_rotate", lambda p, b: {
        "user": "alice", "old_key": [p], "new_key": b.bob.public, "verify": False, "accept_lockout_risk": True}),
}


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_a_private_key_in_any_option_never_shows(ansible, box, alice_file, sections, request, private_key, case):
    module, make_args = OPTION_CASES[case]
    since = len(box.syslog())
    result = run(ansible, box, module, make_args(private_key.private, box), diff=True)
    leaks = _leaks(result, box, private_key.private, since)
    same = box.read(ALICE_KEYS) == alice_file
    record(sections, "secrets", request, f"private key in {case}, -vvv", "refused; no body line in output, log "
           "or syslog; file unchanged", f"{'refused' if result.rc else 'ACCEPTED'}; leaks: {', '.join(leaks) or 'none'}")
    assert result.rc != 0 and same
    assert not leaks


# -- 8. bytes that are not UTF-8, control characters ----------------------------------------------------

@pytest.mark.parametrize("content", [
    b"# caf\xe9 (latin-1)\n",
    b"# \xff\xfe\x00 binary junk\n",
    b"\xc3\x28 not a key\n",
])
def test_a_file_that_is_not_utf8(ansible, box, alice_file, sections, request, content):
    data = content + box.alice.public.encode() + b" \xe9t\xe9\n"
    box.put(ALICE_KEYS, data)
    runs = [run(ansible, box, "sshkeys.ecs.authorized_keys", {"user": "alice", "keys": [box.bob.public]}, diff=True)
            for _attempt in range(2)]
    info = run(ansible, box, "sshkeys.ecs.authorized_keys_info", {"user": "alice"})
    now = box.read(ALICE_KEYS)
    record(sections, "encoding", request, f"file starting {content[:12]!r}", "both --diff runs and info succeed; "
           "the bytes kept; the key added once", f"rc {[r.rc for r in runs]} + info {info.rc}; bytes kept: "
           f"{'yes' if now.startswith(data) else 'NO'}")
    assert [r.rc for r in runs] == [0, 0] and info.rc == 0, runs[0].msg or runs[1].msg or info.msg
    assert runs[0].result["changed"] and not runs[1].result["changed"]
    assert now == data + box.bob.public.encode() + b"\n"
    assert logs_in(box.host, box.alice, user="alice")


def test_escape_sequences_in_the_file_are_escaped_in_output(ansible, box, alice_file, sections, request):
    box.put(ALICE_KEYS, f"# \x1b]0;pwned\x07title\n{box.alice.public} \x1b[2Jclear\n".encode())
    info = run(ansible, box, "sshkeys.ecs.authorized_keys_info", {"user": "alice"})
    diff = run(ansible, box, "sshkeys.ecs.authorized_keys", {"user": "alice", "keys": [box.bob.public]}, diff=True)
    raw = [r for r in (info, diff) if "\x1b" in r.stdout or "\x07" in r.stdout]
    record(sections, "encoding", request, "escape sequences in a comment line and a key comment",
           "no raw escape character in any output", f"runs with raw escapes: {len(raw)}")
    assert info.rc == 0 and diff.rc == 0 and not raw


# -- 10. FIFOs and other files that are not regular ----------------------------------------------------

@pytest.mark.parametrize("what", ["authorized_keys", ".authorized_keys.lock"])
@pytest.mark.parametrize("kind", ["FIFO", "socket", "directory"])
@pytest.mark.parametrize("module", ["authorized_keys", "authorized_keys_info"])
def test_a_planted_fifo_never_stalls_the_task(ansible, box, alice_file, sections, request, what, kind, module):
    if module == "authorized_keys_info" and what != "authorized_keys":
        pytest.skip("authorized_keys_info takes no lock")
    path = f"{ALICE_HOME}/.ssh/{what}"
    make = {"FIFO": f"mkfifo {path}", "directory": f"mkdir {path}",
            "socket": f"python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('{path}')\""}[kind]
    box.sh(f"rm -f {path} && {make}", user="alice")
    args: Dict[str, Any] = {"user": "alice"}
    if module == "authorized_keys":
        args["keys"] = [box.bob.public]
    result = run(ansible, box, f"sshkeys.ecs.{module}", args, verbosity=0, timeout=150)
    kind_after = box.stat(path).split(" ", 3)[-1]
    record(sections, "fifo", request, f"{kind} as {what}, {module}", "fails at once with a clear error",
           f"rc {result.rc}: {result.msg[:80]}; still a {kind_after}")
    assert result.rc not in (0, -9), "the task hung or succeeded"
    assert "not a regular file" in result.msg or "is a directory" in result.msg, result.msg


def test_a_fifo_as_the_rotations_private_key_never_stalls(ansible, box, alice_file, sections, request, tmp_path):
    fifo = tmp_path / "new-key"
    os.mkfifo(fifo, 0o600)
    result = run(ansible, box, "sshkeys.ecs.authorized_key_rotate",
                 {"user": "alice", "old_key": [box.alice.public], "new_key": box.bob.public,
                  "new_private_key_path": str(fifo)}, verbosity=0, timeout=150)
    record(sections, "fifo", request, "FIFO as new_private_key_path (controller)", "fails at once; host untouched",
           f"rc {result.rc}: {result.msg[:80]}")
    assert result.rc not in (0, -9) and "not a regular file" in result.msg
    assert box.read(ALICE_KEYS) == alice_file


# -- 11. modes sshd refuses ------------------------------------------------------------------------------

@pytest.mark.parametrize("file_mode, dir_mode", [("666", "700"), ("620", "700"), ("600", "777"), ("600", "770")])
def test_unsafe_modes_are_repaired(ansible, box, alice_file, sections, request, file_mode, dir_mode):
    box.sh(f"chmod {file_mode} {ALICE_KEYS} && chmod {dir_mode} {ALICE_HOME}/.ssh")
    before_login = logs_in(box.host, box.alice, user="alice")
    check = run(ansible, box, "sshkeys.ecs.authorized_keys", {"user": "alice", "keys": [box.alice.public]},
                check=True, verbosity=0)
    result = run(ansible, box, "sshkeys.ecs.authorized_keys", {"user": "alice", "keys": [box.alice.public]},
                 verbosity=0)
    modes = (box.stat(ALICE_KEYS).split()[1], box.stat(f"{ALICE_HOME}/.ssh").split()[1])
    after_login = logs_in(box.host, box.alice, user="alice")
    again = run(ansible, box, "sshkeys.ecs.authorized_keys", {"user": "alice", "keys": [box.alice.public]},
                verbosity=0)
    record(sections, "modes", request, f"authorized_keys {file_mode}, ~/.ssh {dir_mode}",
           "check mode reports it; the run repairs it; sshd then accepts the key; a re-run changes nothing",
           f"sshd before: {'accepts' if before_login else 'refuses'}; fixed {result.result.get('fixed_modes')}; "
           f"now {modes[0]}/{modes[1]}; sshd after: {'accepts' if after_login else 'REFUSES'}")
    assert check.result.get("changed") and check.result.get("fixed_modes")
    assert result.rc == 0 and result.result["changed"] and result.result["fixed_modes"]
    assert not int(modes[0], 8) & 0o022 and not int(modes[1], 8) & 0o022
    assert after_login and again.rc == 0 and not again.result["changed"]


@pytest.mark.parametrize("home_mode", ["777", "775"])
def test_a_home_others_can_write_fails_before_any_change(ansible, box, alice_file, sections, request, home_mode):
    box.sh(f"chmod {home_mode} {ALICE_HOME}")
    results = [run(ansible, box, "sshkeys.ecs.authorized_keys", {"user": "alice", "keys": [box.bob.public]},
                   check=check, verbosity=0) for check in (True, False)]
    info = run(ansible, box, "sshkeys.ecs.authorized_keys_info", {"user": "alice"}, verbosity=0)
    same = box.read(ALICE_KEYS) == alice_file
    box.sh(f"chmod 700 {ALICE_HOME}")
    record(sections, "modes", request, f"home directory {home_mode}", "check and real run fail naming StrictModes; "
           "file unchanged", f"rc {[r.rc for r in results]}: {results[1].msg[:80]}; info rc {info.rc}")
    assert all(r.rc != 0 and "StrictModes" in r.msg for r in results) and same


def test_info_reports_modes_sshd_refuses(ansible, box, alice_file, sections, request):
    box.sh(f"chmod 666 {ALICE_KEYS}")
    info = run(ansible, box, "sshkeys.ecs.authorized_keys_info", {"user": "alice"}, verbosity=0)
    record(sections, "modes", request, "authorized_keys_info on a 0666 file", "reported in problems",
           f"problems: {info.result.get('problems')}")
    box.sh(f"chmod 600 {ALICE_KEYS}")
    assert info.rc == 0 and info.result["problems"] and "0666" in info.result["problems"][0]


# -- 12. smaller: control characters in input, trailing slash, append-only, check mode parity ------------

@pytest.mark.parametrize("label, entry", [
    ("NUL in an option value", {"options": 'command="echo ok\u0000rm -rf"'}),
    ("escape in an option value", {"options": 'from="10.0.0.1\u001b[2J"'}),
    ("NUL in a comment", {"comment": "ok\u0000hidden"}),
    ("ANSI escape in a comment", {"comment": "\u001b]0;pwned\u0007"}),
])
def test_control_characters_in_input(ansible, box, alice_file, sections, request, label, entry):
    result = run(ansible, box, "sshkeys.ecs.authorized_keys",
                 {"user": "alice", "keys": [dict(entry, key=box.bob.public)]}, verbosity=0)
    same = box.read(ALICE_KEYS) == alice_file
    record(sections, "smaller", request, label, "refused; file unchanged", f"rc {result.rc}: {result.msg[:90]}")
    assert result.rc != 0 and "control character" in result.msg and same


@pytest.mark.parametrize("label, user", [("NUL in user", "ali\u0000ce"), ("newline in user", "alice\n"),
                                         ("slash in user", "../alice")])
def test_bad_user_names(ansible, box, alice_file, sections, request, label, user):
    result = run(ansible, box, "sshkeys.ecs.authorized_keys", {"user": user, "keys": [box.bob.public]}, verbosity=0)
    record(sections, "smaller", request, label, "a clear error naming the user", f"rc {result.rc}: {result.msg[:90]}")
    assert result.rc != 0 and "not a user name" in result.msg


@pytest.mark.parametrize("check", [True, False], ids=["check mode", "real run"])
@pytest.mark.parametrize("label, args, words", [
    ("path /", {"user": "alice", "path": "/"}, "directory"),
    ("trailing slash", {"user": "alice", "path": f"{ALICE_HOME}/.ssh/authorized_keys/"}, "directory"),
    ("user without a home", {"user": "nohome"}, "does not exist"),
    ("manage_dir=false, no ~/.ssh", {"user": "nohome2", "manage_dir": False}, "manage_dir"),
])
def test_check_mode_fails_where_the_real_run_fails(ansible, box, alice_file, sections, request, check, label, args,
                                                   words):
    box.sh("id nohome >/dev/null 2>&1 || useradd -M -d /home/nohome -s /bin/sh nohome; "
           "id nohome2 >/dev/null 2>&1 || useradd -m -s /bin/sh nohome2")
    result = run(ansible, box, "sshkeys.ecs.authorized_keys", dict(args, keys=[box.bob.public]), check=check,
                 verbosity=0)
    record(sections, "smaller", request, f"{label} ({'check mode' if check else 'real run'})",
           "the same clear error in check mode as in a real run", f"rc {result.rc}: {result.msg[:90]}")
    assert result.rc != 0 and words in result.msg, result.msg
    assert box.sh("test -e /home/nohome", check=False).returncode != 0


@pytest.mark.parametrize("check", [True, False], ids=["check mode", "real run"])
def test_an_append_only_directory(ansible, box, alice_file, sections, request, check):
    if box.sh(f"chattr +a {ALICE_HOME}/.ssh", privileged=True, check=False).returncode != 0:
        record(sections, "smaller", request, "append-only ~/.ssh (chattr +a)", "refused before writing",
               "chattr is not possible here")
        pytest.skip("chattr +a is not possible in this container's file system")
    try:
        result = run(ansible, box, "sshkeys.ecs.authorized_keys", {"user": "alice", "keys": [box.bob.public]},
                     check=check, verbosity=0)
        listing = box.sh(f"ls -A {ALICE_HOME}/.ssh").stdout.decode().split()
    finally:
        box.sh(f"chattr -a {ALICE_HOME}/.ssh", privileged=True, check=False)
    record(sections, "smaller", request, f"append-only ~/.ssh (chattr +a), {'check mode' if check else 'real run'}",
           "refused before writing; no temporary file left", f"rc {result.rc}: {result.msg[:70]}; files {listing}")
    assert result.rc != 0 and "append-only" in result.msg, result.msg
    assert sorted(listing) in (["authorized_keys"], [".authorized_keys.lock", "authorized_keys"])


def test_a_failed_rotation_sends_no_line_of_the_file_anywhere(ansible, box, sections, request):
    """The restore comes from the host's own copy: no line of the user's file travels to the
    controller or through a module argument (and so to syslog), and the file comes back byte for
    byte. A unique comment line in the file is looked for everywhere."""
    marker = f"# only-in-this-file-{os.urandom(8).hex()}"
    original = box.reset_alice(f"{marker}\n{box.alice.public}\n# trailing comment, no newline at the end")
    since = len(box.syslog())
    result = run(ansible, box, "sshkeys.ecs.authorized_key_rotate",
                 {"user": "alice", "old_key": [box.alice.public], "new_key": box.bob.public,
                  "new_private_key_path": str(box.bob.path), "verify_port": 9, "verify_timeout": 5})
    seen = [where for where, text in (("output", result.output), ("syslog", box.syslog()[since:]))
            if marker[2:] in text]
    same = box.read(ALICE_KEYS) == original
    record(sections, "secrets", request, "a unique comment line in the file; a rotation that fails and restores, "
           "at -vvv", "the line in no output, result, module argument or syslog; the file byte for byte",
           f"rolled back: {result.result.get('rolled_back')}; the line seen in: {', '.join(seen) or 'nowhere'}; "
           f"file {'identical' if same else 'CHANGED'}")
    assert result.rc != 0 and result.result.get("rolled_back") is True
    assert not seen and same

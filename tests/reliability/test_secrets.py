# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets: every module at -vvv with diff mode, in check mode and for real; symlinks in ~/.ssh.

The AccessKey secret, the admin token, a passphrase and every private key involved must never
show in stdout, stderr, the ANSIBLE_LOG_PATH file or the emulator's request log; no output holds
a private key block at all. Private keys written are 0600. Symbolic links planted in ~/.ssh (the
authorized_keys file, the .ssh directory, a private key path, a dangling link) are refused, and
the files they point to stay as they were.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

from relsupport import count_outcomes, file_state, find_secrets

PASSPHRASE = "pass-phrase-that-must-not-show-7Q"
WRONG_SECRET = "wrong-secret-that-must-not-show-4Kx9"
SECTION = dict(title="Secrets", order=20, columns=["check", "runs / cases", "observed"])


def _summary(rows: List[list]) -> str:
    counts = count_outcomes(rows)
    return (f"{len(rows)} checks over every module at -vvv with diff mode (check mode and real runs) and "
            f"symbolic links planted in ~/.ssh: {counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed.")


@pytest.fixture(scope="module")
def section(figures):
    return figures.section("secrets", summary=_summary, **SECTION)


def _cloud_tasks(home: Path, suffix: str, instance_ids: List[str], user_key, other_key, ak_path: str) -> List[dict]:
    ssh = home / ".ssh"
    return [
        {"name": "create in the cloud, private key to a file",
         "sshkeys.ecs.ecs_keypair": {"name": f"sec-cloud-{suffix}", "private_key_path": str(ssh / "cloud_key")}},
        {"name": "create locally with a passphrase",
         "sshkeys.ecs.ecs_keypair": {"name": f"sec-local-{suffix}", "generate": "local", "key_type": "ed25519",
                                     "passphrase": PASSPHRASE, "private_key_path": str(ssh / "local_key")}},
        {"name": "create, private key returned under no_log", "no_log": True,
         "sshkeys.ecs.ecs_keypair": {"name": f"sec-ret-{suffix}", "return_private_key": True}},
        # The AccessKey as options, ID and secret together: the collection never takes an ID from
        # one place and its secret from another.
        {"name": "import with the secret as an option",
         "sshkeys.ecs.ecs_keypair": {"name": f"sec-imp-{suffix}", "public_key": user_key.public,
                                     "alicloud_access_key": "{{ lookup('env', 'ALIBABA_CLOUD_ACCESS_KEY_ID') }}",
                                     "alicloud_secret_key": "{{ lookup('env', 'ALIBABA_CLOUD_ACCESS_KEY_SECRET') }}",
                                     "tags": {"team": "sec"}}},
        {"name": "describe", "sshkeys.ecs.ecs_keypair_info": {"names": [f"sec-*-{suffix}"], "include_instances": True}},
        # In check mode the imported key pair does not exist yet, so attaching it cannot be planned.
        {"name": "attach", "when": "not ansible_check_mode",
         "sshkeys.ecs.ecs_keypair_attach": {"key_pair_name": f"sec-imp-{suffix}", "instance_ids": instance_ids}},
        {"name": "a wrong secret", "ignore_errors": True,
         "sshkeys.ecs.ecs_keypair_info": {"names": ["x*"], "alicloud_secret_key": WRONG_SECRET, "ecs_retries": 0,
                                          "alicloud_access_key": "{{ lookup('env', 'ALIBABA_CLOUD_ACCESS_KEY_ID') }}"}},
        {"name": "authorized keys",
         "sshkeys.ecs.authorized_keys": {"user": "root", "path": ak_path, "keys": [other_key.public]}},
        {"name": "authorized keys info", "sshkeys.ecs.authorized_keys_info": {"user": "root", "path": ak_path}},
        {"name": "detach", "when": "not ansible_check_mode",
         "sshkeys.ecs.ecs_keypair_attach": {"key_pair_name": f"sec-imp-{suffix}", "instance_ids": instance_ids,
                                            "state": "absent"}},
        {"name": "delete", "sshkeys.ecs.ecs_keypair": {"name": f"sec-ret-{suffix}", "state": "absent"}},
    ]


@pytest.fixture(scope="module")
def cloud_runs(emulator, ansible, tmp_path_factory, keys):
    """Check mode, apply, apply again: all at -vvv --diff, against one emulator."""
    home = tmp_path_factory.mktemp("secrets-home")
    (home / ".ssh").mkdir(mode=0o700)
    ak = home / "authorized_keys"
    user_key, other_key = keys("sec-user"), keys("sec-other")
    ak.write_text(user_key.public + "\n")
    reply = emulator.api("RunInstances", ImageId="debian_12", InstanceType="ecs.t6-c1m1.large", Amount=2)
    ids = reply["InstanceIdSets"]["InstanceIdSet"]
    emulator.wait_idle()
    plays = [{"hosts": "localhost", "gather_facts": False,
              "tasks": _cloud_tasks(home, "a", ids, user_key, other_key, str(ak))}]
    mark = emulator.mark()
    runs = {}
    for label, check in (("check", True), ("apply", False), ("again", False)):
        runs[label] = ansible.run_playbook(plays, env=emulator.env(), home=home, verbosity=3, diff=True, check=check)
        runs[f"{label}-writes"] = emulator.writes_since(mark)
        runs[f"{label}-files"] = file_state([home / ".ssh"])
        mark = emulator.mark()
    return {"runs": runs, "home": home, "keys": [user_key, other_key], "ak": ak}


def _scrub(text: str) -> str:
    """Temporary paths of this run shortened to '…/', so the page does not change from run to run."""
    return re.sub(r"/[^ ',:]*/", "…/", text)


def _private_keys(home: Path, extra) -> List[str]:
    found = [key.private for key in extra]
    for name in ("cloud_key", "local_key"):
        path = home / ".ssh" / name
        if path.exists():
            found.append(path.read_text())
    return found


def test_check_mode_writes_nothing(cloud_runs, section, request):
    run = cloud_runs["runs"]["check"]
    writes = cloud_runs["runs"]["check-writes"]
    section.add(["check mode at -vvv --diff: no API write, no key file", "11 tasks",
                 f"rc {run.rc}, {len(writes)} writes"], node=request.node)
    assert run.rc == 0, run.stdout[-3000:]
    assert writes == []
    # The state of ~/.ssh right after the check run (the fixture goes on to the real runs).
    assert [path for path in cloud_runs["runs"]["check-files"] if not path.endswith("/.ssh")] == []


@pytest.mark.parametrize("label", ["check", "apply", "again"])
def test_no_secret_in_output(label, cloud_runs, emulator, section, request):
    run = cloud_runs["runs"][label]
    secrets = emulator.secrets() + [PASSPHRASE, WRONG_SECRET] + _private_keys(cloud_runs["home"], cloud_runs["keys"])
    text = run.output + "\n" + emulator.log_text()
    leaks = find_secrets(text, secrets)
    blocks = text.count("PRIVATE KEY")
    section.add([f"{label} run, -vvv --diff: secret key, admin token, passphrase, private keys in stdout, stderr, "
                 "ANSIBLE_LOG_PATH, emulator log", f"{len(secrets)} secrets, {len(text)} characters",
                 f"{len(leaks)} found, {blocks} 'PRIVATE KEY' markers"], node=request.node)
    assert run.rc == 0, run.stdout[-3000:]
    assert "a wrong secret" in run.stdout and "SignatureDoesNotMatch" in run.output
    assert not leaks
    assert blocks == 0
    assert run.log, "ANSIBLE_LOG_PATH was not written"


def test_second_run_keeps_key_files(cloud_runs, section, request):
    """The second run finds the key pairs and leaves the saved private keys as they are; its only
    writes are the key pair the playbook deletes at its end (made again) and attach/detach."""
    run = cloud_runs["runs"]["again"]
    writes = sorted({w["action"] for w in cloud_runs["runs"]["again-writes"]})
    same = cloud_runs["runs"]["again-files"] == cloud_runs["runs"]["apply-files"]
    section.add(["second run: saved private keys untouched", "11 tasks",
                 f"key files {'unchanged' if same else 'CHANGED'}; writes: {', '.join(writes) or 'none'}"],
                node=request.node)
    assert run.rc == 0, run.stdout[-3000:]
    assert same
    assert set(writes) <= {"CreateKeyPair", "DeleteKeyPairs", "AttachKeyPair", "DetachKeyPair"}
    assert "ImportKeyPair" not in writes


def test_private_key_files_0600(cloud_runs, section, request):
    modes = {}
    for name in ("cloud_key", "local_key"):
        path = cloud_runs["home"] / ".ssh" / name
        modes[name] = oct(stat.S_IMODE(path.stat().st_mode)) if path.exists() else "missing"
    # generate: local writes the public half next to the private key, readable by all.
    public = cloud_runs["home"] / ".ssh" / "local_key.pub"
    public_mode = oct(stat.S_IMODE(public.stat().st_mode)) if public.exists() else "missing"
    leftovers = [p.name for p in (cloud_runs["home"] / ".ssh").iterdir() if p.name not in modes and p != public]
    section.add(["saved private keys are 0600, the local key's .pub 0644, no temporary file left", "2 files and a .pub",
                 ", ".join(f"{k} {v}" for k, v in modes.items()) + f", local_key.pub {public_mode}"
                 + (f"; left over: {leftovers}" if leftovers else "")],
                node=request.node)
    assert modes == {"cloud_key": "0o600", "local_key": "0o600"}
    assert public_mode == "0o644"
    public_text = public.read_text(encoding="ascii")
    assert public_text.startswith(("ssh-", "ecdsa-")) and "PRIVATE" not in public_text and public_text.count("\n") == 1
    assert not leftovers
    # The passphrase really protects the local key: ssh-keygen cannot read it without it.
    local = str(cloud_runs["home"] / ".ssh" / "local_key")
    assert subprocess.run(["ssh-keygen", "-y", "-P", "", "-f", local], capture_output=True, check=False).returncode != 0
    assert subprocess.run(["ssh-keygen", "-y", "-P", PASSPHRASE, "-f", local], capture_output=True,
                          check=False).returncode == 0


# -- symlinks planted in ~/.ssh -----------------------------------------------------------------

@pytest.fixture(scope="module")
def sym_host(ssh_hosts, keys):
    return ssh_hosts.start(keys("sec-admin", "ecdsa"), label="secrets")


TARGET = "/etc/planted-target"
TARGET_TEXT = "target-content-that-must-not-show\n"

SYMLINK_CASES = {
    "authorized_keys is a symlink (authorized_keys)":
        ("ln -s {t} /home/ecs-user/.ssh/authorized_keys", "sshkeys.ecs.authorized_keys", {"user": "ecs-user"}),
    ".ssh is a symlink (authorized_keys)":
        ("rm -rf /home/ecs-user/.ssh && mkdir -p /tmp/planted && cp {t} /tmp/planted/authorized_keys && "
         "ln -s /tmp/planted /home/ecs-user/.ssh", "sshkeys.ecs.authorized_keys", {"user": "ecs-user"}),
    "authorized_keys is a symlink (authorized_keys_info)":
        ("ln -s {t} /home/ecs-user/.ssh/authorized_keys", "sshkeys.ecs.authorized_keys_info", {"user": "ecs-user"}),
    ".ssh is a symlink (authorized_keys_info)":
        ("rm -rf /home/ecs-user/.ssh && mkdir -p /tmp/planted && cp {t} /tmp/planted/authorized_keys && "
         "ln -s /tmp/planted /home/ecs-user/.ssh", "sshkeys.ecs.authorized_keys_info", {"user": "ecs-user"}),
    "authorized_keys is a dangling symlink (authorized_keys)":
        ("ln -s /etc/planted-new /home/ecs-user/.ssh/authorized_keys", "sshkeys.ecs.authorized_keys",
         {"user": "ecs-user"}),
    "authorized_keys is a symlink (authorized_key_rotate)":
        ("ln -s {t} /home/ecs-user/.ssh/authorized_keys", "sshkeys.ecs.authorized_key_rotate",
         {"user": "ecs-user", "verify": False, "accept_lockout_risk": True}),
}


@pytest.mark.parametrize("case", sorted(SYMLINK_CASES))
def test_symlink_on_host(case, sym_host, ansible, keys, section, request):
    plant, module, args = SYMLINK_CASES[case]
    old, new = keys("sec-old"), keys("sec-new")
    sym_host.exec(f"rm -rf /home/ecs-user/.ssh /tmp/planted /etc/planted-new && "
                  f"install -d -m 0700 -o ecs-user -g ecs-user /home/ecs-user/.ssh && "
                  f"printf '%s\\n%s' '{old.public}' '{TARGET_TEXT}' > {TARGET} && chmod 0644 {TARGET} && " + plant.format(t=TARGET))
    before = sym_host.exec(f"sha256sum {TARGET}; ls -la /etc/planted-new 2>&1; find /tmp/planted -type f -exec sha256sum {{}} + 2>/dev/null; true").stdout
    task_args: Dict[str, Any] = dict(args)
    if module.endswith("authorized_keys"):
        task_args["keys"] = [new.public]
        task_args["exclusive"] = True
    elif module.endswith("rotate"):
        task_args.update(old_key=[old.public], new_key=new.public)
    run = ansible.run_task(module, task_args, hosts=sym_host.name, verbosity=3, diff=True,
                           inventory=sym_host.inventory_line(keys("sec-admin", "ecdsa")))
    after = sym_host.exec(f"sha256sum {TARGET}; ls -la /etc/planted-new 2>&1; find /tmp/planted -type f -exec sha256sum {{}} + 2>/dev/null; true").stdout
    msg = str(run.result.get("msg", ""))
    section.add([f"symlink in ~/.ssh: {case}", "1 run at -vvv --diff",
                 f"{'refused' if run.rc else 'NOT refused'}: {_scrub(msg)[:90]}; target {'unchanged' if before == after else 'CHANGED'}"],
                node=request.node)
    assert run.rc != 0, f"the task followed the link: {run.result}"
    assert "symbolic link" in msg or "symlink" in msg, msg
    assert before == after
    assert TARGET_TEXT.strip() not in run.output  # the target's content was not read out


@pytest.mark.parametrize("where", ["private key path is a symlink", ".ssh is a symlink", "dangling symlink"])
def test_private_key_path_symlink(where, emulator, ansible, tmp_path, section, request):
    home = tmp_path / "home"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "victim").write_text(TARGET_TEXT)
    home.mkdir()
    if where == ".ssh is a symlink":
        os.symlink(elsewhere, home / ".ssh")
    else:
        (home / ".ssh").mkdir(mode=0o700)
        target = elsewhere / ("victim" if where == "private key path is a symlink" else "created-through-link")
        os.symlink(target, home / ".ssh" / "id_cloud")
    path = str(home / ".ssh" / ("victim" if where == ".ssh is a symlink" else "id_cloud"))
    before = file_state([elsewhere])
    mark = emulator.mark()
    run = ansible.run_task("sshkeys.ecs.ecs_keypair", {"name": f"sec-link-{request.node.callspec.id[:8]}".replace(" ", "-"),
                                                       "private_key_path": path, "overwrite_private_key": True},
                           env=emulator.env(), verbosity=3, diff=True)
    writes = emulator.writes_since(mark)
    after = file_state([elsewhere])
    msg = str(run.result.get("msg", ""))
    section.add([f"ecs_keypair private_key_path: {where}", "1 run at -vvv --diff",
                 f"{'refused' if run.rc else 'NOT refused'}: {_scrub(msg)[:90]}; {len(writes)} API writes; "
                 f"link target {'unchanged' if before == after else 'CHANGED'}"], node=request.node)
    assert run.rc != 0, f"the key was written through the link: {json.dumps(run.result)[:500]}"
    assert "symbolic link" in msg
    assert writes == []
    assert before == after

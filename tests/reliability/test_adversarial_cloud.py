# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Adversarial: the cloud side's promises under attack, through ansible-playbook at -vvv --diff.

The ECS emulator (virtual instances) answers slowly, not at all, with 5xx, or after it committed,
at each step of a create, an import, a replacement (detach, delete, import or create, attach), a
tag change and a delete; two runs go at once for one key pair; names, ids and files are what a
careless user or an attacker would give. For every case:

- the first run converges, or fails with a clear message (no traceback) that names every change
  it made, with ``changed: true`` when it made one;
- the cloud, read independently (raw signed requests and the official SDK, never the
  collection's client), is safe: no key pair whose private key is not in private_key_path, no
  instance left without its key pair unless the failure named it, no tag lost unannounced;
- a second run converges (running what the failure said to run, where it said so) and a third
  changes nothing;
- no line of any private key shows in stdout, stderr, the log file or the result.

Each class of attack is a table in docs/reliability.md: the promise in its summary, one row per
attack with what the test saw.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from relsupport import AnsibleRunner, Emulator, make_key, promise_sections, unique
from relstate import PART_B_POOL, identity, instance_key_pairs, key_pairs_by_name, public_of_private, run_instances

KP = "sshkeys.ecs.ecs_keypair"
INFO = "sshkeys.ecs.ecs_keypair_info"
ATT = "sshkeys.ecs.ecs_keypair_attach"
FAST = {"ecs_retry_delay": 0.05}
# A request the client gave up on may still be served and commit: before reading the cloud, the
# emulator must have answered nothing for this long.
QUIET_SECONDS = 3.0

PROMISES = {
    "replace": ("A failed replacement or delete never changes instances unannounced",
                "When on_mismatch=replace with detach_instances=true fails at any step (detach, delete, import or "
                "create, attach), the old key pair is put back and attached again, or the failure names every "
                "instance left without a key pair and the task that finishes the job; a delete that fails after "
                "its detach, or part way through many names, names what it detached and deleted. changed is true "
                "and `changes` lists what was done; a re-run converges."),
    "lost_create": ("No key pair whose private key nobody holds",
                    "A CreateKeyPair answer that is lost, late or doubled never leaves a key pair without its private "
                    "key in private_key_path unannounced, a re-run never calls such a key pair unchanged, and two "
                    "runs at once never strand each other's key."),
    "names": ("Names, ids and patterns are checked as a whole",
              "A trailing newline (a YAML block scalar), a space, a NUL, text that is not UTF-8 or a huge value in "
              "a name, a pattern, an instance id or a resource group is refused with a clear message before any "
              "call; a delete by such a name never reports success."),
    "tags": ("A failed tag change loses no tag unannounced",
             "Tags are set before old ones are removed; a failure between the two calls names the tags set (or, "
             "over 20 tags together, the tags removed); http:// is refused in any letter case."),
    "key_files": ("Controller files: nothing blocks, nothing unsafe is used",
                  "A FIFO, socket, directory, device or symbolic link where public_key_path, private_key_path or "
                  "the CLI profile file is expected fails at once; a private key file that ssh would refuse "
                  "(group or others may read it, another owner) is refused before any change."),
    "key_material": ("No private key material in any output",
                     "A private key (armoured or bare base64) given in any string option of ecs_keypair, "
                     "ecs_keypair_info or ecs_keypair_attach never shows, whole or in part, in stdout at -vvv, "
                     "stderr, the log file or the result."),
}


@pytest.fixture(scope="module")
def sections(figures):
    return promise_sections(figures, PROMISES, prefix="adversarial", title="Adversarial (cloud)", first_order=200,
                            columns=["attack", "first run", "state after it", "re-runs"])


@pytest.fixture(scope="module")
def emu():
    """One emulator for the module (virtual instances); each case resets the fault rules."""
    emulator = Emulator(pool=PART_B_POOL).start()
    yield emulator
    emulator.stop()
    import shutil  # pylint: disable=import-outside-toplevel
    shutil.rmtree(emulator.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    path = tmp_path_factory.mktemp("adv-cloud")
    path.chmod(0o700)
    return path


# -- helpers ---------------------------------------------------------------------------------------

def run(ansible: Any, emu: Any, module: str, args: Dict[str, Any], **kwargs: Any) -> Any:
    kwargs.setdefault("verbosity", 3)
    kwargs.setdefault("diff", True)
    return ansible.run_task(module, args, env=emu.env(), **kwargs)


def settle(emu: Any, limit: float = 60) -> None:
    """Wait until the emulator has answered nothing for QUIET_SECONDS (late requests are done)."""
    def answered() -> int:
        return sum(1 for entry in emu.log_entries() if entry.get("action"))

    deadline = time.monotonic() + limit
    last, since = answered(), time.monotonic()
    while time.monotonic() - since < QUIET_SECONDS and time.monotonic() < deadline:
        time.sleep(0.3)
        now = answered()
        if now != last:
            last, since = now, time.monotonic()


def unclear(result: Dict[str, Any], output: str = "") -> Optional[str]:
    """None when a failed result is a clear error; otherwise what is wrong with it."""
    msg = str(result.get("msg") or "")
    if not msg:
        return "no message"
    if "Traceback" in msg or "MODULE FAILURE" in msg or "Traceback (most recent call last)" in output:
        return f"a crash: {msg[:200]}"
    return None


def first_run_problems(first: Any, changed_something: bool) -> List[str]:
    """A failed first run must be clear and say changed=true with `changes` when it changed anything."""
    if not first.failed:
        return []
    problems = []
    why = unclear(first.result, first.output)
    if why:
        problems.append(why)
    if changed_something and (first.result.get("changed") is not True or not first.result.get("changes")):
        problems.append(f"it changed something but reported changed={first.result.get('changed')} "
                        f"changes={first.result.get('changes')}")
    return problems


def key_lines(pem: str) -> List[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def public_body(secret: str) -> str:
    """The base64 of the public key of a private key ('' when it cannot be read). An OpenSSH
    private key file carries its public key blob, so a body line can be a piece of the public
    key's base64, which results rightly show: such a line proves nothing."""
    from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    data = secret.encode()
    for load in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            key = load(data, password=None)
        except (ValueError, TypeError):
            continue
        line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        return line.decode().split()[1]
    return ""


def secret_lines(secret: str) -> List[str]:
    """The body lines of a private key that are not also part of its public key."""
    public = public_body(secret)
    return [line for line in key_lines(secret) if len(line) >= 16 and line[:-1] not in public]


def leaks(run_: Any, secrets: List[str]) -> List[str]:
    """Labels of the secrets any of whose lines (or the line less its last character) show."""
    text = run_.output + json.dumps(run_.result)
    found = []
    for secret in secrets:
        if any(line in text or line[:-1] in text for line in secret_lines(secret)):
            found.append(f"a line of a {len(secret)}-character secret")
    return found


def describe(run_: Any, failed: Optional[bool] = None) -> str:
    """One run's outcome for the table (the tree callback's result has no 'failed': the exit tells)."""
    result = run_ if isinstance(run_, dict) else run_.result
    if not (run_.failed if failed is None else failed):
        return f"ok, changed={result.get('changed')}, action={result.get('action')}"
    changes = result.get("changes") or []
    return f"failed, changed={result.get('changed')}, {len(changes)} change(s) named"


def private_key_safe(path: Path, item: Optional[Dict[str, Any]]) -> List[str]:
    """A cloud-created key pair exists only with its private key in path (0600, matching)."""
    if item is None:
        return []
    if not path.exists():
        return ["a key pair exists and no private key file holds its key"]
    problems = []
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode != 0o600:
        problems.append(f"private key file mode {mode:04o}")
    if public_of_private(path) != identity(item.get("PublicKey")):
        problems.append("the private key file does not belong to the key pair that exists")
    return problems


def attach_command(msg: str) -> Optional[Tuple[str, List[str]]]:
    """(key pair name, instance ids) of the ecs_keypair_attach task a failure says to run."""
    found = re.search(r"ecs_keypair_attach with key_pair_name=(\S+) and instance_ids=\[([^\]]*)\]", msg)
    if not found:
        return None
    return found.group(1), [part.strip() for part in found.group(2).split(",") if part.strip()]


# -- 1. replacement --------------------------------------------------------------------------------

def _retries(n: int) -> Dict[str, Any]:
    return dict(FAST, ecs_retries=n)


REPLACE_CASES: Dict[str, Dict[str, Any]] = {
    "503 on every try of the new ImportKeyPair; the put-back works": dict(
        rules=[{"action": "ImportKeyPair", "kind": "unavailable", "count": 3}], options=_retries(2),
        mode="import", expect="put back"),
    "503 on every ImportKeyPair, the put-back too": dict(
        rules=[{"action": "ImportKeyPair", "kind": "unavailable"}], options=_retries(1), mode="import",
        expect="named"),
    "503 on DeleteKeyPairs after the detach": dict(
        rules=[{"action": "DeleteKeyPairs", "kind": "unavailable"}], options=_retries(1), mode="import",
        expect="put back"),
    "the second DetachKeyPair batch (of 60 instances) fails": dict(
        rules=[{"action": "DetachKeyPair", "kind": "latency", "latency_ms": 0, "count": 1},
               {"action": "DetachKeyPair", "kind": "unavailable"}],
        options=_retries(1), mode="import", expect="put back", instances=60),
    "503 on every AttachKeyPair of the new key pair": dict(
        rules=[{"action": "AttachKeyPair", "kind": "unavailable"}], options=_retries(1), mode="import",
        expect="named"),
    "ImportKeyPair answers 500 after it committed, every time": dict(
        rules=[{"action": "ImportKeyPair", "kind": "internal", "phase": "after"}], options=_retries(2),
        mode="import", expect="converged"),
    "ImportKeyPair slower than ecs_timeout, every time": dict(
        rules=[{"action": "ImportKeyPair", "kind": "latency", "latency_ms": 2500}],
        options=dict(_retries(2), ecs_timeout=1), mode="import", expect="converged"),
    "CreateKeyPair refused (403) when a cloud key pair without its file is replaced": dict(
        rules=[{"action": "CreateKeyPair", "kind": "internal", "status": 403, "code": "QuotaExceed.KeyPair"}],
        options=_retries(1), mode="cloud", expect="put back"),
}


class ReplaceCase:
    """A key pair (old key) held by instances, replaced under a fault."""

    def __init__(self, emu: Any, work: Path, spec: Dict[str, Any]) -> None:
        self.emu, self.spec = emu, spec
        self.name = unique("rp")
        self.dir = work / self.name
        self.dir.mkdir(mode=0o700)
        self.old = make_key(self.dir, "old", "rsa", bits=2048)
        self.new = make_key(self.dir, "new", "ed25519")
        self.ids = run_instances(emu, spec.get("instances", 2))
        emu.api("ImportKeyPair", KeyPairName=self.name, PublicKeyBody=self.old.public)
        for start in range(0, len(self.ids), 50):
            emu.api("AttachKeyPair", KeyPairName=self.name, InstanceIds=self.ids[start:start + 50])
        self.path = self.dir / "cloud.pem"

    def args(self) -> Dict[str, Any]:
        args = dict(self.spec["options"], name=self.name, on_mismatch="replace", detach_instances=True)
        if self.spec["mode"] == "cloud":
            args["private_key_path"] = str(self.path)
        else:
            args["public_key"] = self.new.public
        return args

    def state(self) -> Tuple[Optional[str], Dict[str, str]]:
        item = key_pairs_by_name(self.emu).get(self.name)
        return (identity(item.get("PublicKey")) if item else None), instance_key_pairs(self.emu, self.ids)

    def wanted(self) -> Optional[str]:
        if self.spec["mode"] == "cloud":
            return public_of_private(self.path) if self.path.exists() else None
        return identity(self.new.public)


def judge_replace(case: ReplaceCase, first: Any) -> List[str]:
    """What is unsafe or unannounced after the first run."""
    key, held = case.state()
    holders = sum(1 for value in held.values() if value == case.name)
    msg = str(first.result.get("msg") or "")
    expect = case.spec["expect"]
    problems = first_run_problems(first, changed_something=True)
    if expect == "converged":
        if first.failed:
            return problems + [f"did not converge: {msg[:300]}"]
        if key != case.wanted() or holders != len(case.ids):
            problems.append("reported success without the new key pair on every instance")
        return problems
    if not first.failed:
        return problems + ["the run succeeded under a fault that must stop it"]
    if expect == "put back":
        if key != identity(case.old.public) or holders != len(case.ids):
            problems.append(f"the old key pair is not back on every instance ({holders} of {len(case.ids)})")
        if case.path.exists():
            problems.append("a private key file was written for a key pair that is not there")
        return problems
    named = attach_command(msg)
    without = [i for i, value in held.items() if value != case.name]
    if without and (named is None or sorted(named[1]) != sorted(without)):
        problems.append(f"{len(without)} instance(s) without the key pair, not all named with the task to run")
    return problems


@pytest.mark.parametrize("attack", list(REPLACE_CASES))
def test_replacement_under_faults(emu, ansible, work, sections, request, attack):
    spec = REPLACE_CASES[attack]
    case = ReplaceCase(emu, work, spec)
    emu.set_faults(spec["rules"])
    try:
        first = run(ansible, emu, KP, case.args())
    finally:
        emu.clear_faults()
    settle(emu)
    problems = judge_replace(case, first)
    key, held = case.state()
    state = (f"key pair {'absent' if key is None else 'old' if key == identity(case.old.public) else 'new'}, "
             f"{sum(1 for v in held.values() if v == case.name)} of {len(case.ids)} instances hold it")
    second = run(ansible, emu, KP, case.args())
    named = attach_command(str(first.result.get("msg") or ""))
    if named is not None:
        # What the failure said to run, exactly.
        finish = run(ansible, emu, ATT, dict(FAST, key_pair_name=named[0], instance_ids=named[1]))
        if finish.failed:
            problems.append(f"the task the failure named failed: {finish.msg[:200]}")
    third = run(ansible, emu, KP, case.args())
    key, held = case.state()
    if second.failed or key != case.wanted() or any(v != case.name for v in held.values()):
        problems.append(f"the re-run did not converge: {second.msg[:200] or state}")
    if third.failed or third.result.get("changed"):
        problems.append("the third run changed something or failed")
    problems += [f"leak: {leak}" for r in (first, second, third) for leak in leaks(r, [case.old.private])]
    sections["replace"].add([attack, describe(first), state,
                             "converged" + (" (after the named attach task)" if named else "")
                             if not problems else "; ".join(problems)[:300]], node=request.node)
    assert not problems, "\n".join(problems)


DELETE_CASES: Dict[str, Dict[str, Any]] = {
    "503 on every DeleteKeyPairs after the detach": dict(
        rules=[{"action": "DeleteKeyPairs", "kind": "unavailable"}], instances=2, names=1, fails=True),
    "the second DetachKeyPair batch (of 60 instances) fails": dict(
        rules=[{"action": "DetachKeyPair", "kind": "latency", "latency_ms": 0, "count": 1},
               {"action": "DetachKeyPair", "kind": "unavailable"}], instances=60, names=1, fails=True),
    "DeleteKeyPairs answers 500 after it committed, every time": dict(
        rules=[{"action": "DeleteKeyPairs", "kind": "internal", "phase": "after"}], instances=2, names=1,
        fails=False),
    "DeleteKeyPairs slower than ecs_timeout, every time": dict(
        rules=[{"action": "DeleteKeyPairs", "kind": "latency", "latency_ms": 2500}], instances=2, names=1,
        fails=None, options={"ecs_timeout": 1}),
    "150 names, the second DeleteKeyPairs (of 100 names) answers 503 every time": dict(
        rules=[{"action": "DeleteKeyPairs", "kind": "latency", "latency_ms": 0, "count": 1},
               {"action": "DeleteKeyPairs", "kind": "unavailable"}], instances=0, names=150, fails=True),
}


@pytest.mark.parametrize("attack", list(DELETE_CASES))
def test_delete_under_faults(emu, ansible, work, sections, request, attack):
    spec = DELETE_CASES[attack]
    key = make_key(work, unique("dk"))
    names = [unique("dl") for _number in range(spec["names"])]
    for name in names:
        emu.api("ImportKeyPair", KeyPairName=name, PublicKeyBody=key.public)
    ids = run_instances(emu, spec["instances"]) if spec["instances"] else []
    for start in range(0, len(ids), 50):
        emu.api("AttachKeyPair", KeyPairName=names[0], InstanceIds=ids[start:start + 50])
    args = dict(FAST, ecs_retries=1, state="absent", detach_instances=True, **spec.get("options", {}))
    args.update({"name": names[0]} if len(names) == 1 else {"names": names})
    emu.set_faults(spec["rules"])
    try:
        first = run(ansible, emu, KP, args)
    finally:
        emu.clear_faults()
    settle(emu)
    left = [name for name in names if name in key_pairs_by_name(emu)]
    held = sum(1 for value in instance_key_pairs(emu, ids).values() if value) if ids else 0
    changed_something = len(left) < len(names) or held < len(ids)
    problems = first_run_problems(first, changed_something=first.failed and changed_something)
    if spec["fails"] is not None and first.failed is not spec["fails"]:
        problems.append(f"expected the first run to {'fail' if spec['fails'] else 'succeed'}: {first.msg[:200]}")
    if first.failed and changed_something:
        named = " ".join(first.result.get("changes") or [])
        detached = [i for i, value in instance_key_pairs(emu, ids).items() if not value] if ids else []
        gone = [name for name in names if name not in left]
        unnamed = [i for i in detached if i not in named] + [n for n in gone if n not in named]
        if unnamed:
            problems.append(f"{len(unnamed)} change(s) not named: {unnamed[:5]}")
    state = f"{len(left)} of {len(names)} key pair(s) left, {held} of {len(ids)} instances hold one"
    second = run(ansible, emu, KP, args)
    third = run(ansible, emu, KP, args)
    if second.failed or any(name in key_pairs_by_name(emu) for name in names):
        problems.append(f"the re-run did not converge: {second.msg[:200]}")
    if ids and any(instance_key_pairs(emu, ids).values()):
        problems.append("instances still hold the key pair after the re-run")
    if third.failed or third.result.get("changed"):
        problems.append("the third run changed something or failed")
    sections["replace"].add([f"delete: {attack}", describe(first), state,
                             "converged, then unchanged" if not problems else "; ".join(problems)[:300]],
                            node=request.node)
    assert not problems, "\n".join(problems)


# -- 2. lost and late CreateKeyPair answers ---------------------------------------------------------

LOST_CASES: Dict[str, Dict[str, Any]] = {
    "CreateKeyPair slower than ecs_timeout on every try": dict(
        rules=[{"action": "CreateKeyPair", "kind": "latency", "latency_ms": 2500}],
        options=dict(FAST, ecs_timeout=1, ecs_retries=1)),
    "CreateKeyPair slower than ecs_timeout once": dict(
        rules=[{"action": "CreateKeyPair", "kind": "latency", "latency_ms": 2500, "count": 1}],
        options=dict(FAST, ecs_timeout=1, ecs_retries=2)),
    "CreateKeyPair answers 500 after it committed, every try": dict(
        rules=[{"action": "CreateKeyPair", "kind": "internal", "phase": "after"}], options=dict(FAST, ecs_retries=2)),
    "CreateKeyPair answers 503 after it committed, once (the client retries it)": dict(
        rules=[{"action": "CreateKeyPair", "kind": "unavailable", "phase": "after", "count": 1}],
        options=dict(FAST, ecs_retries=2)),
    "the connection drops after the commit and every DeleteKeyPairs fails": dict(
        rules=[{"action": "CreateKeyPair", "kind": "drop", "phase": "after", "count": 1},
               {"action": "DeleteKeyPairs", "kind": "unavailable"}], options=dict(FAST, ecs_retries=1)),
    "the connection drops after the commit, and every read fails after it": dict(
        rules=[{"action": "DescribeKeyPairs", "kind": "latency", "latency_ms": 0, "count": 1},
               {"action": "CreateKeyPair", "kind": "drop", "phase": "after", "count": 1},
               {"action": "DescribeKeyPairs", "kind": "unavailable"}], options=dict(FAST, ecs_retries=1)),
}


def judge_created(emu: Any, name: str, path: Path, first: Any) -> Tuple[str, List[str]]:
    """The cloud after a create under a fault: (state, problems)."""
    item = key_pairs_by_name(emu).get(name)
    marker = path.parent / f".{path.name}.pending"
    problems = private_key_safe(path, item)
    state = ("no key pair" if item is None else "key pair with its private key saved" if not problems
             else "key pair WITHOUT its private key")
    if problems and marker.exists() and "pending" in str(first.result.get("msg") or ""):
        problems = []  # the failure names the orphan and the marker the next run acts on
        state += ", named in the failure, marker left for the next run"
    elif marker.exists():
        state += ", marker left"
    leftovers = sorted(p.name for p in path.parent.iterdir() if p.name not in (path.name, marker.name))
    if leftovers:
        problems.append(f"files left next to the key: {leftovers}")
    return state, problems


@pytest.mark.parametrize("attack", list(LOST_CASES))
def test_create_with_lost_or_late_answers(emu, ansible, work, sections, request, attack):
    spec = LOST_CASES[attack]
    name = unique("lc")
    directory = work / name
    directory.mkdir(mode=0o700)
    path = directory / "id.pem"
    args = dict(spec["options"], name=name, private_key_path=str(path))
    emu.set_faults(spec["rules"])
    try:
        first = run(ansible, emu, KP, args)
    finally:
        emu.clear_faults()
    settle(emu)
    state, problems = judge_created(emu, name, path, first)
    # A failed run that leaves a key pair with its private key saved made a change: it must say so.
    made = path.exists() and name in key_pairs_by_name(emu)
    problems += first_run_problems(first, changed_something=made)
    if first.failed and first.result.get("changed") and not first.result.get("changes"):
        problems.append("a failed create reported changed=true without naming the change")
    problems += _rerun_created(ansible, emu, args, name, path, first)
    sections["lost_create"].add([attack, describe(first), state,
                                 "converged, then unchanged" if not problems else "; ".join(problems)[:300]],
                                node=request.node)
    assert not problems, "\n".join(problems)


def _rerun_created(ansible: Any, emu: Any, args: Dict[str, Any], name: str, path: Path, first: Any) -> List[str]:
    problems = []
    second = run(ansible, emu, KP, args)
    item = key_pairs_by_name(emu).get(name)
    if second.failed or item is None or private_key_safe(path, item):
        problems.append(f"the re-run did not converge: {second.msg[:200]}")
    third = run(ansible, emu, KP, args)
    if third.failed or third.result.get("changed"):
        problems.append("the third run changed something or failed")
    if sorted(p.name for p in path.parent.iterdir()) != [path.name]:
        problems.append(f"files left: {sorted(p.name for p in path.parent.iterdir())}")
    secrets = [path.read_text()] if path.exists() else []
    problems += [f"leak: {leak}" for r in (first, second, third) for leak in leaks(r, secrets)]
    return problems


def test_private_key_file_removed_after_the_create(emu, ansible, work, sections, request):
    """The re-run of the issue: the key pair exists, private_key_path does not: never 'unchanged'."""
    name = unique("rm")
    directory = work / name
    directory.mkdir(mode=0o700)
    path = directory / "id.pem"
    args = dict(FAST, name=name, private_key_path=str(path))
    created = run(ansible, emu, KP, args)
    assert not created.failed, created.msg
    path.unlink()
    first = run(ansible, emu, KP, args)
    problems = first_run_problems(first, changed_something=False)
    if not first.failed or "cannot be fetched again" not in first.msg:
        problems.append(f"a key pair without its private key was not reported: {describe(first)}")
    problems += _rerun_created(ansible, emu, dict(args, on_mismatch="replace"), name, path, first)
    sections["lost_create"].add(["private_key_path removed after the create (no marker)", describe(first),
                                 "key pair WITHOUT its private key, named in the failure",
                                 "on_mismatch=replace converged, then unchanged" if not problems
                                 else "; ".join(problems)[:300]], node=request.node)
    assert not problems, "\n".join(problems)


def _at_once(base: Path, emu: Any, runs: List[Dict[str, Any]]) -> List[Any]:
    """Start one ansible-playbook per args at the same moment; their Runs in order. Each has a
    runner of its own (a runner numbers its work directories, which threads must not share)."""
    results: List[Any] = [None] * len(runs)
    runners = [AnsibleRunner(base / f"runner-{i}") for i in range(len(runs))]

    def one(index: int) -> None:
        results[index] = run(runners[index], emu, KP, runs[index])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(runs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    return results


CONCURRENT_CASES = {
    "two runs at once, one private_key_path, the first CreateKeyPair answers 500 after committing": dict(
        rules=[{"action": "CreateKeyPair", "kind": "internal", "phase": "after", "count": 1, "latency_ms": 1500}],
        same_path=True),
    "two runs at once, one private_key_path, CreateKeyPair slower than ecs_timeout once": dict(
        rules=[{"action": "CreateKeyPair", "kind": "latency", "latency_ms": 2500, "count": 1}],
        same_path=True, options={"ecs_timeout": 1}),
    "two runs at once, two private_key_paths, no fault": dict(rules=[], same_path=False),
}


@pytest.mark.parametrize("attack", list(CONCURRENT_CASES))
def test_two_runs_at_once(emu, ansible, work, sections, request, attack):
    spec = CONCURRENT_CASES[attack]
    name = unique("cc")
    directory = work / name
    directory.mkdir(mode=0o700)
    paths = [directory / "id.pem", directory / ("id.pem" if spec["same_path"] else "other.pem")]
    runs = [dict(FAST, ecs_retries=2, name=name, private_key_path=str(p), **spec.get("options", {})) for p in paths]
    emu.clear_faults()
    if spec["rules"]:
        emu.set_faults(spec["rules"])
    try:
        results = _at_once(directory / "runs", emu, runs)
    finally:
        emu.clear_faults()
    settle(emu)
    item = key_pairs_by_name(emu).get(name)
    problems: List[str] = []
    for result in results:
        problems += first_run_problems(result, changed_something=False)
    holders = [p for p in set(paths) if p.exists() and public_of_private(p) == identity((item or {}).get("PublicKey"))]
    strays = [p.name for p in set(paths) if p.exists() and p not in holders]
    if item is not None and not holders:
        problems.append("the key pair that exists belongs to no saved private key")
    if strays:
        problems.append(f"saved private keys that match no key pair: {strays}")
    if spec["same_path"] and sum(1 for r in results if not r.failed) < 1:
        problems.append("neither run succeeded")
    state = ("no key pair" if item is None else f"key pair matching {', '.join(p.name for p in holders)}")
    # The run whose file holds the key pair's private key runs again (with two files, the other
    # one's key pair is not its own: it fails, rightly, saying the private key cannot be fetched).
    winner = next((args for args, path in zip(runs, paths) if path in holders), runs[0])
    for again in (run(ansible, emu, KP, winner), run(ansible, emu, KP, winner)):
        if again.failed or again.result.get("changed") or private_key_safe(Path(winner["private_key_path"]),
                                                                           key_pairs_by_name(emu).get(name)):
            problems.append(f"a re-run did not find it unchanged: {again.msg[:200]}")
    sections["lost_create"].add([attack, "; ".join(describe(r) for r in results), state,
                                 "converged" if not problems else "; ".join(problems)[:300]], node=request.node)
    assert not problems, "\n".join(problems)


# -- 7. names, ids and patterns ---------------------------------------------------------------------

# Bytes that are not UTF-8 cannot be written into a playbook at all (its YAML refuses them): they
# come from a file, through a lookup, as a careless template would bring them.
NOT_UTF8 = "(not UTF-8)"
BAD_TEXT = {
    "trailing newline (YAML |)": "web\n",
    "leading space": " web",
    "trailing space": "web ",
    "NUL inside": "we\x00b",
    "bytes that are not UTF-8 (from a file)": NOT_UTF8,
    "huge (100,000 characters)": "w" * 100_000,
}


def _name_tasks(existing: str, bad_file: Path) -> Dict[str, Callable[[str], Tuple[str, Dict[str, Any]]]]:
    """Each place a name or id goes: a function of the bad text (appended to existing) -> task."""

    def _on(base: str, text: str) -> str:
        """base with the bad part of text put where text has it (around 'web')."""
        if text == NOT_UTF8:
            return base + "{{ lookup('ansible.builtin.file', '%s') }}" % bad_file
        if "web" in text:
            return text.replace("web", base)
        return text.replace("we", base[:2], 1).replace("b", base[2:], 1)

    return {
        "ecs_keypair name, state=present": lambda t: (KP, {"name": _on(existing, t), "return_private_key": True}),
        "ecs_keypair name, state=absent": lambda t: (KP, {"name": _on(existing, t), "state": "absent",
                                                          "detach_instances": True}),
        "ecs_keypair names, state=absent": lambda t: (KP, {"names": [_on(existing, t)], "state": "absent"}),
        "ecs_keypair resource_group_id": lambda t: (KP, {"name": existing, "return_private_key": True,
                                                         "resource_group_id": _on("rg-abc", t)}),
        "ecs_keypair_info names": lambda t: (INFO, {"names": [_on(existing, t)]}),
        "ecs_keypair_info pattern": lambda t: (INFO, {"names": [_on(existing + "*", t)]}),
        "ecs_keypair_attach key_pair_name": lambda t: (ATT, {"key_pair_name": _on(existing, t),
                                                             "instance_ids": ["i-abc123"], "state": "absent"}),
        "ecs_keypair_attach instance id": lambda t: (ATT, {"key_pair_name": existing,
                                                           "instance_ids": [_on("i-abc123", t)], "state": "absent"}),
    }


def test_bad_names_ids_and_patterns(emu, ansible, work, sections, request):
    """Every bad value in every place, one task each (all in one playbook, errors ignored)."""
    existing = unique("nm")
    ids = run_instances(emu, 1)
    emu.api("ImportKeyPair", KeyPairName=existing, PublicKeyBody=make_key(work, existing).public)
    emu.api("AttachKeyPair", KeyPairName=existing, InstanceIds=ids)
    bad_file = work / f"{existing}.bin"
    bad_file.write_bytes(b"\xff\xfe-\x80")
    tasks, labels = [], {}
    for place, build in _name_tasks(existing, bad_file).items():
        for what, text in BAD_TEXT.items():
            module, args = build(text)
            label = f"{place}: {what}"
            tasks.append({"name": f"case {len(tasks)}", module: dict(FAST, **args), "ignore_errors": True})
            labels[f"case {len(tasks) - 1}"] = label
    mark = emu.mark()
    result = ansible.run_playbook([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], env=emu.env(),
                                  verbosity=1, timeout=900)
    writes = emu.writes_since(mark)
    intact = existing in key_pairs_by_name(emu) and instance_key_pairs(emu, ids)[ids[0]] == existing
    records = {record["task"]: record for record in result.results}
    failures = []
    for task_name, label in labels.items():
        record = records.get(task_name)
        problems = _judge_refusal(record, result.task_output(task_name))
        failures += [f"{label}: {p}" for p in problems]
        sections["names"].add([label, "refused" if not problems else "; ".join(problems)[:200],
                               "no API write, the key pair and its instance untouched" if not writes and intact
                               else f"{len(writes)} writes", "-"], node=request.node)
    if writes:
        failures.append(f"{len(writes)} API writes: {[w.get('action') for w in writes]}")
    if not intact:
        failures.append("the existing key pair or its attachment changed")
    assert not failures, "\n".join(failures)


def _judge_refusal(record: Optional[Dict[str, Any]], output: str) -> List[str]:
    if record is None:
        return ["no result (the task did not run)"]
    res = record["result"]
    if record["status"] != "failed":
        return [f"not refused: {describe(res, failed=False)}"]
    why = unclear(res, output)
    if why:
        return [why]
    if res.get("changed"):
        return ["a refusal reported changed=true"]
    if len(str(res.get("msg"))) > 2000:
        return ["the message quotes a huge value"]
    return []


# -- 9. tags ----------------------------------------------------------------------------------------

TWENTY_OLD = {f"old{i}": "v" for i in range(20)}
TWENTY_NEW = {f"new{i}": "v" for i in range(20)}
TAG_CASES: Dict[str, Dict[str, Any]] = {
    "503 on every TagResources": dict(before={"a": "1", "b": "2"}, wanted={"a": "1", "c": "3"},
                                      rules=[{"action": "TagResources", "kind": "unavailable"}], changed=False),
    "503 on every UntagResources (after the tags were set)": dict(
        before={"a": "1", "b": "2"}, wanted={"a": "1", "c": "3"},
        rules=[{"action": "UntagResources", "kind": "unavailable"}], changed=True),
    "20 tags replaced by 20 others, 503 on every TagResources": dict(
        before=TWENTY_OLD, wanted=TWENTY_NEW, rules=[{"action": "TagResources", "kind": "unavailable"}],
        changed=True),
    "TagResources answers 500 after it committed": dict(
        before={"a": "1"}, wanted={"a": "2", "b": "3"},
        rules=[{"action": "TagResources", "kind": "internal", "phase": "after", "count": 1}], changed=None),
    "a tag value the service refuses (HTTP:// in capitals)": dict(
        before={"a": "1"}, wanted={"a": "1", "site": "HTTP://example.org"}, rules=[], changed=False, refused=True),
}


def tags_now(emu: Any, name: str) -> Dict[str, str]:
    item = key_pairs_by_name(emu).get(name) or {}
    return {tag["TagKey"]: tag["TagValue"] for tag in (item.get("Tags") or {}).get("Tag") or []}


@pytest.mark.parametrize("attack", list(TAG_CASES))
def test_tags_under_faults(emu, ansible, work, sections, request, attack):
    spec = TAG_CASES[attack]
    name = unique("tg")
    key = make_key(work, name)
    params = {f"Tag.{i}.Key": k for i, k in enumerate(spec["before"], 1)}
    params.update({f"Tag.{i}.Value": v for i, v in enumerate(spec["before"].values(), 1)})
    emu.api("ImportKeyPair", KeyPairName=name, PublicKeyBody=key.public, **params)
    args = dict(FAST, ecs_retries=1, name=name, public_key=key.public, tags=spec["wanted"])
    emu.clear_faults()
    if spec["rules"]:
        emu.set_faults(spec["rules"])
    mark = emu.mark()
    try:
        first = run(ansible, emu, KP, args)
    finally:
        emu.clear_faults()
    after = tags_now(emu, name)
    problems = first_run_problems(first, changed_something=bool(spec["changed"]))
    lost = sorted(k for k in spec["before"] if k not in after)
    if first.failed:
        named = " ".join(first.result.get("changes") or [])
        unnamed = [k for k in lost if k not in named]
        if unnamed:
            problems.append(f"tags lost without being named: {unnamed}")
        if spec["changed"] is False and first.result.get("changed"):
            problems.append("changed=true although nothing changed")
    if spec.get("refused"):
        if not first.failed or emu.writes_since(mark) or after != spec["before"]:
            problems.append("the refused value was not refused before any call")
        sections["tags"].add([attack, describe(first), f"tags {'unchanged' if after == spec['before'] else 'CHANGED'}",
                              "-" if not problems else "; ".join(problems)[:300]], node=request.node)
        assert not problems, "\n".join(problems)
        return
    second = run(ansible, emu, KP, args)
    third = run(ansible, emu, KP, args)
    if second.failed or tags_now(emu, name) != spec["wanted"]:
        problems.append(f"the re-run did not converge: {second.msg[:200]}")
    if third.failed or third.result.get("changed"):
        problems.append("the third run changed something or failed")
    removed = f"{len(lost)} old tag(s) removed, named in `changes`" if lost else "no old tag removed"
    state = f"{len(after)} tags; {removed}"
    sections["tags"].add([attack, describe(first), state,
                          "converged, then unchanged" if not problems else "; ".join(problems)[:300]],
                         node=request.node)
    assert not problems, "\n".join(problems)


# -- 10, 11. controller files ---------------------------------------------------------------------

def _plant(path: Path, kind: str) -> Optional[socket.socket]:
    if kind == "a FIFO":
        os.mkfifo(path, 0o600)
    elif kind == "a socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        return sock
    elif kind == "a directory":
        path.mkdir()
    elif kind == "a device (link to /dev/zero)":
        os.symlink("/dev/zero", path)
    elif kind == "a symbolic link to a FIFO":
        os.mkfifo(str(path) + ".real", 0o600)
        os.symlink(str(path) + ".real", path)
    return None


FILE_KINDS = ["a FIFO", "a socket", "a directory", "a device (link to /dev/zero)", "a symbolic link to a FIFO"]
FILE_PLACES = {
    "public_key_path": lambda name, path: {"name": name, "public_key_path": str(path)},
    "private_key_path (generate=cloud)": lambda name, path: {"name": name, "private_key_path": str(path)},
    "private_key_path (generate=local)": lambda name, path: {"name": name, "generate": "local",
                                                             "private_key_path": str(path)},
}
UNSAFE_MODES = [0o644, 0o640, 0o604, 0o666]


def test_special_files_and_unsafe_key_files(emu, ansible, work, sections, request):
    """Every special file in every place, and every unsafe mode: one playbook, one task each."""
    base = work / unique("kf")
    base.mkdir(mode=0o700)
    tasks, labels, sockets, planted = [], {}, [], {}
    for place, build in FILE_PLACES.items():
        for kind in FILE_KINDS:
            path = base / f"p{len(tasks)}"
            sock = _plant(path, kind)
            if sock:
                sockets.append(sock)
            planted[f"case {len(tasks)}"] = (path, kind)
            labels[f"case {len(tasks)}"] = f"{place}: {kind}"
            tasks.append({"name": f"case {len(tasks)}", KP: dict(FAST, **build(unique("kf"), path)),
                          "ignore_errors": True})
    secret_keys = []
    for generate in ("local", "cloud"):
        for mode in UNSAFE_MODES:
            name = unique("um")
            key = make_key(base, f"k{len(tasks)}", "ed25519")
            key.path.chmod(mode)
            secret_keys.append(key.private)
            if generate == "cloud":
                emu.api("ImportKeyPair", KeyPairName=name, PublicKeyBody=key.public)
            labels[f"case {len(tasks)}"] = f"private key file mode {mode:04o} (generate={generate})"
            tasks.append({"name": f"case {len(tasks)}", KP: dict(FAST, name=name, generate=generate,
                                                                 private_key_path=str(key.path)),
                          "ignore_errors": True})
    mark = emu.mark()
    try:
        result = ansible.run_playbook([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                                      env=emu.env(), verbosity=3, timeout=600)
    finally:
        for sock in sockets:
            sock.close()
    writes = emu.writes_since(mark)
    records = {record["task"]: record for record in result.results}
    failures = []
    for task_name, label in labels.items():
        problems = _judge_refusal(records.get(task_name), result.task_output(task_name))
        if task_name in planted and planted[task_name][1] == "a FIFO" and \
                not stat.S_ISFIFO(os.lstat(planted[task_name][0]).st_mode):
            problems.append("the FIFO was replaced")
        message = str((records.get(task_name) or {}).get("result", {}).get("msg"))
        if "mode" in label and "UNPROTECTED PRIVATE KEY FILE" not in message:
            problems.append("the message does not say why ssh would refuse the key")
        failures += [f"{label}: {p}" for p in problems]
        sections["key_files"].add([label, "refused at once" if not problems else "; ".join(problems)[:200],
                                   "no API write" if not writes else f"{len(writes)} API writes", "-"],
                                  node=request.node)
    if result.rc == -9:
        failures.append("the playbook hung")
    if writes:
        failures.append(f"{len(writes)} API writes: {[w.get('action') for w in writes]}")
    failures += [f"leak: {leak}" for leak in leaks(result, secret_keys)]
    assert not failures, "\n".join(failures)


def test_fifo_as_the_cli_profile_file(emu, ansible, work, sections, request):
    home = work / unique("home")
    (home / ".aliyun").mkdir(parents=True)
    os.mkfifo(home / ".aliyun" / "config.json", 0o600)
    env = {"ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "false", "ALIBABA_CLOUD_ECS_ENDPOINT": emu.endpoint,
           "ALIBABA_CLOUD_REGION_ID": emu.region}
    first = ansible.run_task(INFO, dict(FAST), env=env, home=home, verbosity=3, timeout=120)
    problems = [] if first.failed and "not a regular file" in first.msg else [f"not refused: {first.msg[:200]}"]
    if first.rc == -9:
        problems.append("the run hung")
    sections["key_files"].add(["the CLI profile file (~/.aliyun/config.json): a FIFO", describe(first),
                               "nothing read, nothing sent", "-" if not problems else "; ".join(problems)],
                              node=request.node)
    assert not problems, "\n".join(problems)


# -- 6. private key material in every string option ---------------------------------------------

def _bare_base64(pem: str) -> str:
    """The body of a PKCS#8 PEM without its armour: the bare base64 of the key's DER."""
    return "\n".join(key_lines(pem))


SECRET_PLACES: Dict[str, Tuple[str, Callable[[str, str], Dict[str, Any]]]] = {
    "ecs_keypair name": (KP, lambda s, n: {"name": s, "return_private_key": True}),
    "ecs_keypair names[]": (KP, lambda s, n: {"names": [n, s], "state": "absent"}),
    "ecs_keypair public_key": (KP, lambda s, n: {"name": n, "public_key": s}),
    "ecs_keypair public_key_path": (KP, lambda s, n: {"name": n, "public_key_path": s}),
    "ecs_keypair private_key_path": (KP, lambda s, n: {"name": n, "private_key_path": s}),
    "ecs_keypair passphrase": (KP, lambda s, n: {"name": n, "generate": "local", "passphrase": s,
                                                 "private_key_path": "/nonexistent-dir/k"}),
    "ecs_keypair resource_group_id": (KP, lambda s, n: {"name": n, "return_private_key": True,
                                                        "resource_group_id": s}),
    "ecs_keypair tags (value)": (KP, lambda s, n: {"name": n, "return_private_key": True, "tags": {"t": s}}),
    "ecs_keypair tags (key)": (KP, lambda s, n: {"name": n, "return_private_key": True, "tags": {s: "v"}}),
    "ecs_keypair generate (a choice)": (KP, lambda s, n: {"name": n, "generate": s}),
    "ecs_keypair key_type (a choice)": (KP, lambda s, n: {"name": n, "key_type": s}),
    "ecs_keypair on_mismatch (a choice)": (KP, lambda s, n: {"name": n, "on_mismatch": s}),
    "ecs_keypair state (a choice)": (KP, lambda s, n: {"name": n, "state": s}),
    "ecs_keypair alicloud_region": (KP, lambda s, n: {"name": n, "return_private_key": True, "alicloud_region": s}),
    "ecs_keypair alicloud_access_key": (KP, lambda s, n: {"name": n, "return_private_key": True,
                                                          "alicloud_access_key": s}),
    "ecs_keypair alicloud_security_token": (KP, lambda s, n: {"name": n, "return_private_key": True,
                                                              "alicloud_security_token": s}),
    "ecs_keypair_info alicloud_profile (a named profile is looked for first)": (INFO, lambda s, n: {"alicloud_profile": s}),
    "ecs_keypair ecs_endpoint": (KP, lambda s, n: {"name": n, "return_private_key": True, "ecs_endpoint": s}),
    "ecs_keypair ecs_signature_version (a choice)": (KP, lambda s, n: {"name": n, "ecs_signature_version": s}),
    "ecs_keypair_info names[]": (INFO, lambda s, n: {"names": [s]}),
    "ecs_keypair_info fingerprint": (INFO, lambda s, n: {"fingerprint": s}),
    "ecs_keypair_info resource_group_id": (INFO, lambda s, n: {"resource_group_id": s}),
    "ecs_keypair_info tags (value)": (INFO, lambda s, n: {"tags": {"t": s}}),
    "ecs_keypair_attach key_pair_name": (ATT, lambda s, n: {"key_pair_name": s, "instance_ids": ["i-abc123"]}),
    "ecs_keypair_attach instance_ids[]": (ATT, lambda s, n: {"key_pair_name": n, "instance_ids": [s]}),
    "ecs_keypair_attach state (a choice)": (ATT, lambda s, n: {"key_pair_name": n, "instance_ids": ["i-abc123"],
                                                               "state": s}),
}


def test_private_key_material_in_every_string_option(emu, ansible, work, sections, request):
    """Armoured and bare keys in every string option; -vvv --diff; one task each."""
    keys = {"armoured (OpenSSH)": make_key(work, unique("sk"), "ed25519").private,
            "armoured (PEM, RSA)": make_key(work, unique("sk"), "rsa", bits=2048).private}
    pkcs8 = _pkcs8(work)
    keys["bare base64 (PKCS#8 body)"] = _bare_base64(pkcs8)
    tasks, labels = [], {}
    for place, (module, build) in SECRET_PLACES.items():
        for form, secret in keys.items():
            args = {k: v for k, v in build(secret, unique("km")).items() if v is not None}
            labels[f"case {len(tasks)}"] = (f"{place}: {form}", secret)
            tasks.append({"name": f"case {len(tasks)}", module: dict(FAST, **args), "ignore_errors": True})
    mark = emu.mark()
    result = ansible.run_playbook([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                                  env=emu.env(), verbosity=3, diff=True, timeout=900)
    records = {record["task"]: record for record in result.results}
    secrets = list(keys.values()) + [pkcs8]
    failures = []
    for task_name, (label, secret) in labels.items():
        record = records.get(task_name) or {}
        shown = (result.task_output(task_name) + result.task_output(task_name, result.log)
                 + json.dumps(record.get("result", {})))
        found = [line for line in secret_lines(secret) if line in shown or line[:-1] in shown]
        problems = [f"{len(found)} line(s) of the key show"] if found else []
        if record and "Traceback" in str(record.get("result", {}).get("msg")):
            problems.append("a crash")
        failures += [f"{label}: {p}" for p in problems]
        sections["key_material"].add([label, record.get("status", "no result"),
                                      "no line of the key in stdout, the log or the result" if not found
                                      else "KEY LINES SHOWN", "-"], node=request.node)
    whole = leaks(result, secrets)
    if whole:
        failures.append(f"somewhere in the run's output: {whole}")
    if emu.writes_since(mark):
        failures.append(f"{len(emu.writes_since(mark))} API writes (every case must be refused or harmless)")
    assert not failures, "\n".join(failures)


def _pkcs8(work: Path) -> str:
    from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import rsa  # pylint: disable=import-outside-toplevel
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults: the emulator throttles, fails (500, 503), answers slowly or not at all, and loses
replies after committing, while ecs_keypair creates, imports and deletes key pairs and
ecs_keypair_attach attaches a key pair to 100 instances.

Every case runs the real module through ansible-playbook: a first run under the fault, then two
runs without it. The first run must end converged or with a clear error (the API code in the
message, no traceback) and must leave a state that is safe: no key pair the controller holds no
private key for, no half-attached instance holding something else. The second run must converge
and the third must change nothing. The readings are the emulator's own (raw signed requests,
ssh-keygen for the private key files), never the collection's client.
"""

from __future__ import annotations

import json
import shutil
import stat
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from relsupport import PYTHON, Emulator, make_key
from relstate import PART_B_POOL, identity, instance_key_pairs, key_pairs_by_name, public_of_private, run_instances

# name: (rule without action, error codes a failed run may report, extra module options)
KINDS: Dict[str, Tuple[Dict[str, Any], Tuple[str, ...], Dict[str, Any]]] = {
    "throttling 400": ({"kind": "throttling"}, ("Throttling",), {}),
    "throttling 429": ({"kind": "throttling", "status": 429, "code": "Rejected.Throttling"},
                       ("Rejected.Throttling",), {}),
    "internal error 500": ({"kind": "internal"}, ("InternalError",), {}),
    "unavailable 503": ({"kind": "unavailable"}, ("ServiceUnavailable",), {}),
    "timeout (reply after 2.5 s, client waits 1 s)": ({"kind": "latency", "latency_ms": 2500}, ("Timeout",),
                                                      {"ecs_timeout": 1}),
    "dropped connection": ({"kind": "drop"}, ("ConnectionError",), {}),
    "lost reply: 500 after commit": ({"kind": "internal", "phase": "after"}, ("InternalError",), {}),
    "lost reply: drop after commit": ({"kind": "drop", "phase": "after"}, ("ConnectionError",), {}),
}
# A slow request the client gave up on is still served (and may still commit): before the state
# is read, the request log of the emulator must have been quiet this long.
QUIET_SECONDS = 4.0
OPERATIONS = {"create": "CreateKeyPair", "import": "ImportKeyPair", "delete": "DeleteKeyPairs",
              "attach 100": "AttachKeyPair"}
# transient: each write action fails twice, and the first call of all once (retries absorb it);
# persistent: every try of the write fails for the whole first run.
MODES = ("transient", "persistent")
INSTANCES = 100


def rules_for(kind: str, mode: str) -> List[Dict[str, Any]]:
    """The rules of one mode for the four write actions at once (their cases run side by side)."""
    rule, _codes, _extra = KINDS[kind]
    if mode == "transient":
        return [dict(rule, action=action, count=2) for action in OPERATIONS.values()] + [dict(rule, action="*", count=1)]
    return [dict(rule, action=action) for action in OPERATIONS.values()]


class Case:
    """One operation under one fault: its resources, module arguments and the checks of its state."""

    def __init__(self, kind: str, operation: str, mode: str, work: Path, public_key: str,
                 instance_ids: List[str]) -> None:
        self.kind, self.operation, self.mode = kind, operation, mode
        short = {"create": "c", "import": "i", "delete": "d", "attach 100": "a"}[operation]
        self.name = f"f{list(KINDS).index(kind)}-{short}-{mode[0]}"
        self.host = f"k{list(KINDS).index(kind)}-{mode[0]}-{short}"
        # A directory per case, so a temporary file left behind is this case's.
        self.key_path = work / self.name / "id.pem"
        self.public_key = public_key
        self.instance_ids = instance_ids
        self.before: Dict[str, str] = {}
        _rule, self.codes, extra = KINDS[kind]
        common = dict(extra, ecs_retry_delay=0.05)
        if operation == "create":
            self.module, self.args = "sshkeys.ecs.ecs_keypair", dict(common, name=self.name,
                                                                     private_key_path=str(self.key_path))
        elif operation == "import":
            self.module, self.args = "sshkeys.ecs.ecs_keypair", dict(common, name=self.name, public_key=public_key)
        elif operation == "delete":
            self.module, self.args = "sshkeys.ecs.ecs_keypair", dict(common, name=self.name, state="absent")
        else:
            self.module, self.args = "sshkeys.ecs.ecs_keypair_attach", dict(
                common, key_pair_name=self.name, instance_ids=instance_ids)

    @property
    def action(self) -> str:
        return OPERATIONS[self.operation]

    def prepare(self, emu: Any) -> None:
        """Key pairs the operation needs beforehand (through the API, not the module)."""
        self.key_path.parent.mkdir(parents=True, exist_ok=True)
        if self.operation in ("delete", "attach 100"):
            emu.api("ImportKeyPair", KeyPairName=self.name, PublicKeyBody=self.public_key)
        if self.operation == "attach 100":
            self.before = instance_key_pairs(emu, self.instance_ids)

    def converged(self, emu: Any, pairs: Dict[str, Dict[str, Any]]) -> List[str]:
        """What keeps the state from being the wanted one (empty: converged)."""
        item = pairs.get(self.name)
        if self.operation == "create":
            if item is None:
                return ["the key pair does not exist"]
            return self._private_key_problems(item)
        if self.operation == "import":
            if item is None:
                return ["the key pair does not exist"]
            return [] if identity(item.get("PublicKey")) == identity(self.public_key) else ["another public key"]
        if self.operation == "delete":
            return ["the key pair still exists"] if item is not None else []
        held = instance_key_pairs(emu, self.instance_ids)
        wrong = [i for i in self.instance_ids if held.get(i) != self.name]
        return [f"{len(wrong)} of {len(self.instance_ids)} instances do not hold the key pair"] if wrong else []

    def safe(self, emu: Any, pairs: Dict[str, Dict[str, Any]]) -> List[str]:
        """After a failed run: what would be unsafe (a lost private key, a foreign key, a stray key pair)."""
        item = pairs.get(self.name)
        if self.operation == "create":
            return self._private_key_problems(item) if item is not None else []
        if self.operation == "import":
            if item is not None and identity(item.get("PublicKey")) != identity(self.public_key):
                return ["the key pair holds another public key"]
            return []
        if self.operation == "attach 100":
            held = instance_key_pairs(emu, self.instance_ids)
            odd = [i for i in self.instance_ids if held.get(i) not in (self.name, self.before.get(i))]
            return [f"{len(odd)} instances hold a key pair that is neither the old nor the new one"] if odd else []
        return []

    def _private_key_problems(self, item: Dict[str, Any]) -> List[str]:
        """A cloud-created key pair exists: its private key must be in the file, 0600, and match."""
        if not self.key_path.exists():
            return ["LOST PRIVATE KEY: the key pair exists and no private key file was written"]
        problems = []
        if stat.S_IMODE(self.key_path.stat().st_mode) != 0o600:
            problems.append(f"private key file mode {oct(stat.S_IMODE(self.key_path.stat().st_mode))}")
        if public_of_private(self.key_path) != identity(item.get("PublicKey")):
            problems.append("LOST PRIVATE KEY: the private key file does not belong to the key pair that exists")
        return problems

    def leftovers(self) -> List[str]:
        """Temporary private key files left next to the target. The pending marker is not one: it
        records a create whose answer was lost, for the next run (judged in judge_first)."""
        return sorted(p.name for p in self.key_path.parent.iterdir()
                      if p != self.key_path and p.name != self.marker.name)

    @property
    def marker(self) -> Path:
        return self.key_path.parent / f".{self.key_path.name}.pending"


def clear_error(result: Dict[str, Any], codes: Tuple[str, ...]) -> Optional[str]:
    """None when a failed result is a clear error; otherwise what is wrong with it."""
    msg = str(result.get("msg") or "")
    if not msg:
        return "no message"
    if "Traceback" in msg or "MODULE FAILURE" in msg:
        return f"a crash, not an error: {msg[:200]}"
    # ecs_keypair reports the error code in `error`; ecs_keypair_attach per instance in the message.
    code = (result.get("error") or {}).get("code")
    if code is not None and code not in codes:
        return f"error code {code!r}, expected one of {codes}: {msg[:300]}"
    if not any(known in msg for known in codes):
        return f"the message names none of {codes}: {msg[:300]}"
    return None


def settle(emulators: List[Any], limit: float = 120) -> None:
    """Wait until no emulator has answered an API request for QUIET_SECONDS (each answer is
    logged; the admin requests that flush the log have no action and do not count)."""

    def answered() -> List[int]:
        return [sum(1 for e in emu.log_entries() if e.get("action")) for emu in emulators]

    deadline = time.monotonic() + limit
    last = answered()
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < QUIET_SECONDS and time.monotonic() < deadline:
        time.sleep(0.5)
        now = answered()
        if now != last:
            last, quiet_since = now, time.monotonic()


def is_fault(entry: Dict[str, Any], kind: str) -> bool:
    """Whether a request log entry is one the kind's rules answered."""
    rule, _codes, _extra = KINDS[kind]
    if rule["kind"] == "latency":
        return bool(entry.get("action")) and float(entry.get("latency_ms") or 0) >= rule["latency_ms"]
    if rule["kind"] == "drop":
        return entry.get("code") == "dropped"
    code = rule.get("code") or {"throttling": "Throttling", "internal": "InternalError",
                                "unavailable": "ServiceUnavailable"}[rule["kind"]]
    return entry.get("code") == code


class Rig:
    """One fault kind in one mode: its own emulator (fault rules are global to an emulator), a
    fleet of 100 instances and the four cases."""

    def __init__(self, kind: str, mode: str, emu: Any, work: Path, public_key: str) -> None:
        self.kind, self.mode, self.emu = kind, mode, emu
        fleet = run_instances(emu, INSTANCES)
        self.cases = [Case(kind, op, mode, work, public_key, fleet) for op in OPERATIONS]
        for case in self.cases:
            case.prepare(emu)
        self.mark = 0


# -- the playbooks: one local "host" per case, all cases side by side ---------------------------

def inventory(rigs: List[Rig]) -> str:
    lines = [f"{case.host} ansible_connection=local ansible_python_interpreter={PYTHON}"
             for rig in rigs for case in rig.cases]
    return "\n".join(lines) + "\n"


def run_play(rigs: List[Rig], register: str) -> Dict[str, Any]:
    """Each host runs its case's module against its own emulator."""
    cases = {case.host: {"module": case.module.split(".")[-1], "args": case.args, "env": rig.emu.env()}
             for rig in rigs for case in rig.cases}
    me = "cases[inventory_hostname]"
    keypair = {option: f"{{{{ {me}.args.{option} | default(omit) }}}}"
               for option in ("name", "state", "public_key", "private_key_path", "ecs_timeout", "ecs_retry_delay")}
    attach = {option: f"{{{{ {me}.args.{option} | default(omit) }}}}"
              for option in ("key_pair_name", "instance_ids", "ecs_timeout", "ecs_retry_delay")}
    return {"name": register, "hosts": "all", "gather_facts": False, "strategy": "free",
            "vars": {"cases": cases}, "environment": f"{{{{ {me}.env }}}}", "tasks": [
                {"name": "ecs_keypair", "sshkeys.ecs.ecs_keypair": keypair, "register": f"{register}_k",
                 "ignore_errors": True, "when": f"{me}.module == 'ecs_keypair'"},
                {"name": "ecs_keypair_attach", "sshkeys.ecs.ecs_keypair_attach": attach,
                 "register": f"{register}_a", "ignore_errors": True, "when": f"{me}.module == 'ecs_keypair_attach'"}]}


def collect_play(rigs: List[Rig], registers: List[str]) -> Dict[str, Any]:
    """One task on one host hands every host's registered results to the tree callback."""
    first_host = rigs[0].cases[0].host
    parts = []
    for register in registers:
        for suffix in ("k", "a"):
            parts.append(f"'{register}_{suffix}': dict(groups['all'] | zip(groups['all'] | "
                         f"map('extract', hostvars, '{register}_{suffix}')))")
    return {"name": "results", "hosts": first_host, "gather_facts": False,
            "tasks": [{"name": "results", "ansible.builtin.debug": {"msg": "{{ {" + ", ".join(parts) + "} }}"}}]}


def run_playbook(ansible: Any, rigs: List[Rig], registers: List[str]) -> Dict[str, Dict[str, Any]]:
    """Run every case once per register; host -> {register: module result}."""
    plays = [run_play(rigs, register) for register in registers] + [collect_play(rigs, registers)]
    run = ansible.run_playbook(plays, env={"ANSIBLE_FORKS": "8"}, inventory=inventory(rigs), timeout=900)
    assert run.rc == 0, run.output[-3000:]
    doc = json.loads((run.workdir / "tree" / rigs[0].cases[0].host).read_text())["msg"]
    out: Dict[str, Dict[str, Any]] = {}
    for rig in rigs:
        for case in rig.cases:
            suffix = "a" if case.module.endswith("attach") else "k"
            out[case.host] = {register: doc[f"{register}_{suffix}"][case.host] for register in registers}
    return out


@pytest.fixture(scope="module")
def rigs(tmp_path_factory):
    work = tmp_path_factory.mktemp("faults")
    key = make_key(work, "import-key", "ed25519")
    # Sixteen emulators with virtual instances only: stopped here, without the podman clean-up
    # that start_emulator does for each (nothing of theirs runs in podman).
    emulators: List[Emulator] = []
    try:
        made = []
        for kind in KINDS:
            for mode in MODES:
                emulators.append(Emulator(pool=PART_B_POOL).start())
                made.append(Rig(kind, mode, emulators[-1], work, key.public))
        yield made
    finally:
        for emu in emulators:
            emu.stop()
            shutil.rmtree(emu.dir, ignore_errors=True)


def faults_section(figures):
    return figures.section(
        "faults", title="Faults injected by the emulator", order=20,
        columns=["fault", "operation", "mode", "faults on its write", "first run", "re-run", "third run", "verdict"],
        summary=lambda rows: (
            f"{len(rows)} cases, {sum(int(r[3]) for r in rows)} faults injected into their write calls (more "
            f"into reads): {sum(1 for r in rows if r[4] == 'converged')} converged in the first run, "
            f"{sum(1 for r in rows if r[4] == 'clear error')} stopped with a clear error and a safe state, "
            f"{sum(1 for r in rows if r[5] == 'converged')} converged when run again, "
            f"{sum(1 for r in rows if r[6] == 'no change')} changed nothing the time after; "
            f"{sum(1 for r in rows if r[7] == 'ok')} of {len(rows)} cases without a problem."),
        outcome_column=None)


def judge_first(case: Case, result: Dict[str, Any], emu: Any, pairs: Dict[str, Any]) -> Tuple[str, List[str]]:
    problems = [f"temporary files left: {case.leftovers()}"] if case.leftovers() else []
    if case.marker.exists() and (not result.get("failed") or case.marker.name not in str(result.get("msg"))):
        problems.append("a pending marker was left that the failure does not name")
    if result.get("failed"):
        unclear = clear_error(result, case.codes)
        problems += [f"unclear error: {unclear}"] if unclear else []
        unsafe = case.safe(emu, pairs)
        if case.marker.exists() and case.marker.name in str(result.get("msg")):
            # The failure names the key pair that may lack its private key and the marker the
            # next run acts on (the re-run below must then converge).
            unsafe = [p for p in unsafe if "LOST PRIVATE KEY" not in p]
        problems += [f"after the error: {p}" for p in unsafe]
        return ("unclear error" if unclear else "clear error"), problems
    not_yet = case.converged(emu, pairs)
    problems += [f"reported success but {p}" for p in not_yet]
    return ("not converged" if not_yet else "converged"), problems


def test_operations_under_faults(rigs, ansible, figures):
    """Every kind x operation x mode at once: first run under the fault, then twice without."""
    for rig in rigs:
        rig.mark = rig.emu.mark()
        rig.emu.set_faults(rules_for(rig.kind, rig.mode))
    first = run_playbook(ansible, rigs, ["first"])
    for rig in rigs:
        rig.emu.clear_faults()
    settle([rig.emu for rig in rigs])
    verdicts: Dict[str, Tuple[str, List[str]]] = {}
    injected: Dict[str, int] = {}
    faulted_total = 0
    for rig in rigs:
        entries = rig.emu.entries_since(rig.mark)
        faulted_total += sum(1 for e in entries if is_fault(e, rig.kind))
        pairs = key_pairs_by_name(rig.emu)
        for case in rig.cases:
            verdicts[case.host] = judge_first(case, first[case.host]["first"], rig.emu, pairs)
            injected[case.host] = sum(1 for e in entries if e.get("action") == case.action and is_fault(e, rig.kind))

    later = run_playbook(ansible, rigs, ["rerun", "third"])
    section = faults_section(figures)
    problems: List[str] = []
    for rig in rigs:
        pairs = key_pairs_by_name(rig.emu)
        for case in rig.cases:
            outcome, found = verdicts[case.host]
            rerun, third = later[case.host]["rerun"], later[case.host]["third"]
            not_yet = case.converged(rig.emu, pairs)
            if rerun.get("failed") or not_yet:
                found.append(f"the re-run did not converge: {rerun.get('msg') or not_yet}")
            if third.get("failed") or third.get("changed"):
                found.append(f"the third run {'failed' if third.get('failed') else 'changed something'}")
            problems += [f"{rig.kind} / {case.operation} / {case.mode}: {p}" for p in found]
            section.add([rig.kind, case.operation, case.mode, injected[case.host], outcome,
                         "converged" if not rerun.get("failed") and not not_yet else "not converged",
                         "no change" if not third.get("failed") and not third.get("changed") else "changed",
                         "ok" if not found else "; ".join(found)[:300]])
        # No duplicate or stray key pairs: exactly the ones the cases want.
        wanted = {case.name for case in rig.cases if case.operation != "delete"}
        if set(pairs) != wanted:
            problems.append(f"{rig.kind} / {rig.mode}: stray key pairs {sorted(set(pairs) - wanted)}, "
                            f"missing {sorted(wanted - set(pairs))}")
    assert faulted_total > 0, "no fault fired"
    assert not problems, "\n".join(problems)


# -- a lost reply while reads fail too ------------------------------------------------------------

LOST_REPLY_KINDS = ("lost reply: 500 after commit", "lost reply: drop after commit")


def reads_fail_after_create(kind: str) -> List[Dict[str, Any]]:
    """The run's first read passes (a zero-latency rule uses it up), CreateKeyPair commits and its
    reply is lost, and every read after that fails: the run cannot see what it created."""
    rule, _codes, _extra = KINDS[kind]
    return [{"action": "DescribeKeyPairs", "kind": "latency", "latency_ms": 0, "count": 1},
            dict(rule, action="CreateKeyPair", count=1), dict(rule, action="DescribeKeyPairs", phase="before")]


def test_create_with_lost_reply_while_reads_fail(start_emulator, ansible, tmp_path, figures):
    """The key pair may now exist with nobody holding its private key. The run must clean it up or
    say so, and the run after it must end with a key pair whose private key is saved."""
    section = faults_section(figures)
    problems: List[str] = []
    for kind in LOST_REPLY_KINDS:
        emu = start_emulator(pool=PART_B_POOL)
        case = Case(kind, "create", "reads fail after the lost reply", tmp_path, "", [])
        case.prepare(emu)
        task = {"name": "create", case.module: case.args}
        emu.set_faults(reads_fail_after_create(kind))
        mark = emu.mark()
        first = ansible.run_playbook([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}], env=emu.env())
        emu.clear_faults()
        injected = sum(1 for e in emu.entries_since(mark) if is_fault(e, kind))
        pairs = key_pairs_by_name(emu)
        # The tree callback's result has no `failed` flag: the exit status tells.
        outcome, found = judge_first(case, dict(first.result, failed=first.failed), emu, pairs)
        if found and case.name in pairs and "private key" in str(first.result.get("msg")):
            found = [p for p in found if "LOST PRIVATE KEY" not in p]  # the error says so: allowed
        rerun = ansible.run_playbook([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}], env=emu.env())
        not_yet = case.converged(emu, key_pairs_by_name(emu))
        if rerun.failed or not_yet:
            found.append(f"the re-run did not converge: {rerun.msg or not_yet} "
                         f"(it reported {rerun.result.get('action')!r}, changed={rerun.result.get('changed')})")
        problems += [f"{kind}: {p}" for p in found]
        section.add([kind, "create", "reads fail after the lost reply", injected, outcome,
                     "converged" if not rerun.failed and not not_yet else "not converged", "-",
                     "ok" if not found else "; ".join(found)[:300]])
    assert not problems, "\n".join(problems)

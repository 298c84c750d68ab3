# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crashes: kill -9 of the emulator under load, kill -9 of Ansible runs while the authorized_keys
module rewrites a large file, and two role runs at once on one host.

- Emulator: clients keep creating and deleting key pairs (with two tags each) while the emulator
  is killed and restarted on the same state, several times. Every acknowledged creation must be
  there afterwards, every acknowledged deletion gone, no key pair with half of its tags, and the
  SQLite file passes its integrity check.
- authorized_keys: a run that swaps 3,000 keys for 3,000 others (exclusive) is killed with its
  whole process group, the moment its temporary file appears or at a random time. The file must
  then be exactly the old one or exactly the new one. (A kill inside the write itself is proved
  at the writer's level by the unit tests, which kill bare writer processes at any moment.)
- Two ansible-playbook runs of the role at once against one file, each adding its keys one task
  at a time: no key is lost. (The unit tests do the same with bare processes:
  tests/unit/plugins/module_utils/test_authorized_keys_processes.py; here it is the role through
  Ansible.)
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

from relsupport import COLLECTIONS, PYTHON
from relstate import EXPECTED_TAGS, PART_B_POOL, QUOTA, ClientPool, check_ledger, key_pairs_by_name, tags_of

# Key lines come from the generator the unit tests use too (tests/support/ssh_keys.py).
sys.path.insert(0, str(COLLECTIONS))
from ansible_collections.sshkeys.ecs.tests.support.ssh_keys import random_key  # noqa: E402  pylint: disable=wrong-import-position

KILL_ROUNDS = 3
KEYS = 3000  # per version of the authorized_keys file (about 240 kB)
LOCAL = f"localhost ansible_connection=local ansible_python_interpreter={PYTHON}\n"


def crash_section(figures):
    return figures.section(
        "crashes", title="Crashes: kill -9 and concurrent runs", order=30,
        columns=["case", "tries", "what was checked", "found"],
        summary=lambda rows: (f"{len(rows)} crash cases, {sum(int(r[1]) for r in rows)} kills or concurrent runs: "
                              f"{sum(1 for r in rows if r[-1] == 'passed')} of {len(rows)} passed."))


# -- the emulator ------------------------------------------------------------------------------

def test_emulator_kill9_under_load(start_emulator, keys, figures, request):
    emu = start_emulator(pool=PART_B_POOL)
    pool = ClientPool(emu, clients=16, hold=4, public_key=keys("crash").public, seed=3, tag="kl").start()
    rng = random.Random(5)
    acknowledged_at_kill: List[int] = []
    for _round in range(KILL_ROUNDS):
        time.sleep(rng.uniform(1.5, 3.0))
        port = emu.port
        emu.kill9()
        with pool.ledger.lock:
            acknowledged_at_kill.append(len(pool.ledger.created) + len(pool.ledger.deleted))
        emu.start(port)  # the same state file and port: the clients carry on
    time.sleep(1.0)
    ledger = pool.stop()
    present = key_pairs_by_name(emu)
    problems = check_ledger(emu, ledger, present)
    half = sorted(name for name, item in present.items() if tags_of(item) != EXPECTED_TAGS)
    emu.stop()
    with sqlite3.connect(f"file:{emu.state}?mode=ro", uri=True) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    crash_section(figures).add([
        "kill -9 of the emulator under 16 clients, restarted on the same state", KILL_ROUNDS,
        f"{acknowledged_at_kill[-1]} acknowledged creates and deletes present/absent after the restarts; "
        "both tags on every key pair; SQLite integrity_check",
        f"{len(problems['acknowledged but missing'])} creates lost, {len(problems['deleted but present'])} deletes "
        f"undone, {len(half)} half-tagged, {len(ledger.uncertain)} requests unanswered (either outcome allowed), "
        f"integrity {integrity}"], node=request.node)
    assert problems == {"acknowledged but missing": [], "deleted but present": []}, problems
    assert not half, half
    assert integrity == "ok"
    assert len(present) <= QUOTA
    assert min(acknowledged_at_kill) > 0, "the clients got nothing done before a kill"


# -- authorized_keys writers -----------------------------------------------------------------

def keys_text(seed: int, count: int) -> str:
    return "".join(random_key(seed * 100000 + i) + "\n" for i in range(count))


def swap_play(path: Path, keys_file: Path) -> List[Dict[str, Any]]:
    return [{"hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "swap every key", "sshkeys.ecs.authorized_keys": {
            "user": "root", "path": str(path), "exclusive": True,
            "keys": [f"{{{{ lookup('file', '{keys_file}') }}}}"]}}]}]


def killer(path: Path, mode: str, delay: float):
    """on_start hook: kill the run's process group at a random time, or once its temp file shows."""
    directory = path.parent
    seen = {"temp": False, "interrupted": False}

    def hook(proc, _work):
        deadline = time.monotonic() + (delay if mode == "random" else 120)
        while proc.poll() is None and time.monotonic() < deadline:
            if mode == "at write" and any(".tmp." in name for name in os.listdir(directory)):
                seen["temp"] = True
                break
            time.sleep(0.0005 if mode == "at write" else 0.01)
        if proc.poll() is None:
            seen["interrupted"] = True
            os.killpg(proc.pid, signal.SIGKILL)
    return hook, seen


def test_authorized_keys_writer_kill9(ansible, tmp_path, figures, request):
    ssh = tmp_path / "ssh"
    ssh.mkdir(mode=0o700)
    path = ssh / "authorized_keys"
    sources = {}
    for name, seed in (("a", 1), ("b", 2)):
        sources[name] = tmp_path / f"keys-{name}"
        sources[name].write_text(keys_text(seed, KEYS))
    path.write_text(sources["a"].read_text())
    # Calibration: the exact bytes the module writes for each version, and how long a run takes.
    versions = {}
    durations = []
    for name in ("b", "a"):
        started = time.monotonic()
        run = ansible.run_playbook(swap_play(path, sources[name]), inventory=LOCAL)
        durations.append(time.monotonic() - started)
        assert run.rc == 0 and run.result.get("changed"), run.output[-2000:]
        versions[name] = path.read_bytes()
    rng = random.Random(11)
    tally = {"old": 0, "new": 0, "temp file seen at the kill": 0, "interrupted": 0}
    rounds = [("at write", 0.0)] * 2 + [("random", rng.uniform(0.3, max(durations))) for _round in range(3)]
    for mode, delay in rounds:
        current = next(name for name, text in versions.items() if text == path.read_bytes())
        target = "b" if current == "a" else "a"
        hook, seen = killer(path, mode, delay)
        ansible.run_playbook(swap_play(path, sources[target]), inventory=LOCAL, on_start=hook)
        after = path.read_bytes()
        assert after in (versions["a"], versions["b"]), f"partial or mixed keys file after a kill ({mode})"
        tally["new" if after == versions[target] else "old"] += 1
        tally["temp file seen at the kill"] += seen["temp"]
        tally["interrupted"] += seen["interrupted"]
    leftovers = [p.name for p in ssh.iterdir() if ".tmp." in p.name]
    # The next run cleans up after killed writers and works.
    run = ansible.run_playbook(swap_play(path, sources["a"]), inventory=LOCAL)
    assert run.rc == 0, run.output[-2000:]
    assert path.read_bytes() == versions["a"]
    assert [p.name for p in ssh.iterdir() if ".tmp." in p.name] == []
    crash_section(figures).add([
        f"kill -9 of an Ansible run rewriting authorized_keys ({KEYS:,} keys swapped for {KEYS:,})", len(rounds),
        "the file is byte for byte the old or the new version; the next run cleans up and works",
        f"{tally['interrupted']} runs killed before they ended: {tally['old']} old, {tally['new']} new, 0 partial; "
        f"{tally['temp file seen at the kill']} kills the moment the temporary file existed, {len(leftovers)} "
        "temporary files left until the next run"], node=request.node)
    assert tally["interrupted"] > 0, "every run had ended before its kill"


# -- two role runs at once ------------------------------------------------------------------------

def role_play(path: Path, keys: List[str]) -> List[Dict[str, Any]]:
    """The role once per key, so each run makes many read-modify-writes of the same file."""
    return [{"hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "role per key", "ansible.builtin.include_role": {"name": "sshkeys.ecs.authorized_keys"},
        "loop": keys, "loop_control": {"loop_var": "new_key"},
        "vars": {"authorized_keys_users": [{"name": "root", "path": str(path)}],
                 "authorized_keys_add": ["{{ new_key }}"]}}]}]


def test_two_concurrent_role_runs(ansible, tmp_path, figures, request):
    path = tmp_path / "home" / ".ssh" / "authorized_keys"
    path.parent.mkdir(parents=True, mode=0o700)
    existing = "# kept\n" + keys_text(3, 5)
    path.write_text(existing)
    first, second = [random_key(400000 + i) for i in range(12)], [random_key(500000 + i) for i in range(12)]
    outcome: Dict[str, Any] = {}

    def start_second(_proc, _work):
        outcome["second"] = ansible.run_playbook(role_play(path, second), inventory=LOCAL)

    outcome["first"] = ansible.run_playbook(role_play(path, first), inventory=LOCAL, on_start=start_second)
    for name in ("first", "second"):
        assert outcome[name].rc == 0, outcome[name].output[-2000:]
    lines = path.read_text().splitlines()
    wanted = existing.splitlines() + first + second
    lost = [key for key in wanted if key not in lines]
    crash_section(figures).add([
        "two ansible-playbook runs of the role at once, one file, 12 keys each added one task at a time", 2,
        "every key of both runs and every line that was there before is in the file",
        f"{len(lost)} lost, {len(lines)} lines"], node=request.node)
    assert not lost, f"{len(lost)} keys lost"
    assert len(lines) == len(wanted), "duplicated lines"

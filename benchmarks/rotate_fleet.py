"""Rotating one SSH key on 10 hosts: sshkeys.ecs.authorized_key_rotate versus the three-task
pattern and versus the floor.

The peer is what playbooks usually do: ansible.posix.authorized_key adds the new key, a login
check runs a separate ssh with the new key from the controller (the only check that proves
anything, see docs/rotation.md), and ansible.posix.authorized_key removes the old key. The
collection does the same work, with proof of login, in one task. The floor is one
`ansible.builtin.ping` play on the same hosts: nothing that edits a host over SSH can beat it.

All three run side by side in one run on the same containers (127.0.17.101-110, the instance
image), with the same ansible.cfg, forks 10 and pipelining on; before each timed run the hosts'
files are reset to the old key (not timed). Runs alternate, and the medians are compared (3
rounds; fewer when the machine is so busy that they would take more than 200 s). Then the same
rotation on 30 hosts in `serial` batches of 10, next to the floor on those 30 hosts, to show the
cost per host stays flat. This is a measurement, not a test: it asserts nothing, but each run is
checked to have rotated every host (else the numbers would mean nothing).

    .venv-bench/bin/python benchmarks/rotate_fleet.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchlib import ANSIBLE_CFG, Hosts, ansible_env, log, median, playbook, ssh_keygen

RESET = """- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        content: "{{ old_key }}\\n"
        dest: /home/ecs-user/.ssh/authorized_keys
        owner: ecs-user
        group: ecs-user
        mode: "0600"
"""

PEER = """- hosts: all
  gather_facts: false
  tasks:
    - name: Add the new key
      ansible.posix.authorized_key:
        user: ecs-user
        key: "{{ new_key }}"
    - name: Log in with the new key, in a process of its own
      ansible.builtin.command:
        argv: [ssh, -T, -o, BatchMode=yes, -o, IdentitiesOnly=yes, -o, IdentityAgent=none, -o, ControlPath=none,
               -o, StrictHostKeyChecking=no, -o, UserKnownHostsFile=/dev/null, -o, LogLevel=ERROR,
               -i, "{{ new_private_key }}", -l, ecs-user, "{{ ansible_host }}", "true"]
      delegate_to: localhost
      vars:
        ansible_python_interpreter: "{{ ansible_playbook_python }}"
      changed_when: false
    - name: Remove the old key
      ansible.posix.authorized_key:
        user: ecs-user
        key: "{{ old_key }}"
        state: absent
"""

FLOOR = """- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.ping:
"""

OURS = """- hosts: all
  gather_facts: false
  tasks:
    - name: Rotate, with proof of login
      sshkeys.ecs.authorized_key_rotate:
        user: ecs-user
        old_key: ["{{ old_key }}"]
        new_key: "{{ new_key }}"
        new_private_key_path: "{{ new_private_key }}"
"""

VERIFY = """- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.slurp:
        src: /home/ecs-user/.ssh/authorized_keys
      register: content
    - ansible.builtin.assert:
        that:
          - (content.content | b64decode).split()[1] == new_key.split()[1]
          - old_key.split()[1] not in (content.content | b64decode)
        quiet: true
"""


def _files(work: Path, serial: int = 0) -> dict:
    files = {}
    for name, text in (("reset", RESET), ("peer", PEER), ("ours", OURS), ("verify", VERIFY), ("floor", FLOOR)):
        if serial and name in ("ours", "floor"):
            text = text.replace("  gather_facts: false\n", f"  gather_facts: false\n  serial: {serial}\n", 1)
        files[name] = work / f"{name}{'-serial' if serial else ''}.yml"
        files[name].write_text(text, encoding="utf-8")
    return files


def _rounds(inventory: Path, files: dict, env: dict, names: tuple, rounds: int, budget: float, count: int) -> dict:
    """Alternating timed runs of each of names; a crowded machine gives fewer runs (at least one
    of each), not an endless benchmark."""
    times: dict = {name: [] for name in names}
    started = time.monotonic()
    for round_ in range(rounds):
        if round_ and time.monotonic() - started > budget:
            log(f"  time budget of {budget:.0f} s used: {round_} round(s)")
            break
        for name in names:
            if name != "floor":
                playbook(inventory, files["reset"], env)
            times[name].append(playbook(inventory, files[name], env))
            if name != "floor":
                playbook(inventory, files["verify"], env)
            log(f"  rotation on {count} hosts, {name:5s}: {times[name][-1]:6.2f} s")
    return times


def _fleet(work: Path, keys: dict, env: dict, count: int, first: int, serial: int, names: tuple, rounds: int,
           budget: float) -> dict:
    files = _files(work, serial)
    with Hosts(f"sshkeys-bench-rot{count}-", first, count, keys["admin"].with_suffix(".pub")) as hosts:
        inventory = hosts.inventory(work / f"inventory-{count}.yml", keys["admin"], {
            "old_key": keys["old"].with_suffix(".pub").read_text(encoding="utf-8").strip(),
            "new_key": keys["new"].with_suffix(".pub").read_text(encoding="utf-8").strip(),
            "new_private_key": str(keys["new"])})
        return _rounds(inventory, files, env, names, rounds, budget, count)


def measure(quick: bool) -> dict:
    """{"hosts": n, "peer": [s...], "ours": [s...], "floor": [s...], "scale": {...}} from alternating runs."""
    count, rounds, budget = (3, 1, 0.0) if quick else (10, 3, 200.0)
    scale_count = 6 if quick else 30
    with tempfile.TemporaryDirectory(prefix="sshkeys-bench-rot.") as tmp:
        work = Path(tmp)
        keys = {name: ssh_keygen(work / name, kind, name)
                for name, kind in (("admin", "ecdsa"), ("old", "ecdsa"), ("new", "ed25519"))}
        (work / "ansible.cfg").write_text(ANSIBLE_CFG, encoding="utf-8")
        env = ansible_env(work / "ansible.cfg")
        times = _fleet(work, keys, env, count, 101, 0, ("floor", "peer", "ours"), rounds, budget)
        scale = _fleet(work, keys, env, scale_count, 101, scale_count // 3, ("floor", "ours"), 1 if quick else 2,
                       budget)
    return {"hosts": count, "rounds": len(times["ours"]), **times,
            "ratio": median(times["ours"]) / median(times["peer"]),
            "floor_ratio": median(times["ours"]) / median(times["floor"]),
            "scale": {"hosts": scale_count, "serial": scale_count // 3, **scale}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 hosts, one round")
    print(json.dumps(measure(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()

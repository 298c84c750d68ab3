"""Adding keys to an authorized_keys file: the role against ansible.posix.authorized_key.

Side by side in one run, on one container (the project's instance image on 127.0.17.10), with
the same ansible.cfg (pipelining on, facts off), N new keys go into a file of 5,000 lines:

  role       sshkeys.ecs.authorized_keys role: one task for the user, all N keys
  posix-one  ansible.posix.authorized_key with all keys joined into one `key` (its best mode)
  posix-loop ansible.posix.authorized_key looped over the N keys (what playbooks often do); this
             costs a second or more a key, so it runs once, at 10 and 20 keys only
  module     the sshkeys.ecs.authorized_keys module in one task, without the role (at 200 keys:
             what the role's argument validation costs on top)
  floor      the warm-up ping alone: one ansible-playbook run, one SSH connection, one module;
             nothing that edits the file over SSH can beat it (at 200 keys, where the goals are)
  two-pings  the warm-up ping and a second ping task: what any module run costs once the
             connection is open, so that the module's own share over the floor can be told apart
             (at 200 keys)

Before each timed run the file is reset to the same 5,000 lines (podman exec, not timed), and
after it the file must hold 5,000 + N keys, else the numbers would mean nothing. Two times per
run: the whole ansible-playbook run, and the task time (ansible.posix.profile_tasks, every task
after a warm-up ping that opens the SSH connection). Medians are compared.

Then the module's own work (read, plan, write under the lock; in process, no Ansible) adding 200
keys to files of 10 to 100,000 lines, to show how the cost grows with the file.

This is a measurement, not a test: it asserts nothing about time. ansible.posix comes from the
PyPI `ansible` wheel (benchlib.ensure_peers); Galaxy is not used.

    .venv-bench/bin/python benchmarks/authorized_keys_bulk.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import tempfile
import time
from pathlib import Path

from benchlib import (ANSIBLE_CFG, VENV_BIN, Hosts, ansible_env, log, median, module_utils, podman, random_key, run,
                      ssh_keygen)

KEYFILE = "/home/ecs-user/.ssh/authorized_keys"
TASK_TIME = re.compile(r"^(?P<name>.+?) -{3,} (?P<seconds>[0-9.]+)s$")
MODES = ("floor", "two-pings", "role", "module", "posix-one", "posix-loop")
# Modes measured at one count only: the floors and the module alone are compared where the goals are.
ONE_COUNT_MODES = ("floor", "two-pings", "module")
PING_ONLY_MODES = ("floor", "two-pings")
GOAL_COUNT = 200


def _playbooks(work: Path, count: int) -> dict:
    keys = work / f"new_keys_{count}.txt"
    header = ("- hosts: all\n  gather_facts: false\n  vars:\n"
              f"    new_keys: \"{{{{ lookup('ansible.builtin.file', '{keys}').splitlines() }}}}\"\n"
              "  tasks:\n    - name: warm-up\n      ansible.builtin.ping:\n")
    texts = {
        "role": header + "    - ansible.builtin.include_role:\n        name: sshkeys.ecs.authorized_keys\n"
                         "      vars:\n        authorized_keys_users: [ecs-user]\n"
                         "        authorized_keys_add: \"{{ new_keys }}\"\n",
        "posix-one": header + "    - ansible.posix.authorized_key:\n        user: ecs-user\n"
                              "        key: \"{{ new_keys | join('\\n') }}\"\n",
        "posix-loop": header + "    - ansible.posix.authorized_key:\n        user: ecs-user\n        key: \"{{ item }}\"\n"
                               "      loop: \"{{ new_keys }}\"\n",
        "module": header + "    - sshkeys.ecs.authorized_keys:\n        user: ecs-user\n        keys: \"{{ new_keys }}\"\n",
        "floor": header,
        "two-pings": header + "    - name: second ping\n      ansible.builtin.ping:\n",
    }
    paths = {}
    for mode, text in texts.items():
        paths[mode] = work / f"{mode}-{count}.yml"
        paths[mode].write_text(text, encoding="utf-8")
    return paths


def _timed_playbook(work: Path, path: Path, env: dict) -> tuple:
    """(whole run, tasks after the warm-up) in seconds."""
    started = time.monotonic()
    out = run([VENV_BIN / "ansible-playbook", "-i", work / "inventory.yml", path], cwd=work, env=env).stdout
    whole = time.monotonic() - started
    tasks = 0.0
    for line in out.splitlines():
        match = TASK_TIME.match(line.strip())
        if match and match.group("name").strip() != "warm-up":
            tasks += float(match.group("seconds"))
    return whole, tasks


def _reset(name: str) -> None:
    podman("exec", name, "sh", "-c", f"cp /root/base.txt {KEYFILE} && chown ecs-user:ecs-user {KEYFILE} "
                                     f"&& chmod 0600 {KEYFILE}")


def _key_count(name: str) -> int:
    return int(podman("exec", name, "grep", "-c", "^ssh-", KEYFILE).stdout.strip())


def remote(counts: list, loop_counts: list, lines: int, rounds: int, budget: float, rng: random.Random) -> dict:
    """{count: {mode: [(whole, tasks), ...]}} for every mode measured at that count: the role and
    posix-one up to `rounds` times at each of `counts`, posix-loop once at each of `loop_counts`.

    Rounds run whole (every count and mode, interleaved); after the first, a new round starts only
    while the section is within `budget` seconds, so a crowded machine gives fewer runs, not an
    endless benchmark."""
    every = sorted(set(counts) | set(loop_counts))
    times: dict = {count: {mode: [] for mode in MODES} for count in every}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sshkeys-bench-ak.") as tmp:
        work = Path(tmp)
        admin = ssh_keygen(work / "admin", comment="admin")
        (work / "base.txt").write_text("".join(random_key(rng, f"base-{i}") + "\n" for i in range(lines)),
                                       encoding="utf-8")
        (work / "ansible.cfg").write_text(ANSIBLE_CFG, encoding="utf-8")
        env = ansible_env(work / "ansible.cfg", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
                          PROFILE_TASKS_TASK_OUTPUT_LIMIT="all")
        paths = {}
        for count in every:
            (work / f"new_keys_{count}.txt").write_text(
                "\n".join(random_key(rng, f"new-{count}-{i}") for i in range(count)) + "\n", encoding="utf-8")
            paths[count] = _playbooks(work, count)
        with Hosts("sshkeys-bench-ak", 10, 1, admin.with_suffix(".pub")) as hosts:
            hosts.inventory(work / "inventory.yml", admin)
            name = hosts.hosts[0][0]
            podman("cp", str(work / "base.txt"), f"{name}:/root/base.txt")
            for round_ in range(rounds):
                if round_ and time.monotonic() - started > budget:
                    log(f"  time budget of {budget:.0f} s used: {round_} round(s)")
                    break
                for count in every:
                    for mode in MODES:
                        if _wanted(mode, count, counts, loop_counts, round_):
                            expected = lines if mode in PING_ONLY_MODES else lines + count
                            times[count][mode].append(_measured_run(work, paths[count][mode], env, name, expected))
                            log(f"  {count:5d} keys {mode:10s} run {times[count][mode][-1][0]:8.2f} s   "
                                f"tasks {times[count][mode][-1][1]:8.2f} s")
    return times


def _wanted(mode: str, count: int, counts: list, loop_counts: list, round_: int) -> bool:
    if mode == "posix-loop":
        return count in loop_counts and round_ == 0
    if mode in ONE_COUNT_MODES:
        return count == GOAL_COUNT and count in counts
    return count in counts


def _measured_run(work: Path, path: Path, env: dict, name: str, expected: int) -> tuple:
    """Reset the file (not timed), run the playbook (timed), check the result."""
    _reset(name)
    whole, tasks = _timed_playbook(work, path, env)
    found = _key_count(name)
    if found != expected:
        raise SystemExit(f"{path.name}: the file holds {found} keys after the run, not {expected}")
    return whole, tasks


def module_alone(sizes: list, keys: int, rounds: int, rng: random.Random) -> list:
    """[(lines, median seconds, median CPU seconds)] of the module's own work adding `keys` keys to a
    file of that size (the CPU time is the process's own: other load on the machine hardly moves it)."""
    apply_mod = module_utils("_authorized_keys_apply")
    new = apply_mod.normalise_keys([random_key(rng, f"new-{i}") for i in range(keys)])
    results = []
    for size in sizes:
        base = "".join(random_key(rng, f"base-{i}") + "\n" for i in range(size))
        samples, cpu = [], []
        with tempfile.TemporaryDirectory() as tmp:
            os.mkdir(os.path.join(tmp, ".ssh"), 0o700)
            target = module_utils("_keys_target").Target(user="bench", uid=os.getuid(), gid=os.getgid(), home=tmp,
                                                         path=os.path.join(tmp, ".ssh", "authorized_keys"))
            for _attempt in range(rounds):
                Path(target.path).write_text(base, encoding="utf-8")
                started, started_cpu = time.perf_counter(), time.process_time()
                result = apply_mod.apply(target, new)
                samples.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
                if len(result["added"]) != keys:
                    raise SystemExit(f"the module added {len(result['added'])} keys, not {keys}")
        results.append((size, median(samples), median(cpu)))
        log(f"  module alone: {size:7d} lines  {median(samples) * 1000:9.1f} ms  (CPU {median(cpu) * 1000:9.1f} ms)")
    return results


def measure(quick: bool) -> dict:
    rng = random.Random(20)
    sizes = [10, 100, 1000, 10000] if quick else [10, 100, 1000, 10000, 30000, 100000]
    alone = module_alone(sizes, 200, 3, rng)
    counts = [10, GOAL_COUNT] if quick else [10, 100, GOAL_COUNT, 1000]
    # The loop costs one module run per key (seconds each on a busy machine): it is measured at a
    # few small counts, enough for its per-key cost; the report extrapolates from those.
    loop_counts = [2, 4] if quick else [10, 20]
    lines = 5000
    times = remote(counts, loop_counts, lines, 1 if quick else 3, 330.0, rng)
    return {"lines": lines, "module_keys": 200, "module_alone": alone,
            "remote": {str(count): {mode: values for mode, values in modes.items() if values}
                       for count, modes in times.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer sizes and rounds")
    print(json.dumps(measure(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()

"""Adding 200 keys to an authorized_keys file of 5,000 lines on an SSH host.

Side by side in one run, on the same container (the project's instance image on 127.0.20.200),
with the same ansible.cfg (pipelining on, facts off):

  role       sshkeys.ecs.authorized_keys role: one task for the user, all 200 keys
  posix-one  ansible.posix.authorized_key with all keys joined into one `key` (its best mode)
  posix-loop ansible.posix.authorized_key looped over the 200 keys (what playbooks often do)

Before each timed run the file is reset to the same 5,000 lines (not timed), and after it the
file is checked to hold 5,200 keys, else the numbers would mean nothing. Two times per run: the
whole ansible-playbook run, and the task time (ansible.posix.profile_tasks, every task after a
warm-up ping that opens the SSH connection; for the role that includes its argument check).
Medians are compared.

Then the module's own work (read, plan, write under the lock; in process, no Ansible) adding
200 keys to files of 10, 1,000 and 100,000 lines, to show the cost grows linearly with the file.

This is a measurement, not a test: it asserts nothing about time.
ansible.posix comes from the PyPI `ansible` wheel (pip download, only that collection extracted
into .cache/peers); Galaxy is not used.

    .venv/bin/python benchmarks/authorized_keys_bulk.py [--rounds 3] [--loop-rounds 1] [--keep]
"""

from __future__ import annotations

import argparse
import base64
import glob
import os
import random
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PEERS = ROOT / ".cache" / "peers"
NAME = "sshkeys-bench-ak"
ADDRESS = "127.0.20.200"
KEYFILE = "/home/ecs-user/.ssh/authorized_keys"


def ensure_posix() -> Path:
    """.cache/peers/collections holding ansible.posix, taken from the PyPI `ansible` wheel."""
    target = PEERS / "collections"
    if (target / "ansible_collections" / "ansible" / "posix" / "plugins").is_dir():
        return target
    wheels = sorted(glob.glob(str(PEERS / "wheel" / "ansible-*.whl")))
    if not wheels:
        subprocess.run([str(VENV_BIN / "pip"), "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "ansible", "-d", str(PEERS / "wheel")], check=True)
        wheels = sorted(glob.glob(str(PEERS / "wheel" / "ansible-*.whl")))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        for name in wheel.namelist():
            if name.startswith("ansible_collections/ansible/posix/"):
                wheel.extract(name, target)
    return target


def random_key(rng: random.Random, comment: str) -> str:
    def string(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data
    blob = string(b"ssh-ed25519") + string(rng.randbytes(32))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def run(args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, text=True, capture_output=True, **kwargs)


def podman(*args: str) -> subprocess.CompletedProcess:
    return run(["podman", *args])


def setup(work: Path, new_keys: list[str]) -> dict[str, Path]:
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "admin", "-f", str(work / "admin")])
    subprocess.run(["podman", "rm", "--force", "--ignore", NAME], check=True, capture_output=True)
    run([str(ROOT / "tools" / "instance-run.sh"), NAME, ADDRESS, str(work / "admin.pub")])
    (work / "inventory.yml").write_text(
        "all:\n  hosts:\n    bench:\n"
        f"      ansible_host: {ADDRESS}\n      ansible_user: root\n"
        f"      ansible_ssh_private_key_file: {work / 'admin'}\n"
        "      ansible_ssh_common_args: -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o IdentitiesOnly=yes\n"
        "      ansible_python_interpreter: /usr/bin/python3\n")
    (work / "ansible.cfg").write_text("[defaults]\nhost_key_checking = False\ngathering = explicit\n"
                                      "[ssh_connection]\npipelining = True\n")
    (work / "new_keys.txt").write_text("\n".join(new_keys) + "\n")
    header = ("- hosts: all\n  gather_facts: false\n  vars:\n"
              f"    new_keys: \"{{{{ lookup('ansible.builtin.file', '{work / 'new_keys.txt'}').splitlines() }}}}\"\n"
              "  tasks:\n    - name: warm-up\n      ansible.builtin.ping:\n")
    playbooks = {
        "reset": "- hosts: all\n  gather_facts: false\n  tasks:\n"
                 f"    - ansible.builtin.copy:\n        src: {work / 'base.txt'}\n        dest: {KEYFILE}\n"
                 "        owner: ecs-user\n        group: ecs-user\n        mode: '0600'\n",
        "role": header + "    - ansible.builtin.include_role:\n        name: sshkeys.ecs.authorized_keys\n"
                         "      vars:\n        authorized_keys_users: [ecs-user]\n        authorized_keys_add: \"{{ new_keys }}\"\n",
        "posix-one": header + "    - ansible.posix.authorized_key:\n        user: ecs-user\n"
                              "        key: \"{{ new_keys | join('\\n') }}\"\n",
        "posix-loop": header + "    - ansible.posix.authorized_key:\n        user: ecs-user\n        key: \"{{ item }}\"\n"
                               "      loop: \"{{ new_keys }}\"\n",
    }
    paths = {}
    for name, text in playbooks.items():
        paths[name] = work / f"{name}.yml"
        paths[name].write_text(text)
    return paths


TASK_TIME = re.compile(r"^(?P<name>.+?) -{3,} (?P<seconds>[0-9.]+)s$")


def timed_playbook(work: Path, playbook: Path, env: dict) -> tuple[float, float]:
    """(whole run, tasks after the warm-up) in seconds."""
    started = time.monotonic()
    out = run([str(VENV_BIN / "ansible-playbook"), "-i", str(work / "inventory.yml"), str(playbook)],
              cwd=work, env=env).stdout
    whole = time.monotonic() - started
    tasks = 0.0
    for line in out.splitlines():
        match = TASK_TIME.match(line.strip())
        if match and match.group("name").strip() != "warm-up":
            tasks += float(match.group("seconds"))
    return whole, tasks


def key_count() -> int:
    out = podman("exec", NAME, "grep", "-c", "^ssh-", KEYFILE).stdout
    return int(out.strip())


def remote(args, work: Path, paths: dict, env: dict) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {"role": [], "posix-one": [], "posix-loop": []}
    plan = []
    for round_ in range(max(args.rounds, args.loop_rounds)):
        for mode in ("role", "posix-one", "posix-loop"):
            if round_ < (args.loop_rounds if mode == "posix-loop" else args.rounds):
                plan.append(mode)
    for mode in plan:
        timed_playbook(work, paths["reset"], env)
        assert key_count() == args.lines, "reset failed"
        whole, tasks = timed_playbook(work, paths[mode], env)
        count = key_count()
        if count != args.lines + args.keys:
            raise SystemExit(f"{mode}: the file holds {count} keys after the run, not {args.lines + args.keys}")
        times[mode].append((whole, tasks))
        print(f"  {mode:10s} run {whole:8.2f} s   tasks {tasks:8.2f} s", flush=True)
    return times


def module_alone(rng: random.Random, sizes: list[int], keys: int, rounds: int) -> list[tuple[int, float]]:
    sys.path.insert(0, str(ROOT / ".cache" / "collections"))
    from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys_apply import (
        Target, apply, normalise_keys)
    new = normalise_keys([random_key(rng, f"new-{i}") for i in range(keys)])
    results = []
    for size in sizes:
        base = "".join(random_key(rng, f"base-{i}") + "\n" for i in range(size))
        samples = []
        with tempfile.TemporaryDirectory() as tmp:
            target = Target(user="bench", uid=os.getuid(), gid=os.getgid(), home=tmp,
                            path=os.path.join(tmp, ".ssh", "authorized_keys"))
            os.mkdir(os.path.join(tmp, ".ssh"), 0o700)
            for _attempt in range(rounds):
                Path(target.path).write_text(base)
                started = time.perf_counter()
                result = apply(target, new)
                samples.append(time.perf_counter() - started)
                assert len(result["added"]) == keys
        results.append((size, statistics.median(samples)))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of the role and of posix-one")
    parser.add_argument("--loop-rounds", type=int, default=1, help="timed runs of posix-loop (about 3 min each)")
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="leave the container running")
    args = parser.parse_args()
    os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "tools" / "containers.conf"))
    rng = random.Random(20)
    print(f"module alone: adding {args.keys} keys (read, plan, locked atomic write), median of 5")
    measured = module_alone(rng, [10, 1000, 100000], args.keys, 5)
    smallest_size, smallest = measured[0]
    for size, took in measured:
        extra = f"  {(took - smallest) / (size - smallest_size) * 1e6:6.1f} us per extra line" if size > smallest_size else ""
        print(f"  {size:7d} lines  {took * 1000:9.1f} ms{extra}")

    peers = ensure_posix()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=f"{ROOT / '.cache' / 'collections'}:{peers}",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="all",
               ANSIBLE_CONFIG="ansible.cfg", PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    with tempfile.TemporaryDirectory(prefix="sshkeys-bench-ak.") as tmp:
        work = Path(tmp)
        new_keys = [random_key(rng, f"new-{i}") for i in range(args.keys)]
        (work / "base.txt").write_text("".join(random_key(rng, f"base-{i}") + "\n" for i in range(args.lines)))
        paths = setup(work, new_keys)
        try:
            print(f"\nadding {args.keys} keys to {args.lines} lines on {ADDRESS} over SSH (whole playbook runs)")
            times = remote(args, work, paths, env)
        finally:
            if not args.keep:
                subprocess.run(["podman", "rm", "--force", "--ignore", NAME], capture_output=True, check=False)
    print("\nmedians            whole run      tasks")
    medians = {}
    for mode, values in times.items():
        if values:
            medians[mode] = (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
            print(f"  {mode:10s} {medians[mode][0]:10.2f} s {medians[mode][1]:10.2f} s  ({len(values)} runs)")
    for peer in ("posix-loop", "posix-one"):
        if peer in medians:
            print(f"  {peer} / role: whole run {medians[peer][0] / medians['role'][0]:.2f}x, "
                  f"tasks {medians[peer][1] / medians['role'][1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Rotating one SSH key on 10 hosts: sshkeys.ecs.authorized_key_rotate versus the three-task pattern.

The peer is what playbooks usually do: ansible.posix.authorized_key adds the new key, a login
check runs a separate ssh with the new key from the controller (the only check that proves
anything, see docs/rotation.md), and ansible.posix.authorized_key removes the old key. The
collection does the same work, with proof of login, in one task.

Both run side by side in one run on the same 10 containers (127.0.21.101-110, the instance image),
with the same ansible.cfg, forks 10 and pipelining on; before each timed run the hosts' files
are reset to the old key (not timed). Runs alternate between the two, and the medians are
compared. This is a measurement, not a test: it asserts nothing, but each run is checked to
have rotated every host (else the numbers would mean nothing).

ansible.posix comes from the PyPI `ansible` wheel (pip download, extract only that collection
into .cache/peers); Galaxy is not used.

    .venv/bin/python benchmarks/rotate_fleet.py [--hosts 10] [--rounds 3] [--keep]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PEERS = ROOT / ".cache" / "peers"
PREFIX = "sshkeys-bench-rot-"
NETWORK = "127.0.21."
FIRST_OCTET = 101


def ensure_posix() -> Path:
    """.cache/peers/collections with ansible.posix extracted from the PyPI `ansible` wheel."""
    target = PEERS / "collections"
    if (target / "ansible_collections" / "ansible" / "posix" / "plugins").is_dir():
        return target
    wheels = sorted(glob.glob(str(PEERS / "wheel" / "ansible-*.whl")))
    if not wheels:
        subprocess.run([str(VENV_BIN / "pip"), "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "ansible", "-d", str(PEERS / "wheel")], check=True)
        wheels = sorted(glob.glob(str(PEERS / "wheel" / "ansible-*.whl")))
    prefix = "ansible_collections/ansible/posix/"
    with zipfile.ZipFile(wheels[-1]) as wheel:
        for name in wheel.namelist():
            if name.startswith(prefix):
                wheel.extract(name, target)
    return target


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, text=True, capture_output=True, **kwargs)


def make_keys(directory: Path) -> dict[str, Path]:
    keys = {}
    for name, kind in (("admin", "ecdsa"), ("old", "ecdsa"), ("new", "ed25519")):
        path = directory / name
        run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", str(path)])
        keys[name] = path
    return keys


def start_hosts(count: int, admin_pub: Path) -> list[tuple[str, str]]:
    hosts = []
    for index in range(count):
        name, address = f"{PREFIX}{index}", f"{NETWORK}{FIRST_OCTET + index}"
        subprocess.run(["podman", "rm", "--force", "--ignore", name], check=True, capture_output=True)
        run([str(ROOT / "tools" / "instance-run.sh"), name, address, str(admin_pub)])
        hosts.append((name, address))
    return hosts


def write_files(work: Path, hosts: list[tuple[str, str]], keys: dict[str, Path]) -> dict[str, Path]:
    inventory = work / "inventory.yml"
    lines = ["all:", "  vars:", "    ansible_user: root",
             f"    ansible_ssh_private_key_file: {keys['admin']}",
             "    ansible_ssh_common_args: -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o IdentitiesOnly=yes",
             "    ansible_python_interpreter: /usr/bin/python3",
             f"    old_key: \"{keys['old'].with_suffix('.pub').read_text().strip()}\"",
             f"    new_key: \"{keys['new'].with_suffix('.pub').read_text().strip()}\"",
             f"    new_private_key: {keys['new']}",
             "  hosts:"]
    lines += [f"    {name}: {{ansible_host: {address}}}" for name, address in hosts]
    inventory.write_text("\n".join(lines) + "\n")
    config = work / "ansible.cfg"
    config.write_text("[defaults]\nforks = 10\nhost_key_checking = False\ngathering = explicit\n"
                      "[ssh_connection]\npipelining = True\n")
    reset = work / "reset.yml"
    reset.write_text("""- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        content: "{{ old_key }}\\n"
        dest: /home/ecs-user/.ssh/authorized_keys
        owner: ecs-user
        group: ecs-user
        mode: "0600"
""")
    peer = work / "peer.yml"
    peer.write_text("""- hosts: all
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
""")
    ours = work / "ours.yml"
    ours.write_text("""- hosts: all
  gather_facts: false
  tasks:
    - name: Rotate, with proof of login
      sshkeys.ecs.authorized_key_rotate:
        user: ecs-user
        old_key: ["{{ old_key }}"]
        new_key: "{{ new_key }}"
        new_private_key_path: "{{ new_private_key }}"
""")
    verify = work / "verify.yml"
    verify.write_text("""- hosts: all
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
""")
    return {"inventory": inventory, "config": config, "reset": reset, "peer": peer, "ours": ours, "verify": verify}


def playbook(files: dict[str, Path], name: str, env: dict[str, str]) -> float:
    started = time.monotonic()
    done = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(files["inventory"]), str(files[name])],
                          env=env, text=True, capture_output=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the containers and the playbooks in place")
    options = parser.parse_args()
    os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "tools" / "containers.conf"))
    peers = ensure_posix()
    work = Path(tempfile.mkdtemp(prefix="sshkeys-bench-rot."))
    hosts = []
    try:
        keys = make_keys(work)
        hosts = start_hosts(options.hosts, keys["admin"].with_suffix(".pub"))
        files = write_files(work, hosts, keys)
        env = dict(os.environ, ANSIBLE_CONFIG=str(files["config"]), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_COLLECTIONS_PATH=f"{ROOT / '.cache' / 'collections'}:{peers}",
                   PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
        times: dict[str, list[float]] = {"peer": [], "ours": []}
        for _round in range(options.rounds):
            for name in ("peer", "ours"):
                playbook(files, "reset", env)
                times[name].append(playbook(files, name, env))
                playbook(files, "verify", env)
        peer, ours = statistics.median(times["peer"]), statistics.median(times["ours"])
        print(f"rotate one key on {options.hosts} hosts, median of {options.rounds} runs each (seconds):")
        print(f"  ansible.posix add + ssh login check + remove (3 tasks): {peer:6.2f}  "
              f"runs {', '.join(f'{t:.2f}' for t in times['peer'])}")
        print(f"  sshkeys.ecs.authorized_key_rotate (1 task, login proof): {ours:6.2f}  "
              f"runs {', '.join(f'{t:.2f}' for t in times['ours'])}")
        print(f"  ratio ours/peer: {ours / peer:.2f} (goal: at most 0.50)")
    finally:
        if options.keep:
            print(f"kept: containers {PREFIX}*, files in {work}")
        else:
            for name, _address in hosts:
                subprocess.run(["podman", "rm", "--force", "--ignore", name], capture_output=True, check=False)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

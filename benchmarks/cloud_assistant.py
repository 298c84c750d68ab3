"""One sshkeys.ecs.authorized_keys task over Cloud Assistant next to the same task over SSH.

One podman instance of the emulator (127.0.17.240/28, in the benchmarks' range), reached two ways by the same one-task play
(add a fresh random key for ecs-user, pipelining on, the interpreter set): over SSH as root with
the key pair ECS bound at creation, and over the sshkeys.ecs.cloud_assistant connection (RunCommand,
SendFile and DescribeInvocationResults through the emulator). Each timed run adds a new key; runs
alternate; the API calls of each Cloud Assistant run come from the emulator's request log. The
emulator runs the agent's commands with `podman exec`, so the times say what the connection costs
here, not what a real region's agent and API latency would add.

    .venv-bench/bin/python benchmarks/cloud_assistant.py [--quick]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib import VENV_BIN, Emulator, ansible_env, log, median, random_key

POOL = "127.0.17.240/28"
PLAY = """- hosts: all
  gather_facts: false
  tasks:
    - sshkeys.ecs.authorized_keys:
        user: ecs-user
        keys: ["{{ new_key }}"]
"""


def _instance(emulator: Emulator, work: Path) -> tuple:
    """A running Linux instance with a key pair bound; (instance id, address, private key path)."""
    client = emulator.client()
    created = client.call("CreateKeyPair", {"KeyPairName": "bench-ca"})
    private = work / "bench-ca.pem"
    private.write_text(created["PrivateKeyBody"].rstrip("\n") + "\n", encoding="utf-8")
    private.chmod(0o600)
    iid = client.call("RunInstances", {"ImageId": "debian_12_x64", "Amount": "1", "KeyPairName": "bench-ca"})[
        "InstanceIdSets"]["InstanceIdSet"][0]
    deadline = time.monotonic() + 180
    while True:
        item = client.call("DescribeInstances", {"InstanceIds": json.dumps([iid])})["Instances"]["Instance"][0]
        if item["Status"] == "Running":
            return iid, item["PublicIpAddress"]["IpAddress"][0], private
        if time.monotonic() > deadline:
            raise SystemExit(f"{iid} did not start")
        time.sleep(0.5)


def measure(quick: bool = False) -> dict:
    rounds = 2 if quick else 5
    rng = random.Random(17)
    with Emulator("--instances", "podman", "--address-pool", POOL) as emulator, \
            tempfile.TemporaryDirectory(prefix="sshkeys-bench-ca.") as tmp:
        try:
            return _measure(emulator, Path(tmp), rounds, rng)
        finally:
            # The emulator leaves its instances running when it stops, as a cloud would; the bench does not.
            subprocess.run([str(VENV_BIN / "python"), "-m", "ecs_emulator.podman_backend", "purge",
                            emulator.doc["state_id"]], capture_output=True, check=False)


def _measure(emulator: Emulator, work: Path, rounds: int, rng: random.Random) -> dict:
    iid, address, private = _instance(emulator, work)
    (work / "play.yml").write_text(PLAY, encoding="utf-8")
    (work / "ssh.yml").write_text(json.dumps({"all": {"hosts": {"box": {
        "ansible_host": address, "ansible_user": "root", "ansible_ssh_private_key_file": str(private),
        "ansible_python_interpreter": "/usr/bin/python3", "ansible_pipelining": True,
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}}}}),
        encoding="utf-8")
    (work / "cloud_assistant.yml").write_text(json.dumps({"all": {"hosts": {"box": {
        "ansible_host": iid, "ansible_connection": "sshkeys.ecs.cloud_assistant",
        "ansible_python_interpreter": "/usr/bin/python3", "ansible_pipelining": True}}}}), encoding="utf-8")
    env = ansible_env(**emulator.env())
    times = {"ssh": [], "cloud_assistant": []}
    calls = []
    for index in range(rounds):
        for way in ("ssh", "cloud_assistant"):
            key = random_key(rng, f"bench-{way}-{index}")
            (work / "vars.json").write_text(json.dumps({"new_key": key}), encoding="utf-8")
            before = len(emulator.actions())
            times[way].append(_run(work, way, env))
            if way == "cloud_assistant":
                calls.append(dict(collections.Counter(emulator.actions()[before:])))
    log(f"cloud_assistant: ssh {median(times['ssh']):.2f} s, cloud assistant {median(times['cloud_assistant']):.2f} s")
    return {"rounds": rounds, "ssh": times["ssh"], "cloud_assistant": times["cloud_assistant"], "calls": calls}


def _run(work: Path, way: str, env: dict) -> float:
    """One timed run of the play with the key of vars.json; a run that fails or changes nothing stops it."""
    started = time.monotonic()
    done = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(work / f"{way}.yml"), "-e",
                           f"@{work / 'vars.json'}", str(work / "play.yml")],
                          env=env, text=True, capture_output=True, check=False, cwd=work)
    elapsed = time.monotonic() - started
    if done.returncode != 0 or "changed=1" not in done.stdout:
        raise SystemExit(f"the {way} run failed or changed nothing:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(measure(parser.parse_args().quick), indent=2))


if __name__ == "__main__":
    main()

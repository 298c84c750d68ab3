"""Per-task cost of a no-change ecs_keypair task, and the API calls bulk work needs.

1. Per-task cost, side by side in one ansible-playbook run on localhost: tasks rotate between
   ansible.builtin.ping, an sshkeys.ecs.ecs_keypair task that finds its key pair as wanted (on
   the ECS emulator), the same task assuming a role first (STS on the emulator: the RamRoleArn
   case) and an amazon.aws.ec2_key task that finds its key pair as wanted (on
   moto_server, a local EC2 endpoint). Every task runs with the same interpreter. A small
   callback records each task's wall time; medians and ratios to ping are reported
   (goal: ecs_keypair at most 1.3x ping).
2. API economy: N key pairs listed (ecs_keypair_info's code), deleted (ecs_keypair
   state=absent with names, one task for all of them) and one key pair attached
   to N instances (ecs_keypair_attach's code), against the emulator; the requests are counted
   by action in the emulator's request log and set against the fewest the API allows
   (ceil(N/50) DescribeKeyPairs pages, ceil(N/100) DeleteKeyPairs, ceil(N/50) AttachKeyPair).

This is a measurement, not a test: it only checks that the measured tasks did what they were
meant to (else the numbers would mean nothing).

    .venv-bench/bin/python benchmarks/ecs_keypair_task.py [--quick]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import VENV_BIN, Emulator, ansible_env, free_port, log, median, module_utils, ssh_keygen, wait_for

CALLBACK = '''
from __future__ import annotations
import json
import os
import time
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.started = {}
        self.rows = []

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.started[task._uuid] = time.perf_counter()

    def v2_runner_on_ok(self, result):
        task = result._task
        self.rows.append({"name": task.get_name(), "seconds": time.perf_counter() - self.started[task._uuid],
                          "changed": bool(result._result.get("changed"))})

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["TASK_TIMER_OUT"], "w", encoding="utf-8") as handle:
            json.dump(self.rows, handle)
'''

MOTO_KEY = ("testing", "testing")  # moto takes any credentials


class Moto:
    """moto_server (from the benchmark venv) on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1",
                                      "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def answers() -> bool:
            try:
                self.ec2().describe_regions()
                return True
            except Exception:  # not up yet, whatever the reason
                return False
        wait_for(answers, "moto_server", 60)

    def ec2(self):
        import boto3  # benchmark venv only
        return boto3.client("ec2", region_name="us-east-1", endpoint_url=self.url,
                            aws_access_key_id=MOTO_KEY[0], aws_secret_access_key=MOTO_KEY[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


def task_costs(rounds: int) -> dict:
    """Medians of ping, no-change ecs_keypair and no-change ec2_key tasks in one playbook."""
    with tempfile.TemporaryDirectory(prefix="sshkeys-bench-task.") as tmp, Emulator(log=False) as emulator:
        work = Path(tmp)
        public = ssh_keygen(work / "key", "rsa").with_suffix(".pub").read_text(encoding="utf-8").strip()
        emulator.client().call("ImportKeyPair", {"KeyPairName": "bench-nochange", "PublicKeyBody": public})
        role_arn = f"acs:ram::{emulator.doc['accounts'][0]['uid']}:role/bench"
        moto = Moto()
        try:
            moto.ec2().import_key_pair(KeyName="bench-nochange", PublicKeyMaterial=public.encode())
            (work / "callback_plugins").mkdir()
            (work / "callback_plugins" / "task_timer.py").write_text(CALLBACK, encoding="utf-8")
            tasks = []
            # round -1 is a warm-up (first imports, caches): timed like the rest but not counted
            for index in range(-1, rounds):
                tasks.append({"name": f"ping {index}", "ansible.builtin.ping": {}})
                tasks.append({"name": f"ecs_keypair {index}",
                              "sshkeys.ecs.ecs_keypair": {"name": "bench-nochange", "public_key": public}})
                # The same task with a role assumed on top of the AccessKey (one STS AssumeRole
                # call on the emulator per task, as in a RamRoleArn profile).
                tasks.append({"name": f"ecs_keypair_role {index}",
                              "sshkeys.ecs.ecs_keypair": {"name": "bench-nochange", "public_key": public,
                                                          "alicloud_assume_role_arn": role_arn,
                                                          "alicloud_sts_endpoint": emulator.endpoint}})
                tasks.append({"name": f"ec2_key {index}",
                              "amazon.aws.ec2_key": {"name": "bench-nochange", "key_material": public,
                                                     "region": "us-east-1", "endpoint_url": moto.url,
                                                     "access_key": MOTO_KEY[0], "secret_key": MOTO_KEY[1]}})
            play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
                     # one interpreter for all three: the benchmark venv, which has boto3 for ec2_key
                     "vars": {"ansible_python_interpreter": sys.executable}, "tasks": tasks}]
            (work / "play.yml").write_text(json.dumps(play), encoding="utf-8")
            out = work / "times.json"
            env = ansible_env(ANSIBLE_CALLBACK_PLUGINS=str(work / "callback_plugins"),
                              ANSIBLE_CALLBACKS_ENABLED="task_timer", TASK_TIMER_OUT=str(out),
                              ANSIBLE_STDOUT_CALLBACK="default", **emulator.env())
            done = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(work / "play.yml")],
                                  env=env, check=False, text=True, capture_output=True)
            if done.returncode != 0:
                raise SystemExit(f"per-task playbook failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
            rows = json.loads(out.read_text(encoding="utf-8"))
        finally:
            moto.stop()
    times = {}
    for kind in ("ping", "ecs_keypair", "ecs_keypair_role", "ec2_key"):
        mine = [row for row in rows if row["name"].split()[0] == kind and not row["name"].endswith(" -1")]
        if len(mine) != rounds or any(row["changed"] for row in mine):
            raise SystemExit(f"the {kind} tasks did not all run unchanged; the measurement is void")
        times[kind] = [row["seconds"] for row in mine]
    medians = {kind: median(values) for kind, values in times.items()}
    return {"rounds": rounds, "samples_s": times, "median_s": medians,
            "ratio_to_ping": {kind: medians[kind] / medians["ping"] for kind in medians}}


def _import(client, names: list, public: str) -> None:
    for name in names:
        client.call("ImportKeyPair", {"KeyPairName": name, "PublicKeyBody": public})


def _counted(emulator: Emulator, work, *args) -> collections.Counter:
    """Requests by action that work(*args) makes, from the emulator's request log."""
    before = len(emulator.actions())
    work(*args)
    return collections.Counter(emulator.actions()[before:])


def _list(emulator: Emulator, pattern: str, size: int) -> None:
    found = module_utils("_keypair_info").list_key_pairs(emulator.client(), names=[pattern], include_public_key=True)
    if len(found) != size:
        raise SystemExit(f"listing found {len(found)} key pairs, not {size}")


def _delete(emulator: Emulator, names: list) -> None:
    result = module_utils("_keypair_delete").ensure_absent_many(emulator.client(), names)
    if result["deleted"] != names:
        raise SystemExit(f"the bulk delete deleted {len(result['deleted'])} of {len(names)} key pairs")


def _attach(emulator: Emulator, name: str, instance_ids: list) -> None:
    attach = module_utils("_attach")
    attach.run(emulator.client(), attach.AttachJob(key_pair_name=name, instance_ids=instance_ids, wait_timeout=300),
               False)


def _figure(calls: collections.Counter, action: str, minimum: int) -> dict:
    return {"calls": dict(calls), "main": calls[action], "total": sum(calls.values()), "minimum": minimum}


def api_economy(sizes: list) -> list:
    """Calls to list, delete and attach N, by action, next to the fewest the API allows."""
    rows = []
    # Virtual instances are rows only: nothing listens on their addresses, but each takes one from
    # the pool, and 500 need more than the benchmarks' own /24 holds.
    with tempfile.TemporaryDirectory(prefix="sshkeys-bench-api.") as tmp, \
            Emulator("--address-pool", "127.0.16.0/23", "--instances", "virtual") as emulator:
        setup = emulator.client()
        public = ssh_keygen(Path(tmp) / "key").with_suffix(".pub").read_text(encoding="utf-8").strip()
        instance_ids: list = []
        while len(instance_ids) < max(sizes):
            reply = setup.call("RunInstances", {"ImageId": "debian_12_bench", "InstanceType": "ecs.t6-c1m1.large",
                                                "Amount": str(min(100, max(sizes) - len(instance_ids)))})
            instance_ids += reply["InstanceIdSets"]["InstanceIdSet"]
        for size in sizes:
            # listing and deleting first, for every N: 500 key pairs is the region's whole quota
            names = [f"bulk-{size}-{index:04d}" for index in range(size)]
            _import(setup, names, public)
            listed = _counted(emulator, _list, emulator, f"bulk-{size}-*", size)
            deleted = _counted(emulator, _delete, emulator, names)
            if module_utils("_keypair_info").list_key_pairs(setup, names=[f"bulk-{size}-*"]):
                raise SystemExit("deleting left key pairs behind")
            rows.append({"n": size, "list": _figure(listed, "DescribeKeyPairs", math.ceil(size / 50)),
                         "delete": _figure(deleted, "DeleteKeyPairs", math.ceil(size / 100))})
        for row in rows:
            size = row["n"]
            attach_name = f"bench-attach-{size}"
            _import(setup, [attach_name], public)
            attached = _counted(emulator, _attach, emulator, attach_name, instance_ids[:size])
            holding = module_utils("_ecs_api").instances_holding(setup, attach_name)
            if len(holding) != size:
                raise SystemExit(f"attach left {len(holding)} of {size} instances with the key pair")
            row["attach"] = _figure(attached, "AttachKeyPair", math.ceil(size / 50))
            log(f"  N={size}: list {row['list']['calls']}, delete {row['delete']['calls']}, attach {dict(attached)}")
    return rows


def measure_tasks(quick: bool) -> dict:
    return task_costs(3 if quick else 12)


def measure_api(quick: bool) -> list:
    return api_economy([10] if quick else [10, 100, 500])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds, small N")
    quick = parser.parse_args().quick
    print(json.dumps({"tasks": measure_tasks(quick), "api": measure_api(quick)}, indent=2))


if __name__ == "__main__":
    main()

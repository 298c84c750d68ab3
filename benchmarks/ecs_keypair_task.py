"""A no-change sshkeys.ecs.ecs_keypair task against ansible.builtin.ping, and API calls for bulk reads.

1. Side by side in one ansible-playbook run on localhost: tasks alternate between
   ansible.builtin.ping and an ecs_keypair task that finds its key pair as wanted (an import of
   the same public key). A small callback records each task's wall time; the medians and their
   ratio are printed (goal: ecs_keypair at most 1.3x ping).
2. API calls: 500 key pairs are imported, then listed through ecs_keypair_info's code path, and
   the requests are counted by the client and by the emulator's request log (goal: 10, that is
   ceil(500/50)). Deleting them counts DeleteKeyPairs calls (goal: 5, ceil(500/100)).

Runs against the ECS emulator: started through tools/with-emulator.sh unless
ALIBABA_CLOUD_ECS_ENDPOINT is set already. This is a measurement, not a test: it asserts only
that the measured tasks did what they were meant to (else the numbers would mean nothing).

    .venv/bin/python benchmarks/ecs_keypair_task.py [--rounds 15] [--keys 500]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
COLLECTIONS = ROOT / ".cache" / "collections"
sys.path.insert(0, str(COLLECTIONS))

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


def under_emulator() -> None:
    """Re-run this script inside tools/with-emulator.sh when no endpoint is configured."""
    if os.environ.get("ALIBABA_CLOUD_ECS_ENDPOINT"):
        return
    command = [str(ROOT / "tools" / "with-emulator.sh"), "--", sys.executable, __file__] + sys.argv[1:]
    sys.exit(subprocess.call(command))


def client():
    from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import Credentials, EcsClient
    return EcsClient(Credentials(os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]),
                     os.environ["ALIBABA_CLOUD_REGION_ID"], os.environ["ALIBABA_CLOUD_ECS_ENDPOINT"])


def public_key_line() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def logged_actions() -> list:
    path = os.environ.get("ECS_EMULATOR_LOG")
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line).get("action") for line in handle if line.strip()]


def bulk_calls(count: int) -> dict:
    from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import json_list
    from ansible_collections.sshkeys.ecs.plugins.module_utils._keypair import list_key_pairs
    api = client()
    line = public_key_line()
    names = [f"bulk-{index:04d}" for index in range(count)]
    for name in names:
        api.call("ImportKeyPair", {"KeyPairName": name, "PublicKeyBody": line})
    reader = client()
    before = logged_actions().count("DescribeKeyPairs")
    found = list_key_pairs(reader, {"names": ["bulk-*"], "include_public_key": True})
    logged = logged_actions().count("DescribeKeyPairs") - before
    if len(found) != count:
        raise SystemExit(f"listing found {len(found)} key pairs, not {count}")
    deleter = client()
    for start in range(0, count, 100):
        deleter.call("DeleteKeyPairs", {"KeyPairNames": json_list(names[start:start + 100])})
    return {"listed": len(found), "list_calls_client": reader.calls, "list_calls_server_log": logged,
            "delete_calls": deleter.calls}


def task_ratio(rounds: int) -> dict:
    line = public_key_line()
    api = client()
    api.call("ImportKeyPair", {"KeyPairName": "bench-nochange", "PublicKeyBody": line})
    with tempfile.TemporaryDirectory() as work:
        Path(work, "callback_plugins").mkdir()
        Path(work, "callback_plugins", "task_timer.py").write_text(CALLBACK, encoding="utf-8")
        tasks = []
        for index in range(rounds):
            tasks.append({"name": f"ping {index}", "ansible.builtin.ping": {}})
            tasks.append({"name": f"ecs_keypair {index}",
                          "sshkeys.ecs.ecs_keypair": {"name": "bench-nochange", "public_key": line}})
        playbook = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
                     "vars": {"ansible_python_interpreter": str(VENV / "bin" / "python")}, "tasks": tasks}]
        Path(work, "play.yml").write_text(json.dumps(playbook), encoding="utf-8")
        out = Path(work, "times.json")
        env = dict(os.environ, ANSIBLE_CALLBACK_PLUGINS=str(Path(work, "callback_plugins")),
                   ANSIBLE_CALLBACKS_ENABLED="task_timer", TASK_TIMER_OUT=str(out),
                   ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_STDOUT_CALLBACK="default")
        subprocess.run([str(VENV / "bin" / "ansible-playbook"), "-i", "localhost,", str(Path(work, "play.yml"))],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        rows = json.loads(out.read_text(encoding="utf-8"))
    pings = [r["seconds"] for r in rows if r["name"].startswith("ping")]
    keypairs = [r for r in rows if r["name"].startswith("ecs_keypair")]
    if len(keypairs) != rounds or any(r["changed"] for r in keypairs):
        raise SystemExit("the ecs_keypair tasks did not all run unchanged; the measurement is void")
    ping_median = statistics.median(pings)
    keypair_median = statistics.median(r["seconds"] for r in keypairs)
    api.call("DeleteKeyPairs", {"KeyPairNames": '["bench-nochange"]'})
    return {"rounds": rounds, "ping_median_s": round(ping_median, 3), "ecs_keypair_median_s": round(keypair_median, 3),
            "ratio": round(keypair_median / ping_median, 2), "goal_ratio": 1.3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--keys", type=int, default=500)
    args = parser.parse_args()
    under_emulator()
    started = time.monotonic()
    report = {"api_calls": bulk_calls(args.keys), "task": task_ratio(args.rounds)}
    report["api_calls"]["goal_list_calls"] = -(-args.keys // 50)
    report["api_calls"]["goal_delete_calls"] = -(-args.keys // 100)
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

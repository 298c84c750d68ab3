# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instances for the ecs_keypair_attach targets, made and read through the official ECS SDK.

usage: ecs_fleet.py run linux|windows AMOUNT  -> JSON list of new instance ids
       ecs_fleet.py stop ID... | start ID...  -> JSON {"done": [...]}
       ecs_fleet.py wait STATUS ID...         -> waits (180 s at most) until every id has STATUS
       ecs_fleet.py show ID...                -> JSON {id: {key_pair_name, status, os_type, public_ip}}
       ecs_fleet.py delete ID...              -> force-deletes, then waits until the backend is idle
       ecs_fleet.py calls ACTION              -> JSON {"calls": N} requests of ACTION in the request log
       ecs_fleet.py purge                     -> removes the podman containers of this emulator state
Credentials and endpoint come from the variables tools/with-emulator.sh exports; the request log
and the admin API are the emulator's own (independent of the module under test).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from urllib.parse import urlsplit

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
os.environ.setdefault("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")

from alibabacloud_ecs20140526 import models  # noqa: E402  pylint: disable=wrong-import-position
from alibabacloud_ecs20140526.client import Client  # noqa: E402  pylint: disable=wrong-import-position
from alibabacloud_tea_openapi.models import Config  # noqa: E402  pylint: disable=wrong-import-position


def client() -> Client:
    endpoint = urlsplit(os.environ["ALIBABA_CLOUD_ECS_ENDPOINT"])
    return Client(Config(access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
                         access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
                         endpoint=endpoint.netloc, protocol=endpoint.scheme,
                         region_id=os.environ["ALIBABA_CLOUD_REGION_ID"]))


def region() -> str:
    return os.environ["ALIBABA_CLOUD_REGION_ID"]


def admin(path: str) -> dict:
    request = urllib.request.Request(os.environ["ALIBABA_CLOUD_ECS_ENDPOINT"] + path, method="POST", data=b"",
                                     headers={"X-Admin-Token": os.environ["ECS_EMULATOR_ADMIN_TOKEN"]})
    with urllib.request.urlopen(request, timeout=90) as reply:  # nosec - loopback emulator only
        return json.load(reply)


def show(ids: list) -> dict:
    api = client()
    out = {}
    for start in range(0, len(ids), 100):
        reply = api.describe_instances(models.DescribeInstancesRequest(
            region_id=region(), instance_ids=json.dumps(ids[start:start + 100]), page_size=100))
        for item in reply.body.instances.instance or []:
            ips = item.public_ip_address.ip_address if item.public_ip_address else []
            out[item.instance_id] = {"key_pair_name": item.key_pair_name or "", "status": item.status,
                                     "os_type": item.ostype, "public_ip": ips[0] if ips else None}
    return out


def run(kind: str, amount: int) -> list:
    image = "win2022_datacenter" if kind == "windows" else "debian_12_x64"
    ids: list = []
    while len(ids) < amount:
        batch = min(100, amount - len(ids))
        reply = client().run_instances(models.RunInstancesRequest(
            region_id=region(), image_id=image, instance_type="ecs.t6-c1m1.large", amount=batch))
        ids.extend(reply.body.instance_id_sets.instance_id_set)
    return ids


def wait(status: str, ids: list) -> dict:
    deadline = time.monotonic() + 180
    while True:
        found = show(ids)
        if all(found.get(i, {}).get("status") == status for i in ids):
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"not {status} within 180 s: {json.dumps(found)}")
        time.sleep(0.5)


def main(argv: list) -> int:
    command, args = argv[1], argv[2:]
    if command == "run":
        result: object = run(args[0], int(args[1]))
    elif command in ("stop", "start"):
        for instance_id in args:
            if command == "stop":
                client().stop_instance(models.StopInstanceRequest(instance_id=instance_id))
            else:
                client().start_instance(models.StartInstanceRequest(instance_id=instance_id))
        result = {"done": args}
    elif command == "wait":
        result = wait(args[0], args[1:])
    elif command == "show":
        result = show(args)
    elif command == "delete":
        for start in range(0, len(args), 100):
            client().delete_instances(models.DeleteInstancesRequest(
                region_id=region(), instance_id=args[start:start + 100], force=True))
        admin("/_admin/wait-idle")
        result = {"deleted": len(args)}
    elif command == "calls":
        admin("/_admin/flush-log")
        with open(os.environ["ECS_EMULATOR_LOG"], encoding="utf-8") as handle:
            lines = [json.loads(line) for line in handle if line.strip().startswith("{")]
        result = {"calls": sum(1 for line in lines if line.get("action") == args[0])}
    elif command == "purge":
        from ecs_emulator.podman_backend import purge_state  # pylint: disable=import-outside-toplevel
        with open(os.environ["ECS_EMULATOR_READY_FILE"], encoding="utf-8") as handle:
            state_id = json.load(handle)["state_id"]
        result = {"removed": purge_state(state_id)}
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

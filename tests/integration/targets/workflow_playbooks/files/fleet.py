# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instances and independent readings for the workflow_playbooks target, through the official SDK.

usage: fleet.py run AMOUNT            -> prints the new Linux instance ids, one a line
       fleet.py wait STATUS ID...     -> waits (180 s at most) until every id has STATUS
       fleet.py field FIELD ID        -> prints one field of an instance (key_pair_name, status,
                                         public_ip)
       fleet.py keypairs              -> prints the key pair names of the region, one a line
       fleet.py public_key NAME       -> prints the public key the API holds for key pair NAME
       fleet.py delete ID...          -> force-deletes the instances, waits until the backend is idle
       fleet.py purge                 -> removes every podman container of this emulator state
Endpoint and credentials come from the variables tools/with-emulator.sh exports.
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

REGION = os.environ.get("ALIBABA_CLOUD_REGION_ID", "cn-hangzhou")


def api() -> Client:
    endpoint = urlsplit(os.environ["ALIBABA_CLOUD_ECS_ENDPOINT"])
    return Client(Config(access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
                         access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
                         endpoint=endpoint.netloc, protocol=endpoint.scheme, region_id=REGION))


def describe(ids: list) -> dict:
    reply = api().describe_instances(models.DescribeInstancesRequest(
        region_id=REGION, instance_ids=json.dumps(ids), page_size=100))
    found = {}
    for item in reply.body.instances.instance or []:
        ips = item.public_ip_address.ip_address if item.public_ip_address else []
        found[item.instance_id] = {"key_pair_name": item.key_pair_name or "", "status": item.status,
                                   "public_ip": ips[0] if ips else ""}
    return found


def key_pairs() -> list:
    names, page = [], 1
    while True:
        reply = api().describe_key_pairs(models.DescribeKeyPairsRequest(
            region_id=REGION, page_number=page, page_size=50))
        items = reply.body.key_pairs.key_pair or []
        names.extend(item.key_pair_name for item in items)
        if len(items) < 50:
            return sorted(names)
        page += 1


def public_key(name: str) -> str:
    reply = api().describe_key_pairs(models.DescribeKeyPairsRequest(
        region_id=REGION, key_pair_name=name, include_public_key=True))
    items = reply.body.key_pairs.key_pair or []
    return items[0].public_key if items else ""


def admin(path: str) -> None:
    request = urllib.request.Request(os.environ["ALIBABA_CLOUD_ECS_ENDPOINT"] + path, method="POST", data=b"",
                                     headers={"X-Admin-Token": os.environ["ECS_EMULATOR_ADMIN_TOKEN"]})
    with urllib.request.urlopen(request, timeout=120):  # nosec - loopback emulator only
        pass


def wait(status: str, ids: list) -> None:
    deadline = time.monotonic() + 180
    while True:
        found = describe(ids)
        if all(found.get(i, {}).get("status") == status for i in ids):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"not {status} within 180 s: {json.dumps(found)}")
        time.sleep(0.5)


def main(argv: list) -> int:
    command, args = argv[1], argv[2:]
    if command == "run":
        reply = api().run_instances(models.RunInstancesRequest(
            region_id=REGION, image_id="debian_12_x64", instance_type="ecs.t6-c1m1.large", amount=int(args[0])))
        print("\n".join(reply.body.instance_id_sets.instance_id_set))
    elif command == "wait":
        wait(args[0], args[1:])
    elif command == "field":
        print(describe([args[1]])[args[1]][args[0]])
    elif command == "keypairs":
        print("\n".join(key_pairs()))
    elif command == "public_key":
        print(public_key(args[0]))
    elif command == "delete":
        api().delete_instances(models.DeleteInstancesRequest(region_id=REGION, instance_id=args, force=True))
        admin("/_admin/wait-idle")
    elif command == "purge":
        from ecs_emulator.podman_backend import purge_state  # pylint: disable=import-outside-toplevel
        with open(os.environ["ECS_EMULATOR_READY_FILE"], encoding="utf-8") as handle:
            purge_state(json.load(handle)["state_id"])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The independent reading for integration tests: the official ECS SDK talks to the endpoint.

usage: sdk_read.py describe NAME          -> JSON list of key pairs named NAME (with public keys)
       sdk_read.py count                  -> JSON {"total": N} key pairs in the region
       sdk_read.py run-instance [KEYPAIR] -> JSON {"instance_id": ...}
       sdk_read.py instance ID            -> JSON of the instance (KeyPairName, Status)
       sdk_read.py delete-instance ID
       sdk_read.py import-many PREFIX COUNT PUBFILE  -> PREFIX-000 ... imported, even ones tagged half=even
       sdk_read.py delete-prefix PREFIX   -> deletes every key pair named PREFIX*
Credentials and endpoint come from the ALIBABA_CLOUD_* variables the emulator wrapper exports;
the SDK set-up is shared with the other targets (setup_ecs_sdk/files/ecs_sdk.py).
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "setup_ecs_sdk", "files"))
from ecs_sdk import client, models, region, run_instances  # noqa: E402  pylint: disable=wrong-import-position,import-error


def describe(name: str) -> list:
    reply = client().describe_key_pairs(models.DescribeKeyPairsRequest(
        region_id=region(), key_pair_name=name, include_public_key=True, page_size=50))
    out = []
    for item in reply.body.key_pairs.key_pair or []:
        tags = {t.tag_key: t.tag_value for t in (item.tags.tag if item.tags and item.tags.tag else [])}
        out.append({"name": item.key_pair_name, "public_key": item.public_key,
                    "fingerprint": item.key_pair_finger_print, "resource_group_id": item.resource_group_id,
                    "creation_time": item.creation_time, "tags": tags})
    return out


def main(argv: list) -> int:
    command = argv[1]
    if command == "describe":
        result: object = describe(argv[2])
    elif command == "count":
        reply = client().describe_key_pairs(models.DescribeKeyPairsRequest(region_id=region(), page_size=1))
        result = {"total": reply.body.total_count}
    elif command == "run-instance":
        [instance_id] = run_instances("linux", 1, key_pair_name=argv[2] if len(argv) > 2 else None)
        result = {"instance_id": instance_id}
    elif command == "instance":
        reply = client().describe_instances(models.DescribeInstancesRequest(
            region_id=region(), instance_ids=json.dumps([argv[2]])))
        item = reply.body.instances.instance[0]
        result = {"instance_id": item.instance_id, "key_pair_name": item.key_pair_name or "", "status": item.status}
    elif command == "import-many":
        prefix, count = argv[2], int(argv[3])
        with open(argv[4], encoding="utf-8") as handle:
            body = handle.read().strip()
        api = client()
        for index in range(count):
            tags = [models.ImportKeyPairRequestTag(key="half", value="even")] if index % 2 == 0 else None
            api.import_key_pair(models.ImportKeyPairRequest(region_id=region(), key_pair_name=f"{prefix}-{index:03d}",
                                                            public_key_body=body, tag=tags))
        result = {"imported": count}
    elif command == "delete-prefix":
        api = client()
        names = []
        page = 1
        while True:
            reply = api.describe_key_pairs(models.DescribeKeyPairsRequest(
                region_id=region(), key_pair_name=argv[2] + "*", page_size=50, page_number=page))
            found = [item.key_pair_name for item in reply.body.key_pairs.key_pair or []]
            names.extend(found)
            if len(found) < 50:
                break
            page += 1
        for start in range(0, len(names), 100):
            api.delete_key_pairs(models.DeleteKeyPairsRequest(region_id=region(),
                                                              key_pair_names=json.dumps(names[start:start + 100])))
        result = {"deleted": len(names)}
    elif command == "delete-instance":
        client().delete_instance(models.DeleteInstanceRequest(instance_id=argv[2], force=True))
        result = {"deleted": argv[2]}
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

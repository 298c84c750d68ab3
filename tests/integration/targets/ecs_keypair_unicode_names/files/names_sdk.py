# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The official ECS SDK's reading of key pairs and instances, for the ecs_keypair_unicode_names target.

usage: names_sdk.py run              -> JSON [id] of one new Linux instance, once it runs
       names_sdk.py holder ID        -> JSON {"key_pair_name": ...} of the instance
       names_sdk.py names NAME       -> JSON [names] DescribeKeyPairs lists for NAME (exact or pattern)
       names_sdk.py delete ID        -> force-deletes the instance
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "setup_ecs_sdk", "files"))
import ecs_sdk  # noqa: E402  pylint: disable=wrong-import-position,import-error


def main(argv: list) -> int:
    command, args = argv[1], argv[2:]
    if command == "run":
        ids = ecs_sdk.run_instances("linux", 1)
        ecs_sdk.wait("Running", ids)
        result: object = ids
    elif command == "holder":
        result = {"key_pair_name": ecs_sdk.show(args)[args[0]]["key_pair_name"]}
    elif command == "names":
        reply = ecs_sdk.client().describe_key_pairs(ecs_sdk.models.DescribeKeyPairsRequest(
            region_id=ecs_sdk.region(), key_pair_name=args[0], page_size=50))
        result = [item.key_pair_name for item in reply.body.key_pairs.key_pair]
    elif command == "delete":
        result = {"deleted": ecs_sdk.delete_instances(args)}
    else:
        raise SystemExit(__doc__)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

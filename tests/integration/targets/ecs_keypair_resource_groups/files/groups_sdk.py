# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What DescribeKeyPairs answers for a resource group, read with the official ECS SDK.

usage: groups_sdk.py GROUP  -> JSON {name: resource group} of the key pairs the API lists
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "setup_ecs_sdk", "files"))
import ecs_sdk  # noqa: E402  pylint: disable=wrong-import-position,import-error


def main(argv: list) -> int:
    reply = ecs_sdk.client().describe_key_pairs(ecs_sdk.models.DescribeKeyPairsRequest(
        region_id=ecs_sdk.region(), resource_group_id=argv[1], page_size=50))
    print(json.dumps({item.key_pair_name: item.resource_group_id for item in reply.body.key_pairs.key_pair}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prints, one a line, every secret value an output must not show: the STS credentials the
emulator issued (its admin API) and the permanent secrets of its accounts (its ready file).

usage: sts_secrets.py [--roles]   (--roles: the role ARNs instead; environment: ALIBABA_CLOUD_ECS_ENDPOINT, ECS_EMULATOR_ADMIN_TOKEN,
ECS_EMULATOR_READY_FILE, as tools/with-emulator.sh exports them)
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request


def main() -> int:
    request = urllib.request.Request(os.environ["ALIBABA_CLOUD_ECS_ENDPOINT"] + "/_admin/sts/credentials",
                                     headers={"X-Admin-Token": os.environ["ECS_EMULATOR_ADMIN_TOKEN"]})
    with urllib.request.urlopen(request, timeout=30) as reply:
        issued = json.load(reply)["Credentials"]
    with open(os.environ["ECS_EMULATOR_READY_FILE"], encoding="utf-8") as handle:
        accounts = json.load(handle)["accounts"]
    if sys.argv[1:] == ["--roles"]:
        print("\n".join(c["RoleArn"] for c in issued))
        return 0
    values = [c[name] for c in issued for name in ("AccessKeyId", "AccessKeySecret", "SecurityToken")]
    values += [k["secret"] for a in accounts for k in a["access_keys"]]
    print("\n".join(values))
    return 0 if issued else 1


if __name__ == "__main__":
    sys.exit(main())

# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instances for the ecs_keypair_attach targets, made and read through the official ECS SDK.

usage: ecs_fleet.py run linux|windows AMOUNT  -> JSON list of new instance ids
       ecs_fleet.py stop ID... | start ID...  -> JSON {"done": [...]}
       ecs_fleet.py wait STATUS ID...         -> waits (180 s at most) until every id has STATUS
       ecs_fleet.py show ID...                -> JSON {id: {key_pair_name, status, os_type, public_ip, ...}}
       ecs_fleet.py delete ID...              -> force-deletes, then waits until the backend is idle
       ecs_fleet.py calls ACTION              -> JSON {"calls": N} requests of ACTION in the request log
       ecs_fleet.py purge                     -> removes the podman containers of this emulator state
Credentials and endpoint come from the variables tools/with-emulator.sh exports; the SDK set-up
and the instance helpers are shared with the other targets (setup_ecs_sdk/files/ecs_sdk.py); the
request log and the admin API are the emulator's own (independent of the module under test).
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
        result: object = ecs_sdk.run_instances(args[0], int(args[1]))
    elif command in ("stop", "start"):
        for instance_id in args:
            if command == "stop":
                ecs_sdk.client().stop_instance(ecs_sdk.models.StopInstanceRequest(instance_id=instance_id))
            else:
                ecs_sdk.client().start_instance(ecs_sdk.models.StartInstanceRequest(instance_id=instance_id))
        result = {"done": args}
    elif command == "wait":
        result = ecs_sdk.wait(args[0], args[1:])
    elif command == "show":
        result = ecs_sdk.show(args)
    elif command == "delete":
        result = {"deleted": ecs_sdk.delete_instances(args)}
    elif command == "calls":
        ecs_sdk.admin("/_admin/flush-log")
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

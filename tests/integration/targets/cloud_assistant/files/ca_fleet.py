# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cloud_assistant target's view of the endpoint, through the official SDK and the admin API.

usage: ca_fleet.py make WORK          -> WORK/fleet.json: a Linux, a stopped Linux and a Windows instance
       ca_fleet.py open IID           -> opens the instance's SSH port to the controller
       ca_fleet.py agent IID true|false -> starts or stops the instance's Cloud Assistant agent
       ca_fleet.py mark               -> prints the request log's current line count
       ca_fleet.py calls MARK         -> the ECS actions logged since MARK, as {action: count}
       ca_fleet.py contents SECRET..  -> fails if any command sent holds one of the values
       ca_fleet.py faults add JSON | clear
       ca_fleet.py cleanup WORK
"""

from __future__ import annotations

import base64
import collections
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "setup_ecs_sdk", "files"))
import ecs_sdk  # noqa: E402  pylint: disable=wrong-import-position


def make(work: str) -> dict:
    linux, stopped = ecs_sdk.run_instances("linux", 2, name="ca-linux")
    windows = ecs_sdk.run_instances("windows", 1, name="ca-windows")[0]
    ecs_sdk.wait("Running", [linux, stopped, windows])
    ecs_sdk.client().stop_instance(ecs_sdk.models.StopInstanceRequest(instance_id=stopped))
    ecs_sdk.wait("Stopped", [stopped])
    found = ecs_sdk.show([linux])
    fleet = {"linux": linux, "stopped": stopped, "windows": windows, "address": found[linux]["public_ip"]}
    with open(os.path.join(work, "fleet.json"), "w", encoding="utf-8") as handle:
        json.dump(fleet, handle)
    return fleet


def log_lines() -> list:
    ecs_sdk.admin("/_admin/flush-log")
    with open(os.environ["ECS_EMULATOR_LOG"], encoding="utf-8") as handle:
        return handle.read().splitlines()


def calls(mark: int) -> dict:
    counted = collections.Counter()
    for line in log_lines()[mark:]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("action"):
            counted[record["action"]] += 1
    return dict(sorted(counted.items()))


def readable(text: str) -> str:
    """The text and every Base64 literal in it decoded (the connection wraps commands and stdin so)."""
    out = [text]
    for literal in re.findall(r"'([A-Za-z0-9+/]{8,}={0,2})'", text):
        try:
            out.append(base64.b64decode(literal).decode("utf-8", "replace"))
        except ValueError:
            pass
    return "\n".join(out)


def contents(secrets: list) -> dict:
    """No command the account sent nor its output (DescribeInvocations, plain text) holds a secret."""
    api = ecs_sdk.client()
    token, checked = None, 0
    while True:
        reply = api.describe_invocations(ecs_sdk.models.DescribeInvocationsRequest(
            region_id=ecs_sdk.region(), max_results=50, next_token=token, content_encoding="PlainText",
            include_output=True))
        for invocation in reply.body.invocations.invocation or []:
            texts = [readable(invocation.command_content or "")]
            texts += [i.output or "" for i in invocation.invoke_instances.invoke_instance or []]
            checked += 1
            for secret in secrets:
                if any(secret in text for text in texts):
                    raise SystemExit(f"invocation {invocation.invoke_id} holds a secret")
        token = reply.body.next_token
        if not token:
            return {"checked": checked}


def main(argv: list) -> int:
    command, args = argv[1], argv[2:]
    if command == "make":
        result = make(args[0])
    elif command == "open":
        result = ecs_sdk.admin("/_admin/ssh-access", {"InstanceId": args[0], "Open": True})
    elif command == "agent":
        result = ecs_sdk.admin("/_admin/cloud-assistant-agent", {"InstanceId": args[0], "Running": args[1] == "true"})
    elif command == "mark":
        print(len(log_lines()))
        return 0
    elif command == "calls":
        result = calls(int(args[0]))
    elif command == "contents":
        result = contents(args)
    elif command == "faults":
        result = (ecs_sdk.admin("/_admin/faults", json.loads(args[1])) if args[0] == "add"
                  else ecs_sdk.admin("/_admin/faults", method="DELETE"))
    elif command == "cleanup":
        with open(os.path.join(args[0], "fleet.json"), encoding="utf-8") as handle:
            fleet = json.load(handle)
        result = {"deleted": ecs_sdk.delete_instances([fleet["linux"], fleet["stopped"], fleet["windows"]])}
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

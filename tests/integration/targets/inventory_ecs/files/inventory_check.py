# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory_ecs target's fleet and its independent checks (official SDK, not the plugin).

usage: inventory_check.py make WORK             -> key pairs (private keys in WORK, 0600) and
                                                   instances in two regions; WORK/fleet.json
       inventory_check.py list LIST FLEET MODE  -> checks `ansible-inventory --list` output
                                                   (MODE all, web or cached-N) against DescribeInstances
       inventory_check.py delete FLEET NAME...  -> deletes these instances of the fleet
       inventory_check.py cleanup FLEET         -> deletes every instance of the fleet that is left
       inventory_check.py faults add JSON | clear | used-up   -> the emulator's fault rules
"""

from __future__ import annotations

import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "setup_ecs_sdk", "files"))
import ecs_sdk  # noqa: E402  pylint: disable=wrong-import-position,import-error

SECOND_REGION = "cn-shanghai"
WEB_KEY, DB_KEY = "inv-web.2024", "inv-db"
# name: (region, kind, key pair) of each instance the target runs.
FLEET = {
    "web-1": (None, "linux", WEB_KEY),
    "web-2": (None, "linux", WEB_KEY),
    "db-1": (None, "linux", DB_KEY),
    "win-1": (None, "windows", None),
    "sh-1": (SECOND_REGION, "linux", None),
}


def make(work: str) -> dict:
    for name in (WEB_KEY, DB_KEY):
        reply = ecs_sdk.client().create_key_pair(ecs_sdk.models.CreateKeyPairRequest(
            region_id=ecs_sdk.region(), key_pair_name=name))
        path = os.path.join(work, f"{name}.pem")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
            handle.write(reply.body.private_key_body)
    fleet = {}
    for name, (region, kind, key) in FLEET.items():
        [instance_id] = ecs_sdk.run_instances(kind, 1, region_id=region, key_pair_name=key, name=name)
        fleet[name] = {"id": instance_id, "region": region or ecs_sdk.region()}
    for region in {item["region"] for item in fleet.values()}:
        ecs_sdk.wait("Running", [i["id"] for i in fleet.values() if i["region"] == region], region)
    # One stopped instance: the status filter and the status_stopped group.
    ecs_sdk.client().stop_instance(ecs_sdk.models.StopInstanceRequest(instance_id=fleet["db-1"]["id"]))
    ecs_sdk.wait("Stopped", [fleet["db-1"]["id"]])
    with open(os.path.join(work, "fleet.json"), "w", encoding="utf-8") as handle:
        json.dump(fleet, handle)
    return fleet


def plain(value):
    """ansible-inventory --list of ansible-core 2.19 wraps strings as {"__ansible_unsafe": ...}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def groups_of(listing: dict) -> dict:
    """{host: set of groups} from the --list JSON (direct membership)."""
    out: dict = {}
    for group, body in listing.items():
        if group == "_meta" or not isinstance(body, dict):
            continue
        for host in body.get("hosts", []):
            out.setdefault(host, set()).add(group)
    return out


def safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"inventory check failed: {message}")


def check_list(listing_file: str, fleet_file: str, mode: str) -> dict:
    with open(listing_file, encoding="utf-8") as handle:
        listing = plain(json.load(handle))
    with open(fleet_file, encoding="utf-8") as handle:
        fleet = json.load(handle)
    hostvars = listing.get("_meta", {}).get("hostvars", {})
    membership = groups_of(listing)
    # The independent reading: what DescribeInstances says now, through the official SDK.
    truth = {}
    for region in {item["region"] for item in fleet.values()}:
        truth.update(ecs_sdk.show([i["id"] for i in fleet.values() if i["region"] == region], region))
    by_id = {item["id"]: name for name, item in fleet.items()}

    if mode == "web":
        # key_pair_names [WEB_KEY], statuses [running], hostnames [instance_name]
        expected = {name: fleet[name]["id"] for name in ("web-1", "web-2")}
    elif mode.startswith("cached-"):
        expected = {item["id"]: item["id"] for item in fleet.values()}
        check(len(hostvars) == int(mode.split("-")[1]), f"{len(hostvars)} hosts, expected {mode}")
        return {"hosts": sorted(hostvars)}
    else:
        expected = {item["id"]: item["id"] for item in fleet.values() if item["id"] in truth}
    check(sorted(hostvars) == sorted(expected), f"hosts {sorted(hostvars)}, expected {sorted(expected)}")

    for host, instance_id in expected.items():
        api = truth[instance_id]
        variables = hostvars[host]
        name = by_id[instance_id]
        wanted_groups = {f"keypair_{safe(api['key_pair_name'])}" if api["key_pair_name"] else "no_keypair",
                         f"status_{api['status'].lower()}", f"os_{api['os_type']}"}
        check(wanted_groups <= membership.get(host, set()),
              f"{name}: groups {sorted(membership.get(host, set()))} lack {sorted(wanted_groups)}")
        check(variables.get("ansible_host") == api["public_ip"],
              f"{name}: ansible_host {variables.get('ansible_host')} != public IP {api['public_ip']}")
        check(variables.get("ecs_public_ip") == api["public_ip"], f"{name}: ecs_public_ip")
        check(variables.get("ecs_instance_id") == instance_id, f"{name}: ecs_instance_id")
        check(variables.get("ecs_instance_name") == api["name"] == name, f"{name}: ecs_instance_name")
        check((variables.get("ecs_key_pair_name") or "") == api["key_pair_name"], f"{name}: ecs_key_pair_name")
        check(variables.get("ecs_status") == api["status"], f"{name}: ecs_status")
        check(variables.get("ecs_os_type") == api["os_type"], f"{name}: ecs_os_type")
        check(variables.get("ecs_region") == api["region"], f"{name}: ecs_region")
        check(variables.get("ecs_tags") == {}, f"{name}: ecs_tags")
        if mode == "all":
            # compose and keyed_groups of all.ecs.yml
            check(variables.get("ansible_user") == "ecs-user", f"{name}: composed ansible_user")
            check(f"region_{safe(api['region'])}" in membership.get(host, set()), f"{name}: keyed group region_*")
    if mode == "all":
        check(sorted(listing.get("linux_with_key", {}).get("hosts", [])) ==
              sorted(fleet[n]["id"] for n in ("web-1", "web-2", "db-1")), "composed group linux_with_key")
    return {"hosts": sorted(hostvars), "checked": len(expected)}


def main(argv: list) -> int:
    command, args = argv[1], argv[2:]
    if command == "make":
        result: object = make(args[0])
    elif command == "list":
        result = check_list(args[0], args[1], args[2])
    elif command == "faults":
        if args[0] == "add":
            result = ecs_sdk.admin("/_admin/faults", json.loads(args[1]))
        elif args[0] == "clear":
            result = ecs_sdk.admin("/_admin/faults", method="DELETE")
        else:
            # Rules with a count retire when used up: none left means every one fired.
            result = ecs_sdk.admin("/_admin/faults", method="GET")
            check(result.get("Faults") == [], f"fault rules not used up: {result}")
    elif command in ("delete", "cleanup"):
        with open(args[0], encoding="utf-8") as handle:
            fleet = json.load(handle)
        names = args[1:] if command == "delete" else list(fleet)
        deleted = 0
        for region in {fleet[n]["region"] for n in names}:
            ids = [fleet[n]["id"] for n in names if fleet[n]["region"] == region]
            present = list(ecs_sdk.show(ids, region))
            if present:
                deleted += ecs_sdk.delete_instances(present, region)
        result = {"deleted": deleted}
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by the integration targets' helper scripts: the independent reading of the endpoint.

The official ECS SDK (not the collection's client) set up from the variables that
tools/with-emulator.sh exports (ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET,
ALIBABA_CLOUD_REGION_ID, ALIBABA_CLOUD_ECS_ENDPOINT), the emulator's admin API
(ECS_EMULATOR_ADMIN_TOKEN), and the instance helpers several targets need. A target's script
imports it with:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "setup_ecs_sdk", "files"))
    import ecs_sdk
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from typing import Optional
from urllib.parse import urlsplit

# The SDK must not look for credentials or regions anywhere but the variables above.
os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
os.environ.setdefault("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")

from alibabacloud_ecs20140526 import models  # noqa: E402  pylint: disable=wrong-import-position
from alibabacloud_ecs20140526.client import Client  # noqa: E402  pylint: disable=wrong-import-position
from alibabacloud_tea_openapi.models import Config  # noqa: E402  pylint: disable=wrong-import-position

__all__ = ["models", "client", "region", "admin", "run_instances", "show", "wait", "delete_instances"]

LINUX_IMAGE = "debian_12_x64"
WINDOWS_IMAGE = "win2022_datacenter"


def region() -> str:
    """The default region of the endpoint (the first one the emulator serves)."""
    return os.environ["ALIBABA_CLOUD_REGION_ID"]


def client(region_id: Optional[str] = None) -> Client:
    """An official SDK client for the endpoint, in region_id (default: region())."""
    endpoint = urlsplit(os.environ["ALIBABA_CLOUD_ECS_ENDPOINT"])
    return Client(Config(access_key_id=os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"],
                         access_key_secret=os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
                         endpoint=endpoint.netloc, protocol=endpoint.scheme,
                         region_id=region_id or region()))


def admin(path: str, payload: Optional[dict] = None, method: str = "POST") -> dict:
    """One call of the emulator's admin API (POST /_admin/...), JSON in and out."""
    data = json.dumps(payload).encode() if payload is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(os.environ["ALIBABA_CLOUD_ECS_ENDPOINT"] + path, method=method, data=data,
                                     headers={"X-Admin-Token": os.environ["ECS_EMULATOR_ADMIN_TOKEN"],
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=90) as reply:  # nosec - loopback emulator only
        return json.load(reply)


def run_instances(kind: str, amount: int, region_id: Optional[str] = None, key_pair_name: Optional[str] = None,
                  name: Optional[str] = None) -> list:
    """RunInstances of `amount` linux or windows instances (100 a call); their ids."""
    image = WINDOWS_IMAGE if kind == "windows" else LINUX_IMAGE
    ids: list = []
    while len(ids) < amount:
        batch = min(100, amount - len(ids))
        reply = client(region_id).run_instances(models.RunInstancesRequest(
            region_id=region_id or region(), image_id=image, instance_type="ecs.t6-c1m1.large", amount=batch,
            key_pair_name=key_pair_name or None, instance_name=name or None))
        ids.extend(reply.body.instance_id_sets.instance_id_set)
    return ids


def show(ids: list, region_id: Optional[str] = None) -> dict:
    """{id: {key_pair_name, status, os_type, public_ip, name, region}} as DescribeInstances reports them."""
    api = client(region_id)
    out = {}
    for start in range(0, len(ids), 100):
        reply = api.describe_instances(models.DescribeInstancesRequest(
            region_id=region_id or region(), instance_ids=json.dumps(ids[start:start + 100]), page_size=100))
        for item in reply.body.instances.instance or []:
            ips = item.public_ip_address.ip_address if item.public_ip_address else []
            out[item.instance_id] = {"key_pair_name": item.key_pair_name or "", "status": item.status,
                                     "os_type": item.ostype, "public_ip": ips[0] if ips else None,
                                     "name": item.instance_name, "region": item.region_id}
    return out


def wait(status: str, ids: list, region_id: Optional[str] = None, limit: float = 180) -> dict:
    """Waits (limit seconds at most) until every id has status; what show() last read."""
    deadline = time.monotonic() + limit
    while True:
        found = show(ids, region_id)
        if all(found.get(i, {}).get("status") == status for i in ids):
            return found
        if time.monotonic() > deadline:
            raise SystemExit(f"not {status} within {limit:.0f} s: {json.dumps(found)}")
        time.sleep(0.5)


def delete_instances(ids: list, region_id: Optional[str] = None) -> int:
    """Force-deletes the instances, then waits until the emulator's backend is idle."""
    for start in range(0, len(ids), 100):
        client(region_id).delete_instances(models.DeleteInstancesRequest(
            region_id=region_id or region(), instance_id=ids[start:start + 100], force=True))
    admin("/_admin/wait-idle")
    return len(ids)

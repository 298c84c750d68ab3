"""Admin endpoints for test authors: create and list instances across accounts, reset the state.

They sit behind the same X-Admin-Token check as the fault endpoints (server.py) and are what the
`ecs-emulator instances ...` and `ecs-emulator reset` commands call. Creating an instance goes
through the RunInstances action itself, so an instance made here is exactly one made through
the API: same checks, same addresses, same boot through the backend.
"""

from __future__ import annotations

import json
from dataclasses import replace

from .actions import Context, run_instances
from .backend import VIRTUAL_POOL
from .errors import ApiError

# Image ids as ECS names its public images; the emulator only looks at the "win" prefix
# (README.md, "Instances").
IMAGES = {"linux": "debian_12_x64_20G_alibase.vhd", "windows": "win2022_datacenter_x64_dtc_en-us_40G_alibase.vhd"}
CREATE_FIELDS = {"account", "region", "os", "count", "name", "key_pair", "image", "password", "virtual"}
PATHS = ("/_admin/instances", "/_admin/reset")


def handle(emu, method: str, path: str, body: bytes) -> tuple[int, dict] | None:
    """(status, payload) for an admin path of this module, None for any other."""
    if path == "/_admin/instances" and method == "GET":
        return 200, {"Backend": emu.lifecycle.backend.name, "Instances": list_instances(emu)}
    if path == "/_admin/instances" and method == "POST":
        try:
            return 200, create_instances(emu, _json_object(body))
        except ApiError as exc:
            return exc.status, {"Code": exc.code, "Message": exc.message}
    if path == "/_admin/reset" and method == "POST":
        return 200, reset(emu)
    if path in PATHS:
        return 405, {"Code": "InvalidAction.Method", "Message": f"{path} does not take {method}."}
    return None


def _json_object(body: bytes) -> dict:
    try:
        doc = json.loads(body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError):
        raise ApiError("InvalidParameter.Body", "The body must be a JSON object.") from None
    if not isinstance(doc, dict):
        raise ApiError("InvalidParameter.Body", "The body must be a JSON object.")
    unknown = sorted(set(doc) - CREATE_FIELDS)
    if unknown:
        raise ApiError("InvalidParameter.Body", f"Unknown fields {', '.join(unknown)}; known: {', '.join(sorted(CREATE_FIELDS))}.")
    return doc


def create_instances(emu, doc: dict) -> dict:
    """RunInstances in the given account (default: the first one) and region (default: the
    first one served); os picks the image unless image names one."""
    account_name = doc.get("account") or next(iter(emu.accounts))
    account = emu.accounts.get(account_name)
    if account is None:
        raise ApiError("InvalidParameter.Account", f"No account {account_name!r}; accounts: {', '.join(emu.accounts)}.")
    os_type = doc.get("os") or "linux"
    if os_type not in IMAGES:
        raise ApiError("InvalidParameter.Os", f"os must be one of {', '.join(IMAGES)}, not {os_type!r}.")
    count = doc.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool):
        raise ApiError("InvalidParameter.Count", "count must be an integer (1 to 100).")
    params = {"RegionId": doc.get("region") or emu.config.regions[0], "ImageId": doc.get("image") or IMAGES[os_type],
              "Amount": str(count)}
    for field, param in (("name", "InstanceName"), ("key_pair", "KeyPairName"), ("password", "Password")):
        if doc.get(field):
            params[param] = str(doc[field])
    if not isinstance(doc.get("virtual", False), bool):
        raise ApiError("InvalidParameter.Virtual", "virtual must be true or false.")
    # A virtual instance beside containers: a row only, with an address where nothing listens.
    # (With the virtual backend every instance is one already, on the emulator's own pool.)
    # Windows instances are rows only in every backend (README.md, "Instances"): the same range.
    windows = params["ImageId"].lower().startswith("win")
    virtual = (bool(doc.get("virtual")) or windows) and emu.lifecycle.backend.name != "virtual"
    config = replace(emu.config, address_pool=VIRTUAL_POOL) if virtual else emu.config
    ctx = Context(emu.state, emu.lifecycle, config, account, params)
    ids = run_instances(ctx)["InstanceIdSets"]["InstanceIdSet"]
    if virtual:
        # Before the boot jobs are queued (post_commit): the lifecycle reads the flag at boot.
        with emu.state.tx() as db:
            db.execute(f"UPDATE instances SET virtual = 1 WHERE id IN ({','.join('?' * len(ids))})", ids)
    for job in ctx.post_commit:
        job()
    with emu.state.read() as db:
        rows = db.execute(f"SELECT * FROM instances WHERE id IN ({','.join('?' * len(ids))}) ORDER BY seq", ids).fetchall()
    return {"Backend": emu.lifecycle.backend.name, "Instances": [_summary(r, emu) for r in rows]}


def list_instances(emu) -> list[dict]:
    with emu.state.read() as db:
        rows = db.execute("SELECT * FROM instances ORDER BY seq").fetchall()
    return [_summary(r, emu) for r in rows]


def _summary(row, emu) -> dict:
    # No password: it is kept for the backend only and never leaves the emulator.
    runs = emu.lifecycle.backend.name != "virtual" and not row["virtual"] and row["os_type"] == "linux"
    return {"InstanceId": row["id"], "Account": row["account"], "RegionId": row["region"], "InstanceName": row["name"],
            "OSType": row["os_type"], "Status": row["status"], "Address": row["address"],
            "KeyPairName": row["key_pair_name"] or "", "Kind": emu.lifecycle.backend.name if runs else "virtual"}


def reset(emu) -> dict:
    """Every instance (its container too), key pair and tag gone, every fault cleared; the
    accounts and their AccessKeys stay, so a running test keeps its credentials."""
    with emu.state.tx() as db:
        ids = [r["id"] for r in db.execute("SELECT id FROM instances")]
        keypairs = db.execute("SELECT COUNT(*) FROM keypairs").fetchone()[0]
        db.execute("DELETE FROM instances")
        db.execute("DELETE FROM keypair_tags")
        db.execute("DELETE FROM keypairs")
    for iid in ids:
        emu.lifecycle.submit("destroy", iid, 0)
    emu.faults.clear()
    emu.lifecycle.wait_idle(timeout=60)
    return {"DeletedInstances": len(ids), "DeletedKeyPairs": keypairs}

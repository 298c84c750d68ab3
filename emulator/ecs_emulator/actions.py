"""The API actions: key pairs, tags and instances, with the limits and error codes of API.md.

Each handler runs inside one SQLite transaction (see state.py) and returns the response body
without RequestId; the HTTP layer adds it. Work for the instance backend is queued with
ctx.after() and starts only once the transaction committed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
import sqlite3
import string
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from . import sshkeys
from .accounts import Account
from .errors import ApiError, invalid, missing
from .lifecycle import Lifecycle
from .state import State

KEYPAIR_QUOTA = 500
MAX_TAGS = 20
MAX_DELETE_NAMES = 100
MAX_ATTACH_IDS = 50
INSTANCE_STATUSES = ("Pending", "Starting", "Running", "Stopping", "Stopped")
DEFAULT_REGIONS = ("cn-hangzhou", "cn-shanghai", "cn-beijing", "cn-shenzhen", "cn-hongkong",
                   "ap-southeast-1", "us-west-1", "eu-central-1")
PASSWORD_SPECIALS = "()`~!@#$%^&*-_+=|{}[]:;'<>,.?/"


@dataclass
class Config:
    regions: tuple[str, ...] = DEFAULT_REGIONS
    strict_delete: bool = True         # today's ECS: refuse to delete attached key pairs (--legacy-delete: the guide's)
    windows_refuses_call: bool = False  # --windows-refuses-call: a Windows instance fails the whole Attach/Detach call
    accept_ed25519: bool = True
    address_pool: ipaddress.IPv4Network = ipaddress.IPv4Network("127.0.10.0/24")
    ssh_port: int = 22


@dataclass
class Context:
    state: State
    lifecycle: Lifecycle
    config: Config
    account: Account
    params: dict[str, str]
    post_commit: list[Callable[[], None]] = field(default_factory=list)

    def after(self, fn: Callable[[], None]) -> None:
        self.post_commit.append(fn)


# --- parameter helpers --------------------------------------------------------------------------

def req(ctx: Context, name: str) -> str:
    value = ctx.params.get(name)
    if value is None or value == "":
        raise missing(name)
    return value


def opt_bool(ctx: Context, name: str, default: bool = False) -> bool:
    value = ctx.params.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid(name, "expected true or false")


def opt_int(ctx: Context, name: str, default: int, low: int, high: int) -> int:
    value = ctx.params.get(name)
    if value is None or value == "":
        return default
    if not re.fullmatch(r"[0-9]{1,9}", value) or not low <= int(value) <= high:
        raise invalid(name, f"expected an integer from {low} to {high}")
    return int(value)


def region(ctx: Context, required: bool = True) -> str | None:
    value = ctx.params.get("RegionId")
    if not value:
        if required:
            raise missing("RegionId")
        return None
    if value not in ctx.config.regions:
        raise ApiError("InvalidRegionId.NotFound", "The specified RegionId does not exist.", 404)
    return value


# More items than one call takes, as the current DeleteKeyPairs and AttachKeyPair/DetachKeyPair
# references answer it (403, with their own messages).
OVER_DELETE_LIMIT = ("InstanceKeyPairLimitExceeded", "Exceeding the allowed amount of instance which will be deleted.", 403)
OVER_BIND_LIMIT = ("InstanceKeyPairLimitExceeded", "The specified instances are beyond the permitted range.", 403)


def json_list(ctx: Context, name: str, limit: int, code: str, required: bool = True,
              over_limit: tuple[str, str, int] | None = None) -> list[str] | None:
    """A parameter holding a JSON array of strings, such as KeyPairNames or InstanceIds."""
    raw = ctx.params.get(name)
    if raw is None or raw == "":
        if required:
            raise missing(name)
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise ApiError(code, f"The specified parameter \"{name}\" is not a valid JSON array of strings.", 400) from None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ApiError(code, f"The specified parameter \"{name}\" is not a valid JSON array of strings.", 400)
    if not value:
        raise ApiError(code, f"The specified parameter \"{name}\" must not be empty.", 400)
    if len(value) > limit:
        if over_limit:
            raise ApiError(*over_limit)
        raise ApiError(code, f"The specified parameter \"{name}\" holds more than {limit} items.", 400)
    return list(dict.fromkeys(value))  # repeated entries count once


def repeat_list(ctx: Context, prefix: str, limit: int) -> list[str]:
    """Parameters of the form Prefix.1, Prefix.2, ...: the values in index order."""
    found: dict[int, str] = {}
    for key, value in ctx.params.items():
        if key.startswith(prefix + "."):
            index = key[len(prefix) + 1:]
            if not index.isdigit() or not 1 <= int(index) <= limit:
                raise invalid(key, f"index must be from 1 to {limit}")
            if value:
                found[int(index)] = value
    return [found[i] for i in sorted(found)]


def _name_character(char: str) -> bool:
    # Letters of any script (Chinese included), decimal digits and . : _ - (the ImportKeyPair
    # request model of alibabacloud_ecs20140526 7.11.8 spells the rule out).
    return char.isalpha() or char.isdecimal() or char in ".:_-"


def check_keypair_name(name: str) -> str:
    well_formed = 2 <= len(name) <= 128 and name[0].isalpha() and all(_name_character(c) for c in name)
    if not well_formed or name.lower().startswith(("http://", "https://")):
        raise ApiError("InvalidKeyPairName.Malformed",
                       "The key pair name must be 2 to 128 characters long, start with a letter and contain only "
                       "letters, digits, periods (.), colons (:), underscores (_) and hyphens (-).", 400)
    return name


def check_tag_key(key: str) -> None:
    low = key.lower()
    if not key or len(key) > 128 or low.startswith(("aliyun", "acs:")) or "http://" in low or "https://" in low:
        raise ApiError("InvalidTagKey.Malformed", "A tag key is 1 to 128 characters long, must not start with "
                       "'aliyun' or 'acs:' and must not contain 'http://' or 'https://'.", 400)


def check_tag_value(value: str) -> None:
    low = value.lower()
    if len(value) > 128 or "http://" in low or "https://" in low:
        raise ApiError("InvalidTagValue.Malformed", "A tag value is at most 128 characters long and must not "
                       "contain 'http://' or 'https://'.", 400)


def tags_param(ctx: Context, need_values: bool = False) -> list[tuple[str, str | None]]:
    """Tag.N.Key / Tag.N.Value, N from 1 to 20. Values may be empty (None: not given)."""
    keys: dict[int, str] = {}
    values: dict[int, str] = {}
    for name, value in ctx.params.items():
        m = re.fullmatch(r"Tag\.([0-9]+)\.(Key|Value)", name)
        if not m:
            if name.startswith("Tag."):
                raise invalid(name, "expected Tag.N.Key or Tag.N.Value", "InvalidTag.Malformed")
            continue
        index = int(m.group(1))
        if not 1 <= index <= MAX_TAGS:
            raise ApiError("InvalidTagCount", f"At most {MAX_TAGS} tags (Tag.1 to Tag.{MAX_TAGS}) are allowed.", 400)
        (keys if m.group(2) == "Key" else values)[index] = value
    for index in values:
        if index not in keys:
            raise missing(f"Tag.{index}.Key")
    out = []
    for index in sorted(keys):
        check_tag_key(keys[index])
        value = values.get(index)
        if value is not None:
            check_tag_value(value)
        elif need_values:
            value = ""
        out.append((keys[index], value))
    if len({k for k, _value in out}) != len(out):
        raise ApiError("InvalidTagKey.Duplicated", "The same tag key is given twice.", 400)
    return out


def resource_group(ctx: Context, value: str | None) -> str | None:
    if not value:
        return None
    if value != ctx.account.default_resource_group and value not in ctx.account.resource_groups:
        raise ApiError("InvalidResourceGroup.NotFound", "The specified resource group does not exist.", 404)
    return value


def check_password(value: str) -> str:
    classes = sum([any(c.isupper() for c in value), any(c.islower() for c in value),
                   any(c.isdigit() for c in value), any(c in PASSWORD_SPECIALS for c in value)])
    allowed = set(string.ascii_letters + string.digits + PASSWORD_SPECIALS)
    if not 8 <= len(value) <= 30 or classes < 3 or not set(value) <= allowed:
        # Never echo the password.
        raise ApiError("InvalidPassword.Malformed", "The password must be 8 to 30 characters long and contain "
                       "three of: upper-case letters, lower-case letters, digits, special characters.", 400)
    return value


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def new_id(prefix: str, size: int = 20) -> str:
    alphabet = string.ascii_lowercase + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _pos in range(size))


# --- key pairs ----------------------------------------------------------------------------------

def _name_taken(db: sqlite3.Connection, account: str, region_id: str, name: str) -> bool:
    """A name is taken by a key pair, or (seed behaviour) by instances still bound to a deleted one."""
    return db.execute(
        "SELECT 1 FROM keypairs WHERE account=? AND region=? AND name=? UNION ALL "
        "SELECT 1 FROM instances WHERE account=? AND region=? AND key_pair_name=? LIMIT 1",
        (account, region_id, name, account, region_id, name)).fetchone() is not None


def _insert_keypair(ctx: Context, region_id: str, name: str, public_key: str, key_type: str,
                    group: str | None, tags: list[tuple[str, str | None]]) -> dict:
    acct = ctx.account.name
    with ctx.state.tx() as db:
        if _name_taken(db, acct, region_id, name):
            raise ApiError("KeyPair.AlreadyExist", "The key pair already exists.", 400)
        count = db.execute("SELECT COUNT(*) FROM keypairs WHERE account=? AND region=?", (acct, region_id)).fetchone()[0]
        if count >= KEYPAIR_QUOTA:
            raise ApiError("QuotaExceed.KeyPair", f"The maximum number of key pairs ({KEYPAIR_QUOTA}) is exceeded.", 403)
        kp_id = new_id("kp-")
        fingerprint = sshkeys.md5_fingerprint(public_key, colons=False)
        db.execute("INSERT INTO keypairs (account, region, name, id, public_key, key_type, fingerprint, "
                   "resource_group, created) VALUES (?,?,?,?,?,?,?,?,?)",
                   (acct, region_id, name, kp_id, public_key, key_type, fingerprint,
                    group or ctx.account.default_resource_group, now_iso()))
        for key, value in tags:
            db.execute("INSERT INTO keypair_tags VALUES (?,?,?,?,?)", (acct, region_id, name, key, value or ""))
    return {"KeyPairName": name, "KeyPairId": kp_id, "KeyPairFingerPrint": fingerprint}


def create_key_pair(ctx: Context) -> dict:
    region_id = region(ctx)
    name = check_keypair_name(req(ctx, "KeyPairName"))
    group = resource_group(ctx, ctx.params.get("ResourceGroupId"))
    tags = tags_param(ctx, need_values=True)
    # Generated outside the transaction: it takes tens of milliseconds and needs no state.
    pem, public_key = sshkeys.generate_rsa()
    out = _insert_keypair(ctx, region_id, name, public_key, "ssh-rsa", group, tags)
    out["PrivateKeyBody"] = pem
    return out


def import_key_pair(ctx: Context) -> dict:
    region_id = region(ctx)
    name = check_keypair_name(req(ctx, "KeyPairName"))
    public_key, key_type = sshkeys.normalize_public_key(req(ctx, "PublicKeyBody"), ctx.config.accept_ed25519)
    group = resource_group(ctx, ctx.params.get("ResourceGroupId"))
    tags = tags_param(ctx, need_values=True)
    out = _insert_keypair(ctx, region_id, name, public_key, key_type, group, tags)
    del out["KeyPairId"]  # the import response carries no id (as in the SDK's model)
    return out


def _like_pattern(name: str) -> str:
    escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def describe_key_pairs(ctx: Context) -> dict:
    region_id = region(ctx)
    page = opt_int(ctx, "PageNumber", 1, 1, 1_000_000)
    size = opt_int(ctx, "PageSize", 10, 1, 50)
    include_public = opt_bool(ctx, "IncludePublicKey")
    where, args = ["k.account = ?", "k.region = ?"], [ctx.account.name, region_id]
    name = ctx.params.get("KeyPairName")
    if name:
        if "*" in name:
            where.append("k.name LIKE ? ESCAPE '\\'")
            args.append(_like_pattern(name))
        else:
            where.append("k.name = ?")
            args.append(name)
    fingerprint = ctx.params.get("KeyPairFingerPrint")
    if fingerprint:
        where.append("k.fingerprint = ?")
        args.append(sshkeys.normalize_fingerprint(fingerprint))
    group = resource_group(ctx, ctx.params.get("ResourceGroupId"))
    if group and group != ctx.account.default_resource_group:
        # As ECS: key pairs of the default resource group come back whatever group is asked for
        # (the DescribeKeyPairs reference), and the default group itself filters nothing (the
        # request model of alibabacloud_ecs20140526 7.11.8: not supported).
        where.append("k.resource_group IN (?, ?)")
        args.extend((group, ctx.account.default_resource_group))
    for key, value in tags_param(ctx):
        sub = "SELECT 1 FROM keypair_tags t WHERE t.account=k.account AND t.region=k.region AND t.name=k.name AND t.tag_key=?"
        args.append(key)
        if value is not None:
            sub += " AND t.tag_value=?"
            args.append(value)
        where.append(f"EXISTS ({sub})")
    clause = " AND ".join(where)
    with ctx.state.read() as db:
        total = db.execute(f"SELECT COUNT(*) FROM keypairs k WHERE {clause}", args).fetchone()[0]
        rows = db.execute(f"SELECT * FROM keypairs k WHERE {clause} ORDER BY k.seq LIMIT ? OFFSET ?",
                          [*args, size, (page - 1) * size]).fetchall()
        tags: dict[str, list[dict]] = {}
        if rows:
            marks = ",".join("?" * len(rows))
            for t in db.execute(f"SELECT name, tag_key, tag_value FROM keypair_tags WHERE account=? AND region=? "
                                f"AND name IN ({marks}) ORDER BY tag_key",
                                [ctx.account.name, region_id, *[r["name"] for r in rows]]):
                tags.setdefault(t["name"], []).append({"TagKey": t["tag_key"], "TagValue": t["tag_value"]})
    items = []
    for r in rows:
        # No KeyPairId: DescribeKeyPairs items carry none (the response model of the official SDK).
        item = {"KeyPairName": r["name"],
                "KeyPairFingerPrint": sshkeys.colon_hex(r["fingerprint"]),
                "CreationTime": r["created"], "ResourceGroupId": r["resource_group"],
                "Tags": {"Tag": tags.get(r["name"], [])}}
        if include_public:
            item["PublicKey"] = r["public_key"]
        items.append(item)
    return {"TotalCount": total, "PageNumber": page, "PageSize": size, "KeyPairs": {"KeyPair": items}}


def delete_key_pairs(ctx: Context) -> dict:
    region_id = region(ctx)
    names = json_list(ctx, "KeyPairNames", MAX_DELETE_NAMES, "InvalidKeyPairNames.ValueNotSupported",
                      over_limit=OVER_DELETE_LIMIT)
    acct = ctx.account.name
    with ctx.state.tx() as db:
        marks = ",".join("?" * len(names))
        found = {r["name"] for r in db.execute(
            f"SELECT name FROM keypairs WHERE account=? AND region=? AND name IN ({marks})", [acct, region_id, *names])}
        absent = [n for n in names if n not in found]
        if absent:
            raise ApiError("InvalidKeyPair.NotFound", f"The specified key pair does not exist: {absent[0][:128]}.", 404)
        if ctx.config.strict_delete:
            bound = db.execute(f"SELECT key_pair_name FROM instances WHERE account=? AND region=? "
                               f"AND key_pair_name IN ({marks}) LIMIT 1", [acct, region_id, *names]).fetchone()
            if bound:
                raise ApiError("InvalidParameter.KeypairAlreadyAttachedInstance",
                               f"The key pair {bound[0]} is attached to an instance; detach it first.", 400)
        db.execute(f"DELETE FROM keypairs WHERE account=? AND region=? AND name IN ({marks})", [acct, region_id, *names])
        db.execute(f"DELETE FROM keypair_tags WHERE account=? AND region=? AND name IN ({marks})", [acct, region_id, *names])
    return {}


def _refuse_windows_call(db: sqlite3.Connection, account: str, region_id: str, ids: list[str]) -> None:
    """The whole call refused when one instance runs Windows: the AttachKeyPair reference lists
    DependencyViolation.WindowsInstance as an error of the call (403, this message)."""
    marks = ",".join("?" * len(ids))
    if db.execute(f"SELECT 1 FROM instances WHERE account=? AND region=? AND os_type='windows' AND id IN ({marks}) "
                  "LIMIT 1", [account, region_id, *ids]).fetchone():
        raise ApiError("DependencyViolation.WindowsInstance",
                       "The instance creating is windows, cannot use ssh key pair to login", 403)


def _bind(ctx: Context, attach: bool) -> dict:
    region_id = region(ctx)
    name = req(ctx, "KeyPairName")
    ids = json_list(ctx, "InstanceIds", MAX_ATTACH_IDS, "InvalidInstanceIds.ValueNotSupported",
                    over_limit=OVER_BIND_LIMIT)
    acct = ctx.account.name
    results = []
    with ctx.state.tx() as db:
        kp = db.execute("SELECT public_key FROM keypairs WHERE account=? AND region=? AND name=?",
                        (acct, region_id, name)).fetchone()
        if kp is None and (attach or db.execute(
                "SELECT 1 FROM instances WHERE account=? AND region=? AND key_pair_name=? LIMIT 1",
                (acct, region_id, name)).fetchone() is None):
            # 400 and this message: the AttachKeyPair and DetachKeyPair references' error tables.
            raise ApiError("InvalidKeyPairName.NotFound", "The specified KeyPairName does not exist in our records.", 400)
        if ctx.config.windows_refuses_call:
            _refuse_windows_call(db, acct, region_id, ids)
        for iid in ids:
            row = db.execute("SELECT * FROM instances WHERE id=? AND account=? AND region=?",
                             (iid, acct, region_id)).fetchone()
            code, message = "200", "successful"
            if row is None:
                code, message = "InvalidInstanceId.NotFound", "The specified instance does not exist."
            elif row["os_type"] == "windows":
                code, message = "DependencyViolation.WindowsInstance", "Key pairs are not supported by Windows instances."
            elif row["status"] not in ("Running", "Stopped"):
                code, message = "IncorrectInstanceStatus", f"The instance is {row['status']}."
            elif attach:
                # Bound now, applied inside at the next boot; password login goes off with it.
                db.execute("UPDATE instances SET key_pair_name=?, public_key=?, password_login=0 WHERE id=?",
                           (name, kp["public_key"], iid))
            elif row["key_pair_name"] != name:
                code, message = "InvalidKeyPair.NotAttached", "The key pair is not attached to this instance."
            else:
                db.execute("UPDATE instances SET key_pair_name=NULL, public_key=NULL WHERE id=?", (iid,))
            results.append({"InstanceId": iid, "Success": "true" if code == "200" else "false",
                            "Code": code, "Message": message})
    failed = sum(1 for r in results if r["Success"] == "false")
    return {"TotalCount": str(len(results)), "FailCount": str(failed), "KeyPairName": name,
            "Results": {"Result": results}}


def attach_key_pair(ctx: Context) -> dict:
    return _bind(ctx, attach=True)


def detach_key_pair(ctx: Context) -> dict:
    return _bind(ctx, attach=False)


# --- tags ---------------------------------------------------------------------------------------

def _resource_type(ctx: Context) -> None:
    value = req(ctx, "ResourceType")
    if value.lower() != "keypair":
        raise ApiError("InvalidResourceType.NotSupported", "This endpoint supports ResourceType keypair only.", 400)


def tag_resources(ctx: Context) -> dict:
    region_id = region(ctx)
    _resource_type(ctx)
    ids = repeat_list(ctx, "ResourceId", 50) or [req(ctx, "ResourceId.1")]
    tags = tags_param(ctx, need_values=True)
    if not tags:
        raise missing("Tag.1.Key")
    acct = ctx.account.name
    with ctx.state.tx() as db:
        for rid in ids:
            if db.execute("SELECT 1 FROM keypairs WHERE account=? AND region=? AND name=?",
                          (acct, region_id, rid)).fetchone() is None:
                raise ApiError("InvalidResourceId.NotFound", f"The specified resource does not exist: {rid[:128]}.", 404)
            for key, value in tags:
                db.execute("INSERT OR REPLACE INTO keypair_tags VALUES (?,?,?,?,?)", (acct, region_id, rid, key, value))
            count = db.execute("SELECT COUNT(*) FROM keypair_tags WHERE account=? AND region=? AND name=?",
                               (acct, region_id, rid)).fetchone()[0]
            if count > MAX_TAGS:
                raise ApiError("InvalidTagCount", f"A resource can hold at most {MAX_TAGS} tags.", 400)
    return {}


def untag_resources(ctx: Context) -> dict:
    region_id = region(ctx)
    _resource_type(ctx)
    ids = repeat_list(ctx, "ResourceId", 50) or [req(ctx, "ResourceId.1")]
    keys = repeat_list(ctx, "TagKey", 20)
    remove_all = opt_bool(ctx, "All")
    if not keys and not remove_all:
        raise missing("TagKey.1")
    acct = ctx.account.name
    with ctx.state.tx() as db:
        for rid in ids:
            if db.execute("SELECT 1 FROM keypairs WHERE account=? AND region=? AND name=?",
                          (acct, region_id, rid)).fetchone() is None:
                raise ApiError("InvalidResourceId.NotFound", f"The specified resource does not exist: {rid[:128]}.", 404)
            if remove_all:
                db.execute("DELETE FROM keypair_tags WHERE account=? AND region=? AND name=?", (acct, region_id, rid))
            else:
                marks = ",".join("?" * len(keys))
                db.execute(f"DELETE FROM keypair_tags WHERE account=? AND region=? AND name=? AND tag_key IN ({marks})",
                           (acct, region_id, rid, *keys))
    return {}


def list_tag_resources(ctx: Context) -> dict:
    region_id = region(ctx)
    _resource_type(ctx)
    ids = repeat_list(ctx, "ResourceId", 50)
    tags = tags_param(ctx)
    token = ctx.params.get("NextToken") or "0"
    if not token.isdigit():
        raise invalid("NextToken", "not a token this endpoint issued")
    offset, size = int(token), 50
    where, args = ["t.account=?", "t.region=?"], [ctx.account.name, region_id]
    if ids:
        where.append(f"t.name IN ({','.join('?' * len(ids))})")
        args += ids
    for key, value in tags:
        sub = "SELECT 1 FROM keypair_tags f WHERE f.account=t.account AND f.region=t.region AND f.name=t.name AND f.tag_key=?"
        args.append(key)
        if value is not None:
            sub += " AND f.tag_value=?"
            args.append(value)
        where.append(f"EXISTS ({sub})")
    with ctx.state.read() as db:
        rows = db.execute(f"SELECT name, tag_key, tag_value FROM keypair_tags t WHERE {' AND '.join(where)} "
                          f"ORDER BY name, tag_key LIMIT ? OFFSET ?", [*args, size + 1, offset]).fetchall()
    more = len(rows) > size
    items = [{"ResourceId": r["name"], "ResourceType": "keypair", "TagKey": r["tag_key"], "TagValue": r["tag_value"]}
             for r in rows[:size]]
    return {"NextToken": str(offset + size) if more else "", "TagResources": {"TagResource": items}}


# --- instances ----------------------------------------------------------------------------------

def _stable_hex(*parts: str, length: int = 17) -> str:
    """A made-up id part that stays the same for the same inputs (restarts included)."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _network_fields(r: sqlite3.Row) -> dict:
    """What a VPC instance reports of its network (DescribeInstances response model of
    alibabacloud_ecs20140526 7.11.8): one VPC and security group per account and region, a
    private address and a primary network interface per instance. Made up, but stable."""
    digest = bytes.fromhex(_stable_hex(r["id"], length=4))
    private = f"172.16.{digest[0]}.{digest[1] % 253 + 1}"
    vpc, vswitch = "vpc-" + _stable_hex(r["account"], r["region"]), "vsw-" + _stable_hex(r["account"], r["region"], "a")
    return {
        "VpcAttributes": {"VpcId": vpc, "VSwitchId": vswitch, "NatIpAddress": "",
                          "PrivateIpAddress": {"IpAddress": [private]}},
        "SecurityGroupIds": {"SecurityGroupId": ["sg-" + _stable_hex(r["account"], r["region"], "sg")]},
        "NetworkInterfaces": {"NetworkInterface": [{
            "NetworkInterfaceId": "eni-" + _stable_hex(r["id"], "eni"), "Type": "Primary",
            "MacAddress": "00:16:3e:" + ":".join(_stable_hex(r["id"], "mac", length=6)[i:i + 2] for i in (0, 2, 4)),
            "PrimaryIpAddress": private,
            "PrivateIpSets": {"PrivateIpSet": [{"PrivateIpAddress": private, "Primary": True}]}}]},
        "EipAddress": {"AllocationId": "", "IpAddress": "", "InternetChargeType": ""},
        "Tags": {"Tag": []},
    }


def _instance_item(r: sqlite3.Row) -> dict:
    linux = r["os_type"] == "linux"
    return {
        **_network_fields(r),
        "InstanceId": r["id"], "InstanceName": r["name"], "HostName": r["name"], "Description": "",
        "RegionId": r["region"], "ZoneId": f"{r['region']}-a", "Status": r["status"],
        "OSType": r["os_type"], "OSName": "Debian 12 64-bit" if linux else "Windows Server 2022 64-bit",
        "ImageId": r["image_id"], "InstanceType": r["instance_type"], "Cpu": 1, "Memory": 1024,
        "KeyPairName": r["key_pair_name"] or "",
        "PublicIpAddress": {"IpAddress": [r["address"]]},
        "InnerIpAddress": {"IpAddress": []},
        "InstanceNetworkType": "vpc", "InstanceChargeType": "PostPaid",
        "CreationTime": r["created"], "ResourceGroupId": r["resource_group"],
    }


def _free_addresses(db: sqlite3.Connection, pool: ipaddress.IPv4Network, amount: int) -> list[str]:
    used = {r[0] for r in db.execute("SELECT address FROM instances")}
    out = []
    for host in pool.hosts():
        if str(host) not in used:
            out.append(str(host))
            if len(out) == amount:
                return out
    raise ApiError("OperationDenied.NoStock", "The address pool of this endpoint is exhausted.", 403)


def run_instances(ctx: Context) -> dict:
    region_id = region(ctx)
    image = req(ctx, "ImageId")
    os_type = "windows" if image.lower().startswith("win") else "linux"
    instance_type = ctx.params.get("InstanceType") or "ecs.t6-c1m1.large"
    amount = opt_int(ctx, "Amount", 1, 1, 100)
    name = ctx.params.get("InstanceName") or ""
    if len(name) > 128:
        raise invalid("InstanceName", "at most 128 characters", "InvalidInstanceName.Malformed")
    password = ctx.params.get("Password") or None
    if password is not None:
        check_password(password)
    group = resource_group(ctx, ctx.params.get("ResourceGroupId"))
    kp_name = ctx.params.get("KeyPairName") or None
    acct = ctx.account.name
    ids = []
    with ctx.state.tx() as db:
        public_key = None
        if kp_name:
            if os_type == "windows":
                raise ApiError("DependencyViolation.WindowsInstance", "Key pairs are not supported by Windows instances.", 403)
            kp = db.execute("SELECT public_key FROM keypairs WHERE account=? AND region=? AND name=?",
                            (acct, region_id, kp_name)).fetchone()
            if kp is None:
                raise ApiError("InvalidKeyPairName.NotFound", "The specified key pair name does not exist.", 404)
            public_key = kp["public_key"]
        for address in _free_addresses(db, ctx.config.address_pool, amount):
            iid = new_id("i-")
            db.execute("INSERT INTO instances (id, account, region, name, image_id, instance_type, os_type, status, "
                       "address, key_pair_name, public_key, password, password_login, resource_group, created, generation) "
                       "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
                       (iid, acct, region_id, name or iid, image, instance_type, os_type, "Pending", address,
                        kp_name, public_key, password, 0 if kp_name else 1,
                        group or ctx.account.default_resource_group, now_iso()))
            ids.append(iid)
    for iid in ids:
        ctx.after(lambda iid=iid: ctx.lifecycle.submit("boot", iid, 1))
    return {"InstanceIdSets": {"InstanceIdSet": ids}}


def _token_paging(ctx: Context) -> tuple[int, int] | None:
    """(after seq, page size) when the caller pages with NextToken/MaxResults, else None.

    MaxResults below 10 or unset means 10 and above 100 means 100 (the DescribeInstances request
    model says so, without an error); NextToken is what the previous page answered."""
    if not ctx.params.get("MaxResults") and not ctx.params.get("NextToken"):
        return None
    raw = ctx.params.get("MaxResults") or "10"
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise invalid("MaxResults", "expected an integer")
    size = min(100, max(10, int(raw)))
    token = ctx.params.get("NextToken") or ""
    if token and not re.fullmatch(r"seq-[0-9]{1,12}", token):
        raise ApiError("InvalidNextToken", "The specified NextToken is not valid.", 400)
    return (int(token[4:]) if token else 0), size


def describe_instances(ctx: Context) -> dict:
    region_id = region(ctx)
    page = opt_int(ctx, "PageNumber", 1, 1, 1_000_000)
    size = opt_int(ctx, "PageSize", 10, 1, 100)
    tokens = _token_paging(ctx)
    where, args = ["account=?", "region=?"], [ctx.account.name, region_id]
    ids = json_list(ctx, "InstanceIds", 100, "InvalidInstanceIds.Malformed", required=False)
    if ids:
        where.append(f"id IN ({','.join('?' * len(ids))})")
        args += ids
    for param, column in (("KeyPairName", "key_pair_name"), ("InstanceName", "name")):
        if ctx.params.get(param):
            where.append(f"{column}=?")
            args.append(ctx.params[param])
    status = ctx.params.get("Status")
    if status:
        if status not in INSTANCE_STATUSES:
            raise ApiError("InvalidStatus.ValueNotSupported", "The specified Status is not supported.", 400)
        where.append("status=?")
        args.append(status)
    clause = " AND ".join(where)
    with ctx.state.read() as db:
        total = db.execute(f"SELECT COUNT(*) FROM instances WHERE {clause}", args).fetchone()[0]
        if tokens is not None:
            after, size = tokens
            rows = db.execute(f"SELECT * FROM instances WHERE {clause} AND seq > ? ORDER BY seq LIMIT ?",
                              [*args, after, size + 1]).fetchall()
            more, rows = len(rows) > size, rows[:size]
            return {"TotalCount": total, "NextToken": f"seq-{rows[-1]['seq']}" if more else "",
                    "Instances": {"Instance": [_instance_item(r) for r in rows]}}
        rows = db.execute(f"SELECT * FROM instances WHERE {clause} ORDER BY seq LIMIT ? OFFSET ?",
                          [*args, size, (page - 1) * size]).fetchall()
    return {"TotalCount": total, "PageNumber": page, "PageSize": size,
            "Instances": {"Instance": [_instance_item(r) for r in rows]}}


def _find_instance(db: sqlite3.Connection, ctx: Context, iid: str, region_id: str | None) -> sqlite3.Row:
    row = db.execute("SELECT * FROM instances WHERE id=? AND account=?", (iid, ctx.account.name)).fetchone()
    if row is None or (region_id and row["region"] != region_id):
        raise ApiError("InvalidInstanceId.NotFound", "The specified instance does not exist.", 404)
    return row


# Power actions: (statuses they accept, transient status, backend job)
POWER = {
    "start": (("Stopped",), "Starting", "boot"),
    "stop": (("Running",), "Stopping", "halt"),
    "reboot": (("Running",), "Starting", "boot"),
}


def _power(ctx: Context, db: sqlite3.Connection, row: sqlite3.Row, op: str) -> tuple[str, str]:
    accepted, transient, job = POWER[op]
    if row["status"] not in accepted:
        raise ApiError("IncorrectInstanceStatus", f"The current status of the instance ({row['status']}) does not "
                       f"support this operation.", 403)
    generation = row["generation"] + 1
    db.execute("UPDATE instances SET status=?, generation=? WHERE id=?", (transient, generation, row["id"]))
    ctx.after(lambda: ctx.lifecycle.submit(job, row["id"], generation))
    return row["status"], transient


def _power_one(ctx: Context, op: str) -> dict:
    region_id = region(ctx, required=False)
    iid = req(ctx, "InstanceId")
    opt_bool(ctx, "ForceStop")  # accepted and checked; the emulator's stop is always clean
    with ctx.state.tx() as db:
        _power(ctx, db, _find_instance(db, ctx, iid, region_id), op)
    return {}


def _power_many(ctx: Context, op: str) -> dict:
    region_id = region(ctx)
    ids = repeat_list(ctx, "InstanceId", 100)
    if not ids:
        raise missing("InstanceId.1")
    opt_bool(ctx, "ForceStop")
    responses = []
    with ctx.state.tx() as db:
        for iid in dict.fromkeys(ids):
            try:
                row = _find_instance(db, ctx, iid, region_id)
                before, after = _power(ctx, db, row, op)
                responses.append({"InstanceId": iid, "Code": "200", "Message": "success",
                                  "PreviousStatus": before, "CurrentStatus": after})
            except ApiError as exc:
                responses.append({"InstanceId": iid, "Code": exc.code, "Message": exc.message})
    return {"InstanceResponses": {"InstanceResponse": responses}}


def _delete(ctx: Context, db: sqlite3.Connection, row: sqlite3.Row, force: bool) -> None:
    if row["status"] != "Stopped" and not force:
        raise ApiError("IncorrectInstanceStatus", f"The instance must be Stopped to be deleted (it is {row['status']}); "
                       "or pass Force=true.", 403)
    db.execute("DELETE FROM instances WHERE id=?", (row["id"],))
    ctx.after(lambda: ctx.lifecycle.submit("destroy", row["id"], 0))


def delete_instance(ctx: Context) -> dict:
    region_id = region(ctx, required=False)
    iid = req(ctx, "InstanceId")
    force = opt_bool(ctx, "Force")
    with ctx.state.tx() as db:
        _delete(ctx, db, _find_instance(db, ctx, iid, region_id), force)
    return {}


def delete_instances(ctx: Context) -> dict:
    region_id = region(ctx)
    ids = repeat_list(ctx, "InstanceId", 100)
    if not ids:
        raise missing("InstanceId.1")
    force = opt_bool(ctx, "Force")
    with ctx.state.tx() as db:  # all or nothing, as the real batch delete
        for iid in dict.fromkeys(ids):
            _delete(ctx, db, _find_instance(db, ctx, iid, region_id), force)
    return {}


def modify_instance_attribute(ctx: Context) -> dict:
    region_id = region(ctx, required=False)
    iid = req(ctx, "InstanceId")
    password = ctx.params.get("Password") or None
    if password is not None:
        check_password(password)
    name = ctx.params.get("InstanceName")
    if name is not None and not 1 <= len(name) <= 128:
        raise invalid("InstanceName", "1 to 128 characters", "InvalidInstanceName.Malformed")
    with ctx.state.tx() as db:
        _find_instance(db, ctx, iid, region_id)
        if password is not None:
            # A reset turns password login back on; like everything else, from the next boot.
            db.execute("UPDATE instances SET password=?, password_login=1 WHERE id=?", (password, iid))
        if name:
            db.execute("UPDATE instances SET name=? WHERE id=?", (name, iid))
    return {}


def describe_regions(ctx: Context) -> dict:
    return {"Regions": {"Region": [{"RegionId": r, "LocalName": r, "RegionEndpoint": f"ecs.{r}.aliyuncs.com"}
                                   for r in ctx.config.regions]}}


ACTIONS: dict[str, Callable[[Context], dict]] = {
    "CreateKeyPair": create_key_pair,
    "ImportKeyPair": import_key_pair,
    "DescribeKeyPairs": describe_key_pairs,
    "DeleteKeyPairs": delete_key_pairs,
    "AttachKeyPair": attach_key_pair,
    "DetachKeyPair": detach_key_pair,
    "TagResources": tag_resources,
    "UntagResources": untag_resources,
    "ListTagResources": list_tag_resources,
    "RunInstances": run_instances,
    "DescribeInstances": describe_instances,
    "StartInstance": lambda ctx: _power_one(ctx, "start"),
    "StopInstance": lambda ctx: _power_one(ctx, "stop"),
    "RebootInstance": lambda ctx: _power_one(ctx, "reboot"),
    "StartInstances": lambda ctx: _power_many(ctx, "start"),
    "StopInstances": lambda ctx: _power_many(ctx, "stop"),
    "RebootInstances": lambda ctx: _power_many(ctx, "reboot"),
    "DeleteInstance": delete_instance,
    "DeleteInstances": delete_instances,
    "ModifyInstanceAttribute": modify_instance_attribute,
    "DescribeRegions": describe_regions,
}

"""DescribeImages and DescribeDisks: the lookups clients make around instances.

Shapes follow the response models of alibabacloud_ecs20140526 7.11.8. The emulator has no image
store: RunInstances takes any image id (an id starting with ``win`` makes a Windows instance), so
DescribeImages answers a small catalogue of public images, and any id it is asked for by name
as an image of that kind. Disks are the system disk of each instance, nothing more.
"""

from __future__ import annotations

import json
import re
from typing import Callable

from .actions import Context, _stable_hex, opt_int, region
from .errors import invalid

# The public images a listing shows: the short ids the tests and docs use, and two ids in the
# form Alibaba's public images have.
PUBLIC_IMAGES = ("debian_12_x64", "debian_12_7_x64_20G_alibase_20241023.vhd", "win2022_datacenter",
                 "win2022_21H2_x64_dtc_en-us_40G_alibase_20241112.vhd")
CREATED = "2024-10-23T00:00:00Z"


def _is_windows(image_id: str) -> bool:
    return image_id.lower().startswith("win")


def _image(image_id: str) -> dict:
    windows = _is_windows(image_id)
    return {
        "ImageId": image_id, "ImageName": image_id, "ImageFamily": "", "Description": "",
        "OSType": "windows" if windows else "linux",
        "OSName": "Windows Server 2022 64-bit" if windows else "Debian 12 64-bit",
        "OSNameEn": "Windows Server 2022 64-bit" if windows else "Debian 12 64-bit",
        "Platform": "Windows Server 2022" if windows else "Debian",
        "Architecture": "x86_64", "Size": 40 if windows else 20, "Status": "Available",
        "ImageOwnerAlias": "system", "IsPublic": True, "IsSupportCloudinit": not windows,
        "IsSupportIoOptimized": True, "Usage": "instance", "CreationTime": CREATED,
        "BootMode": "UEFI-Preferred" if not windows else "BIOS", "ProductCode": "", "Progress": "100%",
    }


def describe_images(ctx: Context) -> dict:
    region_id = region(ctx)
    page = opt_int(ctx, "PageNumber", 1, 1, 1_000_000)
    size = opt_int(ctx, "PageSize", 10, 1, 100)
    asked = [i.strip() for i in (ctx.params.get("ImageId") or "").split(",") if i.strip()]
    images = [_image(i) for i in (list(dict.fromkeys(asked)) or PUBLIC_IMAGES)]
    os_type = (ctx.params.get("OSType") or "").lower()
    if os_type:
        images = [i for i in images if i["OSType"] == os_type]
    return {"RegionId": region_id, "TotalCount": len(images), "PageNumber": page, "PageSize": size,
            "Images": {"Image": images[(page - 1) * size:page * size]}}


def _disk(row) -> dict:
    windows = row["os_type"] == "windows"
    return {
        "DiskId": "d-" + _stable_hex(row["id"], "system", length=20), "DiskName": "", "Description": "",
        "InstanceId": row["id"], "Type": "system", "Category": "cloud_essd", "PerformanceLevel": "PL0",
        "Size": 40 if windows else 20, "Status": "In_use", "Device": "/dev/xvda", "ImageId": row["image_id"],
        "RegionId": row["region"], "ZoneId": f"{row['region']}-a", "Portable": False, "DeleteWithInstance": True,
        "Encrypted": False, "CreationTime": row["created"], "AttachedTime": row["created"],
        "ResourceGroupId": row["resource_group"], "Tags": {"Tag": []},
    }


def describe_disks(ctx: Context) -> dict:
    region_id = region(ctx)
    page = opt_int(ctx, "PageNumber", 1, 1, 1_000_000)
    size = opt_int(ctx, "PageSize", 10, 1, 100)
    where, args = ["account=?", "region=?"], [ctx.account.name, region_id]
    if ctx.params.get("InstanceId"):
        where.append("id=?")
        args.append(ctx.params["InstanceId"])
    with ctx.state.read() as db:
        rows = db.execute(f"SELECT * FROM instances WHERE {' AND '.join(where)} ORDER BY seq", args).fetchall()
    disks = [_disk(r) for r in rows]
    wanted = _disk_ids(ctx)
    if wanted is not None:
        disks = [d for d in disks if d["DiskId"] in wanted]
    if (ctx.params.get("DiskType") or "all") not in ("all", "system"):
        disks = []
    return {"TotalCount": len(disks), "PageNumber": page, "PageSize": size,
            "Disks": {"Disk": disks[(page - 1) * size:page * size]}}


def _disk_ids(ctx: Context) -> set[str] | None:
    raw = ctx.params.get("DiskIds")
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    well_formed = isinstance(value, list) and all(isinstance(v, str) and re.fullmatch(r"d-\w+", v) for v in value)
    if not well_formed or len(value) > 100:
        raise invalid("DiskIds", "expected a JSON array of disk ids")
    return set(value)


ACTIONS: dict[str, Callable[[Context], dict]] = {
    "DescribeImages": describe_images,
    "DescribeDisks": describe_disks,
}

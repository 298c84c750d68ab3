# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: which host serves a product (ECS, STS) in a region.

Standard library only, no collection imports: the client, the credentials and the error
messages that suggest a region all read it.

The rule is the official SDKs' ``regional`` rule, ``<product>[-<network>].<region>.aliyuncs.com``
(``Utils.get_endpoint_rules`` of ``alibabacloud-tea-openapi``), except for the regions of each
client's ``_endpoint_map`` (``alibabacloud_ecs20140526`` 7.11.8 and ``alibabacloud_sts20150401``
1.2.0, ``client.py``). Only the maps' public regions are kept here; the others are Alibaba's own
test and internal regions. The central ``ecs.aliyuncs.com`` is not a global default: only the
regions listed below go there.
"""

from __future__ import annotations

import difflib
from typing import List, Optional

# Regions whose ECS endpoint is not ecs.<region>.aliyuncs.com (alibabacloud_ecs20140526 7.11.8).
ECS_ENDPOINT_MAP = {
    "cn-hangzhou": "ecs-cn-hangzhou.aliyuncs.com",
    "cn-shanghai-finance-1": "ecs-cn-hangzhou.aliyuncs.com",
    "cn-shenzhen-finance-1": "ecs-cn-hangzhou.aliyuncs.com",
    "cn-north-2-gov-1": "ecs.aliyuncs.com",
    "cn-hangzhou-finance": "ecs.aliyuncs.com",
    "cn-beijing-finance-pop": "ecs.aliyuncs.com",
    "cn-hongkong-finance-pop": "ecs.aliyuncs.com",
    "cn-beijing-gov-1": "ecs.aliyuncs.com",
    "cn-wuhan": "ecs.aliyuncs.com",
    "cn-yushanfang": "ecs.aliyuncs.com",
    "cn-zhangbei": "ecs.aliyuncs.com",
    "cn-fujian": "ecs-cn-hangzhou.aliyuncs.com",
    "ap-northeast-2-pop": "ecs.aliyuncs.com",
    "rus-west-1-pop": "ecs.aliyuncs.com",
}
# Regions whose STS endpoint is the central one (alibabacloud_sts20150401 1.2.0).
STS_ENDPOINT_MAP = {region: "sts.aliyuncs.com" for region in (
    "ap-south-1", "ap-southeast-2", "ap-northeast-2-pop", "cn-beijing-finance-pop", "cn-beijing-gov-1",
    "cn-fujian", "cn-hongkong-finance-pop", "cn-wuhan", "cn-yushanfang", "cn-zhangbei", "rus-west-1-pop")}
ENDPOINT_MAPS = {"ecs": ECS_ENDPOINT_MAP, "sts": STS_ENDPOINT_MAP}

# Public region ids, for "did you mean" when a region's endpoint does not resolve: the regions
# DescribeRegions lists (as in aliyun/alibabacloud-ecs-tool-troubleshooter's recorded reply),
# plus the finance and government regions of the endpoint maps above.
KNOWN_REGIONS = (
    "cn-qingdao", "cn-beijing", "cn-zhangjiakou", "cn-huhehaote", "cn-wulanchabu", "cn-hangzhou",
    "cn-shanghai", "cn-nanjing", "cn-fuzhou", "cn-shenzhen", "cn-heyuan", "cn-guangzhou", "cn-chengdu",
    "cn-wuhan-lr", "cn-hongkong", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2",
    "ap-southeast-3", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ap-south-1", "us-east-1",
    "us-west-1", "eu-west-1", "eu-central-1", "me-east-1", "me-central-1", "cn-shanghai-finance-1",
    "cn-shenzhen-finance-1", "cn-north-2-gov-1",
)
NETWORKS = ("public", "vpc")


def service_host(product: str, region: str, network: str = "public") -> str:
    """The host of product in region: the SDK's map first (public network), else the rule.

    The VPC endpoint follows the rule for every region (``ecs-vpc.<region>.aliyuncs.com``), as
    the ECS endpoint list documents it; the maps hold public endpoints only.
    """
    if network not in NETWORKS:
        raise ValueError(f"unknown endpoint type {network!r} (use public or vpc)")
    if network == "public":
        mapped = ENDPOINT_MAPS.get(product, {}).get(region)
        if mapped:
            return mapped
        return f"{product}.{region}.aliyuncs.com"
    return f"{product}-{network}.{region}.aliyuncs.com"


def close_regions(region: Optional[str], limit: int = 3) -> List[str]:
    """Known region ids that look like region (a typo), closest first."""
    if not region:
        return []
    return difflib.get_close_matches(region, KNOWN_REGIONS, n=limit, cutoff=0.75)

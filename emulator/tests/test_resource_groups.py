"""DescribeKeyPairs with ResourceGroupId as ECS answers it: the key pairs of the group asked for
plus those of the default resource group, whatever group is asked for (the DescribeKeyPairs
reference: "Resources in the default resource group are displayed in the response regardless of
how this parameter is set"); asking for the default group filters nothing (the request model of
alibabacloud_ecs20140526 7.11.8: filtering by the default resource group is not supported)."""

from __future__ import annotations

import json
import os
import tempfile

import pytest

from support import REGION, SDKS, EmulatorProcess, unique

EXTRA = "rg-aek2extragroup"


@pytest.fixture(scope="module")
def grouped():
    path = os.path.join(tempfile.mkdtemp(prefix="ecs-emulator-groups-"), "accounts.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"accounts": [{"name": "main", "access_keys": [{"id": "LTAI5tGroupsTest00001", "secret": "groups-secret"}],
                                 "resource_groups": [EXTRA, "rg-aek2othergroup"]}]}, handle)
    proc = EmulatorProcess("--accounts", path).start()
    yield proc
    proc.stop()


@pytest.mark.parametrize("flavour", sorted(SDKS))
def test_the_default_group_comes_back_whatever_group_is_asked(grouped, flavour):
    sdk = SDKS[flavour](grouped.endpoint, grouped.key(0))
    default = grouped.doc["accounts"][0]["resource_groups"][0]
    names = {"default": unique("rgd"), "extra": unique("rge"), "other": unique("rgo")}
    sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=names["default"])
    sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=names["extra"], ResourceGroupId=EXTRA)
    sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=names["other"], ResourceGroupId="rg-aek2othergroup")

    def listed(group):
        out = sdk.call("DescribeKeyPairs", RegionId=REGION, ResourceGroupId=group, PageSize=50)
        return {item["KeyPairName"]: item["ResourceGroupId"] for item in out["KeyPairs"]["KeyPair"]}

    extra = listed(EXTRA)
    assert extra[names["extra"]] == EXTRA and extra[names["default"]] == default
    assert names["other"] not in extra
    assert set(names.values()) <= set(listed(default))
    sdk.call("DeleteKeyPairs", RegionId=REGION, KeyPairNames=json.dumps(list(names.values())))

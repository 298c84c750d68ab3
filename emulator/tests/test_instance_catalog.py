"""DescribeInstances as current clients page it (NextToken/MaxResults; PageNumber is being
retired, the request model of alibabacloud_ecs20140526 7.11.8 says), the network fields real
VPC instances carry, and DescribeImages / DescribeDisks, through both official SDKs."""

from __future__ import annotations

import json

import pytest

from support import REGION, SDKS, ApiFailure, EmulatorProcess

LINUX, WINDOWS = "debian_12_x64", "win2022_datacenter"


@pytest.fixture(scope="module")
def fleet():
    proc = EmulatorProcess().start()
    sdk = SDKS["sdk3"](proc.endpoint, proc.key(0))
    out = sdk.call("RunInstances", RegionId=REGION, ImageId=LINUX, InstanceType="ecs.t6-c1m1.large", Amount=23)
    ids = out["InstanceIdSets"]["InstanceIdSet"]
    out = sdk.call("RunInstances", RegionId=REGION, ImageId=WINDOWS, InstanceType="ecs.t6-c1m1.large", Amount=1)
    ids += out["InstanceIdSets"]["InstanceIdSet"]
    proc.wait_idle()
    yield proc, ids
    proc.stop()


@pytest.mark.parametrize("flavour", sorted(SDKS))
def test_next_token_pages_every_instance_once(fleet, flavour):
    proc, ids = fleet
    sdk = SDKS[flavour](proc.endpoint, proc.key(0))
    seen, token, pages = [], None, 0
    while True:
        params = {"RegionId": REGION, "MaxResults": 10}
        if token:
            params["NextToken"] = token
        out = sdk.call("DescribeInstances", **params)
        pages += 1
        seen += [i["InstanceId"] for i in out["Instances"]["Instance"]]
        token = out.get("NextToken")
        if not token:
            break
    assert seen == ids and pages == 3


def test_max_results_is_clamped_as_the_model_says(fleet):
    proc, _ids = fleet
    sdk = SDKS["sdk3"](proc.endpoint, proc.key(0))
    assert len(sdk.call("DescribeInstances", RegionId=REGION, MaxResults=3)["Instances"]["Instance"]) == 10
    everything = sdk.call("DescribeInstances", RegionId=REGION, MaxResults=500)
    assert len(everything["Instances"]["Instance"]) == 24 and not everything.get("NextToken")


def test_a_made_up_token_is_refused(fleet):
    proc, _ids = fleet
    sdk = SDKS["sdk3"](proc.endpoint, proc.key(0))
    with pytest.raises(ApiFailure) as failed:
        sdk.call("DescribeInstances", RegionId=REGION, NextToken="not-a-token")
    assert (failed.value.code, failed.value.status) == ("InvalidNextToken", 400)


def test_page_number_still_pages(fleet):
    proc, ids = fleet
    sdk = SDKS["sdk1"](proc.endpoint, proc.key(0))
    second = sdk.call("DescribeInstances", RegionId=REGION, PageNumber=2, PageSize=20)
    assert [i["InstanceId"] for i in second["Instances"]["Instance"]] == ids[20:]
    assert second["TotalCount"] == 24


@pytest.mark.parametrize("flavour", sorted(SDKS))
def test_instances_carry_their_network(fleet, flavour):
    proc, ids = fleet
    sdk = SDKS[flavour](proc.endpoint, proc.key(0))
    items = sdk.call("DescribeInstances", RegionId=REGION, InstanceIds=json.dumps(ids[:2]))["Instances"]["Instance"]
    first, second = items
    private = first["VpcAttributes"]["PrivateIpAddress"]["IpAddress"][0]
    assert first["VpcAttributes"]["VpcId"].startswith("vpc-") and first["VpcAttributes"]["VSwitchId"].startswith("vsw-")
    assert first["VpcAttributes"]["VpcId"] == second["VpcAttributes"]["VpcId"]  # one VPC per account and region
    assert first["SecurityGroupIds"]["SecurityGroupId"][0].startswith("sg-")
    (nic,) = first["NetworkInterfaces"]["NetworkInterface"]
    assert nic["Type"] == "Primary" and nic["PrimaryIpAddress"] == private and nic["NetworkInterfaceId"].startswith("eni-")
    assert private.startswith("172.16.") and private != second["VpcAttributes"]["PrivateIpAddress"]["IpAddress"][0]
    assert first["Tags"]["Tag"] == []


@pytest.mark.parametrize("flavour", sorted(SDKS))
def test_describe_images(fleet, flavour):
    proc, _ids = fleet
    sdk = SDKS[flavour](proc.endpoint, proc.key(0))
    listed = sdk.call("DescribeImages", RegionId=REGION, PageSize=50)
    os_types = {i["ImageId"]: i["OSType"] for i in listed["Images"]["Image"]}
    assert os_types[LINUX] == "linux" and os_types[WINDOWS] == "windows"
    (asked,) = sdk.call("DescribeImages", RegionId=REGION, ImageId="win2019_custom")["Images"]["Image"]
    assert (asked["ImageId"], asked["OSType"], asked["Status"]) == ("win2019_custom", "windows", "Available")
    linux_only = sdk.call("DescribeImages", RegionId=REGION, OSType="linux", PageSize=50)["Images"]["Image"]
    assert linux_only and all(i["OSType"] == "linux" for i in linux_only)


@pytest.mark.parametrize("flavour", sorted(SDKS))
def test_describe_disks(fleet, flavour):
    proc, ids = fleet
    sdk = SDKS[flavour](proc.endpoint, proc.key(0))
    (disk,) = sdk.call("DescribeDisks", RegionId=REGION, InstanceId=ids[-1])["Disks"]["Disk"]
    assert (disk["InstanceId"], disk["Type"], disk["Status"], disk["ImageId"]) == (ids[-1], "system", "In_use", WINDOWS)
    everything = sdk.call("DescribeDisks", RegionId=REGION, PageSize=100)
    assert everything["TotalCount"] == 24
    by_id = sdk.call("DescribeDisks", RegionId=REGION, DiskIds=json.dumps([disk["DiskId"]]))["Disks"]["Disk"]
    assert [d["InstanceId"] for d in by_id] == [ids[-1]]

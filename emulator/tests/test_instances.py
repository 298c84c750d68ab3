"""Instances and key pair binding through both official SDKs (virtual backend)."""

from __future__ import annotations

import ipaddress
import json

import pytest

from support import REGION, SDKS, ApiFailure, EmulatorProcess, unique

LINUX = "debian_12_x64_20G_alibase.vhd"
WINDOWS = "win2022_64_dtc_en-us_40G.vhd"
PASSWORD = "Passw0rd!x"


def failure(fn, *args, **kwargs) -> ApiFailure:
    with pytest.raises(ApiFailure) as info:
        fn(*args, **kwargs)
    return info.value


def run(sdk, emu, image=LINUX, amount=1, **extra) -> list[str]:
    out = sdk.call("RunInstances", RegionId=REGION, ImageId=image, InstanceType="ecs.t6-c1m1.large",
                   Amount=amount, **extra)
    ids = out["InstanceIdSets"]["InstanceIdSet"]
    assert len(ids) == amount
    emu.wait_idle()
    return ids


def describe(sdk, ids: list[str]) -> dict[str, dict]:
    out = sdk.call("DescribeInstances", RegionId=REGION, InstanceIds=json.dumps(ids), PageSize=100)
    return {i["InstanceId"]: i for i in out["Instances"]["Instance"]}


def test_run_and_describe(emu, sdk):
    kp = unique()
    sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=kp)
    ids = run(sdk, emu, amount=2, KeyPairName=kp, InstanceName="web")
    found = describe(sdk, ids)
    assert set(found) == set(ids)
    for item in found.values():
        assert item["Status"] == "Running"
        assert item["OSType"] == "linux"
        assert item["KeyPairName"] == kp
        assert item["InstanceName"] == "web"
        (address,) = item["PublicIpAddress"]["IpAddress"]
        # Virtual instances have a range of their own, away from the containers' 127.0.10.0/24.
        assert ipaddress.IPv4Address(address) in ipaddress.IPv4Network("127.0.90.0/24")
    addresses = [i["PublicIpAddress"]["IpAddress"][0] for i in found.values()]
    assert len(set(addresses)) == 2
    by_key = sdk.call("DescribeInstances", RegionId=REGION, KeyPairName=kp)
    assert {i["InstanceId"] for i in by_key["Instances"]["Instance"]} == set(ids)


def test_describe_filters_and_paging(emu, sdk):
    ids = run(sdk, emu, amount=3)
    sdk.call("StopInstance", InstanceId=ids[0])
    emu.wait_idle()
    stopped = sdk.call("DescribeInstances", RegionId=REGION, InstanceIds=json.dumps(ids), Status="Stopped")
    assert [i["InstanceId"] for i in stopped["Instances"]["Instance"]] == [ids[0]]
    page = sdk.call("DescribeInstances", RegionId=REGION, InstanceIds=json.dumps(ids), PageSize=2, PageNumber=2)
    assert page["TotalCount"] == 3 and len(page["Instances"]["Instance"]) == 1
    assert failure(sdk.call, "DescribeInstances", RegionId=REGION, PageSize=101).status == 400
    assert failure(sdk.call, "DescribeInstances", RegionId=REGION, InstanceIds="i-1,i-2").code == "InvalidInstanceIds.Malformed"
    assert failure(sdk.call, "DescribeInstances", RegionId=REGION, Status="Exploded").code == "InvalidStatus.ValueNotSupported"


def test_power_cycle_and_status_errors(emu, sdk):
    (iid,) = run(sdk, emu)
    err = failure(sdk.call, "StartInstance", InstanceId=iid)
    assert (err.code, err.status) == ("IncorrectInstanceStatus", 403)
    sdk.call("StopInstance", InstanceId=iid, ForceStop=True)
    assert describe(sdk, [iid])[iid]["Status"] in ("Stopping", "Stopped")
    emu.wait_idle()
    assert describe(sdk, [iid])[iid]["Status"] == "Stopped"
    assert failure(sdk.call, "RebootInstance", InstanceId=iid).code == "IncorrectInstanceStatus"
    sdk.call("StartInstance", InstanceId=iid)
    emu.wait_idle()
    sdk.call("RebootInstance", InstanceId=iid)
    emu.wait_idle()
    assert describe(sdk, [iid])[iid]["Status"] == "Running"
    err = failure(sdk.call, "DeleteInstance", InstanceId=iid)
    assert err.code == "IncorrectInstanceStatus"
    sdk.call("DeleteInstance", InstanceId=iid, Force=True)
    assert describe(sdk, [iid]) == {}
    assert failure(sdk.call, "StopInstance", InstanceId=iid).code == "InvalidInstanceId.NotFound"


def test_batch_power(emu, sdk):
    ids = run(sdk, emu, amount=2)
    out = sdk.call("StopInstances", RegionId=REGION, InstanceId=ids + ["i-doesnotexist"])
    responses = {r["InstanceId"]: r for r in out["InstanceResponses"]["InstanceResponse"]}
    assert responses[ids[0]]["Code"] == "200" and responses[ids[0]]["CurrentStatus"] == "Stopping"
    assert responses["i-doesnotexist"]["Code"] == "InvalidInstanceId.NotFound"
    emu.wait_idle()
    sdk.call("StartInstances", RegionId=REGION, InstanceId=ids)
    emu.wait_idle()
    sdk.call("RebootInstances", RegionId=REGION, InstanceId=ids)
    emu.wait_idle()
    assert {i["Status"] for i in describe(sdk, ids).values()} == {"Running"}
    sdk.call("StopInstances", RegionId=REGION, InstanceId=ids)
    emu.wait_idle()
    sdk.call("DeleteInstances", RegionId=REGION, InstanceId=ids)
    assert describe(sdk, ids) == {}


def test_attach_detach_semantics(emu, sdk):
    first, second = unique(), unique()
    for kp in (first, second):
        sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=kp)
    linux = run(sdk, emu, amount=2)
    (win,) = run(sdk, emu, image=WINDOWS, Password=PASSWORD)
    assert describe(sdk, [win])[win]["OSType"] == "windows"
    out = sdk.call("AttachKeyPair", RegionId=REGION, KeyPairName=first, InstanceIds=json.dumps(linux + [win]))
    assert (out["TotalCount"], out["FailCount"], out["KeyPairName"]) == ("3", "1", first)
    results = {r["InstanceId"]: r for r in out["Results"]["Result"]}
    assert results[linux[0]] == {"InstanceId": linux[0], "Success": "true", "Code": "200", "Message": "successful"}
    assert results[win]["Success"] == "false" and results[win]["Code"] == "DependencyViolation.WindowsInstance"
    # a second key pair replaces the first
    out = sdk.call("AttachKeyPair", RegionId=REGION, KeyPairName=second, InstanceIds=json.dumps(linux[:1]))
    assert out["FailCount"] == "0"
    found = describe(sdk, linux)
    assert found[linux[0]]["KeyPairName"] == second and found[linux[1]]["KeyPairName"] == first
    # detaching a key pair that is not the bound one fails for that instance only
    out = sdk.call("DetachKeyPair", RegionId=REGION, KeyPairName=first, InstanceIds=json.dumps(linux))
    assert out["FailCount"] == "1"
    assert describe(sdk, linux)[linux[1]]["KeyPairName"] == ""
    # Codes and statuses of the AttachKeyPair reference's error table.
    err = failure(sdk.call, "AttachKeyPair", RegionId=REGION, KeyPairName=unique(), InstanceIds=json.dumps(linux))
    assert (err.code, err.status) == ("InvalidKeyPairName.NotFound", 400)
    too_many = json.dumps([f"i-{n}" for n in range(51)])
    for action in ("AttachKeyPair", "DetachKeyPair"):
        err = failure(sdk.call, action, RegionId=REGION, KeyPairName=first, InstanceIds=too_many)
        assert (err.code, err.status) == ("InstanceKeyPairLimitExceeded", 403)
    err = failure(sdk.call, "AttachKeyPair", RegionId=REGION, KeyPairName=first, InstanceIds="[oops")
    assert err.code == "InvalidInstanceIds.ValueNotSupported"


def test_delete_attached_is_refused_by_default(emu, sdk):
    """Today's ECS (the DeleteKeyPairs reference's error table): an attached key pair stays."""
    kp = unique()
    sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=kp)
    (iid,) = run(sdk, emu, KeyPairName=kp)
    err = failure(sdk.call, "DeleteKeyPairs", RegionId=REGION, KeyPairNames=json.dumps([kp]))
    assert (err.code, err.status) == ("InvalidParameter.KeypairAlreadyAttachedInstance", 400)
    assert sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=kp)["TotalCount"] == 1
    sdk.call("DetachKeyPair", RegionId=REGION, KeyPairName=kp, InstanceIds=json.dumps([iid]))
    sdk.call("DeleteKeyPairs", RegionId=REGION, KeyPairNames=json.dumps([kp]))


@pytest.fixture(scope="module")
def legacy_emu():
    proc = EmulatorProcess("--legacy-delete").start()
    yield proc
    proc.stop()


@pytest.mark.parametrize("flavour", sorted(SDKS))
def test_delete_attached_legacy_behaviour(legacy_emu, flavour):
    """Alibaba's key pair guide (--legacy-delete): the delete succeeds, the name stays taken."""
    emu, sdk = legacy_emu, SDKS[flavour](legacy_emu.endpoint, legacy_emu.key(0))
    kp = unique()
    sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=kp)
    (iid,) = run(sdk, emu, KeyPairName=kp)
    sdk.call("DeleteKeyPairs", RegionId=REGION, KeyPairNames=json.dumps([kp]))
    assert sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=kp)["TotalCount"] == 0
    assert describe(sdk, [iid])[iid]["KeyPairName"] == kp  # the instance keeps showing it
    err = failure(sdk.call, "CreateKeyPair", RegionId=REGION, KeyPairName=kp)
    assert err.code == "KeyPair.AlreadyExist"  # name reserved until detached
    out = sdk.call("DetachKeyPair", RegionId=REGION, KeyPairName=kp, InstanceIds=json.dumps([iid]))
    assert out["FailCount"] == "0"
    sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=kp)


def test_windows_with_key_pair_refused(emu, sdk):
    kp = unique()
    sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=kp)
    err = failure(sdk.call, "RunInstances", RegionId=REGION, ImageId=WINDOWS, KeyPairName=kp, Amount=1)
    assert err.code == "DependencyViolation.WindowsInstance"


def test_password_rules_and_reset(emu, sdk):
    err = failure(sdk.call, "RunInstances", RegionId=REGION, ImageId=LINUX, Password="short", Amount=1)
    assert err.code == "InvalidPassword.Malformed"
    (iid,) = run(sdk, emu, Password=PASSWORD)
    sdk.call("ModifyInstanceAttribute", InstanceId=iid, Password="N3w-Passw0rd", InstanceName="renamed")
    assert describe(sdk, [iid])[iid]["InstanceName"] == "renamed"
    assert failure(sdk.call, "ModifyInstanceAttribute", InstanceId=iid, Password="weak").code == "InvalidPassword.Malformed"
    log = emu.read_log()
    assert '"action": "ModifyInstanceAttribute"' in log
    assert PASSWORD not in log and "N3w-Passw0rd" not in log


def test_instances_not_visible_to_other_account(emu, sdk):
    from support import SDKS
    (iid,) = run(sdk, emu)
    other = SDKS[sdk.name](emu.endpoint, emu.key(1))
    assert describe(other, [iid]) == {}
    assert failure(other.call, "StopInstance", InstanceId=iid).code == "InvalidInstanceId.NotFound"

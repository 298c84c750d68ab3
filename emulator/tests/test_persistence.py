"""State survives restarts and kill -9; quota and account isolation under concurrency."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from support import REGION, SDKS, ApiFailure, EmulatorProcess, unique, v1_call

PUBLIC = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
    serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def test_restart_keeps_everything():
    emu = EmulatorProcess().start()
    try:
        keys_before = emu.doc["accounts"]
        sdk = SDKS["sdk3"](emu.endpoint, emu.key(0))
        name = unique()
        created = sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=name, Tag=[{"Key": "a", "Value": "b"}])
        ids = sdk.call("RunInstances", RegionId=REGION, ImageId="debian_12", KeyPairName=name,
                       Amount=1)["InstanceIdSets"]["InstanceIdSet"]
        emu.wait_idle()
        emu.restart()
        assert emu.doc["accounts"] == keys_before  # generated credentials persist with the state
        sdk = SDKS["sdk3"](emu.endpoint, emu.key(0))
        out = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name)
        item = out["KeyPairs"]["KeyPair"][0]
        assert item["KeyPairFingerPrint"].replace(":", "") == created["KeyPairFingerPrint"]
        assert item["Tags"]["Tag"] == [{"TagKey": "a", "TagValue": "b"}]
        inst = sdk.call("DescribeInstances", RegionId=REGION, InstanceIds=json.dumps(ids))["Instances"]["Instance"][0]
        assert (inst["Status"], inst["KeyPairName"]) == ("Running", name)
    finally:
        emu.stop()


def test_interrupted_transition_finishes_after_restart():
    """Killed while an instance is still 'Pending' (slow transitions): after the restart it boots."""
    emu = EmulatorProcess("--transition-seconds", "30", fast=False).start()
    try:
        key = emu.key(0)
        status, body = v1_call(emu.port, key, {"Action": "RunInstances", "RegionId": REGION, "ImageId": "debian_12"})
        iid = body["InstanceIdSets"]["InstanceIdSet"][0]
        emu.kill9()
        emu.args = [a for a in emu.args if a not in ("--transition-seconds", "30")] + ["--fast"]
        emu.start()
        emu.wait_idle()
        status, body = v1_call(emu.port, key, {"Action": "DescribeInstances", "RegionId": REGION,
                                               "InstanceIds": json.dumps([iid])})
        assert body["Instances"]["Instance"][0]["Status"] == "Running"
    finally:
        emu.stop()


def test_kill9_loses_no_acknowledged_write():
    emu = EmulatorProcess().start()
    key = emu.key(0)
    acknowledged: list[str] = []
    runs: list[tuple[str, list[str]]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            name = f"w{n}-{i}"
            try:
                if i % 5 == 0:
                    status, body = v1_call(emu.port, key, {"Action": "RunInstances", "RegionId": REGION,
                                                           "ImageId": "debian_12", "Amount": "3", "InstanceName": name})
                    if status == 200:
                        with lock:
                            runs.append((name, body["InstanceIdSets"]["InstanceIdSet"]))
                else:
                    status, _body = v1_call(emu.port, key, {
                        "Action": "ImportKeyPair", "RegionId": REGION, "KeyPairName": name, "PublicKeyBody": PUBLIC,
                        "Tag.1.Key": "x", "Tag.1.Value": "1", "Tag.2.Key": "y", "Tag.2.Value": "2"})
                    if status == 200:
                        with lock:
                            acknowledged.append(name)
            except (OSError, ValueError):
                return  # the server went away mid-request: not acknowledged

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    emu.kill9()
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) >= 20
    emu.start()
    try:
        found, page = {}, 1
        while True:
            status, body = v1_call(emu.port, key, {"Action": "DescribeKeyPairs", "RegionId": REGION,
                                                   "PageSize": "50", "PageNumber": str(page)})
            for kp in body["KeyPairs"]["KeyPair"]:
                found[kp["KeyPairName"]] = kp
            if page * 50 >= body["TotalCount"]:
                break
            page += 1
        missing = [n for n in acknowledged if n not in found]
        assert missing == []
        for kp in found.values():  # nothing half applied: every key pair has both of its tags
            assert kp["Tags"]["Tag"] == [{"TagKey": "x", "TagValue": "1"}, {"TagKey": "y", "TagValue": "2"}]
        status, body = v1_call(emu.port, key, {"Action": "DescribeInstances", "RegionId": REGION, "PageSize": "100"})
        by_name: dict[str, int] = {}
        for inst in body["Instances"]["Instance"]:
            by_name[inst["InstanceName"]] = by_name.get(inst["InstanceName"], 0) + 1
        assert all(count == 3 for count in by_name.values())  # RunInstances Amount=3: all or none
        for name, ids in runs:
            assert by_name.get(name) == 3
    finally:
        emu.stop()


def test_quota_under_concurrency():
    emu = EmulatorProcess().start()
    try:
        key = emu.key(0)
        region = "cn-beijing"
        for i in range(490):
            status, _body = v1_call(emu.port, key, {"Action": "ImportKeyPair", "RegionId": region,
                                                    "KeyPairName": f"pre-{i}", "PublicKeyBody": PUBLIC})
            assert status == 200

        def attempt(i: int) -> tuple[int, str]:
            status, body = v1_call(emu.port, key, {"Action": "ImportKeyPair", "RegionId": region,
                                                   "KeyPairName": f"race-{i}", "PublicKeyBody": PUBLIC})
            return status, body.get("Code", "")

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(attempt, range(40)))
        assert sum(1 for s, _code in results if s == 200) == 10
        assert all(r == (403, "QuotaExceed.KeyPair") for r in results if r[0] != 200)
        status, body = v1_call(emu.port, key, {"Action": "DescribeKeyPairs", "RegionId": region})
        assert body["TotalCount"] == 500
        # the quota is per region: another region still has room
        status, _body = v1_call(emu.port, key, {"Action": "ImportKeyPair", "RegionId": REGION,
                                                "KeyPairName": "elsewhere", "PublicKeyBody": PUBLIC})
        assert status == 200
    finally:
        emu.stop()


def test_account_isolation(emu):
    a = SDKS["sdk3"](emu.endpoint, emu.key(0))
    b = SDKS["sdk1"](emu.endpoint, emu.key(1))
    name = unique()
    a.call("CreateKeyPair", RegionId=REGION, KeyPairName=name)
    assert b.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name)["TotalCount"] == 0
    try:
        b.call("DeleteKeyPairs", RegionId=REGION, KeyPairNames=json.dumps([name]))
        raise AssertionError("deleted another account's key pair")
    except ApiFailure as exc:
        assert exc.code == "InvalidKeyPair.NotFound"
    b.call("CreateKeyPair", RegionId=REGION, KeyPairName=name)  # same name, other account: fine
    assert a.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name)["TotalCount"] == 1
    ids = a.call("RunInstances", RegionId=REGION, ImageId="debian_12", Amount=1)["InstanceIdSets"]["InstanceIdSet"]
    out = b.call("AttachKeyPair", RegionId=REGION, KeyPairName=name, InstanceIds=json.dumps(ids))
    assert out["FailCount"] == "1" and out["Results"]["Result"][0]["Code"] == "InvalidInstanceId.NotFound"


def test_strict_delete():
    # --strict-delete is the default now; the flag stays accepted.
    emu = EmulatorProcess("--strict-delete").start()
    try:
        sdk = SDKS["sdk3"](emu.endpoint, emu.key(0))
        name = unique()
        sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=name)
        sdk.call("RunInstances", RegionId=REGION, ImageId="debian_12", KeyPairName=name, Amount=1)
        try:
            sdk.call("DeleteKeyPairs", RegionId=REGION, KeyPairNames=json.dumps([name]))
            raise AssertionError("strict mode deleted an attached key pair")
        except ApiFailure as exc:
            assert exc.code == "InvalidParameter.KeypairAlreadyAttachedInstance"
        assert sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name)["TotalCount"] == 1
    finally:
        emu.stop()


def test_ed25519_switch():
    emu = EmulatorProcess("--ed25519", "reject").start()
    try:
        sdk = SDKS["sdk3"](emu.endpoint, emu.key(0))
        try:
            sdk.call("ImportKeyPair", RegionId=REGION, KeyPairName=unique(), PublicKeyBody=PUBLIC)
            raise AssertionError("ed25519 accepted in reject mode")
        except ApiFailure as exc:
            assert exc.code == "InvalidPublicKeyBody.Malformed"
    finally:
        emu.stop()

"""Key pair and tag actions through both official SDKs: shapes, limits and error codes."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from support import REGION, ApiFailure, unique


def openssh_public(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def md5_hex(public_line: str) -> str:
    return hashlib.md5(base64.b64decode(public_line.split()[1])).hexdigest()


def failure(fn, *args, **kwargs) -> ApiFailure:
    with pytest.raises(ApiFailure) as info:
        fn(*args, **kwargs)
    return info.value


def test_create_returns_private_key_once(sdk):
    name = unique()
    out = sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=name)
    assert out["KeyPairName"] == name
    assert out["KeyPairId"].startswith("kp-")
    assert out["RequestId"]
    private = serialization.load_pem_private_key(out["PrivateKeyBody"].encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    public = openssh_public(private)
    assert out["KeyPairFingerPrint"] == md5_hex(public)
    listed = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name, IncludePublicKey=True)
    assert listed["TotalCount"] == 1
    item = listed["KeyPairs"]["KeyPair"][0]
    assert item["PublicKey"].split()[:2] == public.split()[:2]
    assert "PrivateKeyBody" not in str(listed) and "PRIVATE" not in str(listed)
    assert item["KeyPairFingerPrint"].replace(":", "") == md5_hex(public)
    assert item["CreationTime"].endswith("Z")


def test_create_same_name_twice(sdk):
    name = unique()
    sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=name)
    err = failure(sdk.call, "CreateKeyPair", RegionId=REGION, KeyPairName=name)
    assert (err.code, err.status) == ("KeyPair.AlreadyExist", 400)


@pytest.mark.parametrize("name", ["a", "1abc", "-abc", "ab cd", "ab/cd", "x" * 129, "http://x", "ab;rm -rf",
                                  "ab'--", "ab\u0000c"])
def test_malformed_names(sdk, name):
    err = failure(sdk.call, "CreateKeyPair", RegionId=REGION, KeyPairName=name)
    assert (err.code, err.status) == ("InvalidKeyPairName.Malformed", 400)


def test_name_limits_accepted(sdk):
    for name in ("ab", "a" * 128, "a.b:c_d-e"):
        full = name if len(name) == 128 else name + unique("")
        sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=full[:128])
        sdk.call("DeleteKeyPairs", RegionId=REGION, KeyPairNames=f'["{full[:128]}"]')


def test_missing_parameter(sdk):
    err = failure(sdk.call, "CreateKeyPair", RegionId=REGION)
    assert (err.code, err.status) == ("MissingParameter", 400)


@pytest.mark.parametrize("make", [
    lambda: openssh_public(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    lambda: openssh_public(ec.generate_private_key(ec.SECP256R1())),
    lambda: openssh_public(ec.generate_private_key(ec.SECP384R1())),
    lambda: openssh_public(ec.generate_private_key(ec.SECP521R1())),
    lambda: openssh_public(ed25519.Ed25519PrivateKey.generate()),
], ids=["rsa", "p256", "p384", "p521", "ed25519"])
def test_import_accepted_types(sdk, make):
    public = make() + " user@host"
    name = unique()
    out = sdk.call("ImportKeyPair", RegionId=REGION, KeyPairName=name, PublicKeyBody=public)
    assert out["KeyPairName"] == name
    assert out["KeyPairFingerPrint"] == md5_hex(public)
    listed = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name, IncludePublicKey=True)
    assert listed["KeyPairs"]["KeyPair"][0]["PublicKey"] == " ".join(public.split()[:2])


def test_import_rfc4716(sdk, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = openssh_public(key)
    (tmp_path / "k.pub").write_text(public + "\n")
    ssh2 = subprocess.run(["ssh-keygen", "-e", "-f", str(tmp_path / "k.pub")], capture_output=True, text=True,
                          check=True).stdout
    out = sdk.call("ImportKeyPair", RegionId=REGION, KeyPairName=unique(), PublicKeyBody=ssh2)
    assert out["KeyPairFingerPrint"] == md5_hex(public)


@pytest.mark.parametrize("body", [
    "ssh-rsa", "ssh-rsa !!!notbase64", "ssh-rsa AAAAB3NzaC1yc2E=", "ssh-foo AAAA", "hello world",
    "ssh-rsa " + base64.b64encode(b"\x00\x00\x00\x07ssh-dss").decode(),
    # The armour of an OpenSSH private key around a truncated body: private material all the same.
    (Path(__file__).parent / "fixtures" / "truncated_openssh_private_key.txt").read_text(),
])
def test_import_malformed(sdk, body):
    err = failure(sdk.call, "ImportKeyPair", RegionId=REGION, KeyPairName=unique(), PublicKeyBody=body)
    assert (err.code, err.status) == ("InvalidPublicKeyBody.Malformed", 400)


def test_import_private_key_refused_without_echo(emu, sdk):
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    name = unique()
    err = failure(sdk.call, "ImportKeyPair", RegionId=REGION, KeyPairName=name, PublicKeyBody=pem)
    assert err.code == "InvalidPublicKeyBody.Malformed"
    assert sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name)["TotalCount"] == 0
    secret_line = pem.splitlines()[1]
    log = emu.read_log()
    assert '"action": "ImportKeyPair"' in log
    assert secret_line not in log


def test_describe_filters_and_paging(sdk):
    prefix = unique("pg")
    names = [f"{prefix}-{i:02d}" for i in range(12)]
    fingerprints = {}
    for i, n in enumerate(names):
        tags = [{"Key": "team", "Value": "blue" if i % 2 else "red"}]
        fingerprints[n] = sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=n, Tag=tags)["KeyPairFingerPrint"]
    page1 = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=f"{prefix}-*", PageSize=5)
    assert (page1["TotalCount"], page1["PageNumber"], page1["PageSize"]) == (12, 1, 5)
    seen = []
    for page in (1, 2, 3):
        out = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=f"{prefix}-*", PageSize=5, PageNumber=page)
        seen += [k["KeyPairName"] for k in out["KeyPairs"]["KeyPair"]]
    assert seen == names
    exact = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=f"{prefix}-0")
    assert exact["TotalCount"] == 0  # no '*': exact match only
    blue = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=f"{prefix}*", PageSize=50,
                    Tag=[{"Key": "team", "Value": "blue"}])
    assert [k["KeyPairName"] for k in blue["KeyPairs"]["KeyPair"]] == names[1::2]
    assert blue["KeyPairs"]["KeyPair"][0]["Tags"]["Tag"] == [{"TagKey": "team", "TagValue": "blue"}]
    by_fp = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairFingerPrint=fingerprints[names[3]])
    assert [k["KeyPairName"] for k in by_fp["KeyPairs"]["KeyPair"]] == [names[3]]
    err = failure(sdk.call, "DescribeKeyPairs", RegionId=REGION, PageSize=51)
    assert err.status == 400
    sdk.call("DeleteKeyPairs", RegionId=REGION, KeyPairNames=str(names).replace("'", '"'))


def test_resource_groups(emu, sdk):
    group = emu.doc["accounts"][0]["resource_groups"][0]
    name = unique()
    sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=name, ResourceGroupId=group)
    out = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name, ResourceGroupId=group)
    assert out["KeyPairs"]["KeyPair"][0]["ResourceGroupId"] == group
    err = failure(sdk.call, "CreateKeyPair", RegionId=REGION, KeyPairName=unique(), ResourceGroupId="rg-nope")
    assert (err.code, err.status) == ("InvalidResourceGroup.NotFound", 404)


def test_delete(sdk):
    names = [unique() for _n in range(3)]
    for n in names:
        sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=n)
    missing = unique()
    err = failure(sdk.call, "DeleteKeyPairs", RegionId=REGION, KeyPairNames=f'["{names[0]}", "{missing}"]')
    assert err.code == "InvalidKeyPair.NotFound"
    # all or nothing: the existing one is still there
    assert sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=names[0])["TotalCount"] == 1
    out = sdk.call("DeleteKeyPairs", RegionId=REGION, KeyPairNames=str(names).replace("'", '"'))
    assert out["RequestId"]
    for n in names:
        assert sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=n)["TotalCount"] == 0


@pytest.mark.parametrize("value", ["not json", "{}", "[1, 2]", "[]", '["a", ""]'])
def test_delete_bad_lists(sdk, value):
    err = failure(sdk.call, "DeleteKeyPairs", RegionId=REGION, KeyPairNames=value)
    assert (err.code, err.status) == ("InvalidKeyPairNames.ValueNotSupported", 400)


def test_delete_over_100_names(sdk):
    # The DeleteKeyPairs reference's error table: over the limit is 403 InstanceKeyPairLimitExceeded.
    names = str([f"n{i}" for i in range(101)]).replace("'", '"')
    err = failure(sdk.call, "DeleteKeyPairs", RegionId=REGION, KeyPairNames=names)
    assert (err.code, err.status) == ("InstanceKeyPairLimitExceeded", 403)


def test_tags(sdk):
    a, b = unique(), unique()
    for n in (a, b):
        sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=n)
    sdk.call("TagResources", RegionId=REGION, ResourceType="keypair", ResourceId=[a, b],
             Tag=[{"Key": "env", "Value": "prod"}, {"Key": "owner", "Value": ""}])
    out = sdk.call("ListTagResources", RegionId=REGION, ResourceType="keypair", ResourceId=[a])
    assert out["TagResources"]["TagResource"] == [
        {"ResourceId": a, "ResourceType": "keypair", "TagKey": "env", "TagValue": "prod"},
        {"ResourceId": a, "ResourceType": "keypair", "TagKey": "owner", "TagValue": ""}]
    sdk.call("UntagResources", RegionId=REGION, ResourceType="keypair", ResourceId=[a], TagKey=["env"])
    out = sdk.call("ListTagResources", RegionId=REGION, ResourceType="keypair", ResourceId=[a, b])
    assert sorted((t["ResourceId"], t["TagKey"]) for t in out["TagResources"]["TagResource"]) == sorted(
        [(a, "owner"), (b, "env"), (b, "owner")])
    sdk.call("UntagResources", RegionId=REGION, ResourceType="keypair", ResourceId=[b], All=True)
    out = sdk.call("ListTagResources", RegionId=REGION, ResourceType="keypair", ResourceId=[b])
    assert out["TagResources"]["TagResource"] == []
    err = failure(sdk.call, "TagResources", RegionId=REGION, ResourceType="keypair", ResourceId=[unique()],
                  Tag=[{"Key": "x", "Value": "y"}])
    assert err.code == "InvalidResourceId.NotFound"
    err = failure(sdk.call, "TagResources", RegionId=REGION, ResourceType="keypair", ResourceId=[a],
                  Tag=[{"Key": "aliyun-reserved", "Value": "y"}])
    assert err.code == "InvalidTagKey.Malformed"
    err = failure(sdk.call, "TagResources", RegionId=REGION, ResourceType="keypair", ResourceId=[a],
                  Tag=[{"Key": f"k{i}", "Value": "v"} for i in range(20)])
    assert err.code == "InvalidTagCount"  # 20 new + the one left = 21


def test_regions_are_separate(sdk):
    name = unique()
    sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=name)
    assert sdk.call("DescribeKeyPairs", RegionId="cn-shanghai", KeyPairName=name)["TotalCount"] == 0
    sdk.call("CreateKeyPair", RegionId="cn-shanghai", KeyPairName=name)
    err = failure(sdk.call, "DescribeKeyPairs", RegionId="mars-north-1")
    assert err.code == "InvalidRegionId.NotFound"

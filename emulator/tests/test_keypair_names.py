"""Key pair names as ECS takes them: letters of any script (Chinese names included), decimal
digits and . : _ -, 2 to 128 characters, a letter first, never http:// or https:// first (the
ImportKeyPair request model of alibabacloud_ecs20140526 7.11.8). Through both official SDKs."""

from __future__ import annotations

import uuid

import pytest

from support import REGION, ApiFailure


def failure(fn, *args, **kwargs) -> ApiFailure:
    with pytest.raises(ApiFailure) as info:
        fn(*args, **kwargs)
    return info.value


def tail() -> str:
    return uuid.uuid4().hex[:8]


@pytest.mark.parametrize("prefix", ["部署密钥-", "Ключ_", "clé.", "鍵:", "ab٣"])
def test_unicode_names_round_trip(sdk, prefix):
    name = prefix + tail()
    created = sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=name)
    assert created["KeyPairName"] == name
    exact = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name)
    assert [item["KeyPairName"] for item in exact["KeyPairs"]["KeyPair"]] == [name]
    pattern = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=prefix + "*", PageSize=50)
    assert name in [item["KeyPairName"] for item in pattern["KeyPairs"]["KeyPair"]]
    sdk.call("DeleteKeyPairs", RegionId=REGION, KeyPairNames=f'["{name}"]')
    gone = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name)
    assert gone["TotalCount"] == 0


def test_the_longest_chinese_name(sdk):
    name = "密" * 120 + tail()
    assert sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=name)["KeyPairName"] == name
    sdk.call("DeleteKeyPairs", RegionId=REGION, KeyPairNames=f'["{name}"]')


@pytest.mark.parametrize("name", [
    "密", "密" * 129, "٣abc", "_密钥", "密钥 一", "密钥/一", "a½b", "a²", "key😀x", "https://密钥", "HTTP://ab",
])
def test_names_outside_the_rule_are_malformed(sdk, name):
    err = failure(sdk.call, "CreateKeyPair", RegionId=REGION, KeyPairName=name)
    assert (err.code, err.status) == ("InvalidKeyPairName.Malformed", 400)


def test_http_without_slashes_is_just_a_name(sdk):
    name = "http:" + tail()
    assert sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=name)["KeyPairName"] == name
    sdk.call("DeleteKeyPairs", RegionId=REGION, KeyPairNames=f'["{name}"]')

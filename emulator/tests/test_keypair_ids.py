"""Key pair ids as ECS reports them (the response models of alibabacloud_ecs20140526 7.11.8):
CreateKeyPair answers KeyPairId; ImportKeyPair and DescribeKeyPairs items carry none."""

from __future__ import annotations

from support import REGION, unique

PUBLIC = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")


def test_only_create_answers_an_id(sdk):
    created, imported = unique("id"), unique("id")
    out = sdk.call("CreateKeyPair", RegionId=REGION, KeyPairName=created)
    assert out["KeyPairId"].startswith("kp-")
    assert "KeyPairId" not in sdk.call("ImportKeyPair", RegionId=REGION, KeyPairName=imported, PublicKeyBody=PUBLIC)
    for name in (created, imported):
        listed = sdk.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name, IncludePublicKey=True)
        (item,) = listed["KeyPairs"]["KeyPair"]
        assert item["KeyPairName"] == name and "KeyPairId" not in item
    sdk.call("DeleteKeyPairs", RegionId=REGION, KeyPairNames=f'["{created}","{imported}"]')

"""Signature checks: both schemes, every documented failure, STS tokens."""

from __future__ import annotations

import json
import os
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest

from support import REGION, SDKS, ApiFailure, EmulatorProcess, raw, unique, v1_call, v1_query, v3_headers

DESCRIBE = {"Action": "DescribeKeyPairs", "RegionId": REGION}


def test_v1_published_vector():
    """The raw test signer reproduces the published v1 example, so the tests below sign correctly."""
    query = v1_query(("testid", "testsecret"), {"Action": "DescribeRegions", "Format": "XML"}, method="GET",
                     nonce="3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
                     timestamp=datetime(2016, 2, 23, 12, 46, 24, tzinfo=timezone.utc))
    params = dict(urllib.parse.parse_qsl(query))
    assert params["Signature"] == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


@pytest.mark.parametrize("name", sorted(SDKS))
def test_wrong_secret(emu, name):
    key_id = emu.key(0)[0]
    client = SDKS[name](emu.endpoint, (key_id, "not-the-secret"))
    with pytest.raises(ApiFailure) as info:
        client.call("DescribeKeyPairs", RegionId=REGION)
    # The legacy SDK renames the error when the server's string to sign equals its own.
    expected = "SignatureDoesNotMatch" if name == "sdk3" else "InvalidAccessKeySecret"
    assert (info.value.code, info.value.status) == (expected, 400)


@pytest.mark.parametrize("name", sorted(SDKS))
def test_unknown_key_id(emu, name):
    client = SDKS[name](emu.endpoint, ("LTAI5tNoSuchKeyAtAll000", "whatever"))
    with pytest.raises(ApiFailure) as info:
        client.call("DescribeKeyPairs", RegionId=REGION)
    assert (info.value.code, info.value.status) == ("InvalidAccessKeyId.NotFound", 404)


@pytest.mark.parametrize("minutes, ok", [(-20, False), (20, False), (-14, True), (14, True)])
def test_v1_timestamp_window(emu, minutes, ok):
    when = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    status, body = v1_call(emu.port, emu.key(0), DESCRIBE, timestamp=when)
    if ok:
        assert status == 200
    else:
        assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")


def test_v3_expired(emu):
    query = {"RegionId": REGION}
    old = datetime.now(timezone.utc) - timedelta(minutes=16)
    headers = v3_headers(emu.key(0), "DescribeKeyPairs", query, emu.endpoint, timestamp=old)
    status, body = raw(emu.port, "POST", "/?" + urllib.parse.urlencode(query), headers=headers)
    assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")


def test_v1_nonce_replay(emu):
    query = v1_query(emu.key(0), DESCRIBE)
    status, _body = raw(emu.port, "POST", "/?" + query)
    assert status == 200
    status, body = raw(emu.port, "POST", "/?" + query)
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")


def test_v3_nonce_replay_and_tamper(emu):
    query = {"RegionId": REGION}
    headers = v3_headers(emu.key(0), "DescribeKeyPairs", query, emu.endpoint)
    path = "/?" + urllib.parse.urlencode(query)
    assert raw(emu.port, "POST", path, headers=headers)[0] == 200
    status, body = raw(emu.port, "POST", path, headers=headers)
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")
    headers = v3_headers(emu.key(0), "DescribeKeyPairs", query, emu.endpoint)
    status, body = raw(emu.port, "POST", "/?RegionId=cn-shanghai", headers=headers)
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")


def test_v1_tampered_parameter(emu):
    query = v1_query(emu.key(0), DESCRIBE).replace("RegionId=cn-hangzhou", "RegionId=cn-shanghai")
    status, body = raw(emu.port, "POST", "/?" + query)
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")


def test_v3_body_hash_mismatch(emu):
    headers = v3_headers(emu.key(0), "DescribeKeyPairs", {}, emu.endpoint, body=b"RegionId=cn-hangzhou")
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    status, body = raw(emu.port, "POST", "/", body=b"RegionId=cn-shanghai", headers=headers)
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")


def test_v3_form_body(emu):
    """Parameters may travel in a form body: signed through the body hash."""
    name = unique()
    body = urllib.parse.urlencode({"RegionId": REGION, "KeyPairName": name}).encode()
    headers = v3_headers(emu.key(0), "CreateKeyPair", {}, emu.endpoint, body=body)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    status, out = raw(emu.port, "POST", "/", body=body, headers=headers)
    assert status == 200 and out["KeyPairName"] == name


def test_v1_form_body(emu):
    name = unique()
    signed = v1_query(emu.key(0), {"Action": "CreateKeyPair", "RegionId": REGION, "KeyPairName": name})
    status, out = raw(emu.port, "POST", "/", body=signed.encode(),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and out["KeyPairName"] == name


def test_v1_get(emu):
    status, out = raw(emu.port, "GET", "/?" + v1_query(emu.key(0), DESCRIBE, method="GET"))
    assert status == 200 and "KeyPairs" in out


@pytest.fixture(scope="module")
def sts_emu(tmp_path_factory):
    path = tmp_path_factory.mktemp("sts") / "accounts.json"
    path.write_text(json.dumps({"accounts": [
        {"name": "main", "access_keys": [{"id": "LTAI5tPermanentKey0001", "secret": "perm-secret"},
                                         {"id": "STS.TemporaryKey0001", "secret": "sts-secret",
                                          "security_token": "token-abc"}]},
        {"name": "other", "access_keys": [{"id": "LTAI5tOtherKey00000001", "secret": "other-secret"}]}]}))
    proc = EmulatorProcess("--accounts", str(path)).start()
    yield proc
    proc.stop()


@pytest.mark.parametrize("name", sorted(SDKS))
def test_sts_token(sts_emu, name):
    key = ("STS.TemporaryKey0001", "sts-secret")
    ok = SDKS[name](sts_emu.endpoint, key, security_token="token-abc")
    assert ok.call("DescribeKeyPairs", RegionId=REGION)["TotalCount"] == 0
    wrong = SDKS[name](sts_emu.endpoint, key, security_token="token-xyz")
    with pytest.raises(ApiFailure) as info:
        wrong.call("DescribeKeyPairs", RegionId=REGION)
    assert info.value.code == "InvalidSecurityToken.Mismatch"
    missing = SDKS[name](sts_emu.endpoint, key)
    with pytest.raises(ApiFailure) as info:
        missing.call("DescribeKeyPairs", RegionId=REGION)
    assert info.value.code == "MissingSecurityToken"


def test_accounts_file_is_checked(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"accounts": [{"name": "x", "access_keys": []}]}')
    proc = EmulatorProcess("--accounts", str(bad), state_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="needs at least one access key"):
        proc.start()
    assert os.path.exists(proc.state)

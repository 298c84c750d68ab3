# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ecs_keypair_info main() and the shared credential handling, against the fake ECS."""

from __future__ import annotations

import json

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import parse_public_key
from ansible_collections.sshkeys.ecs.plugins.modules import ecs_keypair_info


def seed(fake, count, prefix="k", tags=None):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    lines = {}
    for index in range(count):
        line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        name = f"{prefix}{index:03d}"
        params = {"KeyPairName": name, "PublicKeyBody": line}
        for n, (key, value) in enumerate(sorted((tags or {}).items()), start=1):
            params[f"Tag.{n}.Key"] = key
            params[f"Tag.{n}.Value"] = value
        fake._new(fake, params, line)
        lines[name] = line
    return lines


def test_lists_every_page_with_local_fingerprints(fake_ecs, run_module):
    lines = seed(fake_ecs, 120)
    result, _out = run_module(ecs_keypair_info.main, {})
    assert result["changed"] is False
    assert [k["name"] for k in result["key_pairs"]] == sorted(lines)
    describe_calls = [p for a, p in fake_ecs.log if a == "DescribeKeyPairs"]
    assert len(describe_calls) == 3 and {p["PageSize"] for p in describe_calls} == {"50"}
    first = result["key_pairs"][0]
    key = parse_public_key(lines[first["name"]])
    assert first["fingerprint_sha256"] == key.fingerprint("sha256")
    assert first["fingerprint_md5"] == key.fingerprint("md5")
    assert first["public_key"] == key.identity() and first["key_type"] == "ssh-ed25519"


def test_exact_names_patterns_and_tags(fake_ecs, run_module):
    seed(fake_ecs, 3, prefix="web")
    seed(fake_ecs, 2, prefix="db", tags={"team": "data"})
    result, _out = run_module(ecs_keypair_info.main, {"names": ["web001", "db*", "missing"]})
    assert [k["name"] for k in result["key_pairs"]] == ["db000", "db001", "web001"]
    result, _out = run_module(ecs_keypair_info.main, {"tags": {"team": "data"}})
    assert [k["name"] for k in result["key_pairs"]] == ["db000", "db001"]
    assert result["key_pairs"][0]["tags"] == {"team": "data"}


def test_include_instances(fake_ecs, run_module):
    seed(fake_ecs, 2, prefix="web")
    fake_ecs.instances["i-1"] = {"InstanceId": "i-1", "KeyPairName": "web000", "InstanceName": "a",
                                 "Status": "Running", "OSType": "linux",
                                 "PublicIpAddress": {"IpAddress": ["127.0.10.5"]}}
    result, _out = run_module(ecs_keypair_info.main, {"include_instances": True})
    by_name = {k["name"]: k for k in result["key_pairs"]}
    assert by_name["web000"]["instances"] == [{"instance_id": "i-1", "instance_name": "a", "status": "Running",
                                               "os_type": "linux", "public_ip_addresses": ["127.0.10.5"]}]
    assert by_name["web001"]["instances"] == []


def test_many_key_pairs_list_instances_once(fake_ecs, run_module):
    seed(fake_ecs, 8)
    result, _out = run_module(ecs_keypair_info.main, {"include_instances": True})
    assert len(result["key_pairs"]) == 8
    assert [a for a, _p in fake_ecs.log].count("DescribeInstances") == 1


def test_many_exact_names_are_found_in_one_listing(fake_ecs, run_module):
    seed(fake_ecs, 60)
    seed(fake_ecs, 2, prefix="db")
    wanted = [f"k{index:03d}" for index in range(0, 60, 6)] + ["missing"]
    result, _out = run_module(ecs_keypair_info.main, {"names": wanted + ["db*"]})
    assert [k["name"] for k in result["key_pairs"]] == ["db000", "db001"] + wanted[:-1]
    queries = [p.get("KeyPairName") for a, p in fake_ecs.log if a == "DescribeKeyPairs"]
    # the pattern once, then the region's 62 key pairs in two pages
    assert queries == ["db*", None, None]


def test_few_exact_names_are_looked_up_one_by_one(fake_ecs, run_module):
    seed(fake_ecs, 60)
    result, _out = run_module(ecs_keypair_info.main, {"names": ["k001", "k002"]})
    assert [k["name"] for k in result["key_pairs"]] == ["k001", "k002"]
    assert [p.get("KeyPairName") for a, p in fake_ecs.log if a == "DescribeKeyPairs"] == ["k001", "k002"]


def test_bad_pattern_fails_before_any_call(fake_ecs, run_module):
    result, _out = run_module(ecs_keypair_info.main, {"names": ["bad name*"]})
    assert result["failed"] and "may hold only" in result["msg"] and fake_ecs.log == []


# ---------------------------------------------------------------------------------------------
# Credentials (shared by every cloud module).


def test_missing_credentials_fail_clearly(fake_ecs, run_module):
    result, _out = run_module(ecs_keypair_info.main, {}, credentials=False)
    assert result["failed"] and "no Alibaba Cloud credentials" in result["msg"] and fake_ecs.log == []


def test_environment_fallbacks(fake_ecs, run_module, monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "ENV-ID")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret-value")
    monkeypatch.setenv("ALICLOUD_REGION", "cn-beijing")
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_ENDPOINT", "http://127.0.0.1:1234")
    monkeypatch.setenv("ALICLOUD_SECURITY_TOKEN", "env-token-value")
    result, out = run_module(ecs_keypair_info.main, {}, credentials=False)
    assert result["key_pairs"] == []
    credentials, region, endpoint, kwargs = fake_ecs.seen_credentials[-1]
    assert (credentials.access_key_id, credentials.access_key_secret, credentials.security_token) == (
        "ENV-ID", "env-secret-value", "env-token-value")
    assert (region, endpoint) == ("cn-beijing", "http://127.0.0.1:1234")
    assert kwargs["signature_version"] == "v3" and kwargs["validate_certs"] is True
    assert "env-secret-value" not in out and "env-token-value" not in out


@pytest.mark.parametrize("profile_name, env_profile, expected", [
    (None, None, "CUR-ID"), ("other", None, "OTHER-ID"), (None, "other", "OTHER-ID")])
def test_cli_profile_file(fake_ecs, run_module, monkeypatch, tmp_path, profile_name, env_profile, expected):
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text(json.dumps({
        "current": "cur",
        "profiles": [
            {"name": "cur", "mode": "AK", "access_key_id": "CUR-ID", "access_key_secret": "profile-secret-1",
             "region_id": "cn-shanghai"},
            {"name": "other", "mode": "StsToken", "access_key_id": "OTHER-ID", "access_key_secret": "profile-secret-2",
             "sts_token": "profile-token", "region_id": "cn-shenzhen"},
        ]}))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED")
    if env_profile:
        monkeypatch.setenv("ALIBABA_CLOUD_PROFILE", env_profile)
    args = {"alicloud_profile": profile_name} if profile_name else {}
    result, out = run_module(ecs_keypair_info.main, args, credentials=False)
    assert result["key_pairs"] == []
    credentials, region, _endpoint, _kwargs = fake_ecs.seen_credentials[-1]
    assert credentials.access_key_id == expected
    assert region == ("cn-shanghai" if expected == "CUR-ID" else "cn-shenzhen")
    assert "profile-secret" not in out and "profile-token" not in out


def test_cli_profile_modes_without_keys_are_refused(fake_ecs, run_module, monkeypatch, tmp_path):
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text(json.dumps({
        "current": "r", "profiles": [{"name": "r", "mode": "RamRoleArn", "ram_role_arn": "acs:ram::1:role/x"}]}))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED")
    result, _out = run_module(ecs_keypair_info.main, {}, credentials=False)
    assert result["failed"] and "has no access_key_id" in result["msg"] and "profile 'r' (RamRoleArn)" in result["msg"]
    assert fake_ecs.log == []


def test_profile_file_is_ignored_when_disabled(fake_ecs, run_module, monkeypatch, tmp_path):
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text(json.dumps({
        "current": "cur", "profiles": [{"name": "cur", "mode": "AK", "access_key_id": "X",
                                        "access_key_secret": "Y", "region_id": "r"}]}))
    monkeypatch.setenv("HOME", str(tmp_path))
    result, _out = run_module(ecs_keypair_info.main, {}, credentials=False)
    assert result["failed"] and "no Alibaba Cloud credentials" in result["msg"]


def test_options_win_over_environment(fake_ecs, run_module, monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "ENV-ID")
    monkeypatch.setenv("ALIBABA_CLOUD_REGION_ID", "env-region")
    run_module(ecs_keypair_info.main, {"ecs_signature_version": "v1", "ecs_retries": 2, "ecs_timeout": 5})
    credentials, region, _endpoint, kwargs = fake_ecs.seen_credentials[-1]
    assert credentials.access_key_id == "AKID" and region == "cn-hangzhou"
    assert (kwargs["signature_version"], kwargs["retries"], kwargs["timeout"]) == ("v1", 2, 5.0)


def test_bad_endpoint_fails_clearly(fake_ecs, run_module):
    result, _out = run_module(ecs_keypair_info.main, {"ecs_endpoint": "ftp://nowhere"})
    assert result["failed"] and "ecs_endpoint" in result["msg"]


def test_sha256_fingerprint_is_matched_on_the_local_fingerprint(fake_ecs, run_module):
    """The collection prints SHA256 everywhere: a SHA256 fingerprint finds its key pair (the API
    filters by MD5 only, so it is matched here), and not just nothing."""
    lines = seed(fake_ecs, 4)
    wanted = parse_public_key(lines["k002"])
    sha256 = wanted.fingerprint("sha256")
    result, _out = run_module(ecs_keypair_info.main, {"fingerprint": sha256, "include_public_key": False})
    assert [k["name"] for k in result["key_pairs"]] == ["k002"]
    assert result["key_pairs"][0]["fingerprint_sha256"] == sha256
    assert result["key_pairs"][0]["public_key"] is None
    calls = [p for a, p in fake_ecs.log if a == "DescribeKeyPairs"]
    assert calls and all("KeyPairFingerPrint" not in p and p["IncludePublicKey"] == "true" for p in calls)
    # Names narrow the listing as before.
    result, _out = run_module(ecs_keypair_info.main, {"fingerprint": sha256, "names": ["k001", "k003"]})
    assert result["key_pairs"] == []


def test_md5_fingerprint_as_ssh_keygen_prints_it_goes_to_the_api(fake_ecs, run_module):
    lines = seed(fake_ecs, 2)
    md5 = parse_public_key(lines["k001"]).fingerprint("md5")
    assert md5.startswith("MD5:")
    run_module(ecs_keypair_info.main, {"fingerprint": md5})
    calls = [p for a, p in fake_ecs.log if a == "DescribeKeyPairs"]
    assert calls[-1]["KeyPairFingerPrint"] == md5[len("MD5:"):]


@pytest.mark.parametrize("value, words", [
    ("SHA256:short", "is not a SHA256 fingerprint as ssh-keygen -l prints it"),
    ("cD6dJqKOeVMNWzwMhzlussB+6h+CC1n5OHtBLviygCM", "without its prefix: write it as ssh-keygen -l prints it"),
    ("MD5:zz:yy", "is not a fingerprint as the API reports it"),
])
def test_malformed_fingerprints_are_refused_before_a_call(fake_ecs, run_module, value, words):
    result, _out = run_module(ecs_keypair_info.main, {"fingerprint": value})
    assert result["failed"] is True
    assert words in result["msg"]
    assert fake_ecs.log == []


def test_find_taken_names_lists_names_only_instances_still_show(fake_ecs, run_module):
    """A key pair deleted while attached leaves its name taken: find_taken_names shows who holds it."""
    seed(fake_ecs, 1, prefix="web")
    for instance_id, name in (("i-1", "gone"), ("i-2", "gone"), ("i-3", "web000")):
        fake_ecs.instances[instance_id] = {"InstanceId": instance_id, "KeyPairName": name, "Status": "Running",
                                           "OSType": "linux"}
    fake_ecs.log.clear()
    result, _out = run_module(ecs_keypair_info.main, {"names": ["nothing"], "find_taken_names": ["gone", "web000", "free", "gone"]})
    assert result["key_pairs"] == []
    # web000 is held by its key pair, free by nothing: only gone is taken without a key pair.
    assert list(result["taken_names"]) == ["gone"]
    assert [i["instance_id"] for i in result["taken_names"]["gone"]] == ["i-1", "i-2"]
    assert [p.get("KeyPairName") for a, p in fake_ecs.log if a == "DescribeInstances"] == ["gone", "free"]
    result, _out = run_module(ecs_keypair_info.main, {})
    assert result["taken_names"] == {}


def test_find_taken_names_refuses_a_blank_name_before_any_call(fake_ecs, run_module):
    result, _out = run_module(ecs_keypair_info.main, {"find_taken_names": ["ok", " bad"]})
    assert result["failed"] and "find_taken_names" in result["msg"]
    assert fake_ecs.log == []

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The credentials chain: which source wins, the same-source rule for an AccessKey pair, the CLI
profile modes (RamRoleArn and ChainableRamRoleArn through a fake STS that checks the signature
with the collection's own v3 signer), the assume-role options, and the STS endpoint."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils import _sts
from ansible_collections.sshkeys.ecs.plugins.module_utils._credentials import CredentialError, resolve_connection
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EMPTY_BODY_SHA256, HttpReply, sign_v3

SECRETS = {"LTAI-base": "base-secret", "STS.first": "first-secret"}
REGION = {"alicloud_region": "cn-hangzhou"}


class FakeSts:
    """Answers AssumeRole after checking the v3 signature with the secret of the signing key."""

    def __init__(self) -> None:
        self.calls: list = []

    def __call__(self, method, scheme, host, port, target, headers, body, timeout, context):
        query = dict(parse_qsl(urlsplit(target).query))
        auth = headers["authorization"]
        key_id = auth.split("Credential=")[1].split(",")[0]
        signed = {name: headers[name] for name in auth.split("SignedHeaders=")[1].split(",")[0].split(";")}
        expected, _names = sign_v3(method, "/", query, signed, EMPTY_BODY_SHA256, SECRETS[key_id])
        assert auth.endswith("Signature=" + expected)
        assert headers["x-acs-version"] == "2015-04-01" and headers["x-acs-action"] == "AssumeRole"
        self.calls.append({"host": host, "port": port, "scheme": scheme, "key": key_id, "query": query,
                           "token": headers.get("x-acs-security-token")})
        number = len(self.calls)
        new_id = "STS.first" if number == 1 else f"STS.n{number}"
        SECRETS.setdefault(new_id, f"temporary-secret-{number}")
        return HttpReply(200, {}, json.dumps({"RequestId": "R", "Credentials": {
            "AccessKeyId": new_id, "AccessKeySecret": SECRETS[new_id], "SecurityToken": f"token-{number}",
            "Expiration": "2099-01-01T00:00:00Z"}}).encode())


@pytest.fixture
def sts(monkeypatch):
    fake = FakeSts()
    monkeypatch.setattr(_sts, "http_transport", fake)
    return fake


def profile_file(tmp_path, profiles, current):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"current": current, "profiles": profiles}))
    return str(path)


ENV = {"ALIBABA_CLOUD_STS_ENDPOINT": "http://127.0.0.1:9"}


def test_options_keep_their_secret_with_their_id():
    environ = {"ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret"}
    with pytest.raises(CredentialError) as caught:
        resolve_connection(dict(REGION, alicloud_access_key="LTAI-opt"), environ)
    assert "the secret is missing" in str(caught.value) and "alicloud_access_key" in str(caught.value)
    assert "env-secret" not in str(caught.value)


@pytest.mark.parametrize("name", ["ALIBABA_CLOUD_ACCESS_KEY_ID", "ALICLOUD_ACCESS_KEY", "ALICLOUD_ACCESS_KEY_ID"])
def test_an_id_alone_in_the_environment_says_the_secret_is_missing(name):
    with pytest.raises(CredentialError) as caught:
        resolve_connection(REGION, {name: "LTAI-env"}, profile_file="/nonexistent")
    assert "the secret is missing" in str(caught.value) and name in str(caught.value)


def test_sources_are_named_and_options_come_first(tmp_path):
    environ = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-env", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret",
               "ALIBABA_CLOUD_SECURITY_TOKEN": "env-token"}
    options = dict(REGION, alicloud_access_key="LTAI-opt", alicloud_secret_key="opt-secret")
    connection = resolve_connection(options, environ)
    assert connection.credentials.access_key_id == "LTAI-opt" and connection.credentials.security_token is None
    assert connection.source == "the options alicloud_access_key and alicloud_secret_key"
    connection = resolve_connection(REGION, environ, profile_file="/nonexistent")
    assert (connection.credentials.access_key_id, connection.credentials.security_token) == ("LTAI-env", "env-token")
    assert connection.source == "the environment (ALIBABA_CLOUD_ACCESS_KEY_ID)"


def test_a_profile_named_in_the_options_comes_before_the_environment(tmp_path):
    path = profile_file(tmp_path, [{"name": "p", "mode": "AK", "access_key_id": "LTAI-prof",
                                    "access_key_secret": "prof-secret"}], "other")
    environ = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-env", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret"}
    connection = resolve_connection(dict(REGION, alicloud_profile="p"), environ, profile_file=path)
    assert connection.credentials.access_key_id == "LTAI-prof" and "profile 'p' (AK)" in connection.source


def test_ram_role_arn_profile_assumes_its_role(tmp_path, sts):
    path = profile_file(tmp_path, [{"name": "r", "mode": "RamRoleArn", "access_key_id": "LTAI-base",
                                    "access_key_secret": "base-secret", "ram_role_arn": "acs:ram::123:role/deploy",
                                    "ram_session_name": "ci", "expired_seconds": 900, "region_id": "cn-beijing"}], "r")
    connection = resolve_connection({}, ENV, profile_file=path)
    assert (connection.credentials.access_key_id, connection.credentials.security_token) == ("STS.first", "token-1")
    assert connection.region == "cn-beijing"
    assert sts.calls[0]["query"] == {"RoleArn": "acs:ram::123:role/deploy", "RoleSessionName": "ci",
                                     "DurationSeconds": "900"}
    assert sts.calls[0]["key"] == "LTAI-base" and sts.calls[0]["token"] is None
    assert connection.source.startswith("role acs:ram::123:role/deploy assumed with profile 'r' (RamRoleArn)")
    assert "secret" not in connection.source


def test_chainable_profile_assumes_with_its_source_profile(tmp_path, sts):
    path = profile_file(tmp_path, [
        {"name": "base", "mode": "RamRoleArn", "access_key_id": "LTAI-base", "access_key_secret": "base-secret",
         "ram_role_arn": "acs:ram::123:role/first"},
        {"name": "chain", "mode": "ChainableRamRoleArn", "source_profile": "base",
         "ram_role_arn": "acs:ram::456:role/second", "region_id": "cn-hangzhou"}], "chain")
    connection = resolve_connection({}, ENV, profile_file=path)
    assert [call["query"]["RoleArn"] for call in sts.calls] == ["acs:ram::123:role/first", "acs:ram::456:role/second"]
    # The second role is assumed with the first one's temporary key and its token.
    assert (sts.calls[1]["key"], sts.calls[1]["token"]) == ("STS.first", "token-1")
    assert connection.credentials.security_token == "token-2"


def test_a_loop_of_source_profiles_is_refused(tmp_path, sts):
    path = profile_file(tmp_path, [
        {"name": "a", "mode": "ChainableRamRoleArn", "source_profile": "b", "ram_role_arn": "acs:ram::1:role/x"},
        {"name": "b", "mode": "ChainableRamRoleArn", "source_profile": "a", "ram_role_arn": "acs:ram::1:role/x"}], "a")
    with pytest.raises(CredentialError, match="nest deeper"):
        resolve_connection(REGION, ENV, profile_file=path)
    assert sts.calls == []


@pytest.mark.parametrize("mode", ["External", "CloudSSO", "CredentialsURI", "Weird"])
def test_unsupported_modes_are_named(tmp_path, mode):
    path = profile_file(tmp_path, [{"name": "x", "mode": mode}], "x")
    with pytest.raises(CredentialError) as caught:
        resolve_connection(REGION, {}, profile_file=path)
    assert f"mode '{mode}' is not supported" in str(caught.value) and "alicloud_access_key" in str(caught.value)


def test_assume_role_options_on_top_of_options_keys(sts):
    options = dict(REGION, alicloud_access_key="LTAI-base", alicloud_secret_key="base-secret",
                   alicloud_assume_role_arn="acs:ram::123:role/app", alicloud_sts_endpoint="https://sts.example:8443",
                   alicloud_assume_role={"policy": '{"Statement": []}', "external_id": "ext-1", "session_name": "nested",
                                         "session_expiration": 1200},
                   alicloud_assume_role_session_name="flat")
    connection = resolve_connection(options, {})
    call = sts.calls[0]
    assert (call["scheme"], call["host"], call["port"]) == ("https", "sts.example", 8443)
    assert call["query"] == {"RoleArn": "acs:ram::123:role/app", "RoleSessionName": "flat", "DurationSeconds": "1200",
                             "Policy": '{"Statement": []}', "ExternalId": "ext-1"}
    assert connection.source == ("role acs:ram::123:role/app assumed with the options alicloud_access_key and "
                                 "alicloud_secret_key")


@pytest.mark.parametrize("extra, words", [
    ({"alicloud_assume_role_arn": "arn:aws:iam::1:role/x"}, "is not like acs:ram::"),
    ({"alicloud_assume_role_arn": "acs:ram::1:role/x", "alicloud_assume_role_session_name": "a"}, "2 to 64"),
    ({"alicloud_assume_role_arn": "acs:ram::1:role/x", "alicloud_assume_role_session_expiration": 60}, "900 to 43200"),
])
def test_a_bad_role_fails_before_any_request(sts, extra, words):
    options = dict(REGION, alicloud_access_key="LTAI-base", alicloud_secret_key="base-secret", **extra)
    with pytest.raises(CredentialError, match=words):
        resolve_connection(options, {})
    assert sts.calls == []


def test_an_sts_error_names_the_role_and_the_source(monkeypatch):
    def refuse(*args):
        return HttpReply(403, {}, json.dumps({"Code": "NoPermission", "Message": "You are not authorized",
                                              "RequestId": "REQ-1"}).encode())
    monkeypatch.setattr(_sts, "http_transport", refuse)
    options = dict(REGION, alicloud_access_key="LTAI-base", alicloud_secret_key="base-secret",
                   alicloud_assume_role_arn="acs:ram::1:role/x")
    with pytest.raises(CredentialError) as caught:
        resolve_connection(options, ENV)
    text = str(caught.value)
    assert "acs:ram::1:role/x" in text and "NoPermission" in text and "the options alicloud_access_key" in text
    assert "base-secret" not in text


@pytest.mark.parametrize("environ, expected", [
    ({}, "sts.cn-shanghai.aliyuncs.com"),
    ({"ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "true"}, "sts-vpc.cn-shanghai.aliyuncs.com"),
    ({"ALIBABA_CLOUD_STS_REGION": "eu-central-1"}, "sts.eu-central-1.aliyuncs.com"),
    ({"ALIBABA_CLOUD_STS_ENDPOINT": "http://127.0.0.1:1"}, "http://127.0.0.1:1"),
])
def test_sts_endpoint(environ, expected):
    assert _sts.sts_endpoint("cn-shanghai", environ) == expected
    assert _sts.sts_endpoint("cn-shanghai", environ, option="sts.example") == "sts.example"


def test_expiration_is_read_in_utc():
    assert _sts.is_expired("2000-01-01T00:00:00Z") and not _sts.is_expired("2999-01-01T00:00:00Z")
    assert not _sts.is_expired(None) and not _sts.is_expired("garbage")


class FakeOidcSts:
    """Answers AssumeRoleWithOIDC: unsigned, parameters in a form body."""

    def __init__(self) -> None:
        self.calls: list = []

    def __call__(self, method, scheme, host, port, target, headers, body, timeout, context):
        assert "authorization" not in headers
        query, form = dict(parse_qsl(urlsplit(target).query)), dict(parse_qsl(body.decode()))
        assert (query["Action"], query["Version"]) == ("AssumeRoleWithOIDC", "2015-04-01")
        self.calls.append(form)
        return HttpReply(200, {}, json.dumps({"RequestId": "R", "Credentials": {
            "AccessKeyId": "STS.oidc", "AccessKeySecret": "oidc-secret", "SecurityToken": "oidc-token",
            "Expiration": "2099-01-01T00:00:00Z"}}).encode())


@pytest.fixture
def oidc_sts(monkeypatch):
    fake = FakeOidcSts()
    monkeypatch.setattr(_sts, "http_transport", fake)
    return fake


def test_oidc_environment(tmp_path, oidc_sts):
    token = tmp_path / "token"
    token.write_text("header.payload.signature\n")
    environ = dict(ENV, ALIBABA_CLOUD_ROLE_ARN="acs:ram::123:role/pods", ALIBABA_CLOUD_ROLE_SESSION_NAME="pod-7",
                   ALIBABA_CLOUD_OIDC_PROVIDER_ARN="acs:ram::123:oidc-provider/ack", ALIBABA_CLOUD_OIDC_TOKEN_FILE=str(token))
    connection = resolve_connection(REGION, environ, profile_file="/nonexistent")
    assert oidc_sts.calls == [{"OIDCProviderArn": "acs:ram::123:oidc-provider/ack", "RoleArn": "acs:ram::123:role/pods",
                               "OIDCToken": "header.payload.signature", "RoleSessionName": "pod-7"}]
    assert connection.credentials.security_token == "oidc-token"
    assert connection.source.startswith("role acs:ram::123:role/pods assumed with the OIDC environment")


def test_oidc_environment_needs_all_three(oidc_sts):
    with pytest.raises(CredentialError, match="ALIBABA_CLOUD_OIDC_TOKEN_FILE is not set"):
        resolve_connection(REGION, {"ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1:role/x",
                                    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1:oidc-provider/p"})
    assert oidc_sts.calls == []


def test_oidc_profile_and_a_missing_token_file(tmp_path, oidc_sts):
    token = tmp_path / "token"
    path = profile_file(tmp_path, [{"name": "o", "mode": "OIDC", "ram_role_arn": "acs:ram::1:role/x",
                                    "oidc_provider_arn": "acs:ram::1:oidc-provider/p", "oidc_token_file": str(token)}], "o")
    with pytest.raises(CredentialError, match="OIDC token file"):
        resolve_connection(REGION, ENV, profile_file=path)
    token.write_text("a.b.c")
    connection = resolve_connection(REGION, ENV, profile_file=path)
    assert oidc_sts.calls[0]["RoleSessionName"] == "ansible" and "profile 'o' (OIDC)" in connection.source

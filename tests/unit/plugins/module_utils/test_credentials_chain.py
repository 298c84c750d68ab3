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


def test_a_token_in_the_options_needs_its_access_key_there():
    environ = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-env", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret"}
    with pytest.raises(CredentialError, match="a token goes with the AccessKey it was issued with"):
        resolve_connection(dict(REGION, alicloud_security_token="opt-token"), environ)


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


# --- the instance metadata service and the credentials file ----------------------------------


class FakeMetadata:
    """A metadata service on a free local port: tokens optional (or refused), one role."""

    def __init__(self, token_support: bool = True) -> None:
        import http.server
        import threading
        fake = self
        self.requests: list = []
        self.token_support = token_support

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self):
                fake.requests.append(("PUT", self.path, self.headers.get("X-aliyun-ecs-metadata-token-ttl-seconds")))
                self.answer(200, "tok-1") if fake.token_support else self.answer(404, "")

            def do_GET(self):
                fake.requests.append(("GET", self.path, self.headers.get("X-aliyun-ecs-metadata-token")))
                if self.path == "/latest/meta-data/ram/security-credentials/":
                    self.answer(200, "InstanceRole")
                elif self.path == "/latest/meta-data/ram/security-credentials/InstanceRole":
                    self.answer(200, json.dumps({"Code": "Success", "AccessKeyId": "STS.meta", "AccessKeySecret": "meta-s",
                                                 "SecurityToken": "meta-token", "Expiration": "2099-01-01T00:00:00Z"}))
                else:
                    self.answer(404, "")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def metadata():
    fake = FakeMetadata()
    yield fake
    fake.close()


def test_the_instance_role_is_the_last_resort(metadata):
    environ = {"ALIBABA_CLOUD_ECS_METADATA_ENDPOINT": metadata.url}
    connection = resolve_connection(REGION, environ, profile_file="/nonexistent")
    assert (connection.credentials.access_key_id, connection.credentials.security_token) == ("STS.meta", "meta-token")
    assert connection.source == "the ECS instance's RAM role (metadata service), role 'InstanceRole'"
    # The token first (with its TTL), then each read with it.
    assert metadata.requests[0] == ("PUT", "/latest/api/token", "21600")
    assert all(token == "tok-1" for method, _path, token in metadata.requests[1:])


def test_the_instance_role_is_not_asked_when_anything_else_holds_credentials(metadata):
    environ = {"ALIBABA_CLOUD_ECS_METADATA_ENDPOINT": metadata.url, "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-e",
               "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"}
    assert resolve_connection(REGION, environ, profile_file="/nonexistent").credentials.access_key_id == "LTAI-e"
    assert metadata.requests == []


def test_the_role_name_option_comes_first(metadata):
    environ = {"ALIBABA_CLOUD_ECS_METADATA_ENDPOINT": metadata.url, "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-e",
               "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s"}
    connection = resolve_connection(dict(REGION, ecs_role_name="InstanceRole"), environ)
    assert connection.credentials.access_key_id == "STS.meta" and "option ecs_role_name" in connection.source
    assert ("GET", "/latest/meta-data/ram/security-credentials/", "tok-1") not in metadata.requests
    with pytest.raises(CredentialError, match="refused the credentials of role 'Other'"):
        resolve_connection(dict(REGION, ecs_role_name="Other"), environ)


def test_without_tokens_the_v1_way_unless_disabled():
    fake = FakeMetadata(token_support=False)
    try:
        environ = {"ALIBABA_CLOUD_ECS_METADATA_ENDPOINT": fake.url}
        assert resolve_connection(REGION, environ, profile_file="/nonexistent").credentials.access_key_id == "STS.meta"
        assert all(token is None for method, _path, token in fake.requests if method == "GET")
        with pytest.raises(CredentialError, match="ALIBABA_CLOUD_IMDSV1_DISABLED forbids"):
            resolve_connection(REGION, dict(environ, ALIBABA_CLOUD_IMDSV1_DISABLED="true"), profile_file="/nonexistent")
    finally:
        fake.close()


def test_no_credentials_says_why_the_metadata_service_gave_none():
    with pytest.raises(CredentialError) as caught:
        resolve_connection(REGION, {"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}, profile_file="/nonexistent")
    assert "no Alibaba Cloud credentials" in str(caught.value) and "turned off" in str(caught.value)
    with pytest.raises(CredentialError) as caught:
        resolve_connection(REGION, {"ALIBABA_CLOUD_ECS_METADATA_ENDPOINT": "http://127.0.0.1:9"},
                           profile_file="/nonexistent")
    assert "did not answer" in str(caught.value) and "is this an ECS instance" in str(caught.value)


def test_ecs_ram_role_profile(tmp_path, metadata):
    path = profile_file(tmp_path, [{"name": "e", "mode": "EcsRamRole", "ram_role_name": "InstanceRole"}], "e")
    connection = resolve_connection(REGION, {"ALIBABA_CLOUD_ECS_METADATA_ENDPOINT": metadata.url}, profile_file=path)
    assert connection.credentials.access_key_id == "STS.meta" and "profile 'e' (EcsRamRole)" in connection.source


def write_ini(tmp_path, text, name="credentials"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_credentials_file_sections(tmp_path, sts, metadata):
    path = write_ini(tmp_path, "[default]\ntype = access_key\naccess_key_id = LTAI-ini\naccess_key_secret = ini-s\n"
                               "[ci]\ntype = ram_role_arn\naccess_key_id = LTAI-base\naccess_key_secret = base-secret\n"
                               "role_arn = acs:ram::123:role/ini\nrole_session_name = from-ini\n"
                               "[vm]\ntype = ecs_ram_role\nrole_name = InstanceRole\n"
                               "[sso]\ntype = cloud_sso\n")
    environ = dict(ENV, ALIBABA_CLOUD_CREDENTIALS_FILE=path, ALIBABA_CLOUD_ECS_METADATA_ENDPOINT=metadata.url)
    connection = resolve_connection(REGION, environ, profile_file="/nonexistent")
    assert connection.credentials.access_key_id == "LTAI-ini"
    assert connection.source == f"section [default] (type access_key) of {path}"
    connection = resolve_connection(REGION, dict(environ, ALIBABA_CLOUD_PROFILE="ci"), profile_file="/nonexistent")
    assert sts.calls[-1]["query"]["RoleSessionName"] == "from-ini" and connection.credentials.security_token
    connection = resolve_connection(REGION, dict(environ, ALIBABA_CLOUD_PROFILE="vm"), profile_file="/nonexistent")
    assert connection.credentials.access_key_id == "STS.meta"
    with pytest.raises(CredentialError, match="type 'cloud_sso' is not supported"):
        resolve_connection(REGION, dict(environ, ALIBABA_CLOUD_PROFILE="sso"), profile_file="/nonexistent")


def test_the_default_credentials_file_and_its_ini_twin(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".alibabacloud").mkdir()
    write_ini(tmp_path / ".alibabacloud", "[default]\ntype = access_key\naccess_key_id = LTAI-twin\n"
                                          "access_key_secret = s\n", "credentials.ini")
    environ = {"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    assert resolve_connection(REGION, environ, profile_file="/nonexistent").credentials.access_key_id == "LTAI-twin"
    write_ini(tmp_path / ".alibabacloud", "[default]\ntype = access_key\naccess_key_id = LTAI-first\n")
    with pytest.raises(CredentialError, match="has no access_key_secret: the secret is missing"):
        resolve_connection(REGION, environ, profile_file="/nonexistent")

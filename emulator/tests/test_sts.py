"""STS on the emulator, driven by the official STS client (alibabacloud_sts20150401): roles are
assumed, the temporary keys work on ECS through the official ECS clients with their token only,
and stop working once expired."""

from __future__ import annotations

import json

import pytest

from support import REGION, SDKS, ApiFailure, EmulatorProcess, unique

MAIN_UID = "1234567890123456"
OTHER_UID = "6543210987654321"


@pytest.fixture(scope="module")
def sts_emu(tmp_path_factory):
    path = tmp_path_factory.mktemp("sts-roles") / "accounts.json"
    path.write_text(json.dumps({"accounts": [
        {"name": "main", "uid": MAIN_UID, "access_keys": [{"id": "LTAI5tStsMainKey000001", "secret": "main-secret"}]},
        {"name": "other", "uid": OTHER_UID, "access_keys": [{"id": "LTAI5tStsOtherKey00001", "secret": "other-secret"}],
         "roles": [{"name": "shared", "trusted_accounts": ["main"], "max_session_duration": 7200},
                   {"name": "guarded", "trusted_accounts": [MAIN_UID], "external_id": "abc-123"}]}]}))
    proc = EmulatorProcess("--accounts", str(path)).start()
    yield proc
    proc.stop()


def sts_client(emu, key, token=None):
    from alibabacloud_sts20150401.client import Client
    from alibabacloud_tea_openapi import models as open_api_models
    return Client(open_api_models.Config(access_key_id=key[0], access_key_secret=key[1], security_token=token,
                                         endpoint=emu.endpoint, protocol="http", region_id=REGION))


def assume(emu, key, arn, **extra):
    from alibabacloud_sts20150401 import models
    from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
    request = models.AssumeRoleRequest(role_arn=arn, role_session_name=extra.pop("session", "ci-run"), **extra)
    try:
        return sts_client(emu, key).assume_role(request).body
    except (ClientException, ServerException) as exc:
        raise ApiFailure(exc.code, exc.status_code, getattr(exc, "request_id", None)) from None


MAIN = ("LTAI5tStsMainKey000001", "main-secret")


@pytest.mark.parametrize("sdk", sorted(SDKS))
def test_assumed_role_keys_work_on_ecs_with_their_token_only(sts_emu, sdk):
    body = assume(sts_emu, MAIN, f"acs:ram::{MAIN_UID}:role/Deployer", duration_seconds=900)
    creds = body.credentials
    assert creds.access_key_id.startswith("STS.") and creds.security_token and creds.expiration.endswith("Z")
    assert body.assumed_role_user.arn == f"acs:ram::{MAIN_UID}:role/deployer/ci-run"
    temporary = (creds.access_key_id, creds.access_key_secret)
    ecs = SDKS[sdk](sts_emu.endpoint, temporary, security_token=creds.security_token)
    name = unique("sts")
    ecs.call("CreateKeyPair", RegionId=REGION, KeyPairName=name)
    listed = ecs.call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name)
    assert [k["KeyPairName"] for k in listed["KeyPairs"]["KeyPair"]] == [name]
    # The key pair belongs to the role's account: the main account's own key sees it.
    assert SDKS[sdk](sts_emu.endpoint, MAIN).call("DescribeKeyPairs", RegionId=REGION, KeyPairName=name)["TotalCount"] == 1
    with pytest.raises(ApiFailure) as info:
        SDKS[sdk](sts_emu.endpoint, temporary).call("DescribeKeyPairs", RegionId=REGION)
    assert info.value.code == "MissingSecurityToken"
    ecs.call("DeleteKeyPairs", RegionId=REGION, KeyPairNames=json.dumps([name]))


def test_caller_identity_of_user_and_of_assumed_role(sts_emu):
    from alibabacloud_sts20150401 import models  # noqa: F401 - the client needs its models
    user = sts_client(sts_emu, MAIN).get_caller_identity().body
    assert (user.identity_type, user.account_id) == ("RAMUser", MAIN_UID)
    creds = assume(sts_emu, MAIN, f"acs:ram::{OTHER_UID}:role/shared", session="cross").credentials
    role = sts_client(sts_emu, (creds.access_key_id, creds.access_key_secret), creds.security_token)
    identity = role.get_caller_identity().body
    assert identity.identity_type == "AssumedRoleUser"
    assert identity.account_id == OTHER_UID
    assert identity.arn == f"acs:ram::{OTHER_UID}:role/shared/cross"


@pytest.mark.parametrize("arn, extra, code, status", [
    ("acs:ram::123:user/deployer", {}, "InvalidParameter.RoleArn", 400),
    ("arn:aws:iam::123:role/x", {}, "InvalidParameter.RoleArn", 400),
    (f"acs:ram::{OTHER_UID}:role/untrusted", {}, "EntityNotExist.Role", 404),
    ("acs:ram::9999999999999999:role/deployer", {}, "EntityNotExist.Role", 404),
    (f"acs:ram::{OTHER_UID}:role/guarded", {}, "NoPermission", 403),
    (f"acs:ram::{OTHER_UID}:role/guarded", {"external_id": "wrong"}, "NoPermission", 403),
    (f"acs:ram::{MAIN_UID}:role/deployer", {"duration_seconds": 899}, "InvalidParameter.DurationSeconds", 400),
    (f"acs:ram::{MAIN_UID}:role/deployer", {"duration_seconds": 3601}, "InvalidParameter.DurationSeconds", 400),
    (f"acs:ram::{MAIN_UID}:role/deployer", {"session": "a"}, "InvalidParameter.RoleSessionName", 400),
    (f"acs:ram::{MAIN_UID}:role/deployer", {"session": "a b"}, "InvalidParameter.RoleSessionName", 400),
    (f"acs:ram::{MAIN_UID}:role/deployer", {"policy": "not json"}, "InvalidParameter.PolicyGrammar", 400),
])
def test_assume_role_errors(sts_emu, arn, extra, code, status):
    with pytest.raises(ApiFailure) as info:
        assume(sts_emu, MAIN, arn, **extra)
    assert (info.value.code, info.value.status) == (code, status)


def test_cross_account_trust_from_the_accounts_file(sts_emu):
    # Listed with the caller's account among its trusted accounts, and its longer maximum.
    assert assume(sts_emu, MAIN, f"acs:ram::{OTHER_UID}:role/shared", duration_seconds=7200).credentials
    assert assume(sts_emu, MAIN, f"acs:ram::{OTHER_UID}:role/guarded", external_id="abc-123").credentials
    # The other way round nothing is listed: refused.
    with pytest.raises(ApiFailure) as info:
        assume(sts_emu, ("LTAI5tStsOtherKey00001", "other-secret"), f"acs:ram::{MAIN_UID}:role/anything")
    assert info.value.code == "EntityNotExist.Role"


@pytest.mark.parametrize("sdk", sorted(SDKS))
def test_expired_temporary_keys_are_refused(sts_emu, sdk):
    creds = assume(sts_emu, MAIN, f"acs:ram::{MAIN_UID}:role/deployer").credentials
    ecs = SDKS[sdk](sts_emu.endpoint, (creds.access_key_id, creds.access_key_secret),
                    security_token=creds.security_token)
    assert ecs.call("DescribeKeyPairs", RegionId=REGION)["TotalCount"] >= 0
    status, listed = sts_emu.admin("GET", "/_admin/sts/credentials")
    assert status == 200 and creds.security_token in [c["SecurityToken"] for c in listed["Credentials"]]
    status, doc = sts_emu.admin("POST", "/_admin/sts/expire")
    assert status == 200 and doc["Expired"] >= 1
    with pytest.raises(ApiFailure) as info:
        ecs.call("DescribeKeyPairs", RegionId=REGION)
    assert info.value.code == "InvalidSecurityToken.Expired"


# --- AssumeRoleWithOIDC ----------------------------------------------------------------------

ISSUER = "https://oidc.emulator.test/cluster-1"
PROVIDER_ARN = f"acs:ram::{MAIN_UID}:oidc-provider/ack-cluster"


def make_jwt(key, claims: dict, alg: str = "RS256") -> str:
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    head = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": "k1"}).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(key.sign(head.encode(), padding.PKCS1v15(), hashes.SHA256()))


@pytest.fixture(scope="module")
def oidc(tmp_path_factory):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    path = tmp_path_factory.mktemp("sts-oidc") / "accounts.json"
    path.write_text(json.dumps({"accounts": [
        {"name": "main", "uid": MAIN_UID, "access_keys": [{"id": "LTAI5tOidcMainKey00001", "secret": "main-secret"}],
         "oidc_providers": [{"name": "ack-cluster", "issuer": ISSUER, "client_ids": ["sts.aliyuncs.com"],
                             "public_key": pem}]}]}))
    proc = EmulatorProcess("--accounts", str(path)).start()
    yield proc, key, other
    proc.stop()


def assume_oidc(emu, token, role="acs:ram::%s:role/pods" % MAIN_UID, provider=PROVIDER_ARN):
    from alibabacloud_sts20150401 import models
    from alibabacloud_sts20150401.client import Client
    from alibabacloud_tea_openapi import models as open_api_models
    from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
    # No AccessKey: AssumeRoleWithOIDC is an anonymous call.
    client = Client(open_api_models.Config(endpoint=emu.endpoint, protocol="http", region_id=REGION))
    request = models.AssumeRoleWithOIDCRequest(oidcprovider_arn=provider, role_arn=role, oidctoken=token,
                                               role_session_name="pod-1")
    try:
        return client.assume_role_with_oidc(request).body
    except (ClientException, ServerException) as exc:
        raise ApiFailure(exc.code, exc.status_code, getattr(exc, "request_id", None)) from None


def claims(**changes):
    import time
    base = {"iss": ISSUER, "aud": "sts.aliyuncs.com", "sub": "system:serviceaccount:ci:runner",
            "iat": int(time.time()), "exp": int(time.time()) + 600}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_oidc_token_gets_keys_that_work_on_ecs(oidc):
    emu, key, _other = oidc
    body = assume_oidc(emu, make_jwt(key, claims()))
    assert body.assumed_role_user.arn == f"acs:ram::{MAIN_UID}:role/pods/pod-1"
    assert body.oidctoken_info.subject == "system:serviceaccount:ci:runner"
    creds = body.credentials
    ecs = SDKS["sdk3"](emu.endpoint, (creds.access_key_id, creds.access_key_secret), security_token=creds.security_token)
    assert ecs.call("DescribeKeyPairs", RegionId=REGION)["TotalCount"] == 0


@pytest.mark.parametrize("case, code", [
    ("expired", "AuthenticationFail.OIDCToken.Expired"),
    ("audience", "AuthenticationFail.OIDCToken.AudienceNotMatch"),
    ("issuer", "AuthenticationFail.OIDCToken.Invalid"),
    ("other key", "AuthenticationFail.OIDCToken.InvalidSignature"),
    ("two parts", "AuthenticationFail.OIDCToken.Invalid"),
    ("unknown provider", "AuthenticationFail.NoPermission"),
])
def test_oidc_tokens_are_checked_as_sts_checks_them(oidc, case, code):
    emu, key, other = oidc
    token, provider = make_jwt(key, claims()), PROVIDER_ARN
    if case == "expired":
        token = make_jwt(key, claims(exp=1_600_000_000))
    elif case == "audience":
        token = make_jwt(key, claims(aud="someone-else"))
    elif case == "issuer":
        token = make_jwt(key, claims(iss="https://elsewhere"))
    elif case == "other key":
        token = make_jwt(other, claims())
    elif case == "two parts":
        token = token.rsplit(".", 1)[0]
    else:
        provider = f"acs:ram::{MAIN_UID}:oidc-provider/nobody"
    with pytest.raises(ApiFailure) as info:
        assume_oidc(emu, token, provider=provider)
    assert (info.value.code, info.value.status) == (code, 401)


def test_assume_role_signed_v1_with_the_legacy_sdk(sts_emu):
    """The legacy core SDK's CommonRequest: another v1 (HMAC-SHA1) client of STS besides the
    official STS client, which signs its RPC calls the same way."""
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.request import CommonRequest
    client = AcsClient(MAIN[0], MAIN[1], REGION, auto_retry=False, timeout=30)
    request = CommonRequest(domain=sts_emu.endpoint, version="2015-04-01", action_name="AssumeRole")
    request.set_protocol_type("http")
    request.set_method("POST")
    request.add_query_param("RoleArn", f"acs:ram::{MAIN_UID}:role/legacy")
    request.add_query_param("RoleSessionName", "legacy-sdk")
    body = json.loads(client.do_action_with_exception(request))
    assert body["Credentials"]["AccessKeyId"].startswith("STS.")
    assert body["AssumedRoleUser"]["Arn"] == f"acs:ram::{MAIN_UID}:role/legacy/legacy-sdk"

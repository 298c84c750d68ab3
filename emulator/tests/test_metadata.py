"""The instance metadata service (--metadata-listen): tokens, the v1 fallback and hardened mode,
and role credentials that work on ECS through the official SDK and are renewed once expired."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from support import REGION, SDKS, ApiFailure, EmulatorProcess

PATH = "/latest/meta-data/ram/security-credentials/"


@pytest.fixture(scope="module")
def meta():
    proc = EmulatorProcess("--metadata-listen", "127.0.0.1:0", "--metadata-role", "CiRunner").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def hardened():
    proc = EmulatorProcess("--metadata-listen", "127.0.0.1:0", "--metadata-hardened").start()
    yield proc
    proc.stop()


def request(emu, method, path, headers=None):
    url = urlsplit(emu.doc["metadata_endpoint"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request(method, path, headers=headers or {})
    reply = conn.getresponse()
    body = reply.read().decode()
    conn.close()
    return reply.status, body


def token(emu, ttl="21600"):
    status, body = request(emu, "PUT", "/latest/api/token", {"X-aliyun-ecs-metadata-token-ttl-seconds": ttl})
    assert status == 200
    return body


def test_role_credentials_with_a_token_work_on_ecs(meta):
    headers = {"X-aliyun-ecs-metadata-token": token(meta)}
    assert request(meta, "GET", PATH, headers) == (200, "CiRunner")
    status, body = request(meta, "GET", PATH + "CiRunner", headers)
    creds = json.loads(body)
    assert status == 200 and creds["Code"] == "Success" and creds["Expiration"].endswith("Z")
    ecs = SDKS["sdk3"](meta.endpoint, (creds["AccessKeyId"], creds["AccessKeySecret"]),
                       security_token=creds["SecurityToken"])
    assert ecs.call("DescribeKeyPairs", RegionId=REGION)["TotalCount"] == 0
    # The same credentials until they near their end, as on an instance.
    assert json.loads(request(meta, "GET", PATH + "CiRunner", headers)[1])["AccessKeyId"] == creds["AccessKeyId"]


def test_expired_role_credentials_are_renewed(meta):
    first = json.loads(request(meta, "GET", PATH + "CiRunner")[1])
    assert meta.admin("POST", "/_admin/sts/expire")[0] == 200
    with pytest.raises(ApiFailure) as info:
        SDKS["sdk1"](meta.endpoint, (first["AccessKeyId"], first["AccessKeySecret"]),
                     security_token=first["SecurityToken"]).call("DescribeKeyPairs", RegionId=REGION)
    assert info.value.code == "InvalidSecurityToken.Expired"
    second = json.loads(request(meta, "GET", PATH + "CiRunner")[1])
    assert second["AccessKeyId"] != first["AccessKeyId"]


@pytest.mark.parametrize("ttl", ["0", "21601", "abc", ""])
def test_a_bad_ttl_is_refused(meta, ttl):
    headers = {"X-aliyun-ecs-metadata-token-ttl-seconds": ttl} if ttl else {}
    assert request(meta, "PUT", "/latest/api/token", headers)[0] == 400


def test_unknown_tokens_roles_and_paths(meta):
    assert request(meta, "GET", PATH, {"X-aliyun-ecs-metadata-token": "made-up"})[0] == 401
    assert request(meta, "GET", PATH + "OtherRole")[0] == 404
    assert request(meta, "GET", "/latest/meta-data/nothing-here")[0] == 404


def test_hardened_mode_needs_a_token(hardened):
    assert request(hardened, "GET", PATH)[0] == 403
    assert request(hardened, "GET", PATH, {"X-aliyun-ecs-metadata-token": token(hardened)}) == (200, "ecs-instance-role")

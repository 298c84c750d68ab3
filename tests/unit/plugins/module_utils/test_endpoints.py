# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The endpoint of a region is the one the official SDKs pick (their clients are the oracle)."""

from __future__ import annotations

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils import _ecs_client as ec
from ansible_collections.sshkeys.ecs.plugins.module_utils import _endpoints as ep

ecs_sdk = pytest.importorskip("alibabacloud_ecs20140526.client")
sts_sdk = pytest.importorskip("alibabacloud_sts20150401.client")
openapi_models = pytest.importorskip("alibabacloud_tea_openapi.models")


@pytest.fixture(autouse=True)
def _no_metadata(monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    monkeypatch.setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")


def _sdk_endpoint(module, region, network=None):
    config = openapi_models.Config(access_key_id="AKID", access_key_secret="sec", region_id=region, network=network)
    return module.Client(config)._endpoint


REGIONS = sorted(set(ep.KNOWN_REGIONS) | set(ep.ECS_ENDPOINT_MAP) | set(ep.STS_ENDPOINT_MAP))


@pytest.mark.parametrize("region", REGIONS)
def test_public_endpoints_are_the_official_sdks(region):
    assert ep.service_host("ecs", region) == _sdk_endpoint(ecs_sdk, region)
    assert ep.service_host("sts", region) == _sdk_endpoint(sts_sdk, region)


@pytest.mark.parametrize("region", sorted(set(ep.KNOWN_REGIONS) - set(ep.ECS_ENDPOINT_MAP)))
def test_vpc_endpoints_follow_the_sdk_rule(region):
    assert ep.service_host("ecs", region, "vpc") == _sdk_endpoint(ecs_sdk, region, "vpc") == f"ecs-vpc.{region}.aliyuncs.com"


def test_a_mapped_region_gets_its_own_vpc_host_not_the_public_one():
    # The SDK returns the map's public host whatever network is asked for; the ECS endpoint
    # list names ecs-vpc.<region>.aliyuncs.com for VPC access, which is what we use.
    assert ep.service_host("ecs", "cn-hangzhou", "vpc") == "ecs-vpc.cn-hangzhou.aliyuncs.com"
    assert ep.service_host("ecs", "cn-hangzhou") == "ecs-cn-hangzhou.aliyuncs.com"


def test_the_central_endpoint_is_not_a_default():
    assert ep.service_host("ecs", "eu-central-1") == "ecs.eu-central-1.aliyuncs.com"
    assert ep.service_host("ecs", "cn-wuhan") == "ecs.aliyuncs.com"


def test_unknown_network_is_refused():
    with pytest.raises(ValueError, match="public or vpc"):
        ep.service_host("ecs", "cn-hangzhou", "internal")


@pytest.mark.parametrize("region, network, host", [
    ("cn-hangzhou", "public", "ecs-cn-hangzhou.aliyuncs.com"),
    ("cn-shanghai", "vpc", "ecs-vpc.cn-shanghai.aliyuncs.com"),
    ("ap-southeast-1", "public", "ecs.ap-southeast-1.aliyuncs.com"),
])
def test_the_client_sends_to_the_region_endpoint(region, network, host):
    client = ec.EcsClient(ec.Credentials("AKID", "sec"), region, endpoint_type=network)
    assert (client.scheme, client.host, client.port) == ("https", host, None)
    _target, headers, _body = client.build_request("DescribeKeyPairs", {})
    assert headers["host"] == host

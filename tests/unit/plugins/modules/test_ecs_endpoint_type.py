# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ecs_endpoint_type: the option or ALIBABA_CLOUD_ECS_ENDPOINT_TYPE picks the region's public or
VPC endpoint; an endpoint given outright wins; a wrong value fails before any request."""

from __future__ import annotations

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import parse_endpoint
from ansible_collections.sshkeys.ecs.plugins.modules import ecs_keypair_info


@pytest.mark.parametrize("option, env, region, host", [
    ("vpc", None, "cn-shanghai", "ecs-vpc.cn-shanghai.aliyuncs.com"),
    (None, "vpc", "ap-southeast-1", "ecs-vpc.ap-southeast-1.aliyuncs.com"),
    ("vpc", None, "cn-hangzhou", "ecs-vpc.cn-hangzhou.aliyuncs.com"),
    ("public", "vpc", "cn-hangzhou", "ecs-cn-hangzhou.aliyuncs.com"),  # the option wins
    (None, None, "cn-wuhan", "ecs.aliyuncs.com"),  # the SDK's map, not the rule
    (None, None, "eu-central-1", "ecs.eu-central-1.aliyuncs.com"),
])
def test_the_region_endpoint_of_the_chosen_network(fake_ecs, run_module, monkeypatch, option, env, region, host):
    if env:
        monkeypatch.setenv("ALIBABA_CLOUD_ECS_ENDPOINT_TYPE", env)
    args = {"ecs_endpoint": None, "alicloud_region": region}
    if option:
        args["ecs_endpoint_type"] = option
    result, _out = run_module(ecs_keypair_info.main, args)
    assert not result.get("failed"), result
    _credentials, _region, _endpoint, kwargs = fake_ecs.seen_credentials[-1]
    assert kwargs["endpoint_type"] == (option or env or "public")
    # The client the module built with those arguments sends to host.
    assert parse_endpoint(None, region, kwargs["endpoint_type"]) == ("https", host, None)


def test_a_given_endpoint_wins_over_the_type(fake_ecs, run_module):
    result, _out = run_module(ecs_keypair_info.main, {"ecs_endpoint_type": "vpc"})
    assert not result.get("failed"), result
    _credentials, _region, endpoint, _kwargs = fake_ecs.seen_credentials[-1]
    assert endpoint == "http://127.0.0.1:9"


@pytest.mark.parametrize("env", ["internal", "VPC", "vpc "])
def test_a_wrong_type_from_the_environment_fails_before_any_request(fake_ecs, run_module, monkeypatch, env):
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_ENDPOINT_TYPE", env)
    result, _out = run_module(ecs_keypair_info.main, {})
    assert result["failed"] and "ALIBABA_CLOUD_ECS_ENDPOINT_TYPE" in result["msg"] and "public nor vpc" in result["msg"]
    assert fake_ecs.log == []


def test_a_wrong_type_option_is_refused_by_its_choices(fake_ecs, run_module):
    result, _out = run_module(ecs_keypair_info.main, {"ecs_endpoint_type": "intranet"})
    assert result["failed"] and "ecs_endpoint_type" in result["msg"]
    assert fake_ecs.log == []

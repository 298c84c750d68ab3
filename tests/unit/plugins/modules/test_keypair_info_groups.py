# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ecs_keypair_info resource_group_id: only that group's key pairs, although ECS also answers the
default group's (the fake answers as ECS does)."""

from __future__ import annotations

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import Credentials
from ansible_collections.sshkeys.ecs.plugins.modules import ecs_keypair, ecs_keypair_info

PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def _import(run_module, name, group=None):
    args = {"name": name, "public_key": PUBLIC}
    if group:
        args["resource_group_id"] = group
    result, _out = run_module(ecs_keypair.main, args)
    assert result["changed"], result


def test_only_the_group_asked_for(fake_ecs, run_module):
    _import(run_module, "in-default")
    _import(run_module, "in-team", "rg-team")
    _import(run_module, "in-other", "rg-other")
    sent = fake_ecs(Credentials("AKID", "secret"), "cn-hangzhou")._DescribeKeyPairs({"ResourceGroupId": "rg-team", "PageSize": "50", "PageNumber": "1"})
    assert {item["KeyPairName"] for item in sent["KeyPairs"]["KeyPair"]} == {"in-default", "in-team"}  # ECS's answer
    team, _out = run_module(ecs_keypair_info.main, {"resource_group_id": "rg-team"})
    assert [(item["name"], item["resource_group_id"]) for item in team["key_pairs"]] == [("in-team", "rg-team")]
    default, _out = run_module(ecs_keypair_info.main, {"resource_group_id": "rg-default"})
    assert [item["name"] for item in default["key_pairs"]] == ["in-default"]
    everything, _out = run_module(ecs_keypair_info.main, {})
    assert [item["name"] for item in everything["key_pairs"]] == ["in-default", "in-other", "in-team"]

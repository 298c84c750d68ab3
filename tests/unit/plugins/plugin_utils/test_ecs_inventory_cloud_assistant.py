# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory's Cloud Assistant choices: which hosts use the connection, and the agent marks."""

from __future__ import annotations

import pytest

from ansible_collections.sshkeys.ecs.plugins.plugin_utils._ecs_inventory import (
    InventoryConfigError,
    cloud_assistant_tag,
    cloud_assistant_variables,
    host_record,
    mark_agents,
    uses_cloud_assistant,
)

TAG = ("sshkeys-ecs-connection", "cloud_assistant")


def instance(iid="i-bp1aaaaaaaaaaaaaaaaa", os_type="linux", public=("47.0.0.1",), tags=None):
    item = {"InstanceId": iid, "OSType": os_type, "Status": "Running", "RegionId": "cn-hangzhou",
            "PublicIpAddress": {"IpAddress": list(public)}}
    if tags:
        item["Tags"] = {"Tag": [{"TagKey": k, "TagValue": v} for k, v in tags.items()]}
    return host_record(item, "cn-hangzhou")


@pytest.mark.parametrize("mode, host, expected", [
    ("never", instance(), False),
    ("all", instance(), True),
    ("all", instance(os_type="windows"), False),
    ("no_address", instance(), False),
    ("no_address", instance(public=()), True),
    ("tagged", instance(), False),
    ("tagged", instance(tags={"sshkeys-ecs-connection": "cloud_assistant"}), True),
    ("tagged", instance(tags={"sshkeys-ecs-connection": "ssh"}), False),
])
def test_which_hosts_use_the_connection(mode, host, expected):
    assert uses_cloud_assistant(host, mode, TAG) is expected


def test_a_tag_without_value_matches_any_value():
    assert uses_cloud_assistant(instance(tags={"ca": "anything"}), "tagged", cloud_assistant_tag({"ca": ""}))


@pytest.mark.parametrize("value", [{}, {"a": "1", "b": "2"}, "k=v", {"": "x"}])
def test_the_tag_option_is_one_key(value):
    with pytest.raises(InventoryConfigError, match="cloud_assistant_tag"):
        cloud_assistant_tag(value)


def test_an_unknown_mode_is_refused():
    with pytest.raises(InventoryConfigError, match="cloud_assistant_connection"):
        uses_cloud_assistant(instance(), "sometimes", TAG)


def test_variables_name_the_connection_the_instance_and_its_region_and_no_credentials():
    variables = cloud_assistant_variables(instance())
    assert variables == {"ansible_connection": "sshkeys.ecs.cloud_assistant",
                         "ansible_ecs_instance_id": "i-bp1aaaaaaaaaaaaaaaaa", "ansible_alicloud_region": "cn-hangzhou"}


def test_agents_are_marked_from_the_status_reply_and_unlisted_ones_are_not_running():
    hosts = [instance("i-bp1aaaaaaaaaaaaaaaaa"), instance("i-bp1bbbbbbbbbbbbbbbbb"), instance("i-bp1ccccccccccccccccc")]
    mark_agents(hosts, {"i-bp1aaaaaaaaaaaaaaaaa": {"CloudAssistantStatus": "true"},
                        "i-bp1bbbbbbbbbbbbbbbbb": {"CloudAssistantStatus": "false"}})
    assert [h["cloud_assistant_running"] for h in hosts] == [True, False, False]

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure logic of the inventory plugin: reading instances, filters, names, groups, addresses."""

from __future__ import annotations

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_api import describe_instances
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError
from ansible_collections.sshkeys.ecs.plugins.plugin_utils import _ecs_inventory as inv


def item(instance_id="i-1", **extra):
    """A DescribeInstances item the way the real service spells it (VPC instance)."""
    base = {
        "InstanceId": instance_id, "InstanceName": "web-1", "HostName": "iZweb1", "Status": "Running",
        "OSType": "linux", "OSName": "Debian 12", "RegionId": "cn-hangzhou", "ZoneId": "cn-hangzhou-h",
        "InstanceType": "ecs.t6-c1m1.large", "ImageId": "debian_12", "KeyPairName": "web-2024",
        "ResourceGroupId": "rg-1", "CreationTime": "2026-01-01T00:00Z",
        "PublicIpAddress": {"IpAddress": ["47.1.1.1"]},
        "EipAddress": {"IpAddress": "", "AllocationId": ""},
        "InnerIpAddress": {"IpAddress": []},
        "VpcAttributes": {"VpcId": "vpc-1", "PrivateIpAddress": {"IpAddress": ["172.16.0.5"]}},
        "Tags": {"Tag": [{"TagKey": "team", "TagValue": "web"}, {"TagKey": "env", "TagValue": "prod"}]},
    }
    base.update(extra)
    return base


def record(**extra):
    return inv.host_record(item(**extra), "cn-hangzhou")


# --- reading an instance ---------------------------------------------------------------------


def test_host_record_reads_every_field():
    host = record()
    assert host == {
        "instance_id": "i-1", "instance_name": "web-1", "host_name": "iZweb1", "status": "Running",
        "key_pair_name": "web-2024", "os_type": "linux", "os_name": "Debian 12", "region": "cn-hangzhou",
        "zone": "cn-hangzhou-h", "instance_type": "ecs.t6-c1m1.large", "image_id": "debian_12",
        "resource_group_id": "rg-1", "creation_time": "2026-01-01T00:00Z", "vpc_id": "vpc-1", "eip": None,
        "public_ips": ["47.1.1.1"], "private_ips": ["172.16.0.5"], "tags": {"team": "web", "env": "prod"},
    }


def test_elastic_ip_comes_first_and_counts_as_public():
    host = record(EipAddress={"IpAddress": "8.8.4.4", "AllocationId": "eip-1"})
    assert host["eip"] == "8.8.4.4"
    assert host["public_ips"] == ["8.8.4.4", "47.1.1.1"]
    assert inv.public_ip(host) == "8.8.4.4"


def test_classic_network_inner_address_is_the_private_one():
    host = record(VpcAttributes={"PrivateIpAddress": {"IpAddress": []}}, InnerIpAddress={"IpAddress": ["10.0.0.7"]},
                  PublicIpAddress={"IpAddress": []})
    assert host["private_ips"] == ["10.0.0.7"]
    assert host["vpc_id"] is None
    assert inv.ansible_host(host) == "10.0.0.7"


def test_sparse_item_gives_empty_values_not_errors():
    host = inv.host_record({"InstanceId": "i-9"}, "eu-central-1")
    assert host["region"] == "eu-central-1"
    assert host["key_pair_name"] is None and host["os_type"] == "" and host["tags"] == {}
    assert host["public_ips"] == [] and host["private_ips"] == []
    assert inv.ansible_host(host) is None
    assert inv.builtin_groups(host) == ["no_keypair"]


@pytest.mark.parametrize("bad, words", [
    ("not an instance", "is not an object"),
    ({"InstanceName": "x"}, "has no InstanceId"),
    ({"InstanceId": ["i-1"]}, "InstanceId that is not a string"),
    ({"InstanceId": "i-1", "PublicIpAddress": ["1.2.3.4"]}, "PublicIpAddress that is not an object"),
    ({"InstanceId": "i-1", "PublicIpAddress": {"IpAddress": [1, 2]}}, "not a list of strings"),
    ({"InstanceId": "i-1", "VpcAttributes": "vpc"}, "VpcAttributes that is not an object"),
    ({"InstanceId": "i-1", "Tags": {"Tag": "team=web"}}, "Tags.Tag that is not a list"),
    ({"InstanceId": "i-1", "Status": {"Code": 1}}, "Status that is not a string"),
])
def test_malformed_items_are_clear_errors(bad, words):
    with pytest.raises(EcsApiError) as caught:
        inv.host_record(bad, "cn-hangzhou")
    assert caught.value.code == "MalformedResponse"
    assert words in str(caught.value)
    assert "DescribeInstances" in str(caught.value) and "cn-hangzhou" in str(caught.value)


# --- addresses, names, groups, variables -----------------------------------------------------


@pytest.mark.parametrize("extra, source, expected", [
    ({}, "public_ip", "47.1.1.1"),
    ({}, "private_ip", "172.16.0.5"),
    ({"EipAddress": {"IpAddress": "8.8.4.4"}}, "public_ip", "8.8.4.4"),
    ({"PublicIpAddress": {"IpAddress": []}}, "public_ip", "172.16.0.5"),
    ({"VpcAttributes": {}}, "private_ip", "47.1.1.1"),
    ({"VpcAttributes": {}, "PublicIpAddress": {}}, "public_ip", None),
])
def test_ansible_host_prefers_the_chosen_kind_then_the_other(extra, source, expected):
    assert inv.ansible_host(record(**extra), source) == expected


def test_host_variables_are_prefixed_and_carry_ansible_host():
    variables = inv.host_variables(record(EipAddress={"IpAddress": "8.8.4.4"}))
    assert variables["ansible_host"] == "8.8.4.4"
    assert variables["ecs_public_ip"] == "8.8.4.4" and variables["ecs_private_ip"] == "172.16.0.5"
    assert variables["ecs_tags"] == {"team": "web", "env": "prod"}
    assert variables["ecs_key_pair_name"] == "web-2024"
    assert all(key.startswith("ecs_") for key in variables if key != "ansible_host")
    assert "ansible_host" not in inv.host_variables(record(VpcAttributes={}, PublicIpAddress={}))


@pytest.mark.parametrize("extra, groups", [
    ({}, ["keypair_web_2024", "status_running", "os_linux"]),
    ({"KeyPairName": "", "OSType": "windows", "Status": "Stopped"}, ["no_keypair", "status_stopped", "os_windows"]),
    ({"KeyPairName": "a.b:c-D"}, ["keypair_a_b_c_D", "status_running", "os_linux"]),
    ({"OSType": "Linux", "Status": "Starting"}, ["keypair_web_2024", "status_starting", "os_linux"]),
])
def test_builtin_groups_are_sanitised(extra, groups):
    assert inv.builtin_groups(record(**extra)) == groups


def test_hostname_first_available_preference_wins():
    host = record(InstanceName="")
    assert inv.choose_hostname(host, ["instance_name", "private_ip", "instance_id"], {}) == ("172.16.0.5", None)
    assert inv.choose_hostname(record(), ["instance_name"], {}) == ("web-1", None)
    assert inv.choose_hostname(record(), ["public_ip"], {}) == ("47.1.1.1", None)
    assert inv.choose_hostname(host, ["instance_name"], {}) == ("i-1", None)


def test_a_taken_hostname_falls_back_to_the_instance_id_with_a_warning():
    second = record(instance_id="i-2")
    name, warning = inv.choose_hostname(second, ["instance_name"], {"web-1": "i-1"})
    assert name == "i-2"
    assert "i-2" in warning and "i-1" in warning and "'web-1'" in warning
    # The same instance seen again (for example from two queries) keeps its name.
    assert inv.choose_hostname(record(), ["instance_name"], {"web-1": "i-1"}) == ("web-1", None)


# --- options and filters ---------------------------------------------------------------------


def test_statuses_accept_any_case_and_refuse_unknown_ones():
    assert inv.normalise_statuses(["running", "STOPPED", "Running"]) == ["Running", "Stopped"]
    with pytest.raises(inv.InventoryConfigError, match="'Exploded' is not an instance status"):
        inv.normalise_statuses(["Exploded"])


@pytest.mark.parametrize("call, words", [
    (lambda: inv.normalise_strings("key_pair_names", ["a", ""]), "key_pair_names: every entry"),
    (lambda: inv.normalise_strings("instance_ids", [None]), "instance_ids: every entry"),
    (lambda: inv.normalise_tags(["team"]), "tags must be a mapping"),
    (lambda: inv.normalise_tags({"": "x"}), "non-empty string"),
    (lambda: inv.normalise_tags({"team": ["a", "b"]}), "must be a string or null"),
    (lambda: inv.normalise_tags({f"k{i}": "v" for i in range(21)}), "at most 20"),
    (lambda: inv.normalise_hostnames(["ip_address"]), "'ip_address' is not one of"),
    (lambda: inv.Filters(instance_name=""), "instance_name must be"),
])
def test_bad_options_are_named(call, words):
    with pytest.raises(inv.InventoryConfigError, match=words):
        call()


def test_no_filters_is_one_plain_query():
    filters = inv.Filters()
    assert [wire(query) for query in filters.queries()] == [{}]
    assert filters.matches(record())


def wire(query):
    """The DescribeInstances parameters one query is sent with (the API layer builds them)."""
    sent = []

    class Client:
        def paginate_tokens(self, action, params, path):
            sent.append((action, params))
            return iter(())

    describe_instances(Client(), **query)
    (action, params), = sent
    assert action == "DescribeInstances"
    return {key: value for key, value in params.items() if value is not None}


def test_filters_are_pushed_down_where_the_api_takes_them():
    filters = inv.Filters(statuses=["running"], key_pair_names=["a", "b"], tags={"team": "web", "any": None},
                          instance_name="web-1")
    assert [wire(query) for query in filters.queries()] == [
        {"Status": "Running", "InstanceName": "web-1", "Tag.1.Key": "any", "Tag.2.Key": "team",
         "Tag.2.Value": "web", "KeyPairName": "a"},
        {"Status": "Running", "InstanceName": "web-1", "Tag.1.Key": "any", "Tag.2.Key": "team",
         "Tag.2.Value": "web", "KeyPairName": "b"},
    ]


def test_several_statuses_and_name_patterns_stay_on_the_controller():
    filters = inv.Filters(statuses=["Running", "Stopped"], instance_name="web-*")
    assert [wire(query) for query in filters.queries()] == [{}]


@pytest.mark.parametrize("options, extra, kept", [
    ({"statuses": ["Running", "Stopped"]}, {"Status": "Stopped"}, True),
    ({"statuses": ["Running"]}, {"Status": "Stopped"}, False),
    ({"key_pair_names": ["web-2024"]}, {}, True),
    ({"key_pair_names": ["other"]}, {}, False),
    ({"key_pair_names": ["other"]}, {"KeyPairName": ""}, False),
    ({"instance_ids": ["i-1", "i-2"]}, {}, True),
    ({"instance_ids": ["i-2"]}, {}, False),
    ({"tags": {"team": "web"}}, {}, True),
    ({"tags": {"team": None, "env": "prod"}}, {}, True),
    ({"tags": {"team": "db"}}, {}, False),
    ({"tags": {"owner": None}}, {}, False),
    ({"instance_name": "web-*"}, {}, True),
    ({"instance_name": "web-?"}, {"InstanceName": "web-12"}, False),
    ({"instance_name": "WEB-*"}, {}, False),
    ({"instance_name": "web-1", "statuses": ["running"], "tags": {"env": "prod"}}, {}, True),
])
def test_filters_match_on_the_controller(options, extra, kept):
    assert inv.Filters(**options).matches(record(**extra)) is kept


def test_fingerprint_follows_the_filters_not_their_order():
    one = inv.Filters(statuses=["Running", "Stopped"], tags={"a": "1", "b": None})
    two = inv.Filters(statuses=["stopped", "running"], tags={"b": None, "a": "1"})
    assert one.fingerprint() == two.fingerprint()
    assert one.fingerprint() != inv.Filters(statuses=["Running"]).fingerprint()


def test_select_keeps_matching_instances_once_in_order():
    items = [item("i-1"), item("i-2", Status="Stopped"), item("i-1"), item("i-3")]
    hosts = inv.select(items, "cn-hangzhou", inv.Filters(statuses=["Running"]))
    assert [h["instance_id"] for h in hosts] == ["i-1", "i-3"]

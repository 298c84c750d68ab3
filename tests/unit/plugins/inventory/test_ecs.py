# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sshkeys.ecs.ecs inventory plugin, run the way Ansible runs it (options from its
documentation, an inventory file, InventoryData) over the collection's real client, with a fake
ECS at the HTTP transport: paging, filters, groups, constructed features, cache, retries,
malformed replies and secret hygiene."""

from __future__ import annotations

import json
from functools import partial
from urllib.parse import parse_qsl, urlsplit

import pytest

from ansible import constants as C
from ansible import context
from ansible.module_utils.common.collections import ImmutableDict
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import get_docstring

from ansible_collections.sshkeys.ecs.plugins.inventory import ecs as plugin_module
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsClient, HttpReply

SECRET = "s3cr3t-SECRET-value-0123456789"
TOKEN = "sts-TOKEN-value-9876543210"
KEY_ID = "LTAI-test-key"
ENV_NAMES = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
             "ALIBABA_CLOUD_REGION_ID", "ALIBABA_CLOUD_ECS_ENDPOINT", "ALICLOUD_ACCESS_KEY", "ALICLOUD_ACCESS_KEY_ID",
             "ALICLOUD_SECRET_KEY", "ALICLOUD_ACCESS_KEY_SECRET", "ALICLOUD_SECURITY_TOKEN", "ALICLOUD_REGION",
             "ALICLOUD_REGION_ID", "ALICLOUD_ECS_ENDPOINT", "ALIBABA_CLOUD_PROFILE", "ALIBABACLOUD_PROFILE",
             "ALICLOUD_PROFILE")


def instance(instance_id, region="cn-hangzhou", name=None, status="Running", os_type="linux", key_pair="", ip=None,
             private=None, eip="", tags=None):
    return {
        "InstanceId": instance_id, "InstanceName": name or instance_id, "HostName": name or instance_id,
        "Status": status, "OSType": os_type, "RegionId": region, "ZoneId": f"{region}-b", "KeyPairName": key_pair,
        "PublicIpAddress": {"IpAddress": [ip] if ip else []}, "EipAddress": {"IpAddress": eip},
        "VpcAttributes": {"VpcId": "vpc-1", "PrivateIpAddress": {"IpAddress": [private] if private else []}},
        "Tags": {"Tag": [{"TagKey": k, "TagValue": v} for k, v in (tags or {}).items()]},
    }


class FakeEcs:
    """DescribeInstances over in-memory instances, with the API's paging and filters.

    ``ignore_filters`` answers as if the endpoint did not know a filter, so the plugin's own
    check is what keeps the inventory right. ``script`` holds replies to give first, one per request.
    """

    def __init__(self, instances, ignore_filters=False):
        self.instances = instances
        self.ignore_filters = ignore_filters
        self.requests = []
        self.script = []

    def __call__(self, method, scheme, host, port, target, headers, body, timeout, context):
        params = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
        self.requests.append({"action": headers.get("x-acs-action"), "params": params, "headers": dict(headers),
                              "target": target, "host": host, "port": port, "scheme": scheme})
        if self.script:
            status, payload = self.script.pop(0)
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            return HttpReply(status, {"content-type": "application/json"}, body)
        assert headers["x-acs-action"] == "DescribeInstances"
        found = [i for i in self.instances if i["RegionId"] == params["RegionId"] and self._wanted(i, params)]
        size, start = int(params["MaxResults"]), int(params.get("NextToken") or 0)
        assert size <= 100
        more = start + size < len(found)
        reply = {"RequestId": f"rid-{len(self.requests)}", "TotalCount": len(found),
                 "NextToken": f"{start + size}" if more else "", "Instances": {"Instance": found[start:start + size]}}
        return HttpReply(200, {"content-type": "application/json"}, json.dumps(reply).encode())

    def _wanted(self, item, params):
        if self.ignore_filters:
            return True
        if "InstanceIds" in params and item["InstanceId"] not in json.loads(params["InstanceIds"]):
            return False
        for param, field in (("Status", "Status"), ("KeyPairName", "KeyPairName"), ("InstanceName", "InstanceName")):
            if param in params and item[field] != params[param]:
                return False
        tags = {t["TagKey"]: t["TagValue"] for t in item["Tags"]["Tag"]}
        index = 1
        while f"Tag.{index}.Key" in params:
            key = params[f"Tag.{index}.Key"]
            if key not in tags or (f"Tag.{index}.Value" in params and tags[key] != params[f"Tag.{index}.Value"]):
                return False
            index += 1
        return True

    def calls(self):
        return len(self.requests)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")


@pytest.fixture(scope="module", autouse=True)
def plugin_definitions():
    """Registers the plugin's documented options, as the plugin loader does."""
    doc = get_docstring(plugin_module.__file__, fragment_loader)[0]
    C.config.initialize_plugin_configuration_definitions("inventory", "sshkeys.ecs.ecs", doc["options"])


class Shown:
    """Everything the plugin shows the user (warnings and verbose messages)."""

    def __init__(self):
        self.lines = []

    def __call__(self, msg, *args, **kwargs):
        self.lines.append(str(msg))


def run(tmp_path, fake, config, name="test.ecs.yml", cache=True, shown=None):
    """Parses one inventory file with the plugin; returns the InventoryData."""
    path = tmp_path / name
    path.write_text(json.dumps(dict({"plugin": "sshkeys.ecs.ecs"}, **config)))
    inventory = InventoryData()
    plugin = plugin_module.InventoryModule()
    plugin._load_name = plugin.ansible_name = "sshkeys.ecs.ecs"
    plugin.client_factory = partial(EcsClient, transport=fake, sleep=lambda seconds: None)
    if shown is not None:
        for level in ("warning", "vvv", "vv", "v", "display", "debug", "vvvv"):
            setattr(plugin.display, level, shown)
    assert plugin.verify_file(str(path))
    plugin.parse(inventory, DataLoader(), str(path), cache=cache)
    # What InventoryManager does after a plugin has parsed a source (no cache plugin: nothing).
    if getattr(plugin, "_cache", None) is not None:
        plugin.update_cache_if_changed()
    return inventory


BASE = {"alicloud_access_key": KEY_ID, "alicloud_secret_key": SECRET, "alicloud_region": "cn-hangzhou",
        "ecs_endpoint": "http://127.0.0.1:18080"}


def group_hosts(inventory, group):
    return sorted(h.name for h in inventory.groups[group].get_hosts()) if group in inventory.groups else []


def fleet():
    return [
        instance("i-web1", name="web-1", key_pair="web-2024", ip="47.0.0.1", private="172.16.0.1", tags={"team": "web"}),
        instance("i-web2", name="web-2", key_pair="web-2024", status="Stopped", private="172.16.0.2",
                 tags={"team": "web", "env": "prod"}),
        instance("i-db1", name="db-1", key_pair="db.keys:2", ip="47.0.0.3", eip="8.8.8.3", private="172.16.0.3",
                 tags={"team": "db"}),
        instance("i-win", name="win-1", os_type="windows", ip="47.0.0.4", private="172.16.0.4"),
        instance("i-sh1", region="cn-shanghai", name="web-1", key_pair="web-2024", ip="47.1.0.1"),
    ]


# --- file names --------------------------------------------------------------------------------


@pytest.mark.parametrize("name, accepted", [
    ("prod.ecs.yml", True), ("ecs.yaml", True), ("a.b.ecs.yaml", True), ("myecs.yml", True),
    ("prod.ecs.json", False), ("prod.aws_ec2.yml", False), ("ecs.yml.bak", False), ("hosts", False),
])
def test_verify_file_wants_a_name_ending_in_ecs_yml(tmp_path, name, accepted):
    path = tmp_path / name
    path.write_text("plugin: sshkeys.ecs.ecs\n")
    assert plugin_module.InventoryModule().verify_file(str(path)) is accepted


def test_verify_file_refuses_a_missing_file(tmp_path):
    assert plugin_module.InventoryModule().verify_file(str(tmp_path / "gone.ecs.yml")) is False


# --- listing and grouping ------------------------------------------------------------------------


def test_groups_hostvars_and_ansible_host(tmp_path):
    fake = FakeEcs(fleet())
    inventory = run(tmp_path, fake, BASE)
    assert sorted(inventory.hosts) == ["i-db1", "i-web1", "i-web2", "i-win"]
    assert group_hosts(inventory, "keypair_web_2024") == ["i-web1", "i-web2"]
    assert group_hosts(inventory, "keypair_db_keys_2") == ["i-db1"]
    assert group_hosts(inventory, "no_keypair") == ["i-win"]
    assert group_hosts(inventory, "status_running") == ["i-db1", "i-web1", "i-win"]
    assert group_hosts(inventory, "status_stopped") == ["i-web2"]
    assert group_hosts(inventory, "os_linux") == ["i-db1", "i-web1", "i-web2"]
    assert group_hosts(inventory, "os_windows") == ["i-win"]
    web1 = inventory.get_host("i-web1").vars
    assert web1["ansible_host"] == "47.0.0.1"
    assert web1["ecs_instance_id"] == "i-web1" and web1["ecs_instance_name"] == "web-1"
    assert web1["ecs_key_pair_name"] == "web-2024" and web1["ecs_status"] == "Running"
    assert web1["ecs_os_type"] == "linux" and web1["ecs_region"] == "cn-hangzhou"
    assert web1["ecs_zone"] == "cn-hangzhou-b" and web1["ecs_tags"] == {"team": "web"}
    assert web1["ecs_private_ip"] == "172.16.0.1" and web1["ecs_public_ips"] == ["47.0.0.1"]
    # The elastic IP wins over the public IP; no public address means the private one.
    assert inventory.get_host("i-db1").vars["ansible_host"] == "8.8.8.3"
    assert inventory.get_host("i-web2").vars["ansible_host"] == "172.16.0.2"
    assert inventory.get_host("i-win").vars["ecs_key_pair_name"] is None
    assert [r["params"]["RegionId"] for r in fake.requests] == ["cn-hangzhou"]


def test_private_ip_as_ansible_host(tmp_path):
    inventory = run(tmp_path, FakeEcs(fleet()), dict(BASE, ansible_host_source="private_ip"))
    assert inventory.get_host("i-db1").vars["ansible_host"] == "172.16.0.3"


def test_every_page_is_read_100_at_a_time(tmp_path):
    many = [instance(f"i-{n:04d}", ip=f"47.0.{n // 250}.{n % 250 + 1}") for n in range(250)]
    fake = FakeEcs(many)
    inventory = run(tmp_path, fake, BASE)
    assert len(inventory.hosts) == 250
    assert [(r["params"].get("NextToken"), r["params"]["MaxResults"]) for r in fake.requests] == [
        (None, "100"), ("100", "100"), ("200", "100")]


def test_several_regions(tmp_path):
    fake = FakeEcs(fleet())
    inventory = run(tmp_path, fake, dict(BASE, regions=["cn-hangzhou", "cn-shanghai"],
                                         hostnames=["instance_name", "instance_id"]))
    assert sorted(r["params"]["RegionId"] for r in fake.requests) == ["cn-hangzhou", "cn-shanghai"]
    assert inventory.get_host("i-sh1").vars["ecs_region"] == "cn-shanghai"
    assert group_hosts(inventory, "keypair_web_2024") == ["i-sh1", "web-1", "web-2"]


def test_the_region_comes_from_the_environment_with_the_sdk_name_first(tmp_path, monkeypatch):
    monkeypatch.setenv("ALICLOUD_REGION", "cn-hangzhou")
    monkeypatch.setenv("ALIBABA_CLOUD_REGION_ID", "cn-shanghai")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALICLOUD_ACCESS_KEY", "other-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_ENDPOINT", "http://127.0.0.1:18080")
    fake = FakeEcs(fleet())
    inventory = run(tmp_path, fake, {})
    assert sorted(inventory.hosts) == ["i-sh1"]
    assert fake.requests[0]["host"] == "127.0.0.1" and fake.requests[0]["port"] == 18080
    assert f"Credential={KEY_ID}," in fake.requests[0]["headers"]["authorization"]


def test_security_token_travels_in_its_header(tmp_path, monkeypatch):
    fake = FakeEcs(fleet())
    run(tmp_path, fake, dict(BASE, alicloud_security_token=TOKEN))
    assert fake.requests[0]["headers"]["x-acs-security-token"] == TOKEN


def test_the_source_of_the_credentials_shows_at_vvv(tmp_path):
    messages = []
    run(tmp_path, FakeEcs(fleet()), dict(BASE, alicloud_security_token=TOKEN),
        shown=lambda msg, *args, **kwargs: messages.append(msg))
    assert "sshkeys.ecs.ecs inventory: credentials from the options alicloud_access_key and alicloud_secret_key" in messages
    assert not any(SECRET in m or TOKEN in m for m in messages)


def test_a_role_assumed_with_the_inventory_options(tmp_path, monkeypatch):
    from ansible_collections.sshkeys.ecs.plugins.module_utils import _sts
    asked = []

    def sts(method, scheme, host, port, target, headers, body, timeout, context):
        asked.append((host, port, dict(parse_qsl(urlsplit(target).query))))
        return HttpReply(200, {}, json.dumps({"RequestId": "R", "Credentials": {
            "AccessKeyId": "STS.inventory", "AccessKeySecret": "temporary-secret", "SecurityToken": "temporary-token",
            "Expiration": "2099-01-01T00:00:00Z"}}).encode())

    monkeypatch.setattr(_sts, "http_transport", sts)
    fake, messages = FakeEcs(fleet()), []
    run(tmp_path, fake, dict(BASE, alicloud_assume_role_arn="acs:ram::123:role/lister", assume_role_session_name="inv",
                             alicloud_sts_endpoint="http://127.0.0.1:9"),
        shown=lambda msg, *args, **kwargs: messages.append(msg))
    assert asked == [("127.0.0.1", 9, {"RoleArn": "acs:ram::123:role/lister", "RoleSessionName": "inv"})]
    assert "Credential=STS.inventory," in fake.requests[0]["headers"]["authorization"]
    assert fake.requests[0]["headers"]["x-acs-security-token"] == "temporary-token"
    assert any("credentials from role acs:ram::123:role/lister assumed with the options" in m for m in messages)
    assert not any("temporary" in m for m in messages)


def test_a_token_is_taken_with_its_access_key(tmp_path, monkeypatch):
    """The AccessKey of the options goes with the options' token only: a token of the environment
    belongs to the environment's AccessKey (issue 19: credentials from two places got mixed)."""
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
    fake = FakeEcs(fleet())
    run(tmp_path, fake, BASE)
    assert "x-acs-security-token" not in fake.requests[0]["headers"]


def test_regional_endpoint_without_an_override(tmp_path):
    fake = FakeEcs(fleet())
    config = {k: v for k, v in BASE.items() if k != "ecs_endpoint"}
    run(tmp_path, fake, dict(config, regions=["cn-shanghai"]))
    assert (fake.requests[0]["scheme"], fake.requests[0]["host"]) == ("https", "ecs.cn-shanghai.aliyuncs.com")


def test_credential_options_may_be_templates(tmp_path):
    fake = FakeEcs(fleet())
    run(tmp_path, fake, dict(BASE, alicloud_access_key="{{ 'LTAI-' ~ 'templated' }}"))
    assert "Credential=LTAI-templated," in fake.requests[0]["headers"]["authorization"]


# --- filters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("ignore_filters", [False, True], ids=["api-filters", "endpoint-ignores-filters"])
@pytest.mark.parametrize("config, expected", [
    ({"statuses": ["running"]}, ["i-db1", "i-web1", "i-win"]),
    ({"statuses": ["Running", "stopped"]}, ["i-db1", "i-web1", "i-web2", "i-win"]),
    ({"key_pair_names": ["web-2024"]}, ["i-web1", "i-web2"]),
    ({"key_pair_names": ["web-2024", "db.keys:2"]}, ["i-db1", "i-web1", "i-web2"]),
    ({"instance_ids": ["i-web2", "i-win", "i-nothere"]}, ["i-web2", "i-win"]),
    ({"tags": {"team": "web"}}, ["i-web1", "i-web2"]),
    ({"tags": {"team": "web", "env": None}}, ["i-web2"]),
    ({"instance_name": "web-*"}, ["i-web1", "i-web2"]),
    ({"instance_name": "db-1"}, ["i-db1"]),
    ({"statuses": ["Running"], "key_pair_names": ["web-2024"], "tags": {"team": "web"}}, ["i-web1"]),
    ({"key_pair_names": ["nobody"]}, []),
])
def test_filters(tmp_path, config, expected, ignore_filters):
    inventory = run(tmp_path, FakeEcs(fleet(), ignore_filters=ignore_filters), dict(BASE, **config))
    assert sorted(inventory.hosts) == expected


def test_filters_reach_the_api(tmp_path):
    fake = FakeEcs(fleet())
    run(tmp_path, fake, dict(BASE, statuses=["Running"], key_pair_names=["web-2024", "db.keys:2"],
                             tags={"team": "web"}, instance_ids=["i-web1", "i-db1"]))
    sent = [r["params"] for r in fake.requests]
    assert [p["KeyPairName"] for p in sent] == ["web-2024", "db.keys:2"]
    for params in sent:
        assert params["Status"] == "Running"
        assert (params["Tag.1.Key"], params["Tag.1.Value"]) == ("team", "web")
        assert json.loads(params["InstanceIds"]) == ["i-web1", "i-db1"]


def test_more_than_100_instance_ids_are_split(tmp_path):
    many = [instance(f"i-{n:04d}") for n in range(150)]
    fake = FakeEcs(many)
    inventory = run(tmp_path, fake, dict(BASE, instance_ids=[f"i-{n:04d}" for n in range(150)]))
    assert len(inventory.hosts) == 150
    assert [len(json.loads(r["params"]["InstanceIds"])) for r in fake.requests] == [100, 50]


@pytest.mark.parametrize("config, words", [
    ({"statuses": ["Exploded"]}, "'Exploded' is not an instance status"),
    ({"hostnames": ["nickname"]}, "nickname"),
    ({"tags": {"team": ["a"]}}, "must be a string or null"),
    ({"key_pair_names": [""]}, "key_pair_names: every entry must be a non-empty string"),
    ({"ansible_host_source": "ipv6"}, "ansible_host_source"),
    ({"ecs_retries": -1}, "ecs_retries"),
    ({"ecs_endpoint": "ftp://example.invalid"}, "ecs_endpoint"),
])
def test_bad_options_fail_before_any_request(tmp_path, config, words):
    fake = FakeEcs(fleet())
    with pytest.raises(Exception) as caught:
        run(tmp_path, fake, dict(BASE, **config))
    assert words in str(caught.value)
    assert fake.calls() == 0


@pytest.mark.parametrize("config, words", [
    ({"keypair_names": ["web-2024"]}, "'keypair_names' (did you mean 'key_pair_names'?) is not an option"),
    ({"status": "Running"}, "'status' (did you mean 'statuses'?)"),
    ({"instance_names": ["web-*"]}, "'instance_names' (did you mean 'instance_name'?)"),
    ({"region": "cn-hangzhou", "tag": {"team": "web"}, "zzzz": 1},
     "'tag' (did you mean 'tags'?), 'zzzz' are not options"),
])
def test_unknown_options_fail_before_any_request(tmp_path, config, words):
    """A misspelled filter must not widen the inventory to every instance of the account."""
    fake = FakeEcs(fleet())
    with pytest.raises(AnsibleParserError) as caught:
        run(tmp_path, fake, dict(BASE, **config))
    assert words in str(caught.value)
    assert "ansible-doc -t inventory sshkeys.ecs.ecs" in str(caught.value)
    assert fake.calls() == 0


def test_aliases_and_constructed_options_are_known(tmp_path):
    config = {"access_key": KEY_ID, "secret_key": SECRET, "region": "cn-hangzhou", "endpoint": "http://127.0.0.1:18080",
              "compose": {"x": "1"}, "keyed_groups": [], "groups": {}, "strict": False, "cache": False,
              "leading_separator": True, "use_extra_vars": False}
    inventory = run(tmp_path, FakeEcs(fleet()), config)
    assert "i-web1" in inventory.hosts


@pytest.mark.parametrize("name, text, warned", [
    ("inventory.yml", "plugin: sshkeys.ecs.ecs\nregions: [cn-hangzhou]\n", True),
    ("prod.yaml", "# comment\nplugin: 'sshkeys.ecs.ecs'  # the ECS plugin\n", True),
    ("hosts.yml", "all:\n  hosts:\n    a: {}\n", False),
    ("aws.yml", "plugin: amazon.aws.aws_ec2\n", False),
    ("inventory.ini", "plugin: sshkeys.ecs.ecs\n", False),
])
def test_a_misnamed_file_of_this_plugin_is_named_at_default_verbosity(tmp_path, name, text, warned):
    path = tmp_path / name
    path.write_text(text)
    plugin = plugin_module.InventoryModule()
    warnings, verbose = Shown(), Shown()
    plugin.display.warning, plugin.display.vvv = warnings, verbose
    assert plugin.verify_file(str(path)) is False
    if warned:
        assert len(warnings.lines) == 1
        assert "ends in ecs.yml or ecs.yaml: rename it, for example to " + name.rsplit(".", 1)[0] + ".ecs.yml" \
            in warnings.lines[0]
    else:
        assert warnings.lines == []


def test_wrong_plugin_name_is_refused(tmp_path):
    path = tmp_path / "x.ecs.yml"
    path.write_text("plugin: amazon.aws.aws_ec2\n")
    plugin = plugin_module.InventoryModule()
    plugin._load_name = plugin.ansible_name = "sshkeys.ecs.ecs"
    with pytest.raises(AnsibleParserError, match="Incorrect plugin name"):
        plugin.parse(InventoryData(), DataLoader(), str(path))


# --- host names and constructed features -------------------------------------------------------


def test_duplicate_instance_names_fall_back_to_the_instance_id(tmp_path):
    shown = Shown()
    fake = FakeEcs(fleet() + [instance("i-web1b", name="web-1", ip="47.0.0.9")])
    inventory = run(tmp_path, fake, dict(BASE, hostnames=["instance_name"]), shown=shown)
    assert sorted(inventory.hosts) == ["db-1", "i-web1b", "web-1", "web-2", "win-1"]
    assert inventory.get_host("web-1").vars["ecs_instance_id"] == "i-web1"
    assert any("i-web1b" in line and "'web-1'" in line for line in shown.lines)


def test_compose_groups_and_keyed_groups(tmp_path):
    config = dict(BASE, compose={"ansible_user": "'ecs-user'", "team": "ecs_tags.team | default('none')"},
                  groups={"needs_key": "ecs_key_pair_name is none and ecs_os_type == 'linux'",
                          "windows_boxes": "ecs_os_type == 'windows'"},
                  keyed_groups=[{"key": "ecs_zone", "prefix": "zone"},
                                {"key": "ecs_tags", "prefix": "tag"}])
    inventory = run(tmp_path, FakeEcs(fleet() + [instance("i-bare", ip="47.0.0.8")]), config)
    assert inventory.get_host("i-web1").vars["ansible_user"] == "ecs-user"
    assert inventory.get_host("i-db1").vars["team"] == "db"
    assert inventory.get_host("i-win").vars["team"] == "none"
    assert group_hosts(inventory, "needs_key") == ["i-bare"]
    assert group_hosts(inventory, "windows_boxes") == ["i-win"]
    assert group_hosts(inventory, "zone_cn_hangzhou_b") == ["i-bare", "i-db1", "i-web1", "i-web2", "i-win"]
    assert group_hosts(inventory, "tag_team_web") == ["i-web1", "i-web2"]
    assert group_hosts(inventory, "tag_env_prod") == ["i-web2"]


def test_use_extra_vars_lets_expressions_see_extra_vars(tmp_path, monkeypatch):
    monkeypatch.setattr(context, "CLIARGS", ImmutableDict(extra_vars=("wanted_team=db",)))
    config = dict(BASE, groups={"wanted": "ecs_tags.team | default('') == wanted_team"})
    assert group_hosts(run(tmp_path, FakeEcs(fleet()), dict(config, use_extra_vars=True)), "wanted") == ["i-db1"]
    # Without the option the expression cannot see wanted_team: no group (strict is off).
    assert group_hosts(run(tmp_path, FakeEcs(fleet()), config), "wanted") == []


def test_strict_turns_a_bad_compose_expression_into_an_error(tmp_path):
    config = dict(BASE, compose={"owner": "ecs_tags.owner"})
    inventory = run(tmp_path, FakeEcs(fleet()), config)
    assert "owner" not in inventory.get_host("i-web1").vars
    with pytest.raises(AnsibleParserError, match="i-web1|i-web2|i-db1|i-win"):
        run(tmp_path, FakeEcs(fleet()), dict(config, strict=True))


# --- cache -------------------------------------------------------------------------------------


def cached_config(tmp_path, **extra):
    return dict(BASE, cache=True, cache_plugin="jsonfile",
                cache_connection=str(tmp_path / "cache"), **extra)


def test_cache_is_used_refreshed_and_keyed_by_the_filters(tmp_path):
    fake = FakeEcs(fleet())
    first = run(tmp_path, fake, cached_config(tmp_path))
    assert fake.calls() == 1
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1
    stored = files[0].read_text()
    assert SECRET not in stored and KEY_ID not in stored
    fake.instances = fake.instances[:1]
    # cache=True (what a normal run passes): the stored list, no request.
    again = run(tmp_path, fake, cached_config(tmp_path))
    assert fake.calls() == 1
    assert sorted(again.hosts) == sorted(first.hosts)
    # Other filters: the stored list answers another question, so it is not used.
    filtered = run(tmp_path, fake, cached_config(tmp_path, statuses=["Running"]))
    assert fake.calls() == 2
    assert sorted(filtered.hosts) == ["i-web1"]
    # cache=False (--flush-cache, meta: refresh_inventory): asks again and stores the answer.
    fresh = run(tmp_path, fake, cached_config(tmp_path), cache=False)
    assert fake.calls() == 3
    assert sorted(fresh.hosts) == ["i-web1"]
    assert sorted(run(tmp_path, fake, cached_config(tmp_path)).hosts) == ["i-web1"]
    assert fake.calls() == 3


def test_without_the_cache_option_every_run_asks(tmp_path):
    fake = FakeEcs(fleet())
    run(tmp_path, fake, BASE)
    run(tmp_path, fake, BASE)
    assert fake.calls() == 2


# --- failures, retries and secrets -------------------------------------------------------------


def test_throttling_and_server_errors_are_retried(tmp_path):
    fake = FakeEcs(fleet())
    fake.script = [(400, {"Code": "Throttling.User", "Message": "slow down", "RequestId": "r1"}),
                   (503, {"Code": "ServiceUnavailable", "Message": "later", "RequestId": "r2"}),
                   (500, b"<html>oops</html>")]
    inventory = run(tmp_path, fake, BASE)
    assert len(inventory.hosts) == 4
    assert fake.calls() == 4


def test_retries_run_out_with_a_clear_error(tmp_path):
    fake = FakeEcs(fleet())
    fake.script = [(503, {"Code": "ServiceUnavailable", "Message": "later", "RequestId": f"r{n}"}) for n in range(3)]
    with pytest.raises(AnsibleParserError) as caught:
        run(tmp_path, fake, dict(BASE, ecs_retries=2))
    text = str(caught.value)
    assert "cannot list the instances of region cn-hangzhou" in text
    assert "ServiceUnavailable" in text and "request id r2" in text
    assert fake.calls() == 3


def test_an_api_error_is_not_retried_and_names_its_code(tmp_path):
    fake = FakeEcs(fleet())
    fake.script = [(404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found.",
                          "RequestId": "r-ak"})]
    with pytest.raises(AnsibleParserError, match="InvalidAccessKeyId.NotFound.*request id r-ak"):
        run(tmp_path, fake, BASE)
    assert fake.calls() == 1


@pytest.mark.parametrize("payload, words", [
    ({"RequestId": "r", "TotalCount": 1}, "no 'Instances' field"),
    ({"RequestId": "r", "TotalCount": 1, "Instances": {"Instance": "i-1"}}, "Instances.Instance is not a list"),
    ({"RequestId": "r", "TotalCount": 1, "Instances": {"Instance": [{"InstanceName": "x"}]}}, "has no InstanceId"),
    ({"RequestId": "r", "TotalCount": 1, "Instances": {"Instance": ["i-1"]}}, "is not an object"),
    ({"RequestId": "r", "NextToken": 7, "Instances": {"Instance": []}}, "NextToken is not a string"),
    (b"\x00\x01 not json", "not a JSON object"),
])
def test_malformed_replies_are_clear_errors(tmp_path, payload, words):
    fake = FakeEcs(fleet())
    fake.script = [(200, payload)]
    with pytest.raises(AnsibleParserError) as caught:
        run(tmp_path, fake, BASE)
    assert words in str(caught.value)
    assert "MalformedResponse" in str(caught.value)


def test_missing_credentials_name_the_variables(tmp_path):
    with pytest.raises(AnsibleParserError) as caught:
        run(tmp_path, FakeEcs(fleet()), {"alicloud_region": "cn-hangzhou", "alicloud_secret_key": SECRET})
    assert "the AccessKey ID is missing" in str(caught.value) and "alicloud_access_key" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_missing_region_is_named(tmp_path):
    with pytest.raises(AnsibleParserError, match="no region"):
        run(tmp_path, FakeEcs(fleet()), {"alicloud_access_key": KEY_ID, "alicloud_secret_key": SECRET})


def test_secrets_never_show(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
    shown = Shown()
    fake = FakeEcs(fleet())
    inventory = run(tmp_path, fake, BASE, shown=shown)
    dumped = json.dumps({h.name: h.vars for h in inventory.hosts.values()}, default=str)
    for secret in (SECRET, TOKEN):
        assert secret not in dumped
        assert not any(secret in line for line in shown.lines)
        assert not any(secret in r["target"] for r in fake.requests)
    # A failing run: neither the error nor what was shown holds a secret.
    fake.script = [(400, {"Code": "SignatureDoesNotMatch", "Message": "The signature does not match.",
                          "RequestId": "r-sig"})]
    with pytest.raises(AnsibleParserError) as caught:
        run(tmp_path, fake, BASE, shown=shown)
    assert "SignatureDoesNotMatch" in str(caught.value)
    for secret in (SECRET, TOKEN):
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value.__cause__) and caught.value.__suppress_context__

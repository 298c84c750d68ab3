# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the logic of the sshkeys.ecs.ecs inventory plugin.

Plain functions over plain values: what to ask DescribeInstances for, which instances of the
answer match the filters (always checked here as well, so an endpoint that ignores a filter
cannot widen the inventory), one flat host record per instance, its host name, ansible_host and
groups. The plugin class only wires these to Ansible.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_shape import ShapeError, address_list
from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError

# The instance states DescribeInstances knows (its Status filter accepts these).
STATUSES = ("Pending", "Running", "Starting", "Stopping", "Stopped")
HOSTNAME_SOURCES = ("instance_id", "instance_name", "host_name", "public_ip", "private_ip")
ANSIBLE_HOST_SOURCES = ("public_ip", "private_ip")
# The API takes at most 20 tag filters per request (shared API facts: 20 tags per resource).
MAX_TAG_FILTERS = 20
# Host variables the plugin sets; the prefix keeps them apart from the user's own variables.
HOSTVAR_PREFIX = "ecs_"
NO_KEYPAIR_GROUP = "no_keypair"
_UNSAFE_GROUP_CHARS = re.compile(r"[^A-Za-z0-9_]")
_GLOB_CHARS = re.compile(r"[*?\[]")


class InventoryConfigError(SshKeysError):
    """An option of the inventory file is wrong. The message names the option, never a secret."""


# ---------------------------------------------------------------------------------------------
# Options.


# "plugin: sshkeys.ecs.ecs" (quoted or not) on a line of its own.
_NAMES_THIS_PLUGIN = re.compile(r"""^plugin:\s*(["']?)sshkeys\.ecs\.ecs\1\s*(?:#.*)?$""", re.MULTILINE)
# A configuration file is small; a bigger one is not looked into.
_MAX_PEEK = 64 * 1024


def misnamed_file(path: str) -> Optional[str]:
    """What to tell a user whose YAML file names this plugin but not in a name it reads.

    Ansible picks an inventory plugin by file name; for any other name it reports only that no
    plugin could parse the file, and the real reason shows at -vvv. None for every other file.
    """
    if not path.endswith((".yml", ".yaml")):
        return None
    try:
        with open(path, "rb") as handle:
            text = handle.read(_MAX_PEEK).decode("utf-8", "replace")
    except OSError:
        return None
    if not _NAMES_THIS_PLUGIN.search(text):
        return None
    base = path.rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0]
    return (f"{path} names the sshkeys.ecs.ecs inventory plugin, but the plugin reads only files whose name ends "
            f"in ecs.yml or ecs.yaml: rename it, for example to {stem}.ecs.yml")


def unknown_options(given: Iterable[Any], definitions: Mapping[str, Any]) -> Optional[str]:
    """Why an inventory file holds keys that are no option, or None when every key is one.

    Ansible sets the options it knows from the file and drops every other key without a word,
    so a misspelled filter (``keypair_names`` for ``key_pair_names``) would silently widen the
    inventory to the whole account. ``definitions`` are the plugin's documented options (the
    names and their aliases count). Each unknown key is named with the closest valid one.
    """
    valid = set()
    for name, definition in definitions.items():
        valid.add(name)
        valid.update((definition or {}).get("aliases") or [])
    unknown = sorted(str(key) for key in given if str(key) not in valid)
    if not unknown:
        return None
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
        parts.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
    what = "is not an option" if len(unknown) == 1 else "are not options"
    return (f"{', '.join(parts)} {what} of this plugin; nothing was listed, because an unknown key would "
            "otherwise be ignored and a filter lost. The options are in ansible-doc -t inventory sshkeys.ecs.ecs")


def normalise_statuses(values: Optional[Sequence[Any]]) -> List[str]:
    """['running', 'Stopped'] -> ['Running', 'Stopped']: the API's spelling, any case accepted."""
    by_lower = {status.lower(): status for status in STATUSES}
    out: List[str] = []
    for value in values or []:
        status = by_lower.get(str(value).strip().lower())
        if status is None:
            raise InventoryConfigError(
                f"statuses: {str(value)[:40]!r} is not an instance status; use {', '.join(STATUSES)}")
        if status not in out:
            out.append(status)
    return out


def normalise_strings(option: str, values: Optional[Sequence[Any]]) -> List[str]:
    """A list option of non-empty strings, duplicates dropped, order kept."""
    out: List[str] = []
    for value in values or []:
        if not isinstance(value, str) or not value.strip():
            raise InventoryConfigError(f"{option}: every entry must be a non-empty string")
        if value.strip() not in out:
            out.append(value.strip())
    return out


def normalise_tags(tags: Optional[Mapping[Any, Any]]) -> Dict[str, Optional[str]]:
    """{key: value or None}: None (or an empty value list) means 'has this tag, any value'."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InventoryConfigError("tags must be a mapping of tag keys to values (null for any value)")
    if len(tags) > MAX_TAG_FILTERS:
        raise InventoryConfigError(f"tags: at most {MAX_TAG_FILTERS} tag filters")
    out: Dict[str, Optional[str]] = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key:
            raise InventoryConfigError("tags: every tag key must be a non-empty string")
        if isinstance(value, (dict, list, tuple, set)):
            raise InventoryConfigError(f"tags: the value of {key!r} must be a string or null")
        out[key] = None if value is None else str(value)
    return out


def normalise_hostnames(values: Optional[Sequence[Any]]) -> List[str]:
    out = normalise_strings("hostnames", values) or ["instance_id"]
    for value in out:
        if value not in HOSTNAME_SOURCES:
            raise InventoryConfigError(
                f"hostnames: {value[:40]!r} is not one of {', '.join(HOSTNAME_SOURCES)}")
    return out


class Filters:
    """What the inventory keeps: every non-empty filter must match (AND); a list matches any entry."""

    def __init__(self, *, instance_ids: Optional[Sequence[Any]] = None, statuses: Optional[Sequence[Any]] = None,
                 key_pair_names: Optional[Sequence[Any]] = None, tags: Optional[Mapping[Any, Any]] = None,
                 instance_name: Optional[str] = None) -> None:
        self.instance_ids = normalise_strings("instance_ids", instance_ids)
        self.statuses = normalise_statuses(statuses)
        self.key_pair_names = normalise_strings("key_pair_names", key_pair_names)
        self.tags = normalise_tags(tags)
        if instance_name is not None and (not isinstance(instance_name, str) or not instance_name):
            raise InventoryConfigError("instance_name must be a non-empty string (a shell-style pattern)")
        self.instance_name = instance_name or None

    def fingerprint(self) -> str:
        """A stable digest of the filters: a cache written for other filters is not reused."""
        data = {"ids": sorted(self.instance_ids), "statuses": sorted(self.statuses),
                "key_pairs": sorted(self.key_pair_names), "tags": sorted(self.tags.items(), key=lambda kv: kv[0]),
                "name": self.instance_name}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()[:16]

    def queries(self) -> List[Dict[str, Any]]:
        """The DescribeInstances filters (keyword arguments of ``describe_instances``) that
        together cover every match, filters pushed down.

        The API filters on one status, one key pair name and one exact instance name per request:
        several key pair names become one query each (usually far fewer instances than the whole
        region); several statuses are filtered here. Tags and instance ids always go to the API.
        """
        base: Dict[str, Any] = {}
        if len(self.statuses) == 1:
            base["status"] = self.statuses[0]
        if self.instance_name and not _GLOB_CHARS.search(self.instance_name):
            base["instance_name"] = self.instance_name
        if self.tags:
            base["tags"] = dict(self.tags)
        if not self.key_pair_names:
            return [base]
        return [dict(base, key_pair_name=name) for name in self.key_pair_names]

    def matches(self, host: Mapping[str, Any]) -> bool:
        """Whether a host record (see host_record) passes every filter."""
        if self.instance_ids and host["instance_id"] not in self.instance_ids:
            return False
        if self.statuses and host["status"] not in self.statuses:
            return False
        if self.key_pair_names and host["key_pair_name"] not in self.key_pair_names:
            return False
        for key, value in self.tags.items():
            if key not in host["tags"] or (value is not None and host["tags"][key] != value):
                return False
        if self.instance_name and not fnmatch.fnmatchcase(host["instance_name"] or "", self.instance_name):
            return False
        return True


# ---------------------------------------------------------------------------------------------
# Reading DescribeInstances items.


def _malformed(region: str, detail: str) -> EcsApiError:
    return EcsApiError(code="MalformedResponse", action="DescribeInstances",
                       message=f"an instance in the reply for region {region} {detail}")


def _text(item: Mapping[str, Any], field: str, region: str) -> str:
    value = item.get(field)
    if value is None:
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise _malformed(region, f"has a {field} that is not a string")
    return str(value)


def _address_list(node: Any, path: str, region: str) -> List[str]:
    """The addresses of one address field; a malformed one is an error here (see host_record)."""
    try:
        return address_list(node)
    except ShapeError as exc:
        raise _malformed(region, f"has a {path}{exc}") from None


def _tags(item: Mapping[str, Any], region: str) -> Dict[str, str]:
    node = item.get("Tags")
    if node in (None, "", {}):
        return {}
    rows = node.get("Tag") if isinstance(node, Mapping) else None
    if rows in (None, ""):
        return {}
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise _malformed(region, "has Tags.Tag that is not a list of objects")
    return {str(r.get("TagKey")): "" if r.get("TagValue") is None else str(r.get("TagValue"))
            for r in rows if r.get("TagKey")}


def host_record(item: Any, region: str) -> Dict[str, Any]:
    """One instance of a DescribeInstances reply as a flat record of plain values.

    Raises EcsApiError(MalformedResponse) for an item that is not an instance: a clear error
    beats an inventory with holes.
    """
    if not isinstance(item, Mapping):
        raise _malformed(region, "is not an object")
    instance_id = _text(item, "InstanceId", region)
    if not instance_id:
        raise _malformed(region, "has no InstanceId")
    eip = _address_list(item.get("EipAddress"), "EipAddress", region)
    public = _address_list(item.get("PublicIpAddress"), "PublicIpAddress", region)
    vpc = item.get("VpcAttributes")
    if vpc not in (None, "") and not isinstance(vpc, Mapping):
        raise _malformed(region, "has VpcAttributes that is not an object")
    vpc = vpc or {}
    private = _address_list(vpc.get("PrivateIpAddress"), "VpcAttributes.PrivateIpAddress", region)
    # Classic-network instances report their private address as the inner one.
    private += [a for a in _address_list(item.get("InnerIpAddress"), "InnerIpAddress", region) if a not in private]
    os_type = _text(item, "OSType", region).lower()
    return {
        "instance_id": instance_id,
        "instance_name": _text(item, "InstanceName", region),
        "host_name": _text(item, "HostName", region),
        "status": _text(item, "Status", region),
        "key_pair_name": _text(item, "KeyPairName", region) or None,
        "os_type": os_type,
        "os_name": _text(item, "OSName", region),
        "region": _text(item, "RegionId", region) or region,
        "zone": _text(item, "ZoneId", region),
        "instance_type": _text(item, "InstanceType", region),
        "image_id": _text(item, "ImageId", region),
        "resource_group_id": _text(item, "ResourceGroupId", region) or None,
        "creation_time": _text(item, "CreationTime", region),
        "vpc_id": _text(vpc, "VpcId", region) or None,
        "eip": eip[0] if eip else None,
        "public_ips": eip + [a for a in public if a not in eip],
        "private_ips": private,
        "tags": _tags(item, region),
    }


# ---------------------------------------------------------------------------------------------
# Host names, addresses, groups, variables.


def public_ip(host: Mapping[str, Any]) -> Optional[str]:
    """The elastic IP if there is one, else the first public address."""
    return host["eip"] or (host["public_ips"][0] if host["public_ips"] else None)


def private_ip(host: Mapping[str, Any]) -> Optional[str]:
    return host["private_ips"][0] if host["private_ips"] else None


def ansible_host(host: Mapping[str, Any], source: str = "public_ip") -> Optional[str]:
    """The address to connect to: the preferred kind, else the other one, else None."""
    if source == "private_ip":
        return private_ip(host) or public_ip(host)
    return public_ip(host) or private_ip(host)


def hostname_candidates(host: Mapping[str, Any], preferences: Sequence[str]) -> List[str]:
    values = {"instance_id": host["instance_id"], "instance_name": host["instance_name"],
              "host_name": host["host_name"], "public_ip": public_ip(host), "private_ip": private_ip(host)}
    return [values[p] for p in preferences if values.get(p)]


def choose_hostname(host: Mapping[str, Any], preferences: Sequence[str], taken: Mapping[str, str]) -> Tuple[str, Optional[str]]:
    """(inventory host name, warning or None).

    The first preference the instance has a value for wins. Names such as instance names need
    not be unique: a name another instance already holds would merge two hosts into one, so
    that instance falls back to its (unique) instance id, with a warning.
    """
    candidates = hostname_candidates(host, preferences)
    name = candidates[0] if candidates else host["instance_id"]
    owner = taken.get(name)
    if owner is not None and owner != host["instance_id"]:
        return host["instance_id"], (f"instance {host['instance_id']} would have the host name {name!r} of "
                                     f"instance {owner}; it is listed under its instance id instead")
    return name, None


def safe_group_name(text: str) -> str:
    """Ansible group names take letters, digits and underscores: everything else becomes '_'."""
    return _UNSAFE_GROUP_CHARS.sub("_", text)


def builtin_groups(host: Mapping[str, Any]) -> List[str]:
    """keypair_<name> (or no_keypair), status_<status>, os_<type>: sanitised.

    Status and OS type are lower-cased (a fixed vocabulary); key pair names keep their case,
    since two key pairs may differ by case only.
    """
    groups = []
    if host["key_pair_name"]:
        groups.append(safe_group_name(f"keypair_{host['key_pair_name']}"))
    else:
        groups.append(NO_KEYPAIR_GROUP)
    if host["status"]:
        groups.append(safe_group_name(f"status_{host['status'].lower()}"))
    if host["os_type"]:
        groups.append(safe_group_name(f"os_{host['os_type'].lower()}"))
    return groups


def host_variables(host: Mapping[str, Any], source: str = "public_ip") -> Dict[str, Any]:
    """The variables of one host: every record field prefixed, plus ansible_host when known."""
    out: Dict[str, Any] = {HOSTVAR_PREFIX + key: value for key, value in host.items()}
    out[HOSTVAR_PREFIX + "public_ip"] = public_ip(host)
    out[HOSTVAR_PREFIX + "private_ip"] = private_ip(host)
    address = ansible_host(host, source)
    if address:
        out["ansible_host"] = address
    return out


def select(items: Iterable[Any], region: str, filters: Filters) -> List[Dict[str, Any]]:
    """Host records of the items that pass the filters, each instance once, in reply order."""
    out: List[Dict[str, Any]] = []
    seen = set()
    for item in items:
        host = host_record(item, region)
        if host["instance_id"] in seen or not filters.matches(host):
            continue
        seen.add(host["instance_id"])
        out.append(host)
    return out


# ---------------------------------------------------------------------------------------------
# Cloud Assistant: which hosts the connection plugin reaches, and which have a running agent.

CLOUD_ASSISTANT_MODES = ("never", "tagged", "no_address", "all")
CLOUD_ASSISTANT_CONNECTION = "sshkeys.ecs.cloud_assistant"
CLOUD_ASSISTANT_RUNNING_GROUP = "cloud_assistant_running"


def cloud_assistant_tag(value: Any) -> Tuple[str, Optional[str]]:
    """The opt-in tag: a one-entry dict {key: value}; a value of None or '' matches any value."""
    if not isinstance(value, Mapping) or len(value) != 1:
        raise InventoryConfigError("cloud_assistant_tag must be one tag, as a dictionary {key: value}")
    key, wanted = next(iter(value.items()))
    if not isinstance(key, str) or not key:
        raise InventoryConfigError("cloud_assistant_tag: the tag key must be a non-empty string")
    return key, None if wanted in (None, "") else str(wanted)


def uses_cloud_assistant(host: Mapping[str, Any], mode: str, tag: Tuple[str, Optional[str]],
                         source: str = "public_ip") -> bool:
    """Whether the host is reached through the cloud_assistant connection, by the inventory's choice."""
    if mode not in CLOUD_ASSISTANT_MODES:
        raise InventoryConfigError(f"cloud_assistant_connection must be one of {', '.join(CLOUD_ASSISTANT_MODES)}")
    if mode == "never" or host.get("os_type") != "linux":
        return False  # shell scripts only: Cloud Assistant runs no RunShellScript on Windows
    if mode == "all":
        return True
    if mode == "no_address":
        return ansible_host(host, source) is None
    key, wanted = tag
    tags = host.get("tags") or {}
    return key in tags and (wanted is None or tags[key] == wanted)


def cloud_assistant_variables(host: Mapping[str, Any]) -> Dict[str, Any]:
    """The connection variables of a host reached over Cloud Assistant (credentials stay the
    connection's own: its options, else the environment, else the CLI profile)."""
    return {"ansible_connection": CLOUD_ASSISTANT_CONNECTION, "ansible_ecs_instance_id": host["instance_id"],
            "ansible_alicloud_region": host["region"]}


def mark_agents(hosts: Iterable[Dict[str, Any]], statuses: Mapping[str, Mapping[str, Any]]) -> None:
    """Sets each host's cloud_assistant_running from DescribeCloudAssistantStatus (False when unlisted)."""
    for host in hosts:
        status = statuses.get(host["instance_id"]) or {}
        host["cloud_assistant_running"] = str(status.get("CloudAssistantStatus", "")).lower() == "true"

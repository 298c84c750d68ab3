# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: ecs
short_description: Alibaba Cloud ECS instances as an inventory, grouped by key pair, status and OS
version_added: 0.1.0
description:
  - Lists the instances of one or more regions with DescribeInstances (every page, 100 a call) and
    adds each one as a host.
  - Groups every host by key pair name (C(keypair_<name>), or C(no_keypair)), by status
    (C(status_running), C(status_stopped), ...) and by OS type (C(os_linux), C(os_windows)). Characters
    other than letters, digits and C(_) become C(_) in group names, so key pair C(web-2024) gives
    the group C(keypair_web_2024).
  - Sets C(ansible_host) to the public address (the elastic IP, else the public IP), else the private
    address; O(ansible_host_source) turns this around.
  - Host variables, all prefixed C(ecs_), describe the instance (see the notes).
  - The inventory file name must end in C(ecs.yml) or C(ecs.yaml), for example C(prod.ecs.yml),
    and set O(plugin) to V(sshkeys.ecs.ecs).
  - Needs no SDK; requests are signed by the collection's own client, with retries on throttling
    and server errors.
author:
  - sshkeys.ecs maintainers (@sshkeys)
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks the file as this plugin's.
    type: str
    required: true
    choices: [sshkeys.ecs.ecs]
  alicloud_access_key:
    description:
      - The AccessKey ID used to sign requests.
      - If not set, the credentials chain the cloud modules follow (the environment, OIDC, the CLI
        profile file in any mode the modules serve, the credentials file, the instance's RAM role;
        see the C(docs/credentials.md) guide). An AccessKey ID and its secret always come from the
        same place. The source used is shown at C(-vvv).
      - May be a template, for example a lookup of a vaulted variable.
    type: str
    aliases: [access_key]
  alicloud_secret_key:
    description:
      - The AccessKey secret that belongs to O(alicloud_access_key).
      - Set together with O(alicloud_access_key).
      - Never shown in output or error messages.
    type: str
    aliases: [secret_key]
  alicloud_security_token:
    description:
      - An STS security token, for temporary credentials.
      - Taken with the AccessKey it belongs to, from the same place.
    type: str
    aliases: [security_token]
  alicloud_region:
    description:
      - The region to list when O(regions) is not set, for example C(cn-hangzhou).
      - If not set, E(ALIBABA_CLOUD_REGION_ID), E(ALICLOUD_REGION) or E(ALICLOUD_REGION_ID), then
        the C(region_id) of the CLI profile.
    type: str
    aliases: [region]
  alicloud_profile:
    description:
      - The profile of the Alibaba Cloud CLI file C(~/.aliyun/config.json) to read when the
        credentials or the region are not given otherwise. Defaults to the file's current profile.
      - If not set, E(ALIBABA_CLOUD_PROFILE), E(ALIBABACLOUD_PROFILE) or E(ALICLOUD_PROFILE).
      - The file is not read when E(ALIBABA_CLOUD_CLI_PROFILE_DISABLED) is V(true), unless this option names
        a profile.
    type: str
    aliases: [profile]
  shared_credentials_file:
    description:
      - The path of the Alibaba Cloud CLI profile file, instead of C(~/.aliyun/config.json).
      - If not set, E(ALICLOUD_SHARED_CREDENTIALS_FILE).
    type: path
  alicloud_assume_role_arn:
    description:
      - The ARN of a RAM role, C(acs:ram::<account id>:role/<name>), to assume (STS AssumeRole) with the
        credentials found; the instances are then listed with the temporary credentials.
      - If not set, E(ALICLOUD_ASSUME_ROLE_ARN).
    type: str
    aliases: [assume_role_arn]
  alicloud_assume_role_session_name:
    description:
      - The session name of the assumed role, 2 to 64 letters, digits or C(.@-_).
      - If not set, E(ALICLOUD_ASSUME_ROLE_SESSION_NAME), else C(ansible).
    type: str
    aliases: [assume_role_session_name]
  alicloud_assume_role_session_expiration:
    description:
      - How long the temporary credentials last, in seconds, 900 to 43200.
      - If not set, E(ALICLOUD_ASSUME_ROLE_SESSION_EXPIRATION), else what STS gives (3600).
    type: int
    aliases: [assume_role_session_expiration]
  alicloud_sts_endpoint:
    description:
      - The STS endpoint used to assume roles, a host name (HTTPS) or a URL; an option of this
        collection, for tests and private endpoints.
      - If not set, E(ALIBABA_CLOUD_STS_ENDPOINT), else C(sts.<region>.aliyuncs.com) (C(sts-vpc.<region>...)
        when E(ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED) is V(true)).
    type: str
    aliases: [sts_endpoint]
  ecs_role_name:
    description:
      - The RAM role of the ECS instance this runs on, whose temporary credentials the instance metadata
        service gives. Without any other credentials the instance's role is used anyway, unless
        E(ALIBABA_CLOUD_ECS_METADATA_DISABLED) is V(true).
    type: str
    aliases: [role_name]
  ecs_endpoint:
    description:
      - The ECS API endpoint, as a host name (HTTPS is used) or a URL such as
        C(http://127.0.0.1:18080). It serves every region of O(regions).
      - If not set, E(ALIBABA_CLOUD_ECS_ENDPOINT) or E(ALICLOUD_ECS_ENDPOINT), else the endpoint of
        each region as the official SDK picks it, C(ecs.<region>.aliyuncs.com) for most regions
        (C(ecs-cn-hangzhou.aliyuncs.com) for C(cn-hangzhou), the central C(ecs.aliyuncs.com) for the
        few regions the SDK sends there), or C(ecs-vpc.<region>.aliyuncs.com) with
        O(ecs_endpoint_type=vpc).
    type: str
    aliases: [endpoint]
  ecs_endpoint_type:
    description:
      - Which endpoint of each region to use when O(ecs_endpoint) is not set. V(public) is the
        Internet endpoint; V(vpc) is C(ecs-vpc.<region>.aliyuncs.com), reachable only from a VPC of
        that region, without Internet access.
      - If not set, E(ALIBABA_CLOUD_ECS_ENDPOINT_TYPE) (a variable of this collection), else V(public).
    type: str
    choices: [public, vpc]
  ecs_signature_version:
    description:
      - How requests are signed. V(v3) is ACS3-HMAC-SHA256, what the current official SDK uses;
        V(v1) is the older HMAC-SHA1 scheme.
    type: str
    choices: [v3, v1]
    default: v3
  ecs_timeout:
    description: Seconds to wait for the endpoint on each request.
    type: float
    default: 30
  ecs_retries:
    description:
      - How many times a request is retried after throttling, a server error, a timeout or a
        dropped connection, with jittered exponential backoff.
    type: int
    default: 5
  ecs_retry_delay:
    description:
      - Base of the exponential backoff, in seconds (the wait before retry N is a random time up
        to this times 2^N, capped at 20 seconds).
    type: float
    default: 0.5
  validate_certs:
    description:
      - Whether to verify the endpoint's TLS certificate. Only turn this off for a test endpoint
        you control.
    type: bool
    default: true
  regions:
    description:
      - The regions to list. Not set means the one region of O(alicloud_region).
    type: list
    elements: str
    default: []
  instance_ids:
    description:
      - Only these instances (sent to the API, 100 ids a request).
    type: list
    elements: str
    default: []
  statuses:
    description:
      - Only instances in one of these states (C(Pending), C(Running), C(Starting), C(Stopping),
        C(Stopped); any case). One status is filtered by the API, several on the controller.
    type: list
    elements: str
    default: []
  key_pair_names:
    description:
      - Only instances that hold one of these key pairs (one API query per name).
    type: list
    elements: str
    default: []
  tags:
    description:
      - Only instances that carry all of these tags. A null value means any value.
      - Sent to the API (at most 20) and checked again on the controller.
    type: dict
    default: {}
  instance_name:
    description:
      - Only instances whose name matches this shell-style pattern (C(*), C(?), C([...]));
        case-sensitive. A name without pattern characters is an exact match and is sent to the API.
    type: str
  hostnames:
    description:
      - What to name each host, in order of preference; the first one the instance has wins.
      - An instance whose chosen name another instance already holds is listed under its
        instance id instead, with a warning (instance names need not be unique).
    type: list
    elements: str
    choices: [instance_id, instance_name, host_name, public_ip, private_ip]
    default: [instance_id]
  ansible_host_source:
    description:
      - Which address goes into C(ansible_host). V(public_ip) is the elastic IP, else the public IP,
        else the private IP; V(private_ip) is the private IP, else the public one.
    type: str
    choices: [public_ip, private_ip]
    default: public_ip
  cloud_assistant_connection:
    description:
      - Which Linux instances Ansible reaches through the P(sshkeys.ecs.cloud_assistant#connection)
        connection (the ECS API's Cloud Assistant, no SSH) instead of SSH. For them the inventory sets
        C(ansible_connection), C(ansible_ecs_instance_id) and C(ansible_alicloud_region); the connection
        takes its credentials from its own variables, the environment or the CLI profile.
      - V(never) leaves every host to SSH; V(tagged) takes the instances with the tag O(cloud_assistant_tag);
        V(no_address) the instances without an address for C(ansible_host); V(all) every Linux instance.
    type: str
    choices: [never, tagged, no_address, all]
    default: never
  cloud_assistant_tag:
    description:
      - The tag that opts an instance in with O(cloud_assistant_connection=tagged), as a dictionary of
        one key and its value (an empty value matches any value).
    type: dict
    default: {sshkeys-ecs-connection: cloud_assistant}
  cloud_assistant_status:
    description:
      - Ask DescribeCloudAssistantStatus (50 instances a call) whether each instance's Cloud Assistant
        agent runs; sets C(ecs_cloud_assistant_running) and the group C(cloud_assistant_running).
    type: bool
    default: false
notes:
  - >-
    Host variables: C(ecs_instance_id), C(ecs_instance_name), C(ecs_host_name), C(ecs_status)
    (as the API spells it, for example C(Running)), C(ecs_key_pair_name) (null without one),
    C(ecs_os_type) (C(linux) or C(windows)), C(ecs_os_name), C(ecs_region), C(ecs_zone),
    C(ecs_instance_type), C(ecs_image_id), C(ecs_resource_group_id), C(ecs_creation_time),
    C(ecs_vpc_id), C(ecs_eip), C(ecs_public_ip), C(ecs_public_ips), C(ecs_private_ip),
    C(ecs_private_ips), C(ecs_tags) (a dict), and C(ansible_host) when the instance has an address.
  - O(compose), O(groups) and O(keyed_groups) see these variables; for example a keyed group
    with C(key) V(ecs_zone) and C(prefix) V(zone) makes one group per zone.
  - With O(cache) on, the instance list is kept by the cache plugin (it holds no credentials);
    a cache written with other filters is not used.
seealso:
  - module: sshkeys.ecs.ecs_keypair_attach
  - module: sshkeys.ecs.ecs_keypair_info
"""

EXAMPLES = r"""
# prod.ecs.yml: every instance of the default region (credentials and region from the
# ALIBABA_CLOUD_* environment variables).
plugin: sshkeys.ecs.ecs

# fleet.ecs.yml: running Linux instances of two regions that hold one of two key pairs,
# named by instance name, with extra groups and variables.
plugin: sshkeys.ecs.ecs
regions: [cn-hangzhou, cn-shanghai]
statuses: [Running]
key_pair_names: [web-2024, web-2025]
tags:
  team: web
hostnames: [instance_name, instance_id]
compose:
  ansible_user: "'ecs-user'"
keyed_groups:
  - key: ecs_zone
    prefix: zone
  - key: ecs_tags.env | default('none')
    prefix: env
groups:
  needs_key: ecs_key_pair_name is none and ecs_os_type == 'linux'

# local.ecs.yml: the local ECS emulator, connecting through the private addresses,
# with the instance list cached for an hour.
plugin: sshkeys.ecs.ecs
ecs_endpoint: http://127.0.0.1:18080
ansible_host_source: private_ip
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/sshkeys-ecs-inventory
cache_timeout: 3600
"""

import hashlib
import os
from typing import Any, Dict, List, Tuple

from ansible import constants as C
from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.vars import combine_vars

from ansible_collections.sshkeys.ecs.plugins.module_utils._credentials import (
    Connection,
    CredentialError,
    build_client,
    from_environment,
    resolve_connection,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_api import cloud_assistant_status, describe_instances
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError
from ansible_collections.sshkeys.ecs.plugins.plugin_utils._ecs_inventory import (
    ANSIBLE_HOST_SOURCES,
    CLOUD_ASSISTANT_RUNNING_GROUP,
    cloud_assistant_tag,
    cloud_assistant_variables,
    mark_agents,
    uses_cloud_assistant,
    Filters,
    InventoryConfigError,
    builtin_groups,
    choose_hostname,
    host_variables,
    misnamed_file,
    normalise_hostnames,
    normalise_strings,
    select,
    unknown_options,
)

# Options that may be templates (for example a vault lookup); everything else is taken as is.
_TEMPLATED = ("alicloud_access_key", "alicloud_secret_key", "alicloud_security_token", "alicloud_region",
              "alicloud_profile", "ecs_endpoint", "shared_credentials_file", "alicloud_assume_role_arn",
              "alicloud_assume_role_session_name", "alicloud_assume_role_session_expiration", "alicloud_sts_endpoint",
              "ecs_role_name")
_SETTINGS = ("ecs_signature_version", "ecs_timeout", "ecs_retries", "ecs_retry_delay", "validate_certs",
             "ecs_endpoint_type")
# Bumped when the cached data changes shape, so an old cache is not misread.
_CACHE_FORMAT = 1


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """ECS instances as hosts."""

    NAME = "sshkeys.ecs.ecs"

    # Tests replace this with a client whose transport is fake.
    client_factory: Any = None

    def verify_file(self, path: str) -> bool:
        if not super().verify_file(path):
            return False
        if path.endswith(("ecs.yml", "ecs.yaml")):
            return True
        message = misnamed_file(path)
        if message:
            # Ansible would only say that no plugin could parse the file; the reason belongs at
            # the default verbosity.
            self.display.warning(message)
        else:
            self.display.vvv("Skipping: an sshkeys.ecs.ecs inventory file name ends in ecs.yml or ecs.yaml")
        return False

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache=cache)
        config = self._read_config_data(path)
        problem = unknown_options(config, C.config.get_configuration_definitions(
            "inventory", getattr(self, "_load_name", None) or self.NAME))
        if problem:
            raise AnsibleParserError(f"{path}: {problem}")
        try:
            filters = self._filters()
            hostnames = normalise_hostnames(self.get_option("hostnames"))
        except InventoryConfigError as exc:
            raise AnsibleParserError(f"{path}: {exc}") from None
        source = self.get_option("ansible_host_source")
        if source not in ANSIBLE_HOST_SOURCES:
            raise AnsibleParserError(f"{path}: ansible_host_source must be one of {', '.join(ANSIBLE_HOST_SOURCES)}")

        hosts = self._cached_or_fetched(path, cache, filters)
        self._populate(hosts, hostnames, source)

    # -- options -------------------------------------------------------------------------------

    def _filters(self) -> Filters:
        return Filters(instance_ids=self.get_option("instance_ids"), statuses=self.get_option("statuses"),
                       key_pair_names=self.get_option("key_pair_names"), tags=self.get_option("tags"),
                       instance_name=self.get_option("instance_name"))

    def _option(self, name: str) -> Any:
        value = self.get_option(name)
        if isinstance(value, str) and self.templar.is_template(value):
            value = self.templar.template(value)
        return value

    def _connection(self) -> Tuple[Connection, List[str]]:
        """Credentials and settings (from the options, the environment, the CLI profile file) and
        the regions to list; errors name the missing source, never a value."""
        options = {name: self._option(name) for name in _TEMPLATED}
        options.update({name: self.get_option(name) for name in _SETTINGS})
        try:
            regions = normalise_strings("regions", self.get_option("regions"))
        except InventoryConfigError as exc:
            raise AnsibleParserError(str(exc)) from None
        if regions and not from_environment(options, os.environ, "alicloud_region"):
            options["alicloud_region"] = regions[0]
        try:
            connection = resolve_connection(options, os.environ)
        except CredentialError as exc:
            raise AnsibleParserError(f"sshkeys.ecs.ecs inventory: {exc}") from None
        # Which source of the credentials chain was used, at -vvv as the modules say it (never a secret).
        self.display.vvv(f"sshkeys.ecs.ecs inventory: credentials from {connection.source}")
        return connection, regions or [connection.region]

    # -- reading the API -----------------------------------------------------------------------

    def _cached_or_fetched(self, path: str, cache: bool, filters: Filters) -> List[Dict[str, Any]]:
        """The host records, from the cache when it may be used and holds this query."""
        connection, regions = self._connection()
        # The cache entry names what it answers: regions, endpoint, account and filters.
        query_id = "|".join((",".join(regions), str(connection.endpoint),
                             connection.credentials.access_key_id, filters.fingerprint(),
                             "agents" if self.get_option("cloud_assistant_status") else ""))
        use_cache = bool(self.get_option("cache"))
        cache_key = self.get_cache_key(path)
        if use_cache and cache:
            try:
                entry = self._cache[cache_key]
            except KeyError:
                entry = None
            if (isinstance(entry, dict) and entry.get("format") == _CACHE_FORMAT
                    and entry.get("query") == self._digest(query_id) and isinstance(entry.get("hosts"), list)):
                self.display.vvv(f"sshkeys.ecs.ecs: {len(entry['hosts'])} instances from the cache")
                return entry["hosts"]
        hosts = self._fetch(connection, regions, filters)
        if use_cache:
            self._cache[cache_key] = {"format": _CACHE_FORMAT, "query": self._digest(query_id), "hosts": hosts}
        return hosts

    @staticmethod
    def _digest(text: str) -> str:
        # The access key id is part of the query; only its digest is stored in the cache.
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _fetch(self, connection: Connection, regions: List[str], filters: Filters) -> List[Dict[str, Any]]:
        hosts: List[Dict[str, Any]] = []
        seen = set()
        for region in regions:
            try:
                client = build_client(connection, region, factory=self.client_factory)
            except CredentialError as exc:
                raise AnsibleParserError(f"sshkeys.ecs.ecs inventory: {exc}") from None
            for query in filters.queries():
                try:
                    items = describe_instances(client, instance_ids=filters.instance_ids or None, **query)
                    found = select(items, region, filters)
                except EcsApiError as error:
                    raise AnsibleParserError(
                        f"sshkeys.ecs.ecs inventory: cannot list the instances of region {region}: {error}") from None
                for host in found:
                    if host["instance_id"] not in seen:
                        seen.add(host["instance_id"])
                        hosts.append(host)
            if self.get_option("cloud_assistant_status"):
                in_region = [h for h in hosts if h["region"] == region]
                try:
                    mark_agents(in_region, cloud_assistant_status(client, [h["instance_id"] for h in in_region])
                                if in_region else {})
                except EcsApiError as error:
                    raise AnsibleParserError(f"sshkeys.ecs.ecs inventory: cannot read the Cloud Assistant status "
                                             f"of region {region}: {error}") from None
            self.display.vvv(f"sshkeys.ecs.ecs: region {region}: {client.calls} API calls")
        return hosts

    # -- building the inventory ----------------------------------------------------------------

    def _populate(self, hosts: List[Dict[str, Any]], hostnames: List[str], source: str) -> None:
        strict = self.get_option("strict")
        extra_vars = self._vars if self.get_option("use_extra_vars") else None
        mode = self.get_option("cloud_assistant_connection")
        try:
            tag = cloud_assistant_tag(self.get_option("cloud_assistant_tag"))
        except InventoryConfigError as exc:
            raise AnsibleParserError(f"sshkeys.ecs.ecs inventory: {exc}") from None
        taken: Dict[str, str] = {}
        for host in hosts:
            name, warning = choose_hostname(host, hostnames, taken)
            if warning:
                self.display.warning(warning)
            taken[name] = host["instance_id"]
            self.inventory.add_host(name)
            variables = host_variables(host, source)
            if uses_cloud_assistant(host, mode, tag, source):
                variables.update(cloud_assistant_variables(host))
            for key, value in variables.items():
                self.inventory.set_variable(name, key, value)
            groups = builtin_groups(host)
            if host.get("cloud_assistant_running"):
                groups.append(CLOUD_ASSISTANT_RUNNING_GROUP)
            for group in groups:
                self.inventory.add_group(group)
                self.inventory.add_child(group, name)
            if extra_vars:
                # use_extra_vars: expressions also see the -e variables, which win as everywhere.
                variables = combine_vars(variables, extra_vars)
            try:
                self._set_composite_vars(self.get_option("compose"), variables, name, strict=strict)
                self._add_host_to_composed_groups(self.get_option("groups"), variables, name, strict=strict)
                self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, name, strict=strict)
            except AnsibleError as exc:
                raise AnsibleParserError(f"sshkeys.ecs.ecs inventory, host {name}: {exc}") from None

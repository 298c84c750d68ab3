# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: cloud_assistant
short_description: Run tasks on ECS instances through Cloud Assistant, without SSH
version_added: 0.2.0
description:
  - Runs Ansible's commands on a Linux ECS instance through the ECS API's Cloud Assistant
    (RunCommand with a C(RunShellScript), its result read with DescribeInvocationResults), so the
    instance needs no address the controller can reach and no SSH key that works. The instance
    needs a running Cloud Assistant agent, which current public images have.
  - The host is the instance id, from O(instance_id) (C(ansible_host), or C(ansible_ecs_instance_id)).
  - Credentials, region and endpoint are resolved as the collection's modules resolve them, from the
    options, then the environment (E(ALIBABA_CLOUD_ACCESS_KEY_ID), ...), then the Alibaba Cloud
    CLI profile file. They stay on the controller; only the commands and data Ansible hands the
    connection reach the instance.
  - Each command is one RunCommand plus the polls of its result. Stdout and stderr come back apart
    with the exit code. Output larger than the API returns at once (24 KB) and data larger than a
    command may carry (24 KB of Base64) travel in pieces, one command each.
  - Pipelining is supported and saves calls; turn it on (C(ansible_pipelining=true)).
author:
  - sshkeys.ecs maintainers (@sshkeys)
notes:
  - The RAM identity needs C(ecs:RunCommand) and C(ecs:DescribeInvocationResults).
  - Become works as over SSH (for example C(sudo) for a user with sudo rights); or set
    O(remote_user) to the user the commands should run as (the API's C(Username)).
options:
  instance_id:
    description: The id of the ECS instance to run on, for example C(i-bp1234567890abcdef).
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_ecs_instance_id
  remote_user:
    description:
      - The user the commands run as on the instance (RunCommand's C(Username)).
    type: str
    default: root
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
    keyword:
      - name: remote_user
  alicloud_access_key:
    description:
      - The AccessKey ID used to sign requests; if not set, the environment or the CLI profile file,
        as for the modules.
    type: str
    vars:
      - name: ansible_alicloud_access_key
  alicloud_secret_key:
    description:
      - The AccessKey secret of O(alicloud_access_key). Never shown in output or errors.
    type: str
    vars:
      - name: ansible_alicloud_secret_key
  alicloud_security_token:
    description: An STS security token, for temporary credentials.
    type: str
    vars:
      - name: ansible_alicloud_security_token
  alicloud_region:
    description:
      - The instance's region; if not set, E(ALIBABA_CLOUD_REGION_ID) (or the other names the modules
        read), then the CLI profile's region.
    type: str
    vars:
      - name: ansible_alicloud_region
      - name: ecs_region_id
  alicloud_profile:
    description: The profile of the Alibaba Cloud CLI file to read credentials and region from.
    type: str
    vars:
      - name: ansible_alicloud_profile
  ecs_endpoint:
    description:
      - The ECS API endpoint, as a host name or a URL; if not set, E(ALIBABA_CLOUD_ECS_ENDPOINT), else
        the region's endpoint.
    type: str
    vars:
      - name: ansible_ecs_endpoint
  timeout:
    description:
      - Seconds a command may run on the instance (RunCommand's C(Timeout)); the agent stops it after
        that and the task fails saying so.
    type: int
    default: 600
    vars:
      - name: ansible_cloud_assistant_timeout
  stage_dir:
    description:
      - Directory on the instance for module data too large to go with its command (private files,
        removed once read).
    type: str
    default: /tmp
    vars:
      - name: ansible_cloud_assistant_stage_dir
"""

EXAMPLES = r"""
# inventory.yml: an instance with no address the controller can reach
# all:
#   hosts:
#     web1:
#       ansible_host: i-bp1234567890abcdef
#       ansible_connection: sshkeys.ecs.cloud_assistant
#       ansible_alicloud_region: cn-hangzhou
#       ansible_pipelining: true

- name: Add a key to a user's authorized_keys over Cloud Assistant
  hosts: web1
  gather_facts: false
  tasks:
    - name: Add the key
      sshkeys.ecs.authorized_keys:
        user: ecs-user
        keys:
          - "{{ lookup('file', 'ops.pub') }}"
"""

import os

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

from ansible_collections.sshkeys.ecs.plugins.module_utils._credentials import (
    CredentialError,
    build_client,
    resolve_connection,
)
from ansible_collections.sshkeys.ecs.plugins.plugin_utils._cloud_assistant import CloudAssistantError, Runner

display = Display()

# The options handed to the credentials chain, as the modules name them.
_CREDENTIAL_OPTIONS = ("alicloud_access_key", "alicloud_secret_key", "alicloud_security_token", "alicloud_region",
                       "alicloud_profile", "ecs_endpoint")


class Connection(ConnectionBase):
    """Commands and files through RunCommand and DescribeInvocationResults."""

    transport = "sshkeys.ecs.cloud_assistant"
    has_pipelining = True
    has_tty = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._runner = None

    def _connect(self):
        if self._runner is None:
            options = {name: self.get_option(name) for name in _CREDENTIAL_OPTIONS}
            try:
                client = build_client(resolve_connection(options, os.environ))
                self._runner = Runner(client, self.get_option("instance_id"), self.get_option("remote_user"),
                                      self.get_option("timeout"))
            except (CredentialError, CloudAssistantError) as exc:
                raise AnsibleConnectionFailure(f"sshkeys.ecs.cloud_assistant: {exc}") from None
            display.vvv(f"CLOUD ASSISTANT {self._runner.instance_id} as {self._runner.user}", host=self._runner.instance_id)
            self._connected = True
        return self

    def _calls(self, before: int) -> None:
        display.vvv(f"CLOUD ASSISTANT {self._runner.calls - before} API calls", host=self._runner.instance_id)

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        before = self._runner.calls
        try:
            rc, stdout, stderr = self._runner.exec_command(cmd, in_data, self.get_option("stage_dir"))
        except CloudAssistantError as exc:
            raise AnsibleConnectionFailure(f"sshkeys.ecs.cloud_assistant: {exc}") from None
        self._calls(before)
        return rc, stdout, stderr

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        self._connect()
        if not os.path.isfile(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleError(f"file or module does not exist: {in_path}")
        with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as handle:
            data = handle.read()
        before = self._runner.calls
        try:
            self._runner.put_bytes(data, out_path)
        except CloudAssistantError as exc:
            raise AnsibleConnectionFailure(f"sshkeys.ecs.cloud_assistant: failed to put {out_path}: {exc}") from None
        self._calls(before)

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        self._connect()
        before = self._runner.calls
        try:
            data = self._runner.fetch_bytes(in_path)
        except CloudAssistantError as exc:
            raise AnsibleConnectionFailure(f"sshkeys.ecs.cloud_assistant: failed to fetch {in_path}: {exc}") from None
        with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as handle:
            handle.write(data)
        self._calls(before)

    def reset(self):
        self.close()

    def close(self):
        self._runner = None
        self._connected = False

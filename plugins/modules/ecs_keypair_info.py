#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ecs_keypair_info
short_description: List Alibaba Cloud ECS key pairs, with their public keys and instances
version_added: 0.1.0
description:
  - Reads key pairs of one region (DescribeKeyPairs, every page, 50 a call) by exact names, C(*)
    patterns, fingerprint, tags or resource group.
  - Fingerprints in the result are computed locally from the public keys, as C(ssh-keygen -l) prints them.
  - Optionally lists the instances that hold each key pair (DescribeInstances by key pair name).
author:
  - sshkeys.ecs maintainers (@sshkeys)
extends_documentation_fragment:
  - sshkeys.ecs.ecs
attributes:
  check_mode:
    description: Read-only; runs the same in check mode.
    support: full
  diff_mode:
    description: Reports no changes.
    support: none
options:
  names:
    description:
      - Key pair names. A name with C(*) is a pattern (C(*) matches any characters); a name without it matches exactly.
      - Not set means every key pair of the region.
      - Each pattern, and up to 5 exact names, costs one DescribeKeyPairs query (50 key pairs a page); more exact
        names are found in one paged listing of the region.
    type: list
    elements: str
    default: []
    aliases: [name]
  fingerprint:
    description:
      - Only the key pair with this fingerprint.
      - V(SHA256:...), as C(ssh-keygen -l) and this collection print it (RV(key_pairs[].fingerprint_sha256)), is
        matched against the fingerprint computed here from each public key; the API cannot filter by it, so the
        key pairs of the region (or of O(names)) are read with their public keys.
      - The MD5 fingerprint, as the API reports it (hex digits, with or without colons) or as C(ssh-keygen -l -E md5)
        prints it (V(MD5:aa:bb:...)), is sent to the API as its filter.
      - Anything else is refused before a call.
    type: str
  tags:
    description:
      - Only key pairs that carry all of these tags.
    type: dict
  resource_group_id:
    description:
      - Only key pairs of this resource group. ECS answers the key pairs of the default resource group
        too, whatever group is asked for; the module leaves those out unless this is the default group.
    type: str
  include_public_key:
    description:
      - Ask for the public keys (needed for the locally computed fingerprints).
    type: bool
    default: true
  include_instances:
    description:
      - Add the instances that hold each key pair.
    type: bool
    default: false
  find_taken_names:
    description:
      - Exact key pair names to look up among the instances too; the result's RV(taken_names) lists those that
        no key pair holds but instances still show.
      - Such a name is left by a key pair deleted while it was attached. It stays taken until it is detached from
        each of those instances; creating or importing a key pair under it fails with C(KeyPair.AlreadyExist).
      - Costs one DescribeKeyPairs query per name (one paged listing for more than 5), and one DescribeInstances
        query per name that no key pair holds.
    type: list
    elements: str
    default: []
seealso:
  - module: sshkeys.ecs.ecs_keypair
"""

EXAMPLES = r"""
- name: Every key pair of the region
  sshkeys.ecs.ecs_keypair_info:
  register: all_pairs

- name: Key pairs of a team, with the instances that hold them
  sshkeys.ecs.ecs_keypair_info:
    names: ["team-a-*"]
    tags:
      owner: team-a
    include_instances: true
  register: team

- name: The key pair that holds a given public key (SHA256 fingerprint, as ssh-keygen -l prints it)
  sshkeys.ecs.ecs_keypair_info:
    fingerprint: "{{ lookup('ansible.builtin.file', 'deploy.pub') | sshkeys.ecs.ssh_fingerprint }}"
  register: by_key

- name: Names only
  ansible.builtin.debug:
    msg: "{{ team.key_pairs | map(attribute='name') | list }}"
"""

RETURN = r"""
key_pairs:
  description: The key pairs found, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Key pair name.
      type: str
    id:
      description:
        - Always V(null) - DescribeKeyPairs reports no key pair id (only CreateKeyPair answers one); key pairs are
          known by their name. Kept so that results keep one shape.
      type: str
    fingerprint:
      description: The fingerprint as the API reports it (treat it as opaque).
      type: str
    fingerprint_md5:
      description: MD5 fingerprint computed locally, as C(ssh-keygen -l -E md5) prints it.
      type: str
    fingerprint_sha256:
      description: SHA256 fingerprint computed locally, as C(ssh-keygen -l) prints it.
      type: str
    public_key:
      description: The public key, C(type base64).
      type: str
    key_type:
      description: The OpenSSH key type.
      type: str
    creation_time:
      description: When the key pair was created.
      type: str
    tags:
      description: Tags of the key pair.
      type: dict
    resource_group_id:
      description: Resource group of the key pair.
      type: str
    instances:
      description: Instances that hold the key pair (instance_id, instance_name, status, os_type, public_ip_addresses).
      type: list
      elements: dict
      returned: when O(include_instances=true)
taken_names:
  description:
    - Name to the instances that still show it (instance_id, instance_name, status, os_type, public_ip_addresses),
      for each name of O(find_taken_names) that no key pair holds; empty when every name is free or held by a key
      pair.
  returned: success
  type: dict
  sample: {"deploy": [{"instance_id": "i-bp1a2b3c4d5e6f7g8h9i", "status": "Running"}]}
error:
  description: The API error when a call failed - code, message, request id, HTTP status and action.
  returned: failure after an API error
  type: dict
"""

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_module import EcsModule
from ansible_collections.sshkeys.ecs.plugins.module_utils._keypair_info import list_key_pairs, taken_name_list, taken_names


def read(module: EcsModule) -> dict:
    """The key pairs, and the names of find_taken_names that only instances still show."""
    wanted_taken = taken_name_list(module.params["find_taken_names"])
    key_pairs = list_key_pairs(module.client, **module.values(
        "names", "fingerprint", "tags", "resource_group_id", "include_public_key", "include_instances"))
    return {"changed": False, "key_pairs": key_pairs, "taken_names": taken_names(module.client, wanted_taken)}


def main() -> None:
    module = EcsModule(
        dict(
            names=dict(type="list", elements="str", default=[], aliases=["name"]),
            fingerprint=dict(type="str"),
            tags=dict(type="dict"),
            resource_group_id=dict(type="str"),
            include_public_key=dict(type="bool", default=True, no_log=False),
            include_instances=dict(type="bool", default=False),
            find_taken_names=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    module.run(read)


if __name__ == "__main__":
    main()

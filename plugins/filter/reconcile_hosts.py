# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: reconcile_hosts
short_description: The authorized_keys users of each host in a GitOps desired state
version_added: 0.1.0
author: contributors to the sshkeys.ecs collection
description:
  - Turns the C(authorized_keys) entries of a desired state (from P(sshkeys.ecs.reconcile_state#filter)) and
    the inventory hosts each entry's pattern matches into the C(authorized_keys_users) of the
    C(sshkeys.ecs.authorized_keys) role, per host.
  - A host named by several entries gets, for each user, the union of their keys; the user's keys are
    exclusive when any of those entries says so.
  - Used by the playbook C(sshkeys.ecs.reconcile).
positional: _input, entry_hosts, boot_key_pairs
options:
  _input:
    description: The C(authorized_keys) entries of the desired state.
    type: list
    elements: dict
    required: true
  entry_hosts:
    description: For each entry, in the same order, the list of inventory host names its C(hosts) pattern matches.
    type: list
    elements: list
    required: true
  boot_key_pairs:
    description:
      - Host name to the key pair (an item of a region's C(key_pairs) in the desired state) whose C(instances) list
        names the host's instance.
      - ECS writes the bound key pair's public key into the C(authorized_keys) of C(root) and C(ecs-user) at every
        boot. An exclusive C(root) or C(ecs-user) (at the default path) on such a host keeps that key as an implied
        key, so that a restart does not bring back a key the reconcile removed.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Users per host
  ansible.builtin.set_fact:
    host_users: "{{ desired.authorized_keys | sshkeys.ecs.reconcile_hosts(entry_hosts) }}"
"""

RETURN = r"""
_value:
  description:
    - C(hosts) (host name to the role's user list), C(problems) (contradictions between entries),
      C(warnings) (entries whose pattern matches no host) and C(implied) (one line per user given its instance's
      key pair as an implied key).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.sshkeys.ecs.plugins.plugin_utils._filter_errors import filter_errors
from ansible_collections.sshkeys.ecs.plugins.plugin_utils._reconcile_plan import host_users


def reconcile_hosts(entries, entry_hosts, boot_key_pairs=None):
    """The role's users per host, from the state's entries and the hosts their patterns match."""
    if not isinstance(entries, list) or not isinstance(entry_hosts, list):
        raise AnsibleFilterError('reconcile_hosts expects the list of entries and the list of their hosts')
    if boot_key_pairs is not None and not isinstance(boot_key_pairs, dict):
        raise AnsibleFilterError('reconcile_hosts expects boot_key_pairs as a mapping of host names to key pairs')
    with filter_errors('reconcile_hosts'):
        return host_users(entries, entry_hosts, boot_key_pairs)


class FilterModule:
    """The sshkeys.ecs.reconcile_hosts filter."""

    def filters(self):
        return {'reconcile_hosts': reconcile_hosts}

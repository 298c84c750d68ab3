# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: reconcile_plan
short_description: What the GitOps reconcile would change in the ECS account
version_added: 0.1.0
author: contributors to the sshkeys.ecs collection
description:
  - Compares the regions of a desired state (from P(sshkeys.ecs.reconcile_state#filter)) with the key pairs
    the account holds, as P(sshkeys.ecs.ecs_keypair_info#module) read them with C(include_instances=true),
    one result per region in the same order.
  - Key pairs are compared by public key, never by the API fingerprint.
  - Key pairs in the account but not in the state are reported, or deleted when the region has C(prune=true);
    names matching the region's C(ignore) patterns are left out.
  - Used by the playbook C(sshkeys.ecs.reconcile).
positional: _input, found
options:
  _input:
    description: The C(regions) of the desired state.
    type: list
    elements: dict
    required: true
  found:
    description:
      - The C(key_pairs) lists of the regions, in the same order, or the registered loop results of the info module.
      - From those results, C(taken_names) (with O(sshkeys.ecs.ecs_keypair_info#module:find_taken_names)) plans
        the detach that frees a name a deleted key pair left taken, before its import.
    type: list
    elements: raw
    required: true
"""

EXAMPLES = r"""
- name: The plan
  ansible.builtin.set_fact:
    plan: "{{ desired.regions | sshkeys.ecs.reconcile_plan(info.results | map(attribute='key_pairs') | list) }}"
"""

RETURN = r"""
_value:
  description:
    - C(drift) (bool), C(changes) (one readable line per difference) and C(regions), one plan per region with
      the lists C(free), C(import), C(replace), C(retag), C(attach), C(detach), C(unlisted), C(delete) and C(unmanaged);
      C(jobs), the same as flat lists of module calls (C(free), C(keypair), C(attach), C(detach), C(delete)).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.sshkeys.ecs.plugins.plugin_utils._filter_errors import filter_errors
from ansible_collections.sshkeys.ecs.plugins.plugin_utils._reconcile_plan import plan_regions


def reconcile_plan(regions, found):
    """The account plan of a desired state, given the key pairs found in each region."""
    if not isinstance(regions, list) or not isinstance(found, list):
        raise AnsibleFilterError('reconcile_plan expects the list of desired regions and the list of key pairs found')
    taken = [item.get('taken_names') or {} if isinstance(item, dict) else {} for item in found]
    found = [item.get('key_pairs', []) if isinstance(item, dict) else item for item in found]
    with filter_errors('reconcile_plan'):
        return plan_regions(regions, found, taken)


class FilterModule:
    """The sshkeys.ecs.reconcile_plan filter."""

    def filters(self):
        return {'reconcile_plan': reconcile_plan}

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: reconcile_state
short_description: Read and check a GitOps desired state for sshkeys.ecs
version_added: 0.1.0
author: contributors to the sshkeys.ecs collection
description:
  - Parses the YAML text of a desired-state file (see docs/gitops.md for the format) and checks every
    field - unknown keys, key pair names, tags, instance ids, public keys, users, duplicates - and
    returns the state in a normalised form for P(sshkeys.ecs.reconcile_plan#filter) and
    P(sshkeys.ecs.reconcile_hosts#filter).
  - Every problem is listed in one error, with its place in the file. A private key anywhere in the
    file is refused without being repeated.
  - C(public_key_file) paths are relative to O(base_dir).
  - Used by the playbook C(sshkeys.ecs.reconcile); runs on the controller.
positional: _input, base_dir, source
options:
  _input:
    description: The text of the desired-state file.
    type: string
    required: true
  base_dir:
    description: The directory relative C(public_key_file) paths start from (the state file's directory).
    type: string
    default: .
  source:
    description: The name used for the file in error messages.
    type: string
    default: desired state
seealso:
  - plugin: sshkeys.ecs.reconcile_plan
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Read the desired state
  ansible.builtin.set_fact:
    desired: "{{ lookup('ansible.builtin.file', 'state.yml') | sshkeys.ecs.reconcile_state(playbook_dir) }}"
"""

RETURN = r"""
_value:
  description:
    - The state - C(version), C(regions) (each with C(region), C(prune), C(reboot), C(ignore) and C(key_pairs),
      whose items have C(name), C(public_key), C(identity), C(fingerprint), C(tags) and C(instances)) and
      C(authorized_keys) (each with C(hosts) and C(users)).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.sshkeys.ecs.plugins.plugin_utils._filter_errors import filter_errors
from ansible_collections.sshkeys.ecs.plugins.plugin_utils._reconcile_state import load_state, validate_state


def reconcile_state(value, base_dir='.', source='desired state'):
    """The checked, normalised desired state from the YAML text of a state file."""
    if not isinstance(value, str):
        raise AnsibleFilterError(f'reconcile_state expects the text of the state file, not {type(value).__name__}')
    with filter_errors('reconcile_state'):
        return validate_state(load_state(value, str(source)), str(base_dir), str(source))


class FilterModule:
    """The sshkeys.ecs.reconcile_state filter."""

    def filters(self):
        return {'reconcile_state': reconcile_state}

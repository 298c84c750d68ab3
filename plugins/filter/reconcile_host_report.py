# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: reconcile_host_report
short_description: Drift lines from the authorized_keys results of a GitOps reconcile
version_added: 0.1.0
author: contributors to the sshkeys.ecs collection
description:
  - Turns the registered results of the C(sshkeys.ecs.authorized_keys) role, one per host, into one readable
    line per user whose file changed (or would change, in check mode), naming the keys by SHA256 fingerprint.
  - Used by the playbook C(sshkeys.ecs.reconcile).
positional: _input
options:
  _input:
    description: Host name to the role's registered result (C(authorized_keys_result)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Host drift
  ansible.builtin.set_fact:
    host_drift: "{{ dict(hosts | zip(hosts | map('extract', hostvars, 'authorized_keys_result'))) | sshkeys.ecs.reconcile_host_report }}"
"""

RETURN = r"""
_value:
  description: C(drift) (bool) and C(changes) (one line per changed user file).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.sshkeys.ecs.plugins.plugin_utils._filter_errors import filter_errors
from ansible_collections.sshkeys.ecs.plugins.plugin_utils._reconcile_plan import host_report


def reconcile_host_report(results):
    """Drift lines from per-host role results."""
    if not isinstance(results, dict):
        raise AnsibleFilterError('reconcile_host_report expects a mapping of host names to results')
    with filter_errors('reconcile_host_report'):
        return host_report(results)


class FilterModule:
    """The sshkeys.ecs.reconcile_host_report filter."""

    def filters(self):
        return {'reconcile_host_report': reconcile_host_report}

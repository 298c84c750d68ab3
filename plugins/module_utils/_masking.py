# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: an AnsibleModule that masks private key material from the start.

AnsibleModule checks its arguments (failing with messages that may quote them) and logs them
to the host's syslog before a module's own code runs. A private key pasted into any option
would be out by then, so the values that hold key material are added to ``no_log_values`` as
soon as the arguments are loaded: every later echo (syslog, the -vvv invocation, error
messages, results) masks them. Ansible masks values, never the keys of a mapping: a mapping key
holding key material (a tag key, a field name in a list of dictionaries) is renamed at once, and
the module fails on it (``withheld_keys``), since such a key cannot be meant.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import secret_values


WITHHELD_KEY = "(withheld: private key material)"


def withhold_secret_keys(value: Any) -> int:
    """Rename, in place, every mapping key inside value that holds private key material; returns
    how many were renamed."""
    count = 0
    if isinstance(value, dict):
        for key in list(value):
            item = value[key]
            count += withhold_secret_keys(item)
            if isinstance(key, str) and secret_values(key):
                del value[key]
                count += 1
                value[f"{WITHHELD_KEY} {count}"] = item
    elif isinstance(value, list):
        for item in value:
            count += withhold_secret_keys(item)
    return count


class MaskingAnsibleModule(AnsibleModule):
    """AnsibleModule whose ``no_log_values`` hold every argument value with key material, and
    whose arguments hold no mapping key with key material (``withheld_keys`` counts them)."""

    withheld_keys = 0

    def _load_params(self) -> None:
        super()._load_params()
        self.no_log_values.update(secret_values(self.params))
        if isinstance(self.params, dict):
            self.withheld_keys = withhold_secret_keys(self.params)

    def fail_on_withheld_keys(self) -> None:
        if self.withheld_keys:
            self.fail_json(msg="a mapping key in the options (a tag key, a field name) holds private key material; "
                               "it is not shown, and nothing was done")

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: an AnsibleModule that masks private key material from the start.

AnsibleModule checks its arguments (failing with messages that may quote them) and logs them
to the host's syslog before a module's own code runs. A private key pasted into any option
would be out by then, so the values that hold key material are added to ``no_log_values`` as
soon as the arguments are loaded: every later echo (syslog, the -vvv invocation, error
messages, results) masks them.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import secret_values


class MaskingAnsibleModule(AnsibleModule):
    """AnsibleModule whose ``no_log_values`` hold every argument value with key material."""

    def _load_params(self) -> None:
        super()._load_params()
        self.no_log_values.update(secret_values(self.params))

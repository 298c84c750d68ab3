#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: authorized_key_rotate
short_description: Swap an SSH key for a new one, with proof that the new key logs in
version_added: 0.1.0
description:
  - Replaces an old public key by a new one in a user's C(authorized_keys) file without any
    way to lock the user out.
  - "It works in steps: (1) on the host, the new key is added next to the old one, with the old
    key's options unless O(keep_options=false), in one atomic write; (2) from the controller, a
    separate C(ssh) process logs in with O(new_private_key_path) - no connection sharing, no
    agent, only that key (C(IdentitiesOnly), C(BatchMode), C(ControlPath=none)) - to the host,
    port and user of the rotation and runs a command whose output is checked; (3) only then the
    old key is removed, inside that very login (the module's own step, run by the host's Python
    in the new key's session), so the proof and the removal are one round trip; where that
    session cannot do it (a forced C(command=) on the key, a proof as another user with
    O(verify_user)) or it does not finish, the removal runs over Ansible's connection after the
    proof; (4) optionally a login with O(old_private_key_path) must now be refused."
  - If any step fails, the file is put back as it was and the task fails saying what happened;
    the old key keeps working. The file is put back from a copy the host keeps next to it for the
    run (mode C(0600), removed when the rotation ends), so no file content travels to the controller
    or through module arguments. A connection that drops after step 1 leaves both keys in the
    file (the old one still works) and the task failed; the next run picks up from there. A
    connection that drops after step 3 has done its work; the host shows it, and the task reports
    the rotation done with a warning.
  - A check through Ansible's own connection would prove nothing, because Ansible keeps its SSH
    connections open (C(ControlPersist)); that is why the proof is a fresh C(ssh) process.
  - Idempotent. When the new key is in the file and none of the old keys is, nothing happens and
    no login is tried.
  - This module has an action plugin of the same name that runs on the controller and drives the
    steps; the host side uses the Python standard library only.
author:
  - sshkeys.ecs maintainers (@sshkeys)
options:
  user:
    description:
      - The user whose C(authorized_keys) file changes. The login proof logs in as this user
        (unless O(verify_user) is set).
      - Defaults to the user Ansible connects as (C(ansible_user) / C(remote_user)).
    type: str
  path:
    description:
      - The keys file. Defaults to C(~user/.ssh/authorized_keys).
      - A path starting with C(~/) is relative to the home directory of O(user) on the managed
        host (not of whoever runs the module or the controller).
    type: str
  old_key:
    description:
      - The key to replace, as a public key line (options and comment do not matter) or a
        fingerprint (C(SHA256:...) or C(MD5:aa:bb:...), as C(ssh-keygen -l) prints them).
      - Several may be given; every line of every one of them is removed after the proof.
      - When none of them is in the file, the task fails unless the new key is already there
        (then the rotation was done before and nothing happens).
    type: list
    elements: str
    required: true
  new_key:
    description:
      - The new public key line, C(type base64 [comment]).
      - It must differ from every O(old_key).
      - It may carry options only when O(keep_options=false).
    type: str
    required: true
  new_private_key_path:
    description:
      - The private key of O(new_key), on the controller. Required when O(verify=true).
      - It is checked against O(new_key) before anything is changed on the host. It must not be
        encrypted (C(ssh) runs in batch mode) and must not be readable by group or others.
      - Only the path is ever shown, never the content.
    type: path
  verify:
    description:
      - Prove the new key with a real login before removing the old key.
      - Turning this off removes the old key without any proof and needs
        O(accept_lockout_risk=true) as well.
    type: bool
    default: true
  accept_lockout_risk:
    description:
      - Acknowledges that with O(verify=false) a wrong new key locks the user out.
    type: bool
    default: false
  verify_old_key_rejected:
    description:
      - After removing the old key, prove that a login with O(old_private_key_path) is refused.
        If it is still accepted (for example because another file or an C(AuthorizedKeysCommand)
        authorizes it), the file is restored and the task fails.
    type: bool
    default: false
  old_private_key_path:
    description:
      - The private key of the old key, on the controller, for O(verify_old_key_rejected).
    type: path
  keep_options:
    description:
      - Give the new key line the options of the first line of the old key.
      - When V(false), the new line gets the options written in O(new_key), if any.
    type: bool
    default: true
  backup:
    description:
      - Keep a copy of the file as it was before the rotation, next to it, named
        C(authorized_keys.<pid>.<timestamp>~). The rotation can be undone without it.
    type: bool
    default: false
  follow:
    description:
      - Follow symbolic links in the last component of the directory and of the file. When
        V(false) (the default) such a link is an error.
    type: bool
    default: false
  verify_host:
    description:
      - Host name or address the login proof connects to. Defaults to the host Ansible
        connects to (C(ansible_host)).
    type: str
  verify_port:
    description:
      - Port of the login proof. Defaults to the port Ansible connects to (C(ansible_port)),
        else the C(ssh) default.
    type: int
  verify_user:
    description:
      - User of the login proof. Defaults to O(user).
    type: str
  verify_ssh_args:
    description:
      - Extra arguments for the C(ssh) of the login proof, for example
        C(-o UserKnownHostsFile=/etc/ssh/fleet_known_hosts). Each item is split like a shell
        would split it.
      - The connection's C(ssh_args), C(ssh_common_args) and C(ssh_extra_args) are used too
        (jump hosts, known hosts files), and host key checking follows Ansible's
        C(host_key_checking). Options that could make the proof use something other than
        O(new_private_key_path) alone - identities, agent, connection sharing, other
        authentication methods, user and port - are dropped from all of them.
    type: list
    elements: str
    default: []
  verify_timeout:
    description:
      - Seconds allowed for the login proof to connect (C(ConnectTimeout)); the whole proof may
        take three times as long.
    type: int
    default: 10
  _phase:
    description:
      - Internal, set by the action plugin only (the step to run on the host). A task that sets
        it is refused.
    type: str
    choices: [add, remove_old, restore, forget]
  _run_backup:
    description:
      - Internal, set by the action plugin only (the path of the copy of the file the host keeps
        for the run, for the restore step; never the file's content).
    type: str
  _written:
    description:
      - Internal, set by the action plugin only (checksums of what the rotation wrote).
    type: list
    elements: str
    default: []
attributes:
  action:
    support: full
    description: The action plugin on the controller drives the steps and runs the login proof.
  check_mode:
    support: full
    description: Reads the file and reports whether the rotation would change it; no login is tried.
  diff_mode:
    support: full
    description: The file before and after the whole rotation.
  platform:
    support: full
    platforms: posix
    description: Managed hosts with a POSIX file system and Python 3.9 or newer; the controller needs an OpenSSH client.
notes:
  - Connections other than C(ssh) work too when O(verify_host) (and O(verify_port)) say where
    the proof should log in.
  - Over the P(sshkeys.ecs.cloud_assistant#connection) connection the host is an instance id, not an
    address, so the rotation refuses before any change unless O(verify_host) gives the instance's SSH
    address; where the controller has no SSH path to it, only O(verify=false) with
    O(accept_lockout_risk=true) rotates, without proof.
  - "Later tasks of the play still reach the host through Ansible's open connection for a while
    (C(ControlPersist)), even when it used the old key. Point C(ansible_ssh_private_key_file) at
    the new key for later plays, or use C(meta: reset_connection)."
  - For a fleet, run the rotation with C(serial) and C(max_fail_percentage=0), as the
    C(sshkeys.ecs.rotate_keys) playbook does, so that a bad key stops the rollout after the
    first batch.
seealso:
  - module: sshkeys.ecs.authorized_keys
  - module: sshkeys.ecs.authorized_keys_info
"""

EXAMPLES = r"""
- name: Rotate ecs-user's key; the new key must log in before the old one goes
  sshkeys.ecs.authorized_key_rotate:
    user: ecs-user
    old_key: "{{ lookup('ansible.builtin.file', 'keys/2025.pub') }}"
    new_key: "{{ lookup('ansible.builtin.file', 'keys/2026.pub') }}"
    new_private_key_path: keys/2026
    verify_old_key_rejected: true
    old_private_key_path: keys/2025

- name: Rotate by fingerprint, new options instead of the old ones, through a jump host
  sshkeys.ecs.authorized_key_rotate:
    user: deploy
    old_key:
      - SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU
    new_key: 'from="10.0.0.0/8",no-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFYr0kbKzJ4PrVhFBcHDiI0QfIA/yGwW+mgLhIjvYT8h deploy-2026'
    keep_options: false
    new_private_key_path: /secure/deploy-2026
    verify_ssh_args:
      - -o ProxyJump=bastion.example.com
"""

RETURN = r"""
path:
  description: The keys file.
  returned: always
  type: str
  sample: /home/ecs-user/.ssh/authorized_keys
user:
  description: The user whose file it is.
  returned: always
  type: str
added:
  description: SHA256 fingerprint of the new key when this run added it, else null.
  returned: always
  type: str
  sample: SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU
removed:
  description: SHA256 fingerprints of the old key lines removed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
backup_file:
  description: The copy of the file as it was, when O(backup=true) and the file changed.
  returned: when a backup was made
  type: str
  sample: /home/ecs-user/.ssh/authorized_keys.3114.2026-01-02@10:11:12~
verification:
  description: What the login proofs found.
  returned: when a login was tried
  type: dict
  contains:
    host:
      description: Host the proof connected to.
      type: str
    port:
      description: Port, or null for the C(ssh) default.
      type: int
    user:
      description: User the proof logged in as.
      type: str
    new_key_login:
      description: Whether the new key logged in and the check command ran.
      type: bool
    removed_in_login:
      description: Whether the old key was removed inside the new key's own login (the proof and the
        removal in one round trip); absent when it was removed over Ansible's connection.
      type: bool
    old_key_rejected:
      description: Whether a login with the old key was refused; null when not tried.
      type: bool
rolled_back:
  description: Whether the file was put back as it was after a failed step.
  returned: when the task failed after changing the file
  type: bool
step:
  description: The step that failed (C(add), C(new_key_login), C(remove_old), C(old_key_rejected)).
  returned: on failure
  type: str
"""

from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_target import selinux_hook
from ansible_collections.sshkeys.ecs.plugins.module_utils._masking import MaskingAnsibleModule
from ansible_collections.sshkeys.ecs.plugins.module_utils._rotate import StepOptions, module_argument_spec, run_step


def main() -> None:
    module = MaskingAnsibleModule(argument_spec=module_argument_spec(), supports_check_mode=True)
    module.fail_on_withheld_keys()
    try:
        result = run_step(StepOptions.from_params(module.params), check_mode=module.check_mode,
                          context_hook=selinux_hook(module), diff=module._diff)
    except SshKeysError as exc:
        module.fail_json(msg=str(exc), reason=exc.reason)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

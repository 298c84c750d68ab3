#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ecs_keypair_attach
short_description: Attach an Alibaba Cloud ECS key pair to instances or detach it, optionally rebooting them
version_added: 0.1.0
description:
  - Attaches a key pair to any number of instances (O(state=present)) or detaches it
    (O(state=absent)), sending the instance ids in batches of at most 50 (AttachKeyPair, DetachKeyPair).
  - Idempotent. DescribeInstances (100 ids a call) decides first; instances that already hold the key pair
    (O(state=present)) or do not hold it (O(state=absent)) are left alone.
  - B(What attaching means.) An instance holds at most one key pair; attaching replaces the key pair
    it held before, and switches password login off. Detaching removes the key pair; password login
    stays off until the instance's password is reset. Both take effect only when the instance
    restarts - a running instance at its next reboot, a stopped one at its next start.
  - B(This module reboots machines when O(reboot=true).) Every running instance whose key pair changed in
    this run is rebooted (RebootInstance) and the module waits until it is Running again. Without
    O(reboot), nothing is restarted and RV(needs_restart) lists the instances whose change waits for one.
  - Every bad input is refused before anything changes, naming the offending ids - an empty or
    duplicated list, malformed ids, instances that do not exist, Windows instances (unless
    O(skip_windows=true)), instances in a transition, and (for O(state=present)) a key pair that does not exist
    (in check mode, unless O(key_pair_planned) says an earlier task would create it).
  - The per-instance results of the API are never ignored. If any instance fails, the task fails and
    its result lists what succeeded and what did not. Running the task again after a failure only
    changes (and reboots) the instances that still need it.
author:
  - sshkeys.ecs maintainers (@sshkeys)
extends_documentation_fragment:
  - sshkeys.ecs.ecs
attributes:
  check_mode:
    description: Reads the instances and reports what would change and which instances would be rebooted; changes nothing.
    support: full
  diff_mode:
    description: Shows the key pair of each instance before and after.
    support: full
options:
  key_pair_name:
    description:
      - The key pair to attach or detach.
    type: str
    required: true
    aliases: [name]
  instance_ids:
    description:
      - The instances, any number; each id once. Spaces around an id are dropped; what is left must be a whole
        instance id (C(i-) and lower-case letters or digits).
    type: list
    elements: str
    required: true
  state:
    description:
      - V(present) attaches the key pair, V(absent) detaches it.
    type: str
    choices: [present, absent]
    default: present
  reboot:
    description:
      - Reboot the running instances whose key pair changed in this run, so that the change takes effect now,
        and wait until they are Running again.
      - Stopped instances are never started; they take the change at their next start.
    type: bool
    default: false
  force_stop:
    description:
      - With O(reboot=true), force the instances off if they do not shut down cleanly (C(ForceStop)),
        which may lose unsaved data.
    type: bool
    default: false
  wait_timeout:
    description:
      - With O(reboot=true), how many seconds to wait for all rebooted instances to be Running again.
        The task fails, naming the instances, if they are not.
    type: int
    default: 600
  skip_windows:
    description:
      - Key pairs are for Linux instances only. V(false) refuses a Windows instance in the list before any change;
        V(true) skips it with a warning (action V(skipped)).
    type: bool
    default: false
  key_pair_planned:
    description:
      - For plans with C(--check) in which an earlier task creates the key pair. Give it the
        RV(sshkeys.ecs.ecs_keypair#module:would_create) of that P(sshkeys.ecs.ecs_keypair#module) task.
      - In check mode, V(true) plans the attach against a key pair that does not exist yet, as the earlier
        task would create it, instead of refusing it; every other check still runs. Outside check mode it
        changes nothing (the earlier task created the key pair, and it must exist).
    type: bool
    default: false
notes:
  - Rebooting interrupts whatever runs on the instances. Use O(reboot=true) with C(serial) or small lists
    when that matters.
  - A task that failed during the reboot wait does not reboot the same instances again when it is run
    again, because their key pair is already in place.
seealso:
  - module: sshkeys.ecs.ecs_keypair
  - module: sshkeys.ecs.ecs_keypair_info
"""

EXAMPLES = r"""
- name: Attach a key pair to a fleet and reboot the running instances so it takes effect
  sshkeys.ecs.ecs_keypair_attach:
    key_pair_name: deploy
    instance_ids: "{{ fleet_ids }}"
    reboot: true
    wait_timeout: 900
  register: attached

- name: Log in over SSH next (each instance's public address is in the result)
  ansible.builtin.add_host:
    name: "{{ item.public_ip }}"
    groups: fleet
  loop: "{{ attached.instances }}"
  when: item.status == 'Running'

- name: Detach it, skipping Windows instances, without rebooting
  sshkeys.ecs.ecs_keypair_attach:
    key_pair_name: deploy
    instance_ids: "{{ fleet_ids }}"
    state: absent
    skip_windows: true
  register: detached

- name: Which instances still wait for a restart
  ansible.builtin.debug:
    var: detached.needs_restart

# Create, then attach: with --check the first task only plans the key pair, and the second plans
# against it instead of failing on a key pair that does not exist yet.
- name: Key pair
  sshkeys.ecs.ecs_keypair:
    name: deploy
    private_key_path: ~/.ssh/deploy.pem
  register: deploy_pair

- name: Attached to the fleet
  sshkeys.ecs.ecs_keypair_attach:
    key_pair_name: deploy
    instance_ids: "{{ fleet_ids }}"
    key_pair_planned: "{{ deploy_pair.would_create }}"
"""

RETURN = r"""
instances:
  description: One entry per requested instance, in the order given.
  returned: success, and failure after the job started
  type: list
  elements: dict
  contains:
    instance_id:
      description: The instance id.
      type: str
    instance_name:
      description: The instance name.
      type: str
    action:
      description:
        - V(attached), V(detached), V(unchanged), V(skipped) (a Windows instance with O(skip_windows=true))
          or V(failed). In check mode, what would be done.
      type: str
    code:
      description: The API's code for this instance (V(200) on success); null when no call was made for it.
      type: str
    message:
      description: The API's message, or why nothing was done.
      type: str
    key_pair_before:
      description: The key pair the instance held before; null for none.
      type: str
    key_pair_after:
      description: The key pair the instance holds now; null for none.
      type: str
    needs_restart:
      description: The change is made but takes effect only at the next restart or start.
      type: bool
    restarted:
      description: The instance was rebooted by this task and is Running again.
      type: bool
    status:
      description: The instance status (after the reboot wait, for rebooted instances).
      type: str
    os_type:
      description: V(linux) or V(windows).
      type: str
    public_ip:
      description: The first public IP address of the instance; null if none.
      type: str
    public_ip_addresses:
      description: All public IP addresses of the instance.
      type: list
      elements: str
  sample:
    - instance_id: i-bp1abcdefghij0123456
      instance_name: web-1
      action: attached
      code: "200"
      message: successful
      key_pair_before: old-key
      key_pair_after: deploy
      needs_restart: false
      restarted: true
      status: Running
      os_type: linux
      public_ip: 203.0.113.10
      public_ip_addresses: [203.0.113.10]
changed_instances:
  description: Ids of the instances whose key pair changed (or would change, in check mode).
  returned: always
  type: list
  elements: str
needs_restart:
  description: Ids of the instances whose change waits for a restart or start.
  returned: always
  type: list
  elements: str
restarted:
  description: Ids of the instances this task rebooted that are Running again.
  returned: always
  type: list
  elements: str
would_restart:
  description: In check mode with O(reboot=true), the ids that would be rebooted.
  returned: always
  type: list
  elements: str
failed_instances:
  description: Ids of the instances the API refused.
  returned: always
  type: list
  elements: str
effect:
  description: What the change means for the instances (key pair replaced, password login).
  returned: always
  type: str
key_pair_name:
  description: The key pair.
  returned: always
  type: str
state:
  description: The requested state.
  returned: always
  type: str
changes:
  description:
    - On a failure after the task changed something, what it changed (V(attached key pair web to i-abc, i-def),
      V(rebooted i-abc)); C(changed) is then V(true).
  returned: failure after a change
  type: list
  elements: str
error:
  description: The API error that stopped the job (or the first refusal of an instance) - code, message, request id,
    HTTP status, action.
  returned: failure after an API error
  type: dict
"""

from ansible_collections.sshkeys.ecs.plugins.module_utils._attach import AttachJob, run
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_module import EcsModule


def main() -> None:
    module = EcsModule(
        dict(
            key_pair_name=dict(type="str", required=True, aliases=["name"], no_log=False),
            instance_ids=dict(type="list", elements="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            reboot=dict(type="bool", default=False),
            force_stop=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=600),
            skip_windows=dict(type="bool", default=False),
            key_pair_planned=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    module.run_job(AttachJob, run)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ecs_keypair
short_description: Create, import or delete an Alibaba Cloud ECS key pair
version_added: 0.1.0
description:
  - Makes sure an ECS SSH key pair exists or not, in one region of one account.
  - With no public key given, the cloud creates the key pair (CreateKeyPair) and returns its private
    key once; the module writes it to O(private_key_path) (mode 0600, atomically) or, on request only,
    returns it. With O(generate=local) the key is made on the controller and only its public key is
    imported, so the private key never travels.
  - With O(public_key) or O(public_key_path) the public key is checked locally and imported (ImportKeyPair).
  - An existing key pair is compared by its public key, not by the API's fingerprint; O(on_mismatch)
    says what happens when it differs.
author:
  - sshkeys.ecs maintainers (@sshkeys)
extends_documentation_fragment:
  - sshkeys.ecs.ecs
attributes:
  check_mode:
    description: Decisions come from read-only API calls; nothing is created, changed or written.
    support: full
  diff_mode:
    description: Shows the public key, its SHA256 fingerprint, tags and resource group before and after; never private key material.
    support: full
  idempotent:
    description: A second run with the same options changes nothing.
    support: full
options:
  name:
    description:
      - The key pair name. 2 to 128 characters, starting with a letter; letters, digits, V(.), V(:),
        V(_) and V(-); not starting with C(http://) or C(https://). Letters of any script count, as
        ECS takes them (Chinese names included). The whole value is checked; a name that ends
        with a newline (a YAML block scalar C(|) adds one) or a space is refused.
      - One of O(name) and O(names) is required.
    type: str
    aliases: [key_pair_name]
  names:
    description:
      - Several key pairs to delete in one task, with O(state=absent) only. Each name follows the rules of O(name)
        (no wildcards).
      - Those that exist are deleted up to 100 names per DeleteKeyPairs call; names that do not exist are skipped.
        Up to 5 names are looked up one by one, more with one paged listing of the region's key pairs (and of its
        instances, to report or detach the instances that hold them).
      - When a call fails part way, the error says how many were deleted; running the task again deletes the rest.
    type: list
    elements: str
    aliases: [key_pair_names]
  state:
    description:
      - V(present) makes sure the key pair exists; V(absent) deletes it, or those of O(names) (DeleteKeyPairs).
    type: str
    choices: [present, absent]
    default: present
  public_key:
    description:
      - An OpenSSH public key line (C(type base64 [comment])) to import.
      - Accepted types are C(ssh-rsa), C(ssh-dss), C(ecdsa-sha2-nistp256/384/521), their C(-cert-v01@openssh.com)
        certificates and C(ssh-ed25519) (ECS's published list omits it; the service has the last word).
      - A private key given here is refused before anything is sent.
    type: str
  public_key_path:
    description:
      - A file holding the public key to import, as for O(public_key).
    type: path
  generate:
    description:
      - Who makes the key when no public key is given.
      - V(cloud) calls CreateKeyPair; ECS makes an RSA key and returns its private key once.
      - V(local) makes the key on the host that runs the module (the controller) with the
        C(cryptography) package, writes the private key to O(private_key_path) first and then imports
        the public key. When O(private_key_path) exists already, its key is used instead of a new one.
    type: str
    choices: [cloud, local]
    default: cloud
  key_type:
    description:
      - The type of key for O(generate=local). Default V(rsa).
    type: str
    choices: [rsa, ecdsa, ed25519]
  key_size:
    description:
      - Bits for O(generate=local). RSA 2048 to 16384 (default 3072); ECDSA 256, 384 or 521 (default 256).
    type: int
  passphrase:
    description:
      - Encrypts the private key written by O(generate=local), and decrypts an existing O(private_key_path).
    type: str
  private_key_path:
    description:
      - Where the private key of a created key pair is written, mode 0600, through a temporary file in
        the same directory and a rename. The temporary file is made before the key pair is created, so a
        missing or read-only directory fails before anything changes.
      - An existing different file is not overwritten unless O(overwrite_private_key=true). A symbolic link, as the file
        or as its directory, is refused, and so is anything that is not a regular file (a FIFO, a socket, a device).
      - When the key pair exists and this file holds a private key, its public key is compared with the key pair's. An
        existing file must be a regular file owned by the user running the module that group and others cannot access
        (mode 0600 or 0400), as ssh requires; otherwise the task fails before any change.
      - While the task runs, it holds an advisory lock on C(.<name>.lock) in the same directory (created mode 0600,
        removed at the end), so two runs on one controller for the same file take turns. Runs on different machines
        cannot see each other's lock.
      - Just before CreateKeyPair it writes C(.<name>.pending) in the same directory (mode 0600; the key pair name and
        region, nothing secret) and removes it once the private key is saved or the key pair is known to be gone. A
        later run that finds the key pair, no private key in this file and this marker knows that the answer of an
        earlier CreateKeyPair was lost (nobody ever held that private key), and deletes and creates the key pair again,
        with a warning.
    type: path
  overwrite_private_key:
    description:
      - Allow replacing an existing O(private_key_path) with the private key of a newly created key pair.
    type: bool
    default: false
  write_public_key:
    description:
      - With O(generate=local), when this task makes a new key, its public key is also written beside the private
        key, at O(private_key_path) with C(.pub) appended, mode 0644, with the key pair name as comment - as
        C(ssh-keygen) leaves a new key. An existing public key file there is replaced; a symbolic link or a file
        that is not a regular file there is refused before anything changes.
      - The comment is also written into the private key file when it is in OpenSSH format without a passphrase
        (C(ssh-keygen -y) shows it).
      - V(false) writes no public key file.
    type: bool
    default: true
  return_private_key:
    description:
      - Return the private key made by CreateKeyPair in RV(private_key).
      - Anyone who can read the task output can read the key. Use it only with C(no_log) set to C(true) on
        the task, and prefer O(private_key_path).
    type: bool
    default: false
  on_mismatch:
    description:
      - What to do when the key pair exists with another public key than the one wanted.
      - V(fail) stops with an error naming both SHA256 fingerprints; V(keep) leaves it and warns;
        V(replace) deletes it and creates or imports the wanted key under the same name.
      - With the default O(generate=cloud), a key pair that exists while O(private_key_path) does not is a mismatch
        too (ECS returns a private key only once, when it creates the key pair), unless the marker of a lost
        CreateKeyPair answer names it (see O(private_key_path)). V(fail) says so, V(keep) leaves it with a warning,
        V(replace) deletes it and creates a new one whose private key is saved. Without O(private_key_path)
        (O(return_private_key) only), an existing key pair is left alone with a warning.
      - When a replacement fails after the old key pair was deleted, the old public key is imported again and
        attached again to the instances it was detached from; the failure says whether that worked and lists every
        change in RV(changes).
    type: str
    choices: [fail, replace, keep]
    default: fail
  detach_instances:
    description:
      - Before deleting or replacing a key pair that instances hold, detach it from them (DetachKeyPair).
        After a replacement the new key pair is attached to the same instances again.
      - When a detach fails for some instances, the ones already detached are attached again and nothing is replaced.
        When the new key pair cannot be attached, the failure names the instances left without a key pair and the
        P(sshkeys.ecs.ecs_keypair_attach#module) task that finishes the job (a re-run of this task finds the new key
        pair in place and does not know those instances).
      - Without it, deleting an attached key pair either succeeds while the instances keep it (and the
        name stays taken) or is refused by ECS, depending on the service; the module warns or fails clearly.
    type: bool
    default: false
  include_instances:
    description:
      - Add the instances that hold the key pair to the result (one DescribeInstances call).
    type: bool
    default: false
  tags:
    description:
      - Tags for the key pair, up to 20. Keys must not start with C(aliyun) or C(acs:), values not with C(acs:);
        neither keys nor values may contain C(http://) or C(https://), in any letter case.
      - Not set means tags are left as they are.
      - Changed tags are set (TagResources) before the others are removed (UntagResources), so a failure in between
        loses no tag; only when the old and new tags together would pass 20 are the old ones removed first. A failure
        after the first call lists what was set or removed in RV(changes).
    type: dict
  purge_tags:
    description:
      - Remove tags that are not in O(tags). Has no effect when O(tags) is not set.
    type: bool
    default: true
  resource_group_id:
    description:
      - The resource group of a new key pair. An existing key pair in another group is left there, with a warning.
    type: str
notes:
  - The private key of a cloud-created key pair is written to O(private_key_path) before anything else
    happens. If writing fails after the key pair was created, the key pair is deleted again (nobody could
    log in with it) and the task fails without showing the key. If the API reply itself is lost (a timeout, a
    dropped connection, a server error), a key pair the reply may have created is deleted at once and creation is
    tried again; after the last try, a request that timed out may still commit late, so the module looks again
    after a pause and deletes what appeared. A run that had a lost answer reads the key pair again once its own
    late requests must have landed, and creates it again if one of them undid it. A key pair that matches the
    private key already in O(private_key_path) is another run's success and is never deleted.
  - A failure after the task changed something (detached instances, deleted a key pair, set or removed tags) reports
    C(changed=true) and lists the changes in RV(changes); a failure that changed nothing reports C(changed=false).
  - Key pairs apply to Linux instances only. Attaching, detaching and replacing take effect when an instance restarts.
seealso:
  - module: sshkeys.ecs.ecs_keypair_info
"""

EXAMPLES = r"""
- name: Let ECS create a key pair, private key saved on the controller
  sshkeys.ecs.ecs_keypair:
    name: deploy
    private_key_path: ~/.ssh/ecs-deploy.pem
    tags:
      team: platform

- name: Make the key on the controller; only the public key leaves it
  sshkeys.ecs.ecs_keypair:
    name: web
    generate: local
    key_type: ed25519
    private_key_path: ~/.ssh/ecs-web

- name: Import an existing public key, replacing a different one of the same name
  sshkeys.ecs.ecs_keypair:
    name: ops
    public_key_path: ~/.ssh/id_ed25519.pub
    on_mismatch: replace

- name: Delete a key pair, detaching it from its instances first
  sshkeys.ecs.ecs_keypair:
    name: old
    state: absent
    detach_instances: true

- name: Delete many key pairs in few calls (100 names per DeleteKeyPairs)
  sshkeys.ecs.ecs_keypair:
    names: "{{ retired_key_pairs }}"
    state: absent

- name: Credentials once for all tasks of the collection
  module_defaults:
    group/sshkeys.ecs.ecs:
      alicloud_region: cn-hangzhou
  block:
    - name: Import
      sshkeys.ecs.ecs_keypair:
        name: ci
        public_key: "{{ lookup('file', 'files/ci.pub') }}"
"""

RETURN = r"""
would_create:
  description:
    - V(true) in check mode when the task would create or import a key pair under a name no key pair holds yet;
      V(false) otherwise. A later P(sshkeys.ecs.ecs_keypair_attach#module) task of the same check run takes it
      as O(sshkeys.ecs.ecs_keypair_attach#module:key_pair_planned), to plan the attach instead of failing.
  returned: O(state=present)
  type: bool
  sample: true
action:
  description:
    - What the task did - V(created), V(imported), V(replaced), V(updated) (tags), V(kept) (a mismatch
      left alone), V(unchanged), V(deleted) or V(absent) (nothing to delete).
  returned: always
  type: str
  sample: created
key_pair:
  description: The key pair as the service reports it after the task (empty when absent, and with O(names)).
  returned: always
  type: dict
  contains:
    name:
      description: Key pair name.
      type: str
      sample: deploy
    id:
      description:
        - The key pair id that CreateKeyPair answered, when this task created the key pair (O(generate=cloud)).
        - V(null) otherwise - ECS reports no id for an imported key pair, nor in DescribeKeyPairs; key pairs
          are known by their name.
      type: str
    fingerprint:
      description: The fingerprint as the API reports it (its format varies; treat it as opaque).
      type: str
    fingerprint_md5:
      description: MD5 fingerprint of the public key, computed locally, as C(ssh-keygen -l -E md5) prints it.
      type: str
      sample: "MD5:9f:2c:..."
    fingerprint_sha256:
      description: SHA256 fingerprint of the public key, computed locally, as C(ssh-keygen -l) prints it.
      type: str
      sample: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
    public_key:
      description: The public key, C(type base64).
      type: str
    key_type:
      description: The OpenSSH key type.
      type: str
      sample: ssh-rsa
    creation_time:
      description: When the key pair was created, as the API reports it.
      type: str
    tags:
      description: Tags of the key pair.
      type: dict
    resource_group_id:
      description: Resource group of the key pair.
      type: str
    private_key_path:
      description: Where the private key is (for created or locally generated key pairs).
      type: str
      returned: when O(private_key_path) is set
    instances:
      description: Instances that hold the key pair (id, name, status, OS type, public IPs).
      type: list
      elements: dict
      returned: when O(include_instances=true)
deleted:
  description: The names of O(names) that existed and were deleted (in check mode, would be deleted).
  returned: with O(names)
  type: list
  elements: str
  sample: [ci-2025, deploy-old]
key_pairs:
  description:
    - The key pairs of O(names) that existed before the task, as the service reported them, with the fields of
      RV(key_pair) (and their instances with O(include_instances=true)).
  returned: with O(names)
  type: list
  elements: dict
public_key_file:
  description:
    - The public key file this task wrote beside a private key it made (O(generate=local), O(write_public_key)).
  returned: when written
  type: str
  sample: /home/deploy/.ssh/deploy.pem.pub
private_key:
  description:
    - The unencrypted private key of a key pair created by this task. Protect it - set C(no_log) to C(true) on the task.
  returned: when O(return_private_key=true) and the key pair was created by this task
  type: str
changes:
  description:
    - On a failure after the task changed something, every change it made, in order (for example
      V(detached key pair web from i-abc, i-def), V(deleted key pair web), V(set tags team of key pair web)),
      including what it undid. C(changed) is then V(true).
  returned: failure after a change
  type: list
  elements: str
error:
  description: The API error when a call failed (or the first refusal of an instance) - code, message, request id,
    HTTP status and action.
  returned: failure after an API error
  type: dict
"""

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_module import EcsModule
from ansible_collections.sshkeys.ecs.plugins.module_utils._keypair import KeypairOptions, keypair_task


def argument_spec() -> dict:
    return dict(
        name=dict(type="str", aliases=["key_pair_name"]),
        names=dict(type="list", elements="str", aliases=["key_pair_names"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        public_key=dict(type="str", no_log=False),
        public_key_path=dict(type="path", no_log=False),
        generate=dict(type="str", default="cloud", choices=["cloud", "local"]),
        key_type=dict(type="str", choices=["rsa", "ecdsa", "ed25519"], no_log=False),
        key_size=dict(type="int", no_log=False),
        passphrase=dict(type="str", no_log=True),
        private_key_path=dict(type="path", no_log=False),
        overwrite_private_key=dict(type="bool", default=False, no_log=False),
        return_private_key=dict(type="bool", default=False, no_log=False),
        on_mismatch=dict(type="str", default="fail", choices=["fail", "replace", "keep"]),
        detach_instances=dict(type="bool", default=False),
        include_instances=dict(type="bool", default=False),
        tags=dict(type="dict"),
        purge_tags=dict(type="bool", default=True),
        resource_group_id=dict(type="str"),
        write_public_key=dict(type="bool", default=True),
    )


def main() -> None:
    module = EcsModule(argument_spec(), supports_check_mode=True,
                       mutually_exclusive=[("public_key", "public_key_path"), ("name", "names")],
                       required_one_of=[("name", "names")])
    module.run_job(KeypairOptions, keypair_task)


if __name__ == "__main__":
    main()

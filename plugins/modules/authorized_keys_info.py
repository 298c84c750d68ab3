#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: authorized_keys_info
short_description: Show the SSH public keys in a user's authorized_keys file
version_added: 0.1.0
description:
  - Reads one user's C(authorized_keys) file and reports every key with its type, size,
    comment, options and MD5 and SHA256 fingerprints (as C(ssh-keygen -l) prints them), and
    flags weak keys (DSA, RSA under 2048 bits).
  - Lines that cannot be read as keys are reported with their line numbers; their text is
    withheld when it may hold private key material, and so is such material in comments and
    options. Control characters and bytes that are not UTF-8 are escaped (C(\\x1b)).
  - Refuses what the write would refuse - symbolic links (unless O(follow=true)), files that are
    not regular, files with more than one hard link, files owned by anyone but the user or root
    - and reports modes that make sshd ignore the file in RV(problems).
  - Changes nothing and takes no lock. A missing file is reported as RV(exists=false), not as
    an error.
author:
  - sshkeys.ecs maintainers (@sshkeys)
options:
  user:
    description:
      - The user whose file is read. It must exist on the host.
    type: str
    required: true
  path:
    description:
      - The keys file. Defaults to C(~user/.ssh/authorized_keys); C(~/) is the home of O(user) on
        the managed host, whoever runs the module.
    type: str
  follow:
    description:
      - Follow a symbolic link in the last component of the file or its directory. When
        V(false) such a link is an error.
    type: bool
    default: false
extends_documentation_fragment: []
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
  platform:
    support: full
    platforms: posix
    description: Runs on the managed host (POSIX), Python standard library only.
seealso:
  - module: sshkeys.ecs.authorized_keys
"""

EXAMPLES = r"""
- name: What keys can log in as root?
  sshkeys.ecs.authorized_keys_info:
    user: root
  register: root_keys

- name: Fail on weak keys
  ansible.builtin.assert:
    that: root_keys.weak_keys | length == 0
    fail_msg: "weak keys: {{ root_keys.weak_keys }}"
"""

RETURN = r"""
path:
  description: The file read.
  returned: always
  type: str
user:
  description: The user.
  returned: always
  type: str
exists:
  description: Whether the file exists.
  returned: always
  type: bool
owner_uid:
  description: The file's owner, when it exists.
  returned: always
  type: int
mode:
  description: The file's permission bits in octal, when it exists.
  returned: always
  type: str
  sample: "0600"
public_keys:
  description: Every key line, in file order.
  returned: always
  type: list
  elements: dict
  contains:
    line:
      description: Line number in the file (1-based).
      type: int
    type:
      description: Key type, for example V(ssh-ed25519).
      type: str
    bits:
      description: Key size in bits.
      type: int
    family:
      description: RSA, DSA, ECDSA, ED25519, ECDSA-SK or ED25519-SK.
      type: str
    curve:
      description: The curve of an ECDSA key.
      type: str
    comment:
      description: The comment after the key (empty when none).
      type: str
    options:
      description: The options, one item per option, quotes kept.
      type: list
      elements: str
    options_text:
      description: The options field as written.
      type: str
    cert_authority:
      description: Whether the line trusts a certificate authority (C(cert-authority)).
      type: bool
    is_certificate:
      description: Whether the key is an OpenSSH certificate.
      type: bool
    identity:
      description: C(type base64) of the key, the form keys are compared by.
      type: str
    fingerprint_md5:
      description: MD5 fingerprint, C(MD5:xx:xx:...).
      type: str
    fingerprint_sha256:
      description: SHA256 fingerprint, C(SHA256:...).
      type: str
    valid:
      description: Whether the key data is a valid public key.
      type: bool
    weak:
      description: Whether the key is weak (DSA, RSA under 2048 bits, or invalid).
      type: bool
    weak_reasons:
      description: Why it is weak.
      type: list
      elements: str
problems:
  description: Why sshd (StrictModes) would ignore the file - the file or its directory can be written by group or others.
  returned: always
  type: list
  elements: str
weak_keys:
  description: SHA256 fingerprints of the weak keys.
  returned: always
  type: list
  elements: str
invalid_lines:
  description: Lines that are neither keys, comments nor blank.
  returned: always
  type: list
  elements: dict
  contains:
    line:
      description: Line number.
      type: int
    problem:
      description: Why the line is not a key.
      type: str
    looks_private:
      description: Whether the line may hold private key material (armour, or a long base64 run).
      type: bool
    text:
      description: The line, or V(null) when it looks like private key material.
      type: str
"""

from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_info import inspect
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_target import resolve_target
from ansible_collections.sshkeys.ecs.plugins.module_utils._masking import MaskingAnsibleModule


def main() -> None:
    module = MaskingAnsibleModule(
        argument_spec=dict(
            user=dict(type="str", required=True),
            path=dict(type="str"),
            follow=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    module.fail_on_withheld_keys()
    try:
        target = resolve_target(module.params["user"], module.params["path"])
        result = inspect(target, follow=module.params["follow"])
    except SshKeysError as exc:
        module.fail_json(msg=str(exc), reason=exc.reason)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: ssh_fingerprint
short_description: Fingerprint of an OpenSSH public key, as ssh-keygen prints it
version_added: 0.1.0
author: contributors to the sshkeys.ecs collection
description:
  - Computes the fingerprint of an OpenSSH public key line (C(type base64 [comment])), exactly as
    C(ssh-keygen -l -E md5) or C(ssh-keygen -l -E sha256) prints it.
  - For an OpenSSH certificate the fingerprint is that of the certified key, as C(ssh-keygen -l) shows it.
  - The key is validated first (type, base64, the structure of the key blob); a private key is
    refused without repeating any of it.
  - Runs on the controller with the Python standard library only.
positional: _input, algorithm
options:
  _input:
    description: One OpenSSH public key line, without C(authorized_keys) options.
    type: string
    required: true
  algorithm:
    description:
      - Hash algorithm. C(md5) gives C(MD5:aa:bb:...), the others C(SHA256:base64) without padding.
    type: string
    default: sha256
    choices: [md5, sha1, sha256, sha384, sha512]
seealso:
  - plugin: sshkeys.ecs.ssh_public_key
    plugin_type: filter
"""

EXAMPLES = r"""
- name: SHA256 fingerprint of a public key
  ansible.builtin.debug:
    msg: "{{ lookup('ansible.builtin.file', 'id_ed25519.pub') | sshkeys.ecs.ssh_fingerprint }}"
  # => "SHA256:cD6dJqKOeVMNWzwMhzlussB+6h+CC1n5OHtBLviygCM"

- name: MD5 fingerprint, the form the ECS API documents for key pairs
  ansible.builtin.set_fact:
    key_md5: "{{ my_public_key | sshkeys.ecs.ssh_fingerprint('md5') }}"
  # => "MD5:e9:dd:f9:44:22:69:12:25:db:70:93:4a:21:68:f8:2c"
"""

RETURN = r"""
_value:
  description: The fingerprint, for example C(SHA256:cD6dJqKOeVMNWzwMhzlussB+6h+CC1n5OHtBLviygCM) or C(MD5:e9:dd:f9:...).
  type: string
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import SSHKeyError, parse_public_key


def ssh_fingerprint(value, algorithm='sha256'):
    """Fingerprint of a public key line, as ssh-keygen -l -E <algorithm> prints it."""
    if not isinstance(value, (str, bytes)):
        raise AnsibleFilterError(f'ssh_fingerprint expects a public key string, not {type(value).__name__}')
    try:
        return parse_public_key(value).fingerprint(algorithm)
    except SSHKeyError as exc:
        raise AnsibleFilterError(f'ssh_fingerprint: {exc}') from None


class FilterModule:
    """The sshkeys.ecs.ssh_fingerprint filter."""

    def filters(self):
        return {'ssh_fingerprint': ssh_fingerprint}

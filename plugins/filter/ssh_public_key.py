# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: ssh_public_key
short_description: OpenSSH public key line of a private key, as ssh-keygen -y prints it
version_added: 0.1.0
author: contributors to the sshkeys.ecs collection
description:
  - Derives the public key of a private key and returns it as one OpenSSH public key line
    (C(type base64 [comment])), like C(ssh-keygen -y) or C(puttygen -O public-openssh).
  - Reads OpenSSH-format private keys, PEM (PKCS#1 RSA, DSA, EC), PKCS#8 (plain or encrypted),
    and PuTTY C(.ppk) files of version 2 and 3, plain or encrypted.
  - The comment is the one stored in OpenSSH-format and PuTTY files; PEM and PKCS#8 files hold none.
  - A wrong or missing passphrase fails with a clear message. Nothing of the private key or the
    passphrase appears in any message.
requirements:
  - cryptography (on the controller) for PEM, PKCS#8 and encrypted keys; OpenSSH-format and
    unencrypted PuTTY files need only the Python standard library.
  - bcrypt (on the controller) for encrypted OpenSSH-format private keys, as C(cryptography) itself needs it.
positional: _input
options:
  _input:
    description: The private key text (PEM, OpenSSH or PuTTY .ppk).
    type: string
    required: true
  passphrase:
    description:
      - Passphrase of an encrypted private key.
      - V(omit) (for example C(item.passphrase | default(omit))) is the same as not giving one.
    type: string
  comment:
    description:
      - Comment for the returned line, replacing the one stored in the file.
      - An empty string leaves the comment out; V(omit) keeps the file's comment.
    type: string
seealso:
  - plugin: sshkeys.ecs.ssh_fingerprint
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Public key of a private key file on the controller
  ansible.builtin.set_fact:
    deploy_public_key: "{{ lookup('ansible.builtin.file', 'deploy_key') | sshkeys.ecs.ssh_public_key }}"
  # => "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICMJGwRoLQfXqYK6eTQ0UnqMCkJ6rO8yKbDPLdz8ibbB deploy@example"

- name: Encrypted key (for example a PuTTY .ppk), with a comment of our choosing
  ansible.builtin.set_fact:
    ops_public_key: "{{ ops_private_key | sshkeys.ecs.ssh_public_key(passphrase=ops_passphrase, comment='ops') }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: The OpenSSH public key line, C(type base64) followed by the comment when there is one.
  type: string
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import SSHKeyError
from ansible_collections.sshkeys.ecs.plugins.module_utils._private_keys import public_key_from_private

# Vaulted values arrive as these types; str() gives the decrypted text.
_VAULT_TYPES = ('AnsibleVaultEncryptedUnicode', 'EncryptedString')


def _omitted(value):
    """Whether value is Ansible's omit: `default(omit)` passes it into a filter as an object of its
    own (ansible-core 2.19 and later) or, before, as a placeholder string."""
    if type(value).__name__ == '_OmitType':
        return True
    return isinstance(value, str) and value.startswith('__omit_place_holder__')


def _plain(value, what):
    if value is None or isinstance(value, (str, bytes)):
        return value
    if type(value).__name__ in _VAULT_TYPES:
        return str(value)
    raise AnsibleFilterError(f'ssh_public_key expects {what} as a string, not {type(value).__name__}')


def ssh_public_key(value, passphrase=None, comment=None):
    """OpenSSH public key line of a private key."""
    data = _plain(value, 'the private key')
    # An omitted option is one not given, as with every other Ansible filter and module.
    secret = None if _omitted(passphrase) else _plain(passphrase, 'the passphrase')
    comment = None if _omitted(comment) else comment
    if comment is not None and not isinstance(comment, str):
        raise AnsibleFilterError('ssh_public_key expects the comment as a string')
    try:
        return public_key_from_private(data, secret).line(comment)
    except SSHKeyError as exc:
        raise AnsibleFilterError(f'ssh_public_key: {exc}') from None


class FilterModule:
    """The sshkeys.ecs.ssh_public_key filter."""

    def filters(self):
        return {'ssh_public_key': ssh_public_key}

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: authorized_keys
short_description: Manage many SSH public keys of one user in one task
version_added: 0.1.0
description:
  - Adds, removes and replaces public keys in one user's C(authorized_keys) file, many keys per
    task, and writes the file at most once.
  - Keys are identified by key type and key data; comments and options do not change identity.
  - Lines the task does not name (other keys, comments, blank lines, lines sshd would not
    understand) are kept byte for byte, unless O(exclusive=true).
  - The file is written safely - temporary file in the same directory, fsync, rename - while an
    advisory lock on C(.authorized_keys.lock) next to it is held, so concurrent runs cannot lose
    each other's keys. Owner, mode and SELinux context of an existing file are kept; a new file
    is owned by the user with mode C(0600).
  - Symbolic links are refused unless O(follow=true). A file or directory owned by anyone but
    the user or root is refused, and so are a keys file or lock file with more than one hard link
    and anything that is not a regular file (a FIFO, a device); nothing is ever changed
    through them, and no file the module did not create changes owner.
  - A keys file or directory that group or others may write to is repaired (the write bits of
    group and others are removed) and reported in RV(fixed_modes), because sshd (StrictModes) ignores
    such a file, and anyone able to write there could add a key. A directory above it, up to the
    user's home, that others may write to fails the task before anything changes.
author:
  - sshkeys.ecs maintainers (@sshkeys)
options:
  user:
    description:
      - The user whose keys are managed. It must exist on the host.
    type: str
    required: true
  path:
    description:
      - The keys file. Defaults to C(~user/.ssh/authorized_keys).
      - A path starting with C(~/) (or C(~user/) for this user) is relative to the home directory
        of O(user) on the managed host, whoever runs the module. Other C(~name) forms, relative
        paths, paths ending in C(/) and paths with a NUL character are refused.
    type: str
  keys:
    description:
      - The keys. Each item is either a string or a dictionary.
      - A string holds one or more key lines C([options] type base64 [comment]), one per line;
        blank lines and lines starting with C(#) are ignored. Every key in a string is wanted
        present.
      - A dictionary describes one key with the fields below.
      - Options given (in the dictionary, or in front of the key in the key line) are enforced;
        not given, the line keeps the options the file has. The same holds for O(keys[].comment);
        the comment inside the key line is only used when a line is added, so a key copied with a
        different comment does not rewrite an existing line.
      - "The same key may be listed more than once with different options: each variant is its
        own line, kept apart. The file's lines of a key are matched to the listed variants:
        equal options first, then variants that leave options alone, and a variant without an
        equal line takes over (rewrites) a remaining line of that key, else it is added at the
        end. With O(exclusive=true) the lines of a key that no variant took are removed."
      - Private key material is refused with an error that never shows it.
      - A string that holds no key (empty, blank or only comments, which is what an empty template
        or C(lookup) of an empty file renders) is an error, never a request to keep nothing.
      - Control characters (NUL, escape sequences) in key lines, options and comments are refused.
    type: list
    elements: raw
    required: true
    suboptions:
      key:
        description:
          - The public key, C([options] type base64 [comment]).
        type: str
        required: true
      options:
        description:
          - The options field, for example C(from="10.0.0.0/8",no-pty). An empty string means
            no options. Option names are checked against those sshd knows.
        type: str
      comment:
        description:
          - The comment written after the key, enforced on the existing line. An empty string
            removes the comment. Not given, new lines get the key line's own comment.
        type: str
      state:
        description:
          - Whether the key is wanted (V(present)) or every line of it is removed (V(absent)).
        type: str
        choices: [present, absent]
        default: present
      replaces:
        description:
          - An old public key that this key replaces. Every line of the old key is replaced in
            place by the new key, keeping that line's options (unless O(keys[].options) is
            given) and taking O(keys[].comment), else the new key line's comment, else the old
            line's comment.
          - When the old key is not in the file but the new one is, nothing happens (the
            replacement was done before). When neither is there the task fails, unless
            O(replace_missing=add).
        type: str
  exclusive:
    description:
      - Remove every key line not listed in O(keys), in the same task, and lines that cannot be
        read as keys (sshd might still read them). Comments and blank lines stay.
      - With O(exclusive=true), a task that names no key to keep (an empty O(keys) list, or only
        O(keys[].state=absent) entries) removes every key only when O(allow_empty=true); without
        it the task fails before anything changes.
    type: bool
    default: false
  allow_empty:
    description:
      - Let O(exclusive=true) with no key to keep empty the file of every key.
    type: bool
    default: false
  replace_missing:
    description:
      - What to do when an entry with O(keys[].replaces) finds neither the old nor the new key.
      - V(fail) fails the task before anything is changed; V(add) adds the new key at the end.
    type: str
    choices: [fail, add]
    default: fail
  manage_dir:
    description:
      - Create the directory of the file when it is missing, with mode C(0700) and owned by the
        user. When V(false) a missing directory is an error.
    type: bool
    default: true
  follow:
    description:
      - Follow symbolic links in the last component of the directory and of the file. When
        V(false) (the default) such a link is an error, because writing through it could change
        a file the user should not control.
    type: bool
    default: false
  backup:
    description:
      - Keep a copy of the previous file next to it, named C(authorized_keys.<pid>.<timestamp>~),
        when the file changes.
    type: bool
    default: false
extends_documentation_fragment: []
attributes:
  check_mode:
    support: full
    description: The new content is computed in check mode; only the write is skipped.
  diff_mode:
    support: full
    description: >-
      Before and after text of the file; lines that may hold private key material (armour, or a
      long base64 run in a comment, an option or an unreadable line) are withheld, control
      characters and bytes that are not UTF-8 are escaped.
  platform:
    support: full
    platforms: posix
    description: Runs on the managed host (POSIX), Python standard library only.
notes:
  - Runs on the managed host with the Python standard library only.
  - The lock file C(.authorized_keys.lock) is created on the first write and left in place.
seealso:
  - module: sshkeys.ecs.authorized_keys_info
  - module: ansible.posix.authorized_key
"""

EXAMPLES = r"""
- name: Add two keys for deploy, leave everything else alone
  sshkeys.ecs.authorized_keys:
    user: deploy
    keys:
      - "{{ lookup('ansible.builtin.file', 'keys/alice.pub') }}"
      - key: "{{ lookup('ansible.builtin.file', 'keys/ci.pub') }}"
        options: 'from="10.0.0.0/8",no-pty'
        comment: ci

- name: Replace an old key by a new one in place, keeping its options
  sshkeys.ecs.authorized_keys:
    user: root
    keys:
      - key: "{{ new_key }}"
        replaces: "{{ old_key }}"
    backup: true

- name: Only these keys may log in as ecs-user
  sshkeys.ecs.authorized_keys:
    user: ecs-user
    exclusive: true
    keys: "{{ ecs_user_keys }}"

- name: Remove a key
  sshkeys.ecs.authorized_keys:
    user: deploy
    keys:
      - key: "{{ lookup('ansible.builtin.file', 'keys/former-colleague.pub') }}"
        state: absent
"""

RETURN = r"""
path:
  description: The keys file.
  returned: always
  type: str
  sample: /home/deploy/.ssh/authorized_keys
user:
  description: The user.
  returned: always
  type: str
added:
  description: SHA256 fingerprints of the key lines added (including the new keys of replacements).
  returned: always
  type: list
  elements: str
  sample: ["SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"]
removed:
  description: SHA256 fingerprints of the key lines removed (including the old keys of replacements).
  returned: always
  type: list
  elements: str
changed_keys:
  description: SHA256 fingerprints of key lines whose options or comment were rewritten.
  returned: always
  type: list
  elements: str
replaced:
  description: Replacements done, old and new fingerprint.
  returned: always
  type: list
  elements: dict
  sample: [{"old": "SHA256:...", "new": "SHA256:..."}]
removed_invalid_lines:
  description: Line numbers (in the old file) of unreadable lines removed by O(exclusive=true).
  returned: always
  type: list
  elements: int
fixed_modes:
  description: Modes repaired because group or others could write to the file or its directory.
  returned: always
  type: list
  elements: str
  sample: ["/home/deploy/.ssh/authorized_keys: mode 0666 -> 0644"]
backup_file:
  description: The backup made before the change, when O(backup=true) and the file changed.
  returned: when a backup was made
  type: str
  sample: /root/.ssh/authorized_keys.3114.2026-01-02@10:11:12~
"""

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys_apply import (
    apply,
    check_exclusive,
    normalise_keys,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_target import resolve_target, selinux_hook
from ansible_collections.sshkeys.ecs.plugins.module_utils._masking import MaskingAnsibleModule


def main() -> None:
    module = MaskingAnsibleModule(
        argument_spec=dict(
            user=dict(type="str", required=True),
            path=dict(type="str"),
            keys=dict(type="list", elements="raw", required=True, no_log=False),
            exclusive=dict(type="bool", default=False),
            allow_empty=dict(type="bool", default=False),
            replace_missing=dict(type="str", choices=["fail", "add"], default="fail"),
            manage_dir=dict(type="bool", default=True),
            follow=dict(type="bool", default=False),
            backup=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    module.fail_on_withheld_keys()
    params = module.params
    try:
        entries = normalise_keys(params["keys"])
        check_exclusive(entries, params["exclusive"], params["allow_empty"])
        target = resolve_target(params["user"], params["path"])
        result = apply(target, entries, exclusive=params["exclusive"], manage_dir=params["manage_dir"],
                       follow=params["follow"], backup=params["backup"],
                       replace_missing=params["replace_missing"], check_mode=module.check_mode,
                       context_hook=selinux_hook(module), diff=module._diff)
    except SshKeysError as exc:
        module.fail_json(msg=str(exc), reason=exc.reason)
    if result["backup_file"] is None:
        result.pop("backup_file")
    module.exit_json(**result)


if __name__ == "__main__":
    main()

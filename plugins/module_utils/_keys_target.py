# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: whose keys file a host module works on.

The user (checked as a user name, looked up on the host) and the path of the file: ``~`` is the
home of that user, whoever runs the module, and what cannot be resolved safely is refused. Also
the few helpers every host module shares (fingerprints for results, the SELinux hook). Standard
library only: this runs on managed hosts.
"""

from __future__ import annotations

import os
import pwd
import re
from dataclasses import dataclass
from typing import Any, Optional

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import AuthorizedKeysError, KeyLine
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import quote_input
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file_checks import ContextHook

# A user name as useradd and sshd take it: no slash, colon, whitespace or control character.
_USER_NAME = re.compile(r"[^/:\s\x00-\x1f\x7f]{1,256}")


@dataclass
class Target:
    user: str
    uid: int
    gid: int
    home: str
    path: str


def _check_user(user: Any) -> str:
    if not isinstance(user, str) or not user:
        raise AuthorizedKeysError("user is required", reason="user")
    if not _USER_NAME.fullmatch(user):
        raise AuthorizedKeysError(f"user {quote_input(user)} is not a user name (it holds a slash, colon, "
                                  "whitespace or a control character)", reason="user")
    return user


def _expand_home(path: str, user: str, home: str) -> str:
    """``~`` and ``~/...`` (and ``~user/...`` for the managed user) against the managed user's
    home: the module takes the raw string, because Ansible's own expansion would use the home
    of whoever runs the module (root, under become)."""
    head, sep, rest = path.partition("/")
    if head not in ("~", f"~{user}"):
        raise AuthorizedKeysError(f"path {quote_input(path)} names another user's home; only ~ (the home of "
                                  f"{user}) is resolved here: give an absolute path", reason="path")
    if not os.path.isabs(home):
        raise AuthorizedKeysError(f"user {user} has no absolute home directory ({quote_input(home)}), so ~ "
                                  "cannot be resolved: give an absolute path", reason="path")
    return os.path.join(home, rest) if sep else home


def _check_path(path: Any) -> str:
    if not isinstance(path, str) or not path.strip():
        raise AuthorizedKeysError("path is empty", reason="path")
    if "\x00" in path:
        raise AuthorizedKeysError("path holds a NUL character", reason="path")
    if path != path.strip():
        raise AuthorizedKeysError(f"path {quote_input(path)} starts or ends with whitespace", reason="path")
    if path.endswith("/") or os.path.basename(os.path.normpath(path)) in ("", ".", ".."):
        raise AuthorizedKeysError(f"path {quote_input(path)} names a directory; give the path of the keys file",
                                  reason="path")
    return path


def resolve_target(user: Any, path: Optional[str]) -> Target:
    """The user's ids and the keys file path (default ``~user/.ssh/authorized_keys``)."""
    user = _check_user(user)
    if path is not None:
        path = _check_path(path)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise AuthorizedKeysError(f"user {user!r} does not exist on this host", reason="user") from None
    home = entry.pw_dir
    if path is None:
        path = _expand_home("~/.ssh/authorized_keys", user, home)
    elif path.startswith("~"):
        path = _expand_home(path, user, home)
    if not os.path.isabs(path):
        raise AuthorizedKeysError("path must be absolute (or start with ~/ for the user's home)", reason="path")
    if os.path.normpath(path) == os.path.normpath(home):
        raise AuthorizedKeysError(f"path {quote_input(path)} names the home directory; give the path of the keys "
                                  "file", reason="path")
    return Target(user=user, uid=entry.pw_uid, gid=entry.pw_gid, home=home, path=os.path.normpath(path))


def fingerprint(line: KeyLine) -> str:
    key = line.public_key()
    return key.fingerprint("sha256") if key is not None else "unknown"


def selinux_hook(module: Any) -> Optional[ContextHook]:
    """A context hook built from AnsibleModule's SELinux helpers, or None where SELinux is off."""
    try:
        enabled = module.selinux_enabled()
    except Exception:  # pylint: disable=broad-except  # no selinux bindings: nothing to keep
        return None
    if not enabled:
        return None

    def hook(temp: str, final: str, existed: bool) -> None:
        context = module.selinux_context(final) if existed else module.selinux_default_context(final)
        module.set_context_if_different(temp, context, False)

    return hook

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the keys of ecs_keypair that are given or made here.

The public key to import (from ``public_key`` or ``public_key_path``, checked locally before any
call), the public half of a private key the cloud returned, and a key made on the controller
(``generate=local``). Every problem is a ``KeypairError`` whose message holds no key material.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_validate import KeypairError, check_key_type
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import looks_like_private_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import PublicKey, SSHKeyError, parse_public_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._private_keys import (
    check_key_size,
    generate_private_key,
    public_key_from_private,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._regular_file import UnsafeFileError, read_regular

MAX_PUBLIC_KEY_FILE = 64 * 1024


def read_public_key_file(path: str) -> bytes:
    """public_key_path's bytes; a FIFO, socket, device or directory is refused without blocking."""
    what = f"public_key_path {path}"
    try:
        return read_regular(path, what, limit=MAX_PUBLIC_KEY_FILE)
    except UnsafeFileError as exc:
        if exc.reason == "missing":
            raise KeypairError(f"cannot read {what}: it does not exist") from None
        if exc.reason == "size":
            raise KeypairError(f"{what} is larger than 64 KiB; it is not a public key") from None
        raise KeypairError(str(exc)) from None


def load_public_key(text: Optional[str], path: Optional[str]) -> Optional[PublicKey]:
    """The public key to import from public_key or public_key_path, validated locally."""
    if path is not None:
        source = f"public_key_path {path}"
        data: Any = read_public_key_file(path)
    elif text is not None:
        source, data = "public_key", text
    else:
        return None
    if looks_like_private_key(data):
        raise KeypairError(f"{source} holds a private key; give the public key (for example the .pub file)")
    try:
        key = parse_public_key(data)
    except SSHKeyError as exc:
        raise KeypairError(f"{source} is not a valid public key: {exc}") from None
    check_key_type(key.key_type)
    return key


def public_key_of_private_text(data: str) -> Optional[PublicKey]:
    """The public half of a private key the cloud returned; None when it cannot be read here."""
    try:
        return public_key_from_private(data)
    except (ImportError, SSHKeyError):
        return None


def generate_key(key_type: str, key_size: Optional[int], passphrase: Optional[str],
                 comment: str) -> Tuple[bytes, PublicKey]:
    """(OpenSSH private key file bytes, public key) of a new key made here."""
    try:
        private, public = generate_private_key(key_type, key_size, passphrase, comment)
    except SSHKeyError as exc:
        raise KeypairError(str(exc)) from None
    return private.encode("ascii"), public


def check_generation(key_type: str, key_size: Optional[int]) -> None:
    """Refuses, before anything is done, a key type and size generate=local cannot make."""
    try:
        check_key_size(key_type, key_size)
    except SSHKeyError as exc:
        raise KeypairError(str(exc)) from None

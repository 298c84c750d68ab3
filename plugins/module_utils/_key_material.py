# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: finding private key material, so that it is never shown.

``looks_like_private_key`` decides whether text holds a private key (armoured, PuTTY, or the bare
base64 of its DER or OpenSSH encoding): such input is refused where a public key belongs.
``secret_values`` lists what a module adds to ``no_log_values``; ``may_hold_key_material`` and
``redact_key_material`` decide what output withholds; ``quote_input`` quotes a user's value in an
error only when it cannot be a piece of a key. Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import base64
import binascii
import re

# Markers of private key material. Searched anywhere in the text, case-insensitively, so that a
# private key pasted into a public key field (with or without its armour) is refused.
_PRIVATE_MARKERS = re.compile(
    r'-----\s*BEGIN\s[A-Z0-9 ]*PRIVATE\s+KEY\s*-----'      # PEM: RSA/DSA/EC/OPENSSH/ENCRYPTED/PKCS#8
    r'|----\s*BEGIN\s+SSH2\s+ENCRYPTED\s+PRIVATE\s+KEY'      # ssh.com / SECSH private key
    r'|PuTTY-User-Key-File-\d'                               # PuTTY .ppk
    r'|b3BlbnNzaC1rZXktdjE'                                  # base64 of 'openssh-key-v1', unarmoured
    r'|^\s*-----BEGIN\s',                                    # a PEM block of any kind is not a public key line
    re.IGNORECASE | re.MULTILINE,
)


def looks_like_private_key(text: str | bytes) -> bool:
    """True when the text holds private key material (PEM, OpenSSH, PKCS#8, PuTTY) anywhere,
    armoured or as the bare base64 of a private key's DER encoding."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode('latin-1')
    if not isinstance(text, str):
        return False
    if _PRIVATE_MARKERS.search(text) is not None:
        return True
    return any(_der_private_start(match.group(0)) for match in _RUN_START.finditer(text))


# A base64 run at a word boundary: where an unarmoured DER key would begin.
_RUN_START = re.compile(r'(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{20,}')


def _der_private_start(run: str) -> bool:
    """Whether a base64 run begins like the DER of a private key: a SEQUENCE whose first element
    is a one-byte INTEGER version 0 or 1 (PKCS#1 RSA and DSA, PKCS#8, SEC 1 EC keys). Public keys,
    certificates and SSH blobs begin otherwise."""
    try:
        head = base64.b64decode(run[:16])
    except (binascii.Error, ValueError):
        return False
    if len(head) < 5 or head[0] != 0x30:
        return False
    start = 2 + (head[1] & 0x7F if head[1] & 0x80 else 0)
    return head[start:start + 3] in (b'\x02\x01\x00', b'\x02\x01\x01')


def secret_values(value: object) -> list:
    """Every string inside value (lists and dicts walked) that holds private key material, with
    its lines and its base64 body joined: what a module adds to ``no_log_values`` so that no echo
    of its arguments (the -vvv invocation, syslog, an error) can show any part of it."""
    found: list = []
    if isinstance(value, dict):
        for item in value.values():
            found.extend(secret_values(item))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found.extend(secret_values(item))
    elif isinstance(value, str) and looks_like_private_key(value):
        lines = [line.strip() for line in value.splitlines() if line.strip()]
        found.append(value)
        found.extend(line for line in lines if len(line) >= 8)
        body = [line for line in lines if not line.startswith('-') and ':' not in line]
        if len(body) > 1:
            found.append(''.join(body))
    return found


# A base64 run this long could be a piece of a private key (a PEM body line has 64 characters, an
# OpenSSH one 70, and the last line of a block is shorter); words, ids and host names are shorter
# or broken up by '-', '.' and '@'.
_BASE64_RUN = re.compile(r'[A-Za-z0-9+/]{20,}={0,2}')
WITHHELD = '(withheld: it may hold private key material)'
# The other lines of a private key's armour (END lines, PuTTY's headers): no key material in
# themselves, but they mark the block, and a line of it is never worth showing.
_ARMOUR_WORDS = re.compile(r'PRIVATE\s+KEY|Private-(?:Lines|MAC|Hash):|PuTTY-User-Key-File|Encryption:\s*aes')


def may_hold_key_material(text: str | bytes) -> bool:
    """True when text holds private key armour, or a base64 run long enough to be part of a key.

    Broader than ``looks_like_private_key``: the body lines of a private key block carry no
    marker, so text meant for output (a comment, an option value, a line of a file) that holds
    any long base64 run is treated as if it were one.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode('latin-1')
    if not isinstance(text, str):
        return False
    return (looks_like_private_key(text) or _BASE64_RUN.search(text) is not None
            or _ARMOUR_WORDS.search(text) is not None)


def redact_key_material(text: str) -> str:
    """text with private key armour lines and long base64 runs replaced, for output only."""
    if looks_like_private_key(text) or _ARMOUR_WORDS.search(text):
        return WITHHELD
    return _BASE64_RUN.sub('(withheld)', text)


def quote_input(value: object, limit: int = 64) -> str:
    """A value a user gave, fit to be quoted in an error message.

    Short text that cannot be key material is quoted (control characters escaped by ``repr``);
    anything else is described by its type and length, never shown: an error that quoted a
    piece of a pasted private key would slip past the masking of the whole value.
    """
    if isinstance(value, bytes):
        return f'({len(value)} bytes)'
    if not isinstance(value, str):
        return f'(a {type(value).__name__})'
    if may_hold_key_material(value):
        return f'(a {len(value)}-character value that may hold key material, not shown)'
    if len(value) > limit:
        return f'(a {len(value)}-character value, not shown)'
    return repr(value)

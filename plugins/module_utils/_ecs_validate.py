# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: checks of what users give for the cloud side (no API calls).

Key pair names and name patterns, tags, fingerprints, ids, regions, instance ids and the key
types ECS imports: every check runs before the first API call. The modules, the reconcile
filters and the credentials use these, so this file imports neither the client nor Ansible.

Every pattern is matched against the whole value (``re.fullmatch``): with ``re.match`` and a
pattern ending in ``$``, a value with a final newline (what a YAML block scalar ``|`` gives)
passes the check, and the service then refuses it or, worse, a delete by that name finds nothing
and reports success. Values users give are quoted back only through ``quote_input``, which never
shows text that may hold key material.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping, Optional

from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import looks_like_private_key, quote_input

# Key pair names (the ImportKeyPair request model of alibabacloud_ecs20140526 7.11.8): 2 to 128
# characters, a letter first (Unicode letters count: Chinese names are taken); then letters,
# digits, '.', ':', '_', '-'; never starting with http:// or https://.
NAME_PUNCTUATION = ".:_-"
NAME_LENGTH = (2, 128)
# The API's fingerprint: MD5 hex digits, with or without colons between the bytes.
FINGERPRINT_PATTERN = re.compile(r"[0-9A-Fa-f]{2}(?::?[0-9A-Fa-f]{2}){1,63}")
MAX_TAGS = 20
MAX_ID_LENGTH = 128
# Region ids: cn-hangzhou, ap-southeast-1, cn-shanghai-finance-1, ...
REGION_PATTERN = re.compile(r"[a-z]{2,}(?:-[a-z0-9]+)+")
# ECS instance ids: "i-" and lower-case letters and digits (20 on current instances, fewer on
# old ones). Anything else cannot name an instance.
INSTANCE_ID_PATTERN = re.compile(r"i-[0-9a-z]{2,62}")
# Public key types the ECS import accepts: the published list (the v00 certificates are left
# out because OpenSSH dropped them) plus ssh-ed25519 and its certificate, which the published
# list omits but which is what most people use today; a service that refuses it says so with its
# own error code.
ACCEPTED_KEY_TYPES = (
    "ssh-rsa", "ssh-dss",
    "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "ssh-rsa-cert-v01@openssh.com", "ssh-dss-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com",
)


class KeypairError(SshKeysError):
    """Bad input or a state we refuse to act on. The message never holds key material."""


# ---------------------------------------------------------------------------------------------
# Input checks: all run before the first API call.


def whitespace_problem(value: str) -> Optional[str]:
    """What is wrong with white space around value, in words that say how to fix it (None: nothing)."""
    if value.endswith("\n"):
        return "ends with a newline: a YAML block scalar (|) adds one; use |- or >-, or a quoted string"
    if value != value.rstrip():
        return "ends with white space"
    if value != value.lstrip():
        return "starts with white space"
    return None


def has_control(value: str) -> bool:
    return any(ord(char) < 32 or 127 <= ord(char) < 160 for char in value)


def validate_name(name: Any, option: str = "name") -> None:
    if not isinstance(name, str) or not name:
        raise KeypairError(f"{option} is required")
    problem = whitespace_problem(name)
    if problem:
        raise KeypairError(f"{option} {quote_input(name)} {problem}")
    if name.lower().startswith(("http://", "https://")):
        raise KeypairError(f"{option} must not start with http:// or https://")
    if not NAME_LENGTH[0] <= len(name) <= NAME_LENGTH[1]:
        raise KeypairError(f"{option} must be 2 to 128 characters long, not {len(name)}")
    if not name[0].isalpha():
        raise KeypairError(f"{option} {quote_input(name)} must start with a letter")
    if not all(name_character(char) for char in name):
        raise KeypairError(f"{option} {quote_input(name)} may hold only letters, digits, '.', ':', '_' and '-'")


def name_character(char: str, extra: str = "") -> bool:
    """A letter of any script, a decimal digit, or one of the name's punctuation (plus extra)."""
    return char.isalpha() or char.isdecimal() or char in NAME_PUNCTUATION + extra


def validate_pattern(pattern: Any) -> None:
    """A describe filter: the name rules, with '*' allowed anywhere as a wildcard."""
    if not isinstance(pattern, str) or "*" not in pattern:
        validate_name(pattern, "names")
        return
    problem = whitespace_problem(pattern)
    if problem:
        raise KeypairError(f"name pattern {quote_input(pattern)} {problem}")
    if not NAME_LENGTH[0] - 1 <= len(pattern) <= NAME_LENGTH[1] or not all(name_character(c, "*") for c in pattern):
        raise KeypairError(f"name pattern {quote_input(pattern)} may hold only letters, digits, '.', ':', '_', '-' "
                           "and '*'")


def validate_plain_id(value: Optional[str], option: str) -> Optional[str]:
    """An id the API documents no format for (resource group): one word, no spaces or controls."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise KeypairError(f"{option} must not be empty")
    if looks_like_private_key(value):
        raise KeypairError(f"{option} holds private key material; nothing was sent")
    problem = whitespace_problem(value)
    if problem or any(char.isspace() for char in value) or has_control(value):
        raise KeypairError(f"{option} {quote_input(value)} {problem or 'holds white space or a control character'}")
    if len(value) > MAX_ID_LENGTH:
        raise KeypairError(f"{option} is longer than {MAX_ID_LENGTH} characters")
    return value


def validate_fingerprint(value: Optional[str]) -> Optional[str]:
    """A KeyPairFingerPrint filter: MD5 hex digits, with or without colons."""
    if value is None:
        return None
    problem = whitespace_problem(value) if isinstance(value, str) else None
    if problem:
        raise KeypairError(f"fingerprint {quote_input(value)} {problem}")
    if not isinstance(value, str) or not FINGERPRINT_PATTERN.fullmatch(value):
        raise KeypairError(f"fingerprint {quote_input(value)} is not a fingerprint as the API reports it (hex "
                           "digits, with or without colons); the SHA256 fingerprint cannot be used as a filter")
    return value


def _has_url(text: str) -> bool:
    # The service refuses these in any letter case.
    low = text.lower()
    return "http://" in low or "https://" in low


def validate_tags(tags: Optional[Mapping[str, Any]]) -> Optional[Dict[str, str]]:
    if tags is None:
        return None
    if len(tags) > MAX_TAGS:
        raise KeypairError(f"at most {MAX_TAGS} tags are allowed, not {len(tags)}")
    clean = {}
    for key, value in tags.items():
        key = str(key)
        text = "" if value is None else str(value)
        if not key or len(key) > 128:
            raise KeypairError(f"tag key {quote_input(key[:40])} must be 1 to 128 characters long")
        if key.lower().startswith(("aliyun", "acs:")):
            raise KeypairError(f"tag key {quote_input(key)} must not start with 'aliyun' or 'acs:'")
        # The CreateKeyPair request model (alibabacloud_ecs20140526 7.11.8) forbids it for values
        # too; the TagResources and ImportKeyPair models do not say so. Refused everywhere: a
        # value one action takes and another refuses would make the same tags fail half way.
        if text.lower().startswith("acs:"):
            raise KeypairError(f"tag value of {quote_input(key)} must not start with 'acs:'")
        for part, what in ((key, "key"), (text, "value")):
            if _has_url(part):
                raise KeypairError(f"tag {what} of {quote_input(key)} must not contain http:// or https:// "
                                   "(in any letter case)")
        if len(text) > 128:
            raise KeypairError(f"tag value of {quote_input(key)} is longer than 128 characters")
        clean[key] = text
    return clean


def check_key_type(key_type: str) -> None:
    """Refuses a public key type ECS does not import."""
    if key_type not in ACCEPTED_KEY_TYPES:
        raise KeypairError(f"key type {key_type} cannot be imported into ECS; accepted types: "
                           + ", ".join(ACCEPTED_KEY_TYPES))

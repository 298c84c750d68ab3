# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: key pair input checks and result shapes (no API calls).

Every pattern is matched against the whole value (``re.fullmatch``): with ``re.match`` and a
pattern ending in ``$``, a value with a final newline (what a YAML block scalar ``|`` gives)
passes the check, and the service then refuses it or, worse, a delete by that name finds nothing
and reports success. Values users give are quoted back only through ``quote_input``, which never
shows text that may hold key material.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import looks_like_private_key, quote_input
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import PublicKey, SSHKeyError, parse_public_key

# 2 to 128 characters, a letter first; letters, digits, '.', ':', '_', '-'. ASCII letters only
# for now (the service also takes other Unicode letters).
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9.:_-]{1,127}")
NAME_FILTER_PATTERN = re.compile(r"[A-Za-z0-9.:_*-]{1,128}")
# The API's fingerprint: MD5 hex digits, with or without colons between the bytes.
FINGERPRINT_PATTERN = re.compile(r"[0-9A-Fa-f]{2}(?::?[0-9A-Fa-f]{2}){1,63}")
MAX_TAGS = 20
MAX_ID_LENGTH = 128


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
    if not 2 <= len(name) <= 128:
        raise KeypairError(f"{option} must be 2 to 128 characters long, not {len(name)}")
    if not name[0].isascii() or not name[0].isalpha():
        raise KeypairError(f"{option} {quote_input(name)} must start with a letter")
    if not NAME_PATTERN.fullmatch(name):
        raise KeypairError(f"{option} {quote_input(name)} may hold only letters, digits, '.', ':', '_' and '-'")


def validate_pattern(pattern: Any) -> None:
    """A describe filter: the name rules, with '*' allowed anywhere as a wildcard."""
    if not isinstance(pattern, str) or "*" not in pattern:
        validate_name(pattern, "names")
        return
    problem = whitespace_problem(pattern)
    if problem:
        raise KeypairError(f"name pattern {quote_input(pattern)} {problem}")
    if not NAME_FILTER_PATTERN.fullmatch(pattern):
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
        for part, what in ((key, "key"), (text, "value")):
            if _has_url(part):
                raise KeypairError(f"tag {what} of {quote_input(key)} must not contain http:// or https:// "
                                   "(in any letter case)")
        if len(text) > 128:
            raise KeypairError(f"tag value of {quote_input(key)} is longer than 128 characters")
        clean[key] = text
    return clean


# ---------------------------------------------------------------------------------------------
# Reading key pairs back.


def api_tags(item: Mapping[str, Any]) -> Dict[str, str]:
    tags = item.get("Tags") or {}
    entries = tags.get("Tag") if isinstance(tags, dict) else tags
    out = {}
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("TagKey") is not None:
            out[str(entry["TagKey"])] = "" if entry.get("TagValue") is None else str(entry["TagValue"])
    return out


def api_public_key(item: Optional[Mapping[str, Any]]) -> Optional[PublicKey]:
    """The key pair's public key as the API returns it, or None when absent or unreadable."""
    if not item or not item.get("PublicKey"):
        return None
    try:
        return parse_public_key(str(item["PublicKey"]))
    except SSHKeyError:
        return None


def fingerprint_hex(value: Optional[str]) -> str:
    return re.sub(r"[^0-9a-f]", "", (value or "").lower().replace("md5:", ""))


def same_key(item: Mapping[str, Any], desired: PublicKey) -> Optional[bool]:
    """True/False by public key material; None when the API gave nothing to compare with.

    The API fingerprint is only a fallback, and only when it is a plain MD5 of the blob.
    """
    current = api_public_key(item)
    if current is not None:
        return current.identity() == desired.identity()
    api_print = fingerprint_hex(item.get("KeyPairFingerPrint"))
    if len(api_print) == 32:
        return api_print == fingerprint_hex(desired.fingerprint("md5"))
    return None


def describe_result(item: Optional[Mapping[str, Any]], *, name: str, public_key: Optional[PublicKey] = None,
                    key_pair_id: Optional[str] = None, private_key_path: Optional[str] = None,
                    instances: Optional[List[Dict[str, Any]]] = None,
                    fallback_tags: Optional[Mapping[str, str]] = None,
                    fallback_group: Optional[str] = None) -> Dict[str, Any]:
    """The documented key_pair result; fingerprints are computed here from the public key."""
    item = item or {}
    key = api_public_key(item) or public_key
    result: Dict[str, Any] = {
        "name": item.get("KeyPairName", name),
        "id": item.get("KeyPairId") or key_pair_id,
        "fingerprint": item.get("KeyPairFingerPrint"),
        "fingerprint_md5": key.fingerprint("md5") if key else None,
        "fingerprint_sha256": key.fingerprint("sha256") if key else None,
        "public_key": key.identity() if key else None,
        "key_type": key.key_type if key else None,
        "creation_time": item.get("CreationTime"),
        "tags": api_tags(item) if item else dict(fallback_tags or {}),
        "resource_group_id": item.get("ResourceGroupId") or fallback_group,
    }
    if private_key_path is not None:
        result["private_key_path"] = private_key_path
    if instances is not None:
        result["instances"] = instances
    return result


def instance_summary(item: Mapping[str, Any]) -> Dict[str, Any]:
    ips = (item.get("PublicIpAddress") or {}).get("IpAddress") if isinstance(item.get("PublicIpAddress"), dict) else []
    return {"instance_id": item.get("InstanceId"), "instance_name": item.get("InstanceName"),
            "status": item.get("Status"), "os_type": item.get("OSType"), "public_ip_addresses": list(ips or [])}


def diff_view(item: Optional[Mapping[str, Any]], public_key: Optional[PublicKey] = None,
              tags: Optional[Mapping[str, str]] = None, group: Optional[str] = None) -> Dict[str, Any]:
    """What diff mode shows: the public key and metadata, never private material."""
    if item is None and public_key is None and tags is None:
        return {"state": "absent"}
    key = api_public_key(item) or public_key
    return {
        "state": "present",
        "public_key": key.identity() if key else None,
        "fingerprint_sha256": key.fingerprint("sha256") if key else None,
        "tags": dict(tags) if tags is not None else api_tags(item or {}),
        "resource_group_id": group if group is not None else (item or {}).get("ResourceGroupId"),
    }


def tag_changes(current: Mapping[str, str], desired: Optional[Mapping[str, str]],
                purge: bool) -> Tuple[Dict[str, str], List[str]]:
    """(tags to set, tag keys to remove)."""
    if desired is None:
        return {}, []
    to_set = {k: v for k, v in desired.items() if current.get(k) != v}
    to_remove = sorted(k for k in current if k not in desired) if purge else []
    return to_set, to_remove


def instance_ids(instances: List[Mapping[str, Any]]) -> List[str]:
    return [str(i.get("InstanceId")) for i in instances]

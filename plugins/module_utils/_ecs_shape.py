# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: what the API returns, read into results and diffs (no API calls).

Key pairs as the documented ``key_pair`` result and as diff mode shows them, tags, the public key
the API returns and whether it is the one wanted, instance summaries and their addresses (also
read by the inventory). Plain functions of API items: no client, no Ansible.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import PublicKey, SSHKeyError, parse_public_key


class ShapeError(SshKeysError):
    """A field of an API item does not have the shape the API documents; the message says how,
    as the end of a sentence about the field ("is not an object")."""

    reason = "api"


def address_list(node: Any) -> List[str]:
    """{'IpAddress': ['1.2.3.4']} -> ['1.2.3.4']; missing or empty means none, a lone string is
    one address (EipAddress.IpAddress is one string, the others are lists)."""
    if node in (None, "", {}):
        return []
    if not isinstance(node, Mapping):
        raise ShapeError(" that is not an object")
    values = node.get("IpAddress")
    if values in (None, ""):
        return []
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ShapeError(".IpAddress that is not a list of strings")
    return [v for v in values if v]


def public_ip_addresses(item: Mapping[str, Any]) -> List[str]:
    """An instance's public addresses (PublicIpAddress); none when the field is malformed, since
    a module's result must not fail over an address it only reports."""
    try:
        return address_list(item.get("PublicIpAddress"))
    except ShapeError:
        return []


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
        # Only CreateKeyPair answers an id; DescribeKeyPairs and ImportKeyPair report none.
        "id": key_pair_id,
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
    """An instance as the key pair results list it."""
    return {"instance_id": item.get("InstanceId"), "instance_name": item.get("InstanceName"),
            "status": item.get("Status"), "os_type": item.get("OSType"),
            "public_ip_addresses": public_ip_addresses(item)}


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

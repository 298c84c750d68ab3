# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: reading key pairs and their instances, in the fewest calls.

ecs_keypair_info lists key pairs here; the delete of many key pairs finds what exists here too.
For a few names each is looked up on its own; for more, one paged listing of the region is
cheaper (50 key pairs, 100 instances a page).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_api import (
    describe_instances,
    describe_key_pairs,
    get_key_pair,
    instances_holding,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_shape import api_public_key, describe_result, instance_summary
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_validate import (
    FINGERPRINT_PATTERN,
    KeypairError,
    validate_fingerprint,
    validate_name,
    validate_pattern,
    validate_plain_id,
    validate_tags,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import quote_input

# Up to this many names, each is looked up on its own (one DescribeKeyPairs / DescribeInstances
# per name); beyond it one paged listing of the region is cheaper.
PER_NAME_LOOKUPS = 5
# The base64 of a SHA-256 digest, as ssh-keygen prints it (no padding).
SHA256_PATTERN = re.compile(r"[A-Za-z0-9+/]{43}")


def existing_key_pairs(client: Any, names: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """{name: item} for those of the names that exist."""
    if len(names) <= PER_NAME_LOOKUPS:
        items = (get_key_pair(client, name) for name in names)
        return {item["KeyPairName"]: item for item in items if item is not None}
    wanted = set(names)
    return {item["KeyPairName"]: item for item in describe_key_pairs(client)
            if isinstance(item, dict) and item.get("KeyPairName") in wanted}


def instances_by_key_pair(client: Any, names: Sequence[str]) -> Dict[str, List[Dict[str, Any]]]:
    """{name: instances holding it} for the names (absent when none holds it)."""
    if len(names) <= PER_NAME_LOOKUPS:
        holders = {name: instances_holding(client, name) for name in names}
        return {name: items for name, items in holders.items() if items}
    wanted = set(names)
    grouped: Dict[str, List[Dict[str, Any]]] = {}
    for instance in describe_instances(client):
        if isinstance(instance, dict) and instance.get("KeyPairName") in wanted:
            grouped.setdefault(instance["KeyPairName"], []).append(instance)
    return grouped


def list_key_pairs(client: Any, *, names: Sequence[str] = (), fingerprint: Optional[str] = None,
                   tags: Optional[Mapping[str, Any]] = None, resource_group_id: Optional[str] = None,
                   include_public_key: bool = True, include_instances: bool = False) -> List[Dict[str, Any]]:
    """Key pairs by exact names or '*' patterns, fingerprint, tags and resource group; all pages."""
    names = list(names or [])
    for name in names:
        validate_pattern(name)
    api_fingerprint, local_sha256 = split_fingerprint(fingerprint)
    filters = dict(fingerprint=api_fingerprint,
                   resource_group_id=validate_plain_id(resource_group_id, "resource_group_id"),
                   tags=validate_tags(tags), include_public_key=include_public_key or local_sha256 is not None)
    items = _matching_key_pairs(client, names, filters)
    if filters["resource_group_id"] is not None:
        # ECS adds the key pairs of the default resource group whatever group is asked for (and
        # does not filter by the default group at all): keep only the group asked for.
        items = [item for item in items if item.get("ResourceGroupId") == filters["resource_group_id"]]
    if local_sha256 is not None:
        items = [item for item in items if _sha256_of(item) == local_sha256]
    holders = instances_by_key_pair(client, [item["KeyPairName"] for item in items]) if include_instances else None
    results = []
    for item in items:
        instances = None
        if holders is not None:
            instances = [instance_summary(i) for i in holders.get(item["KeyPairName"], [])]
        entry = describe_result(item, name=item["KeyPairName"], instances=instances)
        if not include_public_key:
            entry["public_key"] = None
        results.append(entry)
    return results


def taken_name_list(names: Sequence[str]) -> List[str]:
    """The names for taken_names, checked (before any call) and without repeats."""
    names = list(dict.fromkeys(names))
    for name in names:
        validate_name(name, "find_taken_names")
    return names


def taken_names(client: Any, names: Sequence[str]) -> Dict[str, List[Dict[str, Any]]]:
    """{name: instances} for those of the names that no key pair holds but instances still show.

    A key pair deleted while it was attached (ECS allowed it, and the key pair guide still
    describes it) keeps its name taken until it is detached from every instance that shows the
    name: CreateKeyPair and ImportKeyPair under that name fail with KeyPair.AlreadyExist, while
    DescribeKeyPairs lists nothing. One DescribeInstances by KeyPairName per such name.
    """
    names = taken_name_list(names)
    existing = existing_key_pairs(client, names)
    found: Dict[str, List[Dict[str, Any]]] = {}
    for name in names:
        if name not in existing:
            holders = instances_holding(client, name)
            if holders:
                found[name] = [instance_summary(item) for item in holders]
    return found


def split_fingerprint(value: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """(the API's KeyPairFingerPrint filter, a SHA256 fingerprint to match here).

    The API filters by its own fingerprint, MD5 hex digits. The collection shows fingerprints
    as ssh-keygen prints them, so those are taken too: ``MD5:aa:bb:...`` goes to the API without
    its prefix, and ``SHA256:base64`` (which the API cannot filter by) is matched against the
    fingerprint computed here from each public key.
    """
    if not isinstance(value, str):
        return validate_fingerprint(value), None
    prefix, sep, rest = value.partition(":")
    if sep and prefix.upper() == "MD5":
        return validate_fingerprint(rest), None
    if sep and prefix.upper() == "SHA256":
        digest = rest.rstrip("=")
        if not SHA256_PATTERN.fullmatch(digest):
            raise KeypairError(f"fingerprint {quote_input(value)} is not a SHA256 fingerprint as ssh-keygen -l prints it "
                               "(SHA256: and 43 base64 characters)")
        return None, f"SHA256:{digest}"
    if SHA256_PATTERN.fullmatch(value.rstrip("=")) and not FINGERPRINT_PATTERN.fullmatch(value):
        raise KeypairError(f"fingerprint {quote_input(value)} looks like a SHA256 fingerprint without its prefix: "
                           "write it as ssh-keygen -l prints it, SHA256:...")
    return validate_fingerprint(value), None


def _sha256_of(item: Mapping[str, Any]) -> Optional[str]:
    key = api_public_key(item)
    return key.fingerprint("sha256") if key is not None else None


def _matching_key_pairs(client: Any, names: List[str], filters: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The key pairs that match, each once, sorted by name."""
    exact = [name for name in names if "*" not in name]
    queries: List[Optional[str]] = [name for name in names if "*" in name]
    # Many exact names: one paged listing of the region beats one call per name.
    many_exact = len(exact) > PER_NAME_LOOKUPS
    exact_set = set(exact)
    queries += [None] if many_exact or not names else exact
    found: Dict[str, Dict[str, Any]] = {}
    for query in queries:
        for item in describe_key_pairs(client, name=query, **filters):
            if not isinstance(item, dict) or "KeyPairName" not in item:
                continue
            if query is None and many_exact and item["KeyPairName"] not in exact_set:
                continue
            if query is not None and "*" not in query and item["KeyPairName"] != query:
                continue  # exact names are exact, whatever the service does with them
            found.setdefault(item["KeyPairName"], item)
    return [found[key] for key in sorted(found)]

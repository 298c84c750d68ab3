# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: reading key pairs and their instances, in the fewest calls.

ecs_keypair_info lists key pairs here; the delete of many key pairs finds what exists here too.
For a few names each is looked up on its own; for more, one paged listing of the region is
cheaper (50 key pairs, 100 instances a page).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_api import (
    describe_instances,
    describe_key_pairs,
    get_key_pair,
    instances_holding,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_shape import describe_result, instance_summary
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_validate import (
    validate_fingerprint,
    validate_pattern,
    validate_plain_id,
    validate_tags,
)

# Up to this many names, each is looked up on its own (one DescribeKeyPairs / DescribeInstances
# per name); beyond it one paged listing of the region is cheaper.
PER_NAME_LOOKUPS = 5


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
    filters = dict(fingerprint=validate_fingerprint(fingerprint),
                   resource_group_id=validate_plain_id(resource_group_id, "resource_group_id"),
                   tags=validate_tags(tags), include_public_key=include_public_key)
    items = _matching_key_pairs(client, names, filters)
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

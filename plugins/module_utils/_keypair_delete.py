# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: ecs_keypair with state=absent, for one name or many.

Reads first (what exists, which instances hold it), then, unless in check mode, detaches (when
asked) and deletes: one key pair with DeleteKeyPairs of its name, many with DeleteKeyPairs of up
to 100 names a call. A failure after a change names every change made.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

from ansible_collections.sshkeys.ecs.plugins.module_utils._changes import (
    Changes,
    PartialChangeError,
    describe_changes,
    join_ids,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_api import (
    ATTACHED_CODE,
    delete_key_pair,
    delete_key_pairs,
    detach_key_pair,
    failure_lines,
    first_error,
    get_key_pair,
    instances_holding,
    is_not_found,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import MAX_KEY_PAIR_NAMES, EcsApiError, chunks
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_shape import (
    describe_result,
    diff_view,
    instance_ids,
    instance_summary,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_validate import KeypairError, validate_name
from ansible_collections.sshkeys.ecs.plugins.module_utils._keypair_info import existing_key_pairs, instances_by_key_pair
from ansible_collections.sshkeys.ecs.plugins.module_utils._keypair_write import bind


def ensure_absent(client: Any, name: str, *, detach_instances: bool = False, include_instances: bool = False,
                  check_mode: bool = False) -> Dict[str, Any]:
    """state=absent for one key pair: the result (with warnings and diff)."""
    validate_name(name)
    item = get_key_pair(client, name)
    if item is None:
        return {"changed": False, "action": "absent", "key_pair": {},
                "diff": {"before": {"state": "absent"}, "after": {"state": "absent"}}}
    instances = instances_holding(client, name)
    ids = instance_ids(instances)
    if not check_mode:
        _delete_one(client, name, ids, detach_instances)
    warnings: List[str] = []
    if ids and not detach_instances:
        warnings.append(f"key pair {name} is still attached to {len(ids)} instance(s) ({', '.join(ids[:10])}); they "
                        "keep using it and its name stays taken until it is detached (some ECS regions refuse the "
                        "delete instead: then set detach_instances=true)")
    elif ids:
        warnings.append(f"key pair {name} was detached from {len(ids)} instance(s); it takes effect when each restarts")
    result: Dict[str, Any] = {
        "changed": True, "action": "deleted",
        "key_pair": describe_result(item, name=name,
                                    instances=[instance_summary(i) for i in instances] if include_instances else None),
        "diff": {"before": diff_view(item), "after": {"state": "absent"}},
    }
    if warnings:
        result["warnings"] = warnings
    return result


def _detach_before_delete(client: Any, name: str, ids: List[str], changes: Changes) -> None:
    """DetachKeyPair from every holder; stops (naming what was detached) when one fails."""
    done, outcome = bind(client, detach_key_pair, name, ids)
    if done:
        changes.add(f"detached key pair {name} from {join_ids(done)}")
    if len(done) < len(ids):
        raise PartialChangeError(f"detaching key pair {name} failed for " + "; ".join(failure_lines(outcome, ids))
                                 + f"; the key pair was not deleted; {describe_changes(changes.items)}; running the "
                                 "task again detaches the rest and deletes it", changes=changes.items,
                                 error=first_error(outcome))


def _delete_one(client: Any, name: str, ids: List[str], detach: bool) -> None:
    """Detach (when asked) and delete one key pair; a failure after the detach names it."""
    changes = Changes()
    if ids and detach:
        _detach_before_delete(client, name, ids, changes)
    try:
        delete_key_pair(client, name)
    except EcsApiError as error:
        if error.code == ATTACHED_CODE and not changes:
            raise KeypairError(f"key pair {name} is attached to {len(ids) or 'some'} instance(s) "
                               f"({', '.join(ids[:10])}) and ECS refuses to delete it ({error.code}, request id "
                               f"{error.request_id}); set detach_instances=true to detach it first") from None
        if not changes:
            raise
        raise PartialChangeError(f"deleting key pair {name} failed: {error}; {describe_changes(changes.items)}; "
                                 "running the task again deletes it", changes=changes.items, error=error) from None


# ---------------------------------------------------------------------------------------------
# Many key pairs in one task: DeleteKeyPairs takes up to 100 names a call.


def unique_names(names: Sequence[str]) -> List[str]:
    """The names in their first order, each once, every one checked before any call."""
    seen: List[str] = []
    for name in names:
        validate_name(name, option="names")
        if name not in seen:
            seen.append(name)
    return seen


def ensure_absent_many(client: Any, names: Sequence[str], *, detach_instances: bool = False,
                       include_instances: bool = False, check_mode: bool = False) -> Dict[str, Any]:
    """state=absent with names: ceil(N/100) DeleteKeyPairs, after reads that find what exists."""
    names = unique_names(list(names))
    found = existing_key_pairs(client, names) if names else {}
    targets = [name for name in names if name in found]
    holders = instances_by_key_pair(client, targets) if targets else {}
    if targets and not check_mode:
        changes = Changes()
        if detach_instances:
            for name in targets:
                if name in holders:
                    _detach_before_delete(client, name, instance_ids(holders[name]), changes)
        _delete_batches(client, targets, holders, changes)
    result: Dict[str, Any] = {"changed": bool(targets), "action": "deleted" if targets else "absent",
                              "key_pair": {}, "deleted": targets}
    held = [name for name in targets if name in holders]
    if held:
        count = sum(len(holders[name]) for name in held)
        result["warnings"] = [
            f"{len(held)} key pair(s) ({', '.join(held[:10])}) were held by {count} instance(s): "
            + ("they were detached first; it takes effect when each instance restarts" if detach_instances else
               "they keep using them and the names stay taken until they are detached")]
    result["key_pairs"] = [describe_result(found[name], name=name,
                                           instances=[instance_summary(i) for i in holders.get(name, [])]
                                           if include_instances else None) for name in targets]
    result["diff"] = {"before": {"key_pairs": {name: diff_view(found[name]) for name in targets}},
                      "after": {"key_pairs": {}}}
    return result


def delete_batch(client: Any, batch: List[str]) -> None:
    """DeleteKeyPairs for up to 100 names that existed a moment ago.

    The call is all or nothing: one missing name (an earlier try whose reply was lost, or
    someone else's delete) fails the batch, so then the names still there are deleted again.
    """
    try:
        delete_key_pairs(client, batch)
    except EcsApiError as error:
        if not is_not_found(error):
            raise
        still_there = existing_key_pairs(client, batch)
        left = [name for name in batch if name in still_there]
        if left:
            delete_key_pairs(client, left)


def _delete_batches(client: Any, targets: List[str], holders: Mapping[str, List[Dict[str, Any]]],
                    changes: Changes) -> None:
    """DeleteKeyPairs, 100 names a call; a failure says what was deleted (a re-run deletes the rest)."""
    done: List[str] = []
    for batch in chunks(targets, MAX_KEY_PAIR_NAMES):
        try:
            delete_batch(client, batch)
        except EcsApiError as error:
            progress = (f"{len(done)} of {len(targets)} key pairs were deleted before this call failed"
                        if done else "no key pair was deleted")
            if error.code == ATTACHED_CODE:
                attached = [name for name in batch if name in holders] or batch
                message = (f"ECS refuses to delete key pairs that instances hold ({error.code}, request id "
                           f"{error.request_id}): {', '.join(attached[:10])}; {progress}; set detach_instances=true "
                           "to detach them first")
                if not changes:
                    raise KeypairError(message) from None
            else:
                message = f"{error}; {progress}; running the task again deletes the rest"
            raise PartialChangeError(f"{message}; {describe_changes(changes.items)}", changes=changes.items,
                                     error=error) from None
        done.extend(batch)
        changes.add(f"deleted key pair(s) {join_ids(batch)}")

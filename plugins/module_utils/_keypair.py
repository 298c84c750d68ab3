# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: key pair decisions and actions behind ecs_keypair(_info).

The input checks are in ``_ecs_validate``, the result shapes in ``_ecs_shape``, the ordered writes in
``_keypair_write``, the private key file and the lock and marker beside it in
``_private_key_file``; this file decides (from reads only) and hands the writes over.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

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
    describe_instances,
    describe_key_pairs,
    detach_key_pair,
    failure_lines,
    first_error,
    get_key_pair,
    instances_holding,
    is_not_found,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError, chunks
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_shape import (
    api_public_key,
    api_tags,
    describe_result,
    diff_view,
    instance_ids,
    instance_summary,
    same_key,
    tag_changes,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_validate import (
    KeypairError,
    check_key_type,
    validate_fingerprint,
    validate_name,
    validate_pattern,
    validate_plain_id,
    validate_tags,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._keypair_write import (
    CloudCreate,
    Replacement,
    apply_tags,
    bind,
    import_key,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import looks_like_private_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import PublicKey, SSHKeyError, parse_public_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._private_key_file import (
    KeyFileLock,
    NoLock,
    PendingMarker,
    PrivateKeyFile,
    check_private_key_target,
    public_key_of_file,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._private_keys import (
    check_key_size,
    generate_private_key,
    public_key_from_private,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._regular_file import UnsafeFileError, read_regular

MAX_PUBLIC_KEY_FILE = 64 * 1024


# ---------------------------------------------------------------------------------------------
# Keys given or made here.


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


def public_key_of_private_file(path: str, passphrase: Optional[str]) -> PublicKey:
    """The public key of an existing private_key_path: a regular file of ours, mode 0600 or stricter."""
    return public_key_of_file(path, passphrase)


def public_key_of_private_text(data: str) -> Optional[PublicKey]:
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
    try:
        check_key_size(key_type, key_size)
    except SSHKeyError as exc:
        raise KeypairError(str(exc)) from None


# ---------------------------------------------------------------------------------------------
# state=present.


class Plan:
    """What one ecs_keypair run decided, filled in as it goes."""

    def __init__(self) -> None:
        self.changed = False
        self.action = "unchanged"
        self.warnings: List[str] = []
        self.private_key: Optional[str] = None
        self.key_pair_id: Optional[str] = None
        self.public_key: Optional[PublicKey] = None
        self.changes = Changes()


def _mode(params: Mapping[str, Any]) -> str:
    if params.get("public_key") is not None or params.get("public_key_path") is not None:
        return "import"
    return "local" if params.get("generate") == "local" else "cloud"


def check_options(params: Mapping[str, Any]) -> str:
    """Option combinations argument_spec cannot express. Returns the mode."""
    mode = _mode(params)
    validate_name(params["name"])
    validate_plain_id(params.get("resource_group_id"), "resource_group_id")
    for option in ("private_key_path", "public_key_path"):
        # A path is quoted in messages and gives the names of the files beside it: a pasted key
        # there would come back in pieces no masking catches.
        if params.get(option) and looks_like_private_key(params[option]):
            raise KeypairError(f"{option} holds private key material, not a path; it is not shown")
    if params["state"] == "absent":
        return mode
    if mode == "import" and params.get("generate") == "local":
        raise KeypairError("generate=local makes the key here; it cannot be combined with public_key or public_key_path")
    if mode != "local":
        for option in ("key_type", "key_size", "passphrase"):
            if params.get(option) is not None:
                raise KeypairError(f"{option} applies only to generate=local")
    if mode == "import" and (params.get("return_private_key") or params.get("private_key_path")):
        raise KeypairError("an imported key pair has no private key here; "
                           "private_key_path and return_private_key apply to created key pairs")
    if mode == "local":
        if not params.get("private_key_path"):
            raise KeypairError("generate=local needs private_key_path: the private key is written there and nowhere else")
        if params.get("return_private_key"):
            raise KeypairError("return_private_key applies to generate=cloud; with generate=local the key is in private_key_path")
        check_generation(params.get("key_type") or "rsa", params.get("key_size"))
    if mode == "cloud" and not params.get("private_key_path") and not params.get("return_private_key"):
        raise KeypairError("CreateKeyPair returns the private key once and never again: set private_key_path "
                           "(or return_private_key=true to get it in the result)")
    validate_tags(params.get("tags"))
    return mode


class Found:
    """What the reads found: the key pair, the key in private_key_path, the marker beside it."""

    def __init__(self, client: Any, params: Mapping[str, Any], mode: str, path: Optional[str],
                 desired: Optional[PublicKey]) -> None:
        self.name = params["name"]
        self.path = path
        self.file_exists = check_private_key_target(path) if path else False
        self.local_key: Optional[PublicKey] = None
        if mode == "local" and self.file_exists:
            # The file is the source of truth of a locally generated key pair.
            self.local_key = public_key_of_private_file(path, params.get("passphrase"))
            check_key_type(self.local_key.key_type)
            desired = self.local_key
        self.desired = desired
        self.item = get_key_pair(client, self.name)
        if mode == "cloud" and self.file_exists and self.item is not None:
            # Only an existing key pair is compared with the file; a new one needs the overwrite opt-in.
            self.local_key = public_key_of_private_file(path, params.get("passphrase"))
        self.marker = PendingMarker(path) if path and mode == "cloud" else None
        self.marked = bool(self.marker and self.item is not None and self.marker.names(self.name, client.region))

    @property
    def compare_with(self) -> Optional[PublicKey]:
        return self.desired or self.local_key

    def file_matches(self) -> bool:
        return self.item is not None and self.local_key is not None and same_key(self.item, self.local_key) is True


def _mismatch_policy(what: str, hint: str, params: Mapping[str, Any], plan: Plan) -> bool:
    """Apply on_mismatch; True when the key pair is to be replaced."""
    policy = params.get("on_mismatch") or "fail"
    if policy == "fail":
        raise KeypairError(f"{what}; {hint}")
    if policy == "keep":
        plan.action = "kept"
        plan.warnings.append(f"{what}; kept as it is (on_mismatch=keep)")
        return False
    return True


def judge_existing(found: Found, mode: str, params: Mapping[str, Any], plan: Plan) -> bool:
    """Whether the existing key pair must be replaced (never a silent 'unchanged' when its
    private key is not where the task says it is)."""
    name, item = found.name, found.item
    if found.marked and not found.file_matches():
        plan.warnings.append(
            f"key pair {name} exists but its private key was never saved: the answer of an earlier CreateKeyPair "
            f"was lost (the marker {found.marker.path if found.marker else ''} says so), so nobody holds its private "
            "key; it is deleted and created again")
        return True
    switch = "set on_mismatch=replace to replace it or on_mismatch=keep to leave it"
    current = api_public_key(item)
    current_print = current.fingerprint("sha256") if current else "unknown"
    if found.compare_with is not None:
        verdict = same_key(item, found.compare_with)
        if verdict is None:
            plan.warnings.append(f"the API returned no public key for {name}; it cannot be compared and is left as it is")
        if verdict is not False:
            return False
        what = (f"key pair {name} exists with another public key ({current_print}) than the one wanted "
                f"({found.compare_with.fingerprint('sha256')})")
        return _mismatch_policy(what, switch, params, plan)
    if mode == "local":
        what = (f"key pair {name} exists with another public key ({current_print}) than the one wanted (a new key: "
                "private_key_path does not exist)")
        return _mismatch_policy(what, switch, params, plan)
    if found.path:
        what = (f"key pair {name} exists ({current_print}), but private_key_path {found.path} does not exist, and its "
                "private key cannot be fetched again: ECS returns it once, when it creates the key pair")
        hint = ("point private_key_path to the file that holds its private key, set on_mismatch=replace to delete it "
                "and create a new one whose private key is saved there, or on_mismatch=keep to leave it")
        return _mismatch_policy(what, hint, params, plan)
    plan.warnings.append(
        f"key pair {name} exists and was generated by the cloud; its private key was returned only when it "
        "was created and cannot be fetched again, so it is neither written nor returned")
    return False


def ensure_present(client: Any, params: Mapping[str, Any], check_mode: bool) -> Dict[str, Any]:
    """state=present: create, generate, import or reconcile one key pair. Returns the result."""
    mode = check_options(params)
    path = params.get("private_key_path")
    path = os.path.abspath(os.path.expanduser(path)) if path else None
    desired = load_public_key(params.get("public_key"), params.get("public_key_path"))
    if path:
        check_private_key_target(path)  # before the lock: a wrong path fails with its own message
    # Two runs for one private key file take turns, from the first read to the last write.
    with KeyFileLock(path) if path and not check_mode else NoLock():
        return _ensure_present(client, params, check_mode, mode, path, desired)


def _ensure_present(client: Any, params: Mapping[str, Any], check_mode: bool, mode: str, path: Optional[str],
                    desired: Optional[PublicKey]) -> Dict[str, Any]:
    name = params["name"]
    tags = validate_tags(params.get("tags"))
    group = params.get("resource_group_id")
    plan = Plan()
    found = Found(client, params, mode, path, desired)
    item = found.item
    before = diff_view(item)
    replace = item is not None and judge_existing(found, mode, params, plan)
    if found.marker is not None and not check_mode and found.marked and found.file_matches():
        found.marker.remove()  # the key was saved after all (a run stopped before removing it)
    instances: List[Dict[str, Any]] = []
    if replace:
        instances = instances_holding(client, name)
        if instances and not params.get("detach_instances"):
            ids = ", ".join(instance_ids(instances)[:10])
            raise KeypairError(f"key pair {name} is attached to {len(instances)} instance(s) ({ids}); set "
                               "detach_instances=true to detach it, replace it and attach the new key pair to them again")
    if item is None or replace:
        after = _present_new(client, params, check_mode, mode, found, plan, replace, instances, tags, group)
    else:
        after = _present_existing(client, params, check_mode, item, plan, tags, group)
    try:
        return _present_result(client, params, check_mode, mode, found, plan, replace, before, after, tags, group)
    except EcsApiError as error:
        if not plan.changes:
            raise
        # The job is done; only reading it back failed. The changes must not be hidden by it.
        raise PartialChangeError(f"reading key pair {name} back failed: {error}; {describe_changes(plan.changes.items)}"
                                 "; running the task again reads it", changes=plan.changes.items, error=error) from None


def _present_new(client: Any, params: Mapping[str, Any], check_mode: bool, mode: str, found: Found, plan: Plan,
                 replace: bool, instances: List[Dict[str, Any]], tags: Optional[Dict[str, str]],
                 group: Optional[str]) -> Optional[Dict[str, Any]]:
    """Create, import or replace; returns the diff's 'after' in check mode (None otherwise)."""
    item = found.item
    final_tags = tags if tags is not None else (api_tags(item) if item else None)
    if item is not None and group is None:
        group = item.get("ResourceGroupId") or None
    if mode == "cloud" and found.file_exists and not params.get("overwrite_private_key"):
        orphan = (f"key pair {found.name} exists without its private key (the answer of an earlier CreateKeyPair was "
                  "lost) and must be created again, but " if found.marked else "")
        raise KeypairError(f"{orphan}private_key_path {found.path} exists already; set overwrite_private_key=true to "
                           "replace it with the private key of the new key pair")
    plan.changed = True
    plan.action = "replaced" if replace else ("imported" if mode == "import" else "created")
    if check_mode:
        plan.public_key = found.desired
        return diff_view(None, plan.public_key, final_tags or {}, group)
    _make_key_pair(client, params, mode, found, final_tags, group, plan,
                   replacing=item if replace else None, instances=instances)
    return None


def _present_existing(client: Any, params: Mapping[str, Any], check_mode: bool, item: Dict[str, Any], plan: Plan,
                      tags: Optional[Dict[str, str]], group: Optional[str]) -> Optional[Dict[str, Any]]:
    """Tags and resource group of a key pair that stays; returns the diff's 'after' in check mode."""
    name = params["name"]
    current = api_tags(item)
    to_set, to_remove = tag_changes(current, tags, params.get("purge_tags", True))
    if to_set or to_remove:
        plan.changed = True
        if plan.action == "unchanged":
            plan.action = "updated"
        if not check_mode:
            apply_tags(client, name, current, to_set, to_remove, plan.changes)
    current_group = item.get("ResourceGroupId")
    if group and current_group and group != current_group:
        plan.warnings.append(f"key pair {name} is in resource group {current_group}, not {group}; "
                             "this module does not move key pairs between resource groups")
    if not check_mode:
        return None
    merged = api_tags(item)
    if tags is not None:
        merged = dict(tags) if params.get("purge_tags", True) else dict(merged, **tags)
    return diff_view(item, tags=merged)


def _present_result(client: Any, params: Mapping[str, Any], check_mode: bool, mode: str, found: Found, plan: Plan,
                    replace: bool, before: Dict[str, Any], after: Optional[Dict[str, Any]],
                    tags: Optional[Dict[str, str]], group: Optional[str]) -> Dict[str, Any]:
    name, item = params["name"], found.item
    recreated = item is None or replace
    kept_path = found.path if mode != "import" else None
    if check_mode:
        final_item = None if recreated else item
    else:
        # Read back what the service holds now, so the result is its reading, not our wish.
        final_item = get_key_pair(client, name) if plan.changed else item
        after = diff_view(final_item) if final_item else diff_view(None, plan.public_key, tags or {}, group)
    listed = None
    if params.get("include_instances"):
        listed = [instance_summary(i) for i in instances_holding(client, name)] if final_item else []
    key_pair = describe_result(final_item, name=name, public_key=plan.public_key or found.desired or found.local_key,
                               key_pair_id=plan.key_pair_id, private_key_path=kept_path, instances=listed,
                               fallback_tags=tags if recreated and tags is not None else (api_tags(item) if item else {}),
                               fallback_group=group)
    if check_mode and not recreated and after is not None:
        key_pair["tags"] = after["tags"]
    result: Dict[str, Any] = {"changed": plan.changed, "action": plan.action, "key_pair": key_pair,
                              "diff": {"before": before, "after": after if after is not None else before}}
    if plan.private_key is not None:
        result["private_key"] = plan.private_key
    if plan.warnings:
        result["warnings"] = plan.warnings
    return result


def _make_key_pair(client: Any, params: Mapping[str, Any], mode: str, found: Found,
                   tags: Optional[Mapping[str, str]], group: Optional[str], plan: Plan,
                   replacing: Optional[Mapping[str, Any]], instances: List[Dict[str, Any]]) -> None:
    """The mutating half of ensure_present: files first, then the API, in the safe order.

    Every step that changes something is written into plan.changes; a failure after one of them
    is a PartialChangeError that lists them (and a replacement puts the old key pair back).
    """
    path, desired = found.path, found.desired
    target = PrivateKeyFile(path) if path and mode in ("cloud", "local") and (mode == "cloud" or desired is None) else None
    changes = plan.changes
    replacement = None
    if replacing is not None:
        replacement = Replacement(client, found.name, replacing, instance_ids(instances), changes,
                                  restore=not found.marked)
    try:
        if mode == "local" and desired is None:
            # The private key goes to disk before the public key goes to the cloud: if the import
            # fails, the next run finds the file and imports the same key.
            private, desired = generate_key(params.get("key_type") or "rsa", params.get("key_size"),
                                            params.get("passphrase"), found.name)
            if target is None:  # pragma: no cover - check_options requires private_key_path
                raise KeypairError("generate=local needs private_key_path")
            target.commit(private)
            target = None
            changes.add(f"wrote a new private key to {path}")
        if replacement is not None:
            replacement.take_down()
        try:
            _put_new(client, params, mode, found, desired, tags, group, target, plan, replacing is not None)
            target = None
        except (EcsApiError, KeypairError) as failure:
            if replacement is None:
                raise
            replacement.put_back(failure, wanted=desired if mode != "cloud" else None)
            plan.public_key = desired  # the new key pair landed after all
        if replacement is not None and replacement.ids:
            replacement.attach_new()
            plan.warnings.append(f"the new key pair was attached to {len(replacement.ids)} instance(s); it takes "
                                 "effect when each instance restarts")
    except (EcsApiError, KeypairError) as failure:
        if not changes:
            raise
        raise PartialChangeError(f"{failure}; {describe_changes(changes.items)}", changes=changes.items,
                                 error=failure if isinstance(failure, EcsApiError) else None) from None
    finally:
        if target is not None:
            target.discard()


def _put_new(client: Any, params: Mapping[str, Any], mode: str, found: Found, desired: Optional[PublicKey],
             tags: Optional[Mapping[str, str]], group: Optional[str], target: Optional[PrivateKeyFile], plan: Plan,
             after_delete: bool) -> None:
    """CreateKeyPair (private key saved) or ImportKeyPair; notes the change."""
    name = found.name
    if mode == "cloud":
        marker = found.marker if target is not None else None
        creator = CloudCreate(client, name, tags, group, target, after_delete=after_delete, marker=marker)
        reply, private_text = creator.run()
        plan.key_pair_id = reply.get("KeyPairId")
        plan.public_key = public_key_of_private_text(private_text)
        if params.get("return_private_key"):
            plan.private_key = private_text
        saved = f", its private key saved to {found.path}" if target is not None else ""
        if creator.unconfirmed and marker is not None:
            saved += (f" (after lost answers it could not be read back: the marker {marker.path} stays, and the "
                      "next run checks the key pair against the file)")
            plan.warnings.append(f"key pair {name} was created after lost answers and could not be read back; the "
                                 f"marker {marker.path} stays until a run confirms it")
        plan.changes.add(f"created key pair {name}{saved}")
        return
    if desired is None:  # pragma: no cover - import and local modes always have a key here
        raise KeypairError("no public key to import")
    reply = import_key(client, name, desired, tags, group, after_delete=after_delete)
    plan.key_pair_id = reply.get("KeyPairId")
    plan.public_key = desired
    plan.changes.add(f"imported key pair {name} ({desired.fingerprint('sha256')})")


# ---------------------------------------------------------------------------------------------
# state=absent.


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


def ensure_absent(client: Any, params: Mapping[str, Any], check_mode: bool) -> Dict[str, Any]:
    name = params["name"]
    validate_name(name)
    item = get_key_pair(client, name)
    if item is None:
        return {"changed": False, "action": "absent", "key_pair": {},
                "diff": {"before": {"state": "absent"}, "after": {"state": "absent"}}}
    instances = instances_holding(client, name)
    ids = instance_ids(instances)
    warnings: List[str] = []
    detach = bool(params.get("detach_instances"))
    if not check_mode:
        _delete_one(client, name, ids, detach)
    if ids and not detach:
        warnings.append(f"key pair {name} is still attached to {len(ids)} instance(s) ({', '.join(ids[:10])}); they "
                        "keep using it and its name stays taken until it is detached (some ECS regions refuse the "
                        "delete instead: then set detach_instances=true)")
    elif ids:
        warnings.append(f"key pair {name} was detached from {len(ids)} instance(s); it takes effect when each restarts")
    result: Dict[str, Any] = {
        "changed": True, "action": "deleted",
        "key_pair": describe_result(item, name=name,
                                    instances=[instance_summary(i) for i in instances]
                                    if params.get("include_instances") else None),
        "diff": {"before": diff_view(item), "after": {"state": "absent"}},
    }
    if warnings:
        result["warnings"] = warnings
    return result


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
# Deleting many key pairs in one task: DeleteKeyPairs takes up to 100 names a call.

MAX_DELETE_NAMES = 100
# Up to this many names, each is looked up on its own (one DescribeKeyPairs / DescribeInstances
# per name); beyond it one paged listing of the region (50 key pairs, 100 instances a page) is
# cheaper.
PER_NAME_LOOKUPS = 5


def unique_names(names: List[str]) -> List[str]:
    """The names in their first order, each once, every one checked before any call."""
    seen: List[str] = []
    for name in names:
        validate_name(name, option="names")
        if name not in seen:
            seen.append(name)
    return seen


def existing_key_pairs(client: Any, names: List[str]) -> Dict[str, Dict[str, Any]]:
    """{name: item} for those of the names that exist."""
    if len(names) <= PER_NAME_LOOKUPS:
        items = (get_key_pair(client, name) for name in names)
        return {item["KeyPairName"]: item for item in items if item is not None}
    wanted = set(names)
    return {item["KeyPairName"]: item for item in describe_key_pairs(client)
            if isinstance(item, dict) and item.get("KeyPairName") in wanted}


def instances_by_key_pair(client: Any, names: List[str]) -> Dict[str, List[Dict[str, Any]]]:
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
    for batch in chunks(targets, MAX_DELETE_NAMES):
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


def ensure_absent_many(client: Any, params: Mapping[str, Any], check_mode: bool) -> Dict[str, Any]:
    """state=absent with names: ceil(N/100) DeleteKeyPairs, after reads that find what exists."""
    names = unique_names(list(params["names"]))
    found = existing_key_pairs(client, names) if names else {}
    targets = [name for name in names if name in found]
    result: Dict[str, Any] = {"changed": bool(targets), "action": "deleted" if targets else "absent",
                              "key_pair": {}, "deleted": targets}
    holders = instances_by_key_pair(client, targets) if targets else {}
    detach = bool(params.get("detach_instances"))
    if targets and not check_mode:
        changes = Changes()
        if detach:
            for name in targets:
                if name in holders:
                    _detach_before_delete(client, name, instance_ids(holders[name]), changes)
        _delete_batches(client, targets, holders, changes)
    held = [name for name in targets if name in holders]
    if held:
        count = sum(len(holders[name]) for name in held)
        result["warnings"] = [
            f"{len(held)} key pair(s) ({', '.join(held[:10])}) were held by {count} instance(s): "
            + ("they were detached first; it takes effect when each instance restarts" if detach else
               "they keep using them and the names stay taken until they are detached")]
    include = params.get("include_instances")
    result["key_pairs"] = [describe_result(found[name], name=name,
                                           instances=[instance_summary(i) for i in holders.get(name, [])]
                                           if include else None) for name in targets]
    result["diff"] = {"before": {"key_pairs": {name: diff_view(found[name]) for name in targets}},
                      "after": {"key_pairs": {}}}
    return result


# ---------------------------------------------------------------------------------------------
# ecs_keypair_info

# (The same trade-off as PER_NAME_LOOKUPS, for the instances of the key pairs found.)
PER_KEY_INSTANCE_LOOKUPS = PER_NAME_LOOKUPS


def list_key_pairs(client: Any, params: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Key pairs by exact names or '*' patterns, fingerprint, tags and resource group; all pages."""
    names = params.get("names") or []
    for name in names:
        validate_pattern(name)
    tags = validate_tags(params.get("tags"))
    include_public_key = params.get("include_public_key", True)
    filters = dict(fingerprint=validate_fingerprint(params.get("fingerprint")),
                   resource_group_id=validate_plain_id(params.get("resource_group_id"), "resource_group_id"),
                   tags=tags, include_public_key=include_public_key)
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
    items = [found[key] for key in sorted(found)]
    holders: Optional[Dict[str, List[Dict[str, Any]]]] = None
    if params.get("include_instances"):
        holders = {}
        if len(items) <= PER_KEY_INSTANCE_LOOKUPS:
            for item in items:
                holders[item["KeyPairName"]] = instances_holding(client, item["KeyPairName"])
        elif items:
            for instance in describe_instances(client):
                if isinstance(instance, dict) and instance.get("KeyPairName"):
                    holders.setdefault(instance["KeyPairName"], []).append(instance)
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

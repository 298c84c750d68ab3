# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the ecs_keypair task, state=present here.

One run of state=present is three steps:

* read (``read_present``): the key pair, the private key already in ``private_key_path`` and
  the marker beside it (and, for a replacement, the instances that hold the key pair);
* decide (``decide_present``, ``refuse_new``): plain functions of those reads and the options
  that say what to do, or refuse with the reason, before anything is changed;
* act (``act_present``): the writes in their safe order, skipped in check mode, then the key
  pair read back into the result.

state=absent is ``_keypair_delete``; the listing of ecs_keypair_info is ``_keypair_info``; the
ordered writes are ``_keypair_write``; the private key file, its lock and its marker are
``_private_key_file``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.sshkeys.ecs.plugins.module_utils._changes import Changes, PartialChangeError, describe_changes
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_api import get_key_pair, instances_holding
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError
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
    validate_name,
    validate_plain_id,
    validate_tags,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import looks_like_private_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._keypair_delete import ensure_absent, ensure_absent_many
from ansible_collections.sshkeys.ecs.plugins.module_utils._keypair_keys import (
    check_generation,
    generate_key,
    load_public_key,
    public_key_of_private_text,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._keypair_write import CloudCreate, Replacement, apply_tags, import_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import PublicKey
from ansible_collections.sshkeys.ecs.plugins.module_utils._private_key_file import (
    KeyFileLock,
    NoLock,
    PendingMarker,
    PrivateKeyFile,
    check_private_key_target,
    check_public_key_target,
    public_key_file_path,
    public_key_of_file,
    write_public_key_file,
)


@dataclass(frozen=True)
class KeypairOptions:
    """What one ecs_keypair task asks for: its options as named values."""

    name: Optional[str] = None
    names: Optional[Sequence[str]] = None
    state: str = "present"
    public_key: Optional[str] = None
    public_key_path: Optional[str] = None
    generate: str = "cloud"
    key_type: Optional[str] = None
    key_size: Optional[int] = None
    passphrase: Optional[str] = field(default=None, repr=False)
    private_key_path: Optional[str] = None
    overwrite_private_key: bool = False
    return_private_key: bool = False
    on_mismatch: str = "fail"
    detach_instances: bool = False
    include_instances: bool = False
    tags: Optional[Mapping[str, Any]] = None
    purge_tags: bool = True
    resource_group_id: Optional[str] = None
    write_public_key: bool = True

    def __post_init__(self) -> None:
        if self.names is not None and self.state != "absent":
            raise KeypairError("names is for state=absent only; give one key pair in name to create or import it")

    @property
    def mode(self) -> str:
        """import (a public key given), local (made here) or cloud (made by CreateKeyPair)."""
        if self.public_key is not None or self.public_key_path is not None:
            return "import"
        return "local" if self.generate == "local" else "cloud"


def keypair_task(client: Any, options: KeypairOptions, check_mode: bool) -> Dict[str, Any]:
    """The result of one ecs_keypair task (with its warnings and diff)."""
    if options.names is not None:
        return ensure_absent_many(client, options.names, detach_instances=options.detach_instances,
                                  include_instances=options.include_instances, check_mode=check_mode)
    if options.state == "absent":
        return ensure_absent(client, options.name, detach_instances=options.detach_instances,
                             include_instances=options.include_instances, check_mode=check_mode)
    return ensure_present(client, options, check_mode)


def check_options(options: KeypairOptions) -> str:
    """Option combinations argument_spec cannot express. Returns the mode."""
    mode = options.mode
    validate_name(options.name)
    validate_plain_id(options.resource_group_id, "resource_group_id")
    for option, value in (("private_key_path", options.private_key_path), ("public_key_path", options.public_key_path)):
        # A path is quoted in messages and gives the names of the files beside it: a pasted key
        # there would come back in pieces no masking catches.
        if value and looks_like_private_key(value):
            raise KeypairError(f"{option} holds private key material, not a path; it is not shown")
    if mode == "import" and options.generate == "local":
        raise KeypairError("generate=local makes the key here; it cannot be combined with public_key or public_key_path")
    if mode != "local":
        for option, value in (("key_type", options.key_type), ("key_size", options.key_size),
                              ("passphrase", options.passphrase)):
            if value is not None:
                raise KeypairError(f"{option} applies only to generate=local")
    if mode == "import" and (options.return_private_key or options.private_key_path):
        raise KeypairError("an imported key pair has no private key here; "
                           "private_key_path and return_private_key apply to created key pairs")
    if mode == "local":
        _check_local(options)
    if mode == "cloud" and not options.private_key_path and not options.return_private_key:
        raise KeypairError("CreateKeyPair returns the private key once and never again: set private_key_path "
                           "(or return_private_key=true to get it in the result)")
    validate_tags(options.tags)
    return mode


def _check_local(options: KeypairOptions) -> None:
    if not options.private_key_path:
        raise KeypairError("generate=local needs private_key_path: the private key is written there and nowhere else")
    if options.return_private_key:
        raise KeypairError("return_private_key applies to generate=cloud; with generate=local the key is in private_key_path")
    check_generation(options.key_type or "rsa", options.key_size)


def ensure_present(client: Any, options: KeypairOptions, check_mode: bool) -> Dict[str, Any]:
    """state=present: create, generate, import or reconcile one key pair. Returns the result."""
    mode = check_options(options)
    path = os.path.abspath(os.path.expanduser(options.private_key_path)) if options.private_key_path else None
    desired = load_public_key(options.public_key, options.public_key_path)
    if path:
        check_private_key_target(path)  # before the lock: a wrong path fails with its own message
    # Two runs for one private key file take turns, from the first read to the last write.
    with KeyFileLock(path) if path and not check_mode else NoLock():
        found = read_present(client, options, mode, path, desired)
        decision = decide_present(found, options, mode)
        if decision.replace:
            found.holders = instances_holding(client, found.name)
        if decision.make_new:
            refuse_new(found, options, mode)
        return act_present(client, options, check_mode, mode, found, decision)


# ---------------------------------------------------------------------------------------------
# Read.


@dataclass
class Found:
    """What the reads found: the key pair, the key in private_key_path, the marker beside it."""

    name: str
    path: Optional[str]
    file_exists: bool
    desired: Optional[PublicKey]
    item: Optional[Dict[str, Any]]
    local_key: Optional[PublicKey] = None
    marker: Optional[PendingMarker] = None
    marked: bool = False
    holders: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def compare_with(self) -> Optional[PublicKey]:
        return self.desired or self.local_key

    def file_matches(self) -> bool:
        return self.item is not None and self.local_key is not None and same_key(self.item, self.local_key) is True


def read_present(client: Any, options: KeypairOptions, mode: str, path: Optional[str],
                 desired: Optional[PublicKey]) -> Found:
    """The key pair and the files of private_key_path (files first: the file may say what is wanted)."""
    file_exists = check_private_key_target(path) if path else False
    local_key = None
    if mode == "local" and file_exists:
        # The file is the source of truth of a locally generated key pair.
        local_key = public_key_of_file(path, options.passphrase)
        check_key_type(local_key.key_type)
        desired = local_key
    found = Found(name=options.name, path=path, file_exists=file_exists, desired=desired,
                  item=get_key_pair(client, options.name), local_key=local_key)
    if mode == "cloud" and file_exists and found.item is not None:
        # Only an existing key pair is compared with the file; a new one needs the overwrite opt-in.
        found.local_key = public_key_of_file(path, options.passphrase)
    found.marker = PendingMarker(path) if path and mode == "cloud" else None
    found.marked = bool(found.marker and found.item is not None and found.marker.names(found.name, client.region))
    return found


# ---------------------------------------------------------------------------------------------
# Decide (no calls, no files).


@dataclass
class Decision:
    """What state=present is to do about one key pair."""

    tags: Optional[Dict[str, str]]
    group: Optional[str]
    action: str = "unchanged"
    changed: bool = False
    replace: bool = False
    make_new: bool = False
    clear_marker: bool = False
    tags_to_set: Dict[str, str] = field(default_factory=dict)
    tags_to_remove: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)


def decide_present(found: Found, options: KeypairOptions, mode: str) -> Decision:
    """What to do, from the reads: keep, update the tags, create, import or replace."""
    decision = Decision(tags=validate_tags(options.tags), group=options.resource_group_id)
    item = found.item
    decision.replace = item is not None and judge_existing(found, mode, options.on_mismatch or "fail", decision)
    # The key was saved after all (a run stopped before removing the marker).
    decision.clear_marker = found.marker is not None and found.marked and found.file_matches()
    decision.make_new = item is None or decision.replace
    if decision.make_new:
        decision.changed = True
        decision.action = "replaced" if decision.replace else ("imported" if mode == "import" else "created")
        return decision
    decision.tags_to_set, decision.tags_to_remove = tag_changes(api_tags(item), decision.tags, options.purge_tags)
    if decision.tags_to_set or decision.tags_to_remove:
        decision.changed = True
        if decision.action == "unchanged":
            decision.action = "updated"
    current_group = item.get("ResourceGroupId")
    if decision.group and current_group and decision.group != current_group:
        decision.warnings.append(f"key pair {found.name} is in resource group {current_group}, not {decision.group}; "
                                 "this module does not move key pairs between resource groups")
    return decision


def _mismatch_policy(what: str, hint: str, policy: str, decision: Decision) -> bool:
    """Apply on_mismatch; True when the key pair is to be replaced."""
    if policy == "fail":
        raise KeypairError(f"{what}; {hint}")
    if policy == "keep":
        decision.action = "kept"
        decision.warnings.append(f"{what}; kept as it is (on_mismatch=keep)")
        return False
    return True


def judge_existing(found: Found, mode: str, policy: str, decision: Decision) -> bool:
    """Whether the existing key pair must be replaced (never a silent 'unchanged' when its
    private key is not where the task says it is)."""
    name, item = found.name, found.item
    if found.marked and not found.file_matches():
        decision.warnings.append(
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
            decision.warnings.append(f"the API returned no public key for {name}; it cannot be compared and is left "
                                     "as it is")
        if verdict is not False:
            return False
        what = (f"key pair {name} exists with another public key ({current_print}) than the one wanted "
                f"({found.compare_with.fingerprint('sha256')})")
        return _mismatch_policy(what, switch, policy, decision)
    if mode == "local":
        what = (f"key pair {name} exists with another public key ({current_print}) than the one wanted (a new key: "
                "private_key_path does not exist)")
        return _mismatch_policy(what, switch, policy, decision)
    if found.path:
        what = (f"key pair {name} exists ({current_print}), but private_key_path {found.path} does not exist, and its "
                "private key cannot be fetched again: ECS returns it once, when it creates the key pair")
        hint = ("point private_key_path to the file that holds its private key, set on_mismatch=replace to delete it "
                "and create a new one whose private key is saved there, or on_mismatch=keep to leave it")
        return _mismatch_policy(what, hint, policy, decision)
    decision.warnings.append(
        f"key pair {name} exists and was generated by the cloud; its private key was returned only when it "
        "was created and cannot be fetched again, so it is neither written nor returned")
    return False


def refuse_new(found: Found, options: KeypairOptions, mode: str) -> None:
    """What stops a new key pair: instances that hold the old one, a file in the way."""
    if found.holders and not options.detach_instances:
        ids = ", ".join(instance_ids(found.holders)[:10])
        raise KeypairError(f"key pair {found.name} is attached to {len(found.holders)} instance(s) ({ids}); set "
                           "detach_instances=true to detach it, replace it and attach the new key pair to them again")
    if mode == "cloud" and found.file_exists and not options.overwrite_private_key:
        orphan = (f"key pair {found.name} exists without its private key (the answer of an earlier CreateKeyPair was "
                  "lost) and must be created again, but " if found.marked else "")
        raise KeypairError(f"{orphan}private_key_path {found.path} exists already; set overwrite_private_key=true to "
                           "replace it with the private key of the new key pair")


# ---------------------------------------------------------------------------------------------
# Act.


@dataclass
class Made:
    """What the writes of one run did, as they go."""

    changes: Changes = field(default_factory=Changes)
    warnings: List[str] = field(default_factory=list)
    private_key: Optional[str] = field(default=None, repr=False)
    key_pair_id: Optional[str] = None
    public_key: Optional[PublicKey] = None
    public_key_file: Optional[str] = None


def act_present(client: Any, options: KeypairOptions, check_mode: bool, mode: str, found: Found,
                decision: Decision) -> Dict[str, Any]:
    """Carry the decision out (unless in check mode) and read the key pair back into the result."""
    made = Made()
    before = diff_view(found.item)
    if decision.clear_marker and not check_mode and found.marker is not None:
        found.marker.remove()
    item = found.item
    group = decision.group
    if decision.make_new:
        tags = decision.tags if decision.tags is not None else (api_tags(item) if item else None)
        if item is not None and group is None:
            group = item.get("ResourceGroupId") or None
        if check_mode:
            made.public_key = found.desired
            after: Optional[Dict[str, Any]] = diff_view(None, made.public_key, tags or {}, group)
        else:
            after = None
            _make_key_pair(client, options, mode, found, tags, group, made)
    else:
        after = _tag_existing(client, options, check_mode, found, decision, made)
    try:
        return _present_result(client, options, check_mode, mode, found, decision, made, before, after)
    except EcsApiError as error:
        if not made.changes:
            raise
        # The job is done; only reading it back failed. The changes must not be hidden by it.
        raise PartialChangeError(f"reading key pair {found.name} back failed: {error}; "
                                 f"{describe_changes(made.changes.items)}; running the task again reads it",
                                 changes=made.changes.items, error=error) from None


def _tag_existing(client: Any, options: KeypairOptions, check_mode: bool, found: Found, decision: Decision,
                  made: Made) -> Optional[Dict[str, Any]]:
    """The tags of a key pair that stays; returns the diff's 'after' in check mode."""
    item = found.item or {}
    if decision.tags_to_set or decision.tags_to_remove:
        if not check_mode:
            apply_tags(client, found.name, api_tags(item), decision.tags_to_set, decision.tags_to_remove, made.changes)
    if not check_mode:
        return None
    merged = api_tags(item)
    if decision.tags is not None:
        merged = dict(decision.tags) if options.purge_tags else dict(merged, **decision.tags)
    return diff_view(item, tags=merged)


def _present_result(client: Any, options: KeypairOptions, check_mode: bool, mode: str, found: Found,
                    decision: Decision, made: Made, before: Dict[str, Any],
                    after: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    name, item, tags, group = found.name, found.item, decision.tags, decision.group
    if check_mode:
        final_item = None if decision.make_new else item
    else:
        # Read back what the service holds now, so the result is its reading, not our wish.
        final_item = get_key_pair(client, name) if decision.changed else item
        after = diff_view(final_item) if final_item else diff_view(None, made.public_key, tags or {}, group)
    listed = None
    if options.include_instances:
        listed = [instance_summary(i) for i in instances_holding(client, name)] if final_item else []
    key_pair = describe_result(final_item, name=name, public_key=made.public_key or found.desired or found.local_key,
                               key_pair_id=made.key_pair_id, private_key_path=found.path if mode != "import" else None,
                               instances=listed, fallback_group=group,
                               fallback_tags=tags if decision.make_new and tags is not None
                               else (api_tags(item) if item else {}))
    if check_mode and not decision.make_new and after is not None:
        key_pair["tags"] = after["tags"]
    result: Dict[str, Any] = {"changed": decision.changed, "action": decision.action, "key_pair": key_pair,
                              "diff": {"before": before, "after": after if after is not None else before},
                              # A later ecs_keypair_attach in the same check run plans against it (key_pair_planned).
                              "would_create": check_mode and decision.make_new and item is None}
    if made.private_key is not None:
        result["private_key"] = made.private_key
    if made.public_key_file is not None:
        result["public_key_file"] = made.public_key_file
    warnings = decision.warnings + made.warnings
    if warnings:
        result["warnings"] = warnings
    return result


def _make_key_pair(client: Any, options: KeypairOptions, mode: str, found: Found,
                   tags: Optional[Mapping[str, str]], group: Optional[str], made: Made) -> None:
    """The writes of a new key pair: files first, then the API, in the safe order.

    Every step that changes something is written into made.changes; a failure after one of them
    is a PartialChangeError that lists them (and a replacement puts the old key pair back).
    """
    path, desired = found.path, found.desired
    target = PrivateKeyFile(path) if path and mode in ("cloud", "local") and (mode == "cloud" or desired is None) else None
    changes = made.changes
    replacement = None
    if found.item is not None:
        replacement = Replacement(client, found.name, found.item, instance_ids(found.holders), changes,
                                  restore=not found.marked)
    try:
        if mode == "local" and desired is None:
            # The private key goes to disk before the public key goes to the cloud: if the import
            # fails, the next run finds the file and imports the same key.
            public_file = public_key_file_path(path) if path and options.write_public_key else None
            if public_file:
                check_public_key_target(public_file)  # before the first write
            private, desired = generate_key(options.key_type or "rsa", options.key_size, options.passphrase,
                                            found.name)
            if target is None:  # pragma: no cover - check_options requires private_key_path
                raise KeypairError("generate=local needs private_key_path")
            target.commit(private)
            target = None
            changes.add(f"wrote a new private key to {path}")
            if public_file:
                # As ssh-keygen leaves a new key: its public half beside it, the name as comment.
                write_public_key_file(public_file, desired.line())
                changes.add(f"wrote its public key to {public_file}")
                made.public_key_file = public_file
        if replacement is not None:
            replacement.take_down()
        try:
            _put_new(client, options, mode, found, desired, tags, group, target, made, replacement is not None)
            target = None
        except (EcsApiError, KeypairError) as failure:
            if replacement is None:
                raise
            replacement.put_back(failure, wanted=desired if mode != "cloud" else None)
            made.public_key = desired  # the new key pair landed after all
        if replacement is not None and replacement.ids:
            replacement.attach_new()
            made.warnings.append(f"the new key pair was attached to {len(replacement.ids)} instance(s); it takes "
                                 "effect when each instance restarts")
    except (EcsApiError, KeypairError) as failure:
        if not changes:
            raise
        raise PartialChangeError(f"{failure}; {describe_changes(changes.items)}", changes=changes.items,
                                 error=failure if isinstance(failure, EcsApiError) else None) from None
    finally:
        if target is not None:
            target.discard()


def _put_new(client: Any, options: KeypairOptions, mode: str, found: Found, desired: Optional[PublicKey],
             tags: Optional[Mapping[str, str]], group: Optional[str], target: Optional[PrivateKeyFile], made: Made,
             after_delete: bool) -> None:
    """CreateKeyPair (private key saved) or ImportKeyPair; notes the change."""
    name = found.name
    if mode != "cloud":
        if desired is None:  # pragma: no cover - import and local modes always have a key here
            raise KeypairError("no public key to import")
        reply = import_key(client, name, desired, tags, group, after_delete=after_delete)
        made.key_pair_id = reply.get("KeyPairId")
        made.public_key = desired
        made.changes.add(f"imported key pair {name} ({desired.fingerprint('sha256')})")
        return
    marker = found.marker if target is not None else None
    creator = CloudCreate(client, name, tags, group, target, after_delete=after_delete, marker=marker)
    reply, private_text = creator.run()
    made.key_pair_id = reply.get("KeyPairId")
    made.public_key = public_key_of_private_text(private_text)
    if options.return_private_key:
        made.private_key = private_text
    saved = f", its private key saved to {found.path}" if target is not None else ""
    if creator.unconfirmed and marker is not None:
        saved += (f" (after lost answers it could not be read back: the marker {marker.path} stays, and the "
                  "next run checks the key pair against the file)")
        made.warnings.append(f"key pair {name} was created after lost answers and could not be read back; the "
                             f"marker {marker.path} stays until a run confirms it")
    made.changes.add(f"created key pair {name}{saved}")

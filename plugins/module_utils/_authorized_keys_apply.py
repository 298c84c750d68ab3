# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: desired-state logic of the authorized_keys modules.

Turns the ``keys`` option into validated entries, works out the new file content from the
current one (``plan``), and runs one task end to end (``apply``): read without a lock, plan,
and only when something changes take the lock, read again, plan again and write once. The
second read matters: another run may have written in between, and its keys must survive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import (
    AuthorizedKeys,
    AuthorizedKeysError,
    KeyLine,
    check_comment,
    parse_key_line,
    validate_options,
    with_fields,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import quote_input
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_display import display_text
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file import KeysFile
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file_checks import (
    ContextHook,
    check_home_chain,
    preflight_write,
    read_keys_file,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_target import Target, fingerprint

ENTRY_FIELDS = frozenset(("key", "options", "comment", "state", "replaces"))


class KeysInputError(SshKeysError):
    """Bad ``keys`` input; the message names the entry by index, never by content."""


@dataclass
class Entry:
    """One wanted key. ``options``/``comment`` of ``None`` mean "leave as the file has it"."""

    index: str
    line: KeyLine
    state: str = "present"
    options: Optional[str] = None
    comment: Optional[str] = None
    replaces: Optional[KeyLine] = None

    @property
    def identity(self) -> str:
        return self.line.identity()


# --------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------

def _parse(text: Any, where: str) -> KeyLine:
    if not isinstance(text, str):
        raise KeysInputError(f"{where}: a key must be a string, not {type(text).__name__}")
    try:
        return parse_key_line(text)
    except AuthorizedKeysError as exc:
        raise KeysInputError(f"{where}: {exc}") from None


def _optional_text(value: Any, where: str, name: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise KeysInputError(f"{where}: {name} must be a string")
    if "\n" in value or "\r" in value:
        raise KeysInputError(f"{where}: {name} must be on one line")
    return value.strip()


def _comment(value: Any, where: str) -> Optional[str]:
    comment = _optional_text(value, where, "comment")
    try:
        check_comment(comment)
    except AuthorizedKeysError as exc:
        raise KeysInputError(f"{where}: {exc}") from None
    return comment


def _entry_from_dict(item: Dict[str, Any], where: str) -> Entry:
    unknown = sorted(set(item) - ENTRY_FIELDS, key=str)
    if unknown:
        raise KeysInputError(f"{where}: unknown field(s) {', '.join(quote_input(name) for name in unknown)}; "
                             f"known: {', '.join(sorted(ENTRY_FIELDS))}")
    if "key" not in item:
        raise KeysInputError(f"{where}: 'key' is required")
    line = _parse(item["key"], where)
    state = item.get("state") or "present"
    if state not in ("present", "absent"):
        raise KeysInputError(f"{where}: state must be present or absent")
    options = _optional_text(item.get("options"), where, "options")
    if options:
        try:
            validate_options(options)
        except AuthorizedKeysError as exc:
            raise KeysInputError(f"{where}: {exc}") from None
    elif options is None and line.options:
        options = line.options
    # Only an explicit comment is enforced; the key line's own comment is used for new lines.
    comment = _comment(item.get("comment"), where)
    replaces = None
    if item.get("replaces") is not None:
        if state != "present":
            raise KeysInputError(f"{where}: 'replaces' needs state present")
        replaces = _parse(item["replaces"], f"{where}.replaces")
        if replaces.identity() == line.identity():
            raise KeysInputError(f"{where}: a key cannot replace itself")
    return Entry(index=where, line=line, state=state, options=options, comment=comment, replaces=replaces)


def _entries_from_text(text: str, where: str) -> List[Entry]:
    """The keys of a string item: one key line, or many lines with ``#`` comments and blanks.

    An item that holds no key at all is an error, not an empty wish: it is what an empty
    template, a ``lookup('file')`` of an empty file or a commented-out key renders, and with
    exclusive=true it would otherwise remove every key from the file.
    """
    if "\x00" in text:
        raise KeysInputError(f"{where}: a key must not hold a NUL character")
    entries = []
    lines = text.splitlines()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        label = where if len(lines) == 1 else f"{where} line {number}"
        line = _parse(raw, label)
        entries.append(Entry(index=label, line=line, options=line.options))
    if not entries:
        what = "empty" if not text.strip() else "only comments"
        raise KeysInputError(f"{where} holds no key (it is {what}); leave the item out, or check the template "
                             "or file that made it")
    return entries


def normalise_keys(keys: List[Any]) -> List[Entry]:
    """Validate the ``keys`` option. A string may hold several lines (one key each, ``#`` comments
    and blank lines ignored); a dict is one key with ``options``, ``comment``, ``state`` and
    ``replaces``. Raises ``KeysInputError`` naming the entry (``keys[3]``), never its text."""
    if keys is None:
        return []
    if not isinstance(keys, list):
        raise KeysInputError("keys must be a list")
    entries: List[Entry] = []
    for position, item in enumerate(keys):
        where = f"keys[{position}]"
        if isinstance(item, dict):
            entries.append(_entry_from_dict(item, where))
        elif isinstance(item, str):
            entries.extend(_entries_from_text(item, where))
        else:
            raise KeysInputError(f"{where}: must be a key line or a dict with 'key'")
    _check_conflicts(entries)
    return _merge_duplicates(entries)


def _merge_duplicates(entries: List[Entry]) -> List[Entry]:
    """One entry per (key, options); a comment given twice must agree."""
    merged: Dict[Tuple[str, str, Optional[str]], Entry] = {}
    for entry in entries:
        slot = (entry.identity, entry.state, entry.options)
        seen = merged.get(slot)
        if seen is None:
            merged[slot] = entry
            continue
        if entry.comment is not None and seen.comment is not None and entry.comment != seen.comment:
            raise KeysInputError(f"{entry.index}: the same key and options are listed as {seen.index} "
                                 "with another comment")
        if seen.comment is None:
            seen.comment = entry.comment
        if entry.replaces is not None:
            if seen.replaces is not None and seen.replaces.identity() != entry.replaces.identity():
                raise KeysInputError(f"{entry.index}: the same key is listed as {seen.index} replacing another key")
            seen.replaces = entry.replaces
    return list(merged.values())


def _check_conflicts(entries: List[Entry]) -> None:
    present = {e.identity: e.index for e in entries if e.state == "present"}
    for entry in entries:
        if entry.state == "absent" and entry.identity in present:
            raise KeysInputError(f"{entry.index}: the same key is also wanted present ({present[entry.identity]})")
        if entry.replaces is not None and entry.replaces.identity() in present:
            raise KeysInputError(
                f"{entry.index}: the key it replaces is also wanted present ({present[entry.replaces.identity()]})")


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------

@dataclass
class Plan:
    """The new file and what changed, by SHA256 fingerprint."""

    model: AuthorizedKeys
    added: List[str] = field(default_factory=list)
    removed: List[str] = field(default_factory=list)
    changed: List[str] = field(default_factory=list)
    replaced: List[Dict[str, str]] = field(default_factory=list)
    removed_invalid_lines: List[int] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.removed_invalid_lines)


def _rebuild(line: KeyLine, options: Optional[str], comment: Optional[str]) -> KeyLine:
    # The key was checked when it was read or given; options and comment given by the task
    # were checked with the input, and those from the file stay as sshd reads them.
    return with_fields(line, options, comment)


def _apply_comment(model: AuthorizedKeys, line: KeyLine, entry: Entry, plan: Plan) -> KeyLine:
    if entry.comment is None or (line.comment or "") == entry.comment:
        return line
    new = model.replace_line(line, _rebuild(line, line.options, entry.comment or None))
    plan.changed.append(fingerprint(new))
    return new


def _replace(model: AuthorizedKeys, entry: Entry, plan: Plan, replace_missing: str) -> None:
    old_lines = model.find(entry.replaces.identity())
    new_lines = model.find(entry.identity)
    if not old_lines:
        if new_lines or replace_missing == "add":
            return  # already replaced earlier, or asked to add anyway: normal matching follows
        raise KeysInputError(
            f"{entry.index}: the key to replace ({fingerprint(entry.replaces)}) is not in the file, nor is the new "
            f"key ({fingerprint(entry.line)}); set replace_missing=add to add the new key anyway")
    for old in old_lines:
        plan.removed.append(fingerprint(old))
        options = entry.options if entry.options is not None else old.options
        if any((line.options or "") == (options or "") for line in model.find(entry.identity)):
            model.remove(old)  # the new key already has this line: just drop the old one
            continue
        comment = next(c for c in (entry.comment, entry.line.comment, old.comment, "") if c is not None)
        new = model.replace_line(old, _rebuild(entry.line, options, comment or None))
        plan.added.append(fingerprint(new))
        plan.replaced.append({"old": fingerprint(old), "new": fingerprint(new)})


def _match_group(model: AuthorizedKeys, identity: str, group: List[Entry], exclusive: bool, plan: Plan) -> None:
    """Make the lines of one key match the entries that name it (see the module docs)."""
    existing = model.find(identity)
    unmatched = list(existing)
    pending: List[Entry] = []

    def take(predicate) -> Optional[KeyLine]:
        for line in unmatched:
            if predicate(line):
                unmatched.remove(line)
                return line
        return None

    # Exact option matches first, then entries that leave options alone, then option rewrites.
    for entry in [e for e in group if e.options is not None]:
        line = take(lambda candidate, e=entry: (candidate.options or "") == e.options)
        if line is None:
            pending.append(entry)
        else:
            _apply_comment(model, line, entry, plan)
    for entry in [e for e in group if e.options is None]:
        line = take(lambda candidate: True)
        if line is None:
            pending.append(entry)
        else:
            _apply_comment(model, line, entry, plan)
    for entry in pending:
        line = take(lambda candidate: True) if entry.options is not None else None
        if line is not None:
            comment = entry.comment if entry.comment is not None else line.comment
            new = model.replace_line(line, _rebuild(line, entry.options or None, comment or None))
            plan.changed.append(fingerprint(new))
        else:
            comment = entry.comment if entry.comment is not None else entry.line.comment
            new = model.append(_rebuild(entry.line, entry.options or None, comment or None))
            plan.added.append(fingerprint(new))
    if exclusive:
        for line in unmatched:
            model.remove(line)
            plan.removed.append(fingerprint(line))


def plan(current: AuthorizedKeys, entries: List[Entry], exclusive: bool = False,
         replace_missing: str = "fail") -> Plan:
    """Apply ``entries`` to a copy of ``current``; the original model is not modified."""
    model = current.copy()
    result = Plan(model=model)
    for entry in entries:
        if entry.replaces is not None:
            _replace(model, entry, result, replace_missing)
    for entry in entries:
        if entry.state == "absent":
            for line in model.remove_key(entry.identity):
                result.removed.append(fingerprint(line))
    groups: Dict[str, List[Entry]] = {}
    for entry in entries:
        if entry.state == "present":
            groups.setdefault(entry.identity, []).append(entry)
    for identity, group in groups.items():
        _match_group(model, identity, group, exclusive, result)
    if exclusive:
        # Everything not listed goes, including lines we cannot read: sshd might read them.
        doomed = []
        for line in model.lines:
            if line.kind == "key" and line.identity() not in groups:
                doomed.append(line)
                result.removed.append(fingerprint(line))
            elif line.kind == "invalid":
                doomed.append(line)
                result.removed_invalid_lines.append(line.number or 0)
        model.remove_lines(doomed)
    return result


# --------------------------------------------------------------------------------------------
# Running one task
# --------------------------------------------------------------------------------------------

def check_exclusive(entries: List[Entry], exclusive: bool, allow_empty: bool) -> None:
    """exclusive=true with nothing to keep empties the file: only on explicit request."""
    if exclusive and not allow_empty and not any(entry.state == "present" for entry in entries):
        raise KeysInputError("exclusive=true with no key to keep would remove every key from the file; "
                             "set allow_empty=true if that is what you want")


def _result(target: Target, result: Plan, before: AuthorizedKeys, backup_file: Optional[str],
            mode_fixes: List[str], diff: bool) -> Dict[str, Any]:
    report = {
        "changed": result.has_changes or bool(mode_fixes),
        "path": target.path,
        "user": target.user,
        "added": result.added,
        "removed": result.removed,
        "changed_keys": result.changed,
        "replaced": result.replaced,
        "removed_invalid_lines": result.removed_invalid_lines,
        "fixed_modes": mode_fixes,
        "backup_file": backup_file,
    }
    if diff:
        # Only on request: showing a file means scanning every line for key material.
        report["diff"] = {"before": display_text(before), "after": display_text(result.model),
                          "before_header": target.path, "after_header": target.path}
    return report


def apply(target: Target, entries: List[Entry], exclusive: bool = False, manage_dir: bool = True,
          follow: bool = False, backup: bool = False, replace_missing: str = "fail",
          check_mode: bool = False, context_hook: Optional[ContextHook] = None, diff: bool = False) -> Dict[str, Any]:
    """Bring the keys file of ``target`` to the wanted state; returns the module result (with
    the file before and after as ``diff`` when asked)."""
    check_home_chain(target.path, target.home, target.uid)
    state = read_keys_file(target.path, follow=follow, owner_uid=target.uid)
    before = state.model()
    result = plan(before, entries, exclusive, replace_missing)
    fixes = state.mode_fixes(target.path)
    if not result.has_changes and not fixes:
        return _result(target, result, before, None, [], diff)
    preflight_write(target.path, follow, manage_dir, target.uid)
    if check_mode:
        return _result(target, result, before, None, fixes, diff)
    with KeysFile(target.path, owner=(target.uid, target.gid), create_dir=manage_dir, follow=follow,
                  context_hook=context_hook) as handle:
        # Read again under the lock: a concurrent run may have written since. Only when the
        # bytes differ is the plan made again (parsing is most of the cost on big files).
        locked_state = handle.read_state()
        if locked_state.data != state.data:
            before = locked_state.model()
            result = plan(before, entries, exclusive, replace_missing)
        fixes = locked_state.mode_fixes(handle.path)
        handle.fix_directory_mode()
        backup_file = None
        if result.has_changes or locked_state.file_unsafe:
            # A file others may write is written again, whatever else changes: the new file
            # gets the old mode less group and other write.
            backup_file = handle.write(result.model.render(), backup=backup and result.has_changes)
    return _result(target, result, before, backup_file, fixes, diff)

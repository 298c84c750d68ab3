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

import os
import pwd
import re
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
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_display import display_lines, display_text, shown
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file import ContextHook, KeysFile
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file_checks import (
    FileState,
    check_home_chain,
    preflight_write,
    read_keys_file,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import quote_input

ENTRY_FIELDS = frozenset(("key", "options", "comment", "state", "replaces"))
# A user name as useradd and sshd take it: no slash, colon, whitespace or control character.
_USER_NAME = re.compile(r"[^/:\s\x00-\x1f\x7f]{1,256}")


class KeysInputError(ValueError):
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


def fingerprint(line: KeyLine) -> str:
    key = line.public_key()
    return key.fingerprint("sha256") if key is not None else "unknown"


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

@dataclass
class Target:
    user: str
    uid: int
    gid: int
    home: str
    path: str


def _check_user(user: Any) -> str:
    if not isinstance(user, str) or not user:
        raise AuthorizedKeysError("user is required", reason="user")
    if not _USER_NAME.fullmatch(user):
        raise AuthorizedKeysError(f"user {quote_input(user)} is not a user name (it holds a slash, colon, "
                                  "whitespace or a control character)", reason="user")
    return user


def _expand_home(path: str, user: str, home: str) -> str:
    """``~`` and ``~/...`` (and ``~user/...`` for the managed user) against the managed user's
    home: the module takes the raw string, because Ansible's own expansion would use the home
    of whoever runs the module (root, under become)."""
    head, sep, rest = path.partition("/")
    if head not in ("~", f"~{user}"):
        raise AuthorizedKeysError(f"path {quote_input(path)} names another user's home; only ~ (the home of "
                                  f"{user}) is resolved here: give an absolute path", reason="path")
    if not os.path.isabs(home):
        raise AuthorizedKeysError(f"user {user} has no absolute home directory ({quote_input(home)}), so ~ "
                                  "cannot be resolved: give an absolute path", reason="path")
    return os.path.join(home, rest) if sep else home


def _check_path(path: Any) -> str:
    if not isinstance(path, str) or not path.strip():
        raise AuthorizedKeysError("path is empty", reason="path")
    if "\x00" in path:
        raise AuthorizedKeysError("path holds a NUL character", reason="path")
    if path != path.strip():
        raise AuthorizedKeysError(f"path {quote_input(path)} starts or ends with whitespace", reason="path")
    if path.endswith("/") or os.path.basename(os.path.normpath(path)) in ("", ".", ".."):
        raise AuthorizedKeysError(f"path {quote_input(path)} names a directory; give the path of the keys file",
                                  reason="path")
    return path


def resolve_target(user: Any, path: Optional[str]) -> Target:
    """The user's ids and the keys file path (default ``~user/.ssh/authorized_keys``)."""
    user = _check_user(user)
    if path is not None:
        path = _check_path(path)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise AuthorizedKeysError(f"user {user!r} does not exist on this host", reason="user") from None
    home = entry.pw_dir
    if path is None:
        path = _expand_home("~/.ssh/authorized_keys", user, home)
    elif path.startswith("~"):
        path = _expand_home(path, user, home)
    if not os.path.isabs(path):
        raise AuthorizedKeysError("path must be absolute (or start with ~/ for the user's home)", reason="path")
    if os.path.normpath(path) == os.path.normpath(home):
        raise AuthorizedKeysError(f"path {quote_input(path)} names the home directory; give the path of the keys "
                                  "file", reason="path")
    return Target(user=user, uid=entry.pw_uid, gid=entry.pw_gid, home=home, path=os.path.normpath(path))


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


def selinux_hook(module: Any) -> Optional[ContextHook]:
    """A context hook built from AnsibleModule's SELinux helpers, or None where SELinux is off."""
    try:
        enabled = module.selinux_enabled()
    except Exception:  # pylint: disable=broad-except  # no selinux bindings: nothing to keep
        return None
    if not enabled:
        return None

    def hook(temp: str, final: str, existed: bool) -> None:
        context = module.selinux_context(final) if existed else module.selinux_default_context(final)
        module.set_context_if_different(temp, context, False)

    return hook


def key_report(line: KeyLine) -> Dict[str, Any]:
    """What authorized_keys_info says about one key line (comment and options as output may
    show them: key material withheld, control characters escaped)."""
    key = line.public_key()
    weak: List[str] = []
    info: Dict[str, Any] = {
        "line": line.number,
        "type": line.key_type,
        "comment": shown(line.comment),
        "options": [shown(option) for option in line.option_list()],
        "options_text": shown(line.options),
        "identity": line.identity(),
    }
    if key is None:
        info.update(bits=None, fingerprint_md5=None, fingerprint_sha256=None, valid=False,
                    weak=True, weak_reasons=["the key data is not a valid public key"])
        return info
    if key.family == "DSA":
        weak.append("DSA keys are disabled in current OpenSSH")
    if key.family == "RSA" and (key.bits or 0) < 2048:
        weak.append(f"RSA key of {key.bits} bits (under 2048)")
    info.update(
        bits=key.bits,
        family=key.family,
        curve=key.curve,
        is_certificate=key.is_certificate,
        cert_authority=any(o.lower() == "cert-authority" for o in line.option_list()),
        fingerprint_md5=key.fingerprint("md5"),
        fingerprint_sha256=key.fingerprint("sha256"),
        valid=True,
        weak=bool(weak),
        weak_reasons=weak,
    )
    return info


def _mode_problems(path: str, state: FileState) -> List[str]:
    """Why sshd (StrictModes) would ignore the file, as authorized_keys_info reports it."""
    return [f"{where} can be written by group or others (mode {mode:04o}): sshd ignores the keys, and "
            "anyone who can write there can add one" for where, mode in state.unsafe(path)]


def inspect(target: Target, follow: bool = False) -> Dict[str, Any]:
    """Everything authorized_keys_info returns for one user's file."""
    state = read_keys_file(target.path, follow=follow, owner_uid=target.uid)
    model = state.model()
    keys = [key_report(line) for line in model.keys()]
    invalid = [{"line": line.number, "problem": line.problem, "looks_private": item.withheld,
                "text": None if item.withheld else item.text}
               for line, item in zip(model.lines, display_lines(model)) if line.kind == "invalid"]
    for report in invalid:
        if report["looks_private"]:
            report["problem"] = "the line may hold private key material (content withheld)"
    return {
        "changed": False,
        "path": target.path,
        "user": target.user,
        "exists": state.exists,
        "owner_uid": state.uid,
        "mode": None if state.mode is None else f"{state.mode:04o}",
        "problems": _mode_problems(target.path, state),
        "public_keys": keys,
        "invalid_lines": invalid,
        "weak_keys": list(dict.fromkeys(k["fingerprint_sha256"] or f"line {k['line']}" for k in keys if k["weak"])),
    }

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the host-side steps of authorized_key_rotate.

The action plugin on the controller drives a rotation in steps, each one run of the host module
and each one locked read-modify-write of the keys file:

``add``
    put the new key next to the first line of the old key (with that line's options unless told
    otherwise), after copying the file as it was to a backup next to it (mode 0600, kept only for
    the run): the controller gets the backup's path, never the file's content;
``remove_old``
    after the new key has logged in, remove every line of the old key(s), and the run's backup
    unless a later step may still need it;
``restore``
    after any failure, put the file back as it was, from the run's backup, and remove it;
``forget``
    remove the run's backup once nothing can fail any more.

Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import (
    AuthorizedKeys,
    AuthorizedKeysError,
    KeyLine,
    parse_key_line,
    with_fields,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_display import display_text
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file import KeysFile
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file_checks import (
    ContextHook,
    check_home_chain,
    decode,
    read_keys_file,
)

from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_target import Target, fingerprint, resolve_target

PHASES = ("add", "remove_old", "restore", "forget")

_SHA256_FP = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
_MD5_FP = re.compile(r"(?:MD5:)?[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){15}")


class RotateError(SshKeysError):
    """Bad input or a state the rotation must not go on from. Messages never quote key text."""

    def __init__(self, message: str, reason: str = "input") -> None:
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Input: the old key(s) and the new key
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OldKey:
    """One ``old_key`` item: a key line (matched by type and key data) or a fingerprint."""

    label: str
    identity: Optional[str] = None
    fingerprint: Optional[str] = None
    algorithm: Optional[str] = None

    def matches(self, line: KeyLine) -> bool:
        if line.kind != "key":
            return False
        if self.identity is not None:
            return line.identity() == self.identity
        key = line.public_key()
        return key is not None and key.fingerprint(self.algorithm) == self.fingerprint


def parse_old_key(value: Any, label: str) -> OldKey:
    """A fingerprint (``SHA256:...``, ``MD5:aa:bb:...`` or bare ``aa:bb:...``) or a key line."""
    if not isinstance(value, str):
        raise RotateError(f"{label} must be a string, not {type(value).__name__}")
    text = value.strip()
    if _SHA256_FP.fullmatch(text):
        return OldKey(label=label, fingerprint=text, algorithm="sha256")
    if _MD5_FP.fullmatch(text):
        digest = text[4:] if text.startswith("MD5:") else text
        return OldKey(label=label, fingerprint="MD5:" + digest.lower(), algorithm="md5")
    try:
        line = parse_key_line(text)
    except AuthorizedKeysError as exc:
        raise RotateError(f"{label} is neither a SHA256/MD5 fingerprint nor a public key line: {exc}") from None
    return OldKey(label=label, identity=line.identity())


def parse_old_keys(values: Sequence[Any]) -> List[OldKey]:
    if not values:
        raise RotateError("old_key needs at least one key line or fingerprint")
    return [parse_old_key(value, f"old_key[{index}]") for index, value in enumerate(values)]


def parse_new_key(value: Any, keep_options: bool) -> KeyLine:
    """The new key line. Options in it are only allowed when the old key's are not kept."""
    if not isinstance(value, str):
        raise RotateError("new_key must be a string")
    try:
        line = parse_key_line(value)
    except AuthorizedKeysError as exc:
        raise RotateError(f"new_key: {exc}") from None
    if line.options and keep_options:
        raise RotateError("new_key carries options, but keep_options is true (the old key's options are used): "
                          "set keep_options to false to use the options given with new_key")
    return line


def check_distinct(new: KeyLine, old_keys: Sequence[OldKey]) -> None:
    """A rotation to the same key would remove the only key it adds."""
    for old in old_keys:
        if old.matches(new):
            raise RotateError(f"new_key is the same key as {old.label}: there is nothing to rotate")


# --------------------------------------------------------------------------------------------
# Planning, on a model in memory
# --------------------------------------------------------------------------------------------

def old_lines(model: AuthorizedKeys, old_keys: Sequence[OldKey]) -> List[KeyLine]:
    return [line for line in model.lines if any(old.matches(line) for old in old_keys)]


def with_new_key(model: AuthorizedKeys, new: KeyLine, old_keys: Sequence[OldKey],
                 keep_options: bool) -> Optional[KeyLine]:
    """Insert the new key right after the first old line (in ``model``); returns the new line.

    Nothing is inserted (``None``) when the new key is already in the file: whatever options it
    has there were put there on purpose, or by an earlier run that stopped half way.
    """
    if model.find(new.identity()):
        return None
    found = old_lines(model, old_keys)
    if not found:
        return None
    options = found[0].options if keep_options else new.options
    line = with_fields(new, options, new.comment)
    return model.insert(model.index(found[0]) + 1, line)


def without_old_keys(model: AuthorizedKeys, old_keys: Sequence[OldKey]) -> List[KeyLine]:
    """Remove every line of the old key(s) from ``model``; returns the removed lines."""
    removed = old_lines(model, old_keys)
    for line in removed:
        model.remove(line)
    return removed


def has_forced_command(line: Optional[KeyLine]) -> bool:
    """A ``command=`` option runs instead of the login check's own command."""
    if line is None:
        return False
    return any(option.lower().startswith("command=") for option in line.option_list())


def restored_text(current: AuthorizedKeys, original: AuthorizedKeys, written: Sequence[str],
                  new: KeyLine, old_keys: Sequence[OldKey]) -> Optional[str]:
    """What the file must become to undo this rotation; ``None`` if it is already as it was.

    When the file is exactly what this rotation wrote, the original comes back byte for byte.
    When someone else changed it in between, their change is kept: only this rotation's own
    edits are undone (old key lines put back, the new key removed if it was not there before).
    """
    text = current.render()
    if text == original.render():
        return None
    if sha256(text) in written:
        return original.render()
    merged = current.copy()
    for line in old_lines(original, old_keys):
        if not any(candidate.raw == line.raw for candidate in merged.lines):
            merged.append(line)
    if not original.find(new.identity()):
        merged.remove_key(new.identity())
    result = merged.render()
    return None if result == text else result


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


# --------------------------------------------------------------------------------------------
# The steps, on the file
# --------------------------------------------------------------------------------------------

def _diff(path: str, before: AuthorizedKeys, after: AuthorizedKeys) -> Dict[str, str]:
    return {"before": display_text(before), "after": display_text(after), "before_header": path,
            "after_header": path}


def _read(target: Target, follow: bool) -> AuthorizedKeys:
    check_home_chain(target.path, target.home, target.uid)
    state = read_keys_file(target.path, follow=follow, owner_uid=target.uid)
    if not state.exists:
        raise RotateError(f"{target.path} does not exist: there is no old key to rotate", reason="missing")
    return state.model()


def _open(target: Target, follow: bool, context_hook: Optional[ContextHook]) -> KeysFile:
    return KeysFile(target.path, owner=(target.uid, target.gid), follow=follow, context_hook=context_hook)


def step_add(target: Target, new: KeyLine, old_keys: Sequence[OldKey], keep_options: bool = True,
             backup: bool = False, follow: bool = False, check_mode: bool = False,
             context_hook: Optional[ContextHook] = None, diff: bool = False) -> Dict[str, Any]:
    """Add the new key next to the old one, or say that the rotation is already done.

    ``outcome`` in the result: ``done`` (new key present, no old key: nothing to do), ``added``
    (new key written next to the old one; in check mode: would be) or ``both`` (both were
    already there, from a run that stopped half way: nothing written now). ``run_backup`` is
    the path of the copy ``restore`` puts back; ``planned`` (with ``diff`` only: it shows the
    file, as output may show it) the diff of the whole rotation (add and remove).
    """
    before = _read(target, follow)
    if check_mode:
        result = _plan_add(target, before, new, old_keys, keep_options, diff)
        result.pop("_after_add", None)
        return result
    with _open(target, follow, context_hook) as handle:
        before = handle.read()  # again, under the lock
        result = _plan_add(target, before, new, old_keys, keep_options, diff)
        after_add = result.pop("_after_add", None)
        if result["outcome"] != "done":
            result["run_backup"] = handle.backup(hidden=True)
        if result["outcome"] == "added":
            result["backup_file"] = handle.write(after_add, backup=backup)
            result["written"] = sha256(after_add)
        return result


def _plan_add(target: Target, before: AuthorizedKeys, new: KeyLine, old_keys: Sequence[OldKey],
              keep_options: bool, diff: bool = False) -> Dict[str, Any]:
    found = old_lines(before, old_keys)
    new_present = bool(before.find(new.identity()))
    result: Dict[str, Any] = {"path": target.path, "user": target.user, "backup_file": None, "written": None,
                              "run_backup": None, "new_key": fingerprint(new),
                              "old_keys": sorted({fingerprint(line) for line in found})}
    if not found:
        if new_present:
            result.update(outcome="done", changed=False, forced_command=has_forced_command(before.find(new.identity())[0]))
            return result
        labels = ", ".join(old.label for old in old_keys)
        raise RotateError(f"none of the old keys ({labels}) is in {target.path}, and neither is the new key: "
                          "there is nothing to rotate (check old_key, user and path)", reason="missing")
    after_add = before.copy()
    added = with_new_key(after_add, new, old_keys, keep_options)
    final = after_add.copy()
    without_old_keys(final, old_keys)
    placed = added if added is not None else before.find(new.identity())[0]
    result.update(
        outcome="added" if added is not None else "both",
        changed=True,
        forced_command=has_forced_command(placed),
        _after_add=after_add.render(),
    )
    if diff:
        # Only on request: the module's raw answer shows at -vvv, and with it any file it carries.
        result["planned"] = _diff(target.path, before, final)
    return result


def step_remove_old(target: Target, new: KeyLine, old_keys: Sequence[OldKey], backup: bool = False,
                    follow: bool = False, context_hook: Optional[ContextHook] = None,
                    run_backup: Optional[str] = None) -> Dict[str, Any]:
    """Remove the old key(s), but only while the new key is still in the file; then the run's
    backup, when given (nothing after this step can need it)."""
    with _open(target, follow, context_hook) as handle:
        before = handle.read()
        if not before.find(new.identity()):
            raise RotateError(f"the new key is no longer in {target.path} (changed by someone else since it was "
                              "added): the old key is left in place", reason="conflict")
        after = before.copy()
        removed = without_old_keys(after, old_keys)
        backup_file = None
        written = None
        if removed:
            backup_file = handle.write(after.render(), backup=backup)
            written = sha256(after.render())
        if run_backup:
            handle.remove_backup(run_backup)
    return {"path": target.path, "changed": bool(removed), "removed": [fingerprint(line) for line in removed],
            "backup_file": backup_file, "written": written}


def step_restore(target: Target, run_backup: str, written: Sequence[str], new: KeyLine,
                 old_keys: Sequence[OldKey], follow: bool = False,
                 context_hook: Optional[ContextHook] = None) -> Dict[str, Any]:
    """Undo this rotation's edits (see ``restored_text``) from the run's backup, then remove it.

    The removal step deletes the run's backup in the same locked step as its write, so a backup
    that is gone while the new key is in the file and no old key is left means that step
    completed (only its answer was lost): then there is nothing to undo (``completed``).
    """
    with _open(target, follow, context_hook) as handle:
        current = handle.read()
        if not handle.has_backup(run_backup):
            if current.find(new.identity()) and not old_lines(current, old_keys):
                return {"path": target.path, "changed": False, "restored": "completed"}
            raise RotateError(f"the backup {run_backup} of this rotation is gone and the file is not rotated: "
                              "check the file", reason="missing")
        original = decode(handle.read_backup(run_backup))
        text = restored_text(current, AuthorizedKeys.parse(original), written, new, old_keys)
        if text is not None:
            handle.write(text)
        handle.remove_backup(run_backup)
    if text is None:
        return {"path": target.path, "changed": False, "restored": "unchanged"}
    return {"path": target.path, "changed": True, "restored": "exact" if text == original else "merged"}


def step_forget(target: Target, run_backup: str, follow: bool = False) -> Dict[str, Any]:
    """Remove the run's backup (the rotation is complete)."""
    with _open(target, follow, None) as handle:
        handle.remove_backup(run_backup)
    return {"path": target.path, "changed": False}


# --------------------------------------------------------------------------------------------
# Options (shared by the module and its action plugin, so both check the same things)
# --------------------------------------------------------------------------------------------

def user_argument_spec() -> Dict[str, Any]:
    """The options a task may set; the action plugin validates them on the controller."""
    return dict(
        user=dict(type="str"),
        path=dict(type="str"),
        old_key=dict(type="list", elements="str", required=True, no_log=False),
        new_key=dict(type="str", required=True, no_log=False),
        new_private_key_path=dict(type="path", no_log=False),
        verify=dict(type="bool", default=True),
        accept_lockout_risk=dict(type="bool", default=False),
        verify_old_key_rejected=dict(type="bool", default=False),
        old_private_key_path=dict(type="path", no_log=False),
        keep_options=dict(type="bool", default=True),
        backup=dict(type="bool", default=False),
        follow=dict(type="bool", default=False),
        verify_host=dict(type="str"),
        verify_port=dict(type="int"),
        verify_user=dict(type="str"),
        verify_ssh_args=dict(type="list", elements="str", default=[]),
        verify_timeout=dict(type="int", default=10),
    )


# Set by the action plugin only: which step to run, and what the later steps need (the path of
# the run's backup on the host, and the hashes of what this rotation wrote; never file content).
INTERNAL_OPTIONS = ("_phase", "_run_backup", "_written")


def module_argument_spec() -> Dict[str, Any]:
    spec = user_argument_spec()
    spec.update(
        _phase=dict(type="str", choices=list(PHASES)),
        _run_backup=dict(type="str"),
        _written=dict(type="list", elements="str", default=[]),
    )
    return spec


@dataclass(frozen=True)
class StepOptions:
    """What one run of the host module is told (the task's options the host needs, and the
    action plugin's internal ones): named values, so nothing below the module reads its params."""

    phase: Optional[str]
    user: Optional[str]
    new_key: Any
    old_key: Sequence[Any] = ()
    path: Optional[str] = None
    keep_options: bool = True
    backup: bool = False
    follow: bool = False
    run_backup: Optional[str] = None
    written: Sequence[str] = ()

    @classmethod
    def from_params(cls, params: Dict[str, Any]) -> "StepOptions":
        """The module's options, by name (the internal ones without their leading underscore)."""
        return cls(phase=params.get("_phase"), user=params.get("user"), new_key=params.get("new_key"),
                   old_key=params.get("old_key") or (), path=params.get("path"),
                   keep_options=params.get("keep_options", True), backup=bool(params.get("backup")),
                   follow=bool(params.get("follow")), run_backup=params.get("_run_backup"),
                   written=params.get("_written") or ())


def run_step(options: StepOptions, check_mode: bool = False,
             context_hook: Optional[ContextHook] = None, diff: bool = False) -> Dict[str, Any]:
    """One run of the host module: validate what it was given, then do ``options.phase``."""
    phase = options.phase
    if phase not in PHASES:
        raise RotateError("authorized_key_rotate runs through its action plugin, which sets the step to run; "
                          "it cannot be run as a plain module")
    if not options.user:
        raise RotateError("user is required")
    new = parse_new_key(options.new_key, options.keep_options)
    old_keys = parse_old_keys(list(options.old_key))
    check_distinct(new, old_keys)
    target = resolve_target(options.user, options.path)
    if phase == "add":
        return step_add(target, new, old_keys, keep_options=options.keep_options, backup=options.backup,
                        follow=options.follow, check_mode=check_mode, context_hook=context_hook, diff=diff)
    if check_mode:
        raise RotateError(f"step {phase} is never run in check mode")
    if phase == "remove_old":
        return step_remove_old(target, new, old_keys, backup=options.backup, follow=options.follow,
                               context_hook=context_hook, run_backup=options.run_backup)
    if not options.run_backup:
        raise RotateError(f"step {phase} needs the path of the run's backup")
    if phase == "forget":
        return step_forget(target, options.run_backup, follow=options.follow)
    return step_restore(target, options.run_backup, options.written, new, old_keys,
                        follow=options.follow, context_hook=context_hook)

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the one way a cloud module reports a failure after a change.

A job that changes several things (detach, delete, create, attach; set tags, remove tags) can
fail half way. The failure must then say what was changed, so that nobody has to guess what
state a failed task left behind: each step that succeeded is written down as it happens, in
words a person can act on ("detached key pair web from i-abc, i-def"), and a failure raised
after the first of them carries the list. The module base turns it into ``fail_json`` with
``changed: true`` and ``changes``; a failure before any change keeps ``changed: false``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError


class Changes:
    """The changes one run has made so far, in order."""

    def __init__(self) -> None:
        self.items: List[str] = []

    def add(self, text: str) -> None:
        self.items.append(text)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)


class PartialChangeError(SshKeysError):
    """A failure after (possibly) some changes were made.

    ``changes`` lists what was changed (empty: nothing was); ``error`` is the API error that
    stopped the job, when there was one (anything with ``as_dict()``); ``result`` holds more
    fields for the failure result (the per-instance table of ecs_keypair_attach, ...).
    """

    reason = "partial"

    def __init__(self, message: str, *, changes: Sequence[str] = (), error: Any = None,
                 result: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message, changes=changes)
        self.message = message
        self.error = error
        self.result = dict(result or {})

    def failure(self) -> Dict[str, Any]:
        """The keyword arguments of fail_json (without msg)."""
        out: Dict[str, Any] = dict(self.result)
        out["changed"] = bool(self.changes) or bool(out.get("changed"))
        out["changes"] = list(self.changes)
        if self.error is not None and hasattr(self.error, "as_dict"):
            out["error"] = self.error.as_dict()
        return out


def join_ids(ids: Sequence[str], limit: Optional[int] = None) -> str:
    """'i-a, i-b' for a message. A change names every id it touched (no limit); a mere mention
    may be cut at limit, saying how many more there are."""
    shown = list(ids if limit is None else ids[:limit])
    more = len(ids) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def describe_changes(changes: Sequence[str]) -> str:
    """'changes made: a; b' or 'nothing was changed', for the end of a failure message."""
    if not changes:
        return "nothing was changed"
    return "changes made before the failure: " + "; ".join(changes)

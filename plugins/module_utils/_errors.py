# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the one base of every exception the collection raises.

Modules catch ``SshKeysError`` once and turn it into a failure; anything else is a bug and is
left to Ansible's own traceback. Standard library only and no imports of the collection: host
modules ship this file too, and every other file may import it.
"""

from __future__ import annotations

from typing import List, Optional, Sequence


class SshKeysError(Exception):
    """A failure the collection expects and can explain; the message never holds key material.

    ``reason`` is one short word callers and tests may branch on (``input`` unless a subclass or
    the raiser says otherwise); ``changes`` lists, in words, what was changed before the failure
    (empty: nothing was).
    """

    reason = "input"

    def __init__(self, message: str = "", *, reason: Optional[str] = None, changes: Sequence[str] = ()) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason
        self.changes: List[str] = list(changes)

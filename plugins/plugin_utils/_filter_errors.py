# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the one way a reconcile filter fails.

Controller only. The filters check the shape of what they are given themselves; what is still
wrong deeper down comes up as an exception of the collection (its message is the failure) or as
a KeyError, TypeError or ValueError of data that does not have the documented shape.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ansible.errors import AnsibleFilterError

from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError


@contextmanager
def filter_errors(filter_name: str) -> Iterator[None]:
    """Turns what goes wrong inside into AnsibleFilterError, without the traceback's context."""
    try:
        yield
    except SshKeysError as exc:
        raise AnsibleFilterError(str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"{filter_name}: unexpected input ({type(exc).__name__}: {exc})") from None

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: reading a file that must be a regular file.

``open()`` of a FIFO blocks until someone writes to it, so a FIFO planted where a key file is
expected would stall the task forever; a device could be read without end. Every file the
collection reads is therefore opened with ``O_NONBLOCK`` (which makes opening a FIFO return at
once), checked on the open descriptor (``fstat``, so the check and the read see the same file)
and read only when it is a regular file, up to a size limit. Standard library only: this also
runs on managed hosts.
"""

from __future__ import annotations

import os
import stat
from typing import Callable, Optional

from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._file_kinds import kind_of


class UnsafeFileError(SshKeysError):
    """The path is not a regular file we may read. The message names the path, never content.

    ``reason`` is ``missing``, ``type``, ``size``, ``symlink``, ``unsafe`` (refused by the
    caller's check) or ``io``.
    """

    def __init__(self, message: str, reason: str = "io", errno_value: Optional[int] = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.errno = errno_value


def open_regular(path: str, what: str, follow: bool = True, dir_fd: Optional[int] = None) -> int:
    """A read-only descriptor of ``path``, which must be a regular file (never blocks).

    ``what`` names the file in messages (for example ``"public_key_path /x/id.pub"``). Without
    ``follow`` a symbolic link in the last component is refused.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    if not follow:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise UnsafeFileError(f"{what} does not exist", reason="missing", errno_value=2) from None
    except OSError as exc:
        if not follow and _is_link(path, dir_fd):
            raise UnsafeFileError(f"{what} is a symbolic link; refusing to follow it", reason="symlink",
                                  errno_value=exc.errno) from None
        mode = _mode(path, dir_fd)
        if mode is not None and not stat.S_ISREG(mode):
            # A socket cannot be opened at all (ENXIO): say what it is, not what open() said.
            raise UnsafeFileError(f"{what} is {kind_of(mode)}, not a regular file", reason="type",
                                  errno_value=exc.errno) from None
        raise UnsafeFileError(f"{what} cannot be opened: {exc.strerror or type(exc).__name__}",
                              errno_value=exc.errno) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafeFileError(f"{what} is {kind_of(mode)}, not a regular file", reason="type")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_fd(fd: int, limit: Optional[int] = None, what: str = "the file") -> bytes:
    """Everything from ``fd`` (up to ``limit`` bytes: more is an ``UnsafeFileError``)."""
    chunks = []
    total = 0
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if limit is not None and total > limit:
            raise UnsafeFileError(f"{what} is larger than {_size(limit)}", reason="size")
        chunks.append(chunk)


def read_regular(path: str, what: str, limit: Optional[int] = None, follow: bool = True,
                 check: Optional[Callable[[os.stat_result], Optional[str]]] = None) -> bytes:
    """The content of ``path``, a regular file of at most ``limit`` bytes (see ``open_regular``).

    ``check`` sees the open file's ``fstat`` (the file that is read, not one swapped in since)
    and answers why it must not be read, or None; its answer ends the message.
    """
    fd = open_regular(path, what, follow=follow)
    try:
        problem = check(os.fstat(fd)) if check is not None else None
        if problem:
            raise UnsafeFileError(f"{what} {problem}", reason="unsafe")
        return read_fd(fd, limit, what)
    except OSError as exc:
        raise UnsafeFileError(f"{what} cannot be read: {exc.strerror or type(exc).__name__}",
                              errno_value=exc.errno) from None
    finally:
        os.close(fd)


def _mode(path: str, dir_fd: Optional[int]) -> Optional[int]:
    try:
        return os.stat(path, dir_fd=dir_fd).st_mode
    except OSError:
        return None


def _is_link(path: str, dir_fd: Optional[int]) -> bool:
    try:
        return stat.S_ISLNK(os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _size(limit: int) -> str:
    if limit >= 1 << 20 and limit % (1 << 20) == 0:
        return f"{limit >> 20} MiB"
    if limit >= 1 << 10 and limit % (1 << 10) == 0:
        return f"{limit >> 10} KiB"
    return f"{limit} bytes"

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: what the host modules check before they trust a file.

The host modules run as root on paths inside users' homes, which those users control. So every
file is opened without following symbolic links (unless asked), without blocking (a FIFO planted
in place of the file must not stall the task), and judged on the open descriptor before it is
read: a regular file, one hard link (a link planted to someone else's file must not be read or
handed over), owned by the user or root. Modes sshd's StrictModes refuses, and immutable or
append-only directories, are found here too. ``read_keys_file`` reads without a lock (check mode,
info); ``_keys_file.KeysFile`` is the locked writer built on the same checks. Standard library
only: this runs on managed hosts.
"""

from __future__ import annotations

import errno
import fcntl
import os
import platform
import stat
import struct
import sys
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import AuthorizedKeys, AuthorizedKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._file_kinds import kind_of

# What sshd's StrictModes refuses: a file or directory others may write to.
UNSAFE_BITS = 0o022

ContextHook = Callable[[str, str, bool], None]
"""``hook(temp_path, final_path, existed)``: give ``temp_path`` the SELinux context that
``final_path`` has (or would get by default when it did not exist). Built by the module layer
from ansible's helpers; ``None`` where SELinux does not matter."""


@dataclass
class FileState:
    """What is known about the keys file (and its directory) when it was read."""

    exists: bool
    uid: Optional[int] = None
    gid: Optional[int] = None
    mode: Optional[int] = None
    data: bytes = b""
    dir_exists: bool = False
    dir_mode: Optional[int] = None

    @property
    def file_unsafe(self) -> bool:
        return self.exists and self.mode is not None and bool(self.mode & UNSAFE_BITS)

    def unsafe(self, path: str) -> List[Tuple[str, int]]:
        """(path, mode) of the file and its directory where group or others may write."""
        found = [(path, self.mode)] if self.file_unsafe else []
        if self.dir_mode is not None and self.dir_mode & UNSAFE_BITS:
            found.append((os.path.dirname(path), self.dir_mode))
        return found

    def model(self) -> AuthorizedKeys:
        """The file's lines, parsed (once per read)."""
        return AuthorizedKeys.parse(decode(self.data))

    def mode_fixes(self, path: str) -> List[str]:
        """The repairs a write makes: group/other write removed from the file and its directory."""
        return [f"{where}: mode {mode:04o} -> {mode & ~UNSAFE_BITS:04o}" for where, mode in self.unsafe(path)]


# --------------------------------------------------------------------------------------------
# Small pieces
# --------------------------------------------------------------------------------------------

def decode(data: bytes) -> str:
    # surrogateescape: bytes that are not UTF-8 survive the round trip unchanged.
    return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def os_error(exc: OSError, what: str) -> AuthorizedKeysError:
    """A clear message for the OS errors users meet, with a reason word for callers."""
    reasons = {
        errno.EROFS: ("readonly", "the file system is read-only"),
        errno.ENOSPC: ("nospace", "no space left on the device"),
        errno.EDQUOT: ("nospace", "disk quota exceeded"),
        errno.EACCES: ("permission", "permission denied"),
        errno.EPERM: ("permission", "operation not permitted"),
        errno.ELOOP: ("symlink", "a path component is a symbolic link"),
    }
    reason, text = reasons.get(exc.errno, ("io", exc.strerror or str(exc)))
    return AuthorizedKeysError(f"{what}: {text}", reason=reason)


def read_fd(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def open_nofollow(name: str, flags: int, dir_fd: int, mode: int = 0o600) -> int:
    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)


def is_symlink_at(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def check_owner(st: os.stat_result, allowed_uid: Optional[int], what: str, path: str) -> None:
    # sshd (StrictModes) accepts files owned by the user or root; anything else means someone
    # else controls the file, and writing there on the user's behalf would be wrong.
    if allowed_uid is None:
        return
    if st.st_uid not in (allowed_uid, 0):
        raise AuthorizedKeysError(
            f"{what} {path} is owned by uid {st.st_uid}, not by the user (uid {allowed_uid}) or root",
            reason="owner")


def check_regular(st: os.stat_result, allowed_uid: Optional[int], what: str, path: str) -> None:
    """A file we may read or lock: regular, one hard link, owned by the user or root.

    A second hard link means the same inode is reachable from somewhere else: a user can plant a
    link to a file they do not own (a shared group file, or any file where the kernel's
    protected_hardlinks is off), and root would read it back into task output or take it over.
    """
    if not stat.S_ISREG(st.st_mode):
        raise AuthorizedKeysError(f"{what} {path} is {kind_of(st.st_mode)}, not a regular file", reason="type")
    if st.st_nlink != 1:
        raise AuthorizedKeysError(
            f"{what} {path} has {st.st_nlink} hard links; refusing to use it (another name of the same file "
            "could belong to someone else): replace it with a file of its own", reason="hardlink")
    check_owner(st, allowed_uid, what, path)


# --------------------------------------------------------------------------------------------
# Immutable and append-only directories (chattr +i / +a)
# --------------------------------------------------------------------------------------------

# FS_IOC_GETFLAGS is _IOR('f', 1, long); that encoding holds on these machines only (others, such
# as powerpc and mips, lay the bits out differently, and a wrong number could be another call).
_GENERIC_IOCTL_MACHINES = frozenset(("x86_64", "amd64", "i386", "i686", "aarch64", "arm64", "armv7l",
                                     "armv8l", "riscv64", "s390x", "loongarch64"))
_FS_IOC_GETFLAGS = (2 << 30) | (struct.calcsize("l") << 16) | (ord("f") << 8) | 1
_FS_IMMUTABLE_FL = 0x10
_FS_APPEND_FL = 0x20


def inode_flags(fd: int) -> int:
    """The ext2-style inode flags of fd, or 0 where they cannot be read."""
    if not sys.platform.startswith("linux") or platform.machine() not in _GENERIC_IOCTL_MACHINES:
        return 0
    try:
        raw = fcntl.ioctl(fd, _FS_IOC_GETFLAGS, b"\0" * 8)
    except OSError:
        return 0  # tmpfs and others have no such flags
    return int.from_bytes(raw[:4], sys.byteorder)


def check_replaceable(fd: int, what: str, path: str) -> None:
    """Refuse before writing where a rename cannot work: it would fail half way and, in an
    append-only directory, leave its temporary file behind for good."""
    flags = inode_flags(fd)
    if flags & _FS_IMMUTABLE_FL:
        raise AuthorizedKeysError(f"{what} {path} is immutable (chattr +i): it cannot be changed", reason="readonly")
    if flags & _FS_APPEND_FL:
        raise AuthorizedKeysError(f"{what} {path} is append-only (chattr +a): the file cannot be replaced safely",
                                  reason="readonly")


# --------------------------------------------------------------------------------------------
# Reading without a lock (check mode, info) and the shared checks
# --------------------------------------------------------------------------------------------

def open_directory(directory: str, follow: bool) -> int:
    """fd of ``directory``; without ``follow`` its last component must not be a symlink."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    if not follow:
        flags |= os.O_NOFOLLOW
    try:
        return os.open(directory, flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(directory):
            raise AuthorizedKeysError(
                f"{directory} is a symbolic link; refusing to follow it (set follow to allow)",
                reason="symlink") from None
        if exc.errno == errno.ENOENT:
            raise FileNotFoundError(directory) from None
        if exc.errno == errno.ENOTDIR:
            raise AuthorizedKeysError(f"{directory} is not a directory", reason="io") from None
        raise os_error(exc, f"cannot open {directory}") from None


def open_at(dir_fd: int, name: str, path: str, follow: bool) -> Optional[int]:
    """A non-blocking read-only fd of the keys file, or None when it does not exist."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP or is_symlink_at(name, dir_fd):
            raise AuthorizedKeysError(
                f"{path} is a symbolic link; refusing to follow it (set follow to allow)",
                reason="symlink") from None
        try:
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=follow).st_mode
        except OSError:
            mode = stat.S_IFREG
        if not stat.S_ISREG(mode):  # a socket cannot even be opened (ENXIO)
            raise AuthorizedKeysError(f"file {path} is {kind_of(mode)}, not a regular file", reason="type") from None
        raise os_error(exc, f"cannot read {path}") from None


def read_at(dir_fd: int, name: str, path: str, follow: bool, owner_uid: Optional[int]) -> FileState:
    dir_mode = stat.S_IMODE(os.fstat(dir_fd).st_mode)
    fd = open_at(dir_fd, name, path, follow)
    if fd is None:
        return FileState(exists=False, dir_exists=True, dir_mode=dir_mode)
    try:
        st = os.fstat(fd)
        check_regular(st, owner_uid, "file", path)
        return FileState(exists=True, uid=st.st_uid, gid=st.st_gid, mode=stat.S_IMODE(st.st_mode),
                         data=read_fd(fd), dir_exists=True, dir_mode=dir_mode)
    finally:
        os.close(fd)


def keys_path(path: str, follow: bool) -> str:
    return os.path.realpath(path) if follow else os.path.abspath(path)


def read_keys_file(path: str, follow: bool = False, owner_uid: Optional[int] = None) -> FileState:
    """Read the keys file without a lock and without creating anything (check mode and info).

    A missing file or directory is ``FileState(exists=False)``. Symbolic links are refused
    unless ``follow``; so are FIFOs and other non-regular files, hard-linked files and files or
    directories owned by someone other than ``owner_uid`` or root.
    """
    directory, name = os.path.split(keys_path(path, follow))
    try:
        dir_fd = open_directory(directory, follow=follow)
    except FileNotFoundError:
        return FileState(exists=False)
    try:
        check_owner(os.fstat(dir_fd), owner_uid, "directory", directory)
        return read_at(dir_fd, name, path, follow, owner_uid)
    finally:
        os.close(dir_fd)


def preflight_write(path: str, follow: bool, create_dir: bool, owner_uid: Optional[int] = None) -> None:
    """What a write would refuse, checked without changing anything (check mode reports what
    the real run would do, so it must fail where the real run fails)."""
    directory, name = os.path.split(keys_path(path, follow))
    try:
        dir_fd = open_directory(directory, follow=follow)
    except FileNotFoundError:
        if not create_dir:
            raise AuthorizedKeysError(f"directory {directory} does not exist (set manage_dir to create it)",
                                      reason="missing") from None
        parent = os.path.dirname(directory)
        if not os.path.isdir(parent):
            raise AuthorizedKeysError(f"cannot create {directory}: {parent} does not exist", reason="missing") from None
        return
    try:
        check_replaceable(dir_fd, "directory", directory)
        fd = open_at(dir_fd, name, path, follow)
        if fd is not None:
            try:
                check_replaceable(fd, "file", path)
            finally:
                os.close(fd)
        lock = os.path.join(directory, f".{name}.lock")
        fd = open_at(dir_fd, f".{name}.lock", lock, follow=False)
        if fd is not None:
            try:
                check_regular(os.fstat(fd), owner_uid, "lock file", lock)
            finally:
                os.close(fd)
    finally:
        os.close(dir_fd)


def check_home_chain(path: str, home: str, uid: int) -> None:
    """sshd (StrictModes) ignores a keys file below a home directory that others can write to,
    or that someone other than the user or root owns: say so instead of writing keys that can
    never be used. Only directories above the file's own directory and up to the home count
    (the file and its directory are repaired by the write itself)."""
    home = os.path.abspath(home)
    current = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    if current != home and not current.startswith(home.rstrip("/") + "/"):
        return
    while True:
        try:
            st = os.lstat(current)
        except OSError:
            return  # missing: the write reports it
        if st.st_uid not in (uid, 0) or st.st_mode & UNSAFE_BITS:
            raise AuthorizedKeysError(
                f"{current} (mode {stat.S_IMODE(st.st_mode):04o}, owner uid {st.st_uid}) can be written by others: "
                f"sshd (StrictModes) ignores the keys below it; make it owned by the user or root and not "
                "writable by group or others", reason="mode")
        if current == home or current == "/":
            return
        current = os.path.dirname(current)

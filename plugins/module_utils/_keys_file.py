# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: an authorized_keys file on disk, read and written safely.

The host modules run as root on paths inside users' homes, which those users control. So every
file is opened without following symbolic links (unless asked), without blocking (a FIFO planted
in place of the file must not stall the task), and judged on the open descriptor before it is
read: a regular file, one hard link (a link planted to someone else's file must not be read or
handed over), owned by the user or root. Nothing is ever chowned unless this code created it.

``KeysFile`` takes an advisory lock on ``.<name>.lock`` next to the keys file, reads, and writes
once: temporary file in the same directory, fsync, rename, fsync of the directory; owner, mode
and SELinux context kept. Modes that sshd (StrictModes) would refuse are repaired as part of a
write (group and other write permission removed from the file and its directory). Standard
library only: this runs on managed hosts.
"""

from __future__ import annotations

import errno
import fcntl
import os
import platform
import stat
import struct
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import AuthorizedKeys, AuthorizedKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._regular_file import kind_of

LOCK_TIMEOUT = 60.0
# A run's own backup (rotation) older than this belongs to a run that was killed.
STALE_RUN_BACKUP = 24 * 3600.0
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


def _read_fd(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _open_nofollow(name: str, flags: int, dir_fd: int, mode: int = 0o600) -> int:
    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)


def _is_symlink_at(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _check_owner(st: os.stat_result, allowed_uid: Optional[int], what: str, path: str) -> None:
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
    _check_owner(st, allowed_uid, what, path)


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


def _open_at(dir_fd: int, name: str, path: str, follow: bool) -> Optional[int]:
    """A non-blocking read-only fd of the keys file, or None when it does not exist."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP or _is_symlink_at(name, dir_fd):
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
    fd = _open_at(dir_fd, name, path, follow)
    if fd is None:
        return FileState(exists=False, dir_exists=True, dir_mode=dir_mode)
    try:
        st = os.fstat(fd)
        check_regular(st, owner_uid, "file", path)
        return FileState(exists=True, uid=st.st_uid, gid=st.st_gid, mode=stat.S_IMODE(st.st_mode),
                         data=_read_fd(fd), dir_exists=True, dir_mode=dir_mode)
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
        _check_owner(os.fstat(dir_fd), owner_uid, "directory", directory)
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
        fd = _open_at(dir_fd, name, path, follow)
        if fd is not None:
            try:
                check_replaceable(fd, "file", path)
            finally:
                os.close(fd)
        lock = os.path.join(directory, f".{name}.lock")
        fd = _open_at(dir_fd, f".{name}.lock", lock, follow=False)
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


# --------------------------------------------------------------------------------------------
# The locked read-modify-write
# --------------------------------------------------------------------------------------------

class KeysFile:
    """The keys file opened for a locked read-modify-write.

    ``KeysFile(path, owner=(uid, gid))`` is a context manager. On enter it opens the directory
    (creating it with mode 0700 and the owner when ``create_dir``), refusing symbolic links
    unless ``follow``, and takes an exclusive ``fcntl.flock`` on ``.<name>.lock`` in the same
    directory; the lock is held until exit, so a concurrent run waits and then reads the file
    this one wrote. Inside: ``read_state()``, ``write(text, backup=False)``, ``backup()``,
    ``restore(backup_path)``, ``remove_backup(backup_path)``.

    ``owner`` is the (uid, gid) a new file (and a created directory) gets; an existing file keeps
    its owner and its mode (less group and other write). A file or directory owned by anyone but
    that uid or root is refused.
    """

    def __init__(self, path: str, owner: Optional[Tuple[int, int]] = None, create_dir: bool = False,
                 follow: bool = False, file_mode: int = 0o600, dir_mode: int = 0o700,
                 context_hook: Optional[ContextHook] = None, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.requested_path = path
        self.follow = follow
        self.path = keys_path(path, follow)
        self.directory, self.name = os.path.split(self.path)
        self.owner = owner
        self.create_dir = create_dir
        self.file_mode = file_mode
        self.dir_mode = dir_mode
        self.context_hook = context_hook
        self.lock_timeout = lock_timeout
        self.dir_fd: Optional[int] = None
        self.lock_fd: Optional[int] = None
        self.state: Optional[FileState] = None
        self.created_dir = False

    # -- opening and locking ------------------------------------------------------------------

    def __enter__(self) -> "KeysFile":
        try:
            self._open_dir()
            self._lock()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        for attr in ("lock_fd", "dir_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                try:
                    os.close(fd)  # closing the lock fd releases the flock
                except OSError:
                    pass
                setattr(self, attr, None)

    @property
    def _uid(self) -> Optional[int]:
        return self.owner[0] if self.owner else None

    def _open_dir(self) -> None:
        try:
            self.dir_fd = open_directory(self.directory, self.follow)
        except FileNotFoundError:
            if not self.create_dir:
                raise AuthorizedKeysError(
                    f"directory {self.directory} does not exist (set manage_dir to create it)",
                    reason="missing") from None
            self._make_dir()
        _check_owner(os.fstat(self.dir_fd), self._uid, "directory", self.directory)

    def _make_dir(self) -> None:
        parent, base = os.path.split(self.directory)
        try:
            parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise AuthorizedKeysError(f"cannot create {self.directory}: {parent} does not exist",
                                          reason="missing") from None
            raise os_error(exc, f"cannot open {parent} to create {base}") from None
        try:
            try:
                os.mkdir(base, self.dir_mode, dir_fd=parent_fd)
                self.created_dir = True
            except FileExistsError:
                pass  # made by a concurrent run in the meantime: use it, after the same checks
            except OSError as exc:
                raise os_error(exc, f"cannot create {self.directory}") from None
            try:
                self.dir_fd = _open_nofollow(base, os.O_RDONLY | os.O_DIRECTORY, parent_fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise AuthorizedKeysError(
                        f"{self.directory} is a symbolic link; refusing to follow it", reason="symlink") from None
                raise os_error(exc, f"cannot open {self.directory}") from None
            if self.created_dir:
                # mkdir's mode is filtered by the umask: set it exactly, then hand it over.
                os.fchmod(self.dir_fd, self.dir_mode)
                if self.owner and os.geteuid() == 0:
                    os.fchown(self.dir_fd, self.owner[0], self.owner[1])
                os.fsync(parent_fd)
        finally:
            os.close(parent_fd)

    @property
    def lock_name(self) -> str:
        return f".{self.name}.lock"

    def _open_lock(self) -> int:
        """The lock file's fd: created here (then handed to the user), or an existing one that
        passes the same checks as the keys file. Read-only and non-blocking: flock needs no more,
        and nothing is ever written to, chowned or truncated through a file we did not make."""
        where = os.path.join(self.directory, self.lock_name)
        for _attempt in range(3):
            try:
                fd = _open_nofollow(self.lock_name, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NONBLOCK,
                                    self.dir_fd, 0o600)
            except FileExistsError:
                fd = _open_at(self.dir_fd, self.lock_name, where, follow=False)
                if fd is None:
                    continue  # removed in between: try to create it again
            except OSError as exc:
                raise self._lock_error(exc, where) from None
            else:
                if self.owner and os.geteuid() == 0:
                    # Ours: the user's own runs (without root) can take the same lock later.
                    try:
                        os.fchown(fd, self.owner[0], self.owner[1])
                    except OSError:
                        os.close(fd)
                        raise
                return fd
            try:
                check_regular(os.fstat(fd), self._uid, "lock file", where)
            except BaseException:
                os.close(fd)
                raise
            return fd
        raise AuthorizedKeysError(f"lock file {where} keeps disappearing", reason="locked")

    @staticmethod
    def _lock_error(exc: OSError, where: str) -> AuthorizedKeysError:
        if exc.errno == errno.ELOOP:
            return AuthorizedKeysError(f"lock file {where} is a symbolic link", reason="symlink")
        return os_error(exc, f"cannot create the lock file {where}")

    def _lock(self) -> None:
        try:
            self.lock_fd = self._open_lock()
        except OSError as exc:
            raise self._lock_error(exc, os.path.join(self.directory, self.lock_name)) from None
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise os_error(exc, "cannot lock the keys file") from None
            if time.monotonic() >= deadline:
                raise AuthorizedKeysError(
                    f"{self.path} stayed locked by another process for {self.lock_timeout:.0f} s",
                    reason="locked")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    # -- reading -------------------------------------------------------------------------------

    def read_state(self) -> FileState:
        self._require_open()
        self.state = read_at(self.dir_fd, self.name, self.path, self.follow, self._uid)
        return self.state

    def read_text(self) -> str:
        return decode(self.read_state().data)

    def read(self) -> AuthorizedKeys:
        return AuthorizedKeys.parse(self.read_text())

    @property
    def exists(self) -> bool:
        state = self.state if self.state is not None else self.read_state()
        return state.exists

    def _require_open(self) -> None:
        if self.dir_fd is None or self.lock_fd is None:
            raise AuthorizedKeysError("KeysFile is used outside its 'with' block", reason="io")

    # -- writing -------------------------------------------------------------------------------

    def _target_attributes(self) -> Tuple[int, int, int]:
        state = self.state if self.state is not None else self.read_state()
        if state.exists:
            return state.uid, state.gid, state.mode & ~UNSAFE_BITS
        if self.owner:
            return self.owner[0], self.owner[1], self.file_mode
        return os.geteuid(), os.getegid(), self.file_mode

    def _write_new(self, name: str, data: bytes, uid: int, gid: int, mode: int) -> None:
        """Create ``name`` (must not exist) with the data and attributes, fsynced."""
        fd = _open_nofollow(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.dir_fd, 0o600)
        try:
            _write_all(fd, data)
            st = os.fstat(fd)
            if (st.st_uid, st.st_gid) != (uid, gid):
                os.fchown(fd, uid, gid)
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _temp_name(self, tag: str) -> str:
        return f".{self.name}.{tag}.{os.getpid()}.{os.urandom(4).hex()}"

    def _check_replaceable(self) -> None:
        check_replaceable(self.dir_fd, "directory", self.directory)
        fd = _open_at(self.dir_fd, self.name, self.path, self.follow)
        if fd is not None:
            try:
                check_replaceable(fd, "file", self.path)
            finally:
                os.close(fd)

    def fix_directory_mode(self) -> bool:
        """Remove group and other write from the directory (sshd ignores keys below it otherwise)."""
        self._require_open()
        mode = stat.S_IMODE(os.fstat(self.dir_fd).st_mode)
        if not mode & UNSAFE_BITS:
            return False
        try:
            os.fchmod(self.dir_fd, mode & ~UNSAFE_BITS)
        except OSError as exc:
            raise os_error(exc, f"cannot change the mode of {self.directory}") from None
        return True

    def write(self, text: str, backup: bool = False) -> Optional[str]:
        """Replace the file's content atomically; returns the backup path when one was made.

        Owner and mode of an existing file are kept (less group/other write; a new file gets
        ``owner`` and 0600), and the SELinux context through ``context_hook``. Any failure
        removes the temporary file and leaves the original untouched.
        """
        self._require_open()
        uid, gid, mode = self._target_attributes()
        self._check_replaceable()
        backup_path = self.backup() if backup and self.state.exists else None
        self._remove_stale_temps()
        temp = self._temp_name("tmp")
        try:
            self._write_new(temp, encode(text), uid, gid, mode)
            if self.context_hook is not None:
                self.context_hook(os.path.join(self.directory, temp), self.path, self.state.exists)
            if not self.follow and _is_symlink_at(self.name, self.dir_fd):
                # Appeared after we read: rename would replace the link, but refuse loudly.
                raise AuthorizedKeysError(f"{self.path} became a symbolic link", reason="symlink")
            os.rename(temp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        except OSError as exc:
            self._discard(temp)
            raise os_error(exc, f"cannot write {self.path}") from None
        except BaseException:
            self._discard(temp)
            raise
        try:
            os.fsync(self.dir_fd)  # make the rename itself durable
        except OSError:
            pass
        self.state = FileState(exists=True, uid=uid, gid=gid, mode=mode, data=encode(text), dir_exists=True,
                               dir_mode=self.state.dir_mode)
        return backup_path

    def _remove_stale_temps(self) -> None:
        """Temporary files left by writers that were killed: we hold the lock, so no live
        writer owns one, and they would otherwise pile up next to the keys. A run's own backup
        lives across several steps (the lock is not held in between), so only old ones go."""
        temp_prefix, run_prefix = f".{self.name}.tmp.", f".{self.name}.run."
        try:
            names = os.listdir(self.dir_fd)
        except OSError:
            return
        for name in names:
            if name.startswith(temp_prefix) or (name.startswith(run_prefix) and self._age(name) > STALE_RUN_BACKUP):
                self._discard(name)

    def _age(self, name: str) -> float:
        try:
            return time.time() - os.stat(name, dir_fd=self.dir_fd, follow_symlinks=False).st_mtime
        except OSError:
            return 0.0

    def _discard(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.dir_fd)
        except OSError:
            pass

    def backup(self, hidden: bool = False) -> str:
        """Copy the current file next to it: ``<name>.<pid>.<YYYY-mm-dd@HH:MM:SS>~``, or with
        ``hidden`` ``.<name>.run.<pid>.<random>`` (mode 0600), a copy kept only while a run
        needs it to put the file back."""
        self._require_open()
        state = self.state if self.state is not None else self.read_state()
        if not state.exists:
            raise AuthorizedKeysError(f"{self.path} does not exist: nothing to back up", reason="missing")
        if hidden:
            candidates = [self._temp_name("run")]
        else:
            base = f"{self.name}.{os.getpid()}.{time.strftime('%Y-%m-%d@%H:%M:%S')}"
            candidates = [f"{base}~"] + [f"{base}.{attempt}~" for attempt in range(1, 100)]
        # Written like the file itself (temporary name, then rename), so a kill mid-way never
        # leaves a partial backup that someone could later restore.
        temp = self._temp_name("tmp")
        try:
            self._write_new(temp, state.data, state.uid, state.gid, 0o600 if hidden else state.mode)
            for name in candidates:
                try:
                    os.stat(name, dir_fd=self.dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    os.rename(temp, name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
                    return os.path.join(self.directory, name)
        except OSError as exc:
            self._discard(temp)
            raise os_error(exc, f"cannot back up {self.path}") from None
        self._discard(temp)
        raise AuthorizedKeysError(f"cannot find a free backup name for {self.path}", reason="io")

    def _backup_name(self, backup_path: str) -> str:
        directory, name = os.path.split(os.path.abspath(backup_path))
        if directory != self.directory or not name.startswith((f"{self.name}.", f".{self.name}.run.")):
            raise AuthorizedKeysError("a backup must be one made next to the keys file", reason="io")
        return name

    def has_backup(self, backup_path: str) -> bool:
        self._require_open()
        try:
            os.stat(self._backup_name(backup_path), dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def read_backup(self, backup_path: str) -> bytes:
        """The content of a backup made by ``backup()``, checked like the keys file itself."""
        self._require_open()
        name = self._backup_name(backup_path)
        fd = _open_at(self.dir_fd, name, backup_path, follow=False)
        if fd is None:
            raise AuthorizedKeysError(f"the backup {backup_path} is gone", reason="missing")
        try:
            check_regular(os.fstat(fd), self._uid, "backup", backup_path)
            return _read_fd(fd)
        finally:
            os.close(fd)

    def restore(self, backup_path: str) -> None:
        """Put a backup made by ``backup()`` back in place (atomically, same safeguards)."""
        self.read_state()
        self.write(decode(self.read_backup(backup_path)))

    def remove_backup(self, backup_path: str) -> None:
        self._require_open()
        self._discard(self._backup_name(backup_path))

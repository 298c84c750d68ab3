# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: an authorized_keys file written safely, under a lock.

``KeysFile`` takes an advisory lock on ``.<name>.lock`` next to the keys file, reads, and writes
once: temporary file in the same directory, fsync, rename, fsync of the directory; owner, mode
and SELinux context kept. Every file it opens passes the checks of ``_keys_file_checks`` (no
symbolic links unless asked, regular files only, one hard link, the user's or root's), nothing
is chowned unless this code created it, and modes that sshd (StrictModes) would refuse are
repaired as part of a write. It also keeps the copies a rotation restores from. Standard library
only: this runs on managed hosts.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from typing import Optional, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import AuthorizedKeys, AuthorizedKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file_checks import (
    UNSAFE_BITS,
    ContextHook,
    FileState,
    check_owner,
    check_regular,
    check_replaceable,
    decode,
    encode,
    is_symlink_at,
    keys_path,
    open_at,
    open_directory,
    open_nofollow,
    os_error,
    read_at,
    read_fd,
    write_all,
)

LOCK_TIMEOUT = 60.0
# A run's own backup (rotation) older than this belongs to a run that was killed.
STALE_RUN_BACKUP = 24 * 3600.0


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
        check_owner(os.fstat(self.dir_fd), self._uid, "directory", self.directory)

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
                self.dir_fd = open_nofollow(base, os.O_RDONLY | os.O_DIRECTORY, parent_fd)
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
                fd = open_nofollow(self.lock_name, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NONBLOCK,
                                   self.dir_fd, 0o600)
            except FileExistsError:
                fd = open_at(self.dir_fd, self.lock_name, where, follow=False)
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
        fd = open_nofollow(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.dir_fd, 0o600)
        try:
            write_all(fd, data)
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
        fd = open_at(self.dir_fd, self.name, self.path, self.follow)
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
            if not self.follow and is_symlink_at(self.name, self.dir_fd):
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
        fd = open_at(self.dir_fd, name, backup_path, follow=False)
        if fd is None:
            raise AuthorizedKeysError(f"the backup {backup_path} is gone", reason="missing")
        try:
            check_regular(os.fstat(fd), self._uid, "backup", backup_path)
            return read_fd(fd)
        finally:
            os.close(fd)

    def restore(self, backup_path: str) -> None:
        """Put a backup made by ``backup()`` back in place (atomically, same safeguards)."""
        self.read_state()
        self.write(decode(self.read_backup(backup_path)))

    def remove_backup(self, backup_path: str) -> None:
        self._require_open()
        self._discard(self._backup_name(backup_path))

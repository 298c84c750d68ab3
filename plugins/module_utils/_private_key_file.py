# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the private key file of ecs_keypair and the files beside it.

Next to ``private_key_path`` (say ``~/.ssh/deploy.pem``) the module keeps, while it runs:

* ``.deploy.pem.lock``: an advisory lock (``flock``) held from the first read of the file to
  the end of the run, so that two runs on one controller for the same file take turns instead of
  deleting each other's key pair; removed when the run ends;
* ``.deploy.pem.pending``: a marker written just before CreateKeyPair (JSON: key pair name and
  region, nothing secret) and removed once the private key is in the file or the key pair is
  known to be gone. A later run that finds the key pair without its private key and this marker
  knows the key pair is the orphan of a lost answer (nobody ever held its private key), and may
  delete it and create it again;
* ``.ecs-keypair-*.tmp``: the temporary file the private key is written to before the rename.

All of them are created mode 0600 and never through a symbolic link. A file that is not a
regular file (a FIFO, a socket, a device) is refused where a key file is expected: opening a
FIFO would block the task forever.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import tempfile
import time
from typing import Any, Callable, Dict, Optional

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_validate import KeypairError
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import PublicKey, SSHKeyError
from ansible_collections.sshkeys.ecs.plugins.module_utils._private_keys import MISSING_CRYPTOGRAPHY, public_key_from_private
from ansible_collections.sshkeys.ecs.plugins.module_utils._regular_file import (
    UnsafeFileError,
    kind_of,
    open_regular,
    read_fd,
    read_regular,
)

# A private key file is a few KiB; a limit keeps a huge file from being read whole.
MAX_PRIVATE_KEY_FILE = 1024 * 1024
# How long a run waits for another run on the same private_key_path before it gives up.
LOCK_WAIT_SECONDS = 300.0
MARKER_SUFFIX = ".pending"
LOCK_SUFFIX = ".lock"


class KeyFileError(KeypairError):
    """A problem with private_key_path or the files beside it. The message names paths, never content."""


def side_path(path: str, suffix: str) -> str:
    """'.<name><suffix>' in the directory of path."""
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{name}{suffix}")


# ---------------------------------------------------------------------------------------------
# The target of a new private key.


def check_private_key_target(path: str) -> bool:
    """Whether a file exists at path; raises when a private key could not (or must not) go there."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    # A link planted in place of the directory (a ~/.ssh pointing elsewhere) would put the key
    # where its owner did not choose; the same rule as authorized_keys: last directory component.
    if os.path.islink(directory):
        raise KeyFileError(f"the directory of private_key_path {path} is a symbolic link; refusing to write through it")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise KeyFileError(f"private_key_path {path} cannot be examined: {exc.strerror or type(exc).__name__}") from None
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise KeyFileError(f"private_key_path {path} is a symbolic link; refusing to write through it")
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise KeyFileError(f"private_key_path {path} is a directory")
    if info is not None and not stat.S_ISREG(info.st_mode):
        # Renaming a new key over a FIFO or a socket would silently remove what someone put there.
        raise KeyFileError(f"private_key_path {path} is {kind_of(info.st_mode)}, not a regular file; refusing to "
                           "read it or write over it")
    if not os.path.isdir(directory):
        raise KeyFileError(f"the directory of private_key_path {path} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise KeyFileError(f"the directory of private_key_path {path} is not writable")
    return info is not None


def unsafe_permissions(info: os.stat_result, uid: Optional[int] = None) -> Optional[str]:
    """Why ssh would refuse a private key file with this stat, or None when it would not.

    OpenSSH refuses a key file that group or others may access ("UNPROTECTED PRIVATE KEY FILE");
    a key file owned by someone else may have been planted or read by them.
    """
    uid = os.geteuid() if uid is None else uid
    if info.st_uid != uid:
        return f"is owned by user id {info.st_uid}, not by the user running the module (id {uid})"
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        return (f"has mode {mode:04o}: group or others may access it, and ssh refuses such a key "
                "(UNPROTECTED PRIVATE KEY FILE); chmod 600 it")
    return None


def read_private_key_file(path: str) -> bytes:
    """The bytes of an existing private key file: regular, not a link, 0600-safe, at most 1 MiB."""
    try:
        return read_regular(path, f"private_key_path {path}", limit=MAX_PRIVATE_KEY_FILE, follow=False,
                            check=unsafe_permissions)
    except UnsafeFileError as exc:
        raise KeyFileError(str(exc)) from None


def public_key_of_file(path: str, passphrase: Optional[str]) -> PublicKey:
    """The public key of the private key in path (checked as read_private_key_file does)."""
    data = read_private_key_file(path)
    try:
        return public_key_from_private(data, passphrase)
    except ImportError:
        raise KeyFileError(MISSING_CRYPTOGRAPHY) from None
    except SSHKeyError as exc:
        raise KeyFileError(f"private_key_path {path} does not hold a usable private key: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Writing the private key.


def _create_private(path: str) -> int:
    """A new file, mode 0600, never through a link and never over an existing file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(path, flags, 0o600)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)


def sync_directory(path: str) -> None:
    """fsync the directory of path, so a rename or an unlink survives a crash."""
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class PrivateKeyFile:
    """A temporary file next to the target, opened before the key exists.

    Opening it first moves every likely failure (missing directory, permissions, no inodes)
    before the API call that creates the key, so the key cannot be lost between the reply and
    the file; what remains after the reply is one write, fsync and rename.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        directory = os.path.dirname(self.path)
        try:
            fd, self.temp = tempfile.mkstemp(prefix=".ecs-keypair-", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise KeyFileError(f"cannot create a file next to private_key_path {self.path}: "
                               f"{exc.strerror or type(exc).__name__}") from None
        os.fchmod(fd, 0o600)
        self._fd: Optional[int] = fd

    def commit(self, data: bytes) -> None:
        fd = self._fd
        if fd is None:
            raise KeyFileError("private key file already written")
        self._fd = None
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(self.temp, self.path)
        sync_directory(self.path)

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.temp)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# The public key beside a private key made here.


def public_key_file_path(private_key_path: str) -> str:
    """Where ssh-keygen puts the public half: the private key's path and ``.pub``."""
    return os.path.abspath(private_key_path) + ".pub"


def check_public_key_target(path: str) -> None:
    """Raises when the public key file could not (or must not) be written at path."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise KeyFileError(f"public key file {path} cannot be examined: {exc.strerror or type(exc).__name__}") from None
    if stat.S_ISLNK(info.st_mode):
        raise KeyFileError(f"public key file {path} is a symbolic link; refusing to write through it "
                           "(or set write_public_key=false)")
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"public key file {path} is {kind_of(info.st_mode)}, not a regular file; refusing to "
                           "write over it (or set write_public_key=false)")


def write_public_key_file(path: str, line: str) -> None:
    """The public key line at path, mode 0644 as ssh-keygen leaves it: written to a temporary
    file beside it and renamed over whatever public key file was there, never through a link."""
    check_public_key_target(path)
    try:
        fd, temp = tempfile.mkstemp(prefix=".ecs-keypair-", suffix=".tmp", dir=os.path.dirname(path))
    except OSError as exc:
        raise KeyFileError(f"cannot create a file next to public key file {path}: "
                           f"{exc.strerror or type(exc).__name__}") from None
    _fill_and_rename(fd, temp, path, (line + "\n").encode("utf-8"), 0o644, f"public key file {path} cannot be written")


def _fill_and_rename(fd: int, temp: str, path: str, data: bytes, mode: Optional[int], failed: str) -> None:
    """``data`` into the temporary file open on ``fd`` (its mode set first when given), renamed
    over ``path``, the directory synced. On an error the temporary file goes and KeyFileError
    says ``failed`` with the reason: whatever was at ``path`` stays as it was."""
    try:
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError as exc:
        _discard(temp)
        raise KeyFileError(f"{failed}: {exc.strerror or type(exc).__name__}") from None
    sync_directory(path)


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# The lock.


class KeyFileLock:
    """An exclusive flock on '.<name>.lock' beside private_key_path, for the whole run.

    The lock file is removed on release. A run that waited on a file that was removed meanwhile
    finds that the path no longer names the file it locked, and locks the new one instead: two
    runs never both believe they hold the lock.
    """

    def __init__(self, path: str, wait: float = LOCK_WAIT_SECONDS,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = side_path(path, LOCK_SUFFIX)
        self.target = os.path.abspath(path)
        self.wait = wait
        self._clock = clock
        self._sleep = sleep
        self._fd: Optional[int] = None

    def __enter__(self) -> "KeyFileLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()

    def acquire(self) -> None:
        deadline = self._clock() + self.wait
        while True:
            fd = self._open()
            if self._try_lock(fd, deadline) and self._still_named(fd):
                self._fd = fd
                return
            os.close(fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Unlinked while still held: whoever waits on this file sees it is gone and retries.
            os.unlink(self.path)
        except OSError:
            pass
        os.close(fd)

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            reason = "a symbolic link" if exc.errno == errno.ELOOP else (exc.strerror or type(exc).__name__)
            raise KeyFileError(f"cannot use the lock file {self.path} of private_key_path {self.target}: "
                               f"{reason}") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            os.close(fd)
            what = kind_of(info.st_mode) if not stat.S_ISREG(info.st_mode) else "owned by someone else"
            raise KeyFileError(f"the lock file {self.path} of private_key_path {self.target} is {what}; remove it")
        return fd

    def _try_lock(self, fd: int, deadline: float) -> bool:
        """Lock fd, polling until deadline (an flock without a timeout could wait forever)."""
        delay = 0.05
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise KeyFileError(f"cannot lock {self.path}: {exc.strerror or type(exc).__name__}") from None
            if self._clock() >= deadline:
                os.close(fd)
                raise KeyFileError(f"another run has held the lock file {self.path} of private_key_path {self.target} "
                                   f"for more than {self.wait:.0f} s; if no run is active, remove the lock file")
            self._sleep(delay)
            delay = min(delay * 2, 1.0)

    def _still_named(self, fd: int) -> bool:
        try:
            named = os.lstat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


class NoLock:
    """Stands in for KeyFileLock when there is no file to guard (check mode, no private_key_path)."""

    def __enter__(self) -> "NoLock":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None


# ---------------------------------------------------------------------------------------------
# The marker of a create whose answer may be lost.


class PendingMarker:
    """'.<name>.pending' beside private_key_path: which key pair a CreateKeyPair was sent for."""

    def __init__(self, path: str) -> None:
        self.path = side_path(path, MARKER_SUFFIX)

    def read(self) -> Optional[Dict[str, Any]]:
        """The marker's content, or None when there is none (or it is not one of ours)."""
        try:
            fd = open_regular(self.path, f"the marker {self.path}", follow=False)
        except UnsafeFileError as exc:
            if exc.reason == "missing":
                return None
            raise KeyFileError(str(exc)) from None
        try:
            if os.fstat(fd).st_uid != os.geteuid():
                return None  # not written by us: never trusted to allow a delete
            data = json.loads(read_fd(fd, 4096, f"the marker {self.path}").decode("utf-8"))
        except (UnsafeFileError, ValueError, OSError):
            return None
        finally:
            os.close(fd)
        return data if isinstance(data, dict) else None

    def names(self, key_pair_name: str, region: str) -> bool:
        data = self.read()
        return bool(data) and data.get("key_pair_name") == key_pair_name and data.get("region") == region

    def write(self, key_pair_name: str, region: str) -> None:
        """Written atomically (temporary file, fsync, rename) before the create is sent."""
        body = json.dumps({"key_pair_name": key_pair_name, "region": region, "written": int(time.time()),
                           "meaning": "CreateKeyPair was sent for this key pair and its private key is not "
                                      "saved yet; sshkeys.ecs.ecs_keypair removes this file"}).encode("utf-8")
        temp = f"{self.path}.{os.getpid()}.tmp"
        failed = f"cannot write the marker {self.path}"
        try:
            fd = _create_private(temp)
        except OSError as exc:
            _discard(temp)  # left by a crashed run of this same process id: the next run may create it
            raise KeyFileError(f"{failed}: {exc.strerror or type(exc).__name__}") from None
        _fill_and_rename(fd, temp, self.path, body + b"\n", None, failed)

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return
        except OSError:
            return
        sync_directory(self.path)

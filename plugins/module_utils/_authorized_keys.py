# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the authorized_keys file model and its safe writer.

Two halves, both standard library only because they run on managed hosts:

* ``AuthorizedKeys``: a lossless model of the file. ``AuthorizedKeys.parse(text).render() ==
  text`` for every input, whatever it holds (comments, blank lines, options with quoted commas
  and spaces, CRLF line ends, no final newline, lines sshd would not understand). Keys are
  identified by type and blob (``identity()``, the text ``"<type> <canonical base64>"``); edits
  happen in memory and only the lines they name are re-rendered.
* ``KeysFile``: opens the directory without following symbolic links (unless asked), takes an
  advisory lock on a lock file next to the keys file, reads, and writes once: temporary file in
  the same directory, fsync, rename, fsync of the directory, owner/mode/SELinux context kept.
  Optional timestamped backup, and restore from such a backup.

Typical use (read, edit, write under one lock, so concurrent runs cannot lose keys)::

    with KeysFile(path, owner=(uid, gid), create_dir=True) as handle:
        model = handle.read()
        model.append(parse_key_line("ssh-ed25519 AAAA... alice"))
        handle.write(model.render(), backup=True)
"""

from __future__ import annotations

import base64
import binascii
import errno
import fcntl
import os
import re
import stat
import struct
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, List, Optional, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import (
    PublicKey,
    SSHKeyError,
    looks_like_private_key,
    parse_public_key,
)

__all__ = [
    "AuthorizedKeysError",
    "KeyLine",
    "AuthorizedKeys",
    "KeysFile",
    "parse_key_line",
    "make_key_line",
    "split_options",
    "validate_options",
    "read_keys_file",
    "KNOWN_OPTIONS",
]

# Option names sshd understands in authorized_keys (sshd(8), AUTHORIZED_KEYS FILE FORMAT).
# Lines already in a file are kept whatever they hold; options given by the user are checked
# against this list so that a typo fails the task instead of silently disabling the key.
KNOWN_OPTIONS = frozenset(
    (
        "agent-forwarding", "cert-authority", "command", "environment", "expiry-time", "from",
        "no-agent-forwarding", "no-port-forwarding", "no-pty", "no-user-rc", "no-x11-forwarding",
        "permitlisten", "permitopen", "port-forwarding", "principals", "pty", "no-touch-required",
        "verify-required", "restrict", "tunnel", "user-rc", "x11-forwarding",
    )
)
# Options that take a quoted value (name="value"); the others are bare flags.
VALUED_OPTIONS = frozenset(
    ("command", "environment", "expiry-time", "from", "permitlisten", "permitopen", "principals", "tunnel")
)

_KEY_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._+]*-[A-Za-z0-9@._+-]*$")  # every key type has a dash
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_WHITESPACE = " \t"
_FIELDS_RE = re.compile(r"[ \t]+")
_BASE64_BODY_RE = re.compile(r"^[A-Za-z0-9+/=]{16,}$")

LOCK_TIMEOUT = 60.0


class AuthorizedKeysError(Exception):
    """One error type for the model and the writer.

    ``reason`` is a short machine-readable word (``malformed``, ``symlink``, ``owner``,
    ``readonly``, ``nospace``, ``missing``, ``locked``, ``io``) so callers and tests can branch
    on it. Messages never quote file content: a pasted private key must not end up in a log.
    """

    def __init__(self, message: str, reason: str = "io") -> None:
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Lines
# --------------------------------------------------------------------------------------------

@dataclass
class KeyLine:
    """One line of the file, as read, plus what could be understood of it.

    ``raw`` is the line without its terminator and ``eol`` the terminator itself (``"\\n"``,
    ``"\\r\\n"`` or ``""`` for a last line without one), so rendering is exact. ``kind`` is
    ``key``, ``comment``, ``blank`` or ``invalid``; for ``invalid`` lines ``problem`` says why,
    in words that never repeat the line. ``number`` is the 1-based line number in the file the
    line was read from (``None`` for lines created in memory).
    """

    raw: str
    eol: str = "\n"
    kind: str = "key"
    options: Optional[str] = None
    key_type: Optional[str] = None
    key_base64: Optional[str] = None
    comment: Optional[str] = None
    blob: Optional[bytes] = None
    problem: Optional[str] = None
    number: Optional[int] = None
    ident: Optional[str] = field(default=None, compare=False, repr=False)

    @property
    def is_key(self) -> bool:
        return self.kind == "key"

    def identity(self) -> Optional[str]:
        """``"<type> <base64>"`` with canonical base64 of the blob; ``None`` for non-key lines."""
        if self.kind != "key" or self.blob is None:
            return None
        if self.ident is not None:
            return self.ident
        return _identity_of(self.key_type, self.blob)

    def public_key(self) -> Optional[PublicKey]:
        """The validated key (fingerprints, bits), or ``None`` if the line is not a usable key."""
        if self.kind != "key":
            return None
        try:
            return parse_public_key(f"{self.key_type} {base64.b64encode(self.blob).decode('ascii')}")
        except SSHKeyError:
            return None

    def looks_private(self) -> bool:
        """True when the line holds private key material (its text must then never be shown)."""
        return looks_like_private_key(self.raw)

    def option_list(self) -> List[str]:
        return split_options(self.options) if self.options else []

    def text(self) -> str:
        return self.raw + self.eol


def _identity_of(key_type: str, blob: bytes) -> str:
    return f"{key_type} {binascii.b2a_base64(blob, newline=False).decode('ascii')}"


def _decode_blob(key_type: str, key_base64: str) -> Tuple[Optional[bytes], Optional[str]]:
    """(blob, None) when the base64 decodes to a blob of the stated type, else (None, problem)."""
    if not _BASE64_RE.match(key_base64):
        return None, "the key data is not base64"
    try:
        # The pattern above already limited the alphabet; only padding errors are left.
        blob = binascii.a2b_base64(key_base64)
    except (binascii.Error, ValueError):
        return None, "the key data is not valid base64"
    wanted = key_type.encode("ascii", "replace")
    if len(blob) < 4:
        return None, "the key data is truncated"
    (length,) = struct.unpack_from(">I", blob)
    if 4 + length > len(blob):
        return None, "the key data is truncated"
    if blob[4:4 + length] != wanted:
        return None, "the key type does not match the key data"
    return blob, None


def _scan_options(text: str) -> Tuple[Optional[int], Optional[str]]:
    """Index just past the options field that starts ``text`` (sshd rules), or (None, problem).

    The field ends at the first space or tab outside double quotes; inside quotes ``\\"`` is an
    escaped quote. An unterminated quote makes the whole line unusable, as it does for sshd.
    """
    in_quotes = False
    i = 0
    while i < len(text):
        char = text[i]
        if in_quotes:
            if char == "\\" and i + 1 < len(text) and text[i + 1] == '"':
                i += 2
                continue
            if char == '"':
                in_quotes = False
        elif char == '"':
            in_quotes = True
        elif char in _WHITESPACE:
            return i, None
        i += 1
    if in_quotes:
        return None, "an option has an unterminated quote"
    return None, "options are not followed by a key"


def split_options(options: str) -> List[str]:
    """Split an options field at the commas outside double quotes."""
    parts: List[str] = []
    current: List[str] = []
    in_quotes = False
    i = 0
    while i < len(options):
        char = options[i]
        if in_quotes and char == "\\" and i + 1 < len(options) and options[i + 1] == '"':
            current.append(char + '"')
            i += 2
            continue
        if char == '"':
            in_quotes = not in_quotes
        if char == "," and not in_quotes:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def validate_options(options: str) -> None:
    """Raise ``AuthorizedKeysError`` unless ``options`` is a field sshd would accept.

    Used for options given by the user, so that a typo fails before anything is written.
    """
    if options == "":
        return
    if "\n" in options or "\r" in options:
        raise AuthorizedKeysError("options must be on one line", reason="malformed")
    end, problem = _scan_options(options + " ")
    if end is None or end != len(options):
        raise AuthorizedKeysError(
            problem if end is None else "options contain a space or tab outside double quotes",
            reason="malformed",
        )
    for part in split_options(options):
        name, sep, value = part.partition("=")
        lowered = name.lower()
        if lowered not in KNOWN_OPTIONS:
            raise AuthorizedKeysError(
                f"unknown option {name!r}; sshd knows: {', '.join(sorted(KNOWN_OPTIONS))}",
                reason="malformed",
            )
        if lowered in VALUED_OPTIONS:
            if not sep or len(value) < 2 or not (value.startswith('"') and value.endswith('"')):
                raise AuthorizedKeysError(f'option {name!r} needs a value in double quotes: {name}="..."',
                                          reason="malformed")
        elif sep:
            raise AuthorizedKeysError(f"option {name!r} takes no value", reason="malformed")


def _parse_body(body: str) -> dict:
    """Fields of a key line (without its terminator), or {'problem': ...}.

    Mirrors what sshd does: if the first word is a key type followed by key data, there are no
    options; otherwise the first field is options and the key comes after it.
    """
    stripped = body.lstrip(_WHITESPACE)
    first = _split_key_fields(stripped)
    first_problem = None
    if first is not None:
        key_type, key_base64, comment = first
        blob, first_problem = _decode_blob(key_type, key_base64)
        if blob is not None:
            return dict(options=None, key_type=key_type, key_base64=key_base64, comment=comment, blob=blob)
    # "type data" that did not decode is reported as such, not as a problem with options.
    end, problem = _scan_options(stripped)
    if end is None:
        if first_problem is None and stripped.count('"') % 2 == 0:
            problem = "not a key line"
        return dict(problem=first_problem or problem)
    options = stripped[:end]
    rest = _split_key_fields(stripped[end:].lstrip(_WHITESPACE))
    if rest is None:
        return dict(problem=first_problem or "not a key line (no key type and key data)")
    key_type, key_base64, comment = rest
    blob, problem = _decode_blob(key_type, key_base64)
    if blob is None:
        return dict(problem=first_problem or problem)
    return dict(options=options, key_type=key_type, key_base64=key_base64, comment=comment, blob=blob)


def _split_key_fields(text: str) -> Optional[Tuple[str, str, Optional[str]]]:
    """'type base64 [comment]' -> parts, or None when the first two words do not fit."""
    words = _FIELDS_RE.split(text, 2)
    if len(words) < 2 or not _KEY_TYPE_RE.match(words[0]):
        return None
    comment = words[2] if len(words) > 2 else None
    return words[0], words[1], comment if comment else None


def _classify(raw: str, eol: str, number: Optional[int]) -> KeyLine:
    stripped = raw.strip(_WHITESPACE + "\r")
    if not stripped:
        return KeyLine(raw=raw, eol=eol, kind="blank", number=number)
    if stripped.startswith("#"):
        return KeyLine(raw=raw, eol=eol, kind="comment", number=number)
    fields = _parse_body(raw)
    if "problem" in fields:
        return KeyLine(raw=raw, eol=eol, kind="invalid", problem=fields["problem"], number=number)
    return KeyLine(raw=raw, eol=eol, kind="key", number=number,
                   ident=_identity_of(fields["key_type"], fields["blob"]), **fields)


def make_key_line(key_type: str, key_base64: str, comment: Optional[str] = None,
                  options: Optional[str] = None, eol: str = "\n") -> KeyLine:
    """A new key line rendered in the usual form ``[options ]type base64[ comment]``."""
    blob, problem = _decode_blob(key_type, key_base64)
    if blob is None:
        raise AuthorizedKeysError(f"invalid key: {problem}", reason="malformed")
    if options:
        validate_options(options)
    if comment is not None and ("\n" in comment or "\r" in comment):
        raise AuthorizedKeysError("a key comment must be on one line", reason="malformed")
    parts = [options] if options else []
    parts += [key_type, key_base64]
    if comment:
        parts.append(comment)
    return KeyLine(raw=" ".join(parts), eol=eol, kind="key", options=options or None, key_type=key_type,
                   key_base64=key_base64, comment=comment or None, blob=blob, ident=_identity_of(key_type, blob))


def parse_key_line(text: str) -> KeyLine:
    """One key line given by a user (options allowed), or ``AuthorizedKeysError``.

    The key itself is validated in full (``_openssh.parse_public_key``). Messages say what is
    wrong without quoting the text; pasted private key material gets ``reason='private'``.
    """
    if not isinstance(text, str):
        raise AuthorizedKeysError(f"a key must be a string, not {type(text).__name__}", reason="malformed")
    if looks_like_private_key(text):
        raise AuthorizedKeysError(
            "a private key was given where a public key is expected; refusing to use it", reason="private")
    body = text.strip(_WHITESPACE + "\r\n")
    if "\n" in body or "\r" in body:
        raise AuthorizedKeysError("a key must be a single line", reason="malformed")
    line = _classify(body, "\n", None)
    if line.kind != "key":
        raise AuthorizedKeysError(f"not a public key line: {line.problem or 'it is empty or a comment'}",
                                  reason="malformed")
    try:
        parse_public_key(f"{line.key_type} {line.key_base64}")
    except SSHKeyError as exc:
        raise AuthorizedKeysError(f"not a valid public key: {exc}", reason="malformed") from None
    if line.options:
        validate_options(line.options)
    return make_key_line(line.key_type, line.key_base64, line.comment, line.options)


# --------------------------------------------------------------------------------------------
# The file
# --------------------------------------------------------------------------------------------

class AuthorizedKeys:
    """The lines of one authorized_keys file, editable in memory.

    Edits keep every other line byte for byte. Appending after a last line that had no
    terminator gives that line one (the only way to put a line after it).
    """

    def __init__(self, lines: Optional[List[KeyLine]] = None) -> None:
        self.lines: List[KeyLine] = list(lines or [])
        # identity -> lines in file order, built on the first find() and kept up to date by
        # the edit methods, so that many lookups in a big file stay linear overall.
        self._index: Optional[dict] = None

    @classmethod
    def parse(cls, text: str) -> "AuthorizedKeys":
        lines: List[KeyLine] = []
        pieces = text.split("\n")
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            if last and piece == "":
                break
            if last:
                raw, eol = piece, ""
            elif piece.endswith("\r"):
                raw, eol = piece[:-1], "\r\n"
            else:
                raw, eol = piece, "\n"
            lines.append(_classify(raw, eol, index + 1))
        return cls(lines)

    def render(self) -> str:
        return "".join(line.raw + line.eol for line in self.lines)

    def copy(self) -> "AuthorizedKeys":
        return AuthorizedKeys(self.lines)

    @property
    def newline(self) -> str:
        """The terminator new lines get: CRLF if the file already uses it, else LF."""
        for line in self.lines:
            if line.eol:
                return line.eol
        return "\n"

    def keys(self) -> List[KeyLine]:
        return [line for line in self.lines if line.kind == "key"]

    def invalid(self) -> List[KeyLine]:
        return [line for line in self.lines if line.kind == "invalid"]

    def sensitive(self) -> List[bool]:
        """For each line, whether its text must never be shown (private key material).

        A marker line is not enough: the body lines of a PEM or PuTTY block are plain base64 and
        look like nothing in particular, so whole blocks count, and so does any unreadable line
        that is nothing but base64.
        """
        if not any(line.kind == "invalid" for line in self.lines):
            return [False] * len(self.lines)
        flags = []
        in_block = False
        for line in self.lines:
            text = line.raw.strip()
            starts = text.startswith("-----BEGIN") or text.startswith("---- BEGIN") or text.startswith("PuTTY-User-Key-File")
            if line.kind == "invalid" and (starts or looks_like_private_key(line.raw)):
                in_block = True
            flag = line.kind == "invalid" and (in_block or looks_like_private_key(line.raw)
                                               or bool(_BASE64_BODY_RE.match(text)))
            flags.append(flag)
            if in_block and (text.startswith("-----END") or text.startswith("---- END")
                             or text.startswith("Private-MAC") or line.kind != "invalid"):
                in_block = False
        return flags

    def find(self, identity: str) -> List[KeyLine]:
        """Every key line for ``identity`` (``"type base64"``, any base64 padding form)."""
        wanted = _normalise_identity(identity)
        if self._index is None:
            index: dict = {}
            for line in self.lines:
                if line.kind == "key":
                    index.setdefault(line.identity(), []).append(line)
            self._index = index
        return list(self._index.get(wanted, ()))

    def _index_drop(self, line: KeyLine) -> None:
        if self._index is not None and line.kind == "key":
            group = self._index.get(line.identity(), [])
            for position, candidate in enumerate(group):
                if candidate is line:
                    del group[position]
                    break

    def index(self, line: KeyLine) -> int:
        """Position of this very line object (identity, not equality: lines may repeat)."""
        for position, candidate in enumerate(self.lines):
            if candidate is line:
                return position
        raise ValueError("line is not in this file")

    def _terminate_last(self) -> None:
        if self.lines and self.lines[-1].eol == "":
            self.replace_line(self.lines[-1], self.lines[-1], eol=self.newline if len(self.lines) > 1 else "\n")

    def append(self, line: KeyLine) -> KeyLine:
        """Add ``line`` at the end, with the file's line terminator."""
        self._terminate_last()
        new = replace(line, eol=self.newline, number=None)
        self.lines.append(new)
        if self._index is not None and new.kind == "key":
            self._index.setdefault(new.identity(), []).append(new)
        return new

    def insert(self, position: int, line: KeyLine) -> KeyLine:
        if position >= len(self.lines):
            return self.append(line)
        new = replace(line, eol=self.newline, number=None)
        self.lines.insert(position, new)
        self._index = None  # order within a key's group may change: rebuild on the next find
        return new

    def remove(self, line: KeyLine) -> None:
        position = self.index(line)
        del self.lines[position]
        self._index_drop(line)
        # A removed last line leaves its predecessor last: keep the file's "no final newline"
        # shape only if the removed line had it, so untouched lines stay as they were.

    def replace_line(self, old: KeyLine, new: KeyLine, eol: Optional[str] = None) -> KeyLine:
        """Put ``new`` where ``old`` was, with ``old``'s terminator (or ``eol``)."""
        position = self.index(old)
        placed = replace(new, eol=old.eol if eol is None else eol, number=old.number if new is old else None)
        self.lines[position] = placed
        if self._index is not None:
            self._index_drop(old)
            if placed.kind == "key":
                group = self._index.setdefault(placed.identity(), [])
                group.append(placed)
                # keep file order inside the group
                order = {id(line): n for n, line in enumerate(self.lines)} if len(group) > 1 else None
                if order is not None:
                    group.sort(key=lambda line: order[id(line)])
        return placed

    def remove_lines(self, lines: List[KeyLine]) -> None:
        """Remove many lines in one pass (these very objects)."""
        doomed = {id(line) for line in lines}
        self.lines = [line for line in self.lines if id(line) not in doomed]
        self._index = None

    def remove_key(self, identity: str) -> List[KeyLine]:
        """Remove every line of ``identity``; returns the removed lines."""
        found = self.find(identity)
        for line in found:
            self.remove(line)
        return found


def _normalise_identity(identity: str) -> str:
    words = identity.split()
    if len(words) < 2:
        raise AuthorizedKeysError("a key identity is 'type base64'", reason="malformed")
    try:
        blob = base64.b64decode(words[1] + "=" * (-len(words[1]) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise AuthorizedKeysError("a key identity is 'type base64'", reason="malformed") from None
    return f"{words[0]} {base64.b64encode(blob).decode('ascii')}"


# --------------------------------------------------------------------------------------------
# Reading and writing safely
# --------------------------------------------------------------------------------------------

def _decode(data: bytes) -> str:
    # surrogateescape: bytes that are not UTF-8 survive the round trip unchanged.
    return data.decode("utf-8", "surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _os_error(exc: OSError, what: str) -> AuthorizedKeysError:
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


ContextHook = Callable[[str, str, bool], None]
"""``hook(temp_path, final_path, existed)``: give ``temp_path`` the SELinux context that
``final_path`` has (or would get by default when it did not exist). Built by the module layer
from ansible's helpers; ``None`` where SELinux does not matter."""


@dataclass
class FileState:
    """What is known about the keys file on disk when it was read."""

    exists: bool
    uid: Optional[int] = None
    gid: Optional[int] = None
    mode: Optional[int] = None
    data: bytes = b""


def _check_owner(st: os.stat_result, allowed_uid: Optional[int], what: str, path: str) -> None:
    # sshd (StrictModes) accepts files owned by the user or root; anything else means someone
    # else controls the file, and writing there on the user's behalf would be wrong.
    if allowed_uid is None:
        return
    if st.st_uid not in (allowed_uid, 0):
        raise AuthorizedKeysError(
            f"{what} {path} is owned by uid {st.st_uid}, not by the user (uid {allowed_uid}) or root",
            reason="owner")


def read_keys_file(path: str, follow: bool = False, owner_uid: Optional[int] = None) -> FileState:
    """Read the keys file without a lock and without creating anything (for check mode and info).

    A missing file or directory is ``FileState(exists=False)``. Symbolic links are refused
    unless ``follow``.
    """
    if follow:
        path = os.path.realpath(path)
    directory, name = os.path.split(os.path.abspath(path))
    try:
        dir_fd = _open_directory(directory, follow=follow)
    except FileNotFoundError:
        return FileState(exists=False)
    try:
        _check_owner(os.fstat(dir_fd), owner_uid, "directory", directory)
        return _read_at(dir_fd, name, path, follow, owner_uid)
    finally:
        os.close(dir_fd)


def _open_directory(directory: str, follow: bool) -> int:
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
        raise _os_error(exc, f"cannot open {directory}") from None


def _read_at(dir_fd: int, name: str, path: str, follow: bool, owner_uid: Optional[int]) -> FileState:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW), dir_fd=dir_fd)
    except FileNotFoundError:
        return FileState(exists=False)
    except OSError as exc:
        if exc.errno == errno.ELOOP or _is_symlink_at(name, dir_fd):
            raise AuthorizedKeysError(
                f"{path} is a symbolic link; refusing to follow it (set follow to allow)",
                reason="symlink") from None
        raise _os_error(exc, f"cannot read {path}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AuthorizedKeysError(f"{path} is not a regular file", reason="io")
        _check_owner(st, owner_uid, "file", path)
        return FileState(exists=True, uid=st.st_uid, gid=st.st_gid, mode=stat.S_IMODE(st.st_mode),
                         data=_read_fd(fd))
    finally:
        os.close(fd)


class KeysFile:
    """The keys file opened for a locked read-modify-write.

    ``KeysFile(path, owner=(uid, gid))`` is a context manager. On enter it opens the directory
    (creating it with mode 0700 and the owner when ``create_dir``), refusing symbolic links
    unless ``follow``, and takes an exclusive ``fcntl.flock`` on ``.<name>.lock`` in the same
    directory; the lock is held until exit, so a concurrent run waits and then reads the file
    this one wrote. Inside: ``read()`` / ``read_text()``, ``write(text, backup=False)``,
    ``backup()``, ``restore(backup_path)``.

    ``owner`` is the (uid, gid) a new file (and a created directory) gets; an existing file keeps
    its owner and mode. A file or directory owned by anyone but that uid or root is refused.
    """

    def __init__(self, path: str, owner: Optional[Tuple[int, int]] = None, create_dir: bool = False,
                 follow: bool = False, file_mode: int = 0o600, dir_mode: int = 0o700,
                 context_hook: Optional[ContextHook] = None, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.requested_path = path
        self.follow = follow
        self.path = os.path.realpath(path) if follow else os.path.abspath(path)
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
            self.dir_fd = _open_directory(self.directory, self.follow)
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
            raise _os_error(exc, f"cannot open {parent} to create {base}") from None
        try:
            try:
                os.mkdir(base, self.dir_mode, dir_fd=parent_fd)
                self.created_dir = True
            except FileExistsError:
                pass  # made by a concurrent run in the meantime: use it, after the same checks
            except OSError as exc:
                raise _os_error(exc, f"cannot create {self.directory}") from None
            try:
                self.dir_fd = _open_nofollow(base, os.O_RDONLY | os.O_DIRECTORY, parent_fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise AuthorizedKeysError(
                        f"{self.directory} is a symbolic link; refusing to follow it", reason="symlink") from None
                raise _os_error(exc, f"cannot open {self.directory}") from None
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

    def _lock(self) -> None:
        try:
            self.lock_fd = _open_nofollow(self.lock_name, os.O_RDWR | os.O_CREAT, self.dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise AuthorizedKeysError(
                    f"lock file {os.path.join(self.directory, self.lock_name)} is a symbolic link",
                    reason="symlink") from None
            raise _os_error(exc, f"cannot create the lock file in {self.directory}") from None
        st = os.fstat(self.lock_fd)
        if self.owner and os.geteuid() == 0 and st.st_uid != self.owner[0]:
            # So that the user's own runs (without root) can take the same lock later.
            os.fchown(self.lock_fd, self.owner[0], self.owner[1])
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise _os_error(exc, "cannot lock the keys file") from None
            if time.monotonic() >= deadline:
                raise AuthorizedKeysError(
                    f"{self.path} stayed locked by another process for {self.lock_timeout:.0f} s",
                    reason="locked")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    # -- reading -------------------------------------------------------------------------------

    def read_state(self) -> FileState:
        self._require_open()
        self.state = _read_at(self.dir_fd, self.name, self.path, self.follow, self._uid)
        return self.state

    def read_text(self) -> str:
        return _decode(self.read_state().data)

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
            return state.uid, state.gid, state.mode
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

    def write(self, text: str, backup: bool = False) -> Optional[str]:
        """Replace the file's content atomically; returns the backup path when one was made.

        Owner and mode of an existing file are kept (a new file gets ``owner`` and 0600), and
        the SELinux context through ``context_hook``. Any failure removes the temporary file
        and leaves the original untouched.
        """
        self._require_open()
        uid, gid, mode = self._target_attributes()
        backup_path = self.backup() if backup and self.state.exists else None
        self._remove_stale_temps()
        temp = self._temp_name("tmp")
        try:
            self._write_new(temp, _encode(text), uid, gid, mode)
            if self.context_hook is not None:
                self.context_hook(os.path.join(self.directory, temp), self.path, self.state.exists)
            if not self.follow and _is_symlink_at(self.name, self.dir_fd):
                # Appeared after we read: rename would replace the link, but refuse loudly.
                raise AuthorizedKeysError(f"{self.path} became a symbolic link", reason="symlink")
            os.rename(temp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        except OSError as exc:
            self._discard(temp)
            raise _os_error(exc, f"cannot write {self.path}") from None
        except BaseException:
            self._discard(temp)
            raise
        try:
            os.fsync(self.dir_fd)  # make the rename itself durable
        except OSError:
            pass
        self.state = FileState(exists=True, uid=uid, gid=gid, mode=mode, data=_encode(text))
        return backup_path

    def _remove_stale_temps(self) -> None:
        """Temporary files left by writers that were killed: we hold the lock, so no live
        writer owns one, and they would otherwise pile up next to the keys."""
        prefix = f".{self.name}.tmp."
        try:
            names = os.listdir(self.dir_fd)
        except OSError:
            return
        for name in names:
            if name.startswith(prefix):
                self._discard(name)

    def _discard(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.dir_fd)
        except OSError:
            pass

    def backup(self) -> str:
        """Copy the current file to ``<name>.<pid>.<YYYY-mm-dd@HH:MM:SS>~`` next to it."""
        self._require_open()
        state = self.state if self.state is not None else self.read_state()
        if not state.exists:
            raise AuthorizedKeysError(f"{self.path} does not exist: nothing to back up", reason="missing")
        stamp = time.strftime("%Y-%m-%d@%H:%M:%S")
        base = f"{self.name}.{os.getpid()}.{stamp}"
        # Written like the file itself (temporary name, then rename), so a kill mid-way never
        # leaves a partial backup that someone could later restore.
        temp = self._temp_name("tmp")
        try:
            self._write_new(temp, state.data, state.uid, state.gid, state.mode)
            for attempt in range(100):
                name = f"{base}~" if attempt == 0 else f"{base}.{attempt}~"
                try:
                    os.stat(name, dir_fd=self.dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    os.rename(temp, name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
                    return os.path.join(self.directory, name)
        except OSError as exc:
            self._discard(temp)
            raise _os_error(exc, f"cannot back up {self.path}") from None
        self._discard(temp)
        raise AuthorizedKeysError(f"cannot find a free backup name for {self.path}", reason="io")

    def restore(self, backup_path: str) -> None:
        """Put a backup made by ``backup()`` back in place (atomically, same safeguards)."""
        self._require_open()
        directory, name = os.path.split(os.path.abspath(backup_path))
        if directory != self.directory:
            raise AuthorizedKeysError("a backup must be in the same directory as the keys file", reason="io")
        try:
            fd = _open_nofollow(name, os.O_RDONLY, self.dir_fd)
        except OSError as exc:
            raise _os_error(exc, f"cannot read the backup {backup_path}") from None
        try:
            data = _read_fd(fd)
        finally:
            os.close(fd)
        self.write(_decode(data))


def iter_numbered(model: AuthorizedKeys) -> Iterator[Tuple[int, KeyLine]]:
    """(line number in the rendered file, line) pairs, 1-based."""
    for position, line in enumerate(model.lines, start=1):
        yield position, line

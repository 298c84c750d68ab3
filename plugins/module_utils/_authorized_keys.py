# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the authorized_keys file model.

``AuthorizedKeys`` is a lossless model of the file. ``AuthorizedKeys.parse(text).render() ==
text`` for every input, whatever it holds (comments, blank lines, options with quoted commas
and spaces, CRLF line ends, no final newline, lines sshd would not understand). Keys are
identified by type and blob (``identity()``, the text ``"<type> <canonical base64>"``); edits
happen in memory and only the lines they name are re-rendered.

Standard library only: this runs on managed hosts. The file on disk is ``_keys_file``; what
of it output may show, ``_keys_display``.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass, field, replace
from typing import List, Optional, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import looks_like_private_key, quote_input
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import (
    MAX_LINE_LENGTH,
    PublicKey,
    SSHKeyError,
    public_key_from_blob,
)

__all__ = [
    "AuthorizedKeysError",
    "KeyLine",
    "AuthorizedKeys",
    "parse_key_line",
    "make_key_line",
    "with_fields",
    "check_comment",
    "split_options",
    "validate_options",
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

_KEY_TYPE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._+]*-[A-Za-z0-9@._+-]*")  # every key type has a dash
# The usual line: type, one space, base64, and a comment after one space (or none). A comment
# that starts with a space or tab, or a line with anything else, takes the general path.
_COMMON_LINE = re.compile(r"([A-Za-z0-9][A-Za-z0-9@._+]*-[A-Za-z0-9@._+-]*) ([A-Za-z0-9+/]+={0,2})"
                          r"(?: ([^ \t\r][^\r]*))?")
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_WHITESPACE = " \t"
_FIELDS_RE = re.compile(r"[ \t]+")
# Characters a line given by a user must not hold: sshd stops at a NUL, and escape sequences
# would be written into the file and echoed raw to terminals. Tab is a field separator.
_USER_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\u2028\u2029]")


class AuthorizedKeysError(SshKeysError):
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
    line was read from (``None`` for lines created in memory). ``ident`` is the key's identity,
    ``"<type> <canonical base64>"``, worked out when the line is read.

    Lines read from a file are checked as far as comparing them needs (base64, the type inside
    the data), without decoding the whole key; ``public_key()`` decodes and validates it in full
    for the lines a task reports on.
    """

    raw: str
    eol: str = "\n"
    kind: str = "key"
    options: Optional[str] = None
    key_type: Optional[str] = None
    key_base64: Optional[str] = None
    comment: Optional[str] = None
    problem: Optional[str] = None
    number: Optional[int] = None
    ident: Optional[str] = field(default=None, compare=False, repr=False)

    def identity(self) -> Optional[str]:
        """``"<type> <base64>"`` with canonical base64 of the blob; ``None`` for non-key lines."""
        return self.ident if self.kind == "key" else None

    def public_key(self) -> Optional[PublicKey]:
        """The validated key (fingerprints, bits), or ``None`` if the line is not a usable key."""
        if self.kind != "key":
            return None
        try:
            return public_key_from_blob(binascii.a2b_base64(self.key_base64))
        except (SSHKeyError, binascii.Error, ValueError):
            return None

    def option_list(self) -> List[str]:
        return split_options(self.options) if self.options else []


def _check_key_data(key_type: str, key_base64: str, checked: bool = False) -> Tuple[Optional[str], Optional[str]]:
    """(identity, None) when the base64 holds a blob of the stated type, else (None, problem).

    Only the start (the type inside the data) and the end (whether the text is the canonical
    encoding) are looked at: comparing keys needs no more, and a file of many thousands of lines
    is read at the speed of a regular expression. ``checked`` says the alphabet was matched.
    """
    if not checked and not _BASE64_RE.fullmatch(key_base64):
        return None, "the key data is not base64"
    if len(key_base64) % 4:
        return None, "the key data is not valid base64"
    prefix, next_chars, width, size = _PREFIXES.get(key_type) or _type_prefix(key_type)
    start = len(prefix)
    # Past the first group after the prefix the blob is longer than the type's head: the size
    # needs counting only for data that short.
    if not (key_base64.startswith(prefix)
            and (len(key_base64) > start + 4 or len(key_base64) // 4 * 3 - key_base64.count("=", -2) >= size)
            and (not width or key_base64[start:start + width] in next_chars)):
        return None, _key_data_problem(key_type, key_base64)
    if key_base64[-1] == "=" and key_base64[-2 if key_base64[-2] != "=" else -3] not in _CANONICAL_BEFORE_PAD[
            key_base64[-2] == "="]:
        # Unused bits set in the last group: the same blob has another (canonical) spelling.
        return _identity_of(key_type, binascii.a2b_base64(key_base64)), None
    return f"{key_type} {key_base64}", None


# Before "==" the last character carries 2 bits of data and 4 unused ones, before "=" 4 and 2:
# the canonical spelling has them zero (index of the character in the alphabet % 16, % 4).
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_CANONICAL_BEFORE_PAD = {True: frozenset(_ALPHABET[::16]), False: frozenset(_ALPHABET[::4])}
_PREFIXES: dict = {}


def _type_prefix(key_type: str) -> Tuple[str, frozenset, int, int]:
    """(base64 text every blob of this type starts with, the texts the next characters may be,
    how many characters those are, the blob's least size) for the type name and its length field.

    The head (length and name) rarely fills whole base64 groups: its last one or two bytes
    fix the next two or three characters but for a few low bits, so the texts those characters
    may take are listed once, and a line is checked by a set lookup instead of a decode.
    """
    cached = _PREFIXES.get(key_type)
    if cached is None:
        encoded = key_type.encode("ascii", "replace")
        head = struct.pack(">I", len(encoded)) + encoded
        whole = len(head) // 3 * 3
        rest = head[whole:]
        next_chars = frozenset(
            binascii.b2a_base64(rest + bytes((following,)) + bytes(2 - len(rest)), newline=False)[:len(rest) + 1]
            .decode("ascii") for following in range(256)) if rest else frozenset()
        cached = (binascii.b2a_base64(head[:whole], newline=False).decode("ascii"), next_chars,
                  len(rest) + 1 if rest else 0, len(head))
        if len(_PREFIXES) < 256:  # a file of made-up type names must not grow this without end
            _PREFIXES[key_type] = cached
    return cached


def _key_data_problem(key_type: str, key_base64: str) -> str:
    """Why the key data does not hold a blob of the stated type (decoded in full: rare)."""
    try:
        blob = binascii.a2b_base64(key_base64)
    except (binascii.Error, ValueError):
        return "the key data is not valid base64"
    if len(blob) < 4:
        return "the key data is truncated"
    (length,) = struct.unpack_from(">I", blob)
    if 4 + length > len(blob):
        return "the key data is truncated"
    return "the key type does not match the key data"


def _identity_of(key_type: str, blob: bytes) -> str:
    return f"{key_type} {binascii.b2a_base64(blob, newline=False).decode('ascii')}"


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
    if _USER_CONTROL.search(options):
        raise AuthorizedKeysError("options must not hold control characters (NUL, escape, ...): sshd rejects "
                                  "the whole line", reason="malformed")
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
                f"unknown option {quote_input(name)}; sshd knows: {', '.join(sorted(KNOWN_OPTIONS))}",
                reason="malformed",
            )
        if lowered in VALUED_OPTIONS:
            if not sep or len(value) < 2 or not (value.startswith('"') and value.endswith('"')):
                raise AuthorizedKeysError(f'option {lowered} needs a value in double quotes: {lowered}="..."',
                                          reason="malformed")
        elif sep:
            raise AuthorizedKeysError(f"option {lowered} takes no value", reason="malformed")


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
        ident, first_problem = _check_key_data(key_type, key_base64)
        if ident is not None:
            return dict(options=None, key_type=key_type, key_base64=key_base64, comment=comment, ident=ident)
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
    ident, problem = _check_key_data(key_type, key_base64)
    if ident is None:
        return dict(problem=first_problem or problem)
    return dict(options=options, key_type=key_type, key_base64=key_base64, comment=comment, ident=ident)


def _split_key_fields(text: str) -> Optional[Tuple[str, str, Optional[str]]]:
    """'type base64 [comment]' -> parts, or None when the first two words do not fit."""
    words = _FIELDS_RE.split(text, 2)
    if len(words) < 2 or not _KEY_TYPE_RE.fullmatch(words[0]):
        return None
    comment = words[2] if len(words) > 2 else None
    return words[0], words[1], comment if comment else None


def _classify(raw: str, eol: str, number: Optional[int]) -> KeyLine:
    common = _COMMON_LINE.fullmatch(raw)
    if common is not None:
        # Most lines are "type base64 comment" with single spaces: one match splits and checks them.
        key_type, key_base64, comment = common.groups()
        ident, _problem = _check_key_data(key_type, key_base64, checked=True)
        if ident is not None:
            return KeyLine(raw, eol, "key", None, key_type, key_base64, comment or None, None, number, ident)
    stripped = raw.strip(_WHITESPACE + "\r")
    if not stripped:
        return KeyLine(raw=raw, eol=eol, kind="blank", number=number)
    if stripped[0] == "#":
        return KeyLine(raw=raw, eol=eol, kind="comment", number=number)
    fields = _parse_body(raw)
    if "problem" in fields:
        return KeyLine(raw=raw, eol=eol, kind="invalid", problem=fields["problem"], number=number)
    return KeyLine(raw=raw, eol=eol, kind="key", number=number, **fields)


def with_fields(line: KeyLine, options: Optional[str], comment: Optional[str], eol: str = "\n") -> KeyLine:
    """``line``'s key (already checked) rendered anew with these options and comment, in the
    usual form ``[options ]type base64[ comment]``. Options and comment are the caller's to
    check: options a file already holds are kept as they are, whatever this module knows."""
    parts = [options] if options else []
    parts += [line.key_type, line.key_base64]
    if comment:
        parts.append(comment)
    return KeyLine(raw=" ".join(parts), eol=eol, kind="key", options=options or None, key_type=line.key_type,
                   key_base64=line.key_base64, comment=comment or None, ident=line.ident)


def check_comment(comment: Optional[str]) -> None:
    """A comment given by a user: one line, no control characters."""
    if comment is None:
        return
    if "\n" in comment or "\r" in comment:
        raise AuthorizedKeysError("a key comment must be on one line", reason="malformed")
    if _USER_CONTROL.search(comment):
        raise AuthorizedKeysError("a key comment must not hold control characters (NUL, escape sequences, ...)",
                                  reason="malformed")


def parse_key_line(text: str) -> KeyLine:
    """One key line given by a user (options allowed), or ``AuthorizedKeysError``.

    Parsed once: the fields are split as sshd splits them, the key is validated in full from its
    blob (``_openssh.public_key_from_blob``), options and comment are checked, and the line is
    built from those parts. Messages say what is wrong without quoting the text; pasted private
    key material gets ``reason='private'``.
    """
    if not isinstance(text, str):
        raise AuthorizedKeysError(f"a key must be a string, not {type(text).__name__}", reason="malformed")
    if looks_like_private_key(text):
        raise AuthorizedKeysError(
            "a private key was given where a public key is expected; refusing to use it", reason="private")
    body = text.strip(_WHITESPACE + "\r\n")
    if "\n" in body or "\r" in body:
        raise AuthorizedKeysError("a key must be a single line", reason="malformed")
    if _USER_CONTROL.search(body):
        raise AuthorizedKeysError("a key line must not hold control characters (NUL, escape sequences, ...)",
                                  reason="malformed")
    if len(body) > MAX_LINE_LENGTH:
        raise AuthorizedKeysError(f"a key line is longer than {MAX_LINE_LENGTH} characters", reason="malformed")
    line = _classify(body, "\n", None)
    if line.kind != "key":
        raise AuthorizedKeysError(f"not a public key line: {line.problem or 'it is empty or a comment'}",
                                  reason="malformed")
    try:
        public_key_from_blob(binascii.a2b_base64(line.key_base64))
    except SSHKeyError as exc:
        raise AuthorizedKeysError(f"not a valid public key: {exc}", reason="malformed") from None
    if line.options:
        validate_options(line.options)
    return line


def make_key_line(key_type: str, key_base64: str, comment: Optional[str] = None,
                  options: Optional[str] = None, eol: str = "\n") -> KeyLine:
    """A new key line from its parts, every part checked (the key data in full)."""
    ident, problem = _check_key_data(key_type, key_base64)
    if ident is None:
        raise AuthorizedKeysError(f"invalid key: {problem}", reason="malformed")
    if options:
        validate_options(options)
    check_comment(comment)
    return with_fields(KeyLine(raw="", key_type=key_type, key_base64=key_base64, ident=ident), options, comment, eol)


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
        pieces = text.split("\n")
        last = pieces.pop()  # what follows the final newline: "" unless the last line has none
        lines = []
        keep = lines.append
        common_line, check, new_line = _COMMON_LINE.fullmatch, _check_key_data, KeyLine
        for number, piece in enumerate(pieces, start=1):
            # _classify's fast path written out here: in a file of many thousands of lines the
            # call per line is a sizeable share of the whole read.
            common = common_line(piece)
            if common is not None:
                key_type, key_base64, comment = common.groups()
                ident = check(key_type, key_base64, True)[0]
                if ident is not None:
                    keep(new_line(piece, "\n", "key", None, key_type, key_base64, comment or None, None, number, ident))
                    continue
            keep(_classify(piece[:-1], "\r\n", number) if piece.endswith("\r") else _classify(piece, "\n", number))
        if last:
            keep(_classify(last, "", len(pieces) + 1))
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

    def find(self, identity: str) -> List[KeyLine]:
        """Every key line for ``identity`` (``"type base64"``, any base64 padding form)."""
        held = self._key_index().get(_normalise_identity(identity))
        if held is None:
            return []
        return list(held) if isinstance(held, list) else [held]

    def _key_index(self) -> dict:
        """identity -> its line, or a list of its lines in file order where a key repeats. Most
        keys appear once: holding the line itself spares a list per key in a file of thousands."""
        if self._index is None:
            index: dict = {}
            held_for = index.get
            for line in self.lines:
                if line.kind == "key":
                    held = held_for(line.ident)
                    if held is None:
                        index[line.ident] = line
                    elif isinstance(held, list):
                        held.append(line)
                    else:
                        index[line.ident] = [held, line]
            self._index = index
        return self._index

    def _index_add(self, line: KeyLine) -> None:
        """``line`` into a built index, after the lines of its key already there."""
        if self._index is None or line.kind != "key":
            return
        held = self._index.get(line.ident)
        if held is None:
            self._index[line.ident] = line
        elif isinstance(held, list):
            held.append(line)
        else:
            self._index[line.ident] = [held, line]

    def _index_drop(self, line: KeyLine) -> None:
        if self._index is None or line.kind != "key":
            return
        held = self._index.get(line.ident)
        if held is line:
            del self._index[line.ident]
        elif isinstance(held, list):
            rest = [candidate for candidate in held if candidate is not line]
            self._index[line.ident] = rest if len(rest) > 1 else rest[0]

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
        self._index_add(new)
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
        self._index_drop(old)
        self._index_add(placed)
        group = self._index.get(placed.ident) if self._index is not None and placed.kind == "key" else None
        if isinstance(group, list):  # keep file order inside the group
            order = {id(line): n for n, line in enumerate(self.lines)}
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

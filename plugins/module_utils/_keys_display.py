# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: what of an authorized_keys file output may show.

``display_lines`` is the only way file content reaches output (diffs, results): lines that may
hold private key material are withheld wherever they sit (comments, key comments, options,
unreadable lines), and control characters and bytes that are not UTF-8 are escaped, so that a
file can neither leak a pasted key nor put escape sequences on a terminal or break a result's
JSON. Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

import re
from typing import List, NamedTuple, Optional

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import AuthorizedKeys, KeyLine
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import (
    looks_like_private_key,
    may_hold_key_material,
    redact_key_material,
)

# What output escapes: control characters (C0, DEL, C1), the Unicode line separators, and bytes
# that were not UTF-8 (kept as surrogates by surrogateescape).
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\udc80-\udcff]")
# Lines that open or close a block of key material (PEM, RFC 4716, PuTTY).
_BLOCK_START = re.compile(r"^(?:-{4,5}\s*BEGIN\b|PuTTY-User-Key-File-)", re.IGNORECASE)
_BLOCK_END = re.compile(r"^(?:-{4,5}\s*END\b|Private-MAC:)", re.IGNORECASE)
_WHITESPACE = " \t"
WITHHELD = "# (line withheld: it may hold private key material)"


def printable(text: str) -> str:
    """text for output: control characters and bytes that were not UTF-8 as ``\\xNN`` escapes,
    so that a file cannot put escape sequences on a terminal or break the JSON of a result."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: "re.Match[str]") -> str:
    code = ord(match.group(0))
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: Optional[str]) -> str:
    """A field of a key line (comment, options) for output: key material withheld, escaped."""
    return printable(redact_key_material(text or ""))


class Shown(NamedTuple):
    """A line as output may show it: its text, and whether key material was withheld from it."""

    text: str
    withheld: bool


def _display_key(line: KeyLine) -> Shown:
    if not may_hold_key_material(line.options or "") and not may_hold_key_material(line.comment or ""):
        return Shown(printable(line.raw), False)
    parts = [shown(line.options)] if line.options else []
    parts += [line.key_type, line.key_base64]
    if line.comment:
        parts.append(shown(line.comment))
    return Shown(" ".join(parts), True)


def display_lines(model: AuthorizedKeys) -> List[Shown]:
    """Each line of the file as output may show it (without its terminator).

    A private key block is withheld from its first line to its last, whether its lines are
    unreadable or turned into comments: the body lines of a PEM or PuTTY block are plain base64
    and carry no marker. Any other comment or unreadable line holding armour or a long base64
    run is withheld too, and so are such runs in a key line's options and comment; the key
    itself (type and public key data) is always shown.
    """
    result = []
    in_block = False
    for line in model.lines:
        if line.kind == "key":
            in_block = False
            result.append(_display_key(line))
            continue
        if line.kind == "blank":
            result.append(Shown(printable(line.raw), False))
            continue
        body = line.raw.strip(_WHITESPACE + "\r")
        if line.kind == "comment":
            body = body.lstrip("#").strip(_WHITESPACE)
        if _BLOCK_START.match(body) or looks_like_private_key(line.raw):
            in_block = True
        hidden = in_block or may_hold_key_material(line.raw)
        result.append(Shown(WITHHELD, True) if hidden else Shown(printable(line.raw), False))
        if in_block and _BLOCK_END.match(body):
            in_block = False
    return result


def display_text(model: AuthorizedKeys) -> str:
    """The whole file as a diff may show it."""
    return "".join(item.text + line.eol for item, line in zip(display_lines(model), model.lines))

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: what authorized_keys_info reports about a user's file.

Read without a lock and with the same checks as a write (no links, FIFOs, hard links or other
owners); every key with its type, size and fingerprints, weak keys flagged, unreadable lines
named by number, and comments, options and lines shown only as ``_keys_display`` allows.
Standard library only: this runs on managed hosts.
"""

from __future__ import annotations

from typing import Any, Dict, List

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import KeyLine
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_display import display_lines, shown
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file_checks import FileState, read_keys_file
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_target import Target


def key_report(line: KeyLine) -> Dict[str, Any]:
    """What authorized_keys_info says about one key line (comment and options as output may
    show them: key material withheld, control characters escaped)."""
    key = line.public_key()
    weak: List[str] = []
    info: Dict[str, Any] = {
        "line": line.number,
        "type": line.key_type,
        "comment": shown(line.comment),
        "options": [shown(option) for option in line.option_list()],
        "options_text": shown(line.options),
        "identity": line.identity(),
    }
    if key is None:
        info.update(bits=None, fingerprint_md5=None, fingerprint_sha256=None, valid=False,
                    weak=True, weak_reasons=["the key data is not a valid public key"])
        return info
    if key.family == "DSA":
        weak.append("DSA keys are disabled in current OpenSSH")
    if key.family == "RSA" and (key.bits or 0) < 2048:
        weak.append(f"RSA key of {key.bits} bits (under 2048)")
    info.update(
        bits=key.bits,
        family=key.family,
        curve=key.curve,
        is_certificate=key.is_certificate,
        cert_authority=any(o.lower() == "cert-authority" for o in line.option_list()),
        fingerprint_md5=key.fingerprint("md5"),
        fingerprint_sha256=key.fingerprint("sha256"),
        valid=True,
        weak=bool(weak),
        weak_reasons=weak,
    )
    return info


def _mode_problems(path: str, state: FileState) -> List[str]:
    """Why sshd (StrictModes) would ignore the file, as authorized_keys_info reports it."""
    return [f"{where} can be written by group or others (mode {mode:04o}): sshd ignores the keys, and "
            "anyone who can write there can add one" for where, mode in state.unsafe(path)]


def inspect(target: Target, follow: bool = False) -> Dict[str, Any]:
    """Everything authorized_keys_info returns for one user's file."""
    state = read_keys_file(target.path, follow=follow, owner_uid=target.uid)
    model = state.model()
    keys = [key_report(line) for line in model.keys()]
    invalid = [{"line": line.number, "problem": line.problem, "looks_private": item.withheld,
                "text": None if item.withheld else item.text}
               for line, item in zip(model.lines, display_lines(model)) if line.kind == "invalid"]
    for report in invalid:
        if report["looks_private"]:
            report["problem"] = "the line may hold private key material (content withheld)"
    return {
        "changed": False,
        "path": target.path,
        "user": target.user,
        "exists": state.exists,
        "owner_uid": state.uid,
        "mode": None if state.mode is None else f"{state.mode:04o}",
        "problems": _mode_problems(target.path, state),
        "public_keys": keys,
        "invalid_lines": invalid,
        "weak_keys": list(dict.fromkeys(k["fingerprint_sha256"] or f"line {k['line']}" for k in keys if k["weak"])),
    }

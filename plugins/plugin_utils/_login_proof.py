# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: proving on the controller that a key logs in.

A proof is one ``ssh`` process of its own: only the given identity, no agent, no connection
sharing, no password or keyboard-interactive fallback, batch mode. A login through Ansible's
open connection (ControlPersist) would succeed whatever the key, so it would prove nothing.

The proof counts only when ``ssh -v`` reports that the server accepted the key with the
expected fingerprint and the command's token comes back: an ``IdentityFile`` in an ssh_config
could otherwise let another key log in after the new one was refused.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import stat
import subprocess
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._regular_file import UnsafeFileError, read_regular

# A private key file is a few KiB (RSA 16384 with a long comment stays far below this).
MAX_PRIVATE_KEY_FILE = 1024 * 1024

# ssh options with an argument (OpenSSH 7-9 ``ssh`` usage line); all the others are flags.
_WITH_ARGUMENT = set("BbcDEeFIiJLlmOoPpQRSWw")

# -o names that would change which credentials, user or port the proof uses, or would share
# or detach the connection. Ours come first on the command line (ssh keeps the first value it
# sees), but dropping them also keeps IdentityFile from adding keys to the one being proved.
_DROPPED_OPTIONS = frozenset(name.lower() for name in (
    "AddKeysToAgent", "BatchMode", "CertificateFile", "ChallengeResponseAuthentication",
    "ControlMaster", "ControlPath", "ControlPersist", "FingerprintHash", "ForkAfterAuthentication",
    "GSSAPIAuthentication", "HostbasedAuthentication", "IdentitiesOnly", "IdentityAgent",
    "IdentityFile", "KbdInteractiveAuthentication", "LocalCommand", "LogLevel",
    "NumberOfPasswordPrompts", "PasswordAuthentication", "PermitLocalCommand", "PKCS11Provider",
    "Port", "PreferredAuthentications", "PubkeyAuthentication", "RemoteCommand", "RequestTTY",
    "SecurityKeyProvider", "SessionType", "StdinNull", "User",
))
# Flags and options dropped outright: identities (-i, -I), user and port (-l, -p), agent (-A),
# control sockets (-M, -O, -S), logging (-E, -q, -v), forwarding and background modes.
_DROPPED_FLAGS = frozenset("AaEfGIilMNnOpqSsTtVvWXxYyDLR")

_ACCEPTED = re.compile(r"Server accepts key: .*?(SHA256:[A-Za-z0-9+/]{43})")
_AUTHENTICATED = re.compile(r'Authenticated to .* using "publickey"')


class ProofError(SshKeysError):
    """A proof that cannot even be attempted (bad key file, bad arguments)."""


@dataclass
class Target:
    """Where and as whom the proof logs in, and the ssh arguments that get it there."""

    host: str
    user: str
    port: Optional[int] = None
    ssh_executable: str = "ssh"
    extra_args: List[str] = field(default_factory=list)
    host_key_checking: bool = True
    timeout: int = 10


@dataclass
class Outcome:
    """What one ssh run showed. ``logged_in`` is the proof; ``refused`` a clean refusal;
    ``output`` what the session printed after the proof's token (a step's own output)."""

    logged_in: bool
    refused: bool
    detail: str
    accepted_fingerprint: Optional[str] = None
    returncode: Optional[int] = None
    output: str = ""


@dataclass
class SessionStep:
    """A command the proof's own session runs once the token is out, with its input on stdin
    (a module's payload and the interpreter that runs it). ``args`` are what the payload carries,
    kept for whoever stands in for the session in tests; they are never sent separately."""

    command: str
    stdin: bytes
    args: dict = field(default_factory=dict)


def sanitise_args(args: Sequence[str]) -> List[str]:
    """Keep the ssh arguments that say how to reach the host; drop those in ``_DROPPED_*``.

    Each item may hold several arguments (``"-o A=b -o C=d"``): it is split like a shell would.
    """
    words: List[str] = []
    for item in args:
        try:
            words.extend(shlex.split(item) if item else [])
        except ValueError as exc:
            raise ProofError(f"ssh arguments {item!r} cannot be split like a shell would: {exc}") from None
    kept: List[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("-") or word == "-" or word.startswith("--"):
            raise ProofError(f"ssh argument {word!r} is not an option; only options may be given")
        position = 1
        while position < len(word):
            flag = word[position]
            position += 1
            if flag not in _WITH_ARGUMENT:
                if flag not in _DROPPED_FLAGS:
                    kept.append("-" + flag)
                continue
            value = word[position:]
            if not value:
                if index >= len(words):
                    raise ProofError(f"ssh option -{flag} needs a value")
                value = words[index]
                index += 1
            if flag == "o":
                name = re.split(r"[=\s]", value.strip(), maxsplit=1)[0].lower()
                if name in _DROPPED_OPTIONS:
                    break
            elif flag in _DROPPED_FLAGS:
                break
            kept.extend(["-" + flag, value])
            break
    return kept


def _unprotected(info: os.stat_result) -> Optional[str]:
    """Why ssh would refuse this key file ("UNPROTECTED PRIVATE KEY FILE"), or None."""
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():
        return (f"has mode {stat.S_IMODE(info.st_mode):04o}; ssh refuses private keys that group or others "
                "can read: make it 0600")
    return None


def check_private_key_file(path: str, what: str) -> bytes:
    """The content of a private key file ssh will accept, or ``ProofError`` (path only, never content).

    Opened without blocking and judged on the open descriptor: a FIFO planted in its place must
    not stall the task, and the file read is the file checked.
    """
    try:
        return read_regular(path, f"{what} {path}", MAX_PRIVATE_KEY_FILE, check=_unprotected)
    except UnsafeFileError as exc:
        raise ProofError(str(exc)) from None


def command_line(target: Target, key_path: str, token: str, step: Optional[SessionStep] = None) -> List[str]:
    """The ssh command of one proof. Our -o come first: ssh keeps the first value of each option.

    The remote command prints the token, then (with ``step``) runs the step in the same session:
    the token proves the session runs commands, the step's output follows it."""
    args = [
        target.ssh_executable, "-v", "-T",
        "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes",
        "-o", "IdentityAgent=none",
        "-o", "ControlMaster=no",
        "-o", "ControlPath=none",
        "-o", "PasswordAuthentication=no",
        "-o", "KbdInteractiveAuthentication=no",
        "-o", "GSSAPIAuthentication=no",
        "-o", "HostbasedAuthentication=no",
        "-o", "PreferredAuthentications=publickey",
        "-o", "PubkeyAuthentication=yes",
        "-o", "FingerprintHash=sha256",
        "-o", "NumberOfPasswordPrompts=0",
        "-o", f"ConnectTimeout={int(target.timeout)}",
        "-o", "ConnectionAttempts=1",
        "-i", key_path,
        "-l", target.user,
    ]
    if target.port:
        args += ["-p", str(int(target.port))]
    if not target.host_key_checking:
        args += ["-o", "StrictHostKeyChecking=no"]
    args += sanitise_args(target.extra_args)
    # "--" so that a host name can never be read as an option.
    args += ["--", target.host, f"echo {token}" + (f" && {step.command}" if step else "")]
    return args


def new_token() -> str:
    return "sshkeys-ecs-proof-" + secrets.token_hex(12)


def interpret(returncode: int, stdout: str, stderr: str, token: str,
              fingerprint: str, forced_command: bool = False) -> Outcome:
    """Turn what ssh printed into an Outcome (a pure function, tested on its own)."""
    accepted = _ACCEPTED.findall(stderr)
    accepted_fp = accepted[-1] if accepted else None
    authenticated = bool(_AUTHENTICATED.search(stderr)) or "Authentication succeeded (publickey)" in stderr
    messages = _messages(stderr)
    if accepted_fp is not None and accepted_fp != fingerprint:
        return Outcome(False, False, f"the server accepted a different key ({accepted_fp}), not {fingerprint}: "
                       "an ssh_config IdentityFile or certificate was used", accepted_fp, returncode)
    if authenticated and accepted_fp == fingerprint:
        lines = stdout.splitlines()
        if token in (line.strip() for line in lines):
            after = lines.index(next(line for line in lines if line.strip() == token)) + 1
            return Outcome(True, False, "logged in and ran the check command", accepted_fp, returncode,
                           "\n".join(lines[after:]))
        if forced_command:
            return Outcome(True, False, "logged in; the key's forced command ran instead of the check command",
                           accepted_fp, returncode)
        return Outcome(False, False, f"logged in, but the check command did not run (exit code {returncode}"
                       f"{'; ' + messages if messages else ''})", accepted_fp, returncode)
    if authenticated:
        return Outcome(False, False, "logged in, but ssh did not report which key was accepted", None, returncode)
    refused = returncode == 255 and "Permission denied" in stderr
    detail = messages or f"ssh exited with code {returncode}"
    return Outcome(False, refused, detail, None, returncode)


def _messages(stderr: str, limit: int = 3) -> str:
    """ssh's own error lines (no debug lines), last few, for a failure message."""
    lines = [line.strip() for line in stderr.splitlines()
             if line.strip() and not line.startswith(("debug", "OpenSSH_", "Pseudo-terminal", "Transferred:"))
             and "Warning: Permanently added" not in line]
    return "; ".join(line.rstrip(".") for line in lines[-limit:])


def prove(target: Target, key_path: str, fingerprint: str, forced_command: bool = False,
          step: Optional[SessionStep] = None) -> Tuple[Outcome, List[str]]:
    """Run one proof (and ``step`` in its session); returns the outcome and the command line (which
    holds a path, never a key)."""
    token = new_token()
    args = command_line(target, key_path, token, step)
    try:
        done = subprocess.run(args, input=step.stdin if step else b"", capture_output=True,
                              timeout=max(3 * int(target.timeout), 15), check=False)
    except FileNotFoundError:
        return Outcome(False, False, f"{target.ssh_executable} was not found on the controller"), args
    except subprocess.TimeoutExpired:
        return Outcome(False, False, f"ssh did not finish within {max(3 * int(target.timeout), 15)} s"), args
    stdout, stderr = (text.decode("utf-8", "replace") for text in (done.stdout, done.stderr))
    return interpret(done.returncode, stdout, stderr, token, fingerprint, forced_command), args

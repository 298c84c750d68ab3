# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: commands and files over Cloud Assistant (controller side).

What the cloud_assistant connection plugin does, without Ansible: every command goes as one
RunShellScript (RunCommand, content in Base64, the remote user as Username) and its result is
polled with DescribeInvocationResults, with a growing pause between polls.

The API's limits shape the rest (ECS API reference, the request models of
alibabacloud_ecs20140526): a command's content is at most 24 KB in Base64, and its Output comes
back cut at 24 KB (Dropped says how much was cut), stdout and stderr together. So a command runs
inside a small wrapper that keeps stdout and stderr apart in files on the instance and prints
them, Base64, after a header with the exit code; when they are too large for one Output, the
wrapper keeps them (in a private directory of the user) and the controller reads them in pieces.
Data for the instance (module payloads, files) goes in pieces as well, each within a command's
content. Only what Ansible hands the connection travels: credentials stay on the controller.
"""

from __future__ import annotations

import base64
import gzip
import os
import posixpath
import re
import shlex
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_api import invocation_result, run_shell_script, send_file
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError
from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError

# RunCommand: "The size of the Base64-encoded command content cannot exceed 24 KB".
MAX_CONTENT_BASE64 = 24 * 1024
# DescribeInvocationResults: Output is cut at 24 KB ("Dropped": the size cut off).
MAX_OUTPUT = 24 * 1024
# SendFile: "After Base64 encoding, the content cannot exceed 32 KB": 24 KB of data a file.
FILE_PIECE = 24 * 1024
JOINED = "SSHKEYS-ECS-CA-JOINED"
# Raw stdout + stderr that still fit one Output once in Base64, with the header line.
INLINE_OUTPUT = 18 * 1024 - 512
HEADER = "SSHKEYS-ECS-CA"
FINAL_STATUSES = ("Success", "Failed", "Timeout", "Error", "Invalid", "Aborted", "Cancelled", "Terminated")
INSTANCE_ID = re.compile(r"i-[a-z0-9]{8,40}")


class CloudAssistantError(SshKeysError):
    """A command could not be run or its result not read; the message says what to do."""

    def __init__(self, message: str, reason: str = "cloud_assistant") -> None:
        super().__init__(message)
        self.reason = reason


def check_instance_id(value: Any) -> str:
    if not isinstance(value, str) or not INSTANCE_ID.fullmatch(value):
        raise CloudAssistantError(
            f"the cloud_assistant connection needs an ECS instance id such as i-bp1234567890abcdef as the host "
            f"(ansible_host) or in ansible_ecs_instance_id, not {value!r}", "bad_input")
    return value


def encode_script(script: str) -> str:
    """The script as RunCommand content, refused here when it is over the API's limit."""
    content = base64.b64encode(script.encode("utf-8")).decode("ascii")
    if len(content) > MAX_CONTENT_BASE64:
        raise CloudAssistantError(f"a command of {len(content)} Base64 characters is over the RunCommand limit of "
                                  f"{MAX_CONTENT_BASE64}", "too_large")
    return content


def _b64_literal(data: bytes) -> str:
    return "'" + base64.b64encode(data).decode("ascii") + "'"


def join_script(parts: List[Tuple[str, int]], target: str, wait: int = 120) -> str:
    """target: a shell word (quoted by the caller). Waits (up to wait seconds) until every piece sent with SendFile is there whole, then joins
    them into target and removes them; prints JOINED, or a line naming the first missing piece."""
    checks = " ".join(f"{shlex.quote(path)}:{size}" for path, size in parts)
    names = " ".join(shlex.quote(path) for path, _size in parts)
    return (
        f"end=$(($(date +%s) + {wait}))\n"
        f"for p in {checks}; do\n"
        "  f=${p%:*}; n=${p##*:}\n"
        "  until [ -f \"$f\" ] && [ \"$(wc -c < \"$f\")\" -eq \"$n\" ]; do\n"
        f"    [ \"$(date +%s)\" -lt \"$end\" ] || {{ echo \"{HEADER}-MISSING $f\"; rm -f {names}; exit 0; }}\n"
        "    sleep 0.2\n"
        "  done\n"
        "done\n"
        f"cat {names} | gzip -dc > {target} || exit 96\n"
        f"rm -f {names}\n"
        f"echo {JOINED}\n")


def command_script(command: str, stdin_inline: Optional[bytes] = None,
                   stdin_parts: Optional[List[Tuple[str, int]]] = None) -> str:
    """The wrapper around one Ansible command: stdout and stderr apart, the exit code in a header.

    The command itself travels Base64 and runs with /bin/sh -c, as an SSH server would run it.
    """
    if stdin_inline is not None:
        feed = f"printf '%s' {_b64_literal(stdin_inline)} | base64 -d > \"$d/i\" || exit 97\n"
        source = '"$d/i"'
    elif stdin_parts is not None:
        feed = join_script(stdin_parts, '"$d/i"').replace(f"echo {JOINED}\n", "")
        source = '"$d/i"'
    else:
        feed = ""
        source = "/dev/null"
    return (
        "umask 077\n"
        "d=$(mktemp -d) || exit 97\n"
        f"{feed}"
        f"c=$(printf '%s' {_b64_literal(command.encode('utf-8'))} | base64 -d) || exit 97\n"
        f"/bin/sh -c \"$c\" < {source} > \"$d/o\" 2> \"$d/e\"\n"
        "rc=$?\n"
        "os=$(wc -c < \"$d/o\"); es=$(wc -c < \"$d/e\")\n"
        f"if [ $((os + es)) -le {INLINE_OUTPUT} ]; then\n"
        f"  printf '{HEADER} %s %s %s\\n' \"$rc\" \"$os\" \"$es\"\n"
        "  base64 -w0 \"$d/o\"; printf '\\n'; base64 -w0 \"$d/e\"; printf '\\n'\n"
        "  rm -rf \"$d\"\n"
        "else\n"
        f"  printf '{HEADER}-KEPT %s %s %s %s\\n' \"$rc\" \"$os\" \"$es\" \"$d\"\n"
        "fi\n")


@dataclass
class Result:
    rc: int
    stdout: bytes
    stderr: bytes


@dataclass
class Kept:
    """Output left on the instance because it is too large for one Output."""

    rc: int
    stdout_size: int
    stderr_size: int
    directory: str


def parse_output(output: bytes):
    """Result or Kept from the wrapper's Output."""
    lines = output.split(b"\n")
    head = lines[0].decode("utf-8", "replace").split(" ")
    try:
        if head[0] == HEADER and len(head) == 4 and len(lines) >= 3:
            stdout, stderr = base64.b64decode(lines[1], validate=True), base64.b64decode(lines[2], validate=True)
            if len(stdout) != int(head[2]) or len(stderr) != int(head[3]):
                raise ValueError("sizes")
            return Result(int(head[1]), stdout, stderr)
        if head[0] == HEADER + "-KEPT" and len(head) == 5 and head[4].startswith("/"):
            return Kept(int(head[1]), int(head[2]), int(head[3]), head[4])
    except ValueError:
        pass
    raise CloudAssistantError("the command's output on the instance was not what the connection wrote it to be "
                              "(is /bin/sh, base64 and mktemp there?)", "bad_output")


def read_piece_script(path: str, offset: int, size: int, remove_dir: Optional[str] = None) -> str:
    """Prints size bytes of path from offset, Base64; the last piece removes the kept directory."""
    tail = f"\nrm -rf {shlex.quote(remove_dir)}" if remove_dir else ""
    return f"tail -c +{offset + 1} {shlex.quote(path)} | head -c {size} | base64 -w0{tail}\n"


class Runner:
    """Runs scripts on one instance as one user and counts the API calls it makes."""

    def __init__(self, client: Any, instance_id: str, user: str, timeout: int, *,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 first_poll: float = 0.3, max_poll: float = 2.0) -> None:
        self.client = client
        self.instance_id = check_instance_id(instance_id)
        self.user = user or "root"
        self.timeout = int(timeout)
        self.sleep = sleep
        self.clock = clock
        self.first_poll = first_poll
        self.max_poll = max_poll
        self.calls = 0
        self.sent: List[str] = []

    # -- one script ---------------------------------------------------------------------------

    def run(self, script: str) -> bytes:
        """Runs script; answers its Output (raw). Any outcome but success is a CloudAssistantError."""
        content = encode_script(script)
        try:
            self.calls += 1
            invoke_id = run_shell_script(self.client, self.instance_id, content, self.user, self.timeout)
            row = self._wait(invoke_id)
        except EcsApiError as exc:
            raise CloudAssistantError(self._api_error(exc), "api_error") from None
        return self._output(row)

    def _wait(self, invoke_id: str) -> dict:
        # The agent's own timeout ends the command; the margin covers delivery and reporting.
        deadline = self.clock() + self.timeout + 60
        pause = self.first_poll
        while True:
            self.sleep(pause)
            self.calls += 1
            row = invocation_result(self.client, invoke_id, self.instance_id)
            if row is not None and row.get("InvocationStatus") in FINAL_STATUSES:
                return row
            if self.clock() > deadline:
                raise CloudAssistantError(f"invocation {invoke_id} on {self.instance_id} did not finish within "
                                          f"{self.timeout + 60} s (status {row and row.get('InvocationStatus')})",
                                          "timeout")
            pause = min(self.max_poll, pause * 1.5)

    def _output(self, row: dict) -> bytes:
        status, code = row.get("InvocationStatus"), row.get("ErrorCode") or ""
        where = f"{self.instance_id} (invocation {row.get('InvokeId', '?')})"
        if status == "Aborted" and code == "ClientNotRunning":
            raise CloudAssistantError(f"the Cloud Assistant agent is not running on {where}: install or start it "
                                      "(DescribeCloudAssistantStatus shows its state)", "no_agent")
        if status == "Aborted" and code == "InstanceNotRunning":
            raise CloudAssistantError(f"instance {where} is not Running: start it first", "not_running")
        if status == "Timeout":
            raise CloudAssistantError(f"the command on {where} timed out after {self.timeout} s and was stopped "
                                      "(raise the connection's timeout option)", "timeout")
        if code == "AccountNotExists":
            raise CloudAssistantError(f"user {self.user!r} does not exist on {where}", "no_user")
        if status not in ("Success", "Failed"):
            raise CloudAssistantError(f"the command could not run on {where}: {status} {code} "
                                      f"{row.get('ErrorInfo') or ''}".rstrip(), "failed")
        output = base64.b64decode(row.get("Output") or "")
        if int(row.get("Dropped") or 0) > 0:
            raise CloudAssistantError(f"the output on {where} was over the API's 24 KB and was cut", "output_cut")
        if status == "Failed":
            raise CloudAssistantError(f"the connection's wrapper failed on {where} (exit {row.get('ExitCode')}): "
                                      f"{output[-300:].decode('utf-8', 'replace')}", "failed")
        return output

    def _api_error(self, exc: EcsApiError) -> str:
        hints = {
            "InvalidInstance.NotFound": f"instance {self.instance_id} does not exist in this region",
            "InvalidInstance.NotMatch": f"instance {self.instance_id} cannot run shell scripts (a Windows instance?)",
        }
        return f"{exc.action or 'Cloud Assistant'} failed for {self.instance_id}: " \
            f"{hints.get(exc.code or '', str(exc))}"

    # -- what the connection needs ------------------------------------------------------------

    def exec_command(self, command: str, in_data: Optional[bytes] = None, stage_dir: str = "/tmp") -> Tuple[int, bytes, bytes]:
        """Ansible's exec_command: (rc, stdout, stderr). Data for stdin goes in the same command
        when it fits (pipelining), else in pieces first."""
        script = command_script(command, in_data)
        if in_data is not None and len(base64.b64encode(script.encode("utf-8"))) > MAX_CONTENT_BASE64:
            script = command_script(command, None, self.send_pieces(in_data, stage_dir))
        output = self.run(script)
        if output.startswith(b"SSHKEYS-ECS-CA-MISSING"):
            self._check_joined(b"")
        outcome = parse_output(output)
        if isinstance(outcome, Kept):
            return self._read_kept(outcome)
        return outcome.rc, outcome.stdout, outcome.stderr

    def _read_kept(self, kept: Kept) -> Tuple[int, bytes, bytes]:
        stdout = self.read_file(f"{kept.directory}/o", kept.stdout_size)
        stderr = self.read_file(f"{kept.directory}/e", kept.stderr_size, remove_dir=kept.directory)
        return kept.rc, stdout, stderr

    def read_file(self, path: str, size: int, remove_dir: Optional[str] = None) -> bytes:
        data = b""
        offsets = list(range(0, size, INLINE_OUTPUT)) or [0]
        for index, offset in enumerate(offsets):
            last = index == len(offsets) - 1
            piece = self.run(read_piece_script(path, offset, INLINE_OUTPUT, remove_dir if last else None))
            data += base64.b64decode(piece.strip() or b"")
        if len(data) != size:
            raise CloudAssistantError(f"{path} on {self.instance_id} changed while it was read", "changed")
        return data

    def send_pieces(self, data: bytes, directory: str) -> List[Tuple[str, int]]:
        """Sends data, gzipped, with SendFile in pieces (private files of the user) without waiting
        for them: the command that uses them waits on the instance until each has its full size.
        (Module payloads are mostly Base64 text: gzip takes about a quarter off, and pieces.)"""
        data = gzip.compress(data, mtime=0)
        token = base64.b32encode(os.urandom(10)).decode("ascii").lower()
        directory = directory.rstrip("/") or "/"
        parts = []
        for index in range(0, max(len(data), 1), FILE_PIECE):
            piece = data[index:index + FILE_PIECE]
            name = f".sshkeys-ecs-ca-{token}.{index // FILE_PIECE}"
            try:
                self.calls += 1
                self.sent.append(send_file(self.client, self.instance_id, directory, name,
                                           base64.b64encode(piece).decode("ascii"), self.user))
            except EcsApiError as exc:
                raise CloudAssistantError(self._api_error(exc), "api_error") from None
            parts.append((f"{directory.rstrip('/')}/{name}", len(piece)))
        return parts

    def put_bytes(self, data: bytes, remote_path: str, stage_dir: Optional[str] = None) -> None:
        """Writes data to remote_path: pieces sent next to it, joined into a temporary name, renamed."""
        parts = self.send_pieces(data, stage_dir or posixpath.dirname(remote_path) or "/")
        partial = f"{remote_path}.sshkeys-ecs-ca-partial"
        script = (f"umask 077\n{join_script(parts, shlex.quote(partial))}"
                  f"mv -f {shlex.quote(partial)} {shlex.quote(remote_path)}\n")
        self._check_joined(self.run(script))

    def _check_joined(self, output: bytes) -> None:
        if output.strip() != JOINED.encode("ascii"):
            raise CloudAssistantError(f"the data sent with SendFile did not arrive whole on {self.instance_id} "
                                      f"(DescribeSendFileResults of {', '.join(self.sent[-3:])} says why)",
                                      "send_file")

    def fetch_bytes(self, remote_path: str) -> bytes:
        rc, stdout, stderr = self.exec_command(f"cat -- {shlex.quote(remote_path)}")
        if rc != 0:
            raise CloudAssistantError(f"cannot read {remote_path} on {self.instance_id}: "
                                      f"{stderr.decode('utf-8', 'replace').strip()}", "missing")
        return stdout

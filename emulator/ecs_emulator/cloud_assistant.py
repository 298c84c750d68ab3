"""Cloud Assistant: commands and files sent to instances through the API, run by the agent.

The actions (RunCommand, CreateCommand, InvokeCommand, DescribeInvocations,
DescribeInvocationResults, SendFile, DescribeSendFileResults, DescribeCloudAssistantStatus) take
the parameters, limits, statuses and error codes of the ECS API reference (sources in
emulator/README.md, "Cloud Assistant"). The agent is the podman instance itself: a command runs
through `podman exec --user USER` inside the instance's container, a file is written there as
root and handed to its owner. Instances without a container (the virtual backend, Windows) have
no agent: their status says so and what is sent to them is aborted with ClientNotRunning, as ECS
does for an instance whose agent is not running.

Invocations live in memory (like the nonces): a restart of the emulator forgets them, as the
service forgets them after its retention period.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .actions import Context, new_id, opt_bool, opt_int, region, repeat_list, req
from .errors import ApiError, invalid

log = logging.getLogger("ecs_emulator.cloud_assistant")

# RunCommand / CreateCommand: "The size of the Base64-encoded command content cannot exceed 24 KB"
# (alibabacloud_ecs20140526 RunCommandRequest.command_content).
MAX_COMMAND_BASE64 = 24 * 1024
# SendFile: "After Base64 encoding, the content cannot exceed 32 KB" (SendFileRequest.content).
MAX_FILE_BASE64 = 32 * 1024
# DescribeInvocations / DescribeInvocationResults: Dropped is "the size of the text that is
# truncated and discarded when the Output value exceeds 24 KB".
MAX_OUTPUT = 24 * 1024
MAX_RUN_INSTANCES = 100        # RunCommand / InvokeCommand InstanceId.N: 1 to 100
MAX_SEND_FILE_INSTANCES = 50   # SendFile InstanceId.N: 1 to 50
MAX_USERNAME = 255
MAX_WORKING_DIR = 200
MAX_FILE_NAME = 255
MAX_TARGET_DIR = 255
MAX_OWNER = 64
MAX_COMMAND_NAME = 128
MAX_DESCRIPTION = 512
DEFAULT_TIMEOUT = 60
MIN_FILE_TIMEOUT = 10          # SendFile: a timeout under 10 s is raised to 10 s
MAX_TIMEOUT = 86400
COMMAND_TYPES = ("RunShellScript", "RunBatScript", "RunPowerShellScript")
LINUX_TYPES = ("RunShellScript",)
AGENT_VERSION = "2.2.3.398"

# ErrorCode -> ErrorInfo, as DescribeInvocations documents them for one instance.
ERROR_INFO = {
    "InstanceNotRunning": "the instance is not running when create task",
    "ClientNotRunning": "the aliyun service is not running on the instance",
    "AccountNotExists": "the specified account does not exists",
    "DirectoryNotExists": "the specified directory does not exists",
    "ExecutionTimeout": "the command execution has been timeout",
    "ExecutionException": "the command execution got an exception",
    "ExitCodeNonzero": "the command execution exit code is not zero",
}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class InstanceRun:
    """The invocation on one instance."""

    instance_id: str
    status: str = "Pending"
    exit_code: int | None = None
    output: bytes = b""
    dropped: int = 0
    error_code: str = ""
    start_time: str = ""
    finished_time: str = ""
    created: str = field(default_factory=_now)

    def finish(self, status: str, error_code: str = "", exit_code: int | None = None, output: bytes = b"") -> None:
        self.status = status
        self.error_code = error_code
        self.exit_code = exit_code
        self.output = output[:MAX_OUTPUT]
        self.dropped = max(0, len(output) - MAX_OUTPUT)
        self.finished_time = _now()

    def record_status(self) -> str:
        if self.status in ("Pending", "Running"):
            return "Running"
        if self.status == "Success":
            return "Finished"
        return "Failed"


@dataclass
class Invocation:
    """One RunCommand, InvokeCommand or SendFile."""

    invoke_id: str
    kind: str                  # "command" or "file"
    account: str
    region: str
    name: str
    command_id: str = ""
    command_type: str = ""
    content: bytes = b""       # the command (for files: never returned)
    username: str = "root"
    working_dir: str = ""
    timeout: int = DEFAULT_TIMEOUT
    file: dict = field(default_factory=dict)
    runs: dict[str, InstanceRun] = field(default_factory=dict)
    created: str = field(default_factory=_now)
    seq: int = 0

    def overall(self) -> str:
        """The overall status of DescribeInvocations (InvocationStatus)."""
        statuses = [r.status for r in self.runs.values()]
        if any(s in ("Pending", "Running") for s in statuses):
            return "Running" if any(s == "Running" for s in statuses) else "Pending"
        if all(s == "Success" for s in statuses):
            return "Success"
        if any(s == "Success" for s in statuses):
            return "PartialFailed"
        return "Failed"


@dataclass
class Command:
    command_id: str
    account: str
    region: str
    name: str
    command_type: str
    content: bytes
    working_dir: str
    timeout: int
    description: str
    created: str = field(default_factory=_now)


class Service:
    """The invocations and kept commands of one emulator, and the workers that run them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.invocations: dict[str, Invocation] = {}
        self.commands: dict[str, Command] = {}
        self.counter = itertools.count(1)
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cloud-assistant")
        self.agents_stopped: set[str] = set()  # instances whose agent the admin API stopped


_SERVICES: dict[int, Service] = {}
_SERVICES_GUARD = threading.Lock()


def service(ctx: Context) -> Service:
    with _SERVICES_GUARD:
        return _SERVICES.setdefault(id(ctx.lifecycle), Service())


# --- parameter helpers ----------------------------------------------------------------------------

def _instances(ctx: Context, limit: int) -> list[str]:
    ids = list(dict.fromkeys(repeat_list(ctx, "InstanceId", 1_000_000)))
    if not ids:
        raise ApiError("MissingParam.InstanceId", "The parameter instanceId is missing or empty.", 400)
    if len(ids) > limit:
        raise ApiError("InstanceIds.ExceedLimit", f"The number of instance IDs exceeds the upper limit ({limit}).", 403)
    return ids


def _content(ctx: Context, name: str, encoding_param: str, limit: int, code: str) -> bytes:
    """The content parameter, decoded; its Base64 form must stay within limit."""
    raw = req(ctx, name)
    encoding = (ctx.params.get(encoding_param) or "PlainText").lower()
    if encoding == "base64":
        if len(raw) > limit:
            raise ApiError(code, "The maximum length of the content is exceeded.", 403)
        try:
            return base64.b64decode(raw.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise invalid(name, "not valid Base64") from None
    data = raw.encode("utf-8")  # any other value is taken as PlainText, as the reference says
    if len(base64.b64encode(data)) > limit:
        raise ApiError(code, "The maximum length of the content is exceeded.", 403)
    return data


def _bounded(ctx: Context, name: str, limit: int, code: str, default: str = "") -> str:
    value = ctx.params.get(name) or default
    if len(value) > limit:
        raise ApiError(code, f"The length of {name} exceeds the upper limit ({limit}).", 403)
    return value


def _timeout(ctx: Context, minimum: int = 1) -> int:
    return max(minimum, opt_int(ctx, "Timeout", DEFAULT_TIMEOUT, 1, MAX_TIMEOUT))


def _repeat_mode(ctx: Context) -> None:
    mode = ctx.params.get("RepeatMode") or "Once"
    if mode not in ("Once", "Period", "NextRebootOnly", "EveryReboot", "DryRun"):
        raise ApiError("InvalidRepeatMode.NotFound", "The specified repeat mode does not exist.", 404)
    if mode != "Once" or ctx.params.get("Frequency"):
        raise ApiError("Operation.Forbidden", "The operation is not permitted (this endpoint runs commands once).", 403)


def _instance_rows(ctx: Context, region_id: str, ids: list[str]) -> dict[str, dict]:
    with ctx.state.read() as db:
        marks = ",".join("?" * len(ids))
        rows = {r["id"]: dict(r) for r in db.execute(
            f"SELECT id, os_type, status FROM instances WHERE account=? AND region=? AND id IN ({marks})",
            [ctx.account.name, region_id, *ids])}
    for iid in ids:
        if iid not in rows:
            raise ApiError("InvalidInstance.NotFound", "The specified instance does not exist.", 404)
    return rows


def _has_agent(ctx: Context, row: dict) -> bool:
    """Only a Linux instance in a container has an agent to talk to, unless the admin API stopped it."""
    return (row["os_type"] == "linux" and hasattr(ctx.lifecycle.backend, "exec_in")
            and row["id"] not in service(ctx).agents_stopped)


def set_agent(lifecycle, instance_id: str, running: bool) -> None:
    """The admin API's switch: the agent of one instance stops (or runs again), as `systemctl stop
    aliyun.service` would do on an instance; what is sent to it meanwhile is aborted."""
    with _SERVICES_GUARD:
        svc = _SERVICES.setdefault(id(lifecycle), Service())
    with svc.lock:
        (svc.agents_stopped.discard if running else svc.agents_stopped.add)(instance_id)


# --- running ---------------------------------------------------------------------------------------

def _start(ctx: Context, inv: Invocation, rows: dict[str, dict]) -> dict:
    svc = service(ctx)
    with svc.lock:
        inv.seq = next(svc.counter)
        for iid in rows:
            inv.runs[iid] = InstanceRun(iid)
        svc.invocations[inv.invoke_id] = inv
    backend = ctx.lifecycle.backend
    for iid, row in rows.items():
        run = inv.runs[iid]
        if row["status"] != "Running":
            run.finish("Aborted", "InstanceNotRunning")
        elif not _has_agent(ctx, row):
            run.finish("Aborted", "ClientNotRunning")
        else:
            work = _run_command if inv.kind == "command" else _send_file
            ctx.after(lambda run=run, work=work: svc.pool.submit(_guarded, work, backend, inv, run))
    return {"InvokeId": inv.invoke_id}


def _guarded(work, backend, inv: Invocation, run: InstanceRun) -> None:
    try:
        run.status = "Running"
        run.start_time = _now()
        work(backend, inv, run)
    except Exception as exc:  # a failure of the emulator's own plumbing: the agent reports an exception
        log.error("invocation %s on %s: %s", inv.invoke_id, run.instance_id, exc.__class__.__name__)
        run.finish("Error", "ExecutionException")


# The agent writes the script to a private file and runs it with the user's shell in the working
# directory (default: the user's home), killed at the timeout; stdin is empty. Both scripts read
# all of their input first: podman exec loses the output of a process that exits with its stdin
# unread. Their own failures are exit codes (250 here: no such directory).
_AGENT_WRAPPER = r"""
set -u
umask 077
script=$(mktemp) || exit 251
cat > "$script"
dir=${1:-}
if [ -z "$dir" ]; then dir=$(getent passwd "$(id -un)" | cut -d: -f6); fi
cd "$dir" 2>/dev/null || { rm -f "$script"; exit 250; }
timeout -s KILL "$2" /bin/sh "$script" </dev/null 2>&1
rc=$?
rm -f "$script"
exit $rc
"""


def _run_command(backend, inv: Invocation, run: InstanceRun) -> None:
    proc = backend.exec_in(run.instance_id, inv.username,
                           ["/bin/sh", "-c", _AGENT_WRAPPER, "agent", inv.working_dir, str(inv.timeout)],
                           stdin=inv.content, timeout=inv.timeout + 30)
    if proc.returncode not in (0, None) and b"unable to find user" in proc.stderr:
        run.finish("Invalid", "AccountNotExists")
    elif proc.returncode == 250:
        run.finish("Invalid", "DirectoryNotExists")
    elif proc.returncode == 137 or proc.returncode is None:
        run.finish("Timeout", "ExecutionTimeout", None, proc.stdout)
    elif proc.returncode == 0:
        run.finish("Success", "", 0, proc.stdout)
    else:
        run.finish("Failed", "ExitCodeNonzero", proc.returncode, proc.stdout)


# The writer's exit codes.
FILE_ERRORS = {3: "UserNotExists", 4: "GroupNotExists", 5: "DirectoryNotExists", 6: "FileAlreadyExists"}
_FILE_WRITER = r"""
set -u
target=$1 name=$2 owner=$3 group=$4 mode=$5 overwrite=$6
umask 077
data=$(mktemp) || exit 7
cat > "$data"
trap 'rm -f "$data"' EXIT
id -u "$owner" >/dev/null 2>&1 || exit 3
getent group "$group" >/dev/null 2>&1 || exit 4
mkdir -p "$target" || exit 5
if [ -e "$target/$name" ] && [ "$overwrite" != true ]; then exit 6; fi
tmp=$(mktemp "$target/.ecs-send-file.XXXXXX") || exit 7
cat "$data" > "$tmp" && chown "$owner:$group" "$tmp" && chmod "$mode" "$tmp" && mv -f "$tmp" "$target/$name" \
  || { rm -f "$tmp"; exit 7; }
"""


def _send_file(backend, inv: Invocation, run: InstanceRun) -> None:
    f = inv.file
    proc = backend.exec_in(run.instance_id, "root",
                           ["/bin/sh", "-c", _FILE_WRITER, "agent", f["TargetDir"], f["Name"], f["FileOwner"],
                            f["FileGroup"], f["FileMode"], "true" if f["Overwrite"] else "false"],
                           stdin=inv.content, timeout=inv.timeout)
    if proc.returncode == 0:
        run.finish("Success")
    elif proc.returncode is None:
        run.finish("Timeout", "ExecutionTimeout")
    else:
        if proc.returncode not in FILE_ERRORS:
            log.error("SendFile %s on %s: exit %s: %s", inv.invoke_id, run.instance_id, proc.returncode,
                      proc.stderr.decode("utf-8", "replace").strip()[-300:])
        run.finish("Failed", FILE_ERRORS.get(proc.returncode, "ExecutionException"))


# --- actions ---------------------------------------------------------------------------------------

def _command_type(ctx: Context) -> str:
    value = req(ctx, "Type")
    if value not in COMMAND_TYPES:
        raise ApiError("InvalidCmdType.NotFound", "The specified command type does not exist.", 404)
    return value


def _check_applicable(rows: dict[str, dict], command_type: str) -> None:
    for row in rows.values():
        if (row["os_type"] == "linux") != (command_type in LINUX_TYPES):
            raise ApiError("InvalidInstance.NotMatch", "The specified instance type does not match the command.", 400)


def _parameters_refused(ctx: Context) -> None:
    if opt_bool(ctx, "EnableParameter") or (ctx.params.get("Parameters") or "{}") not in ("{}", ""):
        raise ApiError("Parameter.Disabled", "Parameters cannot be passed in when the command customization "
                       "function is disabled.", 400)


def run_command(ctx: Context) -> dict:
    region_id = region(ctx)
    command_type = _command_type(ctx)
    content = _content(ctx, "CommandContent", "ContentEncoding", MAX_COMMAND_BASE64, "CmdContent.ExceedLimit")
    ids = _instances(ctx, MAX_RUN_INSTANCES)
    username = _bounded(ctx, "Username", MAX_USERNAME, "Username.ExceedLimit", "root")
    working_dir = ctx.params.get("WorkingDir") or ""
    if len(working_dir) > MAX_WORKING_DIR:
        raise ApiError("InvalidParameter.WorkingDir", "The specified parameter WorkingDir is not valid.", 400)
    name = _bounded(ctx, "Name", MAX_COMMAND_NAME, "CmdName.ExceedLimit")
    _bounded(ctx, "Description", MAX_DESCRIPTION, "CmdDesc.ExceedLimit")
    _repeat_mode(ctx)
    _parameters_refused(ctx)
    timeout = _timeout(ctx)
    keep = opt_bool(ctx, "KeepCommand")
    rows = _instance_rows(ctx, region_id, ids)
    _check_applicable(rows, command_type)
    command_id = new_id("c-", 28)
    if keep:
        with service(ctx).lock:
            service(ctx).commands[command_id] = Command(command_id, ctx.account.name, region_id, name, command_type,
                                                        content, working_dir, timeout, "")
    inv = Invocation(invoke_id=new_id("t-", 28), kind="command", account=ctx.account.name, region=region_id,
                     name=name, command_id=command_id, command_type=command_type, content=content,
                     username=username, working_dir=working_dir, timeout=timeout)
    out = _start(ctx, inv, rows)
    out["CommandId"] = command_id
    return out


def create_command(ctx: Context) -> dict:
    region_id = region(ctx)
    command_type = _command_type(ctx)
    content = _content(ctx, "CommandContent", "ContentEncoding", MAX_COMMAND_BASE64, "CmdContent.ExceedLimit")
    name = req(ctx, "Name")
    if len(name) > MAX_COMMAND_NAME:
        raise ApiError("CmdName.ExceedLimit", "The length of the command name exceeds the upper limit.", 403)
    description = _bounded(ctx, "Description", MAX_DESCRIPTION, "CmdDesc.ExceedLimit")
    working_dir = ctx.params.get("WorkingDir") or ""
    if len(working_dir) > MAX_WORKING_DIR:
        raise ApiError("InvalidParameter.WorkingDir", "The specified parameter WorkingDir is not valid.", 400)
    _parameters_refused(ctx)
    command = Command(new_id("c-", 28), ctx.account.name, region_id, name, command_type, content, working_dir,
                      _timeout(ctx), description)
    with service(ctx).lock:
        service(ctx).commands[command.command_id] = command
    return {"CommandId": command.command_id}


def invoke_command(ctx: Context) -> dict:
    region_id = region(ctx)
    command_id = req(ctx, "CommandId")
    with service(ctx).lock:
        command = service(ctx).commands.get(command_id)
    if command is None or command.account != ctx.account.name or command.region != region_id:
        raise ApiError("InvalidCmdId.NotFound", "The specified command ID does not exist.", 404)
    ids = _instances(ctx, MAX_RUN_INSTANCES)
    username = _bounded(ctx, "Username", MAX_USERNAME, "Username.ExceedLimit", "root")
    working_dir = ctx.params.get("WorkingDir") or command.working_dir
    _repeat_mode(ctx)
    _parameters_refused(ctx)
    timeout = _timeout(ctx) if ctx.params.get("Timeout") else command.timeout
    rows = _instance_rows(ctx, region_id, ids)
    _check_applicable(rows, command.command_type)
    inv = Invocation(invoke_id=new_id("t-", 28), kind="command", account=ctx.account.name, region=region_id,
                     name=command.name, command_id=command.command_id, command_type=command.command_type,
                     content=command.content, username=username, working_dir=working_dir, timeout=timeout)
    return _start(ctx, inv, rows)


_FILE_MODE = re.compile(r"0?[0-7]{3}")


def send_file(ctx: Context) -> dict:
    region_id = region(ctx)
    content = _content(ctx, "Content", "ContentType", MAX_FILE_BASE64, "InvalidParam.ContentLength")
    name = req(ctx, "Name")
    if len(name) > MAX_FILE_NAME or "/" in name or name in (".", ".."):
        raise invalid("Name", "a file name of at most 255 characters, without '/'")
    target = req(ctx, "TargetDir")
    if len(target) > MAX_TARGET_DIR or not target.startswith("/"):
        raise invalid("TargetDir", "an absolute path of at most 255 characters")
    owner = _bounded(ctx, "FileOwner", MAX_OWNER, "InvalidParam.FileOwner", "root")
    group = _bounded(ctx, "FileGroup", MAX_OWNER, "InvalidParam.FileGroup", "root")
    mode = ctx.params.get("FileMode") or "0644"
    if not _FILE_MODE.fullmatch(mode):
        raise invalid("FileMode", "an octal mode such as 0644")
    overwrite = opt_bool(ctx, "Overwrite")
    _bounded(ctx, "Description", MAX_DESCRIPTION, "InvalidParam.Description")
    timeout = _timeout(ctx, MIN_FILE_TIMEOUT)
    ids = _instances(ctx, MAX_SEND_FILE_INSTANCES)
    rows = _instance_rows(ctx, region_id, ids)
    inv = Invocation(invoke_id=new_id("f-", 28), kind="file", account=ctx.account.name, region=region_id,
                     name=name, content=content, timeout=timeout,
                     file={"Name": name, "TargetDir": target, "FileOwner": owner, "FileGroup": group,
                           "FileMode": mode, "Overwrite": overwrite})
    return _start(ctx, inv, rows)


def _selected(ctx: Context, region_id: str, kind: str) -> list[Invocation]:
    invoke_id = ctx.params.get("InvokeId")
    instance_id = ctx.params.get("InstanceId")
    command_id = ctx.params.get("CommandId")
    with service(ctx).lock:
        found = [inv for inv in service(ctx).invocations.values()
                 if inv.kind == kind and inv.account == ctx.account.name and inv.region == region_id
                 and (not invoke_id or inv.invoke_id == invoke_id)
                 and (not command_id or inv.command_id == command_id)
                 and (not instance_id or instance_id in inv.runs)]
    return sorted(found, key=lambda inv: -inv.seq)  # newest first


def _page(ctx: Context, items: list) -> tuple[list, dict]:
    size = opt_int(ctx, "MaxResults", 0, 1, 50) or opt_int(ctx, "PageSize", 10, 1, 50)
    token = ctx.params.get("NextToken") or ""
    if token and not token.isdigit():
        raise invalid("NextToken", "not a token this endpoint issued")
    start = int(token) if token else (opt_int(ctx, "PageNumber", 1, 1, 1_000_000) - 1) * size
    chunk = items[start:start + size]
    more = start + size < len(items)
    return chunk, {"TotalCount": len(items), "PageSize": size, "PageNumber": start // size + 1,
                   "NextToken": str(start + size) if more else ""}


def _output_encoding(ctx: Context) -> str:
    value = (ctx.params.get("ContentEncoding") or "Base64").lower()
    return "plaintext" if value == "plaintext" else "base64"


def _text(data: bytes, encoding: str) -> str:
    if encoding == "plaintext":
        return data.decode("utf-8", "replace")
    return base64.b64encode(data).decode("ascii")


def _instance_view(run: InstanceRun, encoding: str, with_output: bool) -> dict:
    item = {"InstanceId": run.instance_id, "InvocationStatus": run.status,
            "InstanceInvokeStatus": run.record_status(), "ExitCode": run.exit_code,
            "Dropped": run.dropped, "ErrorCode": run.error_code, "ErrorInfo": ERROR_INFO.get(run.error_code, ""),
            "CreationTime": run.created, "StartTime": run.start_time, "FinishTime": run.finished_time,
            "UpdateTime": run.finished_time or run.start_time or run.created, "Repeats": 1 if run.finished_time else 0,
            "Timed": False}
    if with_output:
        item["Output"] = _text(run.output, encoding)
    return item


def describe_invocations(ctx: Context) -> dict:
    region_id = region(ctx)
    encoding = _output_encoding(ctx)
    with_output = opt_bool(ctx, "IncludeOutput")
    status = ctx.params.get("InvokeStatus") or ctx.params.get("InvocationStatus")
    found = [inv for inv in _selected(ctx, region_id, "command") if not status or inv.overall() == status]
    page, meta = _page(ctx, found)
    items = []
    for inv in page:
        overall = inv.overall()
        items.append({
            "InvokeId": inv.invoke_id, "CommandId": inv.command_id, "CommandName": inv.name,
            "CommandType": inv.command_type, "CommandContent": _text(inv.content, encoding),
            "InvocationStatus": overall, "InvokeStatus": "Finished" if overall not in ("Running", "Pending") else "Running",
            "CreationTime": inv.created, "Timeout": inv.timeout, "Username": inv.username,
            "WorkingDir": inv.working_dir, "RepeatMode": "Once", "Frequency": "", "Timed": False, "Parameters": "{}",
            "InvokeInstances": {"InvokeInstance": [_instance_view(r, encoding, with_output)
                                                   for r in inv.runs.values()]}})
    return {**meta, "Invocations": {"Invocation": items}}


def describe_invocation_results(ctx: Context) -> dict:
    region_id = region(ctx)
    encoding = _output_encoding(ctx)
    wanted = ctx.params.get("InvokeRecordStatus")
    instance_id = ctx.params.get("InstanceId")
    rows = []
    for inv in _selected(ctx, region_id, "command"):
        for run in inv.runs.values():
            if instance_id and run.instance_id != instance_id:
                continue
            if wanted and run.record_status() != wanted:
                continue
            rows.append((inv, run))
    page, meta = _page(ctx, rows)
    results = []
    for inv, run in page:
        results.append({
            "CommandId": inv.command_id, "InvokeId": inv.invoke_id, "InstanceId": run.instance_id,
            "InvocationStatus": run.status, "InvokeRecordStatus": run.record_status(),
            "ExitCode": run.exit_code, "Output": _text(run.output, encoding), "Dropped": run.dropped,
            "ErrorCode": run.error_code, "ErrorInfo": ERROR_INFO.get(run.error_code, ""),
            "StartTime": run.start_time, "FinishedTime": run.finished_time, "StopTime": "",
            "Repeats": 1 if run.finished_time else 0, "Username": inv.username})
    return {"Invocation": {**meta, "InvocationResults": {"InvocationResult": results}}}


def describe_send_file_results(ctx: Context) -> dict:
    region_id = region(ctx)
    name = ctx.params.get("Name")
    found = [inv for inv in _selected(ctx, region_id, "file") if not name or inv.name == name]
    page, meta = _page(ctx, found)
    items = []
    for inv in page:
        f = inv.file
        items.append({
            "InvokeId": inv.invoke_id, "Name": inv.name, "Description": "", "TargetDir": f["TargetDir"],
            "FileOwner": f["FileOwner"], "FileGroup": f["FileGroup"], "FileMode": f["FileMode"],
            "Overwrite": f["Overwrite"], "ContentType": "Base64", "Content": "", "CreationTime": inv.created,
            "InvocationStatus": inv.overall(), "VmCount": len(inv.runs),
            "InvokeInstances": {"InvokeInstance": [
                {"InstanceId": r.instance_id, "InvocationStatus": r.status, "ErrorCode": r.error_code,
                 "ErrorInfo": ERROR_INFO.get(r.error_code, r.error_code), "CreationTime": r.created,
                 "StartTime": r.start_time, "FinishTime": r.finished_time,
                 "UpdateTime": r.finished_time or r.start_time or r.created}
                for r in inv.runs.values()]}})
    return {**meta, "Invocations": {"Invocation": items}}


def describe_cloud_assistant_status(ctx: Context) -> dict:
    region_id = region(ctx)
    ids = list(dict.fromkeys(repeat_list(ctx, "InstanceId", 50)))
    os_filter = (ctx.params.get("OSType") or "").lower()
    where, args = ["account=?", "region=?"], [ctx.account.name, region_id]
    if ids:
        where.append(f"id IN ({','.join('?' * len(ids))})")
        args += ids
    with ctx.state.read() as db:
        rows = [dict(r) for r in db.execute(f"SELECT id, os_type, status FROM instances WHERE {' AND '.join(where)} "
                                            "ORDER BY seq", args)]
    if os_filter:
        rows = [r for r in rows if r["os_type"] == os_filter]
    page, meta = _page(ctx, rows)
    svc = service(ctx)
    items = []
    for row in page:
        agent = _has_agent(ctx, row)
        with svc.lock:
            runs = [r for inv in svc.invocations.values() for r in inv.runs.values() if r.instance_id == row["id"]]
        items.append({
            "InstanceId": row["id"], "OSType": "Linux" if row["os_type"] == "linux" else "Windows",
            "CloudAssistantStatus": "true" if agent and row["status"] == "Running" else "false",
            "CloudAssistantVersion": AGENT_VERSION if agent else "",
            "LastHeartbeatTime": _now() if agent and row["status"] == "Running" else "",
            "InvocationCount": len(runs), "ActiveTaskCount": sum(1 for r in runs if r.status in ("Pending", "Running")),
            "LastInvokedTime": max((r.created for r in runs), default=""), "SupportSessionManager": False})
    return {**meta, "InstanceCloudAssistantStatusSet": {"InstanceCloudAssistantStatus": items}}


ACTIONS = {
    "RunCommand": run_command,
    "CreateCommand": create_command,
    "InvokeCommand": invoke_command,
    "DescribeInvocations": describe_invocations,
    "DescribeInvocationResults": describe_invocation_results,
    "SendFile": send_file,
    "DescribeSendFileResults": describe_send_file_results,
    "DescribeCloudAssistantStatus": describe_cloud_assistant_status,
}

"""Cloud Assistant through the official ECS client (alibabacloud_ecs20140526).

The first tests need no containers: the checks of RunCommand and SendFile, and what ECS answers
for instances without an agent (virtual and Windows instances). The tests marked podman run
commands and send files into real instance containers whose SSH port is closed to the
controller, and then open it.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from support import REGION, ApiFailure, EmulatorProcess, Sdk3
import test_podman_instances
from ecs_emulator.podman_backend import sshd_banner

instance_image = test_podman_instances.instance_image  # the image fixture, shared
podman = test_podman_instances.podman

POOL = "127.0.42.0/28"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def run_instance(api: Sdk3, image: str = "debian_12_x64_20G_alibase_20250101.vhd") -> str:
    body = api.call("RunInstances", RegionId=REGION, ImageId=image, Amount=1)
    return body["InstanceIdSets"]["InstanceIdSet"][0]


def wait_running(api: Sdk3, instance_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        body = api.call("DescribeInstances", RegionId=REGION, InstanceIds=json.dumps([instance_id]))
        if body["Instances"]["Instance"][0]["Status"] == "Running":
            return
        assert time.monotonic() < deadline
        time.sleep(0.2)


def result(api: Sdk3, invoke_id: str, timeout: float = 60) -> dict:
    """Polls DescribeInvocationResults until the invocation left Pending/Running."""
    deadline = time.monotonic() + timeout
    while True:
        body = api.call("DescribeInvocationResults", RegionId=REGION, InvokeId=invoke_id)
        rows = body["Invocation"]["InvocationResults"]["InvocationResult"]
        assert len(rows) == 1
        if rows[0]["InvocationStatus"] not in ("Pending", "Running"):
            return rows[0]
        assert time.monotonic() < deadline, rows[0]
        time.sleep(0.2)


def file_result(api: Sdk3, invoke_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = api.call("DescribeSendFileResults", RegionId=REGION, InvokeId=invoke_id)
        item = body["Invocations"]["Invocation"][0]
        one = item["InvokeInstances"]["InvokeInstance"][0]
        if one["InvocationStatus"] not in ("Pending", "Running"):
            return one
        assert time.monotonic() < deadline, one
        time.sleep(0.2)


def refused(call, *args, **kwargs) -> ApiFailure:
    with pytest.raises(ApiFailure) as info:
        call(*args, **kwargs)
    return info.value


# --- no containers -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def virtual(emu):
    return Sdk3(emu.endpoint, emu.key(0))


def test_a_virtual_instance_has_no_agent_and_commands_to_it_are_aborted(virtual):
    linux = run_instance(virtual)
    windows = run_instance(virtual, "win2022_64_dtc_en-us_40G_alibase_20250101.vhd")
    wait_running(virtual, linux)
    wait_running(virtual, windows)
    status = virtual.call("DescribeCloudAssistantStatus", RegionId=REGION, InstanceId=[linux, windows])
    items = {i["InstanceId"]: i for i in status["InstanceCloudAssistantStatusSet"]["InstanceCloudAssistantStatus"]}
    assert items[linux]["CloudAssistantStatus"] == "false" and items[linux]["OSType"] == "Linux"
    assert items[windows]["CloudAssistantStatus"] == "false" and items[windows]["OSType"] == "Windows"
    body = virtual.call("RunCommand", RegionId=REGION, Type="RunShellScript", CommandContent=b64("id"),
                        ContentEncoding="Base64", InstanceId=[linux])
    row = result(virtual, body["InvokeId"])
    assert (row["InvocationStatus"], row["ErrorCode"], row["InvokeRecordStatus"]) == ("Aborted", "ClientNotRunning", "Failed")
    assert row["ErrorInfo"] == "the aliyun service is not running on the instance"
    # A shell script does not apply to a Windows instance.
    failure = refused(virtual.call, "RunCommand", RegionId=REGION, Type="RunShellScript", CommandContent="id",
                      InstanceId=[windows])
    assert (failure.code, failure.status) == ("InvalidInstance.NotMatch", 400)


def test_run_command_checks_its_parameters_before_anything_runs(virtual):
    linux = run_instance(virtual)
    cases = [
        (dict(Type="RunShellScript", CommandContent=b64("x" * 18433), ContentEncoding="Base64", InstanceId=[linux]),
         "CmdContent.ExceedLimit", 403),
        (dict(Type="RunShellScript", CommandContent="x" * 18433, InstanceId=[linux]), "CmdContent.ExceedLimit", 403),
        (dict(Type="RunShellScript", CommandContent="id", InstanceId=["i-doesnotexist000000000"]),
         "InvalidInstance.NotFound", 404),
        (dict(Type="RunShellScript", CommandContent="id"), "MissingParam.InstanceId", 400),
        (dict(Type="RunPerlScript", CommandContent="id", InstanceId=[linux]), "InvalidCmdType.NotFound", 404),
        (dict(Type="RunShellScript", CommandContent="id", InstanceId=[linux], Username="u" * 256),
         "Username.ExceedLimit", 403),
        (dict(Type="RunShellScript", CommandContent="id", InstanceId=[linux], WorkingDir="/" + "d" * 200),
         "InvalidParameter.WorkingDir", 400),
        (dict(Type="RunShellScript", CommandContent="id", InstanceId=[f"i-{n:020d}" for n in range(101)]),
         "InstanceIds.ExceedLimit", 403),
    ]
    for params, code, status in cases:
        failure = refused(virtual.call, "RunCommand", RegionId=REGION, **params)
        assert (failure.code, failure.status) == (code, status), params
    # 24 KB of Base64 is the limit itself: accepted.
    body = virtual.call("RunCommand", RegionId=REGION, Type="RunShellScript", CommandContent=b64("x" * 18432),
                        ContentEncoding="Base64", InstanceId=[linux])
    assert body["InvokeId"].startswith("t-")
    failure = refused(virtual.call, "SendFile", RegionId=REGION, InstanceId=[linux], Name="f", TargetDir="/tmp",
                      Content=b64("y" * 24577), ContentType="Base64")
    assert failure.status == 403


# --- real instances, SSH closed ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def closed(instance_image, tmp_path_factory):  # pylint: disable=redefined-outer-name
    process = EmulatorProcess("--instances", "podman", "--ssh-closed", "--address-pool", POOL,
                              state_dir=str(tmp_path_factory.mktemp("ca")))
    process.start()
    api = Sdk3(process.endpoint, process.key(0))
    try:
        yield process, api
    finally:
        process.stop()
        from ecs_emulator.podman_backend import PodmanBackend
        PodmanBackend(state_id=process.doc["state_id"], ssh_port=22, ensure_image=False).purge()


@pytest.mark.podman
def test_commands_and_files_reach_an_instance_whose_ssh_port_is_closed(closed):
    process, api = closed
    iid = run_instance(api)
    wait_running(api, iid)
    address = api.call("DescribeInstances", RegionId=REGION, InstanceIds=json.dumps([iid]))[
        "Instances"]["Instance"][0]["PublicIpAddress"]["IpAddress"][0]
    assert not sshd_banner(address, 22), "the SSH port should be closed to the controller"
    status = api.call("DescribeCloudAssistantStatus", RegionId=REGION, InstanceId=[iid])
    assert status["InstanceCloudAssistantStatusSet"]["InstanceCloudAssistantStatus"][0]["CloudAssistantStatus"] == "true"

    # As the given user, in the user's home, stdout and stderr together, Base64 by default.
    body = api.call("RunCommand", RegionId=REGION, Type="RunShellScript", InstanceId=[iid], Username="ecs-user",
                    CommandContent=b64("id -un; pwd; echo oops >&2; exit 3"), ContentEncoding="Base64", Timeout=30)
    row = result(api, body["InvokeId"])
    assert (row["InvocationStatus"], row["ExitCode"], row["ErrorCode"]) == ("Failed", 3, "ExitCodeNonzero")
    assert base64.b64decode(row["Output"]).decode() == "ecs-user\n/home/ecs-user\noops\n"
    assert row["Dropped"] == 0

    body = api.call("RunCommand", RegionId=REGION, Type="RunShellScript", InstanceId=[iid], CommandContent="id -un")
    row = result(api, body["InvokeId"])
    assert (row["InvocationStatus"], row["ExitCode"]) == ("Success", 0)
    plain = api.call("DescribeInvocationResults", RegionId=REGION, InvokeId=body["InvokeId"], ContentEncoding="PlainText")
    assert plain["Invocation"]["InvocationResults"]["InvocationResult"][0]["Output"] == "root\n"
    listed = api.call("DescribeInvocations", RegionId=REGION, InvokeId=body["InvokeId"], IncludeOutput=True)
    inv = listed["Invocations"]["Invocation"][0]
    assert inv["InvocationStatus"] == "Success" and base64.b64decode(inv["CommandContent"]) == b"id -un"
    assert base64.b64decode(inv["InvokeInstances"]["InvokeInstance"][0]["Output"]) == b"root\n"

    # Output over 24 KB is cut there; Dropped says how much went.
    body = api.call("RunCommand", RegionId=REGION, Type="RunShellScript", InstanceId=[iid],
                    CommandContent="head -c 30000 /dev/zero | tr '\\0' a")
    row = result(api, body["InvokeId"])
    assert len(base64.b64decode(row["Output"])) == 24 * 1024 and row["Dropped"] == 30000 - 24 * 1024

    # The timeout kills the command.
    body = api.call("RunCommand", RegionId=REGION, Type="RunShellScript", InstanceId=[iid],
                    CommandContent="echo started; sleep 30", Timeout=2)
    row = result(api, body["InvokeId"])
    assert (row["InvocationStatus"], row["ErrorCode"]) == ("Timeout", "ExecutionTimeout")

    # A user the instance does not have; a working directory it does not have.
    body = api.call("RunCommand", RegionId=REGION, Type="RunShellScript", InstanceId=[iid], CommandContent="id",
                    Username="nobody-here")
    assert result(api, body["InvokeId"])["ErrorCode"] == "AccountNotExists"
    body = api.call("RunCommand", RegionId=REGION, Type="RunShellScript", InstanceId=[iid], CommandContent="id",
                    WorkingDir="/does/not/exist")
    assert result(api, body["InvokeId"])["ErrorCode"] == "DirectoryNotExists"

    # CreateCommand + InvokeCommand.
    command_id = api.call("CreateCommand", RegionId=REGION, Name="hello", Type="RunShellScript",
                          CommandContent=b64("echo hello"), ContentEncoding="Base64")["CommandId"]
    body = api.call("InvokeCommand", RegionId=REGION, CommandId=command_id, InstanceId=[iid])
    assert base64.b64decode(result(api, body["InvokeId"])["Output"]) == b"hello\n"

    # SendFile: owner, mode, and no overwrite unless asked.
    body = api.call("SendFile", RegionId=REGION, InstanceId=[iid], Name="note", TargetDir="/home/ecs-user/sent",
                    Content=b64("one\n"), ContentType="Base64", FileOwner="ecs-user", FileGroup="ecs-user",
                    FileMode="0600")
    assert file_result(api, body["InvokeId"])["InvocationStatus"] == "Success"
    proc = podman("exec", f"sshkeys-ecs-{iid}", "stat", "-c", "%U %G %a", "/home/ecs-user/sent/note")
    assert proc.stdout.strip() == "ecs-user ecs-user 600"
    body = api.call("SendFile", RegionId=REGION, InstanceId=[iid], Name="note", TargetDir="/home/ecs-user/sent",
                    Content="two\n")
    one = file_result(api, body["InvokeId"])
    assert (one["InvocationStatus"], one["ErrorCode"]) == ("Failed", "FileAlreadyExists"), one
    body = api.call("SendFile", RegionId=REGION, InstanceId=[iid], Name="note", TargetDir="/home/ecs-user/sent",
                    Content="two\n", Overwrite=True)
    assert file_result(api, body["InvokeId"])["InvocationStatus"] == "Success"
    assert podman("exec", f"sshkeys-ecs-{iid}", "cat", "/home/ecs-user/sent/note").stdout == "two\n"

    # An agent that stops: what is sent is aborted, the status says so; started again, it runs.
    assert process.admin("POST", "/_admin/cloud-assistant-agent", {"InstanceId": iid, "Running": False})[0] == 200
    body = api.call("RunCommand", RegionId=REGION, Type="RunShellScript", InstanceId=[iid], CommandContent="id")
    assert result(api, body["InvokeId"])["ErrorCode"] == "ClientNotRunning"
    status = api.call("DescribeCloudAssistantStatus", RegionId=REGION, InstanceId=[iid])
    assert status["InstanceCloudAssistantStatusSet"]["InstanceCloudAssistantStatus"][0]["CloudAssistantStatus"] == "false"
    process.admin("POST", "/_admin/cloud-assistant-agent", {"InstanceId": iid, "Running": True})
    body = api.call("RunCommand", RegionId=REGION, Type="RunShellScript", InstanceId=[iid], CommandContent="id")
    assert result(api, body["InvokeId"])["InvocationStatus"] == "Success"

    # The admin API opens the port (a security group rule); sshd answers again.
    status_code, _body = process.admin("POST", "/_admin/ssh-access", {"InstanceId": iid, "Open": True})
    assert status_code == 200 and sshd_banner(address, 22)

    # A stopped instance: the command is aborted, nothing runs.
    api.call("StopInstance", RegionId=REGION, InstanceId=iid)
    process.wait_idle()
    body = api.call("RunCommand", RegionId=REGION, Type="RunShellScript", InstanceId=[iid], CommandContent="id")
    row = result(api, body["InvokeId"])
    assert (row["InvocationStatus"], row["ErrorCode"]) == ("Aborted", "InstanceNotRunning")
    status = api.call("DescribeCloudAssistantStatus", RegionId=REGION, InstanceId=[iid])
    assert status["InstanceCloudAssistantStatusSet"]["InstanceCloudAssistantStatus"][0]["CloudAssistantStatus"] == "false"

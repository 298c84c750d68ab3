# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of the cloud_assistant connection, against an agent that runs the scripts.

The fake client below is the API seam (call with an action and its parameters): RunCommand runs
the script it is given with /bin/sh on this machine, as the agent does on an instance, with the
API's 24 KB cut of Output; SendFile writes its file. So the wrapper, the pieces and the joins are
run for real; only the network and the instance are replaced.
"""

from __future__ import annotations

import base64
import itertools
import os
import subprocess

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError
from ansible_collections.sshkeys.ecs.plugins.plugin_utils._cloud_assistant import (
    MAX_CONTENT_BASE64,
    MAX_OUTPUT,
    CloudAssistantError,
    Runner,
    check_instance_id,
    command_script,
    encode_script,
    parse_output,
)

INSTANCE = "i-bp1234567890abcdef"


class Agent:
    """The API as the collection's client sees it, with a local shell as the instance."""

    def __init__(self, outcome=None, polls_running: int = 1) -> None:
        self.actions = []
        self.results = {}
        self.ids = itertools.count(1)
        self.outcome = outcome          # a fixed result row, for the failure cases
        self.polls_running = polls_running
        self.region = "cn-hangzhou"
        self.contents = []

    def call(self, action, params=None, *, idempotent=True):
        params = dict(params or {})
        self.actions.append(action)
        if action == "RunCommand":
            assert params["InstanceId.1"] == INSTANCE and params["Type"] == "RunShellScript"
            assert params["ContentEncoding"] == "Base64" and len(params["CommandContent"]) <= MAX_CONTENT_BASE64
            assert not idempotent
            self.contents.append(params["CommandContent"])
            invoke_id = f"t-{next(self.ids)}"
            self.results[invoke_id] = [self.polls_running, self._run(params)]
            return {"InvokeId": invoke_id, "RequestId": "r"}
        if action == "DescribeInvocationResults":
            entry = self.results[params["InvokeId"]]
            if entry[0] > 0:
                entry[0] -= 1
                row = {"InvocationStatus": "Running"}
            else:
                row = entry[1]
            return {"Invocation": {"InvocationResults": {"InvocationResult": [dict(row, InstanceId=INSTANCE)]}}}
        if action == "SendFile":
            assert len(params["Content"]) <= 32 * 1024 and params["FileOwner"]
            path = os.path.join(params["TargetDir"], params["Name"])
            with open(path, "wb") as handle:
                handle.write(base64.b64decode(params["Content"]))
            return {"InvokeId": f"f-{next(self.ids)}"}
        raise AssertionError(action)

    def _run(self, params):
        if self.outcome is not None:
            return self.outcome
        script = base64.b64decode(params["CommandContent"])
        proc = subprocess.run(["/bin/sh", "-c", script.decode()], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, check=False)
        out = proc.stdout
        return {"InvocationStatus": "Success" if proc.returncode == 0 else "Failed", "ExitCode": proc.returncode,
                "Output": base64.b64encode(out[:MAX_OUTPUT]).decode(), "Dropped": max(0, len(out) - MAX_OUTPUT),
                "ErrorCode": "" if proc.returncode == 0 else "ExitCodeNonzero"}


def runner(agent, **kwargs):
    return Runner(agent, INSTANCE, "root", 30, sleep=lambda _s: None, **kwargs)


def test_a_command_gives_exit_code_stdout_and_stderr_apart_in_two_calls_when_done_at_once():
    agent = Agent(polls_running=0)
    rc, out, err = runner(agent).exec_command("echo out; echo err >&2; exit 7")
    assert (rc, out, err) == (7, b"out\n", b"err\n")
    assert agent.actions == ["RunCommand", "DescribeInvocationResults"]


def test_polls_back_off_until_the_result_is_final():
    agent = Agent(polls_running=3)
    pauses = []
    run = Runner(agent, INSTANCE, "root", 30, sleep=pauses.append)
    assert run.exec_command("true")[0] == 0
    assert agent.actions.count("DescribeInvocationResults") == 4
    assert pauses == sorted(pauses) and pauses[0] < pauses[-1] <= 2.0


def test_pipelined_stdin_travels_in_the_command_when_it_fits():
    agent = Agent()
    rc, out, _err = runner(agent).exec_command("tr a-z A-Z", in_data=b"hello")
    assert (rc, out) == (0, b"HELLO")
    assert "SendFile" not in agent.actions


def test_large_stdin_goes_in_sendfile_pieces_that_the_command_joins_and_removes(tmp_path):
    agent = Agent()
    data = os.urandom(70 * 1024)  # incompressible: three pieces of 24 KB
    run = runner(agent)
    rc, out, _err = run.exec_command("sha256sum | cut -c1-64", in_data=data, stage_dir=str(tmp_path))
    import hashlib
    assert (rc, out.strip()) == (0, hashlib.sha256(data).hexdigest().encode())
    assert agent.actions.count("SendFile") == 3
    assert agent.actions.count("RunCommand") == 1
    assert not list(tmp_path.iterdir()), "the pieces must be removed"


def test_output_over_one_api_output_is_kept_on_the_instance_and_read_in_pieces():
    agent = Agent()
    rc, out, err = runner(agent).exec_command("head -c 50000 /dev/zero | tr '\\0' x; head -c 3000 /dev/zero >&2")
    assert rc == 0 and out == b"x" * 50000 and err == b"\0" * 3000
    # the command, then three pieces of stdout and one of stderr (which removes the directory)
    assert agent.actions.count("RunCommand") == 5


def test_put_and_fetch_round_trip_a_file_atomically(tmp_path):
    agent = Agent()
    data = os.urandom(30 * 1024)
    target = tmp_path / "dest.bin"
    run = runner(agent)
    run.put_bytes(data, str(target))
    assert target.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest.bin"]
    assert run.fetch_bytes(str(target)) == data
    with pytest.raises(CloudAssistantError, match="cannot read"):
        run.fetch_bytes(str(tmp_path / "missing"))


@pytest.mark.parametrize("row, reason, words", [
    ({"InvocationStatus": "Aborted", "ErrorCode": "ClientNotRunning"}, "no_agent", "agent is not running"),
    ({"InvocationStatus": "Aborted", "ErrorCode": "InstanceNotRunning"}, "not_running", "is not Running"),
    ({"InvocationStatus": "Timeout", "ErrorCode": "ExecutionTimeout"}, "timeout", "timed out after 30 s"),
    ({"InvocationStatus": "Invalid", "ErrorCode": "AccountNotExists"}, "no_user", "does not exist"),
    ({"InvocationStatus": "Success", "ExitCode": 0, "Output": base64.b64encode(b"x").decode(), "Dropped": 9},
     "output_cut", "over the API's 24 KB"),
])
def test_each_failed_invocation_is_a_clear_error(row, reason, words):
    with pytest.raises(CloudAssistantError) as info:
        runner(Agent(outcome=row)).exec_command("true")
    assert info.value.reason == reason and words in str(info.value)


def test_api_errors_name_the_instance_and_what_is_wrong():
    class Refusing(Agent):
        def call(self, action, params=None, *, idempotent=True):
            raise EcsApiError(code="InvalidInstance.NotFound", message="The specified instance does not exist.",
                              action=action, request_id="r-1")

    with pytest.raises(CloudAssistantError, match="does not exist in this region"):
        runner(Refusing()).exec_command("true")


def test_a_command_over_the_content_limit_is_refused_before_any_call():
    agent = Agent()
    with pytest.raises(CloudAssistantError) as info:
        runner(agent).run("echo " + "x" * MAX_CONTENT_BASE64)
    assert info.value.reason == "too_large" and agent.actions == []
    assert len(encode_script("x" * 18000)) <= MAX_CONTENT_BASE64


@pytest.mark.parametrize("value", ["web1", "", None, "i-", "i-UPPER0000000", "i-abc;rm -rf /"])
def test_the_host_must_be_an_instance_id(value):
    with pytest.raises(CloudAssistantError) as info:
        check_instance_id(value)
    assert info.value.reason == "bad_input"


def test_the_command_travels_base64_so_quotes_and_newlines_survive():
    agent = Agent()
    command = "printf '%s\\n' \"it's\" 'a \"b\"'\necho $((1 + 2))"
    rc, out, _err = runner(agent).exec_command(command)
    assert (rc, out) == (0, b"it's\na \"b\"\n3\n")
    assert command not in base64.b64decode(agent.contents[0]).decode()


def test_unexpected_output_is_refused():
    with pytest.raises(CloudAssistantError, match="not what the connection wrote"):
        parse_output(b"hello")
    assert "SSHKEYS-ECS-CA" in command_script("true")

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugin of authorized_key_rotate, with the host steps run for real on a local file
and the login proof (the ssh seam) replaced: every way a rotation can fail must leave the file as
it was, and nothing may be changed before the inputs are checked."""

from __future__ import annotations

import json
import os
import pwd
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.sshkeys.ecs.plugins.action.authorized_key_rotate import ActionModule
from ansible_collections.sshkeys.ecs.plugins.module_utils._private_keys import generate_private_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._rotate import RotateError, StepOptions, run_step
from ansible_collections.sshkeys.ecs.plugins.plugin_utils._login_proof import Outcome, SessionStep, command_line

MODULE_NAME = "sshkeys.ecs.authorized_key_rotate"

ME = pwd.getpwuid(os.getuid()).pw_name

OLD_PRIVATE, OLD = generate_private_key("ecdsa", comment="old")
NEW_PRIVATE, NEW = generate_private_key("ed25519", comment="new")
STRANGER_PRIVATE, STRANGER = generate_private_key("ed25519", comment="stranger")

LOGGED_IN = Outcome(True, False, "logged in and ran the check command")
REFUSED = Outcome(False, True, "u@h: Permission denied (publickey)")
UNREACHABLE = Outcome(False, False, "ssh: connect to host h port 22: Connection refused")


class Host:
    """Runs the host module's steps on a local file, the way the managed host would."""

    def __init__(self, fail_phase: str | None = None, drop_phase: str | None = None) -> None:
        self.calls: list = []
        self.fail_phase = fail_phase
        self.drop_phase = drop_phase

    def __call__(self, module_name, module_args, task_vars, check_mode=False):
        self.calls.append(module_args["_phase"])
        if module_args["_phase"] == self.fail_phase:
            return {"failed": True, "msg": f"injected failure in {self.fail_phase}"}
        if module_args["_phase"] == self.drop_phase:
            # The step runs on the host, then the connection drops before its result comes back.
            run_step(StepOptions.from_params(dict(module_args)), check_mode=check_mode, diff=True)
            raise AnsibleConnectionFailure("Connection reset by peer")
        try:
            return run_step(StepOptions.from_params(dict(module_args)), check_mode=check_mode, diff=True)
        except RotateError as exc:
            return {"failed": True, "msg": str(exc), "reason": exc.reason}


@pytest.fixture()
def keys(tmp_path):
    paths = {}
    for name, text in (("old", OLD_PRIVATE), ("new", NEW_PRIVATE), ("stranger", STRANGER_PRIVATE)):
        path = tmp_path / name
        path.write_text(text)
        path.chmod(0o600)
        paths[name] = str(path)
    return paths


@pytest.fixture()
def keyfile(tmp_path):
    directory = tmp_path / "home" / ".ssh"
    directory.mkdir(parents=True, mode=0o700)
    path = directory / "authorized_keys"
    path.write_text(f"# keys\nno-pty {OLD.line()}\n")
    path.chmod(0o600)
    return path


ORIGINAL = f"# keys\nno-pty {OLD.line()}\n"


def make(args, host: Host, proofs=(), check=False, diff=False):
    task = MagicMock()
    task.args = args
    task.async_val = 0
    task.check_mode = check
    task.diff = diff
    options = {"host": "127.0.0.9", "port": 2222, "remote_user": ME, "host_key_checking": False,
               "ssh_args": "-C -o ControlMaster=auto -o ControlPersist=60s",
               "ssh_common_args": "-o UserKnownHostsFile=/dev/null", "ssh_extra_args": "",
               "ssh_executable": "ssh"}
    connection = MagicMock()
    connection._shell.tmpdir = None
    connection.get_option.side_effect = options.__getitem__
    action = ActionModule(task, connection, MagicMock(), loader=None, templar=None)
    action._execute_module = lambda module_name, module_args, task_vars: host(
        module_name, module_args, task_vars, check_mode=task.check_mode)
    queue = list(proofs)
    action.proofs = []
    action.session_steps = []

    def prove(target, key_path, fingerprint, forced_command=False, step=None):
        action.proofs.append((target, key_path, fingerprint))
        outcome = queue.pop(0)
        if step is None or not outcome.logged_in:
            return outcome
        # The session runs the step the way the host would, as the login's own user.
        action.session_steps.append(step.args["_phase"])
        try:
            result = host(MODULE_NAME, dict(step.args), {}, check_mode=False)
        except AnsibleConnectionFailure:
            return Outcome(outcome.logged_in, outcome.refused, outcome.detail, output="")
        return Outcome(outcome.logged_in, outcome.refused, outcome.detail, output="motd line\n" + json.dumps(result))

    action._prove = prove
    action._removal_step = lambda run, task_vars: SessionStep(
        command="/usr/bin/python3", stdin=b"", args=action._removal_args(run))
    return action


def rotate_args(keyfile, keys, **extra):
    args = {"user": ME, "path": str(keyfile), "old_key": [OLD.line()], "new_key": NEW.line(),
            "new_private_key_path": keys["new"]}
    args.update(extra)
    return args


def test_rotation_proves_then_removes(keyfile, keys):
    host = Host()
    action = make(rotate_args(keyfile, keys, verify_old_key_rejected=True, old_private_key_path=keys["old"]),
                  host, [LOGGED_IN, REFUSED])
    result = action.run(task_vars={})
    assert not result.get("failed"), result
    assert result["changed"] and result["added"] == NEW.fingerprint() and result["removed"] == [OLD.fingerprint()]
    assert result["verification"] == {"host": "127.0.0.9", "port": 2222, "user": ME, "new_key_login": True,
                                      "removed_in_login": True, "old_key_rejected": True}
    assert keyfile.read_text() == f"# keys\nno-pty {NEW.line()}\n"
    assert host.calls == ["add", "remove_old", "forget"] and action.session_steps == ["remove_old"]
    assert sorted(os.listdir(keyfile.parent)) == [".authorized_keys.lock", "authorized_keys"]
    target, key_path, fingerprint = action.proofs[0]
    assert (key_path, fingerprint) == (keys["new"], NEW.fingerprint())
    assert action.proofs[1][1:] == (keys["old"], OLD.fingerprint())
    # The connection's ssh arguments are passed on, but connection sharing never reaches the
    # ssh command line of the proof; known-hosts settings do.
    line = " ".join(command_line(target, key_path, "token"))
    assert "ControlMaster=auto" not in line and "ControlPersist" not in line
    assert "UserKnownHostsFile=/dev/null" in line and "StrictHostKeyChecking=no" in line
    assert "original" not in result and "diff" not in result


def test_second_run_changes_nothing_and_tries_no_login(keyfile, keys):
    make(rotate_args(keyfile, keys), Host(), [LOGGED_IN]).run(task_vars={})
    host = Host()
    action = make(rotate_args(keyfile, keys), host, [])
    result = action.run(task_vars={})
    assert result["changed"] is False and not result.get("failed")
    assert host.calls == ["add"] and action.proofs == []


@pytest.mark.parametrize("proofs, fail_phase, step", [
    ([REFUSED], None, "new_key_login"),
    ([UNREACHABLE], None, "new_key_login"),
    ([LOGGED_IN], "remove_old", "remove_old"),
    ([LOGGED_IN, LOGGED_IN], None, "old_key_rejected"),
    ([LOGGED_IN, UNREACHABLE], None, "old_key_rejected"),
])
def test_every_failure_puts_the_file_back(keyfile, keys, proofs, fail_phase, step):
    host = Host(fail_phase)
    action = make(rotate_args(keyfile, keys, verify_old_key_rejected=True, old_private_key_path=keys["old"]),
                  host, proofs)
    result = action.run(task_vars={})
    assert result["failed"] and result["rolled_back"] and result["step"] == step
    assert result["changed"] is False
    assert "the old key still works" in result["msg"]
    assert keyfile.read_text() == ORIGINAL
    assert host.calls[-1] == "restore"
    assert NEW_PRIVATE not in repr(result) and OLD_PRIVATE not in repr(result)


def test_a_failed_restore_is_reported(keyfile, keys):
    host = Host("restore")
    result = make(rotate_args(keyfile, keys), host, [REFUSED]).run(task_vars={})
    assert result["failed"] and not result["rolled_back"] and result["changed"]
    assert "Restoring" in result["msg"] and "injected failure in restore" in result["msg"]
    # Both keys are still in the file: the old key still works.
    assert OLD.identity() in keyfile.read_text() and NEW.identity() in keyfile.read_text()


@pytest.mark.parametrize("extra, words", [
    ({"new_private_key_path": "stranger"}, "not of new_key"),
    ({"new_private_key_path": None}, "new_private_key_path is required"),
    ({"verify": False}, "accept_lockout_risk"),
    ({"old_key": [NEW.fingerprint()]}, "same key"),
    ({"verify_old_key_rejected": True}, "old_private_key_path is required"),
    ({"verify_old_key_rejected": True, "old_private_key_path": "stranger"}, "none of old_key"),
    ({"new_key": OLD_PRIVATE}, "private key"),
    ({"_phase": "restore"}, "internal"),
    ({"new_private_key_path": "/nonexistent/key"}, "does not exist"),
    ({"verify_ssh_args": ["bastion.example.com"]}, "not an option"),
    ({"verify_ssh_args": ["-o 'unterminated"]}, "quotation"),
])
def test_bad_input_fails_before_the_host_is_touched(keyfile, keys, extra, words):
    for name in ("new_private_key_path", "old_private_key_path"):
        if extra.get(name) in keys:
            extra[name] = keys[extra[name]]
    host = Host()
    result = make(rotate_args(keyfile, keys, **extra), host).run(task_vars={})
    assert result["failed"] and words in result["msg"], result["msg"]
    assert host.calls == []
    assert keyfile.read_text() == ORIGINAL
    assert "BEGIN OPENSSH PRIVATE KEY" not in result["msg"]


def test_unprotected_private_key_is_refused(keyfile, keys):
    os.chmod(keys["new"], 0o644)
    result = make(rotate_args(keyfile, keys), Host()).run(task_vars={})
    assert result["failed"] and "0644" in result["msg"]


def test_no_proof_with_acknowledgement(keyfile, keys):
    host = Host()
    action = make(rotate_args(keyfile, keys, verify=False, accept_lockout_risk=True, new_private_key_path=None),
                  host, [])
    result = action.run(task_vars={})
    assert result["changed"] and action.proofs == [] and "verification" not in result
    assert keyfile.read_text() == f"# keys\nno-pty {NEW.line()}\n"


def test_check_mode_predicts_and_changes_nothing(keyfile, keys):
    host = Host()
    action = make(rotate_args(keyfile, keys), host, [], check=True, diff=True)
    result = action.run(task_vars={})
    assert result["changed"] and result["added"] == NEW.fingerprint() and result["removed"] == [OLD.fingerprint()]
    assert result["diff"]["before"] == ORIGINAL
    assert result["diff"]["after"] == f"# keys\nno-pty {NEW.line()}\n"
    assert host.calls == ["add"] and action.proofs == []
    assert keyfile.read_text() == ORIGINAL


def test_diff_mode_shows_the_whole_rotation(keyfile, keys):
    result = make(rotate_args(keyfile, keys), Host(), [LOGGED_IN], diff=True).run(task_vars={})
    assert result["diff"]["before"] == ORIGINAL
    assert result["diff"]["after"] == keyfile.read_text()


def test_user_defaults_to_the_connection_user_and_overrides_win(keyfile, keys):
    args = rotate_args(keyfile, keys, verify_host="10.1.2.3", verify_port=22, verify_user="deploy",
                       verify_ssh_args=["-o ProxyJump=bastion"])
    del args["user"]
    action = make(args, Host(), [LOGGED_IN])
    result = action.run(task_vars={})
    assert result["user"] == ME
    target = action.proofs[0][0]
    assert (target.host, target.port, target.user) == ("10.1.2.3", 22, "deploy")
    assert "-o ProxyJump=bastion" in target.extra_args


def test_old_key_missing_is_a_clear_failure(keyfile, keys):
    keyfile.write_text("# nothing here\n")
    result = make(rotate_args(keyfile, keys), Host(), []).run(task_vars={})
    assert result["failed"] and result["step"] == "add" and "nothing to rotate" in result["msg"]


@pytest.mark.parametrize("drop_phase", ["remove_old", "restore"])
def test_a_dropped_connection_never_locks_out(keyfile, keys, drop_phase):
    host = Host(drop_phase=drop_phase)
    proofs = [LOGGED_IN] if drop_phase == "remove_old" else [REFUSED]
    result = make(rotate_args(keyfile, keys), host, proofs).run(task_vars={})
    text = keyfile.read_text()
    if drop_phase == "remove_old":
        # The removal ran (after the new key logged in) before the drop: the host says so, and
        # the rotation is reported done, with the lost answer in a warning.
        assert not result.get("failed") and result["changed"], result
        assert "connection failed" in result["warnings"][0] and "removal completed" in result["warnings"][0]
        assert text == f"# keys\nno-pty {NEW.line()}\n" and result["removed"] == [OLD.fingerprint()]
    else:
        assert result["failed"] and "connection failed" in result["msg"]
        assert not result["rolled_back"] and text == ORIGINAL
    assert sorted(os.listdir(keyfile.parent)) == [".authorized_keys.lock", "authorized_keys"]


def test_a_connection_dropped_after_the_removal_with_an_old_key_check_still_rolls_back(keyfile, keys):
    # With verify_old_key_rejected the run's backup outlives the removal, so a lost answer is
    # rolled back like any other failure: the old key works again.
    host = Host(drop_phase="remove_old")
    args = rotate_args(keyfile, keys, verify_old_key_rejected=True, old_private_key_path=keys["old"])
    result = make(args, host, [LOGGED_IN]).run(task_vars={})
    assert result["failed"] and result["rolled_back"] and keyfile.read_text() == ORIGINAL
    assert sorted(os.listdir(keyfile.parent)) == [".authorized_keys.lock", "authorized_keys"]


def test_a_connection_dropped_during_add_is_reported(keyfile, keys):
    host = Host(drop_phase="add")
    action = make(rotate_args(keyfile, keys), host, [])
    result = action.run(task_vars={})
    assert result["failed"] and result["step"] == "add" and "run the task again" in result["msg"]
    assert action.proofs == []
    assert OLD.identity() in keyfile.read_text()


def test_verify_timeout_must_be_positive(keyfile, keys):
    host = Host()
    result = make(rotate_args(keyfile, keys, verify_timeout=0), host).run(task_vars={})
    assert result["failed"] and "verify_timeout" in result["msg"] and host.calls == []


def test_an_unexpected_error_after_the_add_step_rolls_back(keyfile, keys):
    host = Host()
    action = make(rotate_args(keyfile, keys), host, [])

    def broken(*_args, **_kwargs):
        raise RuntimeError("surprise")

    action._prove = broken
    result = action.run(task_vars={})
    assert result["failed"] and result["rolled_back"] and result["step"] == "internal"
    assert "RuntimeError" in result["msg"]
    assert keyfile.read_text() == ORIGINAL


def test_the_removal_runs_inside_the_proof_login(keyfile, keys):
    # Two round trips: the add step over Ansible's connection, then one ssh login with the new key
    # that proves it and removes the old key in the same session.
    host = Host()
    action = make(rotate_args(keyfile, keys), host, [LOGGED_IN])
    result = action.run(task_vars={})
    assert not result.get("failed") and result["removed"] == [OLD.fingerprint()], result
    assert host.calls == ["add", "remove_old"] and action.session_steps == ["remove_old"]
    assert result["verification"]["removed_in_login"] is True
    assert keyfile.read_text() == f"# keys\nno-pty {NEW.line()}\n"
    assert sorted(os.listdir(keyfile.parent)) == [".authorized_keys.lock", "authorized_keys"]


def test_a_removal_that_fails_inside_the_login_is_done_over_ansibles_connection(keyfile, keys):
    # The new key logged in (the proof holds), but the step in its session failed half way (it
    # changes nothing: one atomic write): the removal runs again the usual way.
    host = Host()
    action = make(rotate_args(keyfile, keys), host, [LOGGED_IN])
    proved = action._prove

    def failing_in_session(target, key_path, fingerprint, forced_command=False, step=None):
        outcome = proved(target, key_path, fingerprint, forced_command, None)
        return Outcome(outcome.logged_in, outcome.refused, outcome.detail,
                       output=json.dumps({"failed": True, "msg": "Permission denied"}))

    action._prove = failing_in_session
    result = action.run(task_vars={})
    assert not result.get("failed") and result["removed"] == [OLD.fingerprint()], result
    assert host.calls == ["add", "remove_old"] and "removed_in_login" not in result["verification"]
    assert keyfile.read_text() == f"# keys\nno-pty {NEW.line()}\n"


@pytest.mark.parametrize("output", ["", "{not json", "Last login: yesterday\n"])
def test_a_session_that_printed_no_result_falls_back(keyfile, keys, output):
    host = Host()
    action = make(rotate_args(keyfile, keys), host, [LOGGED_IN])
    proved = action._prove
    action._prove = lambda target, key_path, fingerprint, forced_command=False, step=None: Outcome(
        True, False, proved(target, key_path, fingerprint, forced_command, None).detail, output=output)
    result = action.run(task_vars={})
    assert not result.get("failed") and host.calls == ["add", "remove_old"]
    assert OLD.identity() not in keyfile.read_text()


@pytest.mark.parametrize("extra", [
    {"verify_user": "someone-else"},
    {"keep_options": False, "new_key": f'command="true" {NEW.line()}'},
])
def test_no_removal_in_a_session_that_cannot_do_it(keyfile, keys, extra):
    host = Host()
    action = make(rotate_args(keyfile, keys, **extra), host, [LOGGED_IN])
    result = action.run(task_vars={})
    assert not result.get("failed"), result
    assert action.session_steps == [] and host.calls == ["add", "remove_old"]


def test_the_session_step_carries_no_key_material_and_no_file_content(keyfile, keys):
    host = Host()
    action = make(rotate_args(keyfile, keys), host, [LOGGED_IN])
    steps = []
    real = action._removal_step

    def recording(run, task_vars):
        step = real(run, task_vars)
        steps.append(step)
        return step

    action._removal_step = recording
    action.run(task_vars={})
    text = json.dumps(steps[0].args)
    assert "# keys" not in text and NEW_PRIVATE not in text and OLD_PRIVATE not in text
    assert steps[0].args["_phase"] == "remove_old" and steps[0].args["_run_backup"]


# -- over Cloud Assistant: no SSH path known unless verify_host gives one ---------------------------

def test_over_cloud_assistant_without_verify_host_it_refuses_before_any_change(keyfile, keys):
    host = Host()
    action = make(rotate_args(keyfile, keys), host, [])
    action._connection.transport = "sshkeys.ecs.cloud_assistant"
    result = action.run(task_vars={})
    assert result["failed"] and "Cloud Assistant" in result["msg"] and "verify_host" in result["msg"]
    assert "accept_lockout_risk" in result["msg"]
    assert keyfile.read_text() == ORIGINAL and host.calls == [] and action.proofs == []


def test_over_cloud_assistant_the_proof_logs_in_on_verify_host(keyfile, keys):
    host = Host()
    action = make(rotate_args(keyfile, keys, verify_host="10.0.0.5"), host, [LOGGED_IN])
    action._connection.transport = "sshkeys.ecs.cloud_assistant"
    result = action.run(task_vars={})
    assert not result.get("failed"), result
    assert action.proofs[0][0].host == "10.0.0.5" and result["verification"]["new_key_login"] is True
    assert keyfile.read_text() == f"# keys\nno-pty {NEW.line()}\n"


def test_over_cloud_assistant_without_proof_only_with_accept_lockout_risk(keyfile, keys):
    host = Host()
    refused = make(rotate_args(keyfile, keys, verify=False), host, [])
    refused._connection.transport = "sshkeys.ecs.cloud_assistant"
    assert "accept_lockout_risk" in refused.run(task_vars={})["msg"] and keyfile.read_text() == ORIGINAL
    action = make(rotate_args(keyfile, keys, verify=False, accept_lockout_risk=True), host, [])
    action._connection.transport = "sshkeys.ecs.cloud_assistant"
    result = action.run(task_vars={})
    assert not result.get("failed"), result
    assert action.proofs == [] and "verification" not in result
    assert keyfile.read_text() == f"# keys\nno-pty {NEW.line()}\n"

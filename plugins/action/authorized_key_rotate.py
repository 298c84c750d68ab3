# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Controller side of authorized_key_rotate: add, prove by a real login, remove; undo on failure."""

from __future__ import annotations

import json
import shlex
from typing import Any, Dict, List, Optional

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import AuthorizedKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import SSHKeyError
from ansible_collections.sshkeys.ecs.plugins.module_utils._private_keys import public_key_from_private
from ansible_collections.sshkeys.ecs.plugins.module_utils._rotate import (
    INTERNAL_OPTIONS,
    RotateError,
    check_distinct,
    parse_new_key,
    parse_old_keys,
    user_argument_spec,
)
from ansible_collections.sshkeys.ecs.plugins.plugin_utils._login_proof import (
    Outcome,
    ProofError,
    SessionStep,
    Target,
    check_private_key_file,
    prove,
    sanitise_args,
)

MODULE = "sshkeys.ecs.authorized_key_rotate"
# The connection that reaches hosts through the ECS API instead of SSH.
CLOUD_ASSISTANT = "sshkeys.ecs.cloud_assistant"
# Options the host steps need; the controller-only ones (private key paths, proof settings)
# never leave the controller.
HOST_OPTIONS = ("user", "path", "old_key", "new_key", "keep_options", "backup", "follow")


class StepFailed(SshKeysError):
    """A step of the rotation failed; ``step`` names it for the result."""

    def __init__(self, step: str, message: str, extra: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.step = step
        self.extra = extra or {}


class Run:
    """One rotation past its add step: what the later steps and the roll back need."""

    def __init__(self, params: Dict[str, Any], added: Dict[str, Any], written: List[str]) -> None:
        self.params = params
        self.added = added
        self.written = written
        self.verification: Dict[str, Any] = {}
        self.session_answer_lost = False

    def record_removal(self, removed: Dict[str, Any], summary: Dict[str, Any]) -> None:
        if removed.get("failed"):
            raise StepFailed("remove_old", f"removing the old key failed: {removed.get('msg')}")
        if removed.get("written"):
            self.written.append(removed["written"])
        summary["removed"] = removed.get("removed", [])
        if self.session_answer_lost and not summary["removed"]:
            # Found done: the step inside the login removed them before its answer was lost.
            summary["removed"] = self.added.get("old_keys", [])
        summary["backup_file"] = summary["backup_file"] or removed.get("backup_file")


def module_result(output: str) -> Optional[Dict[str, Any]]:
    """The JSON result a module printed (after anything a login shell printed first), or None."""
    start = output.find("{")
    if start < 0:
        return None
    try:
        result, _end = json.JSONDecoder().raw_decode(output[start:])
    except ValueError:
        return None
    return result if isinstance(result, dict) else None


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        internal = sorted(name for name in self._task.args if name in INTERNAL_OPTIONS)
        if internal:
            return self._fail(result, f"{', '.join(internal)} is internal to the action plugin and cannot be set in a task")
        try:
            _spec, params = self.validate_argument_spec(argument_spec=user_argument_spec())
        except AnsibleError as exc:
            return self._fail(result, str(exc))
        try:
            params["user"] = params.get("user") or self._connection_value("remote_user")
            if not params["user"]:
                raise RotateError("user is required: the connection has no remote user to default to")
            if params["verify_timeout"] < 1:
                raise RotateError("verify_timeout must be at least 1 second")
            new_fp = self._check_inputs(params)
            target = None
            if params["verify"] or params["verify_old_key_rejected"]:
                target = self._proof_target(params, task_vars)
                sanitise_args(target.extra_args)  # bad ssh arguments fail here, before any change
        except (RotateError, ProofError, SSHKeyError, AuthorizedKeysError) as exc:
            return self._fail(result, str(exc))
        try:
            result.update(self._rotate(params, new_fp, target, task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    @staticmethod
    def _fail(result: Dict[str, Any], message: str, **extra: Any) -> Dict[str, Any]:
        result.update(failed=True, msg=message, **extra)
        return result

    # -- inputs, checked before the host is touched ----------------------------------------------

    def _check_inputs(self, params: Dict[str, Any]) -> str:
        """Validate keys and key files; returns the new key's SHA256 fingerprint."""
        new = parse_new_key(params["new_key"], params["keep_options"])
        old_keys = parse_old_keys(params["old_key"])
        check_distinct(new, old_keys)
        new_fp = new.public_key().fingerprint("sha256")
        if params["verify"]:
            if not params["new_private_key_path"]:
                raise RotateError("new_private_key_path is required when verify is true (the new key must log in "
                                  "before the old one is removed)")
            derived = self._public_key_of(params["new_private_key_path"], "new_private_key_path")
            if derived.identity() != new.identity():
                raise RotateError(f"new_private_key_path {params['new_private_key_path']} holds the private key of "
                                  f"{derived.fingerprint('sha256')}, not of new_key ({new_fp})")
        elif not params["accept_lockout_risk"]:
            raise RotateError("verify is false: the old key would be removed without proof that the new key logs in; "
                              "set accept_lockout_risk to true to do that anyway")
        if params["verify_old_key_rejected"]:
            if not params["old_private_key_path"]:
                raise RotateError("old_private_key_path is required when verify_old_key_rejected is true")
            derived = self._public_key_of(params["old_private_key_path"], "old_private_key_path")
            line = parse_new_key(derived.identity(), keep_options=False)
            if not any(old.matches(line) for old in old_keys):
                raise RotateError(f"old_private_key_path {params['old_private_key_path']} holds the private key of "
                                  f"{derived.fingerprint('sha256')}, which is none of old_key")
        return new_fp

    @staticmethod
    def _public_key_of(path: str, option: str):
        data = check_private_key_file(path, option)
        try:
            return public_key_from_private(data)
        except SSHKeyError as exc:
            # The exception text never holds key material; the path is fine to show.
            raise RotateError(f"{option} {path} is not a usable private key: {exc} (ssh runs in batch mode, "
                              "so the key must not be encrypted)") from None

    # -- the rotation ------------------------------------------------------------------------

    def _step(self, phase: str, params: Dict[str, Any], task_vars: Dict[str, Any],
              extra: Optional[Dict[str, Any]] = None, check_mode: Optional[bool] = None) -> Dict[str, Any]:
        args = {name: params[name] for name in HOST_OPTIONS}
        args["_phase"] = phase
        args.update(extra or {})
        return self._run_step(args, task_vars, check_mode)

    def _run_step(self, args: Dict[str, Any], task_vars: Dict[str, Any],
                  check_mode: Optional[bool] = None) -> Dict[str, Any]:
        """One run of the host module over Ansible's connection."""
        saved = self._task.check_mode
        if check_mode is not None:
            self._task.check_mode = check_mode
        try:
            return self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        except AnsibleError as exc:
            # A dropped connection raises instead of returning a result: the step may or may not
            # have run on the host, which the messages built from this say.
            return {"failed": True, "msg": f"the connection failed during the {args['_phase']} step: {exc}",
                    "reason": "connection"}
        finally:
            self._task.check_mode = saved

    def _rotate(self, params: Dict[str, Any], new_fp: str, target: Optional[Target],
                task_vars: Dict[str, Any]) -> Dict[str, Any]:
        added = self._step("add", params, task_vars)
        if added.get("failed"):
            failed = self._outcome_failed(added, "add", rolled_back=False)
            if added.get("reason") == "connection":
                failed["msg"] += ("; the new key may or may not have been added, the old key is still in the file "
                                  "and works: run the task again")
            return failed
        summary: Dict[str, Any] = {"changed": False, "path": added.get("path"), "user": params["user"],
                                   "added": None, "removed": [], "backup_file": added.get("backup_file")}
        if added["outcome"] == "done":
            return summary
        if self._task.diff and added.get("planned"):
            summary["diff"] = added["planned"]
        if self._task.check_mode:
            summary.update(changed=True, added=new_fp if added["outcome"] != "both" else None,
                           removed=added.get("old_keys", []))
            return summary
        summary.update(changed=True, added=new_fp if added["outcome"] == "added" else None)
        run = Run(params, added, [sha for sha in [added.get("written")] if sha])
        try:
            removed = self._prove_and_remove(run, target, new_fp, task_vars)
            run.record_removal(removed, summary)
            if params["verify_old_key_rejected"]:
                self._check_old_key_rejected(run, target, summary, task_vars)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # Whatever went wrong after the add step, the file goes back before the error is
            # reported: an unexpected error must not leave the rotation half done.
            return self._after_failure(run, summary, exc, task_vars)
        if run.verification:
            summary["verification"] = run.verification
        return summary

    def _prove_and_remove(self, run: "Run", target: Optional[Target], new_fp: str,
                          task_vars: Dict[str, Any]) -> Dict[str, Any]:
        """The new key's login, and the removal of the old key inside that very login when it can
        run there: two round trips for the whole rotation. Where it cannot (no proof asked for, a
        forced command on the key, a proof as another user) or it did not finish, the removal
        runs over Ansible's connection once the login is proved."""
        params = run.params
        if not params["verify"]:
            return self._remove_old(run, task_vars)
        run.verification.update(host=target.host, port=target.port, user=target.user, new_key_login=False,
                                old_key_rejected=None)
        step = self._removal_step(run, task_vars) if self._in_session(params, run.added) else None
        outcome = self._prove(target, params["new_private_key_path"], new_fp, bool(run.added.get("forced_command")),
                              step)
        if not outcome.logged_in:
            raise StepFailed("new_key_login", f"the new key {new_fp} did not log in as {target.user} at "
                             f"{self._where(target)}: {outcome.detail}")
        run.verification["new_key_login"] = True
        removed = module_result(outcome.output) if step is not None else None
        if removed is not None and not removed.get("failed"):
            run.verification["removed_in_login"] = True
            return removed
        if step is not None and removed is None:
            # The session ran the step, but its answer did not come back: it may have removed the
            # old key already, which the removal over Ansible's connection then finds done.
            run.session_answer_lost = True
        return self._remove_old(run, task_vars)

    @staticmethod
    def _in_session(params: Dict[str, Any], added: Dict[str, Any]) -> bool:
        # The session is the file owner's own login: a forced command would run instead, and a
        # login as someone else may not be allowed to change the file.
        return not added.get("forced_command") and params["verify_user"] in (None, params["user"])

    def _removal_args(self, run: "Run") -> Dict[str, Any]:
        params, added = run.params, run.added
        args = {name: params[name] for name in HOST_OPTIONS}
        args.update(_phase="remove_old", backup=params["backup"] and not added.get("backup_file"))
        if not params["verify_old_key_rejected"]:
            # The run's backup goes with the removal, unless the old-key check may still need it.
            args["_run_backup"] = added.get("run_backup")
        return args

    def _removal_step(self, run: "Run", task_vars: Dict[str, Any]) -> SessionStep:
        """The remove_old step as a payload the proof's session runs with the host's interpreter."""
        args = self._removal_args(run)
        self._update_module_args(MODULE, args, task_vars)
        built, _path = self._configure_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        interpreter = built.shebang.replace("#!", "", 1).strip() if built.shebang else "/usr/bin/python3"
        return SessionStep(command=shlex.join(shlex.split(interpreter)), stdin=built.b_module_data, args=args)

    def _remove_old(self, run: "Run", task_vars: Dict[str, Any]) -> Dict[str, Any]:
        return self._run_step(self._removal_args(run), task_vars, check_mode=False)

    def _check_old_key_rejected(self, run: "Run", target: Target, summary: Dict[str, Any],
                                task_vars: Dict[str, Any]) -> None:
        params = run.params
        run.verification.setdefault("host", target.host)
        run.verification.update(port=target.port, user=target.user)
        old_fp = self._public_key_of(params["old_private_key_path"], "old_private_key_path").fingerprint("sha256")
        outcome = self._prove(target, params["old_private_key_path"], old_fp)
        if outcome.logged_in:
            raise StepFailed("old_key_rejected", f"the old key {old_fp} still logs in as {target.user} at "
                             f"{self._where(target)} after it was removed from {summary['path']}: something else "
                             "authorizes it (another AuthorizedKeysFile, an AuthorizedKeysCommand or a certificate "
                             "authority)")
        if not outcome.refused:
            raise StepFailed("old_key_rejected", f"could not prove that the old key {old_fp} is refused: "
                             f"{outcome.detail}")
        run.verification["old_key_rejected"] = True
        self._step("forget", params, task_vars, extra={"_run_backup": run.added.get("run_backup")}, check_mode=False)

    def _after_failure(self, run: "Run", summary: Dict[str, Any], exc: Exception,
                       task_vars: Dict[str, Any]) -> Dict[str, Any]:
        if not isinstance(exc, StepFailed):
            exc = StepFailed("internal", f"unexpected {type(exc).__name__} during the rotation: {exc}")
        if isinstance(exc, StepFailed) and exc.step == "old_key_rejected" and run.verification:
            run.verification["old_key_rejected"] = False
        failed = self._roll_back(run.params, run.added, run.written, task_vars, exc)
        if failed.pop("completed", False):
            # Only the removal's answer was lost: the host shows the rotation done, and the new key
            # proved itself before the removal ran.
            summary.update(removed=run.added.get("old_keys", []), warnings=[
                f"{exc}; the host shows the removal completed before the connection dropped: the rotation is "
                "done (the new key logged in before the old one was removed)"])
            failed = summary
        if run.verification:
            failed["verification"] = run.verification
        return failed

    def _roll_back(self, params: Dict[str, Any], added: Dict[str, Any], written: List[str],
                   task_vars: Dict[str, Any], error: StepFailed) -> Dict[str, Any]:
        result: Dict[str, Any] = {"failed": True, "changed": False, "step": error.step, "rolled_back": False,
                                  "path": added.get("path"), "user": params["user"]}
        restored = self._step("restore", params, task_vars,
                              extra={"_run_backup": added.get("run_backup"), "_written": written}, check_mode=False)
        if restored.get("failed"):
            result["msg"] = (f"{error}. Restoring {added.get('path')} failed too ({restored.get('msg')}): the old key "
                             "is still in the file unless the failure was after its removal; check the host")
            result["changed"] = True
            return result
        if restored.get("restored") == "completed":
            return {"completed": True}
        result["rolled_back"] = True
        result["msg"] = f"{error}. {added.get('path')} was put back as it was; the old key still works"
        return result

    @staticmethod
    def _outcome_failed(step_result: Dict[str, Any], step: str, rolled_back: bool) -> Dict[str, Any]:
        return {"failed": True, "changed": False, "step": step, "rolled_back": rolled_back,
                "msg": step_result.get("msg", "the host step failed"),
                "reason": step_result.get("reason")}

    # -- the login proof ---------------------------------------------------------------------

    @staticmethod
    def _where(target: Target) -> str:
        return f"{target.host}:{target.port}" if target.port else target.host

    def _prove(self, target: Target, key_path: str, fingerprint: str, forced_command: bool = False,
               step: Optional[SessionStep] = None) -> Outcome:
        """The seam the unit tests replace: one ssh process of its own."""
        outcome, _args = prove(target, key_path, fingerprint, forced_command, step)
        return outcome

    def _connection_value(self, name: str) -> Any:
        try:
            return self._connection.get_option(name)
        except (AnsibleError, KeyError, AttributeError):
            return None

    def _proof_target(self, params: Dict[str, Any], task_vars: Dict[str, Any]) -> Target:
        """Host, port and user Ansible uses for this host, with the task's overrides on top."""
        if getattr(self._connection, "transport", None) == CLOUD_ASSISTANT and not params["verify_host"]:
            # Ansible reaches this host through the ECS API: its host is an instance id, not an
            # address, and nothing says the controller can reach it over SSH at all.
            raise RotateError("the host is reached over Cloud Assistant (sshkeys.ecs.cloud_assistant), not SSH: the proof "
                              "that the new key logs in needs the instance's SSH address in verify_host; where the "
                              "controller has no SSH path to it, rotating without that proof takes verify=false and "
                              "accept_lockout_risk=true")
        host = params["verify_host"] or self._connection_value("host") or self._play_context.remote_addr \
            or task_vars.get("ansible_host") or task_vars.get("inventory_hostname")
        port = params["verify_port"] or self._connection_value("port") or self._play_context.port
        ssh_args: List[str] = []
        for name in ("ssh_args", "ssh_common_args", "ssh_extra_args"):
            value = self._connection_value(name)
            if value:
                ssh_args.append(value)
        ssh_args.extend(params["verify_ssh_args"])
        host_key_checking = self._connection_value("host_key_checking")
        return Target(
            host=str(host),
            user=params["verify_user"] or params["user"],
            port=int(port) if port else None,
            ssh_executable=self._connection_value("ssh_executable") or "ssh",
            extra_args=ssh_args,
            host_key_checking=True if host_key_checking is None else bool(host_key_checking),
            timeout=params["verify_timeout"],
        )

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the base of every cloud module (options, client, the one way out).

The glue between AnsibleModule and the rest: the options every cloud module shares, the client
(built by ``_credentials`` from the option values), and ``run``, which turns a result into
``exit_json`` and every ``SshKeysError`` into ``fail_json``. Nothing below this file sees
AnsibleModule or ``module.params``.
"""

from __future__ import annotations

import os
import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, TypeVar

from ansible_collections.sshkeys.ecs.plugins.module_utils._changes import PartialChangeError
from ansible_collections.sshkeys.ecs.plugins.module_utils._credentials import (
    SETTING_DEFAULTS,
    Connection,
    build_client,
    explain_api_error,
    resolve_connection,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError
from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._masking import MaskingAnsibleModule

T = TypeVar("T")


def ecs_argument_spec() -> dict:
    """The options every cloud module shares (documented by the sshkeys.ecs.ecs doc fragment).

    No environment fallbacks here: ``_credentials`` applies the environment, for the modules
    and the inventory alike, in one order.
    """
    return dict(
        alicloud_access_key=dict(type="str", aliases=["access_key"], no_log=False),
        alicloud_secret_key=dict(type="str", aliases=["secret_key"], no_log=True),
        alicloud_security_token=dict(type="str", aliases=["security_token"], no_log=True),
        alicloud_region=dict(type="str", aliases=["region"]),
        alicloud_profile=dict(type="str", aliases=["profile"]),
        shared_credentials_file=dict(type="path"),
        alicloud_assume_role_arn=dict(type="str", aliases=["assume_role_arn"]),
        alicloud_assume_role_session_name=dict(type="str", aliases=["assume_role_session_name"]),
        alicloud_assume_role_session_expiration=dict(type="int", aliases=["assume_role_session_expiration"]),
        alicloud_assume_role=dict(type="dict", aliases=["assume_role"], options=dict(
            role_arn=dict(type="str"),
            session_name=dict(type="str"),
            session_expiration=dict(type="int"),
            policy=dict(type="str"),
            external_id=dict(type="str", no_log=True),
        )),
        alicloud_sts_endpoint=dict(type="str", aliases=["sts_endpoint"]),
        ecs_role_name=dict(type="str", aliases=["role_name"]),
        ecs_endpoint=dict(type="str", aliases=["endpoint"]),
        ecs_endpoint_type=dict(type="str", choices=["public", "vpc"]),
        ecs_signature_version=dict(type="str", default=SETTING_DEFAULTS["ecs_signature_version"],
                                   choices=["v3", "v1"]),
        ecs_timeout=dict(type="float", default=SETTING_DEFAULTS["ecs_timeout"]),
        ecs_retries=dict(type="int", default=SETTING_DEFAULTS["ecs_retries"]),
        ecs_retry_delay=dict(type="float", default=SETTING_DEFAULTS["ecs_retry_delay"]),
        validate_certs=dict(type="bool", default=SETTING_DEFAULTS["validate_certs"]),
    )


class EcsModule:
    """AnsibleModule plus the common options, the client, and the one way to fail."""

    def __init__(self, argument_spec: Optional[dict] = None, client_factory: Optional[Callable[..., Any]] = None,
                 **kwargs: Any) -> None:
        spec = ecs_argument_spec()
        spec.update(argument_spec or {})
        # Masks every option value that holds private key material from the moment the arguments
        # are loaded: Ansible's own checks (choices, types) may quote a value in their errors.
        self.module = MaskingAnsibleModule(argument_spec=spec, **kwargs)
        self.module.fail_on_withheld_keys()
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self._client_factory = client_factory
        self._client: Any = None
        self._connection: Optional[Connection] = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        connection = resolve_connection({name: self.params.get(name) for name in ecs_argument_spec()}, os.environ)
        # Secrets found at run time (environment, profile file, STS) are masked like no_log
        # options; so is the temporary AccessKey ID a role gets, which is worth nothing alone
        # but is no one's business either.
        for secret in (connection.credentials.access_key_secret, connection.credentials.security_token):
            if secret:
                self.module.no_log_values.add(secret)
        if connection.credentials.security_token:
            self.module.no_log_values.add(connection.credentials.access_key_id)
        self._connection = connection
        return build_client(connection, factory=self._client_factory)

    def options(self, job: Callable[..., T]) -> T:
        """job (a dataclass whose fields are option names) filled with those options' values."""
        return job(**self.values(*(item.name for item in dataclasses.fields(job))))

    def values(self, *names: str) -> Dict[str, Any]:
        """The values of the named options, to pass on as keyword arguments."""
        return {name: self.params[name] for name in names}

    def run(self, body: Callable[["EcsModule"], Mapping[str, Any]]) -> None:
        """Runs body(self) and exits with its result: the one way out of every cloud module.

        The result's ``warnings`` go to ``module.warn`` and its ``diff`` stays only in diff mode.
        Every ``SshKeysError`` becomes ``fail_json``: API errors carry ``error`` (code, request
        id), a failure after changes names them in ``changes`` (and ``changed``), any other
        failure changed nothing. Other exceptions are bugs and keep their traceback.
        """
        try:
            result = dict(body(self))
        except SshKeysError as error:
            msg, fields = failure_of(error)
            hint = explain_api_error(error.code, self._connection.source) \
                if isinstance(error, EcsApiError) and self._connection is not None else None
            if hint:
                msg = f"{msg} ({hint})"
            self.module.fail_json(msg=msg, **self._finish(fields))
        self.module.exit_json(**self._finish(result))

    def run_job(self, job: Callable[..., T], task: Callable[[Any, T, bool], Mapping[str, Any]]) -> None:
        """run() of task(client, job, check_mode), with job built from the options first: its own
        checks fail before credentials are looked for."""
        def body(module: "EcsModule") -> Mapping[str, Any]:
            values = module.options(job)
            return task(module.client, values, module.check_mode)

        self.run(body)

    def _finish(self, result: Dict[str, Any]) -> Dict[str, Any]:
        for warning in result.pop("warnings", None) or []:
            self.module.warn(warning)
        if not self.module._diff:
            result.pop("diff", None)
        if self._connection is not None and self.module._verbosity >= 3:
            # Which source of the chain signed this task's requests, at -vvv (never a secret).
            result["credentials_source"] = self._connection.source
        return result


def failure_of(error: SshKeysError) -> Tuple[str, Dict[str, Any]]:
    """(msg, the other fields of fail_json) for an error."""
    if isinstance(error, PartialChangeError):
        return error.message, error.failure()
    fields: Dict[str, Any] = {"changed": False}
    if isinstance(error, EcsApiError):
        fields["error"] = error.as_dict()
    return str(error), fields

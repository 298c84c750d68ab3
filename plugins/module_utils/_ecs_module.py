# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the base of every cloud module (options, credentials, failures)."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ansible.module_utils.basic import env_fallback

from ansible_collections.sshkeys.ecs.plugins.module_utils._changes import PartialChangeError
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import (
    Credentials,
    EcsApiError,
    EcsClient,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._masking import MaskingAnsibleModule
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import looks_like_private_key, quote_input
from ansible_collections.sshkeys.ecs.plugins.module_utils._regular_file import UnsafeFileError, read_regular

# Environment names, most specific first: the Alibaba Cloud SDK and CLI names, then the ones of
# the existing alibaba.alicloud collection.
ENV_ACCESS_KEY = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALICLOUD_ACCESS_KEY", "ALICLOUD_ACCESS_KEY_ID")
ENV_SECRET_KEY = ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALICLOUD_SECRET_KEY", "ALICLOUD_ACCESS_KEY_SECRET")
ENV_SECURITY_TOKEN = ("ALIBABA_CLOUD_SECURITY_TOKEN", "ALICLOUD_SECURITY_TOKEN")
ENV_REGION = ("ALIBABA_CLOUD_REGION_ID", "ALICLOUD_REGION", "ALICLOUD_REGION_ID")
ENV_ENDPOINT = ("ALIBABA_CLOUD_ECS_ENDPOINT", "ALICLOUD_ECS_ENDPOINT")
ENV_PROFILE = ("ALIBABA_CLOUD_PROFILE", "ALIBABACLOUD_PROFILE", "ALICLOUD_PROFILE")
# The Alibaba tools' switch to ignore the CLI profile file (tests set it); honoured here too.
ENV_PROFILE_DISABLED = "ALIBABA_CLOUD_CLI_PROFILE_DISABLED"
DEFAULT_PROFILE_FILE = os.path.join("~", ".aliyun", "config.json")
# The CLI writes a few KiB; anything this large is not its profile file.
MAX_PROFILE_FILE = 1024 * 1024
# Region ids: cn-hangzhou, ap-southeast-1, cn-shanghai-finance-1, ... (matched as a whole).
REGION_PATTERN = re.compile(r"[a-z]{2,}(?:-[a-z0-9]+)+")


def ecs_argument_spec() -> dict:
    """The options every cloud module shares (documented by the sshkeys.ecs.ecs doc fragment)."""
    return dict(
        alicloud_access_key=dict(type="str", aliases=["access_key"], no_log=False,
                                 fallback=(env_fallback, list(ENV_ACCESS_KEY))),
        alicloud_secret_key=dict(type="str", aliases=["secret_key"], no_log=True,
                                 fallback=(env_fallback, list(ENV_SECRET_KEY))),
        alicloud_security_token=dict(type="str", aliases=["security_token"], no_log=True,
                                     fallback=(env_fallback, list(ENV_SECURITY_TOKEN))),
        alicloud_region=dict(type="str", aliases=["region"], fallback=(env_fallback, list(ENV_REGION))),
        alicloud_profile=dict(type="str", aliases=["profile"], fallback=(env_fallback, list(ENV_PROFILE))),
        ecs_endpoint=dict(type="str", aliases=["endpoint"], fallback=(env_fallback, list(ENV_ENDPOINT))),
        ecs_signature_version=dict(type="str", default="v3", choices=["v3", "v1"]),
        ecs_timeout=dict(type="float", default=30.0),
        ecs_retries=dict(type="int", default=5),
        ecs_retry_delay=dict(type="float", default=0.5),
        validate_certs=dict(type="bool", default=True),
    )


class CredentialError(SshKeysError):
    """Credentials or region could not be worked out. The message names sources, never values."""

    reason = "credentials"


def read_cli_profile(path: str, name: Optional[str]) -> dict:
    """The AccessKey fields of a profile of the Alibaba Cloud CLI's config.json.

    Only the AK and StsToken modes carry keys we can sign with; other modes (RAM role, ECS
    metadata, ...) are refused with a message that says which option to use instead.
    """
    # Read only when it is a regular file: a FIFO planted there would otherwise block forever.
    try:
        raw = read_regular(path, f"the Alibaba Cloud CLI profile file {path}", limit=MAX_PROFILE_FILE)
    except UnsafeFileError as exc:
        if exc.reason == "missing":
            return {}
        raise CredentialError(str(exc)) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise CredentialError(f"cannot read the Alibaba Cloud CLI profile file {path}: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise CredentialError(f"the Alibaba Cloud CLI profile file {path} is not a JSON object")
    wanted = name or data.get("current") or "default"
    profiles = data.get("profiles") or []
    profile = next((p for p in profiles if isinstance(p, dict) and p.get("name") == wanted), None)
    if profile is None:
        if name:
            raise CredentialError(f"profile {quote_input(name)} is not in the Alibaba Cloud CLI profile file {path}")
        return {}
    mode = profile.get("mode") or "AK"
    if mode not in ("AK", "StsToken"):
        raise CredentialError(
            f"profile {quote_input(wanted)} of {path} uses mode {quote_input(mode)}; only AK and StsToken profiles "
            "are supported, give alicloud_access_key and alicloud_secret_key instead")
    return {
        "access_key": profile.get("access_key_id") or None,
        "secret_key": profile.get("access_key_secret") or None,
        "security_token": (profile.get("sts_token") or None) if mode == "StsToken" else None,
        "region": profile.get("region_id") or None,
        "source": f"profile {quote_input(wanted)} of {path}",
    }


def resolve_credentials(params: Mapping[str, Any], environ: Mapping[str, str],
                        profile_file: str = DEFAULT_PROFILE_FILE) -> Tuple[Credentials, str, Optional[str]]:
    """(credentials, region, endpoint) from options (which already hold the environment
    fallbacks), then the CLI profile file for what is still missing."""
    access_key = params.get("alicloud_access_key")
    secret_key = params.get("alicloud_secret_key")
    token = params.get("alicloud_security_token")
    region = params.get("alicloud_region")
    endpoint = params.get("ecs_endpoint")
    needs_profile = not (access_key and secret_key) or not region
    disabled = str(environ.get(ENV_PROFILE_DISABLED, "")).lower() in ("1", "true", "yes")
    profile: dict = {}
    if needs_profile and not disabled:
        profile = read_cli_profile(os.path.expanduser(profile_file), params.get("alicloud_profile"))
    if not (access_key and secret_key) and profile.get("access_key") and profile.get("secret_key"):
        # A key pair is taken from one place only: never an id from here and a secret from there.
        if access_key or secret_key:
            raise CredentialError("only one of alicloud_access_key and alicloud_secret_key is set; set both")
        access_key, secret_key, token = profile["access_key"], profile["secret_key"], profile["security_token"]
    if not region:
        region = profile.get("region")
    if not access_key or not secret_key:
        raise CredentialError(
            "no Alibaba Cloud credentials: set alicloud_access_key and alicloud_secret_key, or "
            f"{ENV_ACCESS_KEY[0]} and {ENV_SECRET_KEY[0]}, or an AK profile in {profile_file}")
    if not region:
        raise CredentialError(f"no region: set alicloud_region or {ENV_REGION[0]}")
    return Credentials(access_key, secret_key, token), region, endpoint


def check_sent_values(credentials: Credentials, region: str) -> None:
    """Refuse, before any request, values that travel in every request and cannot be right: a
    region that is no region id, an AccessKey ID or token with spaces, control characters or
    private key material (which would otherwise be sent to the endpoint)."""
    if not REGION_PATTERN.fullmatch(region):
        raise CredentialError(f"region {quote_input(region)} is not a region id like cn-hangzhou")
    for what, value in (("the AccessKey ID", credentials.access_key_id),
                        ("the security token", credentials.security_token)):
        if not value:
            continue
        if looks_like_private_key(value):
            raise CredentialError(f"{what} holds private key material; nothing was sent")
        if value != value.strip() or any(ord(char) < 33 or ord(char) == 127 for char in value):
            raise CredentialError(f"{what} holds white space or control characters (a trailing newline from a "
                                  "YAML block scalar or a file?)")


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
        self._client_factory = client_factory or EcsClient
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        params = self.params
        credentials, region, endpoint = resolve_credentials(params, os.environ)
        check_sent_values(credentials, region)
        # Secrets found at run time (environment, profile file) are masked like no_log options.
        for secret in (credentials.access_key_secret, credentials.security_token):
            if secret:
                self.module.no_log_values.add(secret)
        if params["ecs_retries"] < 0 or params["ecs_timeout"] <= 0 or params["ecs_retry_delay"] < 0:
            raise CredentialError("ecs_retries and ecs_retry_delay must be 0 or more, and ecs_timeout more than 0")
        try:
            return self._client_factory(
                credentials, region, endpoint,
                signature_version=params["ecs_signature_version"], timeout=params["ecs_timeout"],
                retries=params["ecs_retries"], backoff_base=params["ecs_retry_delay"],
                validate_certs=params["validate_certs"])
        except ValueError as exc:
            raise CredentialError(str(exc)) from None

    @property
    def region(self) -> str:
        return self.client.region

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
            self.module.fail_json(msg=msg, **self._finish(fields))
        self.module.exit_json(**self._finish(result))

    def _finish(self, result: Dict[str, Any]) -> Dict[str, Any]:
        for warning in result.pop("warnings", None) or []:
            self.module.warn(warning)
        if not self.module._diff:
            result.pop("diff", None)
        return result


def failure_of(error: SshKeysError) -> Tuple[str, Dict[str, Any]]:
    """(msg, the other fields of fail_json) for an error."""
    if isinstance(error, PartialChangeError):
        return error.message, error.failure()
    fields: Dict[str, Any] = {"changed": False}
    if isinstance(error, EcsApiError):
        fields["error"] = error.as_dict()
    return str(error), fields

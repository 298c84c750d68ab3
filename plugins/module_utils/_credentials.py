# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: where credentials come from, and the client built on them.

The one place that turns option values, the environment and the Alibaba Cloud CLI profile file
into signed-client settings, for the modules (through the module base) and the inventory alike.
It knows nothing of AnsibleModule: callers hand in plain values (the option values by option
name, the environment, the profile file's path) and get a client or a ``CredentialError``.

Precedence, for each value: the option, then the first environment variable of its list that is
set, then the CLI profile file (the option's profile, else the file's current one).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import Credentials, EcsClient
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_validate import REGION_PATTERN
from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import looks_like_private_key, quote_input
from ansible_collections.sshkeys.ecs.plugins.module_utils._regular_file import UnsafeFileError, read_regular

# Environment names, most specific first: the Alibaba Cloud SDK and CLI names, then the ones of
# the existing alibaba.alicloud collection. The first one that is set wins.
ENV_ACCESS_KEY = ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALICLOUD_ACCESS_KEY", "ALICLOUD_ACCESS_KEY_ID")
ENV_SECRET_KEY = ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALICLOUD_SECRET_KEY", "ALICLOUD_ACCESS_KEY_SECRET")
ENV_SECURITY_TOKEN = ("ALIBABA_CLOUD_SECURITY_TOKEN", "ALICLOUD_SECURITY_TOKEN")
ENV_REGION = ("ALIBABA_CLOUD_REGION_ID", "ALICLOUD_REGION", "ALICLOUD_REGION_ID")
ENV_ENDPOINT = ("ALIBABA_CLOUD_ECS_ENDPOINT", "ALICLOUD_ECS_ENDPOINT")
# This collection's own: Alibaba's tools have no variable for the ECS endpoint's network type.
ENV_ENDPOINT_TYPE = ("ALIBABA_CLOUD_ECS_ENDPOINT_TYPE",)
ENV_PROFILE = ("ALIBABA_CLOUD_PROFILE", "ALIBABACLOUD_PROFILE", "ALICLOUD_PROFILE")
# The option each list stands in for.
OPTION_ENVIRONMENT = {
    "alicloud_access_key": ENV_ACCESS_KEY,
    "alicloud_secret_key": ENV_SECRET_KEY,
    "alicloud_security_token": ENV_SECURITY_TOKEN,
    "alicloud_region": ENV_REGION,
    "alicloud_profile": ENV_PROFILE,
    "ecs_endpoint": ENV_ENDPOINT,
    "ecs_endpoint_type": ENV_ENDPOINT_TYPE,
}
# The Alibaba tools' switch to ignore the CLI profile file (tests set it); honoured here too.
ENV_PROFILE_DISABLED = "ALIBABA_CLOUD_CLI_PROFILE_DISABLED"
DEFAULT_PROFILE_FILE = os.path.join("~", ".aliyun", "config.json")
# The CLI writes a few KiB; anything this large is not its profile file.
MAX_PROFILE_FILE = 1024 * 1024
# Connection settings that are not credentials, with the defaults of the documented options.
SETTING_DEFAULTS = {"ecs_signature_version": "v3", "ecs_timeout": 30.0, "ecs_retries": 5, "ecs_retry_delay": 0.5,
                    "validate_certs": True}


class CredentialError(SshKeysError):
    """Credentials, region or connection settings could not be worked out. The message names
    sources, never values."""

    reason = "credentials"


@dataclass(frozen=True)
class Connection:
    """What every client of one run shares: who signs, the default region, where to send."""

    credentials: Credentials
    region: str
    endpoint: Optional[str]
    settings: Dict[str, Any] = field(default_factory=dict)


def from_environment(options: Mapping[str, Any], environ: Mapping[str, str], option: str) -> Any:
    """The option's value when it is set, else the first of its environment variables that is."""
    value = options.get(option)
    if value is not None:
        return value
    for name in OPTION_ENVIRONMENT.get(option, ()):
        if name in environ:
            return environ[name]
    return None


def read_cli_profile(path: str, name: Optional[str]) -> dict:
    """The AccessKey fields of a profile of the Alibaba Cloud CLI's config.json.

    Only the AK and StsToken modes carry keys we can sign with; other modes (RAM role, ECS
    metadata, ...) are refused with a message that says which option to use instead.
    """
    data = _profile_document(path)
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


def _profile_document(path: str) -> dict:
    """The profile file as a JSON object ({} when there is none)."""
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
    return data


def resolve_credentials(options: Mapping[str, Any], environ: Mapping[str, str],
                        profile_file: str = DEFAULT_PROFILE_FILE) -> Tuple[Credentials, str, Optional[str]]:
    """(credentials, region, endpoint) from the options, the environment, then the CLI profile
    file for what is still missing."""
    def value(option: str) -> Any:
        return from_environment(options, environ, option)

    access_key, secret_key = value("alicloud_access_key"), value("alicloud_secret_key")
    token, region, endpoint = value("alicloud_security_token"), value("alicloud_region"), value("ecs_endpoint")
    needs_profile = not (access_key and secret_key) or not region
    disabled = str(environ.get(ENV_PROFILE_DISABLED, "")).lower() in ("1", "true", "yes")
    profile: dict = {}
    if needs_profile and not disabled:
        profile = read_cli_profile(os.path.expanduser(profile_file), value("alicloud_profile"))
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


def check_region(region: str) -> None:
    if not REGION_PATTERN.fullmatch(region):
        raise CredentialError(f"region {quote_input(region)} is not a region id like cn-hangzhou")


def check_sent_values(credentials: Credentials, region: str) -> None:
    """Refuse, before any request, values that travel in every request and cannot be right: a
    region that is no region id, an AccessKey ID or token with spaces, control characters or
    private key material (which would otherwise be sent to the endpoint)."""
    check_region(region)
    for what, value in (("the AccessKey ID", credentials.access_key_id),
                        ("the security token", credentials.security_token)):
        if not value:
            continue
        if looks_like_private_key(value):
            raise CredentialError(f"{what} holds private key material; nothing was sent")
        if value != value.strip() or any(ord(char) < 33 or ord(char) == 127 for char in value):
            raise CredentialError(f"{what} holds white space or control characters (a trailing newline from a "
                                  "YAML block scalar or a file?)")


def client_settings(options: Mapping[str, Any]) -> Dict[str, Any]:
    """The client's keyword arguments from the connection options (their defaults when absent)."""
    values = {name: default if options.get(name) is None else options[name]
              for name, default in SETTING_DEFAULTS.items()}
    if values["ecs_retries"] < 0 or values["ecs_timeout"] <= 0 or values["ecs_retry_delay"] < 0:
        raise CredentialError("ecs_retries and ecs_retry_delay must be 0 or more, and ecs_timeout more than 0")
    return {"signature_version": values["ecs_signature_version"], "timeout": values["ecs_timeout"],
            "retries": values["ecs_retries"], "backoff_base": values["ecs_retry_delay"],
            "validate_certs": values["validate_certs"]}


def resolve_connection(options: Mapping[str, Any], environ: Mapping[str, str],
                       profile_file: str = DEFAULT_PROFILE_FILE) -> Connection:
    """Everything a client needs, checked before any request is sent."""
    credentials, region, endpoint = resolve_credentials(options, environ, profile_file)
    check_sent_values(credentials, region)
    settings = client_settings(options)
    settings["endpoint_type"] = endpoint_type(options, environ)
    return Connection(credentials, region, endpoint, settings)


def endpoint_type(options: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """public or vpc: which endpoint of the region the client uses when none is given."""
    value = from_environment(options, environ, "ecs_endpoint_type") or "public"
    if value not in ("public", "vpc"):
        raise CredentialError(f"ecs_endpoint_type (or {ENV_ENDPOINT_TYPE[0]}) {quote_input(value)} is neither "
                              "public nor vpc")
    return value


def build_client(connection: Connection, region: Optional[str] = None,
                 factory: Optional[Callable[..., Any]] = None) -> Any:
    """A signed client for region (the connection's own by default)."""
    region = region or connection.region
    check_region(region)
    try:
        return (factory or EcsClient)(connection.credentials, region, connection.endpoint, **connection.settings)
    except ValueError as exc:
        raise CredentialError(str(exc)) from None

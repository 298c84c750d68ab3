# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: where credentials come from, and the client built on them.

The one place that turns option values, the environment and the Alibaba Cloud CLI profile file
into signed-client settings, for the modules (through the module base) and the inventory alike.
It knows nothing of AnsibleModule: callers hand in plain values (the option values by option
name, the environment, the profile file's path) and get a client or a ``CredentialError``.

Credentials: the first source of the chain that holds any wins, and is named in -vvv output and
in errors: the options (an AccessKey pair, or the profile option), the environment (an AccessKey
pair, then OIDC: ALIBABA_CLOUD_ROLE_ARN, _OIDC_PROVIDER_ARN and _OIDC_TOKEN_FILE), the CLI profile
file (the file's current profile, or ALIBABA_CLOUD_PROFILE's; modes AK, StsToken, RamRoleArn,
ChainableRamRoleArn, EcsRamRole, OIDC), the credentials file (ini), and last the instance's RAM
role from the metadata service. An AccessKey ID and its secret always come from the same source.
The assume-role options then assume their role with what was found.
Other values (region, endpoint): the option, then the first environment variable of its list
that is set, then the CLI profile's region.
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
from ansible_collections.sshkeys.ecs.plugins.module_utils._metadata import MetadataError, role_credentials
from ansible_collections.sshkeys.ecs.plugins.module_utils._regular_file import UnsafeFileError, read_regular
from ansible_collections.sshkeys.ecs.plugins.module_utils._sts import (
    DEFAULT_SESSION_NAME,
    TRUE_WORDS,
    RoleRequest,
    StsError,
    assume_role,
    assume_role_with_oidc,
    is_expired,
    sts_endpoint,
)

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
# OIDC (RRSA on ACK): the variables the official SDKs and CLI read.
ENV_OIDC_ROLE_ARN = "ALIBABA_CLOUD_ROLE_ARN"
ENV_OIDC_PROVIDER_ARN = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"
ENV_OIDC_TOKEN_FILE = "ALIBABA_CLOUD_OIDC_TOKEN_FILE"
ENV_ROLE_SESSION_NAME = "ALIBABA_CLOUD_ROLE_SESSION_NAME"
# A projected service account token is about 1 KiB; STS takes 20,000 characters at most.
MAX_OIDC_TOKEN_FILE = 64 * 1024
# The credentials file of the official SDKs (ini; the Go SDK and the issue name
# ~/.alibabacloud/credentials, the Python one credentials.ini next to it: both are read).
ENV_CREDENTIALS_FILE = "ALIBABA_CLOUD_CREDENTIALS_FILE"
DEFAULT_CREDENTIALS_FILES = (os.path.join("~", ".alibabacloud", "credentials"),
                             os.path.join("~", ".alibabacloud", "credentials.ini"))
# The instance's RAM role: its name (else the metadata service says it), and the switch off.
ENV_ECS_ROLE_NAME = ("ALIBABA_CLOUD_ECS_METADATA", "ALICLOUD_ECS_ROLE_NAME")
ENV_METADATA_DISABLED = "ALIBABA_CLOUD_ECS_METADATA_DISABLED"
# The name alibaba.alicloud reads for its shared_credentials_file option.
ENV_SHARED_CREDENTIALS_FILE = ("ALICLOUD_SHARED_CREDENTIALS_FILE",)
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
# ChainableRamRoleArn profiles name a source profile; this deep is surely a loop.
MAX_PROFILE_CHAIN = 5
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
    # Where the credentials came from, in words (never a secret): for -vvv output and errors.
    source: str = ""


def from_environment(options: Mapping[str, Any], environ: Mapping[str, str], option: str) -> Any:
    """The option's value when it is set, else the first of its environment variables that is."""
    value = options.get(option)
    if value is not None:
        return value
    for name in OPTION_ENVIRONMENT.get(option, ()):
        if name in environ:
            return environ[name]
    return None


def _profile_named(data: dict, name: str) -> Optional[dict]:
    profiles = data.get("profiles") or []
    return next((p for p in profiles if isinstance(p, dict) and p.get("name") == name), None)


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


@dataclass(frozen=True)
class Resolved:
    """Credentials and where they came from (named in -vvv output and in every error)."""

    credentials: Credentials
    source: str
    expiration: Optional[str] = None


class Resolver:
    """Walks the chain for one connection: options, environment, CLI profile file. Each step
    answers Resolved, None (nothing there), or raises CredentialError (something there is wrong:
    a later source is never used to paper over it)."""

    def __init__(self, options: Mapping[str, Any], environ: Mapping[str, str], profile_file: str) -> None:
        self.options = options
        self.environ = environ
        self.profile_file = os.path.expanduser(self.value("shared_credentials_file") or profile_file)
        disabled = str(environ.get(ENV_PROFILE_DISABLED, "")).lower() in TRUE_WORDS
        self.profile_enabled = not disabled
        self._profile: Optional[dict] = None
        self.unmatched_profile: Optional[str] = None

    def value(self, option: str) -> Any:
        return from_environment(self.options, self.environ, option)

    def profile(self) -> dict:
        """The selected CLI profile ({} when disabled or absent); read once. A profile named (by
        the option or the environment) that the file lacks is remembered: the credentials file
        may hold a section of that name, else it is an error."""
        if self._profile is None:
            self._profile = {}
            if self.profile_enabled or self.options.get("alicloud_profile"):
                name = self.value("alicloud_profile")
                data = _profile_document(self.profile_file)
                wanted = name or data.get("current") or "default"
                found = _profile_named(data, wanted)
                if found is not None:
                    self._profile = dict(found, _name=wanted, _document=data)
                elif name:
                    self.unmatched_profile = name
        return self._profile

    def unmatched_profile_error(self, credentials_file: Optional[str]) -> CredentialError:
        also = f" nor is it a section of the credentials file {credentials_file}" if credentials_file else ""
        return CredentialError(f"profile {quote_input(self.unmatched_profile or '')} is not in the Alibaba Cloud CLI "
                               f"profile file {self.profile_file}{also}")

    def region(self) -> Optional[str]:
        return self.value("alicloud_region") or self.profile().get("region_id") or None

    # -- the chain ---------------------------------------------------------------------------

    def base(self, region: Optional[str]) -> Resolved:
        """The first source of the chain that holds credentials."""
        for step in (self.from_options, self.from_role_name_option, self.from_profile_option, self.from_environment,
                     self.from_oidc_environment, self.from_profile, self.from_credentials_file):
            found = step(region)
            if found is not None:
                return found
        # Last, and only when nothing above holds credentials: the instance's RAM role.
        why = "it is turned off by ALIBABA_CLOUD_ECS_METADATA_DISABLED"
        if str(self.environ.get(ENV_METADATA_DISABLED, "")).lower() not in TRUE_WORDS:
            role = next((self.environ[name] for name in ENV_ECS_ROLE_NAME if self.environ.get(name)), None)
            try:
                return self.from_metadata(role, "the ECS instance's RAM role (metadata service)")
            except MetadataError as exc:
                why = str(exc)
        raise CredentialError(
            f"no Alibaba Cloud credentials (and none from the ECS metadata service: {why}): "
            "set alicloud_access_key and alicloud_secret_key, or "
            f"{ENV_ACCESS_KEY[0]} and {ENV_SECRET_KEY[0]}, or a profile in {self.profile_file} "
            f"(modes AK, StsToken, RamRoleArn, ChainableRamRoleArn, EcsRamRole, OIDC), or {ENV_OIDC_ROLE_ARN}, "
            f"{ENV_OIDC_PROVIDER_ARN} and {ENV_OIDC_TOKEN_FILE}, or a section of {ENV_CREDENTIALS_FILE} "
            "(~/.alibabacloud/credentials), or run on an ECS instance with a RAM role")

    def from_options(self, region: Optional[str]) -> Optional[Resolved]:
        key, secret = self.options.get("alicloud_access_key"), self.options.get("alicloud_secret_key")
        token = self.options.get("alicloud_security_token")
        if not key and not secret:
            if token:
                # A token belongs to its temporary AccessKey: never sent with another source's key.
                raise CredentialError("alicloud_security_token is set in the options but alicloud_access_key and "
                                      "alicloud_secret_key are not (a token goes with the AccessKey it was issued with)")
            return None
        # An AccessKey ID and its secret come from one place: never an ID from the options and
        # the secret from the environment (that signs with the wrong secret).
        if not secret:
            raise CredentialError("the secret is missing: alicloud_access_key is set in the options but "
                                  "alicloud_secret_key is not (the secret is taken from the same place as its ID)")
        if not key:
            raise CredentialError("the AccessKey ID is missing: alicloud_secret_key is set in the options but "
                                  "alicloud_access_key is not (the ID is taken from the same place as its secret)")
        return Resolved(Credentials(key, secret, token), "the options alicloud_access_key and alicloud_secret_key")

    def from_role_name_option(self, region: Optional[str]) -> Optional[Resolved]:
        role = self.options.get("ecs_role_name")
        if not role:
            return None
        return self.metadata_or_fail(role, "the option ecs_role_name (metadata service)")

    def metadata_or_fail(self, role: Optional[str], source: str) -> Resolved:
        try:
            return self.from_metadata(role, source)
        except MetadataError as exc:
            raise CredentialError(f"{exc} ({source})") from None

    def from_metadata(self, role: Optional[str], source: str) -> Resolved:
        temporary, name = role_credentials(self.environ, role)
        return Resolved(temporary.credentials, f"{source}, role {quote_input(name)}", temporary.expiration)

    def from_credentials_file(self, region: Optional[str]) -> Optional[Resolved]:
        """A section of the official SDKs' ini credentials file: the profile's name, else default."""
        explicit = self.environ.get(ENV_CREDENTIALS_FILE)
        paths = [explicit] if explicit else list(DEFAULT_CREDENTIALS_FILES)
        for path in (os.path.expanduser(p) for p in paths):
            try:
                raw = read_regular(path, f"the Alibaba Cloud credentials file {path}", limit=MAX_PROFILE_FILE)
            except UnsafeFileError as exc:
                if exc.reason == "missing" and not explicit:
                    continue
                raise CredentialError(f"{exc} ({ENV_CREDENTIALS_FILE})" if explicit else str(exc)) from None
            found = self.credentials_file_section(path, raw, region)
            if found is None and self.unmatched_profile:
                raise self.unmatched_profile_error(path)
            return found
        if self.unmatched_profile:
            raise self.unmatched_profile_error(None)
        return None

    def credentials_file_section(self, path: str, raw: bytes, region: Optional[str]) -> Optional[Resolved]:
        # Imported here: only this source needs it, and every task pays for what the module imports.
        import configparser
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(raw.decode("utf-8"), source=path)
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise CredentialError(f"cannot read the Alibaba Cloud credentials file {path}: {type(exc).__name__}") from None
        name = self.value("alicloud_profile") or "default"
        if not parser.has_section(name):
            return None
        section = dict(parser.items(name))
        kind = section.get("type") or ""
        source = f"section [{name}] (type {kind}) of {path}"
        if kind in ("access_key", "ram_role_arn"):
            key, secret = section.get("access_key_id"), section.get("access_key_secret")
            if not key or not secret:
                raise CredentialError(f"{source} has no {'access_key_secret' if key else 'access_key_id'}: "
                                      f"the {'secret' if key else 'AccessKey ID'} is missing")
            base = Resolved(Credentials(key, secret), source)
            if kind == "access_key":
                return base
            return self.assume(base, ini_role(section, source), region)
        if kind == "ecs_ram_role":
            return self.metadata_or_fail(section.get("role_name") or None, f"{source} (metadata service)")
        if kind == "oidc_role_arn":
            provider, token_file = section.get("oidc_provider_arn"), section.get("oidc_token_file_path")
            if not provider or not token_file:
                raise CredentialError(f"{source} needs oidc_provider_arn and oidc_token_file_path")
            return self.assume_oidc(provider, token_file, ini_role(section, source), region, source)
        raise CredentialError(f"{source}: type {quote_input(kind)} is not supported by this collection (it serves "
                              "access_key, ram_role_arn, ecs_ram_role and oidc_role_arn)")

    def from_profile_option(self, region: Optional[str]) -> Optional[Resolved]:
        """A profile named by the profile option is a source of the options: it comes first."""
        if not self.options.get("alicloud_profile"):
            return None
        found = self.from_profile(region)
        if found is None and self.unmatched_profile:
            found = self.from_credentials_file(region)
        return found

    def from_environment(self, region: Optional[str]) -> Optional[Resolved]:
        key_name = next((name for name in ENV_ACCESS_KEY if self.environ.get(name)), None)
        secret_name = next((name for name in ENV_SECRET_KEY if self.environ.get(name)), None)
        if key_name is None and secret_name is None:
            return None
        if secret_name is None:
            raise CredentialError(f"the secret is missing: {key_name} is set in the environment but none of "
                                  f"{', '.join(ENV_SECRET_KEY)} is")
        if key_name is None:
            raise CredentialError(f"the AccessKey ID is missing: {secret_name} is set in the environment but none of "
                                  f"{', '.join(ENV_ACCESS_KEY)} is")
        token = next((self.environ[name] for name in ENV_SECURITY_TOKEN if self.environ.get(name)), None)
        return Resolved(Credentials(self.environ[key_name], self.environ[secret_name], token),
                        f"the environment ({key_name})")

    def from_oidc_environment(self, region: Optional[str]) -> Optional[Resolved]:
        """RRSA: a role ARN, an OIDC provider ARN and a token file in the environment."""
        names = (ENV_OIDC_ROLE_ARN, ENV_OIDC_PROVIDER_ARN, ENV_OIDC_TOKEN_FILE)
        present = [name for name in names if self.environ.get(name)]
        if not present:
            return None
        if len(present) < len(names):
            raise CredentialError(f"OIDC credentials need {', '.join(names)} together; "
                                  f"{', '.join(n for n in names if n not in present)} is not set")
        source = f"the OIDC environment ({ENV_OIDC_ROLE_ARN}, {ENV_OIDC_TOKEN_FILE})"
        role = RoleRequest(self.environ[ENV_OIDC_ROLE_ARN],
                           self.environ.get(ENV_ROLE_SESSION_NAME) or DEFAULT_SESSION_NAME, source=source)
        return self.assume_oidc(self.environ[ENV_OIDC_PROVIDER_ARN], self.environ[ENV_OIDC_TOKEN_FILE], role,
                                region, source)

    def assume_oidc(self, provider_arn: str, token_file: str, role: RoleRequest, region: Optional[str], source: str,
                    sts_region: Optional[str] = None) -> Resolved:
        if not region:
            raise CredentialError(f"no region: set alicloud_region or {ENV_REGION[0]} (STS is reached through "
                                  f"the region's endpoint to assume {role.role_arn})")
        path = os.path.expanduser(token_file)
        try:
            # Read afresh for every connection: the token file is rotated under us (kubelet).
            token = read_regular(path, f"the OIDC token file {path}", limit=MAX_OIDC_TOKEN_FILE).decode("ascii").strip()
        except UnsafeFileError as exc:
            raise CredentialError(f"{exc} ({source})") from None
        except UnicodeDecodeError:
            raise CredentialError(f"the OIDC token file {path} ({source}) does not hold a token") from None
        endpoint = sts_endpoint(region, self.environ, self.options.get("alicloud_sts_endpoint"), sts_region)
        settings = client_settings(self.options)
        try:
            temporary = assume_role_with_oidc(token, provider_arn, role, endpoint, timeout=settings["timeout"],
                                              validate_certs=settings["validate_certs"])
        except StsError as exc:
            raise CredentialError(str(exc)) from None
        return Resolved(temporary.credentials, f"role {role.role_arn} assumed with {source}", temporary.expiration)

    def from_profile(self, region: Optional[str]) -> Optional[Resolved]:
        profile = self.profile()
        if not profile:
            return None
        return self.profile_credentials(profile, region, depth=0)

    def profile_credentials(self, profile: dict, region: Optional[str], depth: int) -> Resolved:
        name, mode = profile["_name"], profile.get("mode") or "AK"
        source = f"profile {quote_input(name)} ({mode}) of {self.profile_file}"
        if mode in ("AK", "StsToken", "RamRoleArn"):
            key, secret = profile.get("access_key_id") or None, profile.get("access_key_secret") or None
            if not key or not secret:
                missing = "access_key_secret" if key else "access_key_id"
                raise CredentialError(f"{source} has no {missing}: the {'secret' if key else 'AccessKey ID'} is missing")
            token = (profile.get("sts_token") or None) if mode == "StsToken" else None
            resolved = Resolved(Credentials(key, secret, token), source)
            if mode != "RamRoleArn":
                return resolved
            return self.assume(resolved, profile_role(profile, source), region, profile.get("sts_region"))
        if mode == "ChainableRamRoleArn":
            if depth >= MAX_PROFILE_CHAIN:
                raise CredentialError(f"{source}: source profiles nest deeper than {MAX_PROFILE_CHAIN} (a loop?)")
            wanted = profile.get("source_profile")
            parent = _profile_named(profile["_document"], wanted) if isinstance(wanted, str) else None
            if parent is None:
                raise CredentialError(f"{source} names source profile {quote_input(str(wanted))}, which is not in the file")
            base = self.profile_credentials(dict(parent, _name=wanted, _document=profile["_document"]), region,
                                            depth + 1)
            return self.assume(base, profile_role(profile, source), region, profile.get("sts_region"))
        if mode == "EcsRamRole":
            return self.metadata_or_fail(profile.get("ram_role_name") or None, f"{source} (metadata service)")
        if mode == "OIDC":
            provider, token_file = profile.get("oidc_provider_arn"), profile.get("oidc_token_file")
            if not isinstance(provider, str) or not provider or not isinstance(token_file, str) or not token_file:
                raise CredentialError(f"{source} needs oidc_provider_arn and oidc_token_file")
            return self.assume_oidc(provider, token_file, profile_role(profile, source), region, source,
                                    profile.get("sts_region"))
        raise CredentialError(
            f"{source}: mode {quote_input(mode)} is not supported by this collection (it serves AK, StsToken, "
            "RamRoleArn, ChainableRamRoleArn, EcsRamRole and OIDC); give an AccessKey (alicloud_access_key and alicloud_secret_key), "
            "or a role to assume on top of one (alicloud_assume_role_arn), or a profile in one of those modes")

    # -- roles -------------------------------------------------------------------------------

    def option_role(self) -> Optional[RoleRequest]:
        """The role the assume-role options (or their environment variables) ask for, if any."""
        nested = self.options.get("alicloud_assume_role") or {}
        if not isinstance(nested, Mapping):
            raise CredentialError("alicloud_assume_role must be a dictionary")

        def pick(flat: str, key: str, env: str) -> Any:
            value = self.options.get(flat)
            if value is None:
                value = nested.get(key)
            if value is None:
                value = self.environ.get(env) or None
            return value

        arn = pick("alicloud_assume_role_arn", "role_arn", "ALICLOUD_ASSUME_ROLE_ARN")
        if not arn:
            return None
        duration = pick("alicloud_assume_role_session_expiration", "session_expiration",
                        "ALICLOUD_ASSUME_ROLE_SESSION_EXPIRATION")
        try:
            duration = None if duration is None else int(duration)
        except (TypeError, ValueError):
            raise CredentialError("alicloud_assume_role_session_expiration must be a number of seconds") from None
        return RoleRequest(str(arn), str(pick("alicloud_assume_role_session_name", "session_name",
                                              "ALICLOUD_ASSUME_ROLE_SESSION_NAME") or DEFAULT_SESSION_NAME),
                           duration, nested.get("policy"), nested.get("external_id"),
                           source="the assume-role options")

    def assume(self, base: Resolved, role: RoleRequest, region: Optional[str],
               sts_region: Optional[str] = None) -> Resolved:
        if base.expiration and is_expired(base.expiration):
            raise CredentialError(f"the temporary credentials from {base.source} expired at {base.expiration}; "
                                  "renew them")
        if not region:
            raise CredentialError(f"no region: set alicloud_region or {ENV_REGION[0]} (STS is reached through "
                                  f"the region's endpoint to assume {role.role_arn})")
        endpoint = sts_endpoint(region, self.environ, self.options.get("alicloud_sts_endpoint"), sts_region)
        settings = client_settings(self.options)
        try:
            temporary = assume_role(base.credentials, base.source, role, endpoint, timeout=settings["timeout"],
                                    validate_certs=settings["validate_certs"])
        except StsError as exc:
            raise CredentialError(str(exc)) from None
        return Resolved(temporary.credentials, f"role {role.role_arn} assumed with {base.source}",
                        temporary.expiration)


def profile_role(profile: dict, source: str) -> RoleRequest:
    """The role a RamRoleArn or ChainableRamRoleArn profile names (the CLI's field names)."""
    arn = profile.get("ram_role_arn")
    if not isinstance(arn, str) or not arn:
        raise CredentialError(f"{source} has no ram_role_arn")
    duration = profile.get("expired_seconds")
    try:
        duration = int(duration) if duration not in (None, "", 0) else None
    except (TypeError, ValueError):
        raise CredentialError(f"{source}: expired_seconds is not a number") from None
    return RoleRequest(arn, str(profile.get("ram_session_name") or DEFAULT_SESSION_NAME), duration,
                       profile.get("policy") or None, profile.get("external_id") or None, source=source)


def ini_role(section: Mapping[str, str], source: str) -> RoleRequest:
    """The role a ram_role_arn or oidc_role_arn section of the credentials file names."""
    arn = section.get("role_arn")
    if not arn:
        raise CredentialError(f"{source} has no role_arn")
    return RoleRequest(arn, section.get("role_session_name") or DEFAULT_SESSION_NAME, None,
                       section.get("policy") or None, source=source)


def resolve(options: Mapping[str, Any], environ: Mapping[str, str],
            profile_file: str = DEFAULT_PROFILE_FILE) -> Tuple[Resolved, str, Optional[str]]:
    """(credentials and their source, region, endpoint): the first source of the chain, then the
    role the assume-role options name, assumed with it."""
    resolver = Resolver(options, environ, profile_file)
    region = resolver.region()
    if region:
        check_region(region)
    role = resolver.option_role()
    if role is not None:
        try:
            role.check()  # a malformed role fails before any source is read or any request sent
        except StsError as exc:
            raise CredentialError(str(exc)) from None
    resolved = resolver.base(region)
    if role is not None:
        resolved = resolver.assume(resolved, role, region)
    if not region:
        raise CredentialError(f"no region: set alicloud_region or {ENV_REGION[0]}")
    return resolved, region, resolver.value("ecs_endpoint")


def resolve_credentials(options: Mapping[str, Any], environ: Mapping[str, str],
                        profile_file: str = DEFAULT_PROFILE_FILE) -> Tuple[Credentials, str, Optional[str]]:
    """(credentials, region, endpoint) from the chain."""
    resolved, region, endpoint = resolve(options, environ, profile_file)
    return resolved.credentials, region, endpoint


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
    resolved, region, endpoint = resolve(options, environ, profile_file)
    check_sent_values(resolved.credentials, region)
    settings = client_settings(options)
    settings["endpoint_type"] = endpoint_type(options, environ)
    return Connection(resolved.credentials, region, endpoint, settings, resolved.source)


def explain_api_error(code: str, source: str) -> Optional[str]:
    """A sentence for API errors that are about the credentials, naming where they came from."""
    if code == "InvalidSecurityToken.Expired":
        return f"the temporary credentials from {source} have expired: renew them (a new token, or run again to " \
               "assume the role anew)"
    if code in ("InvalidAccessKeyId.NotFound", "SignatureDoesNotMatch", "MissingSecurityToken",
                "InvalidSecurityToken.Mismatch", "InvalidSecurityToken.Malformed"):
        return f"the credentials came from {source}"
    return None


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

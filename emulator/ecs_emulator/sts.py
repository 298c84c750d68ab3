"""STS (Security Token Service, API version 2015-04-01) on the same port as ECS.

The action and the version select it: a request with Version=2015-04-01 (or the header
x-acs-version) is an STS request. Served: AssumeRole and GetCallerIdentity, signed as every other
request (v1 or v3) with a permanent AccessKey or with temporary credentials and their token.

What the service does, and where it is written down:
- Alibaba Cloud API reference, AssumeRole (STS 2015-04-01) and GetCallerIdentity; the request and
  response fields as the official SDK models (alibabacloud_sts20150401) name them.
- Errors: InvalidParameter.RoleArn, InvalidParameter.RoleSessionName,
  InvalidParameter.DurationSeconds, InvalidParameter.PolicyGrammar, NoPermission,
  EntityNotExist.Role (AssumeRole reference, error code table); MissingSecurityToken and
  InvalidSecurityToken.Expired for temporary credentials (Alibaba's STS troubleshooting page,
  "common errors when you access OSS by using STS").
- A role ARN is acs:ram::<account id>:role/<role name>; DurationSeconds is 900 at least and the
  role's maximum session duration at most (3600 unless the role says more, 43200 the highest).

Emulator choices (documented in the README): any role name of the caller's own account exists
(as moto does); a role of another account is assumed only when the accounts file lists it with
the caller's account among its trusted accounts. Issued credentials live in memory: a restart
forgets them. The admin API can expire them at once (POST /_admin/sts/expire), so that tests need
not wait 15 minutes.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from .accounts import AccessKey, Account, OidcProvider
from .errors import ApiError, missing

VERSION = "2015-04-01"
MIN_DURATION = 900
DEFAULT_DURATION = 3600
ROLE_ARN = re.compile(r"acs:ram::(?P<uid>[0-9]{1,32}):role/(?P<name>[A-Za-z0-9.@_-]{1,64})")
SESSION_NAME = re.compile(r"[A-Za-z0-9.@_-]{2,64}")
MAX_POLICY = 2048
PREFIX = "STS."


@dataclass(frozen=True)
class Issued:
    """One set of temporary credentials: the key the server authenticates, and who it is."""

    key: AccessKey
    role_arn: str
    session_name: str
    expires_at: float


def iso8601(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class TemporaryKeys:
    """Temporary AccessKeys by id, thread-safe, in memory only."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._issued: dict[str, Issued] = {}
        self._lock = threading.Lock()
        self.clock = clock

    def issue(self, account: str, role_arn: str, session_name: str, duration: int) -> Issued:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
        key_id = PREFIX + "".join(secrets.choice(alphabet) for _pos in range(25))
        # Real tokens are long opaque strings starting "CAIS"; the length matters to clients
        # that put the token in a header, so it is of the same order.
        token = "CAIS" + secrets.token_urlsafe(300)
        issued = Issued(AccessKey(key_id, secrets.token_urlsafe(30), token, account), role_arn, session_name,
                        self.clock() + duration)
        with self._lock:
            self._issued[key_id] = issued
        return issued

    def get(self, key_id: str) -> Issued | None:
        with self._lock:
            return self._issued.get(key_id)

    def expired(self, issued: Issued) -> bool:
        return self.clock() >= issued.expires_at

    def secrets(self) -> list[dict]:
        """Test hook (admin API): every credential issued, so that a test can assert that none
        of them shows in a client's output."""
        with self._lock:
            return [{"AccessKeyId": i.key.id, "AccessKeySecret": i.key.secret, "SecurityToken": i.key.security_token,
                     "RoleArn": i.role_arn, "Expiration": iso8601(i.expires_at)} for i in self._issued.values()]

    def expire_all(self) -> int:
        """Test hook: every credential issued so far expires now."""
        now = self.clock()
        with self._lock:
            for key_id, issued in list(self._issued.items()):
                self._issued[key_id] = Issued(issued.key, issued.role_arn, issued.session_name, now)
            return len(self._issued)


@dataclass
class StsContext:
    accounts: dict[str, Account]
    caller: AccessKey | None  # None for the actions that are not signed (AssumeRoleWithOIDC)
    caller_role: Issued | None  # the assumed role when the caller signs with temporary credentials
    keys: TemporaryKeys
    params: dict[str, str]


def _role_arn(ctx: StsContext) -> tuple[str, Account, dict]:
    """(normalised ARN, the role's account, the role's entry in the accounts file or {})."""
    arn = ctx.params.get("RoleArn")
    if not arn:
        raise missing("RoleArn")
    match = ROLE_ARN.fullmatch(arn)
    if not match:
        raise ApiError("InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed.", 400)
    uid, name = match.group("uid"), match.group("name").lower()
    owner = next((a for a in ctx.accounts.values() if a.uid == uid), None)
    caller = ctx.accounts[ctx.caller.account]
    entry = owner.role(name) if owner is not None else None
    if owner is None or (owner is not caller and entry is None):
        raise ApiError("EntityNotExist.Role", f"The specified Role not exists: {arn}", 404)
    if owner is not caller and caller.uid not in entry.get("trusted_accounts", ()) \
            and caller.name not in entry.get("trusted_accounts", ()):
        raise ApiError("NoPermission", "You are not authorized to do this action. You should be authorized by RAM.",
                       403)
    return f"acs:ram::{uid}:role/{name}", owner, entry or {}


def _duration(params: dict[str, str], maximum: int) -> int:
    text = params.get("DurationSeconds")
    if text is None or text == "":
        return min(DEFAULT_DURATION, maximum)
    if not text.isdigit() or not MIN_DURATION <= int(text) <= maximum:
        raise ApiError("InvalidParameter.DurationSeconds",
                       f"The Min/Max value of DurationSeconds is {MIN_DURATION}/{maximum} seconds.", 400)
    return int(text)


def _check_policy(params: dict[str, str]) -> None:
    policy = params.get("Policy")
    if policy is None:
        return
    try:
        doc = json.loads(policy)
    except ValueError:
        doc = None
    if len(policy) > MAX_POLICY or not isinstance(doc, dict) or "Statement" not in doc:
        raise ApiError("InvalidParameter.PolicyGrammar", "The parameter Policy has not passed grammar check.", 400)


def credentials_reply(issued: Issued, role_id: str) -> dict:
    return {
        "Credentials": {"AccessKeyId": issued.key.id, "AccessKeySecret": issued.key.secret,
                        "SecurityToken": issued.key.security_token, "Expiration": iso8601(issued.expires_at)},
        "AssumedRoleUser": {"Arn": f"{issued.role_arn}/{issued.session_name}",
                            "AssumedRoleId": f"{role_id}:{issued.session_name}"},
    }


def role_id(arn: str) -> str:
    """A stable numeric role id, as RAM gives every role."""
    return str(int(uuid.uuid5(uuid.NAMESPACE_URL, arn).hex[:15], 16))


def assume_role(ctx: StsContext) -> dict:
    session = ctx.params.get("RoleSessionName")
    if not session:
        raise missing("RoleSessionName")
    arn, owner, entry = _role_arn(ctx)
    if not SESSION_NAME.fullmatch(session):
        raise ApiError("InvalidParameter.RoleSessionName", "The parameter RoleSessionName is wrongly formed.", 400)
    duration = _duration(ctx.params, int(entry.get("max_session_duration", DEFAULT_DURATION)))
    _check_policy(ctx.params)
    external_id = entry.get("external_id")
    if external_id is not None and ctx.params.get("ExternalId") != external_id:
        raise ApiError("NoPermission", "You are not authorized to do this action. You should be authorized by RAM.",
                       403)
    issued = ctx.keys.issue(owner.name, arn, session, duration)
    return credentials_reply(issued, role_id(arn))


def get_caller_identity(ctx: StsContext) -> dict:
    account = ctx.accounts[ctx.caller.account]
    if ctx.caller_role is not None:
        role = ctx.caller_role
        rid = role_id(role.role_arn)
        return {"IdentityType": "AssumedRoleUser", "AccountId": account.uid, "RoleId": rid,
                "PrincipalId": f"{rid}:{role.session_name}", "Arn": f"{role.role_arn}/{role.session_name}"}
    user_id = str(int(uuid.uuid5(uuid.NAMESPACE_URL, ctx.caller.id).hex[:15], 16))
    return {"IdentityType": "RAMUser", "AccountId": account.uid, "UserId": user_id, "PrincipalId": user_id,
            "Arn": f"acs:ram::{account.uid}:user/{ctx.caller.id.lower()}"}


PROVIDER_ARN = re.compile(r"acs:ram::(?P<uid>[0-9]{1,32}):oidc-provider/(?P<name>[A-Za-z0-9._-]{1,128})")
MAX_OIDC_TOKEN = 20000


def oidc_error(code: str, message: str) -> ApiError:
    return ApiError(code, message, 401)


def _oidc_provider(ctx: StsContext) -> tuple[Account, OidcProvider]:
    arn = ctx.params.get("OIDCProviderArn")
    if not arn:
        raise missing("OIDCProviderArn")
    match = PROVIDER_ARN.fullmatch(arn)
    owner = next((a for a in ctx.accounts.values() if match and a.uid == match.group("uid")), None)
    provider = owner.oidc_providers.get(match.group("name")) if owner is not None and match else None
    if provider is None:
        raise oidc_error("AuthenticationFail.NoPermission", "No such OIDC Provider registered.")
    return owner, provider


def assume_role_with_oidc(ctx: StsContext) -> dict:
    """Not signed: the OIDC token is the proof. Checked as STS checks it: form, algorithm,
    signature with the provider's key, issuer, audience (one of the provider's client ids), expiry."""
    owner, provider = _oidc_provider(ctx)
    arn_text = ctx.params.get("RoleArn")
    if not arn_text:
        raise missing("RoleArn")
    match = ROLE_ARN.fullmatch(arn_text)
    if not match:
        raise ApiError("InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed.", 400)
    if match.group("uid") != owner.uid:
        raise ApiError("EntityNotExist.Role", f"The specified Role not exists: {arn_text}", 404)
    session = ctx.params.get("RoleSessionName")
    if not session:
        raise missing("RoleSessionName")
    if not SESSION_NAME.fullmatch(session):
        raise ApiError("InvalidParameter.RoleSessionName", "The parameter RoleSessionName is wrongly formed.", 400)
    claims = provider.verify(ctx.params.get("OIDCToken") or "", ctx.keys.clock())
    arn = f"acs:ram::{owner.uid}:role/{match.group('name').lower()}"
    entry = owner.role(match.group("name")) or {}
    duration = _duration(ctx.params, int(entry.get("max_session_duration", DEFAULT_DURATION)))
    _check_policy(ctx.params)
    issued = ctx.keys.issue(owner.name, arn, session, duration)
    reply = credentials_reply(issued, role_id(arn))
    reply["OIDCTokenInfo"] = {"Issuer": claims.get("iss"), "Subject": claims.get("sub"),
                              "ClientIds": ",".join(provider.audiences_of(claims))}
    return reply


ACTIONS: dict[str, Callable[[StsContext], dict]] = {
    "AssumeRole": assume_role,
    "AssumeRoleWithOIDC": assume_role_with_oidc,
    "GetCallerIdentity": get_caller_identity,
}
# Actions STS serves without a signature (the SDK calls them with auth_type Anonymous).
UNSIGNED = frozenset(("AssumeRoleWithOIDC",))

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: temporary credentials from STS (AssumeRole), on the
collection's own signer (standard library only).

One signed request per role assumed, made while the connection is resolved; the credentials it
answers live in memory only. The official ``alibabacloud-credentials`` package does the same
but costs a third of a second and 42 MB to import, for every task.

STS facts (Alibaba Cloud API reference, AssumeRole, STS 2015-04-01; the official
``alibabacloud_sts20150401`` models): RPC style, version 2015-04-01, parameters RoleArn,
RoleSessionName, DurationSeconds (900 at least), Policy and ExternalId; the answer's
``Credentials`` hold AccessKeyId, AccessKeySecret, SecurityToken and Expiration. Endpoints:
``sts.<region>.aliyuncs.com``, ``sts-vpc.<region>.aliyuncs.com`` inside a VPC.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Optional
from urllib.parse import urlsplit

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import (
    EMPTY_BODY_SHA256,
    USER_AGENT,
    V3_ALGORITHM,
    Credentials,
    EcsApiError,
    TransportError,
    canonical_query,
    host_header,
    http_transport,
    make_ssl_context,
    new_nonce,
    parse_reply,
    sign_v3,
    utc_timestamp,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import quote_input

STS_VERSION = "2015-04-01"
MIN_DURATION = 900
MAX_DURATION = 43200
DEFAULT_SESSION_NAME = "ansible"
ROLE_ARN_PATTERN = re.compile(r"acs:ram::[0-9]+:role/[A-Za-z0-9.@_-]+")
SESSION_NAME_PATTERN = re.compile(r"[A-Za-z0-9.@_-]{2,64}")
EXTERNAL_ID_PATTERN = re.compile(r"[A-Za-z0-9=,.@:/_+-]{2,1224}")
# The switches the official SDKs and CLI read (documented in their credentials guides).
ENV_STS_ENDPOINT = "ALIBABA_CLOUD_STS_ENDPOINT"
ENV_STS_REGION = "ALIBABA_CLOUD_STS_REGION"
ENV_VPC_ENDPOINT = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"
TRUE_WORDS = ("1", "true", "yes", "on")


class StsError(SshKeysError):
    """Temporary credentials could not be had. The message names the source, never a secret."""

    reason = "credentials"


@dataclass(frozen=True)
class RoleRequest:
    """What to ask STS for; ``source`` says where these settings came from, for messages."""

    role_arn: str
    session_name: str = DEFAULT_SESSION_NAME
    duration: Optional[int] = None
    policy: Optional[str] = None
    external_id: Optional[str] = None
    source: str = ""

    def check(self) -> None:
        """Refuse, before any request, what STS would refuse."""
        where = f" ({self.source})" if self.source else ""
        if not ROLE_ARN_PATTERN.fullmatch(self.role_arn):
            raise StsError(f"role ARN {quote_input(self.role_arn)}{where} is not like acs:ram::<account id>:role/<name>")
        if not SESSION_NAME_PATTERN.fullmatch(self.session_name):
            raise StsError(f"role session name {quote_input(self.session_name)}{where} must be 2 to 64 letters, "
                           "digits or .@-_")
        if self.duration is not None and not MIN_DURATION <= self.duration <= MAX_DURATION:
            raise StsError(f"the session expiration{where} must be {MIN_DURATION} to {MAX_DURATION} seconds, "
                           f"not {self.duration}")
        if self.external_id is not None and not EXTERNAL_ID_PATTERN.fullmatch(self.external_id):
            raise StsError(f"the external id{where} must be 2 to 1224 letters, digits or =,.@:/-_")


@dataclass(frozen=True)
class TemporaryCredentials:
    credentials: Credentials
    expiration: Optional[str]


def sts_endpoint(region: str, environ: Mapping[str, str], option: Optional[str] = None,
                 sts_region: Optional[str] = None) -> str:
    """The STS endpoint: the option, else ALIBABA_CLOUD_STS_ENDPOINT (both this collection's own
    overrides, for tests and private endpoints), else the regional public or VPC host."""
    explicit = option or environ.get(ENV_STS_ENDPOINT)
    if explicit:
        return explicit
    region = environ.get(ENV_STS_REGION) or sts_region or region
    vpc = str(environ.get(ENV_VPC_ENDPOINT, "")).lower() in TRUE_WORDS
    return f"sts-vpc.{region}.aliyuncs.com" if vpc else f"sts.{region}.aliyuncs.com"


def parse_sts_endpoint(endpoint: str) -> tuple:
    """(scheme, host, port) of an STS endpoint given as host[:port] or http(s)://host[:port]."""
    text = endpoint.strip()
    parts = urlsplit(text if "://" in text else "https://" + text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or parts.path not in ("", "/") \
            or parts.query or parts.username:
        raise StsError(f"STS endpoint {quote_input(endpoint)} is neither a host name nor an http(s)://host[:port] URL")
    return parts.scheme, parts.hostname, port


def signed_request(action: str, params: Mapping[str, str], base: Credentials, host: str,
                   clock: Callable[[], float] = time.time) -> tuple:
    """(target, headers) of one ACS3-HMAC-SHA256 signed STS request, parameters in the query."""
    signed = {"host": host, "x-acs-action": action, "x-acs-version": STS_VERSION,
              "x-acs-date": utc_timestamp(clock()), "x-acs-signature-nonce": new_nonce(),
              "x-acs-content-sha256": EMPTY_BODY_SHA256}
    if base.security_token:
        signed["x-acs-security-token"] = base.security_token
    signature, names = sign_v3("POST", "/", params, signed, EMPTY_BODY_SHA256, base.access_key_secret)
    headers = dict(signed)
    headers["authorization"] = f"{V3_ALGORITHM} Credential={base.access_key_id},SignedHeaders={names},Signature={signature}"
    headers["accept"] = "application/json"
    headers["user-agent"] = USER_AGENT
    return "/?" + canonical_query(params), headers


def call_sts(action: str, params: Mapping[str, str], base: Credentials, endpoint: str, *, timeout: float = 30.0,
             validate_certs: bool = True, transport: Optional[Callable[..., Any]] = None) -> dict:
    """One STS call; EcsApiError (code, message, request id) or TransportError on failure."""
    scheme, host, port = parse_sts_endpoint(endpoint)
    target, headers = signed_request(action, params, base, host_header(scheme, host, port))
    context = make_ssl_context(validate_certs) if scheme == "https" else None
    reply = (transport or http_transport)("POST", scheme, host, port, target, headers, b"", timeout, context)
    return parse_reply(action, reply)


def assume_role(base: Credentials, base_source: str, role: RoleRequest, endpoint: str,
                **kwargs: Any) -> TemporaryCredentials:
    """AssumeRole with the base credentials; StsError naming both sources on any failure."""
    role.check()
    params = {"RoleArn": role.role_arn, "RoleSessionName": role.session_name}
    if role.duration is not None:
        params["DurationSeconds"] = str(role.duration)
    if role.policy:
        params["Policy"] = role.policy
    if role.external_id:
        params["ExternalId"] = role.external_id
    try:
        reply = call_sts("AssumeRole", params, base, endpoint, **kwargs)
    except EcsApiError as exc:
        raise StsError(f"cannot assume role {role.role_arn} ({role.source}) with the credentials from {base_source} "
                       f"at {endpoint}: {exc.code}: {exc.message}{expired_hint(exc.code)}"
                       f"{f', request id {exc.request_id}' if exc.request_id else ''}") from None
    except TransportError as exc:
        raise StsError(f"cannot assume role {role.role_arn} ({role.source}): STS endpoint {endpoint}: {exc}") from None
    return temporary_from(reply.get("Credentials"), f"AssumeRole {role.role_arn}")


PROVIDER_ARN_PATTERN = re.compile(r"acs:ram::[0-9]+:oidc-provider/[A-Za-z0-9._-]+")
MAX_OIDC_TOKEN = 20000


def anonymous_request(action: str, params: Mapping[str, str], host: str, clock: Callable[[], float] = time.time,
                      nonce: Callable[[], str] = new_nonce) -> tuple:
    """(target, headers, body) of an STS request that carries no signature (AssumeRoleWithOIDC:
    the token is the proof; the official SDK sends it with auth_type Anonymous). The parameters
    go in a form body: a token may be 20,000 characters long."""
    common = {"Action": action, "Version": STS_VERSION, "Format": "JSON", "Timestamp": utc_timestamp(clock()),
              "SignatureNonce": nonce()}
    headers = {"host": host, "accept": "application/json", "user-agent": USER_AGENT,
               "content-type": "application/x-www-form-urlencoded"}
    return "/?" + canonical_query(common), headers, canonical_query(params).encode("ascii")


def assume_role_with_oidc(token: str, provider_arn: str, role: RoleRequest, endpoint: str, *, timeout: float = 30.0,
                          validate_certs: bool = True, transport: Optional[Callable[..., Any]] = None
                          ) -> TemporaryCredentials:
    """AssumeRoleWithOIDC with an OIDC token (read by the caller from its file, never shown)."""
    role.check()
    if not PROVIDER_ARN_PATTERN.fullmatch(provider_arn):
        raise StsError(f"OIDC provider ARN {quote_input(provider_arn)} ({role.source}) is not like "
                       "acs:ram::<account id>:oidc-provider/<name>")
    if not token or len(token) > MAX_OIDC_TOKEN:
        raise StsError(f"the OIDC token ({role.source}) is empty or longer than {MAX_OIDC_TOKEN} characters")
    params = {"OIDCProviderArn": provider_arn, "RoleArn": role.role_arn, "OIDCToken": token,
              "RoleSessionName": role.session_name}
    if role.duration is not None:
        params["DurationSeconds"] = str(role.duration)
    if role.policy:
        params["Policy"] = role.policy
    scheme, host, port = parse_sts_endpoint(endpoint)
    target, headers, body = anonymous_request("AssumeRoleWithOIDC", params, host_header(scheme, host, port))
    context = make_ssl_context(validate_certs) if scheme == "https" else None
    try:
        reply = (transport or http_transport)("POST", scheme, host, port, target, headers, body, timeout, context)
        answer = parse_reply("AssumeRoleWithOIDC", reply)
    except EcsApiError as exc:
        raise StsError(f"cannot assume role {role.role_arn} with the OIDC token of {role.source} at {endpoint}: "
                       f"{exc.code}: {exc.message}{f', request id {exc.request_id}' if exc.request_id else ''}"
                       ) from None
    except TransportError as exc:
        raise StsError(f"cannot assume role {role.role_arn} ({role.source}): STS endpoint {endpoint}: {exc}") from None
    return temporary_from(answer.get("Credentials"), f"AssumeRoleWithOIDC {role.role_arn}")


def expired_hint(code: str) -> str:
    if code == "InvalidSecurityToken.Expired":
        return " (the temporary credentials have expired: renew them)"
    return ""


def temporary_from(doc: Any, what: str) -> TemporaryCredentials:
    """Credentials out of an STS or metadata answer, checked for shape (values never quoted)."""
    fields = ("AccessKeyId", "AccessKeySecret", "SecurityToken")
    if not isinstance(doc, dict) or not all(isinstance(doc.get(name), str) and doc.get(name) for name in fields):
        raise StsError(f"the answer of {what} holds no AccessKeyId, AccessKeySecret and SecurityToken")
    expiration = doc.get("Expiration") if isinstance(doc.get("Expiration"), str) else None
    return TemporaryCredentials(Credentials(doc["AccessKeyId"], doc["AccessKeySecret"], doc["SecurityToken"]),
                                expiration)


def is_expired(expiration: Optional[str], now: Optional[float] = None) -> bool:
    """Whether an Expiration (``2024-01-01T00:00:00Z``) lies in the past; unreadable means no."""
    if not expiration:
        return False
    try:
        moment = datetime.strptime(expiration, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return False
    return moment.timestamp() <= (time.time() if now is None else now)

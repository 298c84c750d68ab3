# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the credentials of the ECS instance's RAM role, from
the instance metadata service (standard library only).

As the official credentials client reads them (aliyun/credentials-python,
provider/ecs_ram_role.py): a token first (PUT /latest/api/token with
X-aliyun-ecs-metadata-token-ttl-seconds), sent as X-aliyun-ecs-metadata-token; without a token,
or when a request with it fails, the same request without it (the v1 way) unless
ALIBABA_CLOUD_IMDSV1_DISABLED is true; the role's name from
/latest/meta-data/ram/security-credentials/ unless given; its credentials from that path plus the
name, a JSON object whose Code is "Success". One second to connect and to read, as there.
"""

from __future__ import annotations

import http.client
import json
import socket
from typing import Mapping, Optional, Tuple
from urllib.parse import quote, urlsplit

from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import quote_input
from ansible_collections.sshkeys.ecs.plugins.module_utils._sts import (
    TRUE_WORDS,
    StsError,
    TemporaryCredentials,
    temporary_from,
)

DEFAULT_ENDPOINT = "http://100.100.100.200"
# This collection's own override (tests, proxies); the official tools have no such variable.
ENV_METADATA_ENDPOINT = "ALIBABA_CLOUD_ECS_METADATA_ENDPOINT"
ENV_IMDSV1_DISABLED = "ALIBABA_CLOUD_IMDSV1_DISABLED"
TOKEN_PATH = "/latest/api/token"
CREDENTIALS_PATH = "/latest/meta-data/ram/security-credentials/"
TOKEN_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aliyun-ecs-metadata-token"
TOKEN_TTL_SECONDS = 21600
TIMEOUT_SECONDS = 1.0
MAX_ANSWER = 64 * 1024


class MetadataError(StsError):
    """The metadata service gave no credentials. Says which request failed, never a secret."""


def metadata_endpoint(environ: Mapping[str, str]) -> Tuple[str, str, Optional[int]]:
    """(scheme, host, port) of the metadata service."""
    text = environ.get(ENV_METADATA_ENDPOINT) or DEFAULT_ENDPOINT
    parts = urlsplit(text if "://" in text else "http://" + text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise MetadataError(f"{ENV_METADATA_ENDPOINT} {quote_input(text)} is not an http(s)://host[:port] URL")
    return parts.scheme, parts.hostname, port


def _request(where: Tuple[str, str, Optional[int]], method: str, path: str, headers: dict,
             timeout: float) -> Tuple[int, bytes]:
    scheme, host, port = where
    connection_class = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    conn = connection_class(host, port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers)
        reply = conn.getresponse()
        return reply.status, reply.read(MAX_ANSWER)
    except (OSError, http.client.HTTPException, socket.timeout) as exc:
        raise MetadataError(f"the ECS metadata service at {host} did not answer ({type(exc).__name__}: is this an "
                            "ECS instance with a RAM role?)") from None
    finally:
        conn.close()


def role_credentials(environ: Mapping[str, str], role_name: Optional[str] = None,
                     timeout: float = TIMEOUT_SECONDS) -> Tuple[TemporaryCredentials, str]:
    """(credentials, role name) of the instance's RAM role."""
    where = metadata_endpoint(environ)
    v1_allowed = str(environ.get(ENV_IMDSV1_DISABLED, "")).lower() not in TRUE_WORDS
    token = _token(where, timeout, v1_allowed)

    def get(path: str, what: str) -> bytes:
        status = 0
        for header in ([{TOKEN_HEADER: token}] if token else []) + ([{}] if v1_allowed or not token else []):
            status, body = _request(where, "GET", path, header, timeout)
            if status == 200:
                return body
        raise MetadataError(f"the ECS metadata service at {where[1]} refused {what} (HTTP {status})")

    if not role_name:
        role_name = get(CREDENTIALS_PATH, "the name of the instance's RAM role").decode("utf-8", "replace").strip()
        if not role_name:
            raise MetadataError(f"the ECS instance at {where[1]} has no RAM role")
    body = get(CREDENTIALS_PATH + quote(role_name, safe=""), f"the credentials of role {quote_input(role_name)}")
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        doc = None
    if not isinstance(doc, dict) or doc.get("Code") != "Success":
        raise MetadataError(f"the ECS metadata service gave no credentials for role {quote_input(role_name)}")
    return temporary_from(doc, f"the ECS metadata service for role {role_name}"), role_name


def _token(where: Tuple[str, str, Optional[int]], timeout: float, v1_allowed: bool) -> Optional[str]:
    """A metadata token; None when the service gives none and the v1 way is allowed."""
    try:
        status, body = _request(where, "PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: str(TOKEN_TTL_SECONDS)}, timeout)
    except MetadataError:
        if v1_allowed:
            return None
        raise
    if status == 200 and body:
        return body.decode("ascii", "replace").strip()
    if v1_allowed:
        return None
    raise MetadataError(f"the ECS metadata service at {where[1]} gave no token (HTTP {status}) and "
                        f"{ENV_IMDSV1_DISABLED} forbids going without one")

"""The instance metadata service of "this instance" (`--metadata-listen`), for its RAM role.

What a real instance serves at http://100.100.100.200, the part credential clients read (sources:
Alibaba Cloud's ECS guide "instance metadata" and the official credentials client,
aliyun/credentials-python, provider/ecs_ram_role.py):
- PUT /latest/api/token with the header X-aliyun-ecs-metadata-token-ttl-seconds (1 to 21600):
  a token, as text.
- GET /latest/meta-data/ram/security-credentials/ : the name of the instance's RAM role.
- GET /latest/meta-data/ram/security-credentials/<role>: JSON with AccessKeyId, AccessKeySecret,
  SecurityToken, Expiration, LastUpdated and Code "Success".
- GET requests carry the token in X-aliyun-ecs-metadata-token; without one they are answered
  too (the "normal" mode, which clients fall back to) unless the instance is in hardened mode
  (`--metadata-hardened`), where they are refused.

The credentials are STS credentials of the role, issued by the emulator's STS (they work on
ECS with their token, expire, and POST /_admin/sts/expire expires them: the next read gets new
ones, as a real instance refreshes them before they expire).
Status codes of failures are the emulator's choice (the credentials clients only look for 200):
400 for a bad TTL, 401 for an unknown or expired token, 403 for no token in hardened mode, 404
for another role or path.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import sts
from .accounts import Account

TOKEN_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aliyun-ecs-metadata-token"
MAX_TOKEN_TTL = 21600
CREDENTIALS_PATH = "/latest/meta-data/ram/security-credentials/"
# Real instances hand out role credentials valid for hours and renew them well before the end.
ROLE_CREDENTIAL_SECONDS = 21600
RENEW_BEFORE_SECONDS = 900


class InstanceMetadata:
    """The metadata of one emulated instance: its role, its tokens, its current credentials."""

    def __init__(self, account: Account, role_name: str, keys: sts.TemporaryKeys, hardened: bool = False) -> None:
        self.account = account
        self.role_name = role_name
        self.role_arn = f"acs:ram::{account.uid}:role/{role_name.lower()}"
        self.keys = keys
        self.hardened = hardened
        self._tokens: dict[str, float] = {}
        self._current: sts.Issued | None = None
        self._lock = threading.Lock()

    def new_token(self, ttl_text: str | None) -> str | None:
        if not ttl_text or not ttl_text.isdigit() or not 1 <= int(ttl_text) <= MAX_TOKEN_TTL:
            return None
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self._tokens = {t: until for t, until in self._tokens.items() if until > now}
            self._tokens[token] = now + int(ttl_text)
        return token

    def token_status(self, token: str | None) -> int:
        """200 when the request may be answered, else the status to refuse it with."""
        if token is None:
            return 403 if self.hardened else 200
        with self._lock:
            until = self._tokens.get(token)
        return 200 if until is not None and until > time.time() else 401

    def credentials(self) -> dict:
        with self._lock:
            current = self._current
            if current is None or self.keys.get(current.key.id) is None \
                    or self.keys.get(current.key.id).expires_at - self.keys.clock() < RENEW_BEFORE_SECONDS:
                current = self.keys.issue(self.account.name, self.role_arn, "ecs-instance", ROLE_CREDENTIAL_SECONDS)
                self._current = current
        return {"AccessKeyId": current.key.id, "AccessKeySecret": current.key.secret,
                "SecurityToken": current.key.security_token, "Expiration": sts.iso8601(current.expires_at),
                "LastUpdated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "Code": "Success"}


class MetadataHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ecs-emulator-metadata"
    sys_version = ""
    metadata: InstanceMetadata  # set on the subclass made by make_metadata_server()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        pass

    def _reply(self, status: int, body: str, content_type: str = "text/plain") -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        if self.path != "/latest/api/token":
            self._reply(404, "Not Found")
            return
        token = self.metadata.new_token(self.headers.get(TOKEN_TTL_HEADER))
        if token is None:
            self._reply(400, f"{TOKEN_TTL_HEADER} must be 1 to {MAX_TOKEN_TTL}")
            return
        self._reply(200, token)

    def do_GET(self) -> None:
        status = self.metadata.token_status(self.headers.get(TOKEN_HEADER))
        if status != 200:
            self._reply(status, "Forbidden" if status == 403 else "Unauthorized")
            return
        if self.path == CREDENTIALS_PATH:
            self._reply(200, self.metadata.role_name)
        elif self.path == CREDENTIALS_PATH + self.metadata.role_name:
            self._reply(200, json.dumps(self.metadata.credentials()), "application/json")
        else:
            self._reply(404, "Not Found")


def make_metadata_server(host: str, port: int, metadata: InstanceMetadata) -> ThreadingHTTPServer:
    handler = type("BoundMetadataHandler", (MetadataHandler,), {"metadata": metadata})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server

"""Test helpers: a real emulator process, the two official SDKs behind one small adapter, and
raw request signers (checked against the SDKs' own signers in test_signatures.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import quote

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
os.environ.setdefault("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")

EMULATOR = os.path.join(os.path.dirname(sys.executable), "ecs-emulator")
REGION = "cn-hangzhou"


class EmulatorProcess:
    """`ecs-emulator serve` in a subprocess with its own state directory."""

    def __init__(self, *args: str, state_dir: str | None = None, fast: bool = True) -> None:
        self.dir = state_dir or tempfile.mkdtemp(prefix="ecs-emulator-test-")
        self.state = os.path.join(self.dir, "state.sqlite")
        self.log = os.path.join(self.dir, "requests.log")
        self.args = list(args) + (["--fast"] if fast else [])
        self.proc: subprocess.Popen | None = None
        self.doc: dict = {}
        self.port = 0

    def start(self, port: int = 0) -> "EmulatorProcess":
        ready = os.path.join(self.dir, "ready.json")
        if os.path.exists(ready):
            os.unlink(ready)
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = subprocess.Popen(
            [EMULATOR, "serve", "--listen", f"127.0.0.1:{port}", "--state", self.state, "--ready-file", ready,
             "--log-file", self.log, *self.args], stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 60
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited with {self.proc.returncode}: "
                                   + open(os.path.join(self.dir, "stderr.log")).read()[-2000:])
            if time.monotonic() > deadline:
                raise RuntimeError("emulator did not get ready")
            time.sleep(0.02)
        with open(ready) as fh:
            self.doc = json.load(fh)
        self.port = self.doc["port"]
        return self

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def key(self, account: int = 0) -> tuple[str, str]:
        k = self.doc["accounts"][account]["access_keys"][0]
        return k["id"], k["secret"]

    def stop(self) -> int:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        return self.proc.returncode if self.proc else 0

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.stderr.close()

    def restart(self) -> "EmulatorProcess":
        port = self.port
        self.stop()
        return self.start(port)

    def admin(self, method: str, path: str, body: dict | None = None, token: str | None = "default") -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Content-Type": "application/json"}
        if token == "default":
            token = self.doc["admin_token"]
        if token is not None:
            headers["X-Admin-Token"] = token
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        data = json.loads(resp.read())
        conn.close()
        return resp.status, data

    def read_log(self) -> str:
        """The request log so far (flushed first: the emulator writes it a few times a second)."""
        status, body = self.admin("POST", "/_admin/flush-log")
        assert status == 200 and body["Flushed"] is True
        with open(self.log) as fh:
            return fh.read()

    def wait_idle(self) -> None:
        status, body = self.admin("POST", "/_admin/wait-idle")
        assert status == 200 and body["Idle"] is True


class ApiFailure(Exception):
    def __init__(self, code: str, status: int | None, request_id: str | None) -> None:
        super().__init__(f"{code} ({status})")
        self.code = code
        self.status = status
        self.request_id = request_id


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Sdk3:
    """alibabacloud-ecs20140526: ACS3-HMAC-SHA256, typed request models."""

    name = "sdk3"

    def __init__(self, endpoint: str, key: tuple[str, str], security_token: str | None = None) -> None:
        from alibabacloud_ecs20140526.client import Client
        from alibabacloud_tea_openapi import models as open_api_models
        from alibabacloud_ecs20140526 import models
        self.models = models
        self.client = Client(open_api_models.Config(
            access_key_id=key[0], access_key_secret=key[1], security_token=security_token,
            endpoint=endpoint, protocol="http", region_id=REGION, read_timeout=30000, connect_timeout=5000))

    def call(self, action: str, **params) -> dict:
        from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
        request = getattr(self.models, f"{action}Request")().from_map(params)
        try:
            return getattr(self.client, _snake(action))(request).body.to_map()
        except (ClientException, ServerException) as exc:
            raise ApiFailure(exc.code, exc.status_code, getattr(exc, "request_id", None)) from None


class Sdk1:
    """aliyun-python-sdk-core + aliyun-python-sdk-ecs: HMAC-SHA1, all parameters in the query."""

    name = "sdk1"

    def __init__(self, endpoint: str, key: tuple[str, str], security_token: str | None = None) -> None:
        from aliyunsdkcore.client import AcsClient
        if security_token:
            from aliyunsdkcore.auth.credentials import StsTokenCredential
            self.client = AcsClient(region_id=REGION, credential=StsTokenCredential(key[0], key[1], security_token),
                                    auto_retry=False, timeout=30)
        else:
            self.client = AcsClient(key[0], key[1], REGION, auto_retry=False, timeout=30)
        self.endpoint = endpoint

    def call(self, action: str, **params) -> dict:
        from aliyunsdkcore.acs_exception.exceptions import ServerException
        module = importlib.import_module(f"aliyunsdkecs.request.v20140526.{action}Request")
        request = getattr(module, f"{action}Request")()
        request.set_endpoint(self.endpoint)
        request.set_protocol_type("http")
        for name, value in params.items():
            if isinstance(value, list) and name not in ("InstanceIds", "KeyPairNames"):
                getattr(request, f"set_{name}s")(value)
            elif isinstance(value, bool):
                getattr(request, f"set_{name}")("true" if value else "false")
            elif isinstance(value, int):
                getattr(request, f"set_{name}")(str(value))
            elif hasattr(request, f"set_{name}"):
                getattr(request, f"set_{name}")(value)
            else:  # RegionId: the legacy models leave it to the client; send it as the caller asked
                request.add_query_param(name, str(value))
        try:
            return json.loads(self.client.do_action_with_exception(request))
        except ServerException as exc:
            raise ApiFailure(exc.get_error_code(), exc.get_http_status(), exc.get_request_id()) from None


SDKS = {"sdk3": Sdk3, "sdk1": Sdk1}


def unique(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# --- raw signers, for requests the SDKs will not make (replays, stale timestamps, junk) -------

def _enc(value: str) -> str:
    return quote(value, safe="-_.~")


def v1_query(key: tuple[str, str], params: dict[str, str], method: str = "POST", nonce: str | None = None,
             timestamp: datetime | None = None, secret: str | None = None) -> str:
    full = dict({"Format": "JSON", "Version": "2014-05-26", "AccessKeyId": key[0], "SignatureMethod": "HMAC-SHA1",
                 "SignatureVersion": "1.0", "SignatureNonce": nonce or uuid.uuid4().hex,
                 "Timestamp": (timestamp or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")}, **params)
    canonical = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(full.items()))
    to_sign = f"{method}&{_enc('/')}&{_enc(canonical)}"
    sig = base64.b64encode(hmac.new(((secret or key[1]) + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
    return canonical + "&Signature=" + _enc(sig)


def v3_headers(key: tuple[str, str], action: str, query: dict[str, str], host: str, body: bytes = b"",
               nonce: str | None = None, timestamp: datetime | None = None, method: str = "POST",
               extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"host": host, "x-acs-action": action, "x-acs-version": "2014-05-26",
               "x-acs-date": (timestamp or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
               "x-acs-content-sha256": hashlib.sha256(body).hexdigest(), **(extra or {})}
    names = sorted(headers)
    canonical_query = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(query.items()))
    canonical = "\n".join([method, "/", canonical_query, "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                           ";".join(names), headers["x-acs-content-sha256"]])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    sig = hmac.new(key[1].encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"ACS3-HMAC-SHA256 Credential={key[0]},SignedHeaders={';'.join(names)},Signature={sig}"
    return headers


def raw(port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, dict | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, (json.loads(data) if data else None)


def v1_call(port: int, key: tuple[str, str], params: dict[str, str], **kw) -> tuple[int, dict]:
    return raw(port, "POST", "/?" + v1_query(key, params, **kw), headers={"Content-Length": "0"})

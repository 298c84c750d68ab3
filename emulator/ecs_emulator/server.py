"""The HTTP side: request parsing, authentication, fault injection, responses, request log.

Standard library ThreadingHTTPServer with HTTP/1.1 keep-alive (one thread per connection):
measured with benchmarks/emulator_load.py, it meets the throughput goal, so no third-party
server is needed.
"""

from __future__ import annotations

import email.utils
import hmac
import json
import logging
import socket
import struct
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import admin, sigs, sts
from .accounts import AccessKey, Account
from .actions import ACTIONS, Config, Context
from .catalog import ACTIONS as CATALOG_ACTIONS
from .cloud_assistant import ACTIONS as CLOUD_ASSISTANT_ACTIONS
from .cloud_assistant import set_agent
from .errors import ApiError
from .faults import Fault, FaultError, Faults, from_dict
from .lifecycle import Lifecycle
from .state import State

API_VERSION = "2014-05-26"
MAX_BODY = 1024 * 1024
NONCE_TTL = sigs.MAX_SKEW_SECONDS * 2


class RequestLog:
    """JSON lines, written by a background thread a few times a second: a write per request
    would cost a syscall each on the request path. Lines still buffered when the process is
    killed are lost; the log is a diagnostic, the state file is the truth."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def add(self, record: dict) -> None:
        line = json.dumps(record)
        with self._lock:
            self._lines.append(line)

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            try:
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                pass

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.flush()


class NonceCache:
    """Nonces seen in the last 30 minutes, per AccessKeyId (a replay inside the 15 minute window
    of a signed request is refused). Kept in memory: a restart forgets them."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def use(self, key_id: str, nonce: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if now >= self._next_prune:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
                self._next_prune = now + 60
            if (key_id, nonce) in self._seen:
                return False
            self._seen[(key_id, nonce)] = now + NONCE_TTL
            return True


class Emulator:
    """Everything a request handler needs, shared by all threads."""

    def __init__(self, state: State, lifecycle: Lifecycle, config: Config, accounts: list[Account],
                 faults: Faults, admin_token: str) -> None:
        self.state = state
        self.lifecycle = lifecycle
        self.config = config
        self.accounts = {a.name: a for a in accounts}
        self.keys: dict[str, AccessKey] = {k.id: k for a in accounts for k in a.access_keys}
        self.faults = faults
        self.admin_token = admin_token
        self.nonces = NonceCache()
        self.request_log: RequestLog | None = None
        self.temporary_keys = sts.TemporaryKeys()


MAX_LINE = 65536
MAX_HEADERS = 100
METHODS = {b"GET", b"POST", b"DELETE", b"PUT", b"HEAD", b"OPTIONS", b"PATCH", b"TRACE", b"CONNECT"}


class Headers(dict):
    """Request headers, names lower-cased (a repeated header keeps its last value)."""

    def get(self, name: str, default=None):  # type: ignore[override]
        return super().get(name.lower(), default)


def parse_params(text: str, into: dict[str, str]) -> None:
    """Query or form text -> into; strict UTF-8; a parameter given twice is an error."""
    for key, value in parse_qsl(text, keep_blank_values=True, strict_parsing=False, encoding="utf-8", errors="strict"):
        if key in into:
            raise ApiError("InvalidParameter.Duplicated", f"The parameter \"{key[:64]}\" is given more than once.", 400)
        into[key] = value


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; with Nagle on, each response would wait for
    # the client's delayed ACK (about 40 ms).
    disable_nagle_algorithm = True
    server_version = "ecs-emulator"
    sys_version = ""
    emulator: Emulator  # set on the subclass made by make_server()

    # Quiet default logging: our own request log replaces it (and never holds secrets).
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        pass

    def handle_one_request(self) -> None:
        """Reads one request. The base class parses headers with the email package, which costs
        more than all of our own work for a small request; HTTP/1.1 headers need far less."""
        self.command = ""
        try:
            line = self.rfile.readline(MAX_LINE + 1)
        except OSError:
            self.close_connection = True
            return
        if not line:
            self.close_connection = True
            return
        self.raw_requestline = line
        if len(line) > MAX_LINE:
            self.request_version = "HTTP/1.1"
            self.send_error(414)
            return
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or parts[0] not in METHODS:
            self.request_version = "HTTP/1.1"
            self.send_error(400)
            return
        self.command = parts[0].decode("ascii")
        self.request_version = parts[2].decode("ascii", "replace")
        try:
            self.path = parts[1].decode("ascii")
        except UnicodeDecodeError:
            self.send_error(400)
            return
        headers = Headers()
        for _count in range(MAX_HEADERS + 1):
            hline = self.rfile.readline(MAX_LINE + 1)
            if hline in (b"\r\n", b"\n", b""):
                break
            name, sep, value = hline.partition(b":")
            if not sep or len(hline) > MAX_LINE or not name.strip():
                self.send_error(400)
                return
            headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
        else:
            self.send_error(431)
            return
        self.headers = headers
        connection = headers.get("connection", "").lower()
        if self.request_version == "HTTP/1.0":
            self.close_connection = connection != "keep-alive"
        else:
            self.close_connection = connection == "close"
        if self.command not in ("GET", "POST", "DELETE", "PUT", "HEAD"):
            self.send_error(405)
            return
        self._handle()
        try:
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed HTTP (bad request line, headers too long, ...): a JSON error like any other."""
        self.close_connection = True
        self._send_json(code, {"Code": "MalformedRequest", "Message": f"The HTTP request is malformed ({code}).",
                               "RequestId": new_request_id(), "HostId": "ecs.emulator"})

    def _send_json(self, status: int, body: dict) -> None:
        """The whole response in one write: on some kernels every syscall is costly."""
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        reason = self.responses.get(status, ("Error",))[0]
        head = (f"{self.protocol_version} {status} {reason}\r\nServer: ecs-emulator\r\n"
                f"Date: {http_date()}\r\nContent-Type: application/json;charset=utf-8\r\n"
                f"Content-Length: {len(data)}\r\n")
        # Headers a fault asked for (x-acs-retry-after), for this response only.
        for name, value in getattr(self, "extra_headers", {}).items():
            head += f"{name}: {value}\r\n"
        self.extra_headers = {}
        if self.close_connection:
            head += "Connection: close\r\n"
        try:
            self.wfile.write(head.encode("latin-1") + b"\r\n" + (data if self.command != "HEAD" else b""))
        except OSError:
            self.close_connection = True

    def _drop(self) -> None:
        """Fault 'drop': reset the connection without a response."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.wfile = _NullWriter()

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError("MalformedRequest", "Chunked request bodies are not supported; send Content-Length.", 411)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.isdigit():
            self.close_connection = True
            raise ApiError("MalformedRequest", "The Content-Length header is not a number.", 400)
        size = int(length)
        if size > MAX_BODY:
            self.close_connection = True
            if size <= 8 * MAX_BODY:
                # Read and drop it, so that a client still sending gets the answer rather than a
                # broken pipe; anything bigger is cut off unread.
                left = size
                while left > 0:
                    chunk = self.rfile.read(min(left, 65536))
                    if not chunk:
                        break
                    left -= len(chunk)
            raise ApiError("RequestTooLarge", f"The request body exceeds {MAX_BODY} bytes.", 413)
        body = self.rfile.read(size)
        if len(body) != size:
            self.close_connection = True
            raise ApiError("MalformedRequest", "The request body is shorter than its Content-Length.", 400)
        return body

    def _handle(self) -> None:
        started = time.perf_counter()
        request_id = new_request_id()
        info = {"action": None, "account": None}
        status, code = 200, ""
        try:
            body = self._read_body()
            url = urlsplit(self.path)
            if url.path == "/_health":
                self._send_json(200, {"Status": "ok", "RequestId": request_id})
                return
            if url.path.startswith("/_admin/"):
                status, payload = self._admin(url.path, body)
                payload["RequestId"] = request_id
                code = payload.get("Code", "")
                self._send_json(status, payload)
                return
            result = self._api(url.path, url.query, body, info, request_id)
            if result is None:  # dropped connection
                status, code = 0, "dropped"
                return
            status, payload = result
            code = payload.get("Code", "") if status != 200 else ""
            self._send_json(status, payload)
        except ApiError as exc:
            status, code = exc.status, exc.code
            self._send_json(status, {"Code": exc.code, "Message": exc.message, "RequestId": request_id,
                                     "HostId": "ecs.emulator"})
        except Exception:  # the server must keep serving whatever one request does
            logging.getLogger("ecs_emulator").exception("internal error in request %s", request_id)
            status, code = 500, "InternalError"
            self._send_json(500, {"Code": "InternalError", "Message": "The request processing has failed due to "
                                  "some unknown error.", "RequestId": request_id, "HostId": "ecs.emulator"})
        finally:
            if self.emulator.request_log is not None:
                self.emulator.request_log.add({
                    "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "request_id": request_id,
                    "method": self.command, "action": info["action"], "account": info["account"],
                    "status": status, "code": code, "latency_ms": round((time.perf_counter() - started) * 1000, 2)})

    # --- the ECS API ----------------------------------------------------------------------------

    def _api(self, path: str, query: str, body: bytes, info: dict, request_id: str) -> tuple[int, dict] | None:
        emu = self.emulator
        if path != "/":
            raise ApiError("InvalidAction.NotFound", "The request path is not an API of this endpoint.", 404)
        params: dict[str, str] = {}
        query_params: dict[str, str] = {}
        try:
            parse_params(query, query_params)
            params.update(query_params)
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if body and ctype == "application/x-www-form-urlencoded":
                parse_params(body.decode("utf-8"), params)  # a name in both query and body is a duplicate
        except UnicodeDecodeError:
            raise ApiError("InvalidParameter.Encoding", "The request parameters are not valid UTF-8.", 400) from None
        headers = dict(self.headers)
        v3 = headers.get("authorization", "").startswith("ACS3-")
        action = (headers.get("x-acs-action") if v3 else None) or params.get("Action")
        version = (headers.get("x-acs-version") if v3 else None) or params.get("Version")
        if not action:
            raise ApiError("MissingParameter", "The input parameter \"Action\" that is mandatory for processing this "
                           "request is not supplied.", 400)
        info["action"] = action[:64]
        if version == sts.VERSION:
            return self._sts(action, params, query_params, headers, body, info, request_id)
        if version != API_VERSION:
            raise ApiError("InvalidVersion", f"Specified parameter Version is not valid (this endpoint serves {API_VERSION}).", 400)
        handler = ACTIONS.get(action) or CLOUD_ASSISTANT_ACTIONS.get(action) or CATALOG_ACTIONS.get(action)
        if handler is None:
            raise ApiError("InvalidAction.NotFound", "Specified api is not found, please check your url and method.", 404)
        key = self._authenticate(v3, params, query_params, headers, body)
        info["account"] = key.account
        fault = emu.faults.pick(action, "before")
        if fault is not None:
            outcome = self._apply_fault(fault, request_id)
            if outcome != "continue":
                return outcome
        ctx = Context(emu.state, emu.lifecycle, emu.config, emu.accounts[key.account], params)
        payload = handler(ctx)
        for job in ctx.post_commit:
            job()
        fault = emu.faults.pick(action, "after")
        if fault is not None:
            outcome = self._apply_fault(fault, request_id)
            if outcome != "continue":
                return outcome
        payload["RequestId"] = request_id
        return 200, payload

    def _sts(self, action: str, params: dict[str, str], query: dict[str, str], headers: dict[str, str],
             body: bytes, info: dict, request_id: str) -> tuple[int, dict]:
        """An STS request (see sts.py): same signing and same request log as ECS."""
        emu = self.emulator
        handler = sts.ACTIONS.get(action)
        if handler is None:
            raise ApiError("InvalidAction.NotFound", "Specified api is not found, please check your url and method.", 404)
        key, issued = None, None
        if action not in sts.UNSIGNED:
            key = self._authenticate(headers.get("authorization", "").startswith("ACS3-"), params, query, headers, body)
            info["account"] = key.account
            issued = emu.temporary_keys.get(key.id)
        ctx = sts.StsContext(emu.accounts, key, issued, emu.temporary_keys, params)
        payload = handler(ctx)
        payload["RequestId"] = request_id
        return 200, payload

    def _apply_fault(self, fault: Fault, request_id: str):
        if fault.latency_ms:
            time.sleep(fault.latency_ms / 1000)
        if fault.kind == "latency":
            return "continue"
        if fault.kind == "drop":
            self._drop()
            return None
        status, code, message = fault.error()
        if fault.retry_after_ms:
            self.extra_headers = {"x-acs-retry-after": str(fault.retry_after_ms)}
        return status, {"Code": code, "Message": message, "RequestId": request_id, "HostId": "ecs.emulator"}

    def _authenticate(self, v3: bool, params: dict[str, str], query: dict[str, str],
                      headers: dict[str, str], body: bytes) -> AccessKey:
        emu = self.emulator
        if v3:
            signed, auth = sigs.v3_envelope(headers, body)
        else:
            signed, auth = sigs.v1_envelope(params), None
        key = emu.keys.get(signed.access_key_id)
        issued = emu.temporary_keys.get(signed.access_key_id) if key is None else None
        if issued is not None:
            key = issued.key
        if key is None:
            raise ApiError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        if v3:
            ok = sigs.v3_verify(key.secret, self.command, urlsplit(self.path).path, query, headers, auth)
        else:
            ok = sigs.v1_verify(key.secret, self.command, params)
        if not ok:
            message = "Specified signature is not matched with our calculation."
            if not v3 and "Password" not in params:
                # As the real service does, and the legacy SDK relies on (it tells a wrong secret
                # from a wrong string to sign by comparing the part after the colon); never when
                # the string would carry a password.
                message += " server string to sign is:" + sigs.v1_string_to_sign(self.command, params)
            raise ApiError("SignatureDoesNotMatch", message, 400)
        if key.security_token is not None:
            if not signed.security_token:
                raise ApiError("MissingSecurityToken", "SecurityToken is mandatory for this action.", 400)
            if not hmac.compare_digest(signed.security_token, key.security_token):
                raise ApiError("InvalidSecurityToken.Mismatch", "The SecurityToken does not match the AccessKey.", 400)
        elif signed.security_token:
            raise ApiError("InvalidSecurityToken.Malformed", "A SecurityToken was given for a permanent AccessKey.", 400)
        if issued is not None and emu.temporary_keys.expired(issued):
            raise ApiError("InvalidSecurityToken.Expired", "Specified SecurityToken is expired.", 400)
        sigs.check_skew(signed.timestamp, datetime.now(timezone.utc))
        if not emu.nonces.use(key.id, signed.nonce):
            raise ApiError("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
        return key

    # --- admin ----------------------------------------------------------------------------------

    def _admin(self, path: str, body: bytes) -> tuple[int, dict]:
        emu = self.emulator
        token = self.headers.get("X-Admin-Token") or ""
        if not hmac.compare_digest(token.encode(), emu.admin_token.encode()):
            return 403, {"Code": "Forbidden.AdminToken", "Message": "The admin API needs a valid X-Admin-Token header."}
        handled = admin.handle(emu, self.command, path, body)  # instances and reset, for test authors
        if handled is not None:
            return handled
        if path == "/_admin/faults":
            if self.command == "GET":
                return 200, {"Faults": emu.faults.list()}
            if self.command == "DELETE":
                emu.faults.clear()
                return 200, {"Faults": []}
            if self.command == "POST":
                try:
                    doc = json.loads(body.decode("utf-8") or "{}")
                    if not isinstance(doc, dict) or not isinstance(doc.get("faults", []), list):
                        raise FaultError('expected {"faults": [...], "replace": false}')
                    faults = [from_dict(f) for f in doc.get("faults", [])]
                except (ValueError, TypeError) as exc:
                    return 400, {"Code": "InvalidParameter.Faults", "Message": str(exc)[:300]}
                emu.faults.add(faults, replace=bool(doc.get("replace")))
                return 200, {"Faults": emu.faults.list()}
        if path == "/_admin/sts/credentials" and self.command == "GET":
            return 200, {"Credentials": emu.temporary_keys.secrets()}
        if path == "/_admin/sts/expire" and self.command == "POST":
            # Temporary credentials last 15 minutes at least; tests expire them at once instead.
            return 200, {"Expired": emu.temporary_keys.expire_all()}
        if path == "/_admin/flush-log" and self.command == "POST":
            # The request log is written a few times a second; tests that read it flush first.
            if emu.request_log is not None:
                emu.request_log.flush()
            return 200, {"Flushed": emu.request_log is not None}
        if path == "/_admin/ssh-access" and self.command == "POST":
            return self._ssh_access(body)
        if path == "/_admin/cloud-assistant-agent" and self.command == "POST":
            return self._agent(body)
        if path == "/_admin/wait-idle" and self.command == "POST":
            # Lets tests wait until queued status transitions are done, without sleeping blindly.
            return 200, {"Idle": emu.lifecycle.wait_idle(timeout=60)}
        return 404, {"Code": "InvalidAction.NotFound", "Message": "Unknown admin endpoint."}

    def _agent(self, body: bytes) -> tuple[int, dict]:
        """Stops or starts one instance's Cloud Assistant agent."""
        try:
            doc = json.loads(body.decode("utf-8") or "{}")
            instance_id, running = doc["InstanceId"], doc["Running"]
            if not isinstance(instance_id, str) or not isinstance(running, bool):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return 400, {"Code": "InvalidParameter", "Message": 'expected {"InstanceId": "i-...", "Running": true|false}'}
        set_agent(self.emulator.lifecycle, instance_id, running)
        return 200, {"InstanceId": instance_id, "Running": running}

    def _ssh_access(self, body: bytes) -> tuple[int, dict]:
        """Opens or closes one podman instance's SSH port to the controller (a security group rule)."""
        emu = self.emulator
        try:
            doc = json.loads(body.decode("utf-8") or "{}")
            instance_id, open_ = doc["InstanceId"], doc["Open"]
            if not isinstance(instance_id, str) or not isinstance(open_, bool):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return 400, {"Code": "InvalidParameter", "Message": 'expected {"InstanceId": "i-...", "Open": true|false}'}
        backend = emu.lifecycle.backend
        with emu.state.read() as db:
            row = db.execute("SELECT address FROM instances WHERE id = ?", (instance_id,)).fetchone()
        if row is None or not hasattr(backend, "set_ssh_access"):
            return 404, {"Code": "InvalidInstanceId.NotFound", "Message": "No podman instance with this id."}
        backend.set_ssh_access(instance_id, row["address"], emu.config.ssh_port, open_)
        return 200, {"InstanceId": instance_id, "Open": open_}


class _NullWriter:
    closed = False

    def close(self) -> None:
        self.closed = True

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


_date_cache = [0, ""]


def http_date() -> str:
    """The Date header, formatted once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[1] = email.utils.formatdate(now, usegmt=True)
        _date_cache[0] = now
    return _date_cache[1]


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


def make_server(host: str, port: int, emulator: Emulator) -> Server:
    handler = type("BoundHandler", (Handler,), {"emulator": emulator})
    return Server((host, port), handler)

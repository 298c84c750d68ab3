# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: a signed RPC client for the ECS API (standard library only)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import random
import re
import socket
import ssl
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._endpoints import close_regions, service_host
from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import quote_input

API_VERSION = "2014-05-26"
USER_AGENT = "sshkeys.ecs/0.1.0"
SIGNATURE_V3 = "v3"
SIGNATURE_V1 = "v1"
V3_ALGORITHM = "ACS3-HMAC-SHA256"
# SHA-256 of the empty body: every request of this client sends its parameters in the query.
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

# The largest page each Describe action allows (shared API facts): fewer round trips.
MAX_PAGE_SIZE = {"DescribeKeyPairs": 50, "DescribeInstances": 100}
# MaxResults of the actions paged with NextToken (DescribeInstances: the request model of
# alibabacloud_ecs20140526 7.11.8 says PageNumber/PageSize are about to be deprecated).
MAX_RESULTS = {"DescribeInstances": 100}
# The most items one JSON-array parameter may hold.
MAX_KEY_PAIR_NAMES = 100
MAX_INSTANCE_IDS = 50
MAX_DESCRIBE_INSTANCE_IDS = 100

# Codes that mean "try again later": the service did not act on the request.
RETRYABLE_CODES = frozenset(("ServiceUnavailable", "InternalError", "SignatureNonceUsed"))
# Our codes for transport failures that another try cannot mend: a host name that does not
# resolve, a TLS handshake that failed (certificate, or TLS spoken to a plain HTTP server).
FINAL_TRANSPORT_CODES = frozenset(("UnknownHost", "SSLError"))
# The header a throttled reply may carry: how long to wait before the next try, in
# milliseconds (alibabacloud_tea_openapi's Utils.get_throttling_time_left reads it, and
# darabonba's retry policy sleeps that many milliseconds).
RETRY_AFTER_HEADER = "x-acs-retry-after"


class EcsApiError(SshKeysError):
    """One failed API call: the service's error code, its message, the request id and HTTP status.

    Transport problems (connection refused, timeouts, replies that are not JSON) are reported
    with a code of our own (``ConnectionError``, ``Timeout``, ``MalformedResponse``) so callers
    handle one type.
    """

    reason = "api"

    def __init__(self, *, code: str, message: str, request_id: Optional[str] = None,
                 http_status: Optional[int] = None, action: Optional[str] = None,
                 sent: bool = True, retry_after: Optional[float] = None) -> None:
        self.code, self.message, self.request_id = code, message, request_id
        self.http_status, self.action = http_status, action
        # False when the request surely never reached the service (nothing was acted on).
        self.sent = sent
        # Seconds the service asked us to wait before trying again (x-acs-retry-after).
        self.retry_after = retry_after
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f"{self.action} failed" if self.action else "ECS API call failed"
        status = f", HTTP {self.http_status}" if self.http_status else ""
        request = f", request id {self.request_id}" if self.request_id else ""
        return f"{where}: {self.code}: {self.message}{status}{request}"

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "request_id": self.request_id,
                "http_status": self.http_status, "action": self.action}


class Credentials:
    """AccessKey pair plus an optional STS token. ``repr`` never shows the secret."""

    def __init__(self, access_key_id: str, access_key_secret: str, security_token: Optional[str] = None) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.security_token = security_token or None

    def __repr__(self) -> str:
        return f"Credentials(access_key_id={self.access_key_id!r}, access_key_secret=***)"


# ---------------------------------------------------------------------------------------------
# Signing (pure functions: the tests compare them with the official SDKs).


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of UTF-8: only A-Z a-z 0-9 - _ . ~ stay; space becomes %20."""
    return quote(str(value), safe="~", encoding="utf-8")


def canonical_query(params: Mapping[str, str]) -> str:
    """Parameters sorted by name (byte order), names and values encoded, joined by '&'."""
    items = sorted((str(k), str(v)) for k, v in params.items() if v is not None)
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in items)


def sign_v1(method: str, params: Mapping[str, str], secret: str) -> str:
    """HMAC-SHA1 signature (SignatureVersion 1.0) over every parameter except Signature."""
    query = canonical_query({k: v for k, v in params.items() if k != "Signature"})
    string_to_sign = f"{method.upper()}&{percent_encode('/')}&{percent_encode(query)}"
    digest = hmac.new((secret + "&").encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def canonical_headers(headers: Mapping[str, str]) -> Tuple[str, str]:
    """(canonical header block, signed header list) from the headers to sign."""
    lowered = sorted((name.lower().strip(), str(value).strip()) for name, value in headers.items())
    block = "".join(f"{name}:{value}\n" for name, value in lowered)
    return block, ";".join(name for name, _value in lowered)


def v3_canonical_request(method: str, path: str, query: Mapping[str, str],
                         signed: Mapping[str, str], body_sha256: str) -> Tuple[str, str]:
    block, names = canonical_headers(signed)
    canonical = "\n".join((method.upper(), path or "/", canonical_query(query), block, names, body_sha256))
    return canonical, names


def sign_v3(method: str, path: str, query: Mapping[str, str], signed: Mapping[str, str],
            body_sha256: str, secret: str) -> Tuple[str, str]:
    """(hex signature, signed header names) of ACS3-HMAC-SHA256."""
    canonical, names = v3_canonical_request(method, path, query, signed, body_sha256)
    string_to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
    signature = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return signature, names


def utc_timestamp(now: Optional[float] = None) -> str:
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_nonce() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------------------------
# Parameters.


def json_list(values: Sequence[str]) -> str:
    """The JSON array string the API wants for KeyPairNames / InstanceIds."""
    return json.dumps(list(values), separators=(",", ":"))


def stringify(params: Optional[Mapping[str, Any]]) -> dict:
    """Drop None, render booleans the way the API spells them, everything else as str."""
    out = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            out[key] = json_list(value)
        else:
            out[key] = str(value)
    return out


def chunks(values: Sequence[Any], size: int) -> Iterator[list]:
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start:start + size]


def dig(reply: Mapping[str, Any], path: Sequence[str], action: str = "") -> list:
    """The list at path (e.g. ('KeyPairs', 'KeyPair')); a missing level is a malformed reply.

    An empty list may be sent as missing inner key or as an empty object, which both mean 'none'.
    """
    node: Any = reply
    for depth, key in enumerate(path):
        if not isinstance(node, dict):
            raise EcsApiError(code="MalformedResponse", action=action or None,
                              request_id=reply.get("RequestId") if isinstance(reply, dict) else None,
                              message=f"expected an object at {'.'.join(path[:depth]) or 'the top'}")
        if key not in node:
            if depth == 0:
                raise EcsApiError(code="MalformedResponse", action=action or None,
                                  request_id=reply.get("RequestId"),
                                  message=f"the reply has no {key!r} field")
            return []
        node = node[key]
    if node is None:
        return []
    if not isinstance(node, list):
        raise EcsApiError(code="MalformedResponse", action=action or None, request_id=reply.get("RequestId"),
                          message=f"{'.'.join(path)} is not a list")
    return node


# ---------------------------------------------------------------------------------------------
# Endpoint and transport.


_HOST_CHARS = re.compile(r"[A-Za-z0-9._:-]+")


def parse_endpoint(endpoint: Optional[str], region: str, network: str = "public") -> Tuple[str, str, Optional[int]]:
    """(scheme, host, port) from a URL ('http://127.0.0.1:8080'), a host[:port], or the region
    (its public or VPC endpoint)."""
    if not endpoint:
        return "https", service_host("ecs", region, network), None
    text = endpoint.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    # Spaces or control characters would only fail later, deep in http.client, as a crash.
    if parts.scheme not in ("http", "https") or not parts.hostname or not _HOST_CHARS.fullmatch(parts.hostname):
        raise ValueError(f"ecs_endpoint {quote_input(endpoint)} is neither a host name nor an http(s) URL")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(f"ecs_endpoint {quote_input(endpoint)} must be a bare host or scheme://host[:port]")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"ecs_endpoint {quote_input(endpoint)} has an invalid port") from exc
    return parts.scheme, parts.hostname, port


def has_scheme(endpoint: Optional[str]) -> bool:
    return bool(endpoint) and "://" in str(endpoint)


def host_and_port(scheme: str, host: str, port: Optional[int]) -> str:
    """host:port with the port always shown (the scheme's default when none was given)."""
    return f"{host}:{port or (443 if scheme == 'https' else 80)}"


def host_header(scheme: str, host: str, port: Optional[int]) -> str:
    if port is None or (scheme, port) in (("https", 443), ("http", 80)):
        return host
    return f"{host}:{port}"


class HttpReply:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body


class TransportError(SshKeysError):
    """A request that got no HTTP reply. ``sent`` is False when it surely never left."""

    reason = "transport"

    def __init__(self, message: str, *, timeout: bool = False, sent: bool = True, unresolved: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.sent = sent
        # The host name did not resolve: another try a few seconds later will not mend it.
        self.unresolved = unresolved


def http_transport(method: str, scheme: str, host: str, port: Optional[int], target: str,
                   headers: Mapping[str, str], body: bytes, timeout: float,
                   context: Optional[ssl.SSLContext]) -> HttpReply:
    """One request with http.client; raises TransportError for anything without an HTTP reply."""
    if scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    where = host_and_port(scheme, host, port)
    try:
        try:
            conn.connect()
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
            # The peer closed the connection during the handshake: may be transient.
            raise TransportError(f"connection to {where} closed during the TLS handshake", sent=False) from exc
        except ssl.SSLError:
            raise  # a bad certificate or no TLS at all on the other side: never retried
        except socket.gaierror as exc:
            raise TransportError(f"cannot resolve the host name {host}: {exc.strerror or exc}", sent=False,
                                 unresolved=True) from exc
        except socket.timeout as exc:
            raise TransportError(f"timed out connecting to {where}", timeout=True, sent=False) from exc
        except ConnectionRefusedError as exc:
            raise TransportError(f"cannot connect to {where}: connection refused (nothing listens on that port)",
                                 sent=False) from exc
        except OSError as exc:
            raise TransportError(f"cannot connect to {where}: {exc.strerror or exc}", sent=False) from exc
        try:
            conn.request(method, target, body=body, headers=dict(headers))
            response = conn.getresponse()
            return HttpReply(response.status, dict(response.getheaders()), response.read())
        except socket.timeout as exc:
            raise TransportError(f"timed out waiting for {host}", timeout=True) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(f"connection to {host} failed: {type(exc).__name__}") from exc
    finally:
        conn.close()


def make_ssl_context(validate_certs: bool, ca_file: Optional[str] = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    if not validate_certs:
        # Only when the user explicitly turned verification off.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


# ---------------------------------------------------------------------------------------------
# Retry policy.


def is_retryable(error: EcsApiError, idempotent: bool = True) -> bool:
    """Whether another try may succeed and cannot do harm.

    A non-idempotent call (CreateKeyPair) is retried only when the service surely did not act:
    throttling, 503, or a request that never left. A reply lost after sending could mean the
    key pair was created and its private key is gone; the caller must decide, not a blind retry.
    """
    if error.code in FINAL_TRANSPORT_CODES:
        return False  # a wrong name, certificate or scheme does not mend itself
    if not error.sent:
        return True
    code = error.code or ""
    throttled = "Throttling" in code or error.http_status == 429
    if throttled or code == "ServiceUnavailable" or error.http_status == 503:
        return True
    if not idempotent:
        return False
    if code in RETRYABLE_CODES or code in ("ConnectionError", "Timeout"):
        return True
    return error.http_status is not None and error.http_status >= 500 and code != "MalformedResponse"


def backoff_delay(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Full jitter: a random delay in [0, min(cap, base * 2**attempt)] so clients spread out."""
    return min(cap, base * (2 ** attempt)) * rng()


def retry_after_seconds(headers: Mapping[str, str]) -> Optional[float]:
    """The wait x-acs-retry-after asks for, in seconds; None when absent, malformed or not positive
    (as the official SDK reads it)."""
    raw = headers.get(RETRY_AFTER_HEADER)
    try:
        millis = int(str(raw).strip()) if raw not in (None, "") else 0
    except ValueError:
        return None
    return millis / 1000.0 if millis > 0 else None


# ---------------------------------------------------------------------------------------------
# The client.


class EcsClient:
    """Signs, sends, retries and pages ECS RPC calls. One instance per module run."""

    def __init__(self, credentials: Credentials, region: str, endpoint: Optional[str] = None, *,
                 signature_version: str = SIGNATURE_V3, timeout: float = 30.0, retries: int = 5,
                 backoff_base: float = 0.5, backoff_cap: float = 20.0, validate_certs: bool = True,
                 ca_file: Optional[str] = None, transport: Callable[..., HttpReply] = http_transport,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] = new_nonce, endpoint_type: str = "public") -> None:
        if signature_version not in (SIGNATURE_V3, SIGNATURE_V1):
            raise ValueError(f"unknown signature version {quote_input(signature_version)} (use v3 or v1)")
        if not region:
            raise ValueError("a region is required")
        self.credentials = credentials
        self.region = region
        self.scheme, self.host, self.port = parse_endpoint(endpoint, region, endpoint_type)
        # Whether the user chose the endpoint, and whether they wrote its scheme: the error
        # messages of a failed connection say what to change.
        self.endpoint_given = bool(endpoint)
        self.scheme_assumed = bool(endpoint) and not has_scheme(endpoint)
        self.signature_version = signature_version
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._context = make_ssl_context(validate_certs, ca_file) if self.scheme == "https" else None
        self._transport = transport
        self._sleep = sleep
        self._clock = clock
        self._nonce = nonce
        self.calls = 0  # requests sent, retries included (benchmarks count them)
        self.actions: list = []  # action names in order, one per request sent

    # -- building requests ------------------------------------------------------------------

    def build_request(self, action: str, params: Mapping[str, Any]) -> Tuple[str, dict, bytes]:
        """(request target, headers, body) for one try: fresh nonce and timestamp each call."""
        business = stringify(params)
        business.setdefault("RegionId", self.region)
        host = host_header(self.scheme, self.host, self.port)
        if self.signature_version == SIGNATURE_V1:
            return self._build_v1(action, business, host)
        return self._build_v3(action, business, host)

    def _build_v3(self, action: str, business: dict, host: str) -> Tuple[str, dict, bytes]:
        signed = {
            "host": host,
            "x-acs-action": action,
            "x-acs-version": API_VERSION,
            "x-acs-date": utc_timestamp(self._clock()),
            "x-acs-signature-nonce": self._nonce(),
            "x-acs-content-sha256": EMPTY_BODY_SHA256,
        }
        if self.credentials.security_token:
            signed["x-acs-security-token"] = self.credentials.security_token
        signature, names = sign_v3("POST", "/", business, signed, EMPTY_BODY_SHA256,
                                   self.credentials.access_key_secret)
        headers = dict(signed)
        headers["authorization"] = (f"{V3_ALGORITHM} Credential={self.credentials.access_key_id},"
                                    f"SignedHeaders={names},Signature={signature}")
        headers["accept"] = "application/json"
        headers["user-agent"] = USER_AGENT
        query = canonical_query(business)
        return "/?" + query if query else "/", headers, b""

    def _build_v1(self, action: str, business: dict, host: str) -> Tuple[str, dict, bytes]:
        params = dict(business)
        params.update({
            "Action": action,
            "Version": API_VERSION,
            "Format": "JSON",
            "AccessKeyId": self.credentials.access_key_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": self._nonce(),
            "Timestamp": utc_timestamp(self._clock()),
        })
        if self.credentials.security_token:
            params["SecurityToken"] = self.credentials.security_token
        params["Signature"] = sign_v1("POST", params, self.credentials.access_key_secret)
        headers = {"host": host, "accept": "application/json", "user-agent": USER_AGENT}
        return "/?" + canonical_query(params), headers, b""

    # -- sending ------------------------------------------------------------------------------

    def _send_once(self, action: str, params: Mapping[str, Any]) -> dict:
        target, headers, body = self.build_request(action, params)
        self.calls += 1
        self.actions.append(action)
        try:
            reply = self._transport("POST", self.scheme, self.host, self.port, target, headers, body,
                                    self.timeout, self._context)
        except TransportError as exc:
            raise self._transport_error(action, exc) from None
        except ssl.SSLError as exc:
            raise EcsApiError(code="SSLError", action=action, sent=False, message=self._tls_message(exc)) from None
        try:
            return parse_reply(action, reply)
        except EcsApiError as error:
            if error.code == "InvalidRegionId.NotFound":
                # ECS's message does not say which value it refused, nor what was meant.
                error.message += self._region_hint(str(params.get("RegionId") or self.region))
            raise

    @staticmethod
    def _region_hint(region: str) -> str:
        suggestions = [name for name in close_regions(region) if name != region]
        hint = f" (RegionId {quote_input(region)} was sent"
        return hint + (f"; close region ids: {', '.join(suggestions)})" if suggestions else ")")

    def _transport_error(self, action: str, exc: TransportError) -> EcsApiError:
        if exc.unresolved:
            return EcsApiError(code="UnknownHost", action=action, sent=False,
                               message=f"{exc}; {self._unresolved_hint()}")
        return EcsApiError(code="Timeout" if exc.timeout else "ConnectionError", message=str(exc),
                           action=action, sent=exc.sent)

    def _unresolved_hint(self) -> str:
        """What to check when the endpoint's name does not resolve."""
        if self.endpoint_given:
            return "check ecs_endpoint"
        suggestions = [name for name in close_regions(self.region) if name != self.region]
        close = f" (close region ids: {', '.join(suggestions)})" if suggestions else ""
        return (f"it is the endpoint of region {quote_input(self.region)}: the region may be wrong{close}, "
                "or this network has no DNS for it")

    def _tls_message(self, exc: ssl.SSLError) -> str:
        where = host_and_port(self.scheme, self.host, self.port)
        message = f"TLS with {where} failed: {exc.reason or exc}"
        if self.scheme_assumed and not isinstance(exc, ssl.SSLCertVerificationError):
            # TLS spoken to a plain HTTP server fails with WRONG_VERSION_NUMBER (or a record layer
            # error): the user most likely meant http://.
            message += (f"; ecs_endpoint has no scheme, so HTTPS was assumed: if the endpoint serves plain HTTP "
                        f"(as the emulator does), write http://{host_header('http', self.host, self.port)}")
        return message

    def call(self, action: str, params: Optional[Mapping[str, Any]] = None, *, idempotent: bool = True) -> dict:
        """One API action with retries; returns the reply object or raises EcsApiError."""
        attempt = 0
        while True:
            try:
                return self._send_once(action, params or {})
            except EcsApiError as error:
                if attempt >= self.retries or not is_retryable(error, idempotent):
                    raise
                self._sleep(self._retry_delay(attempt, error))
                attempt += 1

    def _retry_delay(self, attempt: int, error: EcsApiError) -> float:
        """The jittered backoff, but never less than the wait the service asked for (capped)."""
        delay = backoff_delay(attempt, self.backoff_base, self.backoff_cap)
        if error.retry_after:
            delay = max(delay, min(error.retry_after, self.backoff_cap))
        return delay

    def pause(self, attempt: int) -> None:
        """The backoff wait before retry number attempt, for callers that retry on their own terms."""
        self._sleep(backoff_delay(attempt, self.backoff_base, self.backoff_cap))

    def wait(self, seconds: float) -> None:
        """A plain wait (the client's sleep, so tests that replace it do not really wait)."""
        self._sleep(seconds)

    def sends_of(self, action: str) -> int:
        """How many requests of this action were sent so far, retries included."""
        return self.actions.count(action)

    def paginate_tokens(self, action: str, params: Optional[Mapping[str, Any]], path: Sequence[str]) -> Iterator[dict]:
        """Every item of every page, paged with MaxResults and NextToken."""
        token: Optional[str] = None
        seen: set = set()
        while True:
            query = dict(params or {})
            query["MaxResults"] = MAX_RESULTS.get(action, 100)
            if token:
                query["NextToken"] = token
            reply = self.call(action, query)
            yield from dig(reply, path, action)
            token = next_token_of(reply, action, seen)
            if token is None:
                return

    def paginate(self, action: str, params: Optional[Mapping[str, Any]], path: Sequence[str],
                 page_size: Optional[int] = None) -> Iterator[dict]:
        """Every item of every page, using the largest page the action allows."""
        size = page_size or MAX_PAGE_SIZE.get(action, 50)
        page = 1
        seen = 0
        while True:
            query = dict(params or {})
            query.update({"PageNumber": page, "PageSize": size})
            reply = self.call(action, query)
            items = dig(reply, path, action)
            yield from items
            seen += len(items)
            total = reply.get("TotalCount")
            if not isinstance(total, int):
                raise EcsApiError(code="MalformedResponse", action=action, request_id=reply.get("RequestId"),
                                  message="the reply has no integer TotalCount")
            if not items or seen >= total or len(items) < size:
                return
            page += 1


def next_token_of(reply: Mapping[str, Any], action: str, seen: set) -> Optional[str]:
    """The token of the next page; None on the last. A token seen before would loop forever."""
    token = reply.get("NextToken")
    if token in (None, ""):
        return None
    if not isinstance(token, str) or token in seen:
        raise EcsApiError(code="MalformedResponse", action=action, request_id=reply.get("RequestId"),
                          message="NextToken is not a string" if not isinstance(token, str) else
                          "NextToken repeats an earlier page's")
    seen.add(token)
    return token


def parse_reply(action: str, reply: HttpReply) -> dict:
    """The JSON object of a reply, or EcsApiError for API errors and malformed replies."""
    header_request_id = reply.headers.get("x-acs-request-id")
    try:
        data = json.loads(reply.body.decode("utf-8")) if reply.body else None
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        code = "MalformedResponse"
        if reply.status >= 500 or reply.status == 429:
            code = "ServiceUnavailable" if reply.status in (502, 503, 504) else f"HTTP{reply.status}"
            if reply.status == 429:
                code = "Throttling"
        raise EcsApiError(code=code, action=action, http_status=reply.status, request_id=header_request_id,
                          retry_after=retry_after_seconds(reply.headers),
                          message=f"the reply is not a JSON object ({len(reply.body)} bytes, "
                                  f"content type {reply.headers.get('content-type', 'unknown')})")
    request_id = data.get("RequestId") or header_request_id
    if reply.status >= 300:
        raise EcsApiError(code=str(data.get("Code") or f"HTTP{reply.status}"),
                          message=str(data.get("Message") or "no message"),
                          request_id=request_id, http_status=reply.status, action=action,
                          retry_after=retry_after_seconds(reply.headers))
    if not request_id:
        raise EcsApiError(code="MalformedResponse", action=action, http_status=reply.status,
                          message="the reply carries no RequestId")
    return data

"""Request signature checks: v1 (HMAC-SHA1, all parameters in the query or form) and v3
(ACS3-HMAC-SHA256, Authorization header).

Written from the published descriptions only; it deliberately shares no code with the
collection's client, so that the emulator is an independent judge of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from .errors import ApiError

MAX_SKEW_SECONDS = 15 * 60
V3_ALGORITHM = "ACS3-HMAC-SHA256"


_UNRESERVED = re.compile(r"[A-Za-z0-9\-_.~]*")


def rfc3986(value: str) -> str:
    """Percent-encode as both schemes require: unreserved characters stay, space is %20."""
    if _UNRESERVED.fullmatch(value):  # the common case, and much cheaper than quote()
        return value
    return quote(value, safe="-_.~", encoding="utf-8")


def canonical_query(params: dict[str, str]) -> str:
    """Sorted k=v pairs, names and values percent-encoded, joined by '&'."""
    return "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in sorted(params.items()))


@dataclass(frozen=True)
class SignedRequest:
    """What a verified signature vouches for."""

    scheme: str          # 'v1' or 'v3'
    access_key_id: str
    nonce: str
    timestamp: datetime
    security_token: str | None


_TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,6})?Z")


def parse_timestamp(value: str) -> datetime:
    """Timestamps are UTC ISO 8601 to the second ('2024-01-02T03:04:05Z'); milliseconds tolerated.
    A regular expression rather than strptime(): it runs on every request and is far cheaper."""
    m = _TIMESTAMP.fullmatch(value)
    if m:
        try:
            return datetime(*(int(g) for g in m.groups()), tzinfo=timezone.utc)
        except ValueError:
            pass
    raise ApiError("InvalidTimeStamp.Format", f"Specified time stamp or date value is not well formatted: {value[:40]!r}.", 400)


def check_skew(ts: datetime, now: datetime) -> None:
    if abs((now - ts).total_seconds()) > MAX_SKEW_SECONDS:
        raise ApiError("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", 400)


# --- v1 -----------------------------------------------------------------------------------------

def v1_string_to_sign(method: str, params: dict[str, str]) -> str:
    signed = {k: v for k, v in params.items() if k != "Signature"}
    canonical = canonical_query(signed)
    # The canonical query holds only unreserved characters, '%', '=' and '&', so encoding it
    # again comes down to these three replacements (quote() on the whole string costs more).
    encoded = canonical.replace("%", "%25").replace("=", "%3D").replace("&", "%26")
    return f"{method}&%2F&{encoded}"


def v1_signature(secret: str, method: str, params: dict[str, str]) -> str:
    digest = hmac.new((secret + "&").encode(), v1_string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def v1_envelope(params: dict[str, str]) -> SignedRequest:
    """The v1 common parameters, checked for presence and shape (not yet the signature)."""
    for name in ("AccessKeyId", "Signature", "SignatureNonce", "Timestamp"):
        if not params.get(name):
            raise ApiError("MissingParameter", f"The input parameter \"{name}\" that is mandatory for processing this request is not supplied.", 400)
    method = params.get("SignatureMethod", "HMAC-SHA1")
    if method != "HMAC-SHA1":
        raise ApiError("InvalidSignatureMethod", f"Specified signature method {method[:40]!r} is not supported.", 400)
    version = params.get("SignatureVersion", "1.0")
    if version != "1.0":
        raise ApiError("InvalidSignatureVersion", "Specified signature version is not supported.", 400)
    return SignedRequest("v1", params["AccessKeyId"], params["SignatureNonce"],
                         parse_timestamp(params["Timestamp"]), params.get("SecurityToken"))


def v1_verify(secret: str, method: str, params: dict[str, str]) -> bool:
    return hmac.compare_digest(v1_signature(secret, method, params), params.get("Signature", ""))


# --- v3 -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class V3Authorization:
    access_key_id: str
    signed_headers: list[str]
    signature: str


def parse_v3_authorization(value: str) -> V3Authorization:
    if not value.startswith(V3_ALGORITHM + " "):
        raise ApiError("IncompleteSignature", "The Authorization header is not a supported signature scheme.", 400)
    fields: dict[str, str] = {}
    for part in value[len(V3_ALGORITHM) + 1:].split(","):
        name, sep, val = part.strip().partition("=")
        if not sep:
            raise ApiError("IncompleteSignature", "The Authorization header is malformed.", 400)
        fields[name] = val
    try:
        headers = [h for h in fields["SignedHeaders"].split(";") if h]
        auth = V3Authorization(fields["Credential"], headers, fields["Signature"])
    except KeyError:
        raise ApiError("IncompleteSignature", "The Authorization header lacks Credential, SignedHeaders or Signature.", 400) from None
    if not auth.access_key_id:
        raise ApiError("IncompleteSignature", "The Authorization header has an empty Credential.", 400)
    return auth


REQUIRED_V3_HEADERS = ("x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")


def v3_envelope(headers: dict[str, str], body: bytes) -> tuple[SignedRequest, V3Authorization]:
    """headers: lower-case names. Checks presence, body hash and that our headers are signed."""
    auth = parse_v3_authorization(headers.get("authorization", ""))
    for name in REQUIRED_V3_HEADERS:
        if not headers.get(name):
            raise ApiError("MissingParameter", f"The header \"{name}\" that is mandatory for processing this request is not supplied.", 400)
        if name not in auth.signed_headers:
            raise ApiError("IncompleteSignature", f"The header \"{name}\" must be signed.", 400)
    if headers["x-acs-content-sha256"].lower() != hashlib.sha256(body).hexdigest():
        raise ApiError("SignatureDoesNotMatch", "The x-acs-content-sha256 header does not match the request body.", 400)
    token = headers.get("x-acs-security-token")
    signed = SignedRequest("v3", auth.access_key_id, headers["x-acs-signature-nonce"],
                           parse_timestamp(headers["x-acs-date"]), token)
    return signed, auth


def v3_signature(secret: str, method: str, path: str, query: dict[str, str],
                 headers: dict[str, str], signed_headers: list[str], body_hash: str) -> str:
    names = sorted(h.lower() for h in signed_headers)
    canonical_headers = "".join(f"{n}:{headers.get(n, '').strip()}\n" for n in names)
    canonical_request = "\n".join([method, path or "/", canonical_query(query), canonical_headers,
                                   ";".join(names), body_hash])
    to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def v3_verify(secret: str, method: str, path: str, query: dict[str, str], headers: dict[str, str],
              auth: V3Authorization) -> bool:
    expected = v3_signature(secret, method, path, query, headers, auth.signed_headers,
                            headers["x-acs-content-sha256"].lower())
    return hmac.compare_digest(expected, auth.signature.lower())

"""Public key parsing, checks and fingerprints, and key generation for CreateKeyPair.

The emulator's own reading of OpenSSH keys (standard library plus cryptography), independent of
the collection's parser on purpose.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import ApiError

# The seed document's list of accepted types (bare 'rsa', 'dsa', 'ecdsa' are names of key
# families there; a key line always carries the full OpenSSH type, which is what we match).
SEED_TYPES = frozenset({
    "ssh-rsa", "ssh-dss",
    "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "ssh-rsa-cert-v00@openssh.com", "ssh-dss-cert-v00@openssh.com",
    "ssh-rsa-cert-v01@openssh.com", "ssh-dss-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
})
ED25519_TYPES = frozenset({"ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com"})
MAX_PUBLIC_KEY_BODY = 16 * 1024

_CURVES = {"ecdsa-sha2-nistp256": b"nistp256", "ecdsa-sha2-nistp384": b"nistp384", "ecdsa-sha2-nistp521": b"nistp521"}


def _malformed(why: str) -> ApiError:
    return ApiError("InvalidPublicKeyBody.Malformed", f"The specified public key body is not valid: {why}", 400)


def _ssh_strings(blob: bytes) -> list[bytes]:
    """Split an SSH wire blob into its length-prefixed strings; raise on any inconsistency."""
    out, pos = [], 0
    while pos < len(blob):
        if pos + 4 > len(blob):
            raise _malformed("truncated key blob")
        (size,) = struct.unpack(">I", blob[pos:pos + 4])
        pos += 4
        if pos + size > len(blob):
            raise _malformed("truncated key blob")
        out.append(blob[pos:pos + size])
        pos += size
    return out


def _from_rfc4716(text: str) -> str:
    """'---- BEGIN SSH2 PUBLIC KEY ----' form -> base64 blob."""
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if not lines or lines[-1] != "---- END SSH2 PUBLIC KEY ----":
        raise _malformed("unterminated SSH2 public key block")
    body, i = [], 1
    while i < len(lines) - 1:
        ln = lines[i]
        if ":" in ln and not body:  # header line, possibly continued with a backslash
            while ln.endswith("\\") and i + 1 < len(lines) - 1:
                i += 1
                ln = lines[i]
        else:
            body.append(ln)
        i += 1
    return "".join(body)


def _check_blob(key_type: str, blob: bytes) -> None:
    parts = _ssh_strings(blob)
    if not parts or parts[0].decode("ascii", "replace") != key_type:
        raise _malformed("the key type does not match the key data")
    if key_type == "ssh-rsa":
        if len(parts) != 3:
            raise _malformed("bad RSA key")
        bits = int.from_bytes(parts[2], "big").bit_length()
        if bits < 1024:
            raise _malformed("RSA keys need at least 1024 bits")
    elif key_type == "ssh-dss" and len(parts) != 5:
        raise _malformed("bad DSA key")
    elif key_type in _CURVES and (len(parts) != 3 or parts[1] != _CURVES[key_type]):
        raise _malformed("bad ECDSA key")
    elif key_type == "ssh-ed25519" and (len(parts) != 2 or len(parts[1]) != 32):
        raise _malformed("bad Ed25519 key")
    elif key_type.endswith("-cert-v01@openssh.com") or key_type.endswith("-cert-v00@openssh.com"):
        if len(parts) < 4:
            raise _malformed("bad certificate")


def normalize_public_key(body: str, accept_ed25519: bool) -> tuple[str, str]:
    """PublicKeyBody -> ('type base64', key_type). Refuses private keys and anything malformed.

    The comment is dropped: the stored key is the type and the blob, which is what identifies it.
    """
    if len(body) > MAX_PUBLIC_KEY_BODY:
        raise _malformed("too long")
    if "PRIVATE KEY" in body:
        # Never echo the body: it is somebody's secret.
        raise _malformed("this is a private key; only a public key may be imported")
    text = body.strip()
    if text.startswith("---- BEGIN SSH2 PUBLIC KEY ----"):
        b64 = _from_rfc4716(text)
        try:
            key_type = _ssh_strings(base64.b64decode(b64, validate=True))[0].decode("ascii")
        except (binascii.Error, IndexError, UnicodeDecodeError):
            raise _malformed("bad base64 key data") from None
    else:
        fields = text.split()
        # An authorized_keys line may start with options; the import body may not.
        if len(fields) < 2 or "\n" in text:
            raise _malformed("expected one line '<type> <base64> [comment]'")
        key_type, b64 = fields[0], fields[1]
    if key_type in ED25519_TYPES and not accept_ed25519:
        raise _malformed(f"key type {key_type} is not accepted by this endpoint")
    if key_type not in SEED_TYPES and key_type not in ED25519_TYPES:
        raise _malformed(f"unsupported key type {key_type[:64]!r}")
    if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", b64):
        raise _malformed("bad base64 key data")
    try:
        blob = base64.b64decode(b64, validate=True)
    except binascii.Error:
        raise _malformed("bad base64 key data") from None
    _check_blob(key_type, blob)
    return f"{key_type} {base64.b64encode(blob).decode()}", key_type


def md5_fingerprint(public_key: str, colons: bool) -> str:
    """RFC 4716 MD5 of the key blob, as hex (with colons as `ssh-keygen -E md5` shows it)."""
    digest = hashlib.md5(base64.b64decode(public_key.split()[1])).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2)) if colons else digest


def colon_hex(digest: str) -> str:
    """'a1b2...' -> 'a1:b2:...'."""
    return bytes.fromhex(digest).hex(":")


def normalize_fingerprint(value: str) -> str:
    """A fingerprint filter in either spelling -> plain lower-case hex."""
    v = value.strip().lower()
    if v.startswith("md5:"):
        v = v[4:]
    return v.replace(":", "")


def generate_rsa() -> tuple[str, str]:
    """A fresh RSA-2048 key: (private key PEM, 'ssh-rsa base64')."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return pem, pub

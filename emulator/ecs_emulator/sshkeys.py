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
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

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
# Not on the published list; both the key and its certificate follow the --ed25519 switch.
ED25519_TYPES = frozenset({"ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com"})
MAX_PUBLIC_KEY_BODY = 16 * 1024
RSA_MIN_BITS = 1024

_CURVES = {"ecdsa-sha2-nistp256": (b"nistp256", ec.SECP256R1(), 32),
           "ecdsa-sha2-nistp384": (b"nistp384", ec.SECP384R1(), 48),
           "ecdsa-sha2-nistp521": (b"nistp521", ec.SECP521R1(), 66)}
# No key line or RFC 4716 block holds a control character other than tab, CR and LF; a NUL
# would end the line early for any C program that reads it from authorized_keys.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _malformed(why: str) -> ApiError:
    return ApiError("InvalidPublicKeyBody.Malformed", f"The specified public key body is not valid: {why}", 400)


class _Reader:
    """Reads the SSH wire types (RFC 4251 section 5) off a blob; any shortfall is malformed."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, size: int) -> bytes:
        if size > len(self.data) - self.pos:
            raise _malformed("truncated key blob")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def uint32(self) -> int:
        return struct.unpack(">I", self._take(4))[0]

    def uint64(self) -> int:
        return struct.unpack(">Q", self._take(8))[0]

    def byte(self) -> int:
        return self._take(1)[0]

    def string(self) -> bytes:
        return self._take(self.uint32())

    def name(self) -> str:
        """A string that names an algorithm or curve: printable ASCII."""
        raw = self.string()
        if not raw or not all(0x21 <= b < 0x7f for b in raw):
            raise _malformed("bad name inside the key blob")
        return raw.decode("ascii")

    def positive_mpint(self) -> int:
        """A key parameter. RFC 4251 forbids needless leading zero bytes; refusing them keeps one
        encoding per key, so the fingerprint of the blob is the one ssh-keygen computes."""
        raw = self.string()
        if not raw or raw[0] & 0x80 or (raw[0] == 0 and (len(raw) == 1 or not raw[1] & 0x80)):
            raise _malformed("bad integer in the key blob (zero, negative or not minimally encoded)")
        return int.from_bytes(raw, "big")

    def done(self) -> bool:
        return self.pos == len(self.data)

    def end(self) -> None:
        if not self.done():
            raise _malformed("trailing bytes after the key data")


# --- the public key fields of each plain type -------------------------------------------------

def _rsa_fields(reader: _Reader, _key_type: str) -> None:
    reader.positive_mpint()  # e
    if reader.positive_mpint().bit_length() < RSA_MIN_BITS:
        raise _malformed(f"RSA keys need at least {RSA_MIN_BITS} bits")


def _dsa_fields(reader: _Reader, _key_type: str) -> None:
    for _part in ("p", "q", "g", "y"):
        reader.positive_mpint()


def _ecdsa_fields(reader: _Reader, key_type: str) -> None:
    curve_name, curve, size = _CURVES[key_type.removeprefix("sk-").removesuffix("@openssh.com")]
    if reader.string() != curve_name:
        raise _malformed("bad ECDSA key: the curve does not match the key type")
    point = reader.string()
    # OpenSSH writes and reads only uncompressed points (0x04 || x || y).
    if len(point) != 1 + 2 * size or point[0] != 4:
        raise _malformed("bad ECDSA key: not an uncompressed point of its curve")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    except ValueError:
        raise _malformed("bad ECDSA key: the point is not on its curve") from None


def _ed25519_fields(reader: _Reader, _key_type: str) -> None:
    if len(reader.string()) != 32:
        raise _malformed("bad Ed25519 key")


def _security_key_fields(read: Callable[[_Reader, str], None]) -> Callable[[_Reader, str], None]:
    """FIDO keys (PROTOCOL.u2f): the plain fields, then the application string."""
    def fields(reader: _Reader, key_type: str) -> None:
        read(reader, key_type)
        reader.string()
    return fields


_PLAIN_FIELDS: dict[str, Callable[[_Reader, str], None]] = {
    "ssh-rsa": _rsa_fields,
    "ssh-dss": _dsa_fields,
    "ecdsa-sha2-nistp256": _ecdsa_fields,
    "ecdsa-sha2-nistp384": _ecdsa_fields,
    "ecdsa-sha2-nistp521": _ecdsa_fields,
    "ssh-ed25519": _ed25519_fields,
    # Only ever met as a certificate's signature key: they are not importable types.
    "sk-ecdsa-sha2-nistp256@openssh.com": _security_key_fields(_ecdsa_fields),
    "sk-ssh-ed25519@openssh.com": _security_key_fields(_ed25519_fields),
}

# Certificate type -> (the plain type it certifies, layout version). v01 is OpenSSH's
# PROTOCOL.certkeys; v00 is the layout OpenSSH 5.4-6.x wrote (no serial, no extensions, the nonce
# near the end instead of first).
_CERT_TYPES: dict[str, tuple[str, int]] = {
    "ssh-rsa-cert-v01@openssh.com": ("ssh-rsa", 1),
    "ssh-dss-cert-v01@openssh.com": ("ssh-dss", 1),
    "ecdsa-sha2-nistp256-cert-v01@openssh.com": ("ecdsa-sha2-nistp256", 1),
    "ecdsa-sha2-nistp384-cert-v01@openssh.com": ("ecdsa-sha2-nistp384", 1),
    "ecdsa-sha2-nistp521-cert-v01@openssh.com": ("ecdsa-sha2-nistp521", 1),
    "ssh-ed25519-cert-v01@openssh.com": ("ssh-ed25519", 1),
    "ssh-rsa-cert-v00@openssh.com": ("ssh-rsa", 0),
    "ssh-dss-cert-v00@openssh.com": ("ssh-dss", 0),
}
_CERT_USER, _CERT_HOST = 1, 2


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _c_string(data: bytes, what: str) -> None:
    # OpenSSH reads key ids, principals and option names as C strings: a NUL inside is refused.
    if b"\0" in data:
        raise _malformed(f"certificate {what} contains a NUL byte")


def _options(data: bytes, what: str) -> None:
    """Critical options / extensions: a sequence of (string name, string data)."""
    reader = _Reader(data)
    while not reader.done():
        _c_string(reader.string(), what)
        reader.string()


def _principals(data: bytes) -> None:
    reader = _Reader(data)
    while not reader.done():
        _c_string(reader.string(), "principal")


def _signature_key(blob: bytes) -> str:
    """The CA key: any plain key OpenSSH can sign with; a certificate cannot sign one."""
    reader = _Reader(blob)
    key_type = reader.name()
    if key_type in _CERT_TYPES:
        raise _malformed("the certificate is signed by a certificate")
    if key_type not in _PLAIN_FIELDS:
        raise _malformed("unsupported certificate signature key type")
    _PLAIN_FIELDS[key_type](reader, key_type)
    reader.end()
    return key_type


def _signature(blob: bytes, ca_type: str) -> None:
    """string format, string signature; FIDO signatures add flags and a counter (PROTOCOL.u2f).
    The signature is not verified: a key pair holds no secret it could protect."""
    reader = _Reader(blob)
    reader.name()
    if not reader.string():
        raise _malformed("empty certificate signature")
    if ca_type.startswith("sk-"):
        reader.byte()
        reader.uint32()
    reader.end()


def _certificate_fields(reader: _Reader, version: int) -> None:
    """Everything after the certified key's fields, in the order of PROTOCOL.certkeys."""
    if version == 1:
        reader.uint64()  # serial
    if reader.uint32() not in (_CERT_USER, _CERT_HOST):
        raise _malformed("certificate type is neither user (1) nor host (2)")
    _c_string(reader.string(), "key id")
    _principals(reader.string())
    reader.uint64()  # valid after
    reader.uint64()  # valid before
    _options(reader.string(), "critical option")
    if version == 1:
        _options(reader.string(), "extension")
    else:
        reader.string()  # v00: the nonce
    reader.string()  # reserved
    ca_type = _signature_key(reader.string())
    _signature(reader.string(), ca_type)


def certified_key_blob(blob: bytes) -> tuple[str, bytes]:
    """Check a key blob of an importable type -> (its type, the blob of the plain key it holds).

    For a plain key that is the blob itself; for a certificate, the certified key alone, which
    is what ssh-keygen -l fingerprints.
    """
    reader = _Reader(blob)
    key_type = reader.name()
    if key_type not in SEED_TYPES and key_type not in ED25519_TYPES:
        raise _malformed("unsupported key type inside the key blob")
    if key_type in _CERT_TYPES:
        plain_type, version = _CERT_TYPES[key_type]
        if version == 1:
            reader.string()  # nonce
        start = reader.pos
        _PLAIN_FIELDS[plain_type](reader, plain_type)
        plain = _ssh_string(plain_type.encode()) + blob[start:reader.pos]
        _certificate_fields(reader, version)
    else:
        _PLAIN_FIELDS[key_type](reader, key_type)
        plain = blob
    reader.end()
    return key_type, plain


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


def _decode(b64: str) -> bytes:
    """Base64 as OpenSSH reads it: whole quantums, padding only at the end, no stray bits (the
    re-encoding must give the text back)."""
    if not _BASE64.fullmatch(b64):
        raise _malformed("bad base64 key data")
    try:
        blob = base64.b64decode(b64, validate=True)
    except binascii.Error:
        raise _malformed("bad base64 key data") from None
    if base64.b64encode(blob).decode() != b64:
        raise _malformed("bad base64 key data")
    return blob


def _split_body(text: str) -> tuple[str | None, bytes]:
    """-> (the type the line declares, or None for an RFC 4716 block; the key blob)."""
    if text.startswith("---- BEGIN SSH2 PUBLIC KEY ----"):
        return None, _decode(_from_rfc4716(text))
    fields = text.split()
    # An authorized_keys line may start with options; the import body may not.
    if len(fields) < 2 or "\n" in text:
        raise _malformed("expected one line '<type> <base64> [comment]'")
    return fields[0], _decode(fields[1])


def _check_type_allowed(key_type: str, accept_ed25519: bool) -> None:
    if key_type in ED25519_TYPES and not accept_ed25519:
        raise _malformed(f"key type {key_type} is not accepted by this endpoint")
    if key_type not in SEED_TYPES and key_type not in ED25519_TYPES:
        raise _malformed(f"unsupported key type {key_type[:64]!r}")


def normalize_public_key(body: str, accept_ed25519: bool) -> tuple[str, str]:
    """PublicKeyBody -> ('type base64', key_type). Refuses private keys and anything malformed.

    The comment is dropped: the stored key is the type and the blob, which is what identifies it.
    """
    if len(body) > MAX_PUBLIC_KEY_BODY:
        raise _malformed("too long")
    if "PRIVATE KEY" in body:
        # Never echo the body: it is somebody's secret.
        raise _malformed("this is a private key; only a public key may be imported")
    if _CONTROL.search(body):
        raise _malformed("control characters in the public key body")
    declared, blob = _split_body(body.strip())
    if declared is not None:
        # Checked before the blob, so a type off the list is named as such.
        _check_type_allowed(declared, accept_ed25519)
    key_type, _plain = certified_key_blob(blob)
    if declared is not None and declared != key_type:
        raise _malformed("the key type does not match the key data")
    _check_type_allowed(key_type, accept_ed25519)
    return f"{key_type} {base64.b64encode(blob).decode()}", key_type


def md5_fingerprint(public_key: str, colons: bool) -> str:
    """RFC 4716 MD5 of the key, as hex (with colons as `ssh-keygen -l -E md5` shows it).

    A certificate is fingerprinted by the key it certifies, as ssh-keygen -l does; a plain key's
    blob is that key already.
    """
    _key_type, plain = certified_key_blob(base64.b64decode(public_key.split()[1]))
    digest = hashlib.md5(plain).hexdigest()
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

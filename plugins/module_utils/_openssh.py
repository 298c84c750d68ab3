# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: OpenSSH public keys.

Parsing, validation, fingerprints and normalisation of public keys, with the Python standard
library only: this file runs on managed hosts and on the controller alike. Private keys (reading
them, making them) are ``_private_keys``, controller only; spotting private key material so that
it is never shown is ``_key_material``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass, field

from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import looks_like_private_key

__all__ = [
    'SSHKeyError',
    'PublicKey',
    'CertificateInfo',
    'parse_public_key',
    'public_key_from_blob',
    'looks_like_private_key',
    'fingerprint_blob',
    'FINGERPRINT_ALGORITHMS',
    'MAX_LINE_LENGTH',
]


class SSHKeyError(SshKeysError):
    """The one exception raised for bad key input. Its message never contains key text."""


# A public key line longer than this is refused before any parsing. OpenSSH caps a key blob at
# 16 KiB (SSH_MAX_PUBKEY_BYTES); its base64 is about 22 KiB, and a comment gets some room too.
MAX_LINE_LENGTH = 32 * 1024
MAX_BLOB_LENGTH = 16 * 1024
# OpenSSH refuses RSA moduli outside this range; so do we.
RSA_MIN_BITS = 1024
RSA_MAX_BITS = 16384

FINGERPRINT_ALGORITHMS = ('md5', 'sha1', 'sha256', 'sha384', 'sha512')

# The NIST curves, with what is needed to check that a point lies on the curve
# (y^2 = x^3 - 3x + b mod p): field prime p, coefficient b and the coordinate length.
_CURVES = {
    'nistp256': (
        2 ** 256 - 2 ** 224 + 2 ** 192 + 2 ** 96 - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        32, 256,
    ),
    'nistp384': (
        2 ** 384 - 2 ** 128 - 2 ** 96 + 2 ** 32 - 1,
        int('B3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875A'
            'C656398D8A2ED19D2A85C8EDD3EC2AEF', 16),
        48, 384,
    ),
    'nistp521': (
        2 ** 521 - 1,
        int('0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF1'
            '09E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00', 16),
        66, 521,
    ),
}

# Plain key types: type name -> (family as ssh-keygen -l prints it, layout of the key fields).
PLAIN_TYPES = {
    'ssh-rsa': ('RSA', 'rsa'),
    'ssh-dss': ('DSA', 'dsa'),
    'ecdsa-sha2-nistp256': ('ECDSA', 'ecdsa'),
    'ecdsa-sha2-nistp384': ('ECDSA', 'ecdsa'),
    'ecdsa-sha2-nistp521': ('ECDSA', 'ecdsa'),
    'ssh-ed25519': ('ED25519', 'ed25519'),
    'sk-ecdsa-sha2-nistp256@openssh.com': ('ECDSA-SK', 'sk-ecdsa'),
    'sk-ssh-ed25519@openssh.com': ('ED25519-SK', 'sk-ed25519'),
}

# Certificate type name -> the plain type it certifies.
CERT_TYPES = {
    'ssh-rsa-cert-v01@openssh.com': 'ssh-rsa',
    'ssh-dss-cert-v01@openssh.com': 'ssh-dss',
    'ecdsa-sha2-nistp256-cert-v01@openssh.com': 'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384-cert-v01@openssh.com': 'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521-cert-v01@openssh.com': 'ecdsa-sha2-nistp521',
    'ssh-ed25519-cert-v01@openssh.com': 'ssh-ed25519',
    'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com': 'sk-ecdsa-sha2-nistp256@openssh.com',
    'sk-ssh-ed25519-cert-v01@openssh.com': 'sk-ssh-ed25519@openssh.com',
}

# The v00 certificates were dropped by OpenSSH 7.x; they are named so the error can say so.
_LEGACY_CERT_TYPES = ('ssh-rsa-cert-v00@openssh.com', 'ssh-dss-cert-v00@openssh.com')

KEY_TYPES = tuple(PLAIN_TYPES) + tuple(CERT_TYPES)

# Only names that look like an SSH algorithm name (lower case, short) are ever quoted back in an
# error message: base64 key data has upper case letters, so a pasted key cannot pass for one.
_SAFE_NAME = re.compile(r'[a-z][a-z0-9@._-]{0,47}')  # whole value: fullmatch
# Tab is a field separator in OpenSSH; every other control character (C0, DEL, C1) and the
# Unicode line separators would let one 'line' render as several.
CONTROL_CHARS = re.compile('[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]')
_BASE64 = re.compile(r'[A-Za-z0-9+/]+={0,2}')  # whole value: fullmatch


def safe_name(value: object) -> str:
    """Quote a type name for an error message only when it cannot be anything else."""
    if isinstance(value, bytes):
        try:
            value = value.decode('ascii')
        except UnicodeDecodeError:
            return '(not printable)'
    if isinstance(value, str) and _SAFE_NAME.fullmatch(value):
        return repr(value)
    return '(not printable)'


# --------------------------------------------------------------------------------------------
# Wire format reader (RFC 4251 section 5)
# --------------------------------------------------------------------------------------------

class Reader:
    """Reads SSH wire-format fields from a bytes buffer; every overrun is an SSHKeyError."""

    def __init__(self, data: bytes, what: str = 'key blob') -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def _take(self, size: int, name: str) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise SSHKeyError(f'{self.what} is truncated (in field {name})')
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def uint32(self, name: str) -> int:
        return struct.unpack('>I', self._take(4, name))[0]

    def uint64(self, name: str) -> int:
        return struct.unpack('>Q', self._take(8, name))[0]

    def byte(self, name: str) -> int:
        return self._take(1, name)[0]

    def string(self, name: str) -> bytes:
        return self._take(self.uint32(name), name)

    def text(self, name: str) -> str:
        raw = self.string(name)
        try:
            return raw.decode('utf-8')
        except UnicodeDecodeError:
            raise SSHKeyError(f'{self.what} field {name} is not valid UTF-8') from None

    def mpint(self, name: str) -> int:
        raw = self.string(name)
        if raw and raw[0] & 0x80:
            raise SSHKeyError(f'{self.what} field {name} is negative')
        return int.from_bytes(raw, 'big')

    def rest(self) -> bytes:
        chunk = self.data[self.pos:]
        self.pos = len(self.data)
        return chunk

    def done(self) -> bool:
        return self.pos == len(self.data)

    def expect_end(self) -> None:
        if not self.done():
            raise SSHKeyError(f'{self.what} has {len(self.data) - self.pos} bytes of trailing data')


def ssh_string(data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + data


# --------------------------------------------------------------------------------------------
# Key field validation, per layout
# --------------------------------------------------------------------------------------------

def _read_key_fields(reader: Reader, key_type: str, layout: str) -> dict:
    """Read and check the type-specific fields of a key; returns bits, curve, application."""
    if layout == 'rsa':
        e = reader.mpint('e')
        n = reader.mpint('n')
        if e < 3 or e % 2 == 0:
            raise SSHKeyError('RSA public exponent is invalid')
        bits = n.bit_length()
        if n % 2 == 0 or bits < RSA_MIN_BITS:
            raise SSHKeyError(f'RSA modulus is invalid or shorter than {RSA_MIN_BITS} bits')
        if bits > RSA_MAX_BITS:
            raise SSHKeyError(f'RSA modulus is longer than {RSA_MAX_BITS} bits')
        return {'bits': bits}
    if layout == 'dsa':
        p, q, g, y = (reader.mpint(name) for name in ('p', 'q', 'g', 'y'))
        if p < 3 or p % 2 == 0 or not 1 < q < p or not 1 < g < p or not 1 < y < p:
            raise SSHKeyError('DSA parameters are invalid')
        return {'bits': p.bit_length()}
    if layout in ('ecdsa', 'sk-ecdsa'):
        curve = reader.text('curve')
        expected = key_type.replace('sk-', '').split('@')[0].rsplit('-', 1)[-1]
        if curve != expected:
            raise SSHKeyError(f'ECDSA curve {safe_name(curve)} does not match key type {key_type}')
        _check_ec_point(reader.string('Q'), curve)
        result = {'bits': _CURVES[curve][3], 'curve': curve}
        if layout == 'sk-ecdsa':
            result['application'] = _read_application(reader)
        return result
    # ed25519 and sk-ed25519
    if len(reader.string('pk')) != 32:
        raise SSHKeyError('Ed25519 public key is not 32 bytes long')
    result = {'bits': 256}
    if layout == 'sk-ed25519':
        result['application'] = _read_application(reader)
    return result


def _read_application(reader: Reader) -> str:
    application = reader.text('application')
    if not application:
        raise SSHKeyError('security key application string is empty')
    return application


def _check_ec_point(point: bytes, curve: str) -> None:
    prime, b, size, _bits = _CURVES[curve]
    if len(point) != 1 + 2 * size or point[0] != 4:
        raise SSHKeyError(f'ECDSA point is not an uncompressed {curve} point')
    x = int.from_bytes(point[1:1 + size], 'big')
    y = int.from_bytes(point[1 + size:], 'big')
    if x >= prime or y >= prime or (y * y - (x * x * x - 3 * x + b)) % prime != 0:
        raise SSHKeyError(f'ECDSA point is not on curve {curve}')


# --------------------------------------------------------------------------------------------
# Public keys
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CertificateInfo:
    """The parts of an OpenSSH certificate a caller may want to show or compare."""

    serial: int
    cert_type: str              # 'user' or 'host'
    key_id: str
    principals: tuple
    valid_after: int
    valid_before: int
    signature_key: 'PublicKey'

    @property
    def ca_fingerprint(self) -> str:
        return self.signature_key.fingerprint()


@dataclass(frozen=True)
class _Parsed:
    family: str
    bits: int
    curve: str | None
    application: str | None
    plain_blob: bytes
    certificate: CertificateInfo | None


def _parse_blob(blob: bytes, depth: int = 0) -> tuple[str, _Parsed]:
    if len(blob) > MAX_BLOB_LENGTH:
        raise SSHKeyError(f'key blob is longer than {MAX_BLOB_LENGTH} bytes')
    reader = Reader(blob)
    raw_type = reader.string('type')
    try:
        key_type = raw_type.decode('ascii')
    except UnicodeDecodeError:
        raise SSHKeyError('key blob does not start with a key type name') from None
    if key_type in PLAIN_TYPES:
        family, layout = PLAIN_TYPES[key_type]
        fields = _read_key_fields(reader, key_type, layout)
        reader.expect_end()
        return key_type, _Parsed(family, fields['bits'], fields.get('curve'), fields.get('application'), blob, None)
    if key_type in CERT_TYPES:
        if depth:
            raise SSHKeyError('certificate is signed by a certificate, which OpenSSH does not allow')
        plain_type = CERT_TYPES[key_type]
        family, layout = PLAIN_TYPES[plain_type]
        reader.string('nonce')
        start = reader.pos
        fields = _read_key_fields(reader, plain_type, layout)
        # ssh-keygen fingerprints a certificate by the key it certifies: rebuild that plain blob.
        plain_blob = ssh_string(plain_type.encode('ascii')) + blob[start:reader.pos]
        certificate = _read_certificate_fields(reader, depth)
        reader.expect_end()
        return key_type, _Parsed(family + '-CERT', fields['bits'], fields.get('curve'),
                                 fields.get('application'), plain_blob, certificate)
    if key_type in _LEGACY_CERT_TYPES:
        raise SSHKeyError(f'key type {key_type} (legacy v00 certificate) is not supported by OpenSSH any more')
    raise SSHKeyError(f'unsupported key type {safe_name(key_type)} inside the key blob')


def _read_certificate_fields(reader: Reader, depth: int) -> CertificateInfo:
    serial = reader.uint64('serial')
    cert_type = reader.uint32('cert type')
    if cert_type not in (1, 2):
        raise SSHKeyError('certificate type is neither user (1) nor host (2)')
    key_id = reader.text('key id')
    principals_reader = Reader(reader.string('valid principals'), 'certificate principals')
    principals = []
    while not principals_reader.done():
        principals.append(principals_reader.text('principal'))
    valid_after = reader.uint64('valid after')
    valid_before = reader.uint64('valid before')
    if valid_after > valid_before:
        raise SSHKeyError('certificate validity ends before it starts')
    for name in ('critical options', 'extensions'):
        options = Reader(reader.string(name), f'certificate {name}')
        while not options.done():
            options.string('option name')
            options.string('option data')
    reader.string('reserved')
    try:
        ca_type, ca = _parse_blob(reader.string('signature key'), depth + 1)
    except SSHKeyError as exc:
        raise SSHKeyError(f'certificate signature key is invalid: {exc}') from None
    signature = Reader(reader.string('signature'), 'certificate signature')
    signature.string('signature type')
    signature.string('signature blob')
    if ca.family.endswith('-SK'):
        # Security-key signatures carry flags and a counter after the signature itself.
        signature.byte('flags')
        signature.uint32('counter')
    signature.expect_end()
    return CertificateInfo(
        serial=serial,
        cert_type='user' if cert_type == 1 else 'host',
        key_id=key_id,
        principals=tuple(principals),
        valid_after=valid_after,
        valid_before=valid_before,
        signature_key=PublicKey(ca_type, ca.plain_blob),
    )


def fingerprint_blob(blob: bytes, algorithm: str = 'sha256') -> str:
    """Fingerprint of the given blob as ssh-keygen -l -E <algorithm> prints it.

    The bytes are hashed as given: for a certificate, ssh-keygen prints the fingerprint of the
    certified key, which ``PublicKey.fingerprint`` takes care of.
    """
    name = str(algorithm).lower()
    if name not in FINGERPRINT_ALGORITHMS:
        raise SSHKeyError(
            f'unsupported fingerprint algorithm {safe_name(algorithm)}; use one of {", ".join(FINGERPRINT_ALGORITHMS)}'
        )
    if name == 'md5':
        # usedforsecurity=False keeps MD5 available on FIPS systems: it only names a key here.
        digest = hashlib.new('md5', bytes(blob), usedforsecurity=False).hexdigest()
        return 'MD5:' + ':'.join(digest[i:i + 2] for i in range(0, len(digest), 2))
    digest = hashlib.new(name, bytes(blob)).digest()
    return f'{name.upper()}:' + base64.b64encode(digest).decode('ascii').rstrip('=')


@dataclass(frozen=True)
class PublicKey:
    """A validated OpenSSH public key (or certificate). Immutable; build it with parse_public_key.

    Constructing it directly validates the blob as well, so an instance is always consistent.
    Equality covers type, blob and comment; compare ``identity()`` to ignore the comment.
    """

    key_type: str
    blob: bytes = field(repr=False)
    comment: str = ''
    bits: int | None = field(init=False, compare=False)
    curve: str | None = field(init=False, compare=False)
    family: str = field(init=False, compare=False)
    is_certificate: bool = field(init=False, compare=False)
    application: str | None = field(init=False, compare=False)
    plain_blob: bytes = field(init=False, compare=False, repr=False)
    certificate: CertificateInfo | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.blob, bytes):
            raise SSHKeyError('key blob must be bytes')
        if not isinstance(self.comment, str) or CONTROL_CHARS.search(self.comment):
            raise SSHKeyError('key comment contains control characters')
        inner_type, parsed = _parse_blob(self.blob)
        if inner_type != self.key_type:
            raise SSHKeyError(
                f'declared key type {safe_name(self.key_type)} does not match the type inside the key blob ({inner_type})'
            )
        setattr_ = object.__setattr__
        setattr_(self, 'bits', parsed.bits)
        setattr_(self, 'curve', parsed.curve)
        setattr_(self, 'family', parsed.family)
        setattr_(self, 'is_certificate', parsed.certificate is not None)
        setattr_(self, 'application', parsed.application)
        setattr_(self, 'plain_blob', parsed.plain_blob)
        setattr_(self, 'certificate', parsed.certificate)

    @property
    def base64(self) -> str:
        return base64.b64encode(self.blob).decode('ascii')

    def fingerprint(self, algorithm: str = 'sha256') -> str:
        """As ssh-keygen -l -E <algorithm> prints it (a certificate shows its certified key's)."""
        return fingerprint_blob(self.plain_blob, algorithm)

    def identity(self) -> str:
        """'type base64': the form to compare keys by; comment and whitespace do not count."""
        return f'{self.key_type} {self.base64}'

    def line(self, comment: str | None = None) -> str:
        """'type base64 comment'; the comment defaults to the key's own and is left out when empty."""
        text = self.comment if comment is None else comment
        if CONTROL_CHARS.search(text):
            raise SSHKeyError('key comment contains control characters')
        text = text.strip()
        return f'{self.identity()} {text}' if text else self.identity()

    def public_key(self) -> PublicKey:
        """The certified plain key of a certificate, or the key itself."""
        if self.certificate is None:
            return self
        plain_type = CERT_TYPES[self.key_type]
        return PublicKey(plain_type, self.plain_blob, self.comment)

    def __str__(self) -> str:
        return self.line()


def public_key_from_blob(blob: bytes, comment: str = '') -> PublicKey:
    """Validate a raw key blob; the type is the one named inside it."""
    if not isinstance(blob, (bytes, bytearray)):
        raise SSHKeyError('key blob must be bytes')
    blob = bytes(blob)
    key_type, _parsed = _parse_blob(blob)
    return PublicKey(key_type, blob, comment)


def parse_public_key(text: str | bytes) -> PublicKey:
    """Parse and validate one public key line 'type base64 [comment]' (no authorized_keys options)."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > MAX_LINE_LENGTH:
            raise SSHKeyError(f'public key is longer than {MAX_LINE_LENGTH} characters')
        try:
            text = bytes(text).decode('utf-8')
        except UnicodeDecodeError:
            raise SSHKeyError('public key is not valid UTF-8') from None
    if not isinstance(text, str):
        raise SSHKeyError(f'public key must be a string, not {type(text).__name__}')
    # Private key material first: it must be refused with a message of its own, whatever its size.
    if looks_like_private_key(text):
        raise SSHKeyError('a private key was given where a public key is expected; refusing to use it')
    if len(text) > MAX_LINE_LENGTH:
        raise SSHKeyError(f'public key is longer than {MAX_LINE_LENGTH} characters')
    line = text.strip()
    if not line:
        raise SSHKeyError('public key is empty')
    if '\n' in line or '\r' in line:
        raise SSHKeyError('public key spans more than one line')
    if CONTROL_CHARS.search(line):
        raise SSHKeyError('public key contains control characters')
    parts = line.split(None, 2)
    if len(parts) < 2:
        raise SSHKeyError('public key needs a key type and base64 key data')
    key_type, data = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) == 3 else ''
    if key_type not in PLAIN_TYPES and key_type not in CERT_TYPES:
        if key_type in _LEGACY_CERT_TYPES:
            raise SSHKeyError(f'key type {key_type} (legacy v00 certificate) is not supported by OpenSSH any more')
        if any(token in PLAIN_TYPES or token in CERT_TYPES for token in line.split()[1:]):
            # authorized_keys options (or anything else) in front of the key.
            raise SSHKeyError(
                'public key does not start with a known key type (authorized_keys options are not accepted here)')
        if _SAFE_NAME.fullmatch(key_type):
            raise SSHKeyError(
                f'unsupported key type {safe_name(key_type)}; expected one of {", ".join(PLAIN_TYPES)} or their certificates'
            )
        raise SSHKeyError('public key does not start with a known key type')
    blob = _decode_base64(data)
    return PublicKey(key_type, blob, comment)


def _decode_base64(data: str) -> bytes:
    if not _BASE64.fullmatch(data) or len(data) % 4:
        raise SSHKeyError('public key data is not valid base64')
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise SSHKeyError('public key data is not valid base64') from None
    # OpenSSH refuses base64 whose unused trailing bits are set; keeping to the canonical form
    # also makes identity() a faithful comparison key.
    if base64.b64encode(blob).decode('ascii') != data:
        raise SSHKeyError('public key data is not canonical base64')
    return blob

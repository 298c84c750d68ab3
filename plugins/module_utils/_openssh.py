# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""OpenSSH key handling. Private to the sshkeys.ecs collection: no stability promise outside it.

Parsing, validation, fingerprints and normalisation of public keys use the Python standard
library only, because this file also runs on managed hosts. Deriving a public key from a
private key (``public_key_from_private``) runs on the controller and imports ``cryptography``
inside the function, so host-side importers never need it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass, field

__all__ = [
    'SSHKeyError',
    'PublicKey',
    'CertificateInfo',
    'parse_public_key',
    'public_key_from_blob',
    'public_key_from_private',
    'generate_private_key',
    'looks_like_private_key',
    'may_hold_key_material',
    'secret_values',
    'quote_input',
    'redact_key_material',
    'fingerprint_blob',
    'FINGERPRINT_ALGORITHMS',
    'MAX_LINE_LENGTH',
]


class SSHKeyError(ValueError):
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
_PLAIN_TYPES = {
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
_CERT_TYPES = {
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

KEY_TYPES = tuple(_PLAIN_TYPES) + tuple(_CERT_TYPES)

# Only names that look like an SSH algorithm name (lower case, short) are ever quoted back in an
# error message: base64 key data has upper case letters, so a pasted key cannot pass for one.
_SAFE_NAME = re.compile(r'[a-z][a-z0-9@._-]{0,47}')  # whole value: fullmatch
# Tab is a field separator in OpenSSH; every other control character (C0, DEL, C1) and the
# Unicode line separators would let one 'line' render as several.
_CONTROL = re.compile('[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]')
_BASE64 = re.compile(r'[A-Za-z0-9+/]+={0,2}')  # whole value: fullmatch

# Markers of private key material. Searched anywhere in the text, case-insensitively, so that a
# private key pasted into a public key field (with or without its armour) is refused.
_PRIVATE_MARKERS = re.compile(
    r'-----\s*BEGIN\s[A-Z0-9 ]*PRIVATE\s+KEY\s*-----'      # PEM: RSA/DSA/EC/OPENSSH/ENCRYPTED/PKCS#8
    r'|----\s*BEGIN\s+SSH2\s+ENCRYPTED\s+PRIVATE\s+KEY'      # ssh.com / SECSH private key
    r'|PuTTY-User-Key-File-\d'                               # PuTTY .ppk
    r'|b3BlbnNzaC1rZXktdjE'                                  # base64 of 'openssh-key-v1', unarmoured
    r'|^\s*-----BEGIN\s',                                    # a PEM block of any kind is not a public key line
    re.IGNORECASE | re.MULTILINE,
)


def _safe_name(value: object) -> str:
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

class _Reader:
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


def _ssh_string(data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + data


# --------------------------------------------------------------------------------------------
# Key field validation, per layout
# --------------------------------------------------------------------------------------------

def _read_key_fields(reader: _Reader, key_type: str, layout: str) -> dict:
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
            raise SSHKeyError(f'ECDSA curve {_safe_name(curve)} does not match key type {key_type}')
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


def _read_application(reader: _Reader) -> str:
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
    reader = _Reader(blob)
    raw_type = reader.string('type')
    try:
        key_type = raw_type.decode('ascii')
    except UnicodeDecodeError:
        raise SSHKeyError('key blob does not start with a key type name') from None
    if key_type in _PLAIN_TYPES:
        family, layout = _PLAIN_TYPES[key_type]
        fields = _read_key_fields(reader, key_type, layout)
        reader.expect_end()
        return key_type, _Parsed(family, fields['bits'], fields.get('curve'), fields.get('application'), blob, None)
    if key_type in _CERT_TYPES:
        if depth:
            raise SSHKeyError('certificate is signed by a certificate, which OpenSSH does not allow')
        plain_type = _CERT_TYPES[key_type]
        family, layout = _PLAIN_TYPES[plain_type]
        reader.string('nonce')
        start = reader.pos
        fields = _read_key_fields(reader, plain_type, layout)
        # ssh-keygen fingerprints a certificate by the key it certifies: rebuild that plain blob.
        plain_blob = _ssh_string(plain_type.encode('ascii')) + blob[start:reader.pos]
        certificate = _read_certificate_fields(reader, depth)
        reader.expect_end()
        return key_type, _Parsed(family + '-CERT', fields['bits'], fields.get('curve'),
                                 fields.get('application'), plain_blob, certificate)
    if key_type in _LEGACY_CERT_TYPES:
        raise SSHKeyError(f'key type {key_type} (legacy v00 certificate) is not supported by OpenSSH any more')
    raise SSHKeyError(f'unsupported key type {_safe_name(key_type)} inside the key blob')


def _read_certificate_fields(reader: _Reader, depth: int) -> CertificateInfo:
    serial = reader.uint64('serial')
    cert_type = reader.uint32('cert type')
    if cert_type not in (1, 2):
        raise SSHKeyError('certificate type is neither user (1) nor host (2)')
    key_id = reader.text('key id')
    principals_reader = _Reader(reader.string('valid principals'), 'certificate principals')
    principals = []
    while not principals_reader.done():
        principals.append(principals_reader.text('principal'))
    valid_after = reader.uint64('valid after')
    valid_before = reader.uint64('valid before')
    if valid_after > valid_before:
        raise SSHKeyError('certificate validity ends before it starts')
    for name in ('critical options', 'extensions'):
        options = _Reader(reader.string(name), f'certificate {name}')
        while not options.done():
            options.string('option name')
            options.string('option data')
    reader.string('reserved')
    try:
        ca_type, ca = _parse_blob(reader.string('signature key'), depth + 1)
    except SSHKeyError as exc:
        raise SSHKeyError(f'certificate signature key is invalid: {exc}') from None
    signature = _Reader(reader.string('signature'), 'certificate signature')
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
            f'unsupported fingerprint algorithm {_safe_name(algorithm)}; use one of {", ".join(FINGERPRINT_ALGORITHMS)}'
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
        if not isinstance(self.comment, str) or _CONTROL.search(self.comment):
            raise SSHKeyError('key comment contains control characters')
        inner_type, parsed = _parse_blob(self.blob)
        if inner_type != self.key_type:
            raise SSHKeyError(
                f'declared key type {_safe_name(self.key_type)} does not match the type inside the key blob ({inner_type})'
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
        if _CONTROL.search(text):
            raise SSHKeyError('key comment contains control characters')
        text = text.strip()
        return f'{self.identity()} {text}' if text else self.identity()

    def public_key(self) -> PublicKey:
        """The certified plain key of a certificate, or the key itself."""
        if self.certificate is None:
            return self
        plain_type = _CERT_TYPES[self.key_type]
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


def looks_like_private_key(text: str | bytes) -> bool:
    """True when the text holds private key material (PEM, OpenSSH, PKCS#8, PuTTY) anywhere,
    armoured or as the bare base64 of a private key's DER encoding."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode('latin-1')
    if not isinstance(text, str):
        return False
    if _PRIVATE_MARKERS.search(text) is not None:
        return True
    return any(_der_private_start(match.group(0)) for match in _RUN_START.finditer(text))


# A base64 run at a word boundary: where an unarmoured DER key would begin.
_RUN_START = re.compile(r'(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{20,}')


def _der_private_start(run: str) -> bool:
    """Whether a base64 run begins like the DER of a private key: a SEQUENCE whose first element
    is a one-byte INTEGER version 0 or 1 (PKCS#1 RSA and DSA, PKCS#8, SEC 1 EC keys). Public keys,
    certificates and SSH blobs begin otherwise."""
    try:
        head = base64.b64decode(run[:16])
    except (binascii.Error, ValueError):
        return False
    if len(head) < 5 or head[0] != 0x30:
        return False
    start = 2 + (head[1] & 0x7F if head[1] & 0x80 else 0)
    return head[start:start + 3] in (b'\x02\x01\x00', b'\x02\x01\x01')


def secret_values(value: object) -> list:
    """Every string inside value (lists and dicts walked) that holds private key material, with
    its lines and its base64 body joined: what a module adds to ``no_log_values`` so that no echo
    of its arguments (the -vvv invocation, syslog, an error) can show any part of it."""
    found: list = []
    if isinstance(value, dict):
        for item in value.values():
            found.extend(secret_values(item))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found.extend(secret_values(item))
    elif isinstance(value, str) and looks_like_private_key(value):
        lines = [line.strip() for line in value.splitlines() if line.strip()]
        found.append(value)
        found.extend(line for line in lines if len(line) >= 8)
        body = [line for line in lines if not line.startswith('-') and ':' not in line]
        if len(body) > 1:
            found.append(''.join(body))
    return found


# A base64 run this long could be a piece of a private key (a PEM body line has 64 characters, an
# OpenSSH one 70, and the last line of a block is shorter); words, ids and host names are shorter
# or broken up by '-', '.' and '@'.
_BASE64_RUN = re.compile(r'[A-Za-z0-9+/]{20,}={0,2}')
WITHHELD = '(withheld: it may hold private key material)'
# The other lines of a private key's armour (END lines, PuTTY's headers): no key material in
# themselves, but they mark the block, and a line of it is never worth showing.
_ARMOUR_WORDS = re.compile(r'PRIVATE\s+KEY|Private-(?:Lines|MAC|Hash):|PuTTY-User-Key-File|Encryption:\s*aes')


def may_hold_key_material(text: str | bytes) -> bool:
    """True when text holds private key armour, or a base64 run long enough to be part of a key.

    Broader than ``looks_like_private_key``: the body lines of a private key block carry no
    marker, so text meant for output (a comment, an option value, a line of a file) that holds
    any long base64 run is treated as if it were one.
    """
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode('latin-1')
    if not isinstance(text, str):
        return False
    return (looks_like_private_key(text) or _BASE64_RUN.search(text) is not None
            or _ARMOUR_WORDS.search(text) is not None)


def redact_key_material(text: str) -> str:
    """text with private key armour lines and long base64 runs replaced, for output only."""
    if looks_like_private_key(text) or _ARMOUR_WORDS.search(text):
        return WITHHELD
    return _BASE64_RUN.sub('(withheld)', text)


def quote_input(value: object, limit: int = 64) -> str:
    """A value a user gave, fit to be quoted in an error message.

    Short text that cannot be key material is quoted (control characters escaped by ``repr``);
    anything else is described by its type and length, never shown: an error that quoted a
    piece of a pasted private key would slip past the masking of the whole value.
    """
    if isinstance(value, bytes):
        return f'({len(value)} bytes)'
    if not isinstance(value, str):
        return f'(a {type(value).__name__})'
    if may_hold_key_material(value):
        return f'(a {len(value)}-character value that may hold key material, not shown)'
    if len(value) > limit:
        return f'(a {len(value)}-character value, not shown)'
    return repr(value)


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
    if _CONTROL.search(line):
        raise SSHKeyError('public key contains control characters')
    parts = line.split(None, 2)
    if len(parts) < 2:
        raise SSHKeyError('public key needs a key type and base64 key data')
    key_type, data = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) == 3 else ''
    if key_type not in _PLAIN_TYPES and key_type not in _CERT_TYPES:
        if key_type in _LEGACY_CERT_TYPES:
            raise SSHKeyError(f'key type {key_type} (legacy v00 certificate) is not supported by OpenSSH any more')
        if any(token in _PLAIN_TYPES or token in _CERT_TYPES for token in line.split()[1:]):
            # authorized_keys options (or anything else) in front of the key.
            raise SSHKeyError(
                'public key does not start with a known key type (authorized_keys options are not accepted here)')
        if _SAFE_NAME.fullmatch(key_type):
            raise SSHKeyError(
                f'unsupported key type {_safe_name(key_type)}; expected one of {", ".join(_PLAIN_TYPES)} or their certificates'
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


# --------------------------------------------------------------------------------------------
# Private keys: controller side. cryptography is imported inside the functions that need it,
# so importing this file on a managed host costs nothing.
# --------------------------------------------------------------------------------------------

_OPENSSH_MAGIC = b'openssh-key-v1\x00'
_PEM_BLOCK = re.compile(r'-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----', re.DOTALL)
# Cipher name -> (key length, IV length, mode) for OpenSSH-format private keys.
_OPENSSH_CIPHERS = {
    'aes128-ctr': (16, 16, 'ctr'),
    'aes192-ctr': (24, 16, 'ctr'),
    'aes256-ctr': (32, 16, 'ctr'),
    'aes128-cbc': (16, 16, 'cbc'),
    'aes192-cbc': (24, 16, 'cbc'),
    'aes256-cbc': (32, 16, 'cbc'),
    'aes128-gcm@openssh.com': (16, 12, 'gcm'),
    'aes256-gcm@openssh.com': (32, 12, 'gcm'),
}
# Private fields of each key type in an OpenSSH-format private section, as a sequence of
# 's' (string or mpint) and 'b' (one byte), so that the comment after them can be reached.
_OPENSSH_PRIVATE_LAYOUT = {
    'rsa': 'ssssss',
    'dsa': 'sssss',
    'ecdsa': 'sss',
    'ed25519': 'ss',
    'sk-ecdsa': 'sssbss',
    'sk-ed25519': 'ssbss',
}


def _to_bytes(value: str | bytes | None, what: str) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode('utf-8')
    raise SSHKeyError(f'{what} must be a string')


def public_key_from_private(data: str | bytes, passphrase: str | bytes | None = None) -> PublicKey:
    """The public key of a private key, as ``ssh-keygen -y`` (or ``puttygen -O public-openssh``) shows it.

    Accepts OpenSSH format, PEM (PKCS#1 RSA, DSA, EC), PKCS#8 (plain or encrypted), DER, and
    PuTTY .ppk versions 2 and 3, encrypted or not. The comment is the one the file stores
    (OpenSSH and PuTTY formats), otherwise empty. A wrong or missing passphrase raises
    SSHKeyError; nothing of the key ever appears in a message.
    """
    try:
        return _public_key_from_private(data, passphrase)
    except ImportError as exc:
        # Only OpenSSH-format and unencrypted PuTTY keys are read without cryptography.
        raise SSHKeyError(f'reading this private key needs the Python package {exc.name or "cryptography"} '
                          'on the controller') from None


def _public_key_from_private(data: str | bytes, passphrase: str | bytes | None) -> PublicKey:
    password = _to_bytes(passphrase, 'passphrase') or None
    raw = _to_bytes(data, 'private key')
    if not raw or not raw.strip():
        raise SSHKeyError('private key is empty')
    if len(raw) > 1024 * 1024:
        raise SSHKeyError('private key is larger than 1 MiB')
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError:
        text = None
    if text is None:
        return _from_der(raw, password)
    stripped = text.lstrip()
    if stripped.startswith('PuTTY-User-Key-File-'):
        return _from_putty(stripped, password)
    match = _PEM_BLOCK.search(text)
    if match is None:
        if re.match(r'^\s*(ssh-|ecdsa-|sk-)', text):
            raise SSHKeyError('this is a public key, not a private key')
        raise SSHKeyError('private key format not recognised (expected OpenSSH, PEM, PKCS#8 or PuTTY .ppk)')
    if match.group(1) == 'OPENSSH PRIVATE KEY':
        try:
            body = base64.b64decode(''.join(match.group(2).split()), validate=True)
        except (binascii.Error, ValueError):
            raise SSHKeyError('OpenSSH private key is not valid base64') from None
        return _from_openssh(body, password)
    return _from_pem(match.group(0).encode('ascii', 'replace'), password)


def _from_openssh(body: bytes, password: bytes | None) -> PublicKey:
    if not body.startswith(_OPENSSH_MAGIC):
        raise SSHKeyError('OpenSSH private key has no openssh-key-v1 header')
    reader = _Reader(body[len(_OPENSSH_MAGIC):], 'OpenSSH private key')
    cipher = reader.text('cipher name')
    kdf = reader.text('kdf name')
    kdf_options = reader.string('kdf options')
    if reader.uint32('number of keys') != 1:
        raise SSHKeyError('OpenSSH private key files with more than one key are not supported')
    public_blob = reader.string('public key')
    encrypted = reader.string('private section')
    tail = reader.rest()
    if cipher == 'none':
        if kdf != 'none':
            raise SSHKeyError('OpenSSH private key is inconsistent (kdf without cipher)')
        private = encrypted
    else:
        if password is None:
            raise SSHKeyError('private key is encrypted: a passphrase is needed')
        private = _openssh_decrypt(cipher, kdf, kdf_options, password, encrypted, tail)
    section = _Reader(private, 'OpenSSH private key')
    if section.uint32('check') != section.uint32('check'):
        if cipher == 'none':
            raise SSHKeyError('OpenSSH private key is corrupt (check values differ)')
        raise SSHKeyError('wrong passphrase for the private key (or the key is corrupt)')
    public = public_key_from_blob(public_blob)
    private_type = section.text('key type')
    if private_type != public.key_type:
        raise SSHKeyError('OpenSSH private key is inconsistent (public and private key types differ)')
    if public.is_certificate:
        raise SSHKeyError('OpenSSH private keys that embed a certificate are not supported')
    layout = _PLAIN_TYPES[public.key_type][1]
    for kind in _OPENSSH_PRIVATE_LAYOUT[layout]:
        if kind == 's':
            section.string('private key field')
        else:
            section.byte('private key flags')
    comment = section.text('comment')
    # What is left is padding 1, 2, 3, ... up to the cipher block size.
    padding = section.rest()
    if padding != bytes(range(1, len(padding) + 1)):
        raise SSHKeyError('OpenSSH private key is corrupt (bad padding)')
    if _CONTROL.search(comment):
        comment = ''
    return PublicKey(public.key_type, public.blob, comment.strip())


def _openssh_decrypt(cipher: str, kdf: str, kdf_options: bytes, password: bytes,
                     encrypted: bytes, tail: bytes) -> bytes:
    if cipher not in _OPENSSH_CIPHERS:
        raise SSHKeyError(f'OpenSSH private key cipher {_safe_name(cipher)} is not supported')
    if kdf != 'bcrypt':
        raise SSHKeyError(f'OpenSSH private key kdf {_safe_name(kdf)} is not supported')
    options = _Reader(kdf_options, 'OpenSSH private key kdf options')
    salt = options.string('salt')
    rounds = options.uint32('rounds')
    options.expect_end()
    try:
        import bcrypt
    except ImportError:
        raise SSHKeyError(
            'encrypted OpenSSH-format private keys need the Python package bcrypt on the controller'
        ) from None
    key_len, iv_len, mode = _OPENSSH_CIPHERS[cipher]
    seed = bcrypt.kdf(password=password, salt=salt, desired_key_bytes=key_len + iv_len,
                      rounds=rounds, ignore_few_rounds=True)
    key, iv = seed[:key_len], seed[key_len:]
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    if mode == 'gcm':
        # The 16-byte authentication tag follows the private section.
        if len(tail) < 16:
            raise SSHKeyError('OpenSSH private key is truncated (no authentication tag)')
        decryptor = Cipher(algorithms.AES(key), modes.GCM(iv, tail[:16])).decryptor()
        try:
            return decryptor.update(encrypted) + decryptor.finalize()
        except InvalidTag:
            raise SSHKeyError('wrong passphrase for the private key (or the key is corrupt)') from None
    if len(encrypted) % 16:
        raise SSHKeyError('OpenSSH private key is corrupt (private section is not whole blocks)')
    mode_obj = modes.CTR(iv) if mode == 'ctr' else modes.CBC(iv)
    decryptor = Cipher(algorithms.AES(key), mode_obj).decryptor()
    return decryptor.update(encrypted) + decryptor.finalize()


def _load_with_cryptography(loader, data: bytes, password: bytes | None):
    import warnings
    try:
        with warnings.catch_warnings():
            # cryptography flags DSA as deprecated; reading the public half is still wanted.
            warnings.simplefilter('ignore')
            return loader(data, password=password)
    except TypeError as exc:
        # cryptography says whether a password was missing or superfluous.
        if 'not encrypted' in str(exc):
            return _load_with_cryptography(loader, data, None)
        raise SSHKeyError('private key is encrypted: a passphrase is needed') from None
    except ValueError:
        if password is not None:
            raise SSHKeyError('wrong passphrase for the private key (or the key is corrupt)') from None
        raise SSHKeyError('private key could not be read (corrupt or unsupported format)') from None
    except Exception as exc:  # UnsupportedAlgorithm and friends; never echo their text
        raise SSHKeyError(f'private key could not be read ({type(exc).__name__})') from None


def _public_of(private_key) -> PublicKey:
    import warnings
    from cryptography.hazmat.primitives import serialization
    try:
        with warnings.catch_warnings():
            # Deprecation of DSA in cryptography: still wanted for reading existing keys.
            warnings.simplefilter('ignore')
            line = private_key.public_key().public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    except (ValueError, TypeError):
        raise SSHKeyError('this private key type cannot be used with SSH') from None
    return parse_public_key(line.decode('ascii'))


def _from_pem(pem: bytes, password: bytes | None) -> PublicKey:
    from cryptography.hazmat.primitives import serialization
    return _public_of(_load_with_cryptography(serialization.load_pem_private_key, pem, password))


def _from_der(der: bytes, password: bytes | None) -> PublicKey:
    from cryptography.hazmat.primitives import serialization
    return _public_of(_load_with_cryptography(serialization.load_der_private_key, der, password))


def _parse_putty(text: str) -> tuple[int, dict, bytes, bytes]:
    lines = text.replace('\r\n', '\n').split('\n')
    headers = {}
    blobs = {}
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        if not line:
            continue
        name, sep, value = line.partition(':')
        if not sep:
            raise SSHKeyError('PuTTY key file is malformed (a line is not "Name: value")')
        name, value = name.strip(), value.strip()
        if name in ('Public-Lines', 'Private-Lines'):
            if not value.isdigit() or int(value) > 1024 or index + int(value) > len(lines):
                raise SSHKeyError(f'PuTTY key file is malformed ({name})')
            chunk = ''.join(part.strip() for part in lines[index:index + int(value)])
            index += int(value)
            try:
                blobs[name] = base64.b64decode(chunk, validate=True)
            except (binascii.Error, ValueError):
                raise SSHKeyError(f'PuTTY key file is malformed ({name} is not base64)') from None
        else:
            headers[name] = value
    version = None
    for candidate in (1, 2, 3):
        if f'PuTTY-User-Key-File-{candidate}' in headers:
            version = candidate
            headers['algorithm'] = headers[f'PuTTY-User-Key-File-{candidate}']
    if version is None or version == 1:
        raise SSHKeyError('PuTTY key file version is not supported (versions 2 and 3 are)')
    for needed in ('Encryption', 'Private-MAC'):
        if needed not in headers:
            raise SSHKeyError(f'PuTTY key file is malformed (no {needed})')
    if 'Public-Lines' not in blobs or 'Private-Lines' not in blobs:
        raise SSHKeyError('PuTTY key file is malformed (public or private lines missing)')
    return version, headers, blobs['Public-Lines'], blobs['Private-Lines']


def _putty_keys(version: int, headers: dict, password: bytes | None) -> tuple[bytes | None, bytes | None, bytes]:
    """(cipher key, IV, MAC key) for a PuTTY file."""
    encrypted = headers['Encryption'] != 'none'
    if version == 2:
        secret = password if encrypted else b''
        mac_key = hashlib.sha1(b'putty-private-key-file-mac-key' + secret).digest()
        if not encrypted:
            return None, None, mac_key
        key = (hashlib.sha1(b'\x00\x00\x00\x00' + secret).digest()
               + hashlib.sha1(b'\x00\x00\x00\x01' + secret).digest())[:32]
        return key, bytes(16), mac_key
    if not encrypted:
        return None, None, b''
    from cryptography.hazmat.primitives.kdf import argon2
    flavours = {'Argon2id': 'Argon2id', 'Argon2i': 'Argon2i', 'Argon2d': 'Argon2d'}
    flavour = flavours.get(headers.get('Key-Derivation', ''))
    kdf_class = getattr(argon2, flavour, None) if flavour else None
    if kdf_class is None:
        raise SSHKeyError('PuTTY key file key derivation is not supported by the installed cryptography')
    try:
        memory = int(headers['Argon2-Memory'])
        passes = int(headers['Argon2-Passes'])
        lanes = int(headers['Argon2-Parallelism'])
        salt = bytes.fromhex(headers['Argon2-Salt'])
    except (KeyError, ValueError):
        raise SSHKeyError('PuTTY key file is malformed (Argon2 parameters)') from None
    if memory > 4 * 1024 * 1024 or passes > 1000 or lanes > 64:
        raise SSHKeyError('PuTTY key file asks for an unreasonably expensive key derivation')
    try:
        derived = kdf_class(salt=salt, length=80, iterations=passes, lanes=lanes,
                            memory_cost=memory).derive(password)
    except Exception as exc:  # bad parameters; the message names nothing secret
        raise SSHKeyError(f'PuTTY key file key derivation failed ({type(exc).__name__})') from None
    return derived[:32], derived[32:48], derived[48:]


def _from_putty(text: str, password: bytes | None) -> PublicKey:
    import hmac
    version, headers, public_blob, private_blob = _parse_putty(text)
    encryption = headers['Encryption']
    if encryption not in ('none', 'aes256-cbc'):
        raise SSHKeyError(f'PuTTY key file encryption {_safe_name(encryption)} is not supported')
    if encryption != 'none' and password is None:
        raise SSHKeyError('private key is encrypted: a passphrase is needed')
    key, iv, mac_key = _putty_keys(version, headers, password)
    if key is not None:
        if len(private_blob) % 16:
            raise SSHKeyError('PuTTY key file is corrupt (private lines are not whole blocks)')
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        private_blob = decryptor.update(private_blob) + decryptor.finalize()
    comment = headers.get('Comment', '')
    signed = b''.join(_ssh_string(part) for part in (
        headers['algorithm'].encode('utf-8'), encryption.encode('utf-8'), comment.encode('utf-8'),
        public_blob, private_blob))
    digest = hashlib.sha1 if version == 2 else hashlib.sha256
    expected = hmac.new(mac_key, signed, digest).hexdigest()
    if not hmac.compare_digest(expected, headers['Private-MAC'].lower()):
        if encryption != 'none':
            raise SSHKeyError('wrong passphrase for the private key (or the key is corrupt)')
        raise SSHKeyError('PuTTY key file is corrupt (MAC does not match)')
    public = public_key_from_blob(public_blob, comment if not _CONTROL.search(comment) else '')
    if public.key_type != headers['algorithm']:
        raise SSHKeyError('PuTTY key file is inconsistent (header and public key types differ)')
    return public


def generate_private_key(key_type: str = 'ed25519', bits: int | None = None,
                         passphrase: str | bytes | None = None, comment: str = '',
                         private_format: str = 'openssh') -> tuple[str, PublicKey]:
    """A new key pair: (private key text, its PublicKey). Controller side, uses cryptography.

    key_type is 'rsa' (bits default 3072), 'ecdsa' (256, 384 or 521) or 'ed25519';
    private_format is 'openssh', 'pkcs8' or 'pem' (traditional); Ed25519 keys are written in
    OpenSSH format only, the one every OpenSSH version reads.
    An encrypted OpenSSH-format key needs the bcrypt package, as cryptography does.
    """
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    except ImportError:
        raise SSHKeyError('generating keys needs the Python package cryptography on the controller') from None
    if key_type == 'rsa':
        bits = bits or 3072
        if not RSA_MIN_BITS <= bits <= RSA_MAX_BITS:
            raise SSHKeyError(f'RSA key size must be between {RSA_MIN_BITS} and {RSA_MAX_BITS} bits')
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    elif key_type == 'ecdsa':
        curves = {256: ec.SECP256R1, 384: ec.SECP384R1, 521: ec.SECP521R1}
        if (bits or 256) not in curves:
            raise SSHKeyError('ECDSA key size must be 256, 384 or 521')
        key = ec.generate_private_key(curves[bits or 256]())
    elif key_type == 'ed25519':
        if bits not in (None, 256):
            raise SSHKeyError('Ed25519 keys have a fixed size (256)')
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise SSHKeyError(f'cannot generate key type {_safe_name(key_type)}; use rsa, ecdsa or ed25519')
    formats = {
        'openssh': serialization.PrivateFormat.OpenSSH,
        'pkcs8': serialization.PrivateFormat.PKCS8,
        'pem': serialization.PrivateFormat.TraditionalOpenSSL,
    }
    # OpenSSH reads Ed25519 private keys only in its own format (PKCS#8 since 9.6 at best).
    if private_format not in formats or (private_format != 'openssh' and key_type == 'ed25519'):
        raise SSHKeyError(f'private key format {_safe_name(private_format)} is not available for {key_type}')
    password = _to_bytes(passphrase, 'passphrase')
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    try:
        private_bytes = key.private_bytes(serialization.Encoding.PEM, formats[private_format], encryption)
    except Exception as exc:  # e.g. UnsupportedAlgorithm when bcrypt is missing
        hint = '; encrypted OpenSSH format needs the bcrypt package' if password and private_format == 'openssh' else ''
        raise SSHKeyError(f'could not write the private key ({type(exc).__name__}){hint}') from None
    public = _public_of(key)
    return private_bytes.decode('ascii'), PublicKey(public.key_type, public.blob, comment)

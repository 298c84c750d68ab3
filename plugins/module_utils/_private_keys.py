# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: private keys, on the controller only.

Reading the public key out of a private key file (OpenSSH, PEM, PKCS#8, PuTTY .ppk v2 and v3,
encrypted or not) and making new key pairs. ``cryptography`` is imported inside the functions
that need it (``bcrypt`` too, for encrypted OpenSSH-format keys). No host module imports this
file, so managed hosts never receive it; the public-key half is ``_openssh``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import (
    CONTROL_CHARS,
    PLAIN_TYPES,
    PublicKey,
    Reader,
    SSHKeyError,
    parse_public_key,
    public_key_from_blob,
    safe_name,
    ssh_string,
)


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
    reader = Reader(body[len(_OPENSSH_MAGIC):], 'OpenSSH private key')
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
    section = Reader(private, 'OpenSSH private key')
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
    layout = PLAIN_TYPES[public.key_type][1]
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
    if CONTROL_CHARS.search(comment):
        comment = ''
    return PublicKey(public.key_type, public.blob, comment.strip())


def _openssh_decrypt(cipher: str, kdf: str, kdf_options: bytes, password: bytes,
                     encrypted: bytes, tail: bytes) -> bytes:
    if cipher not in _OPENSSH_CIPHERS:
        raise SSHKeyError(f'OpenSSH private key cipher {safe_name(cipher)} is not supported')
    if kdf != 'bcrypt':
        raise SSHKeyError(f'OpenSSH private key kdf {safe_name(kdf)} is not supported')
    options = Reader(kdf_options, 'OpenSSH private key kdf options')
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
        raise SSHKeyError(f'PuTTY key file encryption {safe_name(encryption)} is not supported')
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
    signed = b''.join(ssh_string(part) for part in (
        headers['algorithm'].encode('utf-8'), encryption.encode('utf-8'), comment.encode('utf-8'),
        public_blob, private_blob))
    digest = hashlib.sha1 if version == 2 else hashlib.sha256
    expected = hmac.new(mac_key, signed, digest).hexdigest()
    if not hmac.compare_digest(expected, headers['Private-MAC'].lower()):
        if encryption != 'none':
            raise SSHKeyError('wrong passphrase for the private key (or the key is corrupt)')
        raise SSHKeyError('PuTTY key file is corrupt (MAC does not match)')
    public = public_key_from_blob(public_blob, comment if not CONTROL_CHARS.search(comment) else '')
    if public.key_type != headers['algorithm']:
        raise SSHKeyError('PuTTY key file is inconsistent (header and public key types differ)')
    return public


# Generation makes keys that every current OpenSSH accepts: RSA from 2048 bits (reading still
# takes the 1024 bits older OpenSSH versions do), 3072 when no size is asked for, as ssh-keygen.
GENERATE_RSA_BITS = (2048, 16384)
GENERATE_RSA_DEFAULT = 3072
ECDSA_CURVES = {256: 'SECP256R1', 384: 'SECP384R1', 521: 'SECP521R1'}
MISSING_CRYPTOGRAPHY = ("the Python package 'cryptography' is needed to generate or read private keys; install it "
                        "for the Python that runs this module (the controller, with hosts: localhost)")


def check_key_size(key_type: str, bits: int | None) -> None:
    """What sizes ``generate_private_key`` takes, checked before anything is made."""
    if key_type not in ('rsa', 'ecdsa', 'ed25519'):
        raise SSHKeyError(f'cannot generate key type {safe_name(key_type)}; use rsa, ecdsa or ed25519')
    if bits is None:
        return
    low, high = GENERATE_RSA_BITS
    if key_type == 'rsa' and not low <= bits <= high:
        raise SSHKeyError(f'key_size for rsa must be between {low} and {high}')
    if key_type == 'ecdsa' and bits not in ECDSA_CURVES:
        raise SSHKeyError('key_size for ecdsa must be 256, 384 or 521')
    if key_type == 'ed25519':
        raise SSHKeyError('key_size does not apply to ed25519 keys')


def generate_private_key(key_type: str = 'ed25519', bits: int | None = None,
                         passphrase: str | bytes | None = None, comment: str = '',
                         private_format: str = 'openssh') -> tuple[str, PublicKey]:
    """A new key pair: (private key text, its PublicKey). The one key generator of the collection.

    key_type is 'rsa' (see ``GENERATE_RSA_BITS``), 'ecdsa' (256, 384 or 521) or 'ed25519';
    private_format is 'openssh', 'pkcs8' or 'pem' (traditional); Ed25519 keys are written in
    OpenSSH format only, the one every OpenSSH version reads. An encrypted OpenSSH-format key
    needs the bcrypt package, as cryptography does; without it an RSA or ECDSA key is written as
    encrypted PKCS#8, which OpenSSH reads too.
    """
    check_key_size(key_type, bits)
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        raise SSHKeyError(MISSING_CRYPTOGRAPHY) from None
    key = _new_key(key_type, bits)
    formats = {
        'openssh': serialization.PrivateFormat.OpenSSH,
        'pkcs8': serialization.PrivateFormat.PKCS8,
        'pem': serialization.PrivateFormat.TraditionalOpenSSL,
    }
    # OpenSSH reads Ed25519 private keys only in its own format (PKCS#8 since 9.6 at best).
    if private_format not in formats or (private_format != 'openssh' and key_type == 'ed25519'):
        raise SSHKeyError(f'private key format {safe_name(private_format)} is not available for {key_type}')
    password = _to_bytes(passphrase, 'passphrase')
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    try:
        private_bytes = key.private_bytes(serialization.Encoding.PEM, formats[private_format], encryption)
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm when bcrypt is missing
        if not (password and private_format == 'openssh' and type(exc).__name__ == 'UnsupportedAlgorithm'):
            raise SSHKeyError(f'could not write the private key ({type(exc).__name__})') from None
        if key_type == 'ed25519':
            raise SSHKeyError("an ed25519 key with a passphrase needs the Python package 'bcrypt' next to "
                              "'cryptography' (OpenSSH's own format); use rsa or ecdsa, or install bcrypt") from None
        private_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public = _public_of(key)
    text = private_bytes.decode('ascii')
    if comment and not password and private_format == 'openssh':
        text = _with_openssh_comment(text, comment)
    return text, PublicKey(public.key_type, public.blob, comment)


# The block size of an unencrypted OpenSSH private key ('none' cipher, PROTOCOL.key).
_OPENSSH_PLAIN_BLOCK = 8


def _with_openssh_comment(text: str, comment: str) -> str:
    """An unencrypted OpenSSH-format private key with comment in place of the empty one that
    cryptography writes (``ssh-keygen -y`` and ``ssh-keygen -l`` show it, as for a key
    ssh-keygen made). Anything else (an encrypted key, a comment already there) is returned as
    it was."""
    match = _PEM_BLOCK.search(text)
    if match is None or match.group(1) != 'OPENSSH PRIVATE KEY' or CONTROL_CHARS.search(comment):
        return text
    body = base64.b64decode(match.group(2))
    if not body.startswith(_OPENSSH_MAGIC):
        return text
    reader = Reader(body[len(_OPENSSH_MAGIC):], 'OpenSSH private key')
    cipher, kdf, kdf_options = reader.string('cipher'), reader.string('kdf'), reader.string('kdf options')
    count = reader.uint32('number of keys')
    public_blob = reader.string('public key')
    private = reader.string('private section')
    keys = _without_empty_comment(private)
    if cipher != b'none' or kdf != b'none' or count != 1 or keys is None:
        return text
    section = keys + ssh_string(comment.encode('utf-8'))
    # Padding 1, 2, 3, ... up to the block size, none when the section fills its last block,
    # as ssh-keygen writes it (and checks it when reading).
    section += bytes(range(1, (-len(section)) % _OPENSSH_PLAIN_BLOCK + 1))
    rebuilt = (_OPENSSH_MAGIC + ssh_string(cipher) + ssh_string(kdf) + ssh_string(kdf_options)
               + count.to_bytes(4, 'big') + ssh_string(public_blob) + ssh_string(section))
    encoded = base64.b64encode(rebuilt).decode('ascii')
    lines = '\n'.join(encoded[i:i + 70] for i in range(0, len(encoded), 70))
    return f'-----BEGIN OPENSSH PRIVATE KEY-----\n{lines}\n-----END OPENSSH PRIVATE KEY-----\n'


def _without_empty_comment(private: bytes) -> bytes | None:
    """The private section up to its comment (check integers and key fields), when it ends in
    an empty comment and its padding; None otherwise. The padding is 1, 2, 3, ...: ssh-keygen
    writes none when the section fills its last block, cryptography a whole block of 8."""
    pad = private[-1] if private and private[-1] <= _OPENSSH_PLAIN_BLOCK else -1
    end = len(private) - pad
    if pad < 0 or private[end:] != bytes(range(1, pad + 1)) or end < 12 or private[end - 4:end] != bytes(4):
        return None
    return private[:end - 4]


def _new_key(key_type: str, bits: int | None):
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    if key_type == 'rsa':
        return rsa.generate_private_key(public_exponent=65537, key_size=bits or GENERATE_RSA_DEFAULT)
    if key_type == 'ecdsa':
        return ec.generate_private_key(getattr(ec, ECDSA_CURVES[bits or 256])())
    return ed25519.Ed25519PrivateKey.generate()

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Public key parsing, validation and fingerprints, judged by ssh-keygen on keys it makes now."""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import looks_like_private_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import (
    MAX_LINE_LENGTH,
    PublicKey,
    SSHKeyError,
    fingerprint_blob,
    parse_public_key,
    public_key_from_blob,
)

SSH_KEYGEN = shutil.which('ssh-keygen')
needs_ssh_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason='ssh-keygen is not installed')

# (name, ssh-keygen arguments) of every key the comparison tests make.
KEY_SPECS = [
    ('rsa1024', ['-t', 'rsa', '-b', '1024']),
    ('rsa2048', ['-t', 'rsa', '-b', '2048']),
    ('rsa4096', ['-t', 'rsa', '-b', '4096']),
    ('dsa', ['-t', 'dsa']),
    ('ecdsa256', ['-t', 'ecdsa', '-b', '256']),
    ('ecdsa384', ['-t', 'ecdsa', '-b', '384']),
    ('ecdsa521', ['-t', 'ecdsa', '-b', '521']),
    ('ed25519', ['-t', 'ed25519']),
]
EXPECTED_FAMILY = {
    'rsa1024': ('RSA', 1024), 'rsa2048': ('RSA', 2048), 'rsa4096': ('RSA', 4096), 'dsa': ('DSA', 1024),
    'ecdsa256': ('ECDSA', 256), 'ecdsa384': ('ECDSA', 384), 'ecdsa521': ('ECDSA', 521), 'ed25519': ('ED25519', 256),
}


def ssh_string(data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + data


def keygen(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([SSH_KEYGEN, *args], capture_output=True, text=True, check=check, timeout=120)


@pytest.fixture(scope='module')
def keys(tmp_path_factory):
    """ssh-keygen makes every key once per test module: name -> path of the private key."""
    if SSH_KEYGEN is None:
        pytest.skip('ssh-keygen is not installed')
    directory = tmp_path_factory.mktemp('keys')
    made = {}
    for name, args in KEY_SPECS:
        path = directory / name
        result = keygen('-q', *args, '-N', '', '-C', f'{name} test key', '-f', str(path), check=False)
        if result.returncode == 0:
            made[name] = path
    return made


@pytest.fixture(scope='module')
def certificates(keys, tmp_path_factory):
    """Certificates made with ssh-keygen -s: user and host certificates, signed by several CA types."""
    directory = tmp_path_factory.mktemp('certs')
    made = {}
    signers = ['ed25519', 'rsa2048', 'ecdsa384']
    for index, (name, path) in enumerate(sorted(keys.items())):
        ca = keys[signers[index % len(signers)]]
        public = directory / f'{name}.pub'
        shutil.copy(f'{path}.pub', public)
        extra = ['-h'] if index % 2 else ['-n', 'alice,bob', '-O', 'force-command=/bin/true']
        keygen('-q', '-s', str(ca), '-I', f'id-{name}', '-z', str(1000 + index), '-V', '+52w', *extra, str(public))
        made[name] = directory / f'{name}-cert.pub'
    return made


def skip_unless_made(keys, name):
    if name not in keys:
        pytest.skip(f'this ssh-keygen cannot make {name} keys')


def keygen_listing(path, algorithm):
    """'bits fingerprint comment (FAMILY)' as ssh-keygen -l prints it."""
    return keygen('-l', '-E', algorithm, '-f', str(path)).stdout.strip()


def our_listing(key: PublicKey, algorithm: str) -> str:
    return f'{key.bits} {key.fingerprint(algorithm)} {key.comment or "no comment"} ({key.family})'


# ---------------------------------------------------------------------------------------------
# Agreement with ssh-keygen
# ---------------------------------------------------------------------------------------------

@needs_ssh_keygen
@pytest.mark.parametrize('name', [spec[0] for spec in KEY_SPECS])
@pytest.mark.parametrize('algorithm', ['md5', 'sha256', 'sha512'])
def test_fingerprint_bits_and_family_match_ssh_keygen(keys, name, algorithm):
    skip_unless_made(keys, name)
    key = parse_public_key(keys[name].with_suffix('.pub').read_text())
    assert our_listing(key, algorithm) == keygen_listing(f'{keys[name]}.pub', algorithm)
    assert (key.family, key.bits) == EXPECTED_FAMILY[name]


def test_dsa_is_available_or_reported(keys):
    # Not an assertion about our code: makes a missing DSA build visible in the test report.
    if 'dsa' not in keys:
        pytest.skip('this ssh-keygen build cannot make DSA keys; DSA comparisons were skipped')
    assert keys['dsa'].with_suffix('.pub').read_text().startswith('ssh-dss ')


@needs_ssh_keygen
@pytest.mark.parametrize('name', [spec[0] for spec in KEY_SPECS])
@pytest.mark.parametrize('algorithm', ['md5', 'sha256'])
def test_certificate_matches_ssh_keygen(keys, certificates, name, algorithm):
    skip_unless_made(keys, name)
    path = certificates[name]
    cert = parse_public_key(path.read_text())
    assert cert.is_certificate
    assert cert.key_type.endswith('-cert-v01@openssh.com')
    assert our_listing(cert, algorithm) == keygen_listing(path, algorithm)
    plain = parse_public_key(keys[name].with_suffix('.pub').read_text())
    # ssh-keygen fingerprints a certificate by the key it certifies.
    assert cert.fingerprint(algorithm) == plain.fingerprint(algorithm)
    assert cert.public_key().identity() == plain.identity()
    assert cert.identity() != plain.identity()


@needs_ssh_keygen
@pytest.mark.parametrize('name', ['rsa2048', 'ecdsa256', 'ed25519', 'dsa'])
def test_certificate_fields_match_ssh_keygen_listing(keys, certificates, name):
    skip_unless_made(keys, name)
    path = certificates[name]
    info = parse_public_key(path.read_text()).certificate
    listing = keygen('-L', '-f', str(path)).stdout
    assert f'Key ID: "{info.key_id}"' in listing
    assert f'Serial: {info.serial}' in listing
    assert f'{info.cert_type} certificate' in listing
    assert 'Signing CA: ' in listing and info.ca_fingerprint in listing
    for principal in info.principals:
        assert principal in listing
    assert info.valid_after < info.valid_before


def make_sk_public(tmp_path, key_type: str, fields: bytes, application: str) -> str:
    blob = ssh_string(key_type.encode()) + fields + ssh_string(application.encode())
    line = f'{key_type} {base64.b64encode(blob).decode()} security key'
    (tmp_path / 'sk.pub').write_text(line + '\n')
    return line


@pytest.fixture()
def sk_keys(tmp_path, keys):
    """Security-key public keys, built by hand: no FIDO device is needed to read them."""
    ed = parse_public_key(keys['ed25519'].with_suffix('.pub').read_text())
    ec = parse_public_key(keys['ecdsa256'].with_suffix('.pub').read_text())
    ed_fields = ed.blob[len(ssh_string(b'ssh-ed25519')):]
    ec_fields = ec.blob[len(ssh_string(b'ecdsa-sha2-nistp256')):]
    return {
        'sk-ssh-ed25519@openssh.com': ed_fields,
        'sk-ecdsa-sha2-nistp256@openssh.com': ec_fields,
    }


@needs_ssh_keygen
@pytest.mark.parametrize('key_type,family', [
    ('sk-ssh-ed25519@openssh.com', 'ED25519-SK'),
    ('sk-ecdsa-sha2-nistp256@openssh.com', 'ECDSA-SK'),
])
def test_security_key_types_match_ssh_keygen(tmp_path, keys, sk_keys, key_type, family):
    line = make_sk_public(tmp_path, key_type, sk_keys[key_type], 'ssh:')
    key = parse_public_key(line)
    assert key.family == family and key.application == 'ssh:'
    for algorithm in ('md5', 'sha256'):
        assert our_listing(key, algorithm) == keygen_listing(tmp_path / 'sk.pub', algorithm)
    # ssh-keygen can certify a security-key public key without the device.
    keygen('-q', '-s', str(keys['ed25519']), '-I', 'sk', str(tmp_path / 'sk.pub'))
    cert = parse_public_key((tmp_path / 'sk-cert.pub').read_text())
    assert cert.family == f'{family}-CERT'
    assert our_listing(cert, 'sha256') == keygen_listing(tmp_path / 'sk-cert.pub', 'sha256')


def test_security_key_without_application_is_refused(sk_keys):
    key_type = 'sk-ssh-ed25519@openssh.com'
    blob = ssh_string(key_type.encode()) + sk_keys[key_type]
    with pytest.raises(SSHKeyError, match='truncated'):
        parse_public_key(f'{key_type} {base64.b64encode(blob).decode()}')
    blob_empty_app = blob + ssh_string(b'')
    with pytest.raises(SSHKeyError, match='application'):
        parse_public_key(f'{key_type} {base64.b64encode(blob_empty_app).decode()}')


# ---------------------------------------------------------------------------------------------
# The API's shape
# ---------------------------------------------------------------------------------------------

def test_public_key_fields_and_forms(keys):
    text = keys['ecdsa384'].with_suffix('.pub').read_text()
    key_type, data, comment = text.split(None, 2)
    key = parse_public_key(f'  {key_type}\t{data}   {comment}')
    assert key.key_type == 'ecdsa-sha2-nistp384'
    assert key.base64 == data
    assert key.blob == base64.b64decode(data)
    assert key.comment == comment.strip() == 'ecdsa384 test key'
    assert key.curve == 'nistp384'
    assert not key.is_certificate and key.certificate is None
    assert key.identity() == f'{key_type} {data}'
    assert key.line() == f'{key_type} {data} ecdsa384 test key'
    assert key.line('other') == f'{key_type} {data} other'
    assert key.line('') == f'{key_type} {data}'
    assert str(key) == key.line()
    without_comment = parse_public_key(f'{key_type} {data}')
    assert without_comment.comment == '' and without_comment.line() == key.identity()
    assert without_comment.identity() == key.identity()
    assert without_comment != key  # equality includes the comment; identity() does not
    with pytest.raises(AttributeError):
        key.comment = 'changed'


def test_bytes_input_and_blob_constructor(keys):
    text = keys['ed25519'].with_suffix('.pub').read_text()
    key = parse_public_key(text.encode())
    assert public_key_from_blob(key.blob, 'c').line() == key.line('c')
    assert PublicKey(key.key_type, key.blob).identity() == key.identity()
    with pytest.raises(SSHKeyError, match='does not match'):
        PublicKey('ssh-rsa', key.blob)


def test_fingerprint_blob_forms():
    blob = b'\x00\x00\x00\x0bssh-ed25519' + ssh_string(bytes(range(32)))
    md5 = fingerprint_blob(blob, 'md5')
    assert md5.startswith('MD5:') and len(md5.split(':')) == 17
    assert all(len(part) == 2 and part == part.lower() for part in md5.split(':')[1:])
    assert fingerprint_blob(blob, 'SHA256').startswith('SHA256:')
    assert '=' not in fingerprint_blob(blob)
    assert fingerprint_blob(blob) == fingerprint_blob(blob, 'sha256')
    with pytest.raises(SSHKeyError, match='unsupported fingerprint algorithm'):
        fingerprint_blob(blob, 'crc32')


# ---------------------------------------------------------------------------------------------
# Bad input: one exception type, a message that names the problem, never the key text
# ---------------------------------------------------------------------------------------------

def _line(key_type: str, blob: bytes, comment: str = '') -> str:
    return f'{key_type} {base64.b64encode(blob).decode()} {comment}'.strip()


@pytest.fixture(scope='module')
def sample(keys):
    return {name: parse_public_key(path.with_suffix('.pub').read_text()) for name, path in keys.items()}


def test_bad_input_messages(sample, keys):
    rsa = sample['rsa2048']
    ed = sample['ed25519']
    cases = [
        ('', 'empty'),
        ('   \n', 'empty'),
        ('ssh-rsa', 'needs a key type and base64'),
        ('ssh-rsa ' + 'A' * (1024 * 1024), 'longer than'),
        (f'ssh-rsa {rsa.base64[:-4]}*AB=', 'not valid base64'),
        (f'ssh-rsa {rsa.base64[:-1]}', 'not valid base64'),
        (_line('ssh-rsa', rsa.blob[:-7]), 'truncated'),
        (_line('ssh-rsa', rsa.blob + b'\x00'), 'trailing data'),
        (_line('ssh-ed25519', rsa.blob), 'does not match'),
        (f'{ed.identity()} comment\x07bell', 'control characters'),
        (f'{ed.identity()}\x00', 'control characters'),
        (f'{ed.identity()} one\n{ed.identity()} two', 'more than one line'),
        (f'{ed.identity()} a\u2028b', 'control characters'),
        (f'no-pty {ed.identity()}', 'does not start with a known key type'),
        (f'ssh-foo {ed.base64}', "unsupported key type 'ssh-foo'"),
        (f'ssh-rsa-cert-v00@openssh.com {ed.base64}', 'legacy v00'),
        (_line('ssh-ed25519', ssh_string(b'ssh-ed25519') + ssh_string(b'x' * 31)), '32 bytes'),
        (_line('ssh-rsa', ssh_string(b'ssh-rsa') + ssh_string(b'\x01\x00\x01') + ssh_string(b'\x00' + b'\xff' * 64)),
         'shorter than 1024'),
        (_line('ssh-rsa', ssh_string(b'ssh-rsa') + ssh_string(b'\x80') + ssh_string(b'\x01')), 'negative'),
        (keys['ed25519'].read_text(), 'private key'),
    ]
    for text, message in cases:
        with pytest.raises(SSHKeyError, match=message):
            parse_public_key(text)


def test_ecdsa_checks(sample):
    ec = sample['ecdsa256']
    fields = ec.blob[len(ssh_string(b'ecdsa-sha2-nistp256')):]
    curve_swapped = ssh_string(b'ecdsa-sha2-nistp256') + ssh_string(b'nistp384') + fields[len(ssh_string(b'nistp256')):]
    with pytest.raises(SSHKeyError, match='curve'):
        parse_public_key(_line('ecdsa-sha2-nistp256', curve_swapped))
    off_curve = bytearray(ec.blob)
    off_curve[-1] ^= 1
    with pytest.raises(SSHKeyError, match='not on curve'):
        parse_public_key(_line('ecdsa-sha2-nistp256', bytes(off_curve)))
    compressed = ec.blob[:-65] + ssh_string(b'\x02' + ec.blob[-64:-32])[4:]
    with pytest.raises(SSHKeyError):
        parse_public_key(_line('ecdsa-sha2-nistp256', compressed))


def test_certificate_corruption_is_refused(certificates, keys):
    cert = parse_public_key(certificates['ed25519'].read_text())
    for cut in (1, 10, 100, len(cert.blob) - 40):
        with pytest.raises(SSHKeyError):
            parse_public_key(_line(cert.key_type, cert.blob[:-cut]))
    with pytest.raises(SSHKeyError, match='does not match'):
        parse_public_key(_line('ssh-ed25519', cert.blob))
    with pytest.raises(SSHKeyError, match='trailing'):
        parse_public_key(_line(cert.key_type, cert.blob + b'junk'))


def test_huge_input_is_refused_before_parsing():
    huge = 'ssh-ed25519 ' + 'QUFB' * (MAX_LINE_LENGTH // 4 + 1)
    with pytest.raises(SSHKeyError, match='longer than'):
        parse_public_key(huge)
    with pytest.raises(SSHKeyError, match='longer than'):
        parse_public_key(huge.encode())


@pytest.mark.parametrize('marker', [
    '-----BEGIN OPENSSH PRIVATE KEY-----',
    '-----BEGIN RSA PRIVATE KEY-----',
    '-----BEGIN EC PRIVATE KEY-----',
    '-----BEGIN DSA PRIVATE KEY-----',
    '-----BEGIN PRIVATE KEY-----',
    '-----BEGIN ENCRYPTED PRIVATE KEY-----',
    '---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----',
    'PuTTY-User-Key-File-2: ssh-rsa',
    'PuTTY-User-Key-File-3: ssh-ed25519',
    'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ',
])
def test_private_key_markers_are_found_anywhere(marker):
    secret = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7'
    text = f'ssh-ed25519 AAAA comment {marker}\n{secret}\n'
    assert looks_like_private_key(text)
    assert looks_like_private_key(text.encode())
    with pytest.raises(SSHKeyError, match='private key') as raised:
        parse_public_key(text)
    assert secret not in str(raised.value) and 'AAAA' not in str(raised.value)


def test_public_keys_do_not_look_private(sample):
    for key in sample.values():
        assert not looks_like_private_key(key.line())
    assert not looks_like_private_key('')
    assert not looks_like_private_key(None)


def test_messages_never_contain_key_material(sample, keys):
    rsa = sample['rsa2048']
    private_text = keys['rsa2048'].read_text()
    body = ''.join(private_text.splitlines()[1:-1])
    attempts = [
        private_text,
        body,
        _line('ssh-rsa', rsa.blob[:-3]),
        _line('ssh-dss', rsa.blob),
        f'{rsa.base64} ssh-rsa',
        f'x{rsa.base64[:60]} {rsa.base64}',
    ]
    for text in attempts:
        with pytest.raises(SSHKeyError) as raised:
            parse_public_key(text)
        message = str(raised.value)
        assert rsa.base64[:16] not in message
        assert body[40:80] not in message
        assert len(message) < 400


# ---------------------------------------------------------------------------------------------
# Properties (hypothesis)
# ---------------------------------------------------------------------------------------------

comments = st.text(
    alphabet=st.characters(blacklist_categories=('Cc', 'Cs', 'Zl', 'Zp')), max_size=40,
).map(str.strip)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=st.data(), comment=comments, spacing=st.sampled_from([' ', '  ', '\t', ' \t ']))
def test_round_trip(sample, data, comment, spacing):
    key = data.draw(st.sampled_from(sorted(sample.values(), key=lambda k: k.key_type + k.base64)))
    text = spacing.join(part for part in (key.key_type, key.base64, comment) if part)
    parsed = parse_public_key(text)
    assert parsed.identity() == key.identity()
    assert parsed.comment == comment
    assert parse_public_key(parsed.line()) == parsed
    assert parsed.line() == (f'{key.identity()} {comment}' if comment else key.identity())
    assert parsed.fingerprint('md5') == key.fingerprint('md5')


@SETTINGS
@given(data=st.data())
def test_generated_ed25519_and_rsa_round_trip(data):
    """Keys built from random values: the parser accepts exactly what the format allows."""
    if data.draw(st.booleans()):
        pk = data.draw(st.binary(min_size=32, max_size=32))
        blob = ssh_string(b'ssh-ed25519') + ssh_string(pk)
        key_type, bits = 'ssh-ed25519', 256
    else:
        bits = data.draw(st.integers(min_value=1024, max_value=4096))
        n = data.draw(st.integers(min_value=2 ** (bits - 1), max_value=2 ** bits - 1)) | 1
        e = data.draw(st.sampled_from([3, 17, 65537]))
        mp = [x.to_bytes(x.bit_length() // 8 + 1, 'big') for x in (e, n)]
        blob = ssh_string(b'ssh-rsa') + b''.join(ssh_string(m) for m in mp)
        key_type = 'ssh-rsa'
    key = public_key_from_blob(blob)
    assert (key.key_type, key.bits) == (key_type, bits)
    assert parse_public_key(key.line('x')).blob == blob


mutations = st.one_of(
    st.tuples(st.just('flip'), st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
    st.tuples(st.just('cut'), st.integers(min_value=0), st.just(0)),
    st.tuples(st.just('insert'), st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
    st.tuples(st.just('append'), st.integers(min_value=1, max_value=64), st.just(0)),
)


def _mutate(blob: bytes, mutation) -> bytes:
    kind, position, value = mutation
    if kind == 'append':
        return blob + bytes([value]) * position
    position %= len(blob)
    if kind == 'flip':
        return blob[:position] + bytes([blob[position] ^ value]) + blob[position + 1:]
    if kind == 'cut':
        return blob[:position]
    return blob[:position] + bytes([value]) + blob[position:]


@pytest.fixture(scope='module')
def pool(sample, certificates):
    keys = list(sample.values())
    keys += [parse_public_key(path.read_text()) for path in certificates.values()]
    return sorted(keys, key=lambda k: k.key_type + k.base64)


@SETTINGS
@given(data=st.data(), mutation=mutations)
def test_mutated_blobs_never_crash(pool, data, mutation):
    key = data.draw(st.sampled_from(pool))
    mutated = _mutate(key.blob, mutation)
    try:
        parsed = parse_public_key(_line(key.key_type, mutated))
    except SSHKeyError as exc:
        assert key.base64[:20] not in str(exc)
        return
    # Accepted only when the mutation kept a valid key (e.g. a changed RSA modulus bit); then
    # nothing was normalised away.
    assert parsed.blob == mutated
    assert mutation[0] in ('flip', 'insert')


@SETTINGS
@given(data=st.data(), position=st.integers(min_value=0), char=st.characters())
def test_mutated_lines_never_crash(pool, data, position, char):
    line = data.draw(st.sampled_from(pool)).line('a comment')
    position %= len(line)
    mutated = line[:position] + char + line[position:]
    try:
        parse_public_key(mutated)
    except SSHKeyError:
        pass


@SETTINGS
@given(st.binary(max_size=300))
def test_random_blobs_never_crash(blob):
    try:
        public_key_from_blob(blob)
    except SSHKeyError:
        pass


def test_every_truncation_and_extension_is_refused(pool):
    for key in pool:
        for end in range(len(key.blob)):
            with pytest.raises(SSHKeyError):
                public_key_from_blob(key.blob[:end])
        with pytest.raises(SSHKeyError, match='trailing'):
            public_key_from_blob(key.blob + b'\x00')

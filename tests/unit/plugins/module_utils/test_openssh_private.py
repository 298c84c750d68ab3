# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Public keys derived from private keys, judged by ssh-keygen -y and puttygen."""

from __future__ import annotations

import base64
import importlib.util
import pathlib
import shutil
import subprocess

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import SSHKeyError, parse_public_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._private_keys import (
    generate_private_key,
    public_key_from_private,
)

SSH_KEYGEN = shutil.which('ssh-keygen')
PUTTYGEN = shutil.which('puttygen')
HAVE_BCRYPT = importlib.util.find_spec('bcrypt') is not None
FIXTURES = pathlib.Path(__file__).resolve().parents[2] / 'fixtures' / 'ssh'
FIXTURE_PASSPHRASE = 'correct horse'
PASSPHRASE = 'test passphrase'

needs_ssh_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason='ssh-keygen is not installed')

# name -> ssh-keygen arguments; -m selects the private key format.
PRIVATE_SPECS = {
    'openssh-rsa2048': ['-t', 'rsa', '-b', '2048'],
    'openssh-dsa': ['-t', 'dsa'],
    'openssh-ecdsa256': ['-t', 'ecdsa', '-b', '256'],
    'openssh-ecdsa521': ['-t', 'ecdsa', '-b', '521'],
    'openssh-ed25519': ['-t', 'ed25519'],
    'pem-rsa2048': ['-t', 'rsa', '-b', '2048', '-m', 'PEM'],
    'pem-rsa1024': ['-t', 'rsa', '-b', '1024', '-m', 'PEM'],
    'pem-dsa': ['-t', 'dsa', '-m', 'PEM'],
    'pem-ecdsa384': ['-t', 'ecdsa', '-b', '384', '-m', 'PEM'],
    'pkcs8-rsa2048': ['-t', 'rsa', '-b', '2048', '-m', 'PKCS8'],
    'pkcs8-ecdsa256': ['-t', 'ecdsa', '-b', '256', '-m', 'PKCS8'],
    'pkcs8-ecdsa521': ['-t', 'ecdsa', '-b', '521', '-m', 'PKCS8'],
}
# Formats whose encryption cryptography handles on its own (no bcrypt).
ENCRYPTED_WITHOUT_BCRYPT = ['pem-rsa2048', 'pem-ecdsa384', 'pkcs8-rsa2048', 'pkcs8-ecdsa521', 'pem-dsa']
ENCRYPTED_OPENSSH = ['openssh-rsa2048', 'openssh-ecdsa256', 'openssh-ed25519']


def keygen(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([SSH_KEYGEN, *args], capture_output=True, text=True, check=check, timeout=120)


def make_keys(directory: pathlib.Path, passphrase: str) -> dict:
    made = {}
    for name, args in PRIVATE_SPECS.items():
        path = directory / name
        result = keygen('-q', *args, '-N', passphrase, '-C', f'{name} comment', '-f', str(path), check=False)
        if result.returncode == 0:
            made[name] = path
    return made


@pytest.fixture(scope='module')
def plain_keys(tmp_path_factory):
    if SSH_KEYGEN is None:
        pytest.skip('ssh-keygen is not installed')
    return make_keys(tmp_path_factory.mktemp('plain'), '')


@pytest.fixture(scope='module')
def encrypted_keys(tmp_path_factory):
    if SSH_KEYGEN is None:
        pytest.skip('ssh-keygen is not installed')
    return make_keys(tmp_path_factory.mktemp('encrypted'), PASSPHRASE)


def expected_public(path, passphrase: str = '') -> str:
    """What ssh-keygen -y prints for the private key."""
    return keygen('-y', '-P', passphrase, '-f', str(path)).stdout.strip()


def skip_unless_made(keys, name):
    if name not in keys:
        pytest.skip(f'this ssh-keygen cannot make {name}')


@needs_ssh_keygen
@pytest.mark.parametrize('name', sorted(PRIVATE_SPECS))
def test_unencrypted_matches_ssh_keygen_y(plain_keys, name):
    skip_unless_made(plain_keys, name)
    path = plain_keys[name]
    text = path.read_text()
    assert public_key_from_private(text).line() == expected_public(path)
    assert public_key_from_private(text.encode()).line() == expected_public(path)
    # A passphrase given for an unencrypted key is ignored, as ssh-keygen -P does.
    assert public_key_from_private(text, 'unused').identity() == parse_public_key(expected_public(path)).identity()


@needs_ssh_keygen
@pytest.mark.parametrize('name', ENCRYPTED_WITHOUT_BCRYPT)
def test_encrypted_pem_and_pkcs8_match_ssh_keygen_y(encrypted_keys, name):
    skip_unless_made(encrypted_keys, name)
    path = encrypted_keys[name]
    text = path.read_text()
    assert 'ENCRYPTED' in text
    assert public_key_from_private(text, PASSPHRASE).line() == expected_public(path, PASSPHRASE)
    assert public_key_from_private(text, PASSPHRASE.encode()).line() == expected_public(path, PASSPHRASE)
    with pytest.raises(SSHKeyError, match='wrong passphrase') as raised:
        public_key_from_private(text, 'not the passphrase')
    assert 'not the passphrase' not in str(raised.value)
    with pytest.raises(SSHKeyError, match='passphrase is needed'):
        public_key_from_private(text)


@needs_ssh_keygen
@pytest.mark.parametrize('name', ENCRYPTED_OPENSSH)
def test_encrypted_openssh_format(encrypted_keys, name):
    path = encrypted_keys[name]
    text = path.read_text()
    with pytest.raises(SSHKeyError, match='passphrase is needed'):
        public_key_from_private(text)
    if not HAVE_BCRYPT:
        # Without bcrypt the passphrase cannot be checked: a clear refusal, never a guess.
        with pytest.raises(SSHKeyError, match='bcrypt'):
            public_key_from_private(text, PASSPHRASE)
        return
    assert public_key_from_private(text, PASSPHRASE).line() == expected_public(path, PASSPHRASE)
    with pytest.raises(SSHKeyError, match='wrong passphrase'):
        public_key_from_private(text, 'not the passphrase')


@needs_ssh_keygen
@pytest.mark.skipif(not HAVE_BCRYPT, reason='the bcrypt package is not installed')
@pytest.mark.parametrize('cipher', ['aes128-ctr', 'aes256-cbc', 'aes256-gcm@openssh.com'])
def test_encrypted_openssh_ciphers(tmp_path, cipher):
    path = tmp_path / 'key'
    keygen('-q', '-t', 'ed25519', '-N', PASSPHRASE, '-Z', cipher, '-C', cipher, '-f', str(path))
    assert public_key_from_private(path.read_text(), PASSPHRASE).line() == expected_public(path, PASSPHRASE)


PUTTY_FIXTURES = sorted(path.name for path in FIXTURES.glob('*.ppk'))


def test_putty_fixtures_are_there():
    versions = {FIXTURES.joinpath(name).read_text().split(':', 1)[0] for name in PUTTY_FIXTURES}
    assert versions == {'PuTTY-User-Key-File-2', 'PuTTY-User-Key-File-3'}
    assert any('encrypted' in name for name in PUTTY_FIXTURES)


@pytest.mark.parametrize('name', PUTTY_FIXTURES)
def test_putty_fixture_matches_puttygen_output(name):
    path = FIXTURES / name
    text = path.read_text()
    expected = path.with_suffix('.pub').read_text().strip()
    encrypted = 'Encryption: none' not in text
    assert public_key_from_private(text, FIXTURE_PASSPHRASE if encrypted else None).line() == expected
    if encrypted:
        with pytest.raises(SSHKeyError, match='passphrase is needed'):
            public_key_from_private(text)
        with pytest.raises(SSHKeyError, match='wrong passphrase'):
            public_key_from_private(text, 'wrong horse')


@pytest.mark.parametrize('name', PUTTY_FIXTURES)
def test_putty_corruption_is_detected(name):
    text = (FIXTURES / name).read_text()
    # Change the comment: the MAC covers it, so the file no longer verifies.
    tampered = text.replace('Comment: ', 'Comment: x', 1)
    with pytest.raises(SSHKeyError, match='MAC does not match|wrong passphrase'):
        public_key_from_private(tampered, FIXTURE_PASSPHRASE)
    lines = text.splitlines()
    mac_line = next(i for i, line in enumerate(lines) if line.startswith('Private-MAC:'))
    lines[mac_line] = 'Private-MAC: ' + '0' * len(lines[mac_line].split(': ')[1])
    with pytest.raises(SSHKeyError):
        public_key_from_private('\n'.join(lines), FIXTURE_PASSPHRASE)
    with pytest.raises(SSHKeyError, match='malformed'):
        public_key_from_private('\n'.join(text.splitlines()[:5]), FIXTURE_PASSPHRASE)


@pytest.mark.skipif(PUTTYGEN is None, reason='puttygen is not installed')
@pytest.mark.parametrize('version,key_args,encrypted', [
    ('2', ['-t', 'rsa', '-b', '2048'], False),
    ('2', ['-t', 'ed25519'], True),
    ('3', ['-t', 'ecdsa', '-b', '256'], False),
    ('3', ['-t', 'rsa', '-b', '2048'], True),
])
def test_putty_generated_now_matches_puttygen(tmp_path, version, key_args, encrypted):
    passfile = tmp_path / 'pass'
    passfile.write_text(PASSPHRASE if encrypted else '')
    ppk = tmp_path / 'key.ppk'
    subprocess.run([PUTTYGEN, '-q', *key_args, '-C', 'made now', '-o', str(ppk), '--new-passphrase', str(passfile),
                    '--ppk-param', f'version={version}'], check=True, timeout=120, capture_output=True)
    expected = subprocess.run([PUTTYGEN, str(ppk), '--old-passphrase', str(passfile), '-O', 'public-openssh'],
                              check=True, timeout=120, capture_output=True, text=True).stdout.strip()
    text = ppk.read_text()
    assert text.startswith(f'PuTTY-User-Key-File-{version}:')
    assert public_key_from_private(text, PASSPHRASE if encrypted else None).line() == expected


def test_unsupported_and_bad_private_input(plain_keys):
    public = next(iter(plain_keys.values())).with_suffix('.pub').read_text()
    cases = [
        ('', 'empty'),
        ('   ', 'empty'),
        (public, 'public key, not a private key'),
        ('hello world', 'not recognised'),
        ('-----BEGIN OPENSSH PRIVATE KEY-----\n!!!!\n-----END OPENSSH PRIVATE KEY-----\n', 'not valid base64'),
        ('-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n', 'openssh-key-v1'),
        ('-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n', 'could not be read'),
        ('PuTTY-User-Key-File-1: ssh-rsa\n', 'version is not supported'),
        ('x' * (2 * 1024 * 1024), 'larger than'),
        (b'\x30\x82\x01\x00garbage', 'could not be read'),
    ]
    for data, message in cases:
        with pytest.raises(SSHKeyError, match=message):
            public_key_from_private(data)
    with pytest.raises(SSHKeyError, match='must be a string'):
        public_key_from_private(12345)


def test_truncated_openssh_private_key_is_refused(plain_keys):
    text = plain_keys['openssh-ed25519'].read_text()
    lines = text.strip().splitlines()
    body = base64.b64decode(''.join(lines[1:-1]))
    for cut in (10, 60, len(body) - 20, len(body) - 1):
        short = base64.b64encode(body[:cut]).decode()
        with pytest.raises(SSHKeyError):
            public_key_from_private(f'{lines[0]}\n{short}\n{lines[-1]}\n')


def test_private_messages_never_contain_key_text(encrypted_keys, plain_keys):
    text = encrypted_keys['pem-rsa2048'].read_text()
    body = ''.join(text.splitlines()[3:-1])
    with pytest.raises(SSHKeyError) as raised:
        public_key_from_private(text, 'wrong')
    assert body[:30] not in str(raised.value)
    corrupt = plain_keys['pem-rsa2048'].read_text().replace('A', 'B')
    with pytest.raises(SSHKeyError) as raised:
        public_key_from_private(corrupt)
    assert 'BBB' not in str(raised.value)


@needs_ssh_keygen
@pytest.mark.parametrize('key_type,bits,expected_bits,private_format', [
    ('rsa', 2048, 2048, 'openssh'), ('rsa', 2048, 2048, 'pkcs8'), ('rsa', 3072, 3072, 'pem'),
    ('ecdsa', 384, 384, 'openssh'), ('ecdsa', None, 256, 'pkcs8'), ('ecdsa', 521, 521, 'pem'),
    ('ed25519', None, 256, 'openssh'),
])
def test_generated_keys_are_read_by_ssh_keygen(tmp_path, key_type, bits, expected_bits, private_format):
    private_text, public = generate_private_key(key_type, bits, comment='new key', private_format=private_format)
    assert public.bits == expected_bits and public.comment == 'new key'
    path = tmp_path / 'key'
    path.write_text(private_text)
    path.chmod(0o600)
    assert parse_public_key(expected_public(path)).identity() == public.identity()
    assert public_key_from_private(private_text).identity() == public.identity()


@needs_ssh_keygen
@pytest.mark.parametrize('key_type,bits', [('rsa', 2048), ('ecdsa', 256), ('ecdsa', 521), ('ed25519', None)])
def test_generated_openssh_key_carries_its_comment(tmp_path, key_type, bits):
    # Comments of 1 to 9 bytes give every padding length (0 to 7) of PROTOCOL.key's private
    # section, whatever length the key itself has: ssh-keygen checks that padding.
    for length in range(1, 10):
        comment = 'kp-web-prod'[:length]
        private_text, public = generate_private_key(key_type, bits, comment=comment)
        path = tmp_path / f'key-{length}'
        path.write_text(private_text)
        path.chmod(0o600)
        shown = expected_public(path)
        assert shown.endswith(f' {comment}') and parse_public_key(shown).identity() == public.identity()
        assert keygen('-l', '-f', str(path)).stdout.split()[2] == comment
        assert public_key_from_private(private_text).comment == comment


def test_generated_key_comment_only_where_the_format_keeps_one():
    # PKCS#8 has no comment field: the key is written as cryptography made it.
    private_text, public = generate_private_key('ecdsa', 256, comment='web', private_format='pkcs8')
    assert 'OPENSSH' not in private_text and public.comment == 'web'
    assert public_key_from_private(private_text).comment == ''


@needs_ssh_keygen
def test_generated_encrypted_key(tmp_path):
    private_text, public = generate_private_key('ecdsa', 256, passphrase=PASSPHRASE, private_format='pkcs8')
    path = tmp_path / 'key'
    path.write_text(private_text)
    path.chmod(0o600)
    assert 'ENCRYPTED' in private_text
    assert parse_public_key(expected_public(path, PASSPHRASE)).identity() == public.identity()
    if not HAVE_BCRYPT:
        with pytest.raises(SSHKeyError, match='bcrypt'):
            generate_private_key('ed25519', passphrase=PASSPHRASE)


def test_generate_refuses_bad_requests():
    for args, message in [
        (('rsa', 512), 'between 2048 and 16384'),
        (('rsa', 1024), 'between 2048 and 16384'),
        (('ecdsa', 300), '256, 384 or 521'),
        (('ed25519', 2048), 'does not apply'),
        (('ed25519', 256), 'does not apply'),
        (('dsa', 1024), 'cannot generate'),
    ]:
        with pytest.raises(SSHKeyError, match=message):
            generate_private_key(*args)
    for private_format in ('pem', 'pkcs8', 'der'):
        with pytest.raises(SSHKeyError, match='not available'):
            generate_private_key('ed25519', private_format=private_format)


def test_without_cryptography_clear_errors_and_stdlib_paths(monkeypatch, plain_keys):
    """On a host without cryptography: OpenSSH format and plain PuTTY still work, the rest says why not."""
    import sys
    for name in [name for name in sys.modules if name == 'cryptography' or name.startswith('cryptography.')]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, 'cryptography', None)
    openssh = plain_keys['openssh-ed25519']
    assert public_key_from_private(openssh.read_text()).line() == expected_public(openssh)
    ppk = FIXTURES / 'putty-v3-ed25519.ppk'
    assert public_key_from_private(ppk.read_text()).line() == ppk.with_suffix('.pub').read_text().strip()
    for path, passphrase in [(plain_keys['pem-rsa2048'], None), (FIXTURES / 'putty-v2-rsa-encrypted.ppk', FIXTURE_PASSPHRASE)]:
        with pytest.raises(SSHKeyError, match='needs the Python package cryptography'):
            public_key_from_private(path.read_text(), passphrase)
    with pytest.raises(SSHKeyError, match="the Python package 'cryptography' is needed"):
        generate_private_key('ed25519')


def test_host_side_import_needs_nothing_but_the_standard_library(plain_keys):
    """Parsing in a fresh interpreter loads no third-party module (what a managed host runs)."""
    import os
    import sys
    from ansible_collections.sshkeys.ecs.plugins.module_utils import _openssh
    root = pathlib.Path(os.path.abspath(_openssh.__file__)).parents[5]
    code = (
        'import sys\n'
        'from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import parse_public_key\n'
        'key = parse_public_key(sys.argv[1])\n'
        'print(key.fingerprint("md5"))\n'
        'print(sorted(m for m in sys.modules if m.split(".")[0] in ("cryptography", "bcrypt", "ansible")))\n'
    )
    public = plain_keys['openssh-ecdsa256'].with_suffix('.pub').read_text()
    result = subprocess.run([sys.executable, '-I', '-c', f'import sys; sys.path.insert(0, {str(root)!r})\n' + code, public],
                            capture_output=True, text=True, check=True, timeout=60)
    fingerprint, modules = result.stdout.splitlines()
    assert fingerprint == parse_public_key(public).fingerprint('md5')
    assert modules == '[]'

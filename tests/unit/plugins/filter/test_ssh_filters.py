# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ssh_fingerprint and ssh_public_key filters: their functions, a real template, their docs."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.sshkeys.ecs.plugins.filter import ssh_fingerprint as fingerprint_plugin
from ansible_collections.sshkeys.ecs.plugins.filter.ssh_fingerprint import FilterModule as FingerprintFilters
from ansible_collections.sshkeys.ecs.plugins.filter.ssh_fingerprint import ssh_fingerprint
from ansible_collections.sshkeys.ecs.plugins.filter.ssh_public_key import FilterModule as PublicKeyFilters
from ansible_collections.sshkeys.ecs.plugins.filter.ssh_public_key import ssh_public_key

SSH_KEYGEN = shutil.which('ssh-keygen')
FIXTURES = pathlib.Path(__file__).resolve().parents[2] / 'fixtures' / 'ssh'
# The directory that holds ansible_collections/, as the collection was imported (not resolved:
# the usual layout is a link to the checkout).
COLLECTIONS_ROOT = pathlib.Path(os.path.abspath(fingerprint_plugin.__file__)).parents[5]
BIN = pathlib.Path(sys.executable).parent
needs_ssh_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason='ssh-keygen is not installed')


@pytest.fixture(scope='module')
def key(tmp_path_factory):
    if SSH_KEYGEN is None:
        pytest.skip('ssh-keygen is not installed')
    path = tmp_path_factory.mktemp('filter') / 'id_ecdsa'
    subprocess.run([SSH_KEYGEN, '-q', '-t', 'ecdsa', '-N', '', '-C', 'filter test', '-f', str(path)], check=True)
    return path


def keygen_fingerprint(path, algorithm):
    out = subprocess.run([SSH_KEYGEN, '-l', '-E', algorithm, '-f', str(path)], check=True, capture_output=True, text=True)
    return out.stdout.split()[1]


def test_filter_modules_register_their_names():
    assert FingerprintFilters().filters() == {'ssh_fingerprint': ssh_fingerprint}
    assert PublicKeyFilters().filters() == {'ssh_public_key': ssh_public_key}


@pytest.mark.parametrize('algorithm', ['md5', 'sha256'])
def test_ssh_fingerprint_matches_ssh_keygen(key, algorithm):
    public = key.with_suffix('.pub').read_text()
    assert ssh_fingerprint(public, algorithm) == keygen_fingerprint(f'{key}.pub', algorithm)


def test_ssh_fingerprint_default_is_sha256(key):
    assert ssh_fingerprint(key.with_suffix('.pub').read_text()) == keygen_fingerprint(f'{key}.pub', 'sha256')


def test_ssh_fingerprint_errors(key):
    public = key.with_suffix('.pub').read_text()
    private = key.read_text()
    with pytest.raises(AnsibleFilterError, match='private key') as raised:
        ssh_fingerprint(private)
    assert private.splitlines()[1][:20] not in str(raised.value)
    with pytest.raises(AnsibleFilterError, match='unsupported fingerprint algorithm'):
        ssh_fingerprint(public, 'crc32')
    with pytest.raises(AnsibleFilterError, match='expects a public key string'):
        ssh_fingerprint(['a', 'list'])
    with pytest.raises(AnsibleFilterError, match='empty'):
        ssh_fingerprint('')


def test_ssh_public_key_matches_ssh_keygen_y(key):
    expected = subprocess.run([SSH_KEYGEN, '-y', '-f', str(key)], check=True, capture_output=True, text=True).stdout.strip()
    assert ssh_public_key(key.read_text()) == expected
    identity = ' '.join(expected.split()[:2])
    assert ssh_public_key(key.read_text(), comment='') == identity
    assert ssh_public_key(key.read_text(), comment='deploy') == f'{identity} deploy'


def test_ssh_public_key_from_putty_fixture():
    ppk = (FIXTURES / 'putty-v3-ed25519-encrypted.ppk').read_text()
    expected = (FIXTURES / 'putty-v3-ed25519-encrypted.pub').read_text().strip()
    assert ssh_public_key(ppk, 'correct horse') == expected
    with pytest.raises(AnsibleFilterError, match='wrong passphrase') as raised:
        ssh_public_key(ppk, 'battery staple')
    assert 'battery staple' not in str(raised.value)
    with pytest.raises(AnsibleFilterError, match='passphrase is needed'):
        ssh_public_key(ppk)


def test_ssh_public_key_errors(key):
    with pytest.raises(AnsibleFilterError, match='public key, not a private key'):
        ssh_public_key(key.with_suffix('.pub').read_text())
    with pytest.raises(AnsibleFilterError, match='expects the private key as a string'):
        ssh_public_key(42)
    with pytest.raises(AnsibleFilterError, match='comment'):
        ssh_public_key(key.read_text(), comment=7)


def run_ansible(tool, *args, tmp_path):
    assert (COLLECTIONS_ROOT / 'ansible_collections' / 'sshkeys' / 'ecs' / 'galaxy.yml').is_file()
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': str(COLLECTIONS_ROOT),
        'ANSIBLE_LOCAL_TEMP': str(tmp_path / 'local'),
        'ANSIBLE_HOME': str(tmp_path / 'home'),
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': '0',
        'PAGER': 'cat',
    })
    return subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, env=env, timeout=300, check=False)


def test_filters_work_in_a_template(key, tmp_path):
    """Through Ansible itself: the fully qualified names resolve and render."""
    # omit for the passphrase and the comment is the same as not giving them (the usual
    # `item.pw | default(omit)` in a loop over keys with and without a passphrase).
    template = ("{{ pub | sshkeys.ecs.ssh_fingerprint('md5') }}|{{ priv | sshkeys.ecs.ssh_public_key }}|"
                "{{ priv | sshkeys.ecs.ssh_public_key(passphrase=none_given | default(omit), "
                "comment=none_given | default(omit)) }}")
    extra = json.dumps({'pub': key.with_suffix('.pub').read_text(), 'priv': key.read_text(), 'ansible_python_interpreter': sys.executable})
    result = run_ansible('ansible', 'localhost', '-m', 'ansible.builtin.debug', '-a', json.dumps({'msg': template}),
                         '-e', extra, '-o', tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    expected_public = subprocess.run([SSH_KEYGEN, '-y', '-f', str(key)], check=True, capture_output=True, text=True).stdout.strip()
    assert f'{keygen_fingerprint(f"{key}.pub", "md5")}|{expected_public}|{expected_public}' in result.stdout


@pytest.mark.parametrize('name', ['ssh_fingerprint', 'ssh_public_key'])
def test_ansible_doc_renders(tmp_path, name):
    result = run_ansible('ansible-doc', '-t', 'filter', f'sshkeys.ecs.{name}', tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f'sshkeys.ecs.{name}' in result.stdout
    assert 'EXAMPLES' in result.stdout and 'RETURN VALUES' in result.stdout
    as_json = run_ansible('ansible-doc', '-t', 'filter', '--json', f'sshkeys.ecs.{name}', tmp_path=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)[f'sshkeys.ecs.{name}']
    assert doc['doc']['name'] == name
    assert doc['doc']['short_description']
    assert '_value' in doc['return']
    assert 'sshkeys.ecs.' + name in doc['examples']

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The authorized_keys model and its writer, over a corpus of tricky files.

Fingerprints in fixtures/authorized_keys/expected.json were printed by ssh-keygen -l, so the
model is judged by an independent reading, not by itself.
"""

from __future__ import annotations

import errno
import base64
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils import _keys_file as ak
from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import (
    AuthorizedKeys,
    AuthorizedKeysError,
    make_key_line,
    parse_key_line,
    split_options,
    validate_options,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_display import display_lines
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file import KeysFile
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file_checks import read_keys_file

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "authorized_keys"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
CORPUS = sorted(EXPECTED["files"])


def pub(name: str) -> str:
    return (FIXTURES / "keys" / f"{name}.pub").read_text().strip()


def corpus_bytes(name: str) -> bytes:
    """A corpus file's bytes. Files that ansible-test sanity would refuse to hold as text
    (CRLF line endings, bytes that are not UTF-8) are kept base64-encoded as NAME.b64."""
    encoded = FIXTURES / f"{name}.b64"
    if encoded.exists():
        return base64.b64decode(encoded.read_text())
    return (FIXTURES / f"{name}.txt").read_bytes()


def corpus_text(name: str) -> str:
    return corpus_bytes(name).decode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------------------------
# Parsing and rendering
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CORPUS)
def test_corpus_round_trip_is_byte_exact(name):
    data = corpus_bytes(name)
    model = AuthorizedKeys.parse(data.decode("utf-8", "surrogateescape"))
    assert model.render().encode("utf-8", "surrogateescape") == data


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_lines_classified_as_ssh_keygen_reads_them(name):
    model = AuthorizedKeys.parse(corpus_text(name))
    got = []
    for line in model.lines:
        key = line.public_key()
        got.append([line.kind, key.fingerprint("sha256") if key else None])
    assert got == EXPECTED["files"][name]


def test_line_numbers_and_terminators():
    model = AuthorizedKeys.parse(corpus_text("crlf"))
    assert [line.number for line in model.lines] == [1, 2, 3, 4]
    assert {line.eol for line in model.lines} == {"\r\n"}
    assert model.newline == "\r\n"
    last = AuthorizedKeys.parse(corpus_text("no_final_newline")).lines[-1]
    assert last.eol == "" and last.comment == "last line without newline"


def test_options_with_quoted_commas_spaces_and_escaped_quotes():
    lines = AuthorizedKeys.parse(corpus_text("options")).keys()
    assert lines[0].option_list() == ['from="10.0.0.0/8,192.168.1.1,!192.168.1.2"', "no-pty"]
    assert lines[1].option_list() == ['command="/usr/bin/rsync --server -logDtprze.iLsfxC . /backup/"', "restrict"]
    assert lines[1].comment == "backup job"
    assert lines[2].option_list() == ['command="echo \\"hello, world\\" && echo done"', "no-port-forwarding"]
    assert lines[2].comment == "quote test"
    assert lines[3].option_list() == ["cert-authority", 'principals="carol,ops"']
    assert lines[4].options == "restrict,pty" and lines[4].comment is None
    assert lines[5].key_type == "ssh-ed25519" and lines[5].comment == "dave with\ttab"
    assert lines[6].key_type == "ssh-ed25519-cert-v01@openssh.com"


def test_split_options_keeps_quoted_parts_whole():
    assert split_options('a,b="x,y",c="say \\"hi, there\\"",d') == ["a", 'b="x,y"', 'c="say \\"hi, there\\""', "d"]


def test_identity_ignores_comment_options_and_whitespace():
    key = pub("ed25519")
    key_type, data = key.split(" ", 2)[:2]
    identities = {
        parse_key_line(key).identity(),
        parse_key_line(f"{key_type} {data}").identity(),
        parse_key_line(f'restrict,from="1.2.3.4" {key_type}\t{data} other comment').identity(),
    }
    assert identities == {f"{key_type} {data}"}
    model = AuthorizedKeys.parse(corpus_text("duplicates"))
    assert len(model.find(f"{key_type} {data}")) == 4
    # Identity lookups accept unpadded base64 as well.
    assert len(model.find(f"{key_type} {data.rstrip('=')}")) == 4


def test_invalid_lines_say_why_without_quoting_the_line():
    model = AuthorizedKeys.parse(corpus_text("mixed"))
    problems = {line.number: line.problem for line in model.invalid()}
    assert problems == {
        6: "the key data is not valid base64",
        7: "not a key line (no key type and key data)",
        8: "the key data is not base64",
        9: "the key type does not match the key data",
        10: "the key data is truncated",
        11: "an option has an unterminated quote",
        13: "not a key line (no key type and key data)",
    }
    for line in model.invalid():
        assert line.raw.strip() not in line.problem


def test_display_withholds_every_line_of_a_pasted_private_key():
    model = AuthorizedKeys.parse(corpus_text("private_pasted"))
    flags = [item.withheld for item in display_lines(model)]
    assert flags == [False] + [True] * 7 + [False]


# --------------------------------------------------------------------------------------------
# User input
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, reason, words",
    [
        ("ssh-ed25519", "malformed", "not a public key line"),
        ("ssh-ed25519 AAAA", "malformed", "truncated"),
        ("", "malformed", "empty"),
        ("# comment only", "malformed", "comment"),
        ("bogus " + "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMdTKAmwZ0PHw8JYb+is/mjbnGhyZwzqmG", "malformed", ""),
        ("line one\nline two", "malformed", "single line"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----", "private", "private key"),
    ],
)
def test_parse_key_line_rejects_bad_input_clearly(text, reason, words):
    with pytest.raises(AuthorizedKeysError) as caught:
        parse_key_line(text)
    assert caught.value.reason == reason
    assert words in str(caught.value)
    if len(text) > 20:
        assert text not in str(caught.value)


def test_parse_key_line_refuses_a_real_private_key(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    private = (tmp_path / "id").read_text()
    with pytest.raises(AuthorizedKeysError) as caught:
        parse_key_line(private)
    assert caught.value.reason == "private"
    body = private.splitlines()[1]
    assert body not in str(caught.value)


@pytest.mark.parametrize(
    "options, ok",
    [
        ("", True),
        ("restrict", True),
        ('from="10.0.0.0/8,192.168.0.0/16",no-pty', True),
        ('command="echo \\"a b\\""', True),
        ("NO-PTY", True),
        ("no-pty,bogus", False),
        ("from=10.0.0.1", False),
        ('no-pty="x"', False),
        ("no-pty restrict", False),
        ('from="unterminated', False),
        ("no-pty\nrestrict", False),
    ],
)
def test_validate_options(options, ok):
    if ok:
        validate_options(options)
    else:
        with pytest.raises(AuthorizedKeysError):
            validate_options(options)


# --------------------------------------------------------------------------------------------
# In-memory edits
# --------------------------------------------------------------------------------------------

def test_append_after_a_last_line_without_newline_terminates_it_only():
    text = corpus_text("no_final_newline")
    model = AuthorizedKeys.parse(text)
    model.append(parse_key_line(pub("rsa2048")))
    assert model.render() == text + "\n" + pub("rsa2048") + "\n"


def test_append_uses_crlf_in_a_crlf_file():
    text = corpus_text("crlf")
    model = AuthorizedKeys.parse(text)
    model.append(parse_key_line(pub("ecdsa256")))
    assert model.render() == text + pub("ecdsa256") + "\r\n"


def test_replace_line_keeps_position_and_terminator_and_other_lines():
    text = corpus_text("crlf")
    model = AuthorizedKeys.parse(text)
    old = model.keys()[0]
    new = parse_key_line(pub("ed25519b"))
    model.replace_line(old, new)
    lines = model.render().split("\r\n")
    assert lines[1] == pub("ed25519b")
    original = text.split("\r\n")
    assert lines[:1] + lines[2:] == original[:1] + original[2:]


def test_remove_key_removes_every_variant_and_nothing_else():
    model = AuthorizedKeys.parse(corpus_text("mixed"))
    before = model.render().splitlines(keepends=True)
    identity = parse_key_line(pub("ed25519")).identity()
    removed = model.remove_key(identity)
    assert [line.number for line in removed] == [5, 14]
    after = model.render().splitlines(keepends=True)
    assert after == [line for number, line in enumerate(before, 1) if number not in (5, 14)]


def test_make_key_line_validates():
    key_type, data = pub("ed25519").split()[:2]
    assert make_key_line(key_type, data, "c", "restrict").raw == f"restrict {key_type} {data} c"
    with pytest.raises(AuthorizedKeysError):
        make_key_line("ssh-rsa", data)
    with pytest.raises(AuthorizedKeysError):
        make_key_line(key_type, data, "two\nlines")


# --------------------------------------------------------------------------------------------
# The file on disk
# --------------------------------------------------------------------------------------------

def test_new_file_and_directory_get_0600_and_0700(tmp_path):
    path = tmp_path / "home" / ".ssh" / "authorized_keys"
    (tmp_path / "home").mkdir()
    old_umask = os.umask(0o077 ^ 0o777)  # a permissive umask must not leak into the modes
    try:
        with KeysFile(str(path), create_dir=True, owner=(os.getuid(), os.getgid())) as handle:
            assert handle.read().lines == []
            handle.write(pub("ed25519") + "\n")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == pub("ed25519") + "\n"
    assert (path.parent / ".authorized_keys.lock").exists()


def test_missing_directory_without_create_dir_is_an_error(tmp_path):
    with pytest.raises(AuthorizedKeysError) as caught:
        with KeysFile(str(tmp_path / "nope" / "authorized_keys")):
            pass
    assert caught.value.reason == "missing"
    assert not (tmp_path / "nope").exists()


def test_existing_mode_and_owner_are_kept(tmp_path):
    path = tmp_path / "authorized_keys"
    path.write_text("# old\n")
    os.chmod(path, 0o640)
    if os.geteuid() == 0:
        os.chown(path, 1234, 2345)
    with KeysFile(str(path), owner=(1234, 2345) if os.geteuid() == 0 else None) as handle:
        handle.read()
        handle.write("# new\n")
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 2345)
    assert path.read_text() == "# new\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files as someone else")
def test_file_owned_by_someone_else_is_refused_and_untouched(tmp_path):
    path = tmp_path / "authorized_keys"
    path.write_text("# theirs\n")
    os.chown(path, 4321, 4321)
    with pytest.raises(AuthorizedKeysError) as caught:
        with KeysFile(str(path), owner=(1234, 1234)) as handle:
            handle.read()
    assert caught.value.reason == "owner"
    assert "4321" in str(caught.value)
    assert path.read_text() == "# theirs\n"
    with pytest.raises(AuthorizedKeysError):
        read_keys_file(str(path), owner_uid=1234)


def test_symlinked_file_is_refused_unless_follow(tmp_path):
    real = tmp_path / "elsewhere"
    real.write_text("# target\n")
    link_dir = tmp_path / "ssh"
    link_dir.mkdir()
    (link_dir / "authorized_keys").symlink_to(real)
    with pytest.raises(AuthorizedKeysError) as caught:
        with KeysFile(str(link_dir / "authorized_keys")) as handle:
            handle.read()
    assert caught.value.reason == "symlink"
    assert real.read_text() == "# target\n"
    assert (link_dir / "authorized_keys").is_symlink()
    with KeysFile(str(link_dir / "authorized_keys"), follow=True) as handle:
        handle.read()
        handle.write("# via link\n")
    assert real.read_text() == "# via link\n"
    assert (link_dir / "authorized_keys").is_symlink()


def test_symlinked_directory_is_refused_unless_follow(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".ssh").symlink_to(real)
    path = tmp_path / "home" / ".ssh" / "authorized_keys"
    for create_dir in (False, True):
        with pytest.raises(AuthorizedKeysError) as caught:
            with KeysFile(str(path), create_dir=create_dir) as handle:
                handle.write("x\n")
        assert caught.value.reason == "symlink"
    with pytest.raises(AuthorizedKeysError):
        read_keys_file(str(path))
    assert list(real.iterdir()) == []
    assert read_keys_file(str(path), follow=True).exists is False


def test_read_keys_file_of_missing_things(tmp_path):
    assert read_keys_file(str(tmp_path / "none")).exists is False
    assert read_keys_file(str(tmp_path / "no" / "dir")).exists is False


def test_backup_and_restore(tmp_path):
    path = tmp_path / "authorized_keys"
    path.write_text("# version 1\n")
    os.chmod(path, 0o644)
    with KeysFile(str(path)) as handle:
        handle.read()
        backup = handle.write("# version 2\n", backup=True)
    assert backup is not None and Path(backup).parent == tmp_path
    assert Path(backup).name.startswith("authorized_keys.") and backup.endswith("~")
    assert Path(backup).read_text() == "# version 1\n"
    assert stat.S_IMODE(Path(backup).stat().st_mode) == 0o644
    assert path.read_text() == "# version 2\n"
    with KeysFile(str(path)) as handle:
        handle.restore(backup)
    assert path.read_text() == "# version 1\n"


@pytest.mark.parametrize("code, reason", [(errno.ENOSPC, "nospace"), (errno.EROFS, "readonly"), (errno.EDQUOT, "nospace")])
def test_write_failure_leaves_the_file_and_no_temp(tmp_path, monkeypatch, code, reason):
    path = tmp_path / "authorized_keys"
    path.write_text("# original\n")
    real_write = os.write

    def failing_write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(tmp_path)):
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    monkeypatch.setattr(ak.os, "write", failing_write)
    with pytest.raises(AuthorizedKeysError) as caught:
        with KeysFile(str(path)) as handle:
            handle.read()
            handle.write("# replaced\n" * 100)
    assert caught.value.reason == reason
    assert path.read_text() == "# original\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".authorized_keys.lock", "authorized_keys"]


def test_read_only_directory_reports_clearly(tmp_path, monkeypatch):
    path = tmp_path / "authorized_keys"
    path.write_text("# original\n")
    real_open = os.open

    def read_only_open(name, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and kwargs.get("dir_fd") is not None:
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(ak.os, "open", read_only_open)
    with pytest.raises(AuthorizedKeysError) as caught:
        with KeysFile(str(path)) as handle:
            handle.write("# new\n")
    assert caught.value.reason == "readonly"
    assert "read-only" in str(caught.value)
    assert path.read_text() == "# original\n"


def test_stale_temp_files_of_killed_writers_are_cleaned(tmp_path):
    path = tmp_path / "authorized_keys"
    path.write_text("# a\n")
    stale = tmp_path / ".authorized_keys.tmp.99999.deadbeef"
    stale.write_text("half a fi")
    with KeysFile(str(path)) as handle:
        handle.read()
        handle.write("# b\n")
    assert not stale.exists()
    assert path.read_text() == "# b\n"


def test_lock_times_out_with_a_clear_error(tmp_path):
    path = tmp_path / "authorized_keys"
    with KeysFile(str(path)):
        with pytest.raises(AuthorizedKeysError) as caught:
            with KeysFile(str(path), lock_timeout=0.2):
                pass
    assert caught.value.reason == "locked"


def test_using_the_handle_outside_with_is_an_error(tmp_path):
    handle = KeysFile(str(tmp_path / "authorized_keys"))
    with pytest.raises(AuthorizedKeysError):
        handle.write("x\n")


def test_context_hook_sees_the_temp_file_before_the_rename(tmp_path):
    path = tmp_path / "authorized_keys"
    path.write_text("# a\n")
    seen = []

    def hook(temp, final, existed):
        seen.append((Path(temp).parent == tmp_path, Path(temp).read_text(), final, existed, path.read_text()))

    with KeysFile(str(path), context_hook=hook) as handle:
        handle.read()
        handle.write("# b\n")
    assert seen == [(True, "# b\n", str(path), True, "# a\n")]

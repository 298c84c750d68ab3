# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side under inputs an attacker or a careless user would try: paths and homes, empty
items with exclusive, hard links, FIFOs, key material in any line, bytes that are not UTF-8,
unsafe modes, control characters, append-only directories. One table per class of attack; every
case failed before the fix it guards."""

from __future__ import annotations

import json
import os
import pwd
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils import _keys_file_checks
from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import (
    AuthorizedKeys,
    AuthorizedKeysError,
    parse_key_line,
    validate_options,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys_apply import (
    KeysInputError,
    apply,
    check_exclusive,
    normalise_keys,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_display import display_text
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file import KeysFile
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_info import inspect
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_target import Target, resolve_target
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file_checks import read_keys_file
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import secret_values

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "authorized_keys"
ME = pwd.getpwuid(os.getuid())
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root to own files as someone else")
OTHER_UID = 4321


def pub(name: str) -> str:
    """type and base64 of a fixture key, without its comment."""
    return " ".join((FIXTURES / "keys" / f"{name}.pub").read_text().split()[:2])


@pytest.fixture(scope="module")
def private_key(tmp_path_factory):
    """A real private key (PEM and OpenSSH forms) and its body lines, which must never show."""
    directory = tmp_path_factory.mktemp("private")
    forms = {}
    for name, fmt in (("pem", "PEM"), ("openssh", "RFC4716")):
        path = directory / name
        subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-m", fmt, "-f", str(path)],
                       check=True)
        forms[name] = path.read_text()
    return forms


def body_lines(private: str):
    return [line for line in private.splitlines() if line and not line.startswith("-----")]


def target(tmp_path: Path, home: Path = None) -> Target:
    home = home or tmp_path
    return Target(user=ME.pw_name, uid=os.getuid(), gid=os.getgid(), home=str(home),
                  path=str(home / ".ssh" / "authorized_keys"))


def keyfile(tmp_path: Path, text: str = "", mode: int = 0o600) -> Path:
    path = tmp_path / ".ssh" / "authorized_keys"
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


# -- 3. "~" is the managed user's home, not the home of whoever runs the module ----------------

@pytest.mark.parametrize("path, expected", [
    ("~/.ssh/authorized_keys", "{home}/.ssh/authorized_keys"),
    ("~", None),
    (f"~{ME.pw_name}/.ssh/keys", "{home}/.ssh/keys"),
    ("~/.ssh/../.ssh/authorized_keys", "{home}/.ssh/authorized_keys"),
    ("/etc/ssh/keys/x", "/etc/ssh/keys/x"),
])
def test_tilde_is_the_managed_users_home(path, expected):
    if expected is None:
        with pytest.raises(AuthorizedKeysError, match="directory"):
            resolve_target(ME.pw_name, path)
        return
    assert resolve_target(ME.pw_name, path).path == expected.format(home=ME.pw_dir.rstrip("/"))


@pytest.mark.parametrize("user, path, words", [
    (ME.pw_name, "~nobody/.ssh/authorized_keys", "another user's home"),
    (ME.pw_name, "~other-user/x", "another user's home"),
    (ME.pw_name, ".ssh/authorized_keys", "absolute"),
    (ME.pw_name, "$HOME/.ssh/authorized_keys", "absolute"),
    (ME.pw_name, "/root/.ssh/", "directory"),
    (ME.pw_name, "/", "directory"),
    (ME.pw_name, "/tmp/..", "directory"),
    (ME.pw_name, "", "empty"),
    (ME.pw_name, "   ", "empty"),
    (ME.pw_name, "/tmp/keys\n", "whitespace"),
    (ME.pw_name, " /tmp/keys", "whitespace"),
    (ME.pw_name, "/tmp/a\x00b", "NUL"),
    ("", None, "required"),
    ("ro\x00ot", None, "not a user name"),
    ("root\n", None, "not a user name"),
    ("../root", None, "not a user name"),
    ("no-such-user-here", None, "does not exist"),
])
def test_paths_and_users_that_cannot_be_resolved_safely(user, path, words):
    with pytest.raises(AuthorizedKeysError) as caught:
        resolve_target(user, path)
    assert words in str(caught.value)
    assert "\x00" not in str(caught.value)


def test_a_user_without_an_absolute_home_cannot_use_tilde(monkeypatch):
    entry = pwd.struct_passwd(("ghost", "x", 5555, 5555, "", "", "/bin/sh"))
    monkeypatch.setattr(pwd, "getpwnam", lambda name: entry)
    with pytest.raises(AuthorizedKeysError, match="no absolute home"):
        resolve_target("ghost", None)


# -- 4. an item that holds no key never empties the file ---------------------------------------

@pytest.mark.parametrize("item, words", [
    ("", "empty"),
    ("   ", "empty"),
    ("\n", "empty"),
    ("\n\n  \t\n", "empty"),
    ("# ssh-ed25519 AAAA commented out", "only comments"),
    ("#", "only comments"),
    ("# one\n# two\n", "only comments"),
])
def test_an_item_without_a_key_is_an_error(item, words):
    for keys in ([item], [pub("ed25519"), item]):
        with pytest.raises(KeysInputError) as caught:
            normalise_keys(keys)
        assert "holds no key" in str(caught.value) and words in str(caught.value)


@pytest.mark.parametrize("keys", [[], [{"key": pub("ed25519"), "state": "absent"}]])
def test_exclusive_with_nothing_to_keep_needs_allow_empty(tmp_path, keys):
    path = keyfile(tmp_path, f"{pub('ed25519')}\n{pub('rsa2048')}\n")
    entries = normalise_keys(keys)
    with pytest.raises(KeysInputError, match="allow_empty"):
        check_exclusive(entries, exclusive=True, allow_empty=False)
    check_exclusive(entries, exclusive=False, allow_empty=False)
    check_exclusive(entries, exclusive=True, allow_empty=True)
    assert path.read_text() == f"{pub('ed25519')}\n{pub('rsa2048')}\n"
    result = apply(target(tmp_path), entries, exclusive=True)
    assert result["changed"] and pub("rsa2048").split()[1] not in path.read_text()


# -- 5. hard links: never read, lock or chown through one ---------------------------------------

def test_a_hard_linked_keys_file_is_refused_for_reading_and_writing(tmp_path):
    secret = tmp_path / "someone-elses-file"
    secret.write_text("root-only line\n")
    path = tmp_path / ".ssh" / "authorized_keys"
    path.parent.mkdir(mode=0o700)
    os.link(secret, path)
    for call in (lambda: read_keys_file(str(path), owner_uid=os.getuid()),
                 lambda: inspect(target(tmp_path)),
                 lambda: apply(target(tmp_path), normalise_keys([pub("ed25519")])),
                 lambda: apply(target(tmp_path), normalise_keys([pub("ed25519")]), follow=True)):
        with pytest.raises(AuthorizedKeysError) as caught:
            call()
        assert caught.value.reason == "hardlink" and "root-only" not in str(caught.value)
    assert secret.read_text() == "root-only line\n" and os.stat(secret).st_nlink == 2


@needs_root
def test_a_hard_linked_lock_file_is_neither_used_nor_handed_over(tmp_path):
    shared = tmp_path / "shared-group-file"
    shared.write_text("group data\n")
    os.chown(shared, OTHER_UID, OTHER_UID)
    directory = tmp_path / ".ssh"
    directory.mkdir(mode=0o700)
    os.link(shared, directory / ".authorized_keys.lock")
    with pytest.raises(AuthorizedKeysError) as caught:
        with KeysFile(str(directory / "authorized_keys"), owner=(1234, 1234)):
            pass
    assert caught.value.reason == "hardlink"
    assert (os.stat(shared).st_uid, shared.read_text()) == (OTHER_UID, "group data\n")


@needs_root
def test_an_existing_lock_file_of_another_user_is_refused_not_chowned(tmp_path):
    directory = tmp_path / ".ssh"
    directory.mkdir(mode=0o700)
    lock = directory / ".authorized_keys.lock"
    lock.write_text("")
    os.chown(lock, OTHER_UID, OTHER_UID)
    with pytest.raises(AuthorizedKeysError) as caught:
        with KeysFile(str(directory / "authorized_keys"), owner=(1234, 1234)):
            pass
    assert caught.value.reason == "owner" and os.stat(lock).st_uid == OTHER_UID


@needs_root
def test_a_lock_file_the_module_creates_goes_to_the_user(tmp_path):
    directory = tmp_path / ".ssh"
    directory.mkdir(mode=0o700)
    with KeysFile(str(directory / "authorized_keys"), owner=(1234, 2345)) as handle:
        handle.read_state()
        handle.write("# x\n")
    lock = directory / ".authorized_keys.lock"
    assert (os.stat(lock).st_uid, stat.S_IMODE(os.stat(lock).st_mode)) == (1234, 0o600)


# -- 10. FIFOs, sockets and devices never block the task ------------------------------------------

def _plant(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
    elif kind == "directory":
        path.mkdir()


@pytest.mark.parametrize("kind", ["fifo", "socket", "directory"])
@pytest.mark.parametrize("name", ["authorized_keys", ".authorized_keys.lock"])
def test_no_regular_file_fails_at_once(tmp_path, kind, name, no_hang):
    directory = tmp_path / ".ssh"
    directory.mkdir(mode=0o700)
    if name != "authorized_keys":
        (directory / "authorized_keys").write_text(f"{pub('ed25519')}\n")
    _plant(directory / name, kind)
    calls = [lambda: apply(target(tmp_path), normalise_keys([pub("rsa2048")])),
             lambda: apply(target(tmp_path), normalise_keys([pub("rsa2048")]), check_mode=True)]
    if name == "authorized_keys":
        calls.append(lambda: inspect(target(tmp_path)))
    for call in calls:
        with pytest.raises(AuthorizedKeysError) as caught:
            call()
        assert caught.value.reason in ("type", "io") and "regular file" in str(caught.value)


# -- 6. private key material never reaches output, wherever it sits -------------------------------

def _pasted_as_comments(private: str) -> str:
    return "".join(f"# {line}\n" for line in private.splitlines())


@pytest.mark.parametrize("form", ["pem", "openssh"])
@pytest.mark.parametrize("shape", ["comment lines", "hash without space", "unreadable lines", "key comment",
                                   "option value", "indented"])
def test_key_material_in_the_file_is_withheld_from_diff_and_info(tmp_path, private_key, form, shape):
    private = private_key[form]
    lines = private.splitlines()
    text = {
        "comment lines": _pasted_as_comments(private),
        "hash without space": "".join(f"#{line}\n" for line in lines),
        "unreadable lines": private,
        "key comment": "".join(f"{pub('ecdsa256')} {line}\n" for line in lines),
        "option value": "".join(f'command="echo {line}" {pub("ecdsa256")}\n' for line in lines if "-" not in line),
        "indented": "".join(f"   {line}\n" for line in lines),
    }[shape]
    keyfile(tmp_path, f"{pub('rsa2048')}\n{text}")
    result = apply(target(tmp_path), normalise_keys([pub("ed25519")]), diff=True)
    info = inspect(target(tmp_path))
    output = json.dumps([result, info])
    for line in body_lines(private):
        assert line not in output
    assert "PRIVATE KEY" not in output
    assert pub("ed25519").split()[1] in result["diff"]["after"]


def test_a_diff_still_shows_ordinary_lines(tmp_path):
    keyfile(tmp_path, f"# team keys (rotated 2026-11)\n{pub('rsa2048')} alice@laptop\n")
    result = apply(target(tmp_path), normalise_keys([pub("ed25519")]), diff=True)
    assert result["diff"]["before"] == f"# team keys (rotated 2026-11)\n{pub('rsa2048')} alice@laptop\n"


@pytest.mark.parametrize("options", [
    'command="{line}"',
    '{line}',
    'command="{line}',
    'from="{line}",no-pty',
    '{line}="x"',
])
def test_option_errors_never_quote_key_material(private_key, options):
    for line in body_lines(private_key["pem"]):
        with pytest.raises(AuthorizedKeysError) as caught:
            validate_options(options.format(line=line) + ",bogus-option")
        for piece in (line, line[:-1], line[1:], line[:40]):
            assert piece not in str(caught.value)


def test_secret_values_cover_every_option_shape(private_key):
    private = private_key["pem"]
    params = {"user": "root", "keys": [private, {"key": pub("ed25519"), "comment": private},
                                       {"key": pub("ed25519"), "options": f'command="{private}"'}],
              "path": "/x", "nested": {"deep": [private.replace("\n", "\r\n")]}}
    found = secret_values(params)
    for line in body_lines(private):
        assert line in found
    assert private in found and "".join(body_lines(private)) in found
    assert "root" not in found and "/x" not in found


# -- 8. bytes that are not UTF-8, and control characters, in output -------------------------------

def test_a_file_that_is_not_utf8_gives_a_serialisable_result(tmp_path):
    path = keyfile(tmp_path)
    path.write_bytes(b"# caf\xe9 \xff\xfe\n" + pub("rsa2048").encode() + b" \xc3\x28\n")
    result = apply(target(tmp_path), normalise_keys([pub("ed25519")]), diff=True)
    info = inspect(target(tmp_path))
    text = json.dumps([result, info], ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogates left
    assert "caf\\xe9 \\xff\\xfe" in result["diff"]["before"]
    assert path.read_bytes().startswith(b"# caf\xe9 \xff\xfe\n" + pub("rsa2048").encode() + b" \xc3\x28\n")
    assert info["public_keys"][0]["comment"] == "\\xc3("
    again = apply(target(tmp_path), normalise_keys([pub("ed25519")]))
    assert again["changed"] is False


def test_control_characters_in_the_file_are_escaped_in_output(tmp_path):
    keyfile(tmp_path, f"{pub('rsa2048')} evil\x1b]0;owned\x07\n# bell\x07\n")
    info = inspect(target(tmp_path))
    result = apply(target(tmp_path), normalise_keys([pub("ed25519")]), diff=True)
    text = json.dumps([info, result])
    assert "\\u001b" not in text and "\\u0007" not in text
    assert info["public_keys"][0]["comment"] == "evil\\x1b]0;owned\\x07"


# -- 12. control characters in input, and check mode where the real run refuses -------------------

@pytest.mark.parametrize("item", [
    {"key": pub("ed25519"), "comment": "ok\x00evil"},
    {"key": pub("ed25519"), "comment": "\x1b[31mred"},
    {"key": pub("ed25519"), "options": 'command="echo\x00"'},
    {"key": pub("ed25519"), "options": 'from="10.0.0.1\x1b"'},
    pub("ed25519") + " comment\x00",
    pub("ed25519") + " \x1b[2Jclear",
    "no-pty\x00 " + pub("ed25519"),
])
def test_control_characters_in_input_are_refused(item):
    with pytest.raises(KeysInputError) as caught:
        normalise_keys([item])
    assert "control character" in str(caught.value) or "NUL" in str(caught.value)


def test_check_mode_fails_where_the_real_run_fails(tmp_path):
    home = tmp_path / "missing-home"
    entries = normalise_keys([pub("ed25519")])
    for check_mode in (True, False):
        with pytest.raises(AuthorizedKeysError, match="does not exist"):
            apply(target(tmp_path, home), entries, check_mode=check_mode)
        with pytest.raises(AuthorizedKeysError, match="manage_dir"):
            apply(target(tmp_path), entries, check_mode=check_mode, manage_dir=False)
    assert not home.exists() and not (tmp_path / ".ssh").exists()


@pytest.mark.parametrize("flag, words", [(0x20, "append-only"), (0x10, "immutable")])
@pytest.mark.parametrize("on", ["directory", "file"])
def test_append_only_or_immutable_is_refused_before_any_write(tmp_path, monkeypatch, flag, words, on):
    path = keyfile(tmp_path, f"{pub('rsa2048')}\n")
    watched = str(path.parent if on == "directory" else path)

    def flags(fd):
        return flag if os.readlink(f"/proc/self/fd/{fd}") == watched else 0

    monkeypatch.setattr(_keys_file_checks, "inode_flags", flags)
    for check_mode in (True, False):
        with pytest.raises(AuthorizedKeysError, match=words):
            apply(target(tmp_path), normalise_keys([pub("ed25519")]), check_mode=check_mode)
    assert sorted(os.listdir(path.parent)) in (["authorized_keys"], [".authorized_keys.lock", "authorized_keys"])
    assert path.read_text() == f"{pub('rsa2048')}\n"


# -- 11. modes sshd refuses are repaired, or fail before anything changes --------------------------

@pytest.mark.parametrize("file_mode, dir_mode, fixed", [
    (0o666, 0o700, ["{file}: mode 0666 -> 0644"]),
    (0o620, 0o700, ["{file}: mode 0620 -> 0600"]),
    (0o600, 0o777, ["{dir}: mode 0777 -> 0755"]),
    (0o602, 0o730, ["{file}: mode 0602 -> 0600", "{dir}: mode 0730 -> 0710"]),
])
def test_unsafe_modes_are_repaired_and_reported(tmp_path, file_mode, dir_mode, fixed):
    path = keyfile(tmp_path, f"{pub('ed25519')}\n", file_mode)
    path.parent.chmod(dir_mode)
    expected = [item.format(file=path, dir=path.parent) for item in fixed]
    entries = normalise_keys([pub("ed25519")])
    assert inspect(target(tmp_path))["problems"]
    check = apply(target(tmp_path), entries, check_mode=True)
    assert check["changed"] and check["fixed_modes"] == expected
    assert stat.S_IMODE(path.stat().st_mode) == file_mode
    applied = apply(target(tmp_path), entries)
    assert applied["changed"] and applied["fixed_modes"] == expected and applied["added"] == []
    assert not stat.S_IMODE(path.stat().st_mode) & 0o022 and not stat.S_IMODE(path.parent.stat().st_mode) & 0o022
    assert path.read_text() == f"{pub('ed25519')}\n"
    assert apply(target(tmp_path), entries)["changed"] is False
    assert inspect(target(tmp_path))["problems"] == []


@pytest.mark.parametrize("home_mode", [0o777, 0o775, 0o1777])
def test_a_home_others_can_write_fails_before_anything_changes(tmp_path, home_mode):
    home = tmp_path / "home"
    home.mkdir()
    path = keyfile(home, f"{pub('rsa2048')}\n")
    home.chmod(home_mode)
    for check_mode in (True, False):
        with pytest.raises(AuthorizedKeysError, match="StrictModes") as caught:
            apply(target(tmp_path, home), normalise_keys([pub("ed25519")]), check_mode=check_mode)
        assert caught.value.reason == "mode"
    assert path.read_text() == f"{pub('rsa2048')}\n"


# -- round trip of what the model renders for these inputs -----------------------------------------

def test_refused_input_never_reaches_the_model():
    with pytest.raises(AuthorizedKeysError):
        parse_key_line(pub("ed25519") + " a\x00b")
    assert display_text(AuthorizedKeys.parse("")) == ""

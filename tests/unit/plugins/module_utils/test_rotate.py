# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host steps of authorized_key_rotate on real files: add, remove_old, restore."""

from __future__ import annotations

import os
import pwd

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import AuthorizedKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_target import Target
from ansible_collections.sshkeys.ecs.plugins.module_utils._private_keys import generate_private_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._rotate import (
    RotateError,
    check_distinct,
    parse_new_key,
    parse_old_key,
    parse_old_keys,
    StepOptions,
    run_step,
    step_add,
    step_remove_old,
    step_restore,
)

ME = pwd.getpwuid(os.getuid()).pw_name


def key(kind: str = "ed25519", comment: str = ""):
    return generate_private_key(kind, comment=comment)[1]


OLD = key("ecdsa", "old")
NEW = key("ed25519", "new")
OTHER = key("ed25519", "other")


@pytest.fixture()
def target(tmp_path):
    directory = tmp_path / ".ssh"
    directory.mkdir(mode=0o700)
    return Target(user=ME, uid=os.getuid(), gid=os.getgid(), home=str(tmp_path),
                  path=str(directory / "authorized_keys"))


def write(target, text: str) -> None:
    with open(target.path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(target.path, 0o600)


def read(target) -> str:
    with open(target.path, encoding="utf-8") as handle:
        return handle.read()


ORIGINAL = f"# team keys\n{OTHER.line()}\nno-pty,from=\"10.0.0.0/8\" {OLD.line()}\n\n"


# -- input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, kind", [
    (OLD.fingerprint("sha256"), "sha256"),
    (OLD.fingerprint("md5"), "md5"),
    (OLD.fingerprint("md5")[4:].upper(), "md5"),
    (OLD.line(), None),
    (f'command="/bin/true" {OLD.line()}', None),
], ids=["sha256", "md5", "bare-md5", "line", "line-with-options"])  # keys differ per xdist worker: fixed ids
def test_old_key_forms_match_the_old_line(text, kind):
    spec = parse_old_key(text, "old_key[0]")
    assert spec.algorithm == kind
    assert spec.matches(parse_new_key(OLD.line(), keep_options=True))
    assert not spec.matches(parse_new_key(NEW.line(), keep_options=True))


@pytest.mark.parametrize("text", ["SHA256:short", "not a key", "ssh-ed25519 AAAA", "-----BEGIN OPENSSH PRIVATE KEY-----"])
def test_bad_old_key_is_named_by_index_not_content(text):
    with pytest.raises(RotateError) as error:
        parse_old_keys([OLD.line(), text])
    assert "old_key[1]" in str(error.value)
    if len(text) > 12:
        assert text not in str(error.value)


def test_no_old_key_at_all():
    with pytest.raises(RotateError, match="at least one"):
        parse_old_keys([])


def test_new_key_options_need_keep_options_false():
    with pytest.raises(RotateError, match="keep_options"):
        parse_new_key(f"no-pty {NEW.line()}", keep_options=True)
    assert parse_new_key(f"no-pty {NEW.line()}", keep_options=False).options == "no-pty"


@pytest.mark.parametrize("old", [NEW.line(), NEW.fingerprint("sha256"), f"no-pty {NEW.identity()} other-comment"],
                         ids=["line", "fingerprint", "other-options-and-comment"])
def test_new_key_equal_to_old_key_is_an_error(old):
    with pytest.raises(RotateError, match="same key"):
        check_distinct(parse_new_key(NEW.line(), True), parse_old_keys([old]))


# -- add -----------------------------------------------------------------------------------------

def test_add_puts_the_new_key_after_the_old_one_with_its_options(target):
    write(target, ORIGINAL)
    result = step_add(target, parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()]), diff=True)
    assert result["outcome"] == "added"
    assert "original" not in result
    with open(result["run_backup"], encoding="utf-8") as handle:
        assert handle.read() == ORIGINAL
    assert os.stat(result["run_backup"]).st_mode & 0o777 == 0o600
    assert os.path.dirname(result["run_backup"]) == os.path.dirname(target.path)
    assert read(target) == (f"# team keys\n{OTHER.line()}\nno-pty,from=\"10.0.0.0/8\" {OLD.line()}\n"
                            f"no-pty,from=\"10.0.0.0/8\" {NEW.line()}\n\n")
    assert result["old_keys"] == [OLD.fingerprint("sha256")]
    assert result["new_key"] == NEW.fingerprint("sha256")
    assert result["written"] and result["backup_file"] is None
    assert NEW.identity() in result["planned"]["after"] and OLD.identity() not in result["planned"]["after"]


def test_add_without_keep_options_uses_the_new_keys_own(target):
    write(target, ORIGINAL)
    step_add(target, parse_new_key(f"restrict {NEW.line()}", False), parse_old_keys([OLD.fingerprint()]),
             keep_options=False)
    assert f"\nrestrict {NEW.line()}\n" in read(target)


def test_add_with_backup_keeps_the_original(target):
    write(target, ORIGINAL)
    result = step_add(target, parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()]), backup=True)
    with open(result["backup_file"], encoding="utf-8") as handle:
        assert handle.read() == ORIGINAL


def test_add_in_check_mode_changes_nothing(target):
    write(target, ORIGINAL)
    result = step_add(target, parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()]), check_mode=True,
                      diff=True)
    assert read(target) == ORIGINAL
    assert result["outcome"] == "added" and result["changed"]
    assert result["planned"]["before"] == ORIGINAL


def test_add_when_already_rotated_is_done(target):
    write(target, f"{OTHER.line()}\n{NEW.line()}\n")
    result = step_add(target, parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()]))
    assert result["outcome"] == "done" and not result["changed"]
    assert "original" not in result and result["run_backup"] is None


def test_add_with_both_keys_present_writes_nothing(target):
    write(target, f"{OLD.line()}\n{NEW.line()}\n")
    before = os.stat(target.path)
    result = step_add(target, parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()]))
    assert result["outcome"] == "both" and result["written"] is None
    assert os.stat(target.path).st_ino == before.st_ino


def test_add_without_old_or_new_key_fails_and_changes_nothing(target):
    write(target, ORIGINAL)
    with pytest.raises(RotateError, match="nothing to rotate"):
        step_add(target, parse_new_key(NEW.line(), True), parse_old_keys([key().line()]))
    assert read(target) == ORIGINAL


def test_add_on_a_missing_file_fails(target):
    with pytest.raises(RotateError, match="does not exist"):
        step_add(target, parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()]))


# -- remove_old and restore ----------------------------------------------------------------------

def test_remove_old_removes_every_old_line(target):
    write(target, f"{OLD.line()}\nno-pty {OLD.identity()} again\n{NEW.line()}\n")
    result = step_remove_old(target, parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()]))
    assert read(target) == f"{NEW.line()}\n"
    assert result["removed"] == [OLD.fingerprint("sha256")] * 2


def test_remove_old_refuses_when_the_new_key_vanished(target):
    write(target, ORIGINAL)
    with pytest.raises(RotateError, match="no longer"):
        step_remove_old(target, parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()]))
    assert read(target) == ORIGINAL


def test_restore_after_add_and_after_remove_is_exact(target):
    write(target, ORIGINAL)
    new, old = parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()])
    added = step_add(target, new, old)
    removed = step_remove_old(target, new, old)
    result = step_restore(target, added["run_backup"], [added["written"], removed["written"]], new, old)
    assert result == {"path": target.path, "changed": True, "restored": "exact"}
    assert read(target) == ORIGINAL
    assert not os.path.exists(added["run_backup"])


def test_remove_old_removes_the_run_backup_when_told(target):
    write(target, ORIGINAL)
    new, old = parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()])
    added = step_add(target, new, old)
    step_remove_old(target, new, old, run_backup=added["run_backup"])
    assert not os.path.exists(added["run_backup"])
    assert sorted(os.listdir(os.path.dirname(target.path))) == [".authorized_keys.lock", "authorized_keys"]


def test_restore_refuses_a_backup_that_is_not_the_runs_own(target, tmp_path):
    write(target, ORIGINAL)
    new, old = parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()])
    elsewhere = tmp_path / "other"
    elsewhere.write_text("# not a backup of this file\n")
    for path in (str(elsewhere), os.path.join(os.path.dirname(target.path), "authorized_keys2")):
        with pytest.raises(AuthorizedKeysError, match="backup"):
            step_restore(target, path, [], new, old)
    assert read(target) == ORIGINAL


def test_restore_keeps_a_concurrent_change(target):
    write(target, ORIGINAL)
    new, old = parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()])
    added = step_add(target, new, old)
    step_remove_old(target, new, old)
    extra = key(comment="added-meanwhile").line()
    with open(target.path, "a", encoding="utf-8") as handle:
        handle.write(extra + "\n")
    result = step_restore(target, added["run_backup"], [added["written"]], new, old)
    assert result["restored"] == "merged"
    text = read(target)
    assert extra in text and OLD.identity() in text and NEW.identity() not in text


def test_restore_of_an_untouched_file_does_nothing(target):
    write(target, f"{OLD.line()}\n{NEW.line()}\n")
    new, old = parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()])
    added = step_add(target, new, old)
    assert added["outcome"] == "both"
    result = step_restore(target, added["run_backup"], [], new, old)
    assert result["changed"] is False and read(target) == f"{OLD.line()}\n{NEW.line()}\n"


# -- one module run ------------------------------------------------------------------------------

def base_params(target, **extra):
    params = {"user": ME, "path": target.path, "old_key": [OLD.line()], "new_key": NEW.line(),
              "keep_options": True, "backup": False, "follow": False}
    params.update(extra)
    return params


def test_run_step_needs_the_action_plugin(target):
    write(target, ORIGINAL)
    with pytest.raises(RotateError, match="action plugin"):
        run_step(StepOptions.from_params(base_params(target)))


@pytest.mark.parametrize("phase", ["restore", "forget"])
def test_run_step_refuses_a_step_without_the_run_backup(target, phase):
    write(target, ORIGINAL)
    with pytest.raises(RotateError, match="backup"):
        run_step(StepOptions.from_params(base_params(target, _phase=phase)))


def test_run_step_add_then_remove(target):
    write(target, ORIGINAL)
    assert run_step(StepOptions.from_params(base_params(target, _phase="add")))["outcome"] == "added"
    assert run_step(StepOptions.from_params(base_params(target, _phase="remove_old")))["changed"]
    assert run_step(StepOptions.from_params(base_params(target, _phase="add")))["outcome"] == "done"
    assert OLD.identity() not in read(target)


def test_add_carries_no_file_content_without_diff(target):
    # The module's raw answer shows at -vvv: without diff mode it holds fingerprints and paths only.
    write(target, f"# a comment only this file has\n{OLD.line()}\n")
    new, old = parse_new_key(NEW.line(), True), parse_old_keys([OLD.line()])
    for check_mode in (True, False):
        result = step_add(target, new, old, check_mode=check_mode)
        assert "planned" not in result and "only this file has" not in repr(result)
        if not check_mode:
            step_restore(target, result["run_backup"], [result["written"]], new, old)

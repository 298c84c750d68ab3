# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Desired-state logic: matching entries to lines, replace, exclusive, input errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import AuthorizedKeys, AuthorizedKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys_apply import (
    KeysInputError,
    apply,
    normalise_keys,
    plan,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_display import display_text
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_info import inspect
from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_target import Target, resolve_target

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "authorized_keys"


def pub(name: str) -> str:
    return (FIXTURES / "keys" / f"{name}.pub").read_text().strip()


def ident(name: str) -> str:
    return " ".join(pub(name).split()[:2])


def fp(name: str) -> str:
    import json
    return json.loads((FIXTURES / "expected.json").read_text())["fingerprints"][name]


def run(text: str, keys, **kwargs):
    result = plan(AuthorizedKeys.parse(text), normalise_keys(keys), **kwargs)
    return result, result.model.render()


def test_adds_below_existing_and_keeps_everything_else():
    text = (FIXTURES / "mixed.txt").read_text()
    result, after = run(text, [pub("rsa2048"), pub("ed25519")])
    assert after == text + pub("rsa2048") + "\n"
    assert result.added == [fp("rsa2048")] and result.removed == [] and result.changed == []


def test_same_key_with_different_options_is_two_lines():
    keys = [{"key": pub("ed25519"), "options": "restrict"},
            {"key": pub("ed25519"), "options": 'from="10.0.0.0/8"'}]
    result, after = run("", keys)
    assert after == f"restrict {pub('ed25519')}\nfrom=\"10.0.0.0/8\" {pub('ed25519')}\n"
    assert result.added == [fp("ed25519")] * 2
    again, after2 = run(after, keys)
    assert not again.has_changes and after2 == after


def test_a_key_without_options_leaves_existing_options_alone():
    text = f'from="1.2.3.4",no-pty {pub("ed25519")}\n'
    result, after = run(text, [pub("ed25519")])
    assert not result.has_changes and after == text


def test_given_options_rewrite_the_line_in_place():
    text = f"# top\n{pub('ed25519')}\n{pub('rsa2048')}\n"
    result, after = run(text, [{"key": pub("ed25519"), "options": "restrict"}])
    assert after == f"# top\nrestrict {pub('ed25519')}\n{pub('rsa2048')}\n"
    assert result.changed == [fp("ed25519")] and result.added == []


def test_empty_options_remove_options():
    text = f"restrict {pub('ed25519')}\n"
    result, after = run(text, [{"key": pub("ed25519"), "options": ""}])
    assert after == pub("ed25519") + "\n" and result.changed == [fp("ed25519")]


def test_comment_is_enforced_only_when_given():
    key_type, data = ident("ed25519").split()
    text = f"{key_type} {data} old comment\n"
    for keys in ([f"{key_type} {data}"], [f"{key_type} {data} the key's own comment"]):
        result, after = run(text, keys)
        assert not result.has_changes
    result, after = run(text, [{"key": f"{key_type} {data}", "comment": "new comment"}])
    assert after == f"{key_type} {data} new comment\n" and result.changed == [fp("ed25519")]


def test_absent_removes_every_variant():
    text = (FIXTURES / "duplicates.txt").read_text() + pub("rsa2048") + "\n"
    result, after = run(text, [{"key": pub("ed25519"), "state": "absent"}])
    assert after == pub("rsa2048") + "\n" and result.removed == [fp("ed25519")] * 4
    again = run(after, [{"key": pub("ed25519"), "state": "absent"}])[0]
    assert not again.has_changes


def test_exclusive_removes_unlisted_keys_and_unreadable_lines_keeps_comments():
    text = (FIXTURES / "mixed.txt").read_text()
    result, after = run(text, [pub("ecdsa256")], exclusive=True)
    head = "".join(text.splitlines(keepends=True)[:4])
    assert after == head + pub("ecdsa256") + "\n"
    assert sorted(result.removed) == sorted([fp("ed25519"), fp("ed25519"), fp("ecdsa384")])
    assert result.removed_invalid_lines == [6, 7, 8, 9, 10, 11, 13]
    again, after2 = run(after, [pub("ecdsa256")], exclusive=True)
    assert not again.has_changes and after2 == after


def test_exclusive_drops_extra_variants_of_a_listed_key():
    text = (FIXTURES / "duplicates.txt").read_text()
    result, after = run(text, [{"key": pub("ed25519"), "options": "restrict"}], exclusive=True)
    assert after == f"restrict {ident('ed25519')} restricted\n"
    assert len(result.removed) == 3


def test_duplicate_entries_give_one_line():
    result, after = run("", [pub("ed25519"), pub("ed25519")])
    assert after == pub("ed25519") + "\n" and result.added == [fp("ed25519")]


def test_replace_in_place_keeps_options_and_position():
    text = f"# a\nfrom=\"10.0.0.0/8\",no-pty {pub('rsa1024')}\n{pub('ecdsa256')}\n"
    keys = [{"key": pub("ed25519"), "replaces": pub("rsa1024")}]
    result, after = run(text, keys)
    assert after == f"# a\nfrom=\"10.0.0.0/8\",no-pty {pub('ed25519')}\n{pub('ecdsa256')}\n"
    assert result.replaced == [{"old": fp("rsa1024"), "new": fp("ed25519")}]
    assert result.added == [fp("ed25519")] and result.removed == [fp("rsa1024")]
    again, after2 = run(after, keys)
    assert not again.has_changes and after2 == after


def test_replace_with_new_options():
    text = f"from=\"10.0.0.0/8\" {pub('rsa1024')}\n"
    result, after = run(text, [{"key": pub("ed25519"), "replaces": pub("rsa1024"), "options": "restrict"}])
    assert after == f"restrict {pub('ed25519')}\n"


def test_replace_when_new_key_is_already_there_only_drops_the_old():
    text = f"{pub('ed25519')}\n{pub('rsa1024')}\n"
    result, after = run(text, [{"key": pub("ed25519"), "replaces": pub("rsa1024")}])
    assert after == pub("ed25519") + "\n" and result.removed == [fp("rsa1024")] and result.added == []


def test_replace_of_a_missing_key_fails_unless_asked_to_add():
    keys = [{"key": pub("ed25519"), "replaces": pub("rsa1024")}]
    with pytest.raises(KeysInputError) as caught:
        run(f"{pub('ecdsa256')}\n", keys)
    message = str(caught.value)
    assert "keys[0]" in message and fp("rsa1024") in message and "replace_missing" in message
    result, after = run(f"{pub('ecdsa256')}\n", keys, replace_missing="add")
    assert after == f"{pub('ecdsa256')}\n{pub('ed25519')}\n" and result.added == [fp("ed25519")]


def test_string_item_with_several_lines():
    text = f"# team keys\n{pub('ed25519')}\n\n{pub('rsa2048')}\n"
    entries = normalise_keys([text])
    assert [e.identity for e in entries] == [ident("ed25519"), ident("rsa2048")]
    assert entries[1].index == "keys[0] line 4"


@pytest.mark.parametrize(
    "keys, words",
    [
        (["ssh-ed25519 AAAA"], "keys[0]"),
        ([pub("ed25519"), "nonsense"], "keys[1]"),
        ([{"options": "restrict"}], "'key' is required"),
        ([{"key": pub("ed25519"), "colour": "red"}], "unknown field(s) 'colour'"),
        ([{"key": pub("ed25519"), "state": "gone"}], "state must be present or absent"),
        ([{"key": pub("ed25519"), "options": "no-such-option"}], "unknown option"),
        ([{"key": pub("ed25519"), "comment": "a\nb"}], "one line"),
        ([{"key": pub("ed25519"), "replaces": pub("ed25519")}], "cannot replace itself"),
        ([{"key": pub("ed25519"), "replaces": pub("rsa1024"), "state": "absent"}], "needs state present"),
        ([pub("ed25519"), {"key": pub("ed25519"), "state": "absent"}], "also wanted present"),
        ([42], "must be a key line or a dict"),
        ("not a list", "must be a list"),
    ],
)
def test_bad_input_names_the_entry(keys, words):
    with pytest.raises(KeysInputError) as caught:
        normalise_keys(keys)
    assert words in str(caught.value)


def test_private_key_in_keys_is_refused_without_echo(tmp_path):
    import subprocess
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-m", "PEM", "-f", str(tmp_path / "id")],
                   check=True)
    private = (tmp_path / "id").read_text()
    for keys in ([private], [{"key": private}], [{"key": pub("ed25519"), "replaces": private}]):
        with pytest.raises(KeysInputError) as caught:
            normalise_keys(keys)
        assert "private key" in str(caught.value)
        for line in private.splitlines()[1:-1]:
            assert line not in str(caught.value)


def test_display_text_withholds_private_blocks():
    model = AuthorizedKeys.parse((FIXTURES / "private_pasted.txt").read_text())
    text = display_text(model)
    assert "PRIVATE KEY" not in text
    assert text.count("line withheld") == 7
    assert ident("ed25519") in text and ident("rsa2048") in text


def target(tmp_path: Path) -> Target:
    return Target(user="someone", uid=os.getuid(), gid=os.getgid(), home=str(tmp_path),
                  path=str(tmp_path / ".ssh" / "authorized_keys"))


def test_apply_check_mode_changes_nothing_and_predicts_the_result(tmp_path):
    entries = normalise_keys([pub("ed25519")])
    predicted = apply(target(tmp_path), entries, check_mode=True, diff=True)
    assert predicted["changed"] and predicted["added"] == [fp("ed25519")]
    assert not (tmp_path / ".ssh").exists()
    done = apply(target(tmp_path), entries, diff=True)
    assert done["diff"] == predicted["diff"] and done["added"] == predicted["added"]
    assert (tmp_path / ".ssh" / "authorized_keys").read_text() == pub("ed25519") + "\n"
    again = apply(target(tmp_path), entries, check_mode=True)
    assert not again["changed"] and "diff" not in again


def test_apply_without_changes_creates_nothing(tmp_path):
    result = apply(target(tmp_path), normalise_keys([{"key": pub("ed25519"), "state": "absent"}]))
    assert not result["changed"] and not (tmp_path / ".ssh").exists()


def test_apply_check_mode_fails_like_the_real_run_without_manage_dir(tmp_path):
    entries = normalise_keys([pub("ed25519")])
    for check_mode in (True, False):
        with pytest.raises(AuthorizedKeysError) as caught:
            apply(target(tmp_path), entries, manage_dir=False, check_mode=check_mode)
        assert caught.value.reason == "missing"


def test_apply_backup(tmp_path):
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "authorized_keys").write_text(pub("rsa1024") + "\n")
    result = apply(target(tmp_path), normalise_keys([pub("ed25519")]), backup=True)
    assert Path(result["backup_file"]).read_text() == pub("rsa1024") + "\n"


def test_resolve_target():
    root = resolve_target("root", None)
    assert root.uid == 0 and root.path.endswith("/.ssh/authorized_keys")
    assert resolve_target("root", "~/keys").path == os.path.join(root.home, "keys")
    with pytest.raises(AuthorizedKeysError) as caught:
        resolve_target("no-such-user-here", None)
    assert caught.value.reason == "user"
    with pytest.raises(AuthorizedKeysError):
        resolve_target("root", "relative/path")


def test_inspect_reports_keys_weak_flags_and_withholds_private_lines(tmp_path):
    (tmp_path / ".ssh").mkdir()
    content = (FIXTURES / "options.txt").read_text() + (FIXTURES / "private_pasted.txt").read_text()
    (tmp_path / ".ssh" / "authorized_keys").write_text(content)
    info = inspect(target(tmp_path))
    by_line = {k["line"]: k for k in info["public_keys"]}
    assert by_line[2]["options"] == ['from="10.0.0.0/8,192.168.1.1,!192.168.1.2"', "no-pty"]
    assert by_line[2]["fingerprint_sha256"] == fp("ed25519") and by_line[2]["bits"] == 256
    assert by_line[2]["fingerprint_md5"].startswith("MD5:") and by_line[2]["weak"] is False
    assert by_line[5]["cert_authority"] is True
    assert by_line[8]["is_certificate"] is True
    assert by_line[9]["weak"] and by_line[9]["bits"] == 1024
    assert by_line[10]["weak"] and by_line[10]["family"] == "DSA"
    assert set(info["weak_keys"]) == {fp("rsa1024"), fp("dsa")}
    assert [i["line"] for i in info["invalid_lines"]] == list(range(12, 19))
    assert all(i["text"] is None and i["looks_private"] for i in info["invalid_lines"])
    assert "PRIVATE" not in repr(info)


def test_inspect_missing_file(tmp_path):
    info = inspect(target(tmp_path))
    assert info["exists"] is False and info["public_keys"] == [] and info["mode"] is None

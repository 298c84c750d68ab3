# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""authorized_keys and authorized_keys_info main(): the JSON they exit with, and the file."""

from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess
from pathlib import Path

import pytest

from ansible_collections.sshkeys.ecs.plugins.modules import authorized_keys, authorized_keys_info

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "authorized_keys"
FINGERPRINTS = json.loads((FIXTURES / "expected.json").read_text())["fingerprints"]
ME = pwd.getpwuid(os.getuid()).pw_name


def pub(name: str) -> str:
    return (FIXTURES / "keys" / f"{name}.pub").read_text().strip()


@pytest.fixture()
def run(run_module):
    def runner(main, args, **kwargs):
        return run_module(main, dict({"user": ME}, **args), credentials=False, **kwargs)[0]
    return runner


@pytest.fixture()
def keyfile(tmp_path):
    return tmp_path / "home" / ".ssh" / "authorized_keys"


def test_add_check_apply_check_apply(run, keyfile):
    keyfile.parent.parent.mkdir()
    args = {"path": str(keyfile), "keys": [pub("ed25519"), {"key": pub("rsa2048"), "options": "restrict"}]}
    first = run(authorized_keys.main, args, check=True, diff=True)
    assert first["changed"] is True
    assert first["added"] == [FINGERPRINTS["ed25519"], FINGERPRINTS["rsa2048"]]
    assert first["removed"] == [] and first["changed_keys"] == [] and first["replaced"] == []
    assert first["diff"]["before"] == ""
    assert first["diff"]["after"] == f"{pub('ed25519')}\nrestrict {pub('rsa2048')}\n"
    assert not keyfile.parent.exists()
    applied = run(authorized_keys.main, args, diff=True)
    assert applied["changed"] is True and applied["added"] == first["added"]
    assert applied["diff"] == first["diff"]
    assert keyfile.read_text() == first["diff"]["after"]
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(keyfile.parent.stat().st_mode) == 0o700
    assert "backup_file" not in applied and "diff" in applied
    for check in (True, False):
        again = run(authorized_keys.main, args, check=check)
        assert again["changed"] is False and again["added"] == [] and "diff" not in again


def test_exclusive_and_backup(run, keyfile):
    keyfile.parent.mkdir(parents=True)
    keyfile.write_text(f"# managed\n{pub('rsa1024')}\n{pub('ecdsa256')}\n")
    result = run(authorized_keys.main, {"path": str(keyfile), "keys": [pub("ecdsa256")], "exclusive": True,
                                        "backup": True})
    assert result["changed"] and result["removed"] == [FINGERPRINTS["rsa1024"]]
    assert keyfile.read_text() == f"# managed\n{pub('ecdsa256')}\n"
    assert Path(result["backup_file"]).read_text() == f"# managed\n{pub('rsa1024')}\n{pub('ecdsa256')}\n"


def test_replace_keeps_options_and_place(run, keyfile):
    keyfile.parent.mkdir(parents=True)
    keyfile.write_text(f"{pub('ecdsa256')}\nfrom=\"10.0.0.0/8\" {pub('rsa1024')}\n# end\n")
    args = {"path": str(keyfile), "keys": [{"key": pub("ed25519"), "replaces": pub("rsa1024")}]}
    result = run(authorized_keys.main, args, diff=True)
    assert result["replaced"] == [{"old": FINGERPRINTS["rsa1024"], "new": FINGERPRINTS["ed25519"]}]
    assert keyfile.read_text() == f"{pub('ecdsa256')}\nfrom=\"10.0.0.0/8\" {pub('ed25519')}\n# end\n"
    assert run(authorized_keys.main, args)["changed"] is False


def test_replace_of_a_missing_key_fails_and_changes_nothing(run, keyfile):
    keyfile.parent.mkdir(parents=True)
    keyfile.write_text(f"{pub('ecdsa256')}\n")
    args = {"path": str(keyfile), "keys": [{"key": pub("ed25519"), "replaces": pub("rsa1024")}]}
    failed = run(authorized_keys.main, args)
    assert failed["failed"] is True and "is not in the file" in failed["msg"] and "keys[0]" in failed["msg"]
    assert keyfile.read_text() == f"{pub('ecdsa256')}\n"
    added = run(authorized_keys.main, dict(args, replace_missing="add"))
    assert added["changed"] and added["added"] == [FINGERPRINTS["ed25519"]]


def test_malformed_key_names_its_index(run, keyfile):
    result = run(authorized_keys.main, {"path": str(keyfile), "keys": [pub("ed25519"), "ssh-rsa AAAA oops"]})
    assert result["failed"] and result["msg"].startswith("keys[1]:") and "truncated" in result["msg"]
    assert not keyfile.parent.exists()


def test_private_key_is_refused_and_never_echoed(run, keyfile, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    private = (tmp_path / "id").read_text()
    result = run(authorized_keys.main, {"path": str(keyfile), "keys": [{"key": private}]})
    assert result["failed"] and "private key" in result["msg"]
    text = json.dumps(result)
    for line in private.splitlines()[1:-1]:
        assert line not in text
    assert not keyfile.parent.exists()


def test_missing_user(run, keyfile):
    result = run(authorized_keys.main, {"user": "no-such-user-xyz", "keys": [pub("ed25519")]})
    assert result["failed"] and result["msg"] == "user 'no-such-user-xyz' does not exist on this host"
    assert result["reason"] == "user"
    info = run(authorized_keys_info.main, {"user": "no-such-user-xyz"})
    assert info["failed"] and "does not exist" in info["msg"]


def test_symlink_is_refused_unless_follow(run, keyfile, tmp_path):
    keyfile.parent.mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.write_text("# not yours\n")
    keyfile.symlink_to(target)
    result = run(authorized_keys.main, {"path": str(keyfile), "keys": [pub("ed25519")]})
    assert result["failed"] and result["reason"] == "symlink" and "symbolic link" in result["msg"]
    assert target.read_text() == "# not yours\n" and keyfile.is_symlink()
    followed = run(authorized_keys.main, {"path": str(keyfile), "keys": [pub("ed25519")], "follow": True})
    assert followed["changed"] and target.read_text() == f"# not yours\n{pub('ed25519')}\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file owned by someone else")
def test_file_owned_by_someone_else(run, keyfile):
    keyfile.parent.mkdir(parents=True)
    keyfile.write_text("# someone else's\n")
    os.chown(keyfile, 4321, 4321)
    result = run(authorized_keys.main, {"user": "root", "path": str(keyfile), "keys": [pub("ed25519")]})
    assert result["failed"] and result["reason"] == "owner" and "uid 4321" in result["msg"]
    assert keyfile.read_text() == "# someone else's\n"


def test_manage_dir_false_with_missing_directory(run, keyfile):
    for check in (True, False):
        result = run(authorized_keys.main, {"path": str(keyfile), "keys": [pub("ed25519")], "manage_dir": False},
                     check=check)
        assert result["failed"] and result["reason"] == "missing"


def test_diff_withholds_private_lines(run, keyfile):
    keyfile.parent.mkdir(parents=True)
    keyfile.write_text((FIXTURES / "private_pasted.txt").read_text())
    result = run(authorized_keys.main, {"path": str(keyfile), "keys": [pub("ecdsa256")]}, diff=True)
    assert result["changed"]
    text = json.dumps(result)
    assert "PRIVATE KEY" not in text and "line withheld" in result["diff"]["before"]
    for line in (FIXTURES / "private_pasted.txt").read_text().splitlines()[1:8]:
        assert line not in text


def test_info_reports_every_key(run, keyfile):
    keyfile.parent.mkdir(parents=True)
    keyfile.write_text((FIXTURES / "options.txt").read_text() + "garbage line\n")
    info = run(authorized_keys_info.main, {"path": str(keyfile)})
    assert info["changed"] is False and info["exists"] is True
    assert [k["fingerprint_sha256"] for k in info["public_keys"]] == [
        FINGERPRINTS[n] for n in ("ed25519", "rsa2048", "ecdsa384", "ca", "ecdsa521", "ed25519b", "ed25519-cert",
                                  "rsa1024", "dsa")]
    assert info["public_keys"][2]["options"] == ['command="echo \\"hello, world\\" && echo done"', "no-port-forwarding"]
    assert info["public_keys"][4]["bits"] == 521 and info["public_keys"][4]["curve"] == "nistp521"
    assert info["weak_keys"] == [FINGERPRINTS["rsa1024"], FINGERPRINTS["dsa"]]
    assert info["invalid_lines"] == [{"line": 11, "problem": "not a key line (no key type and key data)",
                                      "looks_private": False, "text": "garbage line"}]
    assert info["mode"] == "0644" or info["mode"] == f"{stat.S_IMODE(keyfile.stat().st_mode):04o}"
    md5 = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", str(FIXTURES / "keys" / "ed25519.pub")],
                         capture_output=True, text=True, check=True).stdout.split()[1]
    assert info["public_keys"][0]["fingerprint_md5"] == md5


def test_info_of_a_missing_file(run, keyfile):
    info = run(authorized_keys_info.main, {"path": str(keyfile)})
    assert info["exists"] is False and info["public_keys"] == [] and info["invalid_lines"] == []


@pytest.fixture()
def alice(tmp_path, monkeypatch):
    """A user 'alice' whose home is a temporary directory, while HOME points at a decoy."""
    home = tmp_path / "alice"
    home.mkdir()
    decoy = tmp_path / "decoy"
    (decoy / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(decoy))
    uid = os.getuid() if os.geteuid() != 0 else 4321
    entry = pwd.struct_passwd(("alice", "x", uid, uid, "", str(home), "/bin/sh"))
    real = pwd.getpwnam
    monkeypatch.setattr(pwd, "getpwnam", lambda name: entry if name == "alice" else real(name))
    return home, decoy, uid


@pytest.mark.parametrize("module", ["authorized_keys", "authorized_keys_info"])
@pytest.mark.parametrize("path", ["~/.ssh/authorized_keys", "~alice/.ssh/authorized_keys", None])
def test_tilde_resolves_against_the_managed_user_not_the_runner(run, alice, module, path):
    home, decoy, uid = alice
    args = {"user": "alice", "keys": [pub("ed25519")]} if module == "authorized_keys" else {"user": "alice"}
    if path is not None:
        args["path"] = path
    main = authorized_keys.main if module == "authorized_keys" else authorized_keys_info.main
    result = run(main, args)
    assert result["path"] == str(home / ".ssh" / "authorized_keys")
    assert list((decoy / ".ssh").iterdir()) == []
    if module == "authorized_keys":
        written = home / ".ssh" / "authorized_keys"
        assert written.read_text() == pub("ed25519") + "\n" and written.stat().st_uid == uid
        lock = home / ".ssh" / ".authorized_keys.lock"
        assert lock.stat().st_uid == uid


def test_a_private_key_in_any_option_is_masked_in_every_echo(run_module, keyfile, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-m", "PEM", "-f", str(tmp_path / "id")],
                   check=True)
    private = (tmp_path / "id").read_text()
    body = [line for line in private.splitlines() if not line.startswith("-----")]
    keyfile.parent.mkdir(parents=True)
    for args in ({"keys": [{"key": pub("ed25519"), "comment": private}]},
                 {"keys": [{"key": pub("ed25519"), "options": private}]},
                 {"keys": [pub("ed25519")], "replace_missing": private},
                 {"keys": [pub("ed25519")], "path": private},
                 {"keys": [pub("ed25519")], "user": private},
                 {"keys": [pub("ed25519")], "exclusive": private}):
        result, out = run_module(authorized_keys.main, dict({"user": ME, "path": str(keyfile)}, **args),
                                 credentials=False)
        assert result["failed"], args
        for line in body:
            assert line not in out
    assert not keyfile.exists()


def test_exclusive_with_an_empty_item_fails_and_keeps_every_key(run, keyfile):
    keyfile.parent.mkdir(parents=True)
    keyfile.write_text(f"{pub('ed25519')}\n{pub('rsa2048')}\n")
    for keys in ([""], ["  \n"], ["# nothing here"], []):
        result = run(authorized_keys.main, {"path": str(keyfile), "keys": keys, "exclusive": True})
        assert result["failed"] and ("holds no key" in result["msg"] or "allow_empty" in result["msg"])
    assert keyfile.read_text() == f"{pub('ed25519')}\n{pub('rsa2048')}\n"
    emptied = run(authorized_keys.main, {"path": str(keyfile), "keys": [], "exclusive": True, "allow_empty": True})
    assert emptied["changed"] and keyfile.read_text() == ""


def test_a_file_that_is_not_utf8_works_with_diff_every_time(run, keyfile):
    keyfile.parent.mkdir(parents=True)
    keyfile.write_bytes(b"# \xff\xfe not utf-8\n")
    for _attempt in range(2):
        result = run(authorized_keys.main, {"path": str(keyfile), "keys": [pub("ed25519")]}, diff=True)
        assert not result.get("failed"), result
        assert "\\xff\\xfe" in result["diff"]["before"]
    assert keyfile.read_bytes() == b"# \xff\xfe not utf-8\n" + pub("ed25519").encode() + b"\n"
    info = run(authorized_keys_info.main, {"path": str(keyfile)})
    assert not info.get("failed") and info["public_keys"][0]["type"] == pub("ed25519").split()[0]


def test_a_private_key_as_a_field_name_is_withheld(run_module, keyfile, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")], check=True)
    private = (tmp_path / "id").read_text()
    result, out = run_module(authorized_keys.main, {"user": ME, "path": str(keyfile),
                                                    "keys": [{"key": pub("ed25519"), private: "x"}]},
                             credentials=False)
    assert result["failed"] and "mapping key" in result["msg"]
    for line in private.splitlines()[1:-1]:
        assert line not in out

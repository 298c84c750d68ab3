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

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ecs_keypair main() against a fake ECS at the client seam: exit JSON, calls made, files written."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils import _ecs_api, _ecs_validate, _keypair
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import parse_public_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._private_keys import public_key_from_private
from ansible_collections.sshkeys.ecs.plugins.modules import ecs_keypair, ecs_keypair_info

MUTATIONS = {"CreateKeyPair", "ImportKeyPair", "DeleteKeyPairs", "TagResources", "UntagResources",
             "AttachKeyPair", "DetachKeyPair"}


def mutations(log):
    return [action for action, _params in log if action in MUTATIONS]


def new_public_key(kind="ed25519", comment="user@host"):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else rsa.generate_private_key(65537, 2048)
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption()).decode()
    return f"{line} {comment}", pem


def has_bcrypt():
    try:
        import bcrypt  # noqa: F401 pylint: disable=unused-import
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Cloud-created key pairs.


def test_create_writes_the_private_key_0600_and_never_prints_it(fake_ecs, run_module, tmp_path):
    path = tmp_path / "deploy.pem"
    result, out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path), "tags": {"t": "1"}})
    assert result["changed"] is True and result["action"] == "created"
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600
    private = path.read_text()
    assert "PRIVATE KEY" in private
    assert private.strip().splitlines()[1] not in out
    derived = public_key_from_private(private)
    key_pair = result["key_pair"]
    assert key_pair["public_key"] == derived.identity()
    assert key_pair["fingerprint_sha256"] == derived.fingerprint("sha256")
    assert key_pair["fingerprint_md5"] == derived.fingerprint("md5")
    assert key_pair["id"] == "kp-1" and key_pair["tags"] == {"t": "1"}
    assert key_pair["private_key_path"] == str(path)
    assert "private_key" not in result
    assert "unit-test-secret-value" not in out
    assert [f for f in os.listdir(tmp_path) if f.startswith(".ecs-keypair-")] == []

    # Second run: the file holds the key pair's private key, so nothing changes.
    fake_ecs.log.clear()
    again, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path), "tags": {"t": "1"}})
    assert again["changed"] is False and again["action"] == "unchanged"
    assert mutations(fake_ecs.log) == []
    assert again["key_pair"]["fingerprint_sha256"] == derived.fingerprint("sha256")


def test_check_mode_create_makes_no_call_and_no_file(fake_ecs, run_module, tmp_path):
    path = tmp_path / "k.pem"
    result, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path)}, check=True, diff=True)
    assert result["changed"] is True and result["action"] == "created"
    assert mutations(fake_ecs.log) == [] and not path.exists() and os.listdir(tmp_path) == []
    assert result["diff"] == {"before": {"state": "absent"},
                              "after": {"state": "present", "public_key": None, "fingerprint_sha256": None,
                                        "tags": {}, "resource_group_id": None}}
    # A later attach in the same check run plans against it through this flag.
    assert result["would_create"] is True
    created, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path)})
    assert created["changed"] is True and created["would_create"] is False
    again, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path)}, check=True)
    assert again["changed"] is False and again["would_create"] is False


def test_return_private_key_only_when_asked(fake_ecs, run_module):
    result, _out = run_module(ecs_keypair.main, {"name": "deploy", "return_private_key": True})
    assert "PRIVATE KEY" in result["private_key"]
    assert public_key_from_private(result["private_key"]).identity() == result["key_pair"]["public_key"]


def test_create_refuses_to_overwrite_an_existing_file_before_any_call(fake_ecs, run_module, tmp_path):
    path = tmp_path / "k.pem"
    path.write_text("something else\n")
    result, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path)})
    assert result["failed"] and "overwrite_private_key" in result["msg"]
    assert mutations(fake_ecs.log) == [] and path.read_text() == "something else\n"


def test_existing_cloud_key_pair_without_its_private_key_is_never_silently_unchanged(fake_ecs, run_module, tmp_path):
    run_module(ecs_keypair.main, {"name": "deploy", "return_private_key": True})
    fake_ecs.log.clear()
    args = {"name": "deploy", "private_key_path": str(tmp_path / "x.pem")}
    result, _out = run_module(ecs_keypair.main, args)
    assert result["failed"] and result.get("changed") is not True
    assert "cannot be fetched again" in result["msg"] and "on_mismatch=replace" in result["msg"]
    assert mutations(fake_ecs.log) == [] and os.listdir(tmp_path) == []
    result, _out = run_module(ecs_keypair.main, dict(args, on_mismatch="keep"))
    assert result["changed"] is False and result["action"] == "kept"
    assert any("cannot be fetched again" in w for w in result["warnings"]) and mutations(fake_ecs.log) == []
    # Without private_key_path (return_private_key only) the key was returned once: a warning.
    result, _out = run_module(ecs_keypair.main, {"name": "deploy", "return_private_key": True})
    assert result["changed"] is False and result["action"] == "unchanged" and "private_key" not in result
    assert any("cannot be fetched again" in w for w in result["warnings"])


def test_write_failure_after_create_deletes_the_key_pair_and_hides_the_key(fake_ecs, run_module, tmp_path, monkeypatch):
    def broken_commit(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_keypair.PrivateKeyFile, "commit", broken_commit)
    result, out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(tmp_path / "k.pem")})
    assert result["failed"] and "could not be written" in result["msg"] and "deleted again" in result["msg"]
    assert "No space left" in result["msg"]
    assert "PRIVATE KEY" not in out and "MII" not in out
    assert mutations(fake_ecs.log) == ["CreateKeyPair", "DeleteKeyPairs"] and fake_ecs.store == {}
    assert os.listdir(tmp_path) == []


# "after": the key pair was made and the reply lost; "before": the request never arrived. Either
# way the module cannot tell, so it deletes by name (a no-op when nothing was made) and creates again.
@pytest.mark.parametrize("when", ["after", "before"])
def test_lost_create_reply_deletes_any_orphan_and_creates_again(fake_ecs, run_module, tmp_path, when):
    lost = EcsApiError(code="ConnectionError", message="connection reset", sent=True)
    fake_ecs.failures.append(("CreateKeyPair", lost, when))
    path = tmp_path / "k.pem"
    result, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path)})
    assert result["changed"] is True
    assert mutations(fake_ecs.log) == ["CreateKeyPair", "DeleteKeyPairs", "CreateKeyPair"]
    assert public_key_from_private(path.read_text()).identity() == fake_ecs.store["deploy"]["PublicKey"]


def test_lost_create_reply_cleaned_up_even_while_reads_fail(fake_ecs, run_module, tmp_path):
    """No DescribeKeyPairs stands between the lost reply and the delete of what it made."""
    lost = EcsApiError(code="InternalError", message="backend error", http_status=500, sent=True)
    fake_ecs.failures.append(("CreateKeyPair", lost, "after"))
    path = tmp_path / "k.pem"
    result, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path)})
    assert result["changed"] is True
    calls = [action for action, _params in fake_ecs.log]
    first_create = calls.index("CreateKeyPair")
    assert calls[first_create + 1] == "DeleteKeyPairs"
    assert public_key_from_private(path.read_text()).identity() == fake_ecs.store["deploy"]["PublicKey"]


def test_lost_create_reply_and_failed_cleanup_name_the_orphan(fake_ecs, run_module, tmp_path):
    lost = EcsApiError(code="ConnectionError", message="connection reset", sent=True)
    refused = EcsApiError(code="Throttling", message="slow down", http_status=400, request_id="RID-7")
    fake_ecs.failures.append(("CreateKeyPair", lost, "after"))
    fake_ecs.failures.append(("DeleteKeyPairs", refused, "before"))
    path = tmp_path / "k.pem"
    result, out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path)})
    assert result["failed"] and result["changed"] is False
    assert "key pair deploy may exist with nobody holding its private key" in result["msg"]
    assert "Throttling" in result["msg"] and "RID-7" in result["msg"]
    assert ".k.pem.pending" in result["msg"]
    assert "PRIVATE KEY" not in out
    # The marker stays (nothing secret in it): the next run knows the key pair is an orphan.
    assert os.listdir(tmp_path) == [".k.pem.pending"]
    assert json.loads((tmp_path / ".k.pem.pending").read_text())["key_pair_name"] == "deploy"
    fake_ecs.log.clear()
    result, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path)})
    assert result["changed"] and result["action"] == "replaced"
    assert any("was never saved" in w for w in result["warnings"])
    assert mutations(fake_ecs.log) == ["DeleteKeyPairs", "CreateKeyPair"]
    assert public_key_from_private(path.read_text()).identity() == fake_ecs.store["deploy"]["PublicKey"]
    assert os.listdir(tmp_path) == ["k.pem"]


def test_api_errors_report_code_and_request_id(fake_ecs, run_module, tmp_path):
    fake_ecs.failures.append(("CreateKeyPair", EcsApiError(code="QuotaExceed.KeyPair", message="quota", http_status=403,
                                                           request_id="RID-42", action="CreateKeyPair"), "before"))
    result, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(tmp_path / "k.pem")})
    assert result["failed"] and "QuotaExceed.KeyPair" in result["msg"] and "RID-42" in result["msg"]
    assert result["error"] == {"code": "QuotaExceed.KeyPair", "message": "quota", "request_id": "RID-42",
                               "http_status": 403, "action": "CreateKeyPair"}
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Locally generated key pairs.


@pytest.mark.parametrize("key_type, key_size, expected", [
    ("ed25519", None, "ssh-ed25519"), ("ecdsa", 384, "ecdsa-sha2-nistp384"), ("rsa", 2048, "ssh-rsa")])
def test_generate_local_writes_first_then_imports(fake_ecs, run_module, tmp_path, key_type, key_size, expected):
    path = tmp_path / "id"
    args = {"name": "web", "generate": "local", "key_type": key_type, "private_key_path": str(path),
            "passphrase": "correct horse"}
    if key_type == "ed25519" and not has_bcrypt():
        args.pop("passphrase")
    if key_size:
        args["key_size"] = key_size
    result, out = run_module(ecs_keypair.main, args)
    assert result["changed"] is True and result["action"] == "created"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    derived = public_key_from_private(path.read_bytes(), args.get("passphrase"))
    assert derived.key_type == expected
    assert fake_ecs.store["web"]["PublicKey"] == derived.identity()
    assert result["key_pair"]["fingerprint_sha256"] == derived.fingerprint("sha256")
    assert "correct horse" not in out
    fake_ecs.log.clear()
    again, _out = run_module(ecs_keypair.main, args)
    assert again["changed"] is False and mutations(fake_ecs.log) == []


def test_generate_local_writes_the_public_key_beside_it_with_the_name_as_comment(fake_ecs, run_module, tmp_path):
    path = tmp_path / "web.pem"
    result, _out = run_module(ecs_keypair.main, {"name": "web-prod", "generate": "local", "key_type": "ed25519",
                                                 "private_key_path": str(path)})
    public_file = tmp_path / "web.pem.pub"
    assert result["changed"] is True and result["public_key_file"] == str(public_file)
    assert stat.S_IMODE(os.stat(public_file).st_mode) == 0o644
    line = public_file.read_text()
    assert line.endswith(" web-prod\n") and line.count("\n") == 1
    derived = public_key_from_private(path.read_bytes())
    assert parse_public_key(line).identity() == derived.identity() == fake_ecs.store["web-prod"]["PublicKey"]
    # The private key carries the same comment (OpenSSH format, no passphrase).
    assert derived.comment == "web-prod"
    # A second run changes nothing and leaves the file alone.
    again, _out = run_module(ecs_keypair.main, {"name": "web-prod", "generate": "local", "key_type": "ed25519",
                                                "private_key_path": str(path)})
    assert again["changed"] is False and "public_key_file" not in again and public_file.read_text() == line
    # Told not to, it writes none; check mode writes nothing at all.
    result, _out = run_module(ecs_keypair.main, {"name": "db", "generate": "local", "private_key_path": str(tmp_path / "db"),
                                                 "write_public_key": False})
    assert result["changed"] is True and "public_key_file" not in result and not (tmp_path / "db.pub").exists()
    run_module(ecs_keypair.main, {"name": "app", "generate": "local", "private_key_path": str(tmp_path / "app")}, check=True)
    assert not (tmp_path / "app").exists() and not (tmp_path / "app.pub").exists()


@pytest.mark.parametrize("planted", ["symlink", "directory"])
def test_a_public_key_file_that_is_no_regular_file_is_refused_before_any_change(fake_ecs, run_module, tmp_path, planted):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not yours\n")
    if planted == "symlink":
        (tmp_path / "id.pub").symlink_to(elsewhere)
    else:
        (tmp_path / "id.pub").mkdir()
    result, _out = run_module(ecs_keypair.main, {"name": "web", "generate": "local", "private_key_path": str(tmp_path / "id")})
    assert result["failed"] and "public key file" in result["msg"] and "write_public_key=false" in result["msg"]
    assert mutations(fake_ecs.log) == [] and not (tmp_path / "id").exists() and elsewhere.read_text() == "not yours\n"
    assert sorted(os.listdir(tmp_path)) == ["elsewhere", "id.pub"]


def test_ed25519_with_a_passphrase_without_bcrypt_fails_clearly(fake_ecs, run_module, tmp_path):
    if has_bcrypt():
        pytest.skip("bcrypt is installed: OpenSSH's own encrypted format is available")
    result, out = run_module(ecs_keypair.main, {"name": "web", "generate": "local", "key_type": "ed25519",
                                                "passphrase": "pw-value", "private_key_path": str(tmp_path / "id")})
    assert result["failed"] and "bcrypt" in result["msg"] and "pw-value" not in out
    assert mutations(fake_ecs.log) == [] and os.listdir(tmp_path) == []


@pytest.mark.parametrize("option, value", [("ecs_retries", -1), ("ecs_timeout", 0), ("ecs_retry_delay", -1.0)])
def test_bad_retry_options(fake_ecs, run_module, option, value):
    result, _out = run_module(ecs_keypair.main, {"name": "web", "return_private_key": True, option: value})
    assert result["failed"] and option in result["msg"] and fake_ecs.log == []


def test_generate_local_reuses_an_existing_private_key_file(fake_ecs, run_module, tmp_path):
    line, pem = new_public_key()
    path = tmp_path / "id"
    path.write_text(pem)
    path.chmod(0o600)
    result, _out = run_module(ecs_keypair.main, {"name": "web", "generate": "local", "private_key_path": str(path)})
    assert result["changed"] and fake_ecs.store["web"]["PublicKey"] == parse_public_key(line).identity()
    assert path.read_text() == pem


def test_generate_local_with_the_key_pair_but_no_file_is_a_mismatch(fake_ecs, run_module, tmp_path):
    line, _pem = new_public_key()
    run_module(ecs_keypair.main, {"name": "web", "public_key": line})
    result, _out = run_module(ecs_keypair.main, {"name": "web", "generate": "local",
                                                 "private_key_path": str(tmp_path / "id")})
    assert result["failed"] and "on_mismatch" in result["msg"]
    assert not (tmp_path / "id").exists()


# ---------------------------------------------------------------------------------------------
# Imported key pairs and mismatches.


def test_import_then_no_change_then_mismatch_policies(fake_ecs, run_module):
    line, _pem = new_public_key()
    other, _pem2 = new_public_key()
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "public_key": line}, diff=True)
    assert result["changed"] and result["action"] == "imported"
    assert result["key_pair"]["public_key"] == parse_public_key(line).identity()
    assert result["diff"]["before"] == {"state": "absent"} and result["diff"]["after"]["state"] == "present"
    assert "PRIVATE" not in json.dumps(result["diff"])

    # Same key with another comment and extra whitespace: no change.
    same = "  " + " ".join(line.split()[:2]) + "   other comment  "
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "public_key": same})
    assert result["changed"] is False and result["action"] == "unchanged"

    fake_ecs.log.clear()
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "public_key": other})
    assert result["failed"] and "on_mismatch" in result["msg"] and "SHA256:" in result["msg"]
    assert mutations(fake_ecs.log) == []

    result, _out = run_module(ecs_keypair.main, {"name": "ops", "public_key": other, "on_mismatch": "keep"})
    assert result["changed"] is False and result["action"] == "kept" and mutations(fake_ecs.log) == []

    result, _out = run_module(ecs_keypair.main, {"name": "ops", "public_key": other, "on_mismatch": "replace"},
                              check=True)
    assert result["changed"] and result["action"] == "replaced" and mutations(fake_ecs.log) == []
    assert result["key_pair"]["public_key"] == parse_public_key(other).identity()

    result, _out = run_module(ecs_keypair.main, {"name": "ops", "public_key": other, "on_mismatch": "replace"})
    assert result["changed"] and result["action"] == "replaced"
    assert mutations(fake_ecs.log) == ["DeleteKeyPairs", "ImportKeyPair"]
    assert fake_ecs.store["ops"]["PublicKey"] == parse_public_key(other).identity()
    assert result["key_pair"]["public_key"] == parse_public_key(other).identity()


def test_replace_of_an_attached_key_pair_needs_the_opt_in_and_reattaches(fake_ecs, run_module):
    line, _pem = new_public_key()
    other, _pem2 = new_public_key()
    run_module(ecs_keypair.main, {"name": "ops", "public_key": line})
    fake_ecs.instances.update({"i-1": {"InstanceId": "i-1", "KeyPairName": "ops", "Status": "Running"},
                               "i-2": {"InstanceId": "i-2", "KeyPairName": "ops", "Status": "Stopped"}})
    fake_ecs.log.clear()
    args = {"name": "ops", "public_key": other, "on_mismatch": "replace"}
    result, _out = run_module(ecs_keypair.main, args)
    assert result["failed"] and "detach_instances" in result["msg"] and "i-1" in result["msg"]
    assert mutations(fake_ecs.log) == []
    result, _out = run_module(ecs_keypair.main, dict(args, detach_instances=True, include_instances=True))
    assert result["changed"] and mutations(fake_ecs.log) == ["DetachKeyPair", "DeleteKeyPairs", "ImportKeyPair",
                                                             "AttachKeyPair"]
    assert sorted(i["instance_id"] for i in result["key_pair"]["instances"]) == ["i-1", "i-2"]
    assert any("restarts" in w for w in result["warnings"])


@pytest.mark.parametrize("public_key, message", [
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n-----END OPENSSH PRIVATE KEY-----\n", "private key"),
    ("not a key at all", "not a valid public key"),
    ("ssh-rsa AAAA!!!!", "not a valid public key"),
])
def test_bad_public_keys_fail_before_any_call(fake_ecs, run_module, public_key, message):
    result, out = run_module(ecs_keypair.main, {"name": "ops", "public_key": public_key})
    assert result["failed"] and message in result["msg"]
    assert fake_ecs.log == []
    assert "b3BlbnNzaC1rZXktdjEAAAA" not in result["msg"]


def test_unsupported_key_type_is_refused(fake_ecs, run_module, monkeypatch):
    line, _pem = new_public_key()
    monkeypatch.setattr(_ecs_validate, "ACCEPTED_KEY_TYPES", ("ssh-rsa",))
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "public_key": line})
    assert result["failed"] and "cannot be imported into ECS" in result["msg"] and fake_ecs.log == []


def test_public_key_path_errors(fake_ecs, run_module, tmp_path):
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "public_key_path": str(tmp_path / "missing.pub")})
    assert result["failed"] and "cannot read public_key_path" in result["msg"] and fake_ecs.log == []
    _line, pem = new_public_key()
    (tmp_path / "id").write_text(pem)
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "public_key_path": str(tmp_path / "id")})
    assert result["failed"] and "holds a private key" in result["msg"] and fake_ecs.log == []


@pytest.mark.parametrize("name, message", [
    ("a", "2 to 128"), ("x" * 129, "2 to 128"), ("1abc", "start with a letter"), ("_abc", "start with a letter"),
    ("ab c", "may hold only"), ("ab/c", "may hold only"), ("http://x", "http://"), ("https://x", "http://"),
    ("ab*", "may hold only"),
])
def test_bad_names_fail_before_any_call(fake_ecs, run_module, name, message):
    result, _out = run_module(ecs_keypair.main, {"name": name, "return_private_key": True})
    assert result["failed"] and message in result["msg"] and fake_ecs.log == []


@pytest.mark.parametrize("args, message", [
    ({"generate": "local"}, "needs private_key_path"),
    ({"key_size": 2048}, "only to generate=local"),
    ({"generate": "local", "private_key_path": "/tmp/x", "key_type": "ecdsa", "key_size": 300}, "256, 384 or 521"),
    ({"generate": "local", "private_key_path": "/tmp/x", "key_type": "ed25519", "key_size": 256}, "ed25519"),
    ({}, "private_key_path"),
    ({"public_key": "ssh-ed25519 AAAA", "private_key_path": "/tmp/x"}, "imported key pair"),
    ({"return_private_key": True, "tags": {"aliyun-x": "1"}}, "must not start"),
    ({"return_private_key": True, "tags": {f"k{i}": "v" for i in range(21)}}, "at most 20"),
    ({"private_key_path": "/nonexistent-dir/k.pem"}, "does not exist"),
])
def test_conflicting_or_bad_options_fail_before_any_call(fake_ecs, run_module, args, message):
    result, _out = run_module(ecs_keypair.main, dict({"name": "ok-name"}, **args))
    assert result["failed"] and message in result["msg"], result["msg"]
    assert fake_ecs.log == []


def test_symlinked_private_key_path_is_refused(fake_ecs, run_module, tmp_path):
    (tmp_path / "real").write_text("")
    os.symlink(tmp_path / "real", tmp_path / "link")
    result, _out = run_module(ecs_keypair.main, {"name": "ok", "private_key_path": str(tmp_path / "link")})
    assert result["failed"] and "symbolic link" in result["msg"] and fake_ecs.log == []


# ---------------------------------------------------------------------------------------------
# Tags.


def test_tags_are_added_and_purged_with_check_mode_first(fake_ecs, run_module):
    line, _pem = new_public_key()
    run_module(ecs_keypair.main, {"name": "ops", "public_key": line, "tags": {"a": "1", "b": "2"}})
    fake_ecs.log.clear()
    args = {"name": "ops", "public_key": line, "tags": {"a": "1", "c": "3"}}
    result, _out = run_module(ecs_keypair.main, args, check=True, diff=True)
    assert result["changed"] and result["action"] == "updated" and mutations(fake_ecs.log) == []
    assert result["diff"]["before"]["tags"] == {"a": "1", "b": "2"}
    assert result["diff"]["after"]["tags"] == {"a": "1", "c": "3"}
    assert result["key_pair"]["tags"] == {"a": "1", "c": "3"}
    result, _out = run_module(ecs_keypair.main, args)
    # Set first, remove after: a failure between them loses no tag unannounced.
    assert result["changed"] and mutations(fake_ecs.log) == ["TagResources", "UntagResources"]
    assert result["key_pair"]["tags"] == {"a": "1", "c": "3"}
    result, _out = run_module(ecs_keypair.main, dict(args, tags={"d": "4"}, purge_tags=False))
    assert result["key_pair"]["tags"] == {"a": "1", "c": "3", "d": "4"}
    fake_ecs.log.clear()
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "public_key": line})
    assert result["changed"] is False and mutations(fake_ecs.log) == []


# ---------------------------------------------------------------------------------------------
# state=absent.


def test_absent(fake_ecs, run_module):
    line, _pem = new_public_key()
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "state": "absent"})
    assert result["changed"] is False and result["action"] == "absent" and result["key_pair"] == {}
    run_module(ecs_keypair.main, {"name": "ops", "public_key": line})
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "state": "absent"}, check=True, diff=True)
    assert result["changed"] and "ops" in fake_ecs.store
    assert result["diff"]["after"] == {"state": "absent"}
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "state": "absent"})
    assert result["changed"] and result["action"] == "deleted" and "ops" not in fake_ecs.store
    assert result["key_pair"]["public_key"] == parse_public_key(line).identity()


def test_absent_attached_seed_behaviour_warns(fake_ecs, run_module):
    line, _pem = new_public_key()
    run_module(ecs_keypair.main, {"name": "ops", "public_key": line})
    fake_ecs.instances["i-1"] = {"InstanceId": "i-1", "KeyPairName": "ops"}
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "state": "absent"})
    assert result["changed"] and any("still attached" in w for w in result["warnings"])


@pytest.mark.parametrize("how", ["import", "cloud"])
def test_name_taken_by_a_key_pair_deleted_while_attached_says_why(fake_ecs, run_module, tmp_path, how):
    """The name of a key pair deleted while attached stays taken: KeyPair.AlreadyExist although
    no key pair of that name is listed. The failure says so and names the instances to detach."""
    line, _pem = new_public_key()
    run_module(ecs_keypair.main, {"name": "ops", "public_key": line})
    for instance_id in ("i-1", "i-2"):
        fake_ecs.instances[instance_id] = {"InstanceId": instance_id, "KeyPairName": "ops"}
    run_module(ecs_keypair.main, {"name": "ops", "state": "absent"})
    listed, _out = run_module(ecs_keypair_info.main, {"names": ["ops"]})
    assert listed["key_pairs"] == []
    args = {"name": "ops", "public_key": new_public_key()[0]} if how == "import" else \
        {"name": "ops", "private_key_path": str(tmp_path / "ops.pem")}
    result, _out = run_module(ecs_keypair.main, args)
    assert result["failed"] and result["error"]["code"] == "KeyPair.AlreadyExist"
    assert "was deleted while it was attached to them" in result["msg"]
    assert "2 instance(s) still show that name (i-1, i-2)" in result["msg"]
    assert "sshkeys.ecs.ecs_keypair_attach with key_pair_name: ops, state: absent" in result["msg"]
    assert not (tmp_path / "ops.pem").exists()
    # Detached, the name is free again.
    for instance in fake_ecs.instances.values():
        instance["KeyPairName"] = ""
    result, _out = run_module(ecs_keypair.main, args)
    assert result["changed"] and "ops" in fake_ecs.store


def test_absent_attached_strict_behaviour_fails_clearly_then_detach_works(fake_ecs, run_module):
    line, _pem = new_public_key()
    run_module(ecs_keypair.main, {"name": "ops", "public_key": line})
    fake_ecs.instances["i-1"] = {"InstanceId": "i-1", "KeyPairName": "ops"}
    fake_ecs.strict_delete = True
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "state": "absent"})
    assert result["failed"] and "detach_instances=true" in result["msg"] and "i-1" in result["msg"]
    assert "InvalidParameter.KeypairAlreadyAttachedInstance" in result["msg"]
    fake_ecs.log.clear()
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "state": "absent", "detach_instances": True})
    assert result["changed"] and mutations(fake_ecs.log) == ["DetachKeyPair", "DeleteKeyPairs"]
    assert fake_ecs.instances["i-1"]["KeyPairName"] == ""


# ---------------------------------------------------------------------------------------------
# state=absent with names: DeleteKeyPairs in batches of 100.


def calls_of(fake_ecs, action):
    return [params for name, params in fake_ecs.log if name == action]


@pytest.fixture()
def many_key_pairs(fake_ecs, run_module):
    def _make(count, prefix="kp"):
        line, _pem = new_public_key()
        names = [f"{prefix}{index:03d}" for index in range(count)]
        for name in names:
            run_module(ecs_keypair.main, {"name": name, "public_key": line})
        fake_ecs.log.clear()
        return names
    return _make


def test_names_delete_in_batches_of_100_and_skip_missing(fake_ecs, run_module, many_key_pairs):
    names = many_key_pairs(230)
    keep = "other01"
    run_module(ecs_keypair.main, {"name": keep, "public_key": new_public_key()[0]})
    fake_ecs.log.clear()
    wanted = names + ["missing01", names[0]]
    result, _out = run_module(ecs_keypair.main, {"names": wanted, "state": "absent"}, check=True, diff=True)
    assert result["changed"] and result["deleted"] == names and len(fake_ecs.store) == 231
    assert set(result["diff"]["before"]["key_pairs"]) == set(names) and result["diff"]["after"] == {"key_pairs": {}}
    assert mutations(fake_ecs.log) == []
    fake_ecs.log.clear()
    result, _out = run_module(ecs_keypair.main, {"names": wanted, "state": "absent"})
    assert result["changed"] and result["action"] == "deleted" and result["deleted"] == names
    assert [len(json.loads(p["KeyPairNames"])) for p in calls_of(fake_ecs, "DeleteKeyPairs")] == [100, 100, 30]
    # One paged listing of the region instead of one lookup per name: 231 key pairs, 50 a page.
    assert len(calls_of(fake_ecs, "DescribeKeyPairs")) == 5
    assert list(fake_ecs.store) == [keep]
    assert [k["name"] for k in result["key_pairs"]] == names and result["key_pairs"][0]["fingerprint_sha256"]
    result, _out = run_module(ecs_keypair.main, {"names": wanted, "state": "absent"})
    assert result["changed"] is False and result["action"] == "absent" and result["deleted"] == []


def test_names_few_are_looked_up_one_by_one(fake_ecs, run_module, many_key_pairs):
    names = many_key_pairs(3)
    result, _out = run_module(ecs_keypair.main, {"names": names, "state": "absent"})
    assert result["deleted"] == names and fake_ecs.store == {}
    assert [name for name, _p in fake_ecs.log] == ["DescribeKeyPairs"] * 3 + ["DescribeInstances"] * 3 + ["DeleteKeyPairs"]


def test_names_lost_delete_reply_deletes_the_rest_of_the_batch(fake_ecs, run_module, many_key_pairs):
    names = many_key_pairs(8)
    # The fake deletes the first name, then the batch fails as if the reply was lost on retry.
    gone = EcsApiError(code="InvalidKeyPair.NotFound", message="gone", http_status=404)
    fake_ecs.failures.append(("DeleteKeyPairs", gone, "before"))
    del fake_ecs.store[names[0]]
    result, _out = run_module(ecs_keypair.main, {"names": names, "state": "absent"})
    assert result["changed"] and fake_ecs.store == {}
    assert json.loads(calls_of(fake_ecs, "DeleteKeyPairs")[-1]["KeyPairNames"]) == names[1:]


def test_names_failing_part_way_say_how_far_and_a_rerun_finishes(fake_ecs, run_module, many_key_pairs,
                                                                 monkeypatch):
    names = many_key_pairs(150)
    refused = EcsApiError(code="Throttling", message="slow down", http_status=400, request_id="RID-9")
    original = fake_ecs._DeleteKeyPairs
    tries = []

    def second_batch_throttled(self, params):
        tries.append(params)
        if len(tries) == 2:
            raise refused
        return original(self, params)
    monkeypatch.setattr(fake_ecs, "_DeleteKeyPairs", second_batch_throttled)
    result, _out = run_module(ecs_keypair.main, {"names": names, "state": "absent"})
    assert result["failed"] and "100 of 150 key pairs were deleted" in result["msg"] and "RID-9" in result["msg"]
    assert sorted(fake_ecs.store) == names[100:]
    result, _out = run_module(ecs_keypair.main, {"names": names, "state": "absent"})
    assert result["changed"] and result["deleted"] == names[100:] and fake_ecs.store == {}


def test_names_attached_warn_or_detach(fake_ecs, run_module, many_key_pairs):
    names = many_key_pairs(7)
    fake_ecs.instances["i-1"] = {"InstanceId": "i-1", "KeyPairName": names[2]}
    fake_ecs.strict_delete = True
    result, _out = run_module(ecs_keypair.main, {"names": names, "state": "absent"})
    assert result["failed"] and names[2] in result["msg"] and "detach_instances=true" in result["msg"]
    assert len(fake_ecs.store) == 7
    fake_ecs.log.clear()
    result, _out = run_module(ecs_keypair.main, {"names": names, "state": "absent", "detach_instances": True,
                                                 "include_instances": True})
    assert result["changed"] and fake_ecs.store == {} and mutations(fake_ecs.log) == ["DetachKeyPair", "DeleteKeyPairs"]
    assert any("detached first" in w for w in result["warnings"])
    held = [k for k in result["key_pairs"] if k["instances"]]
    assert [k["name"] for k in held] == [names[2]] and held[0]["instances"][0]["instance_id"] == "i-1"


@pytest.mark.parametrize("args, message", [
    ({"names": ["ok-name", "http://x"], "state": "absent"}, "names must not start with http"),
    ({"names": ["ok-name", "bad*"], "state": "absent"}, "names 'bad*' may hold only"),
    ({"names": ["a"], "state": "absent"}, "names must be 2 to 128"),
    ({"names": ["ok-name"]}, "names is for state=absent only"),
    ({"names": ["ok-name"], "name": "ok-name", "state": "absent"}, "mutually exclusive"),
    ({"state": "absent"}, "one of the following is required: name, names"),
])
def test_names_bad_input_changes_nothing(fake_ecs, run_module, many_key_pairs, args, message):
    many_key_pairs(1)
    result, _out = run_module(ecs_keypair.main, args)
    assert result["failed"] and message in result["msg"]
    assert mutations(fake_ecs.log) == [] and len(fake_ecs.store) == 1


def test_partial_attach_failures_are_not_lost():
    class Client:
        def call(self, action, params):
            return {"TotalCount": 2, "FailCount": 1, "Results": {"Result": [
                {"InstanceId": "i-1", "Success": "true", "Code": "200"},
                {"InstanceId": "i-2", "Success": "false", "Code": "DependencyViolation.WindowsInstance",
                 "Message": "windows"}]}}

    outcome = _ecs_api.attach_key_pair(Client(), "k", ["i-1", "i-2"])
    failures = "; ".join(_ecs_api.failure_lines(outcome, ["i-1", "i-2"]))
    assert "i-2" in failures and "DependencyViolation.WindowsInstance" in failures and "i-1" not in failures
    error = _ecs_api.first_error(outcome)
    assert error.code == "DependencyViolation.WindowsInstance" and error.action == "AttachKeyPair"

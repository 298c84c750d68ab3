# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cloud side of the documented promises, attacked: one table per class of failure.

1. a failed replacement never leaves instances without a key pair unannounced (the old key
   pair is put back, or the failure names every instance and change);
2. a lost or slow CreateKeyPair answer never leaves a key pair whose private key nobody holds
   unannounced, and a re-run never calls such a key pair 'unchanged';
7. names, ids and patterns are matched as a whole (no trailing newline slips through);
9. tags are set before old ones are removed, and the http:// check ignores letter case;
10. a FIFO, socket, device or directory where a file is read fails at once;
11. a private key file that ssh would refuse is refused before any change;
6. private key material given in any string option never shows in the module's output.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import parse_public_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._private_keys import public_key_from_private
from ansible_collections.sshkeys.ecs.plugins.modules import ecs_keypair, ecs_keypair_attach, ecs_keypair_info
from ansible_collections.sshkeys.ecs.plugins.plugin_utils._reconcile_state import StateError, validate_state

MUTATIONS = {"CreateKeyPair", "ImportKeyPair", "DeleteKeyPairs", "TagResources", "UntagResources",
             "AttachKeyPair", "DetachKeyPair"}


def mutations(log):
    return [action for action, _params in log if action in MUTATIONS]


def new_key(kind="ed25519"):
    """(public key line, OpenSSH private key text)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    key = ed25519.Ed25519PrivateKey.generate() if kind == "ed25519" else rsa.generate_private_key(65537, 2048)
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption()).decode()
    return line, pem


def err(code, status=503):
    return EcsApiError(code=code, message="injected", request_id=f"rid-{code}", http_status=status)


def body_lines(pem):
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


# ---------------------------------------------------------------------------------------------
# 1. Replacement: put the old key pair back, or name every change and instance.


@pytest.fixture()
def held_key_pair(fake_ecs, run_module):
    """Key pair 'ops' (old key) held by i-1 and i-2; returns (old line, new line)."""
    old, _pem = new_key()
    new, _pem2 = new_key()
    run_module(ecs_keypair.main, {"name": "ops", "public_key": old})
    fake_ecs.instances.update({"i-1": {"InstanceId": "i-1", "KeyPairName": "ops", "Status": "Running"},
                               "i-2": {"InstanceId": "i-2", "KeyPairName": "ops", "Status": "Stopped"}})
    fake_ecs.log.clear()
    return old, new


def _import_lands_late_answer_lost(client, params):
    client._ImportKeyPair(params)  # pylint: disable=protected-access


REPLACE_CASES = {
    # id: (setup(fake_ecs), failed, key pair afterwards (old/new/none), holders afterwards, words in msg, changes)
    "import refused once: the old key pair is put back and attached again": (
        lambda f: f.failures.append(("ImportKeyPair", err("ServiceUnavailable"), "before")),
        True, "old", "ops", ["put back", "attached again"],
        ["detached key pair ops from i-1, i-2", "deleted key pair ops", "imported the old public key",
         "attached the old key pair ops to i-1, i-2 again"]),
    "import and the put-back both refused: instances named with the task that finishes the job": (
        lambda f: f.failures.extend([("ImportKeyPair", err("ServiceUnavailable"), "before")] * 2),
        True, "none", "", ["does not exist now", "i-1, i-2 hold no key pair",
                           "sshkeys.ecs.ecs_keypair_attach with key_pair_name=ops and instance_ids=[i-1, i-2]"],
        ["detached key pair ops from i-1, i-2", "deleted key pair ops"]),
    "delete refused after the detach: attached again, nothing replaced": (
        lambda f: f.failures.append(("DeleteKeyPairs", err("ServiceUnavailable"), "before")),
        True, "old", "ops", ["deleting the old key pair ops failed", "was not replaced"],
        ["detached key pair ops from i-1, i-2", "attached the old key pair ops to i-1, i-2 again"]),
    "detach refused for one instance: the other is attached again": (
        lambda f: f.refuse.update({"i-2": "IncorrectInstanceStatus"}),
        True, "old", "ops", ["detaching key pair ops failed for i-2: IncorrectInstanceStatus", "not replaced"],
        ["detached key pair ops from i-1", "attached the old key pair ops to i-1 again"]),
    "attach of the new key pair fails: the instances without a key pair are named": (
        lambda f: f.failures.append(("AttachKeyPair", err("ServiceUnavailable"), "before")),
        True, "new", "", ["i-1, i-2 hold no key pair now",
                          "sshkeys.ecs.ecs_keypair_attach with key_pair_name=ops and instance_ids=[i-1, i-2]"],
        ["detached key pair ops from i-1, i-2", "deleted key pair ops", "imported key pair ops"]),
    "lost answer of the import (it landed): the job goes on and converges": (
        lambda f: f.failures.append(("ImportKeyPair", err("InternalError", 500), _import_lands_late_answer_lost)),
        False, "new", "ops", [], []),
}


@pytest.mark.parametrize("case", list(REPLACE_CASES))
def test_a_failed_replacement_puts_back_or_names_every_change(fake_ecs, run_module, held_key_pair, case):
    old, new = held_key_pair
    setup, failed, left, holders, words, changes = REPLACE_CASES[case]
    setup(fake_ecs)
    args = {"name": "ops", "public_key": new, "on_mismatch": "replace", "detach_instances": True}
    result, out = run_module(ecs_keypair.main, args)
    assert bool(result.get("failed")) is failed, result.get("msg")
    if failed:
        assert result["changed"] is True and "Traceback" not in out
        for word in words:
            assert word in result["msg"], result["msg"]
        for change in changes:
            assert any(item.startswith(change) for item in result["changes"]), (change, result["changes"])
        assert result["error"]["code"] in ("ServiceUnavailable", "IncorrectInstanceStatus")
    expected = {"old": parse_public_key(old).identity(), "new": parse_public_key(new).identity(), "none": None}[left]
    assert (fake_ecs.store.get("ops") or {}).get("PublicKey") == expected
    assert [i["KeyPairName"] for i in fake_ecs.instances.values()] == [holders] * 2
    # The re-run (faults gone) ends with the new key pair; the instances it cannot know of are
    # the ones the failure named.
    fake_ecs.refuse.clear()
    again, _out = run_module(ecs_keypair.main, args)
    assert not again.get("failed") and fake_ecs.store["ops"]["PublicKey"] == parse_public_key(new).identity()


def test_a_failed_cloud_replacement_puts_the_old_public_key_back(fake_ecs, run_module, tmp_path):
    old, _pem = new_key()
    run_module(ecs_keypair.main, {"name": "deploy", "public_key": old})
    fake_ecs.failures.append(("CreateKeyPair", err("QuotaExceed.KeyPair", 403), "before"))
    path = tmp_path / "k.pem"
    result, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path),
                                                 "on_mismatch": "replace"})
    assert result["failed"] and result["changed"] and "the old key pair was put back" in result["msg"]
    assert result["changes"][0] == "deleted key pair deploy"
    assert fake_ecs.store["deploy"]["PublicKey"] == parse_public_key(old).identity()
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# 2. Lost and slow CreateKeyPair answers.


def _timeout():
    return EcsApiError(code="Timeout", message="timed out waiting", sent=True)


def _create_then_resend(client, params):
    """A 503 after the commit that the client retried itself: the retry meets the name taken."""
    client._CreateKeyPair(params)  # pylint: disable=protected-access
    client.actions.append("CreateKeyPair")


def _late_delete(client, params):
    """The clean-up delete timed out and the client's retry found nothing; the first try is still
    on its way and lands after the next call (the successful create)."""
    def land():
        client.store.pop("deploy", None)
    client.late.append(land)


LOST_CREATES = {
    # id: (failures, ecs_retries, converges in the first run, words in a failure)
    "slow commit after the only try": ([("CreateKeyPair", _timeout(), "late")], 0, False,
                                       ["slow request created after the timeout was deleted again",
                                        "running the task again is safe"]),
    "slow commit, found by the next try": ([("CreateKeyPair", _timeout(), "late")], 2, True, []),
    "two slow commits in a row": ([("CreateKeyPair", _timeout(), "late")] * 2, 3, True, []),
    "503 after the commit, retried by the client": (
        [("CreateKeyPair", err("KeyPair.AlreadyExist", 400), _create_then_resend)], 2, True, []),
    "a clean-up delete lands after the success": (
        [("CreateKeyPair", _timeout(), "before"), ("DeleteKeyPairs", err("InvalidKeyPair.NotFound", 404), _late_delete)],
        2, True, []),
    "500 after the commit on every try": ([("CreateKeyPair", err("InternalError", 500), "after")] * 3, 2, False,
                                          ["was lost", "running the task again is safe"]),
}


@pytest.mark.parametrize("case", list(LOST_CREATES))
def test_a_lost_or_slow_create_leaves_no_key_pair_without_its_private_key(fake_ecs, run_module, tmp_path, case):
    failures, retries, converges, words = LOST_CREATES[case]
    fake_ecs.failures.extend(failures)
    path = tmp_path / "k.pem"
    args = {"name": "deploy", "private_key_path": str(path), "ecs_retries": retries}
    result, out = run_module(ecs_keypair.main, args)
    assert "PRIVATE KEY" not in out
    if converges:
        assert result["changed"] and result["action"] == "created", result.get("msg")
    else:
        assert result["failed"] and result["changed"] is False
        for word in words:
            assert word in result["msg"], result["msg"]
    # Safe: a key pair exists only with its private key in the file; no marker is left.
    if "deploy" in fake_ecs.store:
        assert public_key_from_private(path.read_text()).identity() == fake_ecs.store["deploy"]["PublicKey"]
    assert sorted(os.listdir(tmp_path)) == (["k.pem"] if path.exists() else [])
    again, _out = run_module(ecs_keypair.main, args)
    assert not again.get("failed")
    assert public_key_from_private(path.read_text()).identity() == fake_ecs.store["deploy"]["PublicKey"]
    fake_ecs.log.clear()
    third, _out = run_module(ecs_keypair.main, args)
    assert third["changed"] is False and mutations(fake_ecs.log) == []


def _marker(path, name="deploy", region="cn-hangzhou"):
    marker = path.parent / f".{path.name}.pending"
    marker.write_text(json.dumps({"key_pair_name": name, "region": region}))
    marker.chmod(0o600)
    return marker


EXISTING_WITHOUT_FILE = {
    # id: (marker written, on_mismatch, failed, action, words)
    "marker of this key pair: an orphan, created again": (True, None, False, "replaced", ["was never saved"]),
    "marker of this key pair, in check mode": (True, None, False, "replaced", ["was never saved"]),
    "no marker, default on_mismatch: fails and says why": (
        False, None, True, None, ["cannot be fetched again", "on_mismatch=replace"]),
    "no marker, on_mismatch=keep: kept with a warning": (False, "keep", False, "kept", ["cannot be fetched again"]),
    "no marker, on_mismatch=replace: created again": (False, "replace", False, "replaced", []),
}


@pytest.mark.parametrize("case", list(EXISTING_WITHOUT_FILE))
def test_a_key_pair_without_its_private_key_is_never_unchanged(fake_ecs, run_module, tmp_path, case):
    marked, policy, failed, action, words = EXISTING_WITHOUT_FILE[case]
    run_module(ecs_keypair.main, {"name": "deploy", "return_private_key": True})
    orphan = fake_ecs.store["deploy"]["PublicKey"]
    path = tmp_path / "k.pem"
    if marked:
        _marker(path)
    fake_ecs.log.clear()
    args = {"name": "deploy", "private_key_path": str(path)}
    if policy:
        args["on_mismatch"] = policy
    check = "check mode" in case
    result, _out = run_module(ecs_keypair.main, args, check=check)
    text = result.get("msg", "") + " ".join(result.get("warnings", []))
    for word in words:
        assert word in text, text
    assert bool(result.get("failed")) is failed
    if failed:
        assert mutations(fake_ecs.log) == []
        return
    assert result["action"] == action and result["changed"] is (action == "replaced")
    if check or action == "kept":
        assert mutations(fake_ecs.log) == [] and fake_ecs.store["deploy"]["PublicKey"] == orphan
        return
    assert mutations(fake_ecs.log) == ["DeleteKeyPairs", "CreateKeyPair"]
    assert public_key_from_private(path.read_text()).identity() == fake_ecs.store["deploy"]["PublicKey"]
    assert os.listdir(tmp_path) == ["k.pem"]


def test_a_marker_for_another_key_pair_or_region_proves_nothing(fake_ecs, run_module, tmp_path):
    run_module(ecs_keypair.main, {"name": "deploy", "return_private_key": True})
    path = tmp_path / "k.pem"
    for name, region in (("other", "cn-hangzhou"), ("deploy", "cn-beijing")):
        _marker(path, name, region)
        result, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path)})
        assert result["failed"] and "cannot be fetched again" in result["msg"]


def test_a_key_pair_matching_the_file_is_another_runs_success_and_is_kept(fake_ecs, run_module, tmp_path):
    """Before any clean-up delete: a key pair whose public key matches the private key already in
    private_key_path was made by another run that saved it; deleting it would strand that key."""
    line, pem = new_key()
    path = tmp_path / "k.pem"
    path.write_text(pem)
    path.chmod(0o600)

    def other_run_wins(client, params):
        client._ImportKeyPair(dict(params, PublicKeyBody=line))  # pylint: disable=protected-access

    fake_ecs.failures.append(("CreateKeyPair", EcsApiError(code="ConnectionError", message="reset", sent=True),
                              other_run_wins))
    args = {"name": "deploy", "private_key_path": str(path), "overwrite_private_key": True}
    result, _out = run_module(ecs_keypair.main, args)
    assert result["failed"] and "another run made it" in result["msg"]
    assert "DeleteKeyPairs" not in mutations(fake_ecs.log)
    assert fake_ecs.store["deploy"]["PublicKey"] == parse_public_key(line).identity()
    assert path.read_text() == pem and os.listdir(tmp_path) == ["k.pem"]
    again, _out = run_module(ecs_keypair.main, args)
    assert again["changed"] is False and again["action"] == "unchanged"


def test_a_failed_read_back_after_the_create_still_names_the_change(fake_ecs, run_module, tmp_path):
    path = tmp_path / "k.pem"

    def reads_fail_from_now_on(client, params):
        client._CreateKeyPair(params)  # pylint: disable=protected-access
        fake_ecs.failures.extend([("DescribeKeyPairs", err("ServiceUnavailable"), "before")] * 3)

    lost = EcsApiError(code="ConnectionError", message="reset", sent=True)
    fake_ecs.failures.append(("CreateKeyPair", lost, reads_fail_from_now_on))
    result, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path)})
    assert result["failed"] and result["changed"] is True and "reading key pair deploy back failed" in result["msg"]
    assert len(result["changes"]) == 1
    assert result["changes"][0].startswith(f"created key pair deploy, its private key saved to {path}")
    # It could not be confirmed after the lost answer: the marker stays, named, for the next run.
    assert ".k.pem.pending" in result["changes"][0] and (tmp_path / ".k.pem.pending").exists()
    assert public_key_from_private(path.read_text()).identity() == fake_ecs.store["deploy"]["PublicKey"]
    fake_ecs.failures.clear()
    again, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(path)})
    assert again["changed"] is False and again["action"] == "unchanged" and os.listdir(tmp_path) == ["k.pem"]


def test_a_clear_refusal_leaves_no_marker(fake_ecs, run_module, tmp_path):
    fake_ecs.failures.append(("CreateKeyPair", err("QuotaExceed.KeyPair", 403), "before"))
    result, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": str(tmp_path / "k.pem")})
    assert result["failed"] and result["changed"] is False and os.listdir(tmp_path) == []


def test_the_lock_makes_a_second_run_wait_then_gives_up_clearly(tmp_path):
    from ansible_collections.sshkeys.ecs.plugins.module_utils._private_key_file import KeyFileError, KeyFileLock
    path = str(tmp_path / "k.pem")
    with KeyFileLock(path):
        lock_file = tmp_path / ".k.pem.lock"
        assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
        with pytest.raises(KeyFileError) as caught:
            KeyFileLock(path, wait=0.2).acquire()
        assert "another run has held the lock file" in str(caught.value)
    assert not lock_file.exists()
    with KeyFileLock(path, wait=0.2):
        pass


def test_a_waiter_whose_lock_file_was_removed_locks_the_new_one(tmp_path, monkeypatch):
    from ansible_collections.sshkeys.ecs.plugins.module_utils._private_key_file import KeyFileLock
    path = str(tmp_path / "k.pem")
    first = KeyFileLock(path)
    first.acquire()
    second = KeyFileLock(path, wait=5)
    real_try = second._try_lock  # pylint: disable=protected-access
    calls = []

    def release_first_then_try(fd, deadline):
        if not calls:
            calls.append(fd)
            first.release()  # unlinks the file second has open, then unlocks it
        return real_try(fd, deadline)

    monkeypatch.setattr(second, "_try_lock", release_first_then_try)
    second.acquire()
    held = os.fstat(second._fd)  # pylint: disable=protected-access
    named = os.lstat(tmp_path / ".k.pem.lock")
    assert (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
    second.release()


@pytest.mark.parametrize("plant", ["symlink", "fifo", "directory"])
def test_a_planted_lock_file_is_refused(tmp_path, plant, no_hang):
    from ansible_collections.sshkeys.ecs.plugins.module_utils._private_key_file import KeyFileError, KeyFileLock
    lock = tmp_path / ".k.pem.lock"
    if plant == "symlink":
        os.symlink(tmp_path / "elsewhere", lock)
    elif plant == "fifo":
        os.mkfifo(lock, 0o600)
    else:
        lock.mkdir()
    with pytest.raises(KeyFileError) as caught:
        KeyFileLock(str(tmp_path / "k.pem"), wait=0.2).acquire()
    assert "lock file" in str(caught.value)
    assert not (tmp_path / "elsewhere").exists()


# ---------------------------------------------------------------------------------------------
# 7. Names, ids and patterns: the whole value, with a message that says what is wrong.

# ansible-core may refuse a NUL itself, before the module runs (it cannot log it to syslog).
NUL_REFUSED = "|embedded null character"
BAD_VALUES = {
    "trailing newline": ("web\n", r"ends with a newline: a YAML block scalar \(\|\) adds one; use \|- or >-"),
    "leading space": (" web", "starts with white space"),
    "trailing space": ("web ", "ends with white space"),
    "trailing tab": ("web\t", "ends with white space"),
    "NUL inside": ("we\x00b", "may hold only" + NUL_REFUSED),
    "carriage return inside": ("we\rb", "may hold only"),
    "huge": ("w" * 100_000, "2 to 128 characters"),
    "non-decimal number": ("w½b", "may hold only"),
}

NAME_OPTIONS = {
    # id: (module, args built from the bad value)
    "ecs_keypair present": (ecs_keypair, lambda v: {"name": v, "return_private_key": True}),
    "ecs_keypair absent": (ecs_keypair, lambda v: {"name": v, "state": "absent"}),
    "ecs_keypair names": (ecs_keypair, lambda v: {"names": ["web2", v], "state": "absent"}),
    "ecs_keypair_info names": (ecs_keypair_info, lambda v: {"names": [v]}),
    "ecs_keypair_attach key_pair_name": (ecs_keypair_attach, lambda v: {"key_pair_name": v,
                                                                        "instance_ids": ["i-abc123"]}),
}


@pytest.mark.parametrize("value", list(BAD_VALUES))
@pytest.mark.parametrize("option", list(NAME_OPTIONS))
def test_bad_names_are_refused_before_any_call(fake_ecs, run_module, option, value):
    module, build = NAME_OPTIONS[option]
    text, words = BAD_VALUES[value]
    # A key pair "web" exists: a delete by "web\n" must not report success while finding nothing.
    fake_ecs.store["web"] = {"KeyPairName": "web", "PublicKey": new_key()[0], "Tags": {"Tag": []}}
    result, out = run_module(module.main, build(text))
    assert result["failed"] is True and re.search(words, result["msg"]), result["msg"]
    assert fake_ecs.log == [] and "web" in fake_ecs.store
    assert len(result["msg"]) < 1000  # a huge value is described, not quoted
    assert "Traceback" not in out


OTHER_VALUES = {
    # id: (module, args, words)
    "pattern with a trailing newline": (ecs_keypair_info, {"names": ["web-*\n"]}, "ends with a newline"),
    "pattern with a space": (ecs_keypair_info, {"names": ["web *"]}, "may hold only"),
    "fingerprint with a trailing newline": (ecs_keypair_info, {"fingerprint": "ab:cd:ef:01\n"}, "ends with a newline"),
    "fingerprint that is a short SHA256": (ecs_keypair_info, {"fingerprint": "SHA256:abc"}, "not a SHA256 fingerprint"),
    "resource group with a trailing newline": (ecs_keypair, {"name": "web", "return_private_key": True,
                                                             "resource_group_id": "rg-abc\n"}, "ends with a newline"),
    "resource group with NUL": (ecs_keypair_info, {"resource_group_id": "rg-a\x00b"},
                                "control character" + NUL_REFUSED),
    "instance id with NUL": (ecs_keypair_attach, {"key_pair_name": "web", "instance_ids": ["i-abc\x00"]},
                             "malformed instance ids" + NUL_REFUSED),
    "instance id with a newline inside": (ecs_keypair_attach, {"key_pair_name": "web", "instance_ids": ["i-a\nbc"]},
                                          "malformed instance ids"),
    "region with a trailing newline": (ecs_keypair_info, {"alicloud_region": "cn-hangzhou\n"}, "not a region id"),
    "access key id with a trailing newline": (ecs_keypair_info, {"alicloud_access_key": "AKID\n"}, "white space"),
}


@pytest.mark.parametrize("case", list(OTHER_VALUES))
def test_bad_ids_and_patterns_are_refused_before_any_call(fake_ecs, run_module, case):
    module, args, words = OTHER_VALUES[case]
    result, _out = run_module(module.main, args)
    assert result["failed"] is True and re.search(words, result["msg"]), result["msg"]
    assert fake_ecs.log == []


@pytest.mark.parametrize("field, value", [
    ("instances", ["i-abc123\n"]), ("region", "cn-hangzhou\n"), ("user", "root\n")])
def test_reconcile_matches_ids_regions_and_users_as_a_whole(field, value):
    key = new_key()[0]
    region = value if field == "region" else "cn-hangzhou"
    pair = {"name": "web", "public_key": key}
    if field == "instances":
        pair["instances"] = value
    doc = {"version": 1, "regions": {region: {"key_pairs": [pair]}},
           "authorized_keys": [{"hosts": "all", "users": [{"name": value if field == "user" else "root",
                                                           "keys": [{"key": key}]}]}]}
    with pytest.raises(StateError):
        validate_state(doc)


# ---------------------------------------------------------------------------------------------
# 9. Tags: set first, remove after; http:// in any letter case.


@pytest.fixture()
def tagged(fake_ecs, run_module):
    def _make(tags):
        line = new_key()[0]
        run_module(ecs_keypair.main, {"name": "ops", "public_key": line, "tags": tags})
        fake_ecs.log.clear()
        return line
    return _make


TWENTY_OLD = {f"old{i}": "v" for i in range(20)}
TWENTY_NEW = {f"new{i}": "v" for i in range(20)}

TAG_CASES = {
    # id: (tags before, tags wanted, failing action, failed, changed, changes, tags afterwards)
    "TagResources refused: nothing changed": (
        {"a": "1", "b": "2"}, {"a": "1", "c": "3"}, "TagResources", True, False, [], {"a": "1", "b": "2"}),
    "UntagResources refused after the tags were set: named": (
        {"a": "1", "b": "2"}, {"a": "1", "c": "3"}, "UntagResources", True, True,
        ["set tags c of key pair ops"], {"a": "1", "b": "2", "c": "3"}),
    "over 20 together: removal first, then TagResources refused: named": (
        TWENTY_OLD, TWENTY_NEW, "TagResources", True, True,
        ["removed tags " + ", ".join(sorted(TWENTY_OLD)) + " of key pair ops"], {}),
    "no failure": ({"a": "1", "b": "2"}, {"a": "1", "c": "3"}, None, False, True, [], {"a": "1", "c": "3"}),
}


@pytest.mark.parametrize("case", list(TAG_CASES))
def test_a_failed_tag_change_loses_no_tag_unannounced(fake_ecs, run_module, tagged, case):
    before, wanted, failing, failed, changed, changes, after = TAG_CASES[case]
    line = tagged(before)
    if failing:
        fake_ecs.failures.append((failing, err("ServiceUnavailable"), "before"))
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "public_key": line, "tags": wanted})
    assert bool(result.get("failed")) is failed and result["changed"] is changed
    if failed:
        assert result.get("changes", []) == changes and result["error"]["code"] == "ServiceUnavailable"
    tags = {t["TagKey"]: t["TagValue"] for t in fake_ecs.store["ops"]["Tags"]["Tag"]}
    assert tags == after
    again, _out = run_module(ecs_keypair.main, {"name": "ops", "public_key": line, "tags": wanted})
    assert not again.get("failed") and again["key_pair"]["tags"] == wanted


@pytest.mark.parametrize("tags", [{"site": "HTTP://example.org"}, {"site": "x Https://y"}, {"HTTP://k": "v"},
                                  {"Https://k": "v"}])
def test_urls_in_tags_are_refused_in_any_letter_case(fake_ecs, run_module, tags):
    result, _out = run_module(ecs_keypair.main, {"name": "ops", "public_key": new_key()[0], "tags": tags})
    assert result["failed"] and "http://" in result["msg"] and fake_ecs.log == []


# ---------------------------------------------------------------------------------------------
# 10. Not a regular file where a file is read: a clear error at once, never a hang.


def _plant(path, kind):
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        return sock
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        os.symlink("/dev/zero", path)
    elif kind == "link to a fifo":
        os.mkfifo(str(path) + ".real", 0o600)
        os.symlink(str(path) + ".real", path)
    return None


FILE_CASES = {
    # id: (option, kinds, extra args)
    "public_key_path": ("public_key_path", ["fifo", "socket", "directory", "device", "link to a fifo"], {}),
    "private_key_path, cloud": ("private_key_path", ["fifo", "socket", "link to a fifo"], {}),
    "private_key_path, local": ("private_key_path", ["fifo", "socket", "link to a fifo"], {"generate": "local"}),
    "private_key_path, cloud, key pair exists": ("private_key_path", ["fifo", "socket"], {"exists": True}),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_a_fifo_socket_device_or_directory_fails_at_once(fake_ecs, run_module, tmp_path, case, no_hang):
    option, kinds, extra = FILE_CASES[case]
    extra = dict(extra)
    if extra.pop("exists", False):
        run_module(ecs_keypair.main, {"name": "web", "return_private_key": True})
        fake_ecs.log.clear()
    for kind in kinds:
        path = tmp_path / kind.replace(" ", "-")
        sock = _plant(path, kind)
        try:
            result, _out = run_module(ecs_keypair.main, dict({"name": "web", option: str(path)}, **extra))
        finally:
            if sock is not None:
                sock.close()
        words = "symbolic link" if kind == "link to a fifo" and option == "private_key_path" else "not a regular file"
        assert result["failed"] and words in result["msg"] and option in result["msg"], (kind, result["msg"])
        assert mutations(fake_ecs.log) == []
        if kind == "fifo":
            assert stat.S_ISFIFO(os.lstat(path).st_mode)  # never replaced by a key file


def test_a_fifo_as_the_cli_profile_file_fails_at_once(fake_ecs, run_module, tmp_path, monkeypatch, no_hang):
    (tmp_path / ".aliyun").mkdir()
    os.mkfifo(tmp_path / ".aliyun" / "config.json", 0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "false")
    result, _out = run_module(ecs_keypair_info.main, {"alicloud_region": "cn-hangzhou"}, credentials=False)
    assert result["failed"] and "not a regular file" in result["msg"] and fake_ecs.log == []


def test_a_fifo_as_a_public_key_file_of_the_desired_state_fails_at_once(tmp_path, no_hang):
    os.mkfifo(tmp_path / "web.pub", 0o600)
    doc = {"version": 1, "regions": {"cn-hangzhou": {"key_pairs": [{"name": "web", "public_key_file": "web.pub"}]}}}
    with pytest.raises(StateError) as caught:
        validate_state(doc, base_dir=str(tmp_path))
    assert "not a regular file" in str(caught.value)


# ---------------------------------------------------------------------------------------------
# 11. A private key file ssh would refuse is refused before any change.


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666, 0o610])
@pytest.mark.parametrize("generate", ["local", "cloud"])
def test_an_unprotected_private_key_file_is_refused(fake_ecs, run_module, tmp_path, mode, generate):
    line, pem = new_key()
    path = tmp_path / "id"
    path.write_text(pem)
    path.chmod(mode)
    if generate == "cloud":  # the key pair exists; the file would be compared with it
        run_module(ecs_keypair.main, {"name": "web", "public_key": line})
        fake_ecs.log.clear()
    result, _out = run_module(ecs_keypair.main, {"name": "web", "generate": generate, "private_key_path": str(path)})
    assert result["failed"] and "UNPROTECTED PRIVATE KEY FILE" in result["msg"] and f"{mode:04o}" in result["msg"]
    assert mutations(fake_ecs.log) == [] and stat.S_IMODE(path.stat().st_mode) == mode
    path.chmod(0o600)
    result, _out = run_module(ecs_keypair.main, {"name": "web", "generate": generate, "private_key_path": str(path)})
    assert not result.get("failed") and fake_ecs.store["web"]["PublicKey"] == parse_public_key(line).identity()


def test_a_private_key_file_of_another_user_is_refused(fake_ecs, run_module, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    _line, pem = new_key()
    path = tmp_path / "id"
    path.write_text(pem)
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    result, _out = run_module(ecs_keypair.main, {"name": "web", "generate": "local", "private_key_path": str(path)})
    assert result["failed"] and "not by the user running the module" in result["msg"] and fake_ecs.log == []


# ---------------------------------------------------------------------------------------------
# 6. Private key material in any string option never shows in the output.

STRING_OPTIONS = {
    ecs_keypair: ["name", "public_key", "public_key_path", "private_key_path", "passphrase", "resource_group_id",
                  "generate", "key_type", "on_mismatch", "state", "alicloud_access_key", "alicloud_secret_key",
                  "alicloud_security_token", "alicloud_region", "alicloud_profile", "ecs_endpoint",
                  "ecs_signature_version", "names[]", "tags{}", "tags{key}"],
    ecs_keypair_info: ["names[]", "fingerprint", "resource_group_id", "tags{}", "alicloud_region"],
    ecs_keypair_attach: ["key_pair_name", "instance_ids[]", "state", "alicloud_region"],
}
BASE_ARGS = {ecs_keypair: {"name": "web", "return_private_key": True}, ecs_keypair_info: {},
             ecs_keypair_attach: {"key_pair_name": "web", "instance_ids": ["i-abc123"]}}


def _with_secret(module, option, secret):
    args = dict(BASE_ARGS[module])
    if option.endswith("[]"):
        args[option[:-2]] = [secret] if option != "names[]" or module is ecs_keypair_info else ["web", secret]
        if module is ecs_keypair and option == "names[]":
            args.pop("name")
            args.pop("return_private_key")
            args["state"] = "absent"
    elif option == "tags{}":
        args["tags"] = {"team": secret}
    elif option == "tags{key}":
        args["tags"] = {secret: "x"}
    else:
        args[option] = secret
    return args


@pytest.mark.parametrize("form", ["openssh", "pem"])
@pytest.mark.parametrize("module, option", [(m, o) for m, options in STRING_OPTIONS.items() for o in options],
                         ids=lambda v: v if isinstance(v, str) else v.__name__.split(".")[-1])
def test_private_key_material_in_any_string_option_never_shows(fake_ecs, run_module, module, option, form):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(65537, 2048)
    fmt = serialization.PrivateFormat.OpenSSH if form == "openssh" else serialization.PrivateFormat.TraditionalOpenSSL
    secret = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()
    result, out = run_module(module.main, _with_secret(module, option, secret))
    # Only a secret that is never sent (the signing secret) or a name that is not used (the
    # profile, read only when no key is given) may hold anything; every other option refuses it.
    if option not in ("alicloud_secret_key", "alicloud_profile"):
        assert result.get("failed") is True, f"{option} with a private key was accepted"
        assert mutations(fake_ecs.log) == []
    assert "Traceback" not in out
    for line in body_lines(secret):
        assert line not in out and line[:-1] not in out, f"a line of the key shows ({option})"


# ---------------------------------------------------------------------------------------------
# ecs_keypair_attach: a job that fails part way names what it changed.


def test_a_partly_failed_attach_names_what_it_attached(fake_ecs, run_module):
    fake_ecs.store["web"] = {"KeyPairName": "web", "PublicKey": new_key()[0], "Tags": {"Tag": []}}
    for instance_id in ("i-aaa111", "i-bbb222"):
        fake_ecs.instances[instance_id] = {"InstanceId": instance_id, "KeyPairName": "", "Status": "Stopped",
                                           "OSType": "linux"}
    fake_ecs.refuse = {"i-bbb222": "IncorrectInstanceStatus"}
    result, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "web",
                                                        "instance_ids": ["i-aaa111", "i-bbb222"]})
    assert result["failed"] and result["changed"] is True
    assert result["changes"] == ["attached key pair web to i-aaa111"]
    assert result["error"]["code"] == "IncorrectInstanceStatus" and result["error"]["action"] == "AttachKeyPair"
    assert result["failed_instances"] == ["i-bbb222"]

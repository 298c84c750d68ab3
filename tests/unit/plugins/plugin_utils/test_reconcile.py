# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GitOps desired state: reading, checking, the account plan and the host plan."""

from __future__ import annotations

import base64
import pathlib
import struct

import pytest

from ansible_collections.sshkeys.ecs.plugins.plugin_utils._reconcile_plan import (
    host_report,
    host_users,
    plan_region,
    plan_regions,
)
from ansible_collections.sshkeys.ecs.plugins.plugin_utils._reconcile_state import (
    StateError,
    load_state,
    validate_state,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import parse_public_key


def ed25519(seed: int, comment: str = "") -> str:
    def ssh_string(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data
    blob = ssh_string(b"ssh-ed25519") + ssh_string(bytes([seed]) * 32)
    line = "ssh-ed25519 " + base64.b64encode(blob).decode()
    return f"{line} {comment}" if comment else line


K1, K2, K3 = ed25519(1, "one"), ed25519(2, "two"), ed25519(3, "three")
FP = {k: parse_public_key(k).fingerprint() for k in (K1, K2, K3)}
IDENT = {k: parse_public_key(k).identity() for k in (K1, K2, K3)}
PRIVATE = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
           "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
           "-----END OPENSSH PRIVATE KEY-----\n")


def problems(doc, files=None) -> list:
    def read(path):
        if files and path in files:
            return files[path]
        raise FileNotFoundError(2, "No such file or directory")
    with pytest.raises(StateError) as caught:
        validate_state(doc, "/state", "state.yml", read_file=read)
    assert str(caught.value).startswith(f"state.yml: {len(caught.value.problems)} problem(s)")
    return caught.value.problems


def region(key_pairs, **extra):
    return {"version": 1, "regions": {"cn-hangzhou": dict({"key_pairs": key_pairs}, **extra)}}


# ------------------------------------------------------------------------------------ reading


def test_load_state_refuses_duplicate_keys():
    with pytest.raises(StateError) as caught:
        load_state("version: 1\nregions: {}\nregions: {}\n", "s.yml")
    assert "the key 'regions' is given twice" in caught.value.problems[0]
    assert "line 3" in caught.value.problems[0]


def test_load_state_bad_yaml_with_private_key_is_not_quoted():
    text = "version: [1\n" + PRIVATE
    with pytest.raises(StateError) as caught:
        load_state(text, "s.yml")
    assert "private key material" in str(caught.value)
    assert "b3BlbnNz" not in str(caught.value)


def test_load_state_plain():
    assert load_state("version: 1\n") == {"version": 1}


# ------------------------------------------------------------------------------------ checking


def test_valid_state_is_normalised():
    doc = region([{"name": "deploy", "public_key": K1, "tags": {"team": "a"}, "instances": ["i-abc1"]},
                  {"name": "ops", "public_key_file": "keys/ops.pub"}], prune=True, ignore=["legacy-*"])
    doc["authorized_keys"] = [{"hosts": "web", "users": [
        {"name": "ecs-user", "exclusive": True, "keys": [K1, {"key": K2, "options": "no-pty"}]},
        {"name": "root", "remove": [K3]}]}]
    state = validate_state(doc, "/state", read_file=lambda p: {"/state/keys/ops.pub": (K2 + "\n").encode()}[p])
    cn = state["regions"][0]
    assert (cn["region"], cn["prune"], cn["reboot"], cn["ignore"]) == ("cn-hangzhou", True, False, ["legacy-*"])
    assert cn["key_pairs"][0] == {"name": "deploy", "public_key": K1, "identity": IDENT[K1],
                                  "fingerprint": FP[K1], "tags": {"team": "a"}, "instances": ["i-abc1"]}
    assert cn["key_pairs"][1]["identity"] == IDENT[K2]
    assert cn["key_pairs"][1]["tags"] is None and cn["key_pairs"][1]["instances"] is None
    users = state["authorized_keys"][0]["users"]
    assert users[0]["keys"][1] == {"key": K2, "identity": IDENT[K2], "fingerprint": FP[K2], "options": "no-pty"}
    assert users[1] == {"name": "root", "path": None, "exclusive": False, "allow_empty": False, "keys": [],
                        "remove": [IDENT[K3]]}


@pytest.mark.parametrize("doc, expected", [
    (None, "the file is empty"),
    ([1], "must be a mapping, not a list"),
    ({"regions": {}}, "version is required"),
    ({"version": 2}, "version: must be 1"),
    ({"version": 1, "region": {}}, "unknown key 'region'"),
    ({"version": 1, "regions": {"Hangzhou": {}}}, "regions.Hangzhou: is not a region id"),
    (region([], prnue=True), "regions.cn-hangzhou: unknown key 'prnue'"),
    (region([], prune="yes"), "regions.cn-hangzhou.prune: must be true or false, not a string"),
    (region({"name": "x"}), "key_pairs: must be a list, not a mapping"),
    (region([{"name": "9lives", "public_key": K1}]), "must start with a letter"),
    (region([{"name": "a", "public_key": K1}]), "must be 2 to 128 characters long"),
    (region([{"name": "ok-name"}]), "give exactly one of public_key and public_key_file"),
    (region([{"name": "ok-name", "public_key": K1, "public_key_file": "x.pub"}]), "give exactly one"),
    (region([{"name": "ok-name", "public_key": "ssh-ed25519 AAAA"}]), "not a valid public key"),
    (region([{"name": "ok-name", "public_key": K1, "tags": {"aliyun:x": "1"}}]), "must not start with 'aliyun'"),
    (region([{"name": "ok-name", "public_key": K1, "tags": ["a"]}]), "tags: must be a mapping"),
    (region([{"name": "ok-name", "public_key": K1, "instances": ["web-1"]}]), "'web-1' is not an instance id"),
    (region([{"name": "ok-name", "public_key": K1, "instances": "i-abc1"}]), "instances: must be a list"),
    (region([{"name": "ok-name", "public_key_file": "none.pub"}]), "cannot read none.pub: No such file or directory"),
    (region([{"name": "legacy-1", "public_key": K1}], ignore=["legacy-*"]), "matches an ignore pattern"),
    ({"version": 1, "authorized_keys": {"hosts": "all"}}, "authorized_keys: must be a list"),
    ({"version": 1, "authorized_keys": [{"hosts": "all"}]}, "users is required"),
    ({"version": 1, "authorized_keys": [{"hosts": "", "users": [{"name": "root"}]}]}, "must be a host pattern"),
    ({"version": 1, "authorized_keys": [{"hosts": "all", "users": [{"name": "ro ot"}]}]}, "must be a user name"),
    ({"version": 1, "authorized_keys": [{"hosts": "all", "users": [{"name": "root", "keys": ["nope"]}]}]},
     "keys[0]: not a valid public key"),
    ({"version": 1, "authorized_keys": [{"hosts": "all", "users": [{"name": "root", "keys": [{"key": K1, "opts": ""}]}]}]},
     "unknown key 'opts'"),
    ({"version": 1, "authorized_keys": [{"hosts": "all", "users": [{"name": "root", "exclusive": True, "remove": [K1]}]}]},
     "remove is pointless with exclusive: true"),
    ({"version": 1, "authorized_keys": [{"hosts": "all", "users": [{"name": "root", "keys": [K1], "remove": [K1]}]}]},
     "is also in keys"),
    ({"version": 1, "authorized_keys": [{"hosts": "all", "users": [{"name": "root", "exclusive": True}]}]},
     "exclusive: true with no keys would remove every key from the file; set allow_empty: true"),
    ({"version": 1, "authorized_keys": [{"hosts": "all", "users": [{"name": "root", "exclusive": True, "keys": []}]}]},
     "set allow_empty: true if that is meant"),
    ({"version": 1, "authorized_keys": [{"hosts": "all", "users": [{"name": "root", "allow_empty": "yes"}]}]},
     "allow_empty: must be true or false"),
])
def test_each_problem_is_named(doc, expected):
    found = problems(doc)
    assert any(expected in p for p in found), found


def test_duplicates_are_problems():
    found = problems(region([
        {"name": "dup", "public_key": K1, "instances": ["i-abc1"]},
        {"name": "dup", "public_key": K2},
        {"name": "other", "public_key": K3, "instances": ["i-abc1"]},
    ]) | {"authorized_keys": [{"hosts": "all", "users": [
        {"name": "root", "keys": [K1, ed25519(1, "same key, other comment")]},
        {"name": "root"}]}]})
    assert any("key pair dup is listed twice (also item 0)" in p for p in found)
    assert any("i-abc1 is also listed under key pair dup" in p for p in found)
    assert any(f"keys[1]: {FP[K1]} is listed twice (also item 0)" in p for p in found)
    assert any("user root is listed twice for these hosts (also item 0)" in p for p in found)


def test_every_problem_is_listed_at_once():
    found = problems(region([{"name": "1", "public_key": "x"}, {"name": "ok-name", "public_key": K1, "tags": 3}],
                            prune="no"))
    assert len(found) == 4, found


@pytest.mark.parametrize("where", ["public_key", "tags", "authorized"])
def test_private_key_anywhere_is_refused_without_echo(where):
    if where == "public_key":
        doc = region([{"name": "ok-name", "public_key": PRIVATE}])
        place = "regions.cn-hangzhou.key_pairs[0].public_key"
    elif where == "tags":
        doc = region([{"name": "ok-name", "public_key": K1, "tags": {"note": PRIVATE}}])
        place = "regions.cn-hangzhou.key_pairs[0].tags.note"
    else:
        doc = {"version": 1, "authorized_keys": [{"hosts": "all", "users": [{"name": "root", "keys": [PRIVATE]}]}]}
        place = "authorized_keys[0].users[0].keys[0]"
    with pytest.raises(StateError) as caught:
        validate_state(doc, "/state")
    assert caught.value.problems == [f"{place}: holds a PRIVATE key; only public keys belong in the desired state "
                                     "(use the .pub file; and treat the pasted private key as leaked)"]
    assert "b3BlbnNz" not in str(caught.value)


def test_a_pasted_private_key_does_not_hide_the_other_problems():
    # One run lists them all: the pasted key, a private key file, and a plain mistake.
    doc = region([{"name": "ok-name", "public_key": PRIVATE}, {"name": "other", "public_key_file": "id_ed25519"},
                  {"name": "2nd", "public_key": K1, "tags": {"note": PRIVATE}}])
    doc["authorized_keys"] = [{"hosts": "all", "users": [{"name": "root", "keys": [PRIVATE, K1], "exclusive": True}]}]
    found = problems(doc, files={"/state/id_ed25519": PRIVATE.encode()})
    assert [p.split(":")[0] for p in found] == [
        "regions.cn-hangzhou.key_pairs[0].public_key",
        "regions.cn-hangzhou.key_pairs[2].tags.note",
        "authorized_keys[0].users[0].keys[0]",
        "regions.cn-hangzhou.key_pairs[1] (other).public_key_file",
        "regions.cn-hangzhou.key_pairs[2]",
    ], found
    assert "name '2nd' must start with a letter" in found[4]
    assert "b3BlbnNz" not in str(found)


def test_private_key_file_is_refused_without_echo():
    found = problems(region([{"name": "ok-name", "public_key_file": "id_ed25519"}]),
                     files={"/state/id_ed25519": PRIVATE.encode()})
    assert found == ["regions.cn-hangzhou.key_pairs[0] (ok-name).public_key_file: id_ed25519 holds a PRIVATE key;"
                     " point to the public key (.pub) instead"]


def test_key_file_with_two_keys_is_refused():
    found = problems(region([{"name": "ok-name", "public_key_file": "two.pub"}]),
                     files={"/state/two.pub": f"# keys\n{K1}\n{K2}\n".encode()})
    assert "must hold exactly one public key line, not 2" in found[0]


def test_ecs_refuses_other_key_types():
    sk = "sk-ssh-ed25519@openssh.com " + base64.b64encode(
        struct.pack(">I", 26) + b"sk-ssh-ed25519@openssh.com" + struct.pack(">I", 32) + b"\x01" * 32
        + struct.pack(">I", 4) + b"ssh:").decode()
    found = problems(region([{"name": "ok-name", "public_key": sk}]))
    assert "cannot be imported into ECS" in found[0]
    # The same key is fine in authorized_keys.
    validate_state({"version": 1, "authorized_keys": [{"hosts": "all", "users": [{"name": "root", "keys": [sk]}]}]})


# ------------------------------------------------------------------------------------ account plan


def desired(*pairs, prune=False, reboot=False, ignore=()):
    doc = region(list(pairs), prune=prune, reboot=reboot, ignore=list(ignore))
    return validate_state(doc, "/state")["regions"][0]


def found(name, key, tags=None, instances=()):
    key = parse_public_key(key)
    return {"name": name, "public_key": key.identity(), "fingerprint_sha256": key.fingerprint(),
            "tags": dict(tags or {}), "instances": [{"instance_id": i} for i in instances]}


def test_plan_no_change():
    plan = plan_region(desired({"name": "deploy", "public_key": K1, "tags": {"a": "1"}, "instances": ["i-abc1"]}),
                       [found("deploy", ed25519(1, "other comment"), {"a": "1"}, ["i-abc1"])])
    assert plan["changes"] == [] and not plan["drift"]
    assert plan["keypair_tasks"] == [] and plan["attach"] == []


def test_plan_import_retag_replace_attach():
    plan = plan_region(desired(
        {"name": "new-one", "public_key": K1, "tags": {"t": "1"}, "instances": ["i-abc1"]},
        {"name": "retag", "public_key": K2, "tags": {"keep": "x", "set": "2"}},
        {"name": "rekey", "public_key": K3, "instances": ["i-abc2", "i-abc3"]},
        {"name": "notags", "public_key": K1},
    ), [
        found("retag", K2, {"keep": "x", "set": "old", "gone": "y"}),
        found("rekey", K1, {}, ["i-abc2"]),
        found("notags", K1, {"whatever": "1"}),
        found("other", K2, {}, ["i-abc3"]),
    ])
    assert plan["import"] == ["new-one"]
    assert plan["replace"] == ["rekey"]
    assert plan["retag"] == [{"name": "retag", "set": {"set": "2"}, "remove": ["gone"]}]
    assert plan["attach"] == [{"name": "new-one", "instance_ids": ["i-abc1"], "imported": True},
                              {"name": "rekey", "instance_ids": ["i-abc3"], "imported": False}]
    assert [t["name"] for t in plan["keypair_tasks"]] == ["new-one", "retag", "rekey"]
    assert plan["keypair_tasks"][0] == {"name": "new-one", "public_key": K1, "tags": {"t": "1"}}
    # i-abc3 moves from "other" to "rekey": "other" is unmanaged but no longer counted as held by it.
    assert plan["unmanaged"] == [{"name": "other", "fingerprint": FP[K2], "instance_ids": []}]
    assert plan["changes"] == [
        f"cn-hangzhou: import key pair new-one ({FP[K1]}), tags t=1",
        "cn-hangzhou: attach new-one to i-abc1; effective at their next restart",
        "cn-hangzhou: tags of retag: set set=2; remove gone",
        f"cn-hangzhou: replace the public key of rekey ({FP[K1]} -> {FP[K3]}); its instances get the new key pair"
        " at their next restart",
        "cn-hangzhou: attach rekey to i-abc3 (holds other); effective at their next restart",
        f"cn-hangzhou: key pair other ({FP[K2]}) is not in the state file: left as is (prune: true deletes it)",
    ]
    assert plan["drift"]


def test_plan_unlisted_holders_reported_or_detached():
    pairs = [found("deploy", K1, {}, ["i-abc1", "i-abc2"])]
    report = plan_region(desired({"name": "deploy", "public_key": K1, "instances": ["i-abc1"]}), pairs)
    assert report["unlisted"] == [{"name": "deploy", "instance_ids": ["i-abc2"]}] and report["detach"] == []
    assert "left as is (prune: true detaches)" in report["changes"][0]
    prune = plan_region(desired({"name": "deploy", "public_key": K1, "instances": ["i-abc1"]}, prune=True), pairs)
    assert prune["detach"] == [{"name": "deploy", "instance_ids": ["i-abc2"]}] and prune["unlisted"] == []
    # Without an instances list the bindings of that key pair are not managed.
    free = plan_region(desired({"name": "deploy", "public_key": K1}, prune=True), pairs)
    assert free["changes"] == []


def test_plan_frees_a_name_a_deleted_key_pair_left_taken():
    held = [{"instance_id": "i-abc2"}, {"instance_id": "i-abc1"}]
    listed = plan_regions([desired({"name": "deploy", "public_key": K1, "instances": ["i-abc1", "i-abc3"]})], [[]],
                          [{"deploy": held}])
    plan = listed["regions"][0]
    assert plan["free"] == [{"name": "deploy", "instance_ids": ["i-abc1", "i-abc2"]}]
    assert plan["import"] == ["deploy"]
    # The instances that showed the name hold nothing once it is freed: all listed ones are attached.
    assert plan["attach"] == [{"name": "deploy", "instance_ids": ["i-abc1", "i-abc3"], "imported": True}]
    assert listed["changes"][0] == ("cn-hangzhou: free the name deploy: detach it from i-abc1, i-abc2, which still show"
                                    " it (a key pair of that name was deleted while attached; ECS keeps the name taken"
                                    " until then)")
    assert listed["jobs"]["free"] == [{"name": "deploy", "instance_ids": ["i-abc1", "i-abc2"], "region": "cn-hangzhou",
                                       "label": "cn-hangzhou: free the name deploy (i-abc1, i-abc2)"}]
    # Without an instances list the former holders get the key pair back.
    free = plan_region(desired({"name": "deploy", "public_key": K1}), [], {"deploy": held})
    assert free["attach"] == [{"name": "deploy", "instance_ids": ["i-abc1", "i-abc2"], "imported": True}]
    assert free["changes"][-1] == "cn-hangzhou: attach deploy to i-abc1, i-abc2 again once imported; effective at their next restart"
    # A name held by its own key pair is not taken; a taken name not in the state is not touched.
    assert plan_region(desired({"name": "deploy", "public_key": K1}), [found("deploy", K1)], {"other": held})["free"] == []
    with pytest.raises(ValueError):
        plan_regions([desired({"name": "deploy", "public_key": K1})], [[]], [])


def test_plan_prune_and_ignore():
    pairs = [found("legacy-1", K1), found("stray", K2, {}, ["i-abc9"]), found("keep", K3)]
    plan = plan_region(desired({"name": "keep", "public_key": K3}, prune=True, ignore=["legacy-*"]), pairs)
    assert plan["delete"] == [{"name": "stray", "fingerprint": FP[K2], "instance_ids": ["i-abc9"]}]
    assert plan["unmanaged"] == []
    assert plan["changes"] == [f"cn-hangzhou: delete key pair stray ({FP[K2]}, held by i-abc9), not in the state file;"
                               " detached from its instances first"]


def test_plan_reboot_wording():
    plan = plan_region(desired({"name": "deploy", "public_key": K1, "instances": ["i-abc1"]}, reboot=True),
                       [found("deploy", K1)])
    assert plan["changes"] == ["cn-hangzhou: attach deploy to i-abc1; reboot them"]


def test_plan_regions_sums_up_and_checks_lengths():
    one = desired({"name": "deploy", "public_key": K1})
    out = plan_regions([one], [[]])
    assert out["drift"] and out["changes"] == [f"cn-hangzhou: import key pair deploy ({FP[K1]})"]
    assert not plan_regions([], [])["drift"]
    assert out["jobs"]["keypair"] == [{"name": "deploy", "public_key": K1, "tags": None, "region": "cn-hangzhou",
                                       "label": "cn-hangzhou: key pair deploy"}]
    with pytest.raises(ValueError):
        plan_regions([one], [])


def test_plan_jobs_are_flat_and_small():
    # One item per module call, without the region's plan in it: a failure shows the item, not the plan.
    two = desired({"name": "deploy", "public_key": K1, "instances": ["i-abc1"]}, prune=True, reboot=True)
    out = plan_regions([two], [[found("deploy", K1), found("stray", K2, {}, ["i-abc2"]), found("old", K3)]])
    assert out["jobs"] == {
        "free": [],
        "keypair": [],
        "attach": [{"name": "deploy", "instance_ids": ["i-abc1"], "imported": False, "region": "cn-hangzhou",
                    "reboot": True, "label": "cn-hangzhou: attach deploy (i-abc1)"}],
        "detach": [],
        "delete": [{"region": "cn-hangzhou", "names": ["old", "stray"], "label": "cn-hangzhou: delete old, stray"}],
    }


# ------------------------------------------------------------------------------------ host plan


def entries(*items):
    return validate_state({"version": 1, "authorized_keys": list(items)})["authorized_keys"]


def test_host_users_merge():
    state = entries(
        {"hosts": "web", "users": [{"name": "ecs-user", "keys": [K1]}, {"name": "root", "remove": [K3]}]},
        {"hosts": "prod", "users": [{"name": "ecs-user", "exclusive": True, "keys": [K1, {"key": K2, "comment": "c"}]}]},
        {"hosts": "nothing", "users": [{"name": "root", "keys": [K2]}]},
    )
    out = host_users(state, [["h1", "h2"], ["h2"], []])
    assert out["problems"] == []
    assert out["warnings"] == ["authorized_keys[2]: hosts 'nothing' matches no host of the inventory"]
    assert out["hosts"]["h1"] == [{"name": "ecs-user", "exclusive": False, "allow_empty": False, "add": [K1],
                                   "remove": [], "entries": ["authorized_keys[0].users[0] (ecs-user)"]},
                                  {"name": "root", "exclusive": False, "allow_empty": False, "add": [],
                                   "remove": [IDENT[K3]], "entries": ["authorized_keys[0].users[1] (root)"]}]
    # h2: the union of keys, exclusive because one entry says so (remove then has no use).
    assert out["hosts"]["h2"][0] == {"name": "ecs-user", "exclusive": True, "allow_empty": False,
                                     "add": [K1, {"key": K2, "comment": "c"}], "remove": [],
                                     "entries": ["authorized_keys[0].users[0] (ecs-user)",
                                                 "authorized_keys[1].users[0] (ecs-user)"]}


def test_an_exclusive_user_with_no_keys_is_passed_on_only_when_allowed():
    state = entries({"hosts": "web", "users": [{"name": "leaver", "exclusive": True, "allow_empty": True}]})
    out = host_users(state, [["h1"]])
    assert out["hosts"]["h1"] == [{"name": "leaver", "exclusive": True, "allow_empty": True, "add": [],
                                   "remove": [], "entries": ["authorized_keys[0].users[0] (leaver)"]}]


def test_exclusive_boot_users_keep_their_instance_key_pair():
    # ECS writes the bound key pair's key into root's and ecs-user's files at every boot.
    pair = desired({"name": "login", "public_key": K3, "instances": ["i-abc1"]})["key_pairs"][0]
    state = entries({"hosts": "web", "users": [
        {"name": "ecs-user", "exclusive": True, "keys": [K1]},
        {"name": "root", "exclusive": True, "keys": [K3]},
        {"name": "admin", "exclusive": True, "keys": [K1]},
        {"name": "ecs-user", "path": "/etc/ssh/keys/ecs-user", "exclusive": True, "keys": [K1]},
    ]}, {"hosts": "db", "users": [{"name": "root", "keys": [K1]}]})
    out = host_users(state, [["h1", "h2"], ["h1"]], {"h1": pair})
    users = {(u["name"], u.get("path")): u for u in out["hosts"]["h1"]}
    assert users[("ecs-user", None)]["add"] == [K1, K3]
    # Listed already, not a boot user, another file: unchanged.
    assert users[("root", None)]["add"] == [K3, K1]
    assert users[("admin", None)]["add"] == [K1]
    assert users[("ecs-user", "/etc/ssh/keys/ecs-user")]["add"] == [K1]
    # A host whose instance the state does not list under a key pair gets nothing implied.
    assert {u["name"]: u["add"] for u in out["hosts"]["h2"] if "path" not in u}["ecs-user"] == [K1]
    assert out["implied"] == [f"h1: ecs-user keeps key pair login ({FP[K3]}), which ECS writes into that file at every boot"]
    # Not exclusive: nothing is removed at all, so nothing is implied.
    loose = host_users(entries({"hosts": "web", "users": [{"name": "root", "keys": [K1]}]}), [["h1"]], {"h1": pair})
    assert loose["hosts"]["h1"][0]["add"] == [K1] and loose["implied"] == []


def test_host_users_contradiction_and_path():
    state = entries(
        {"hosts": "a", "users": [{"name": "root", "keys": [K1], "path": "/etc/ssh/keys/root"}]},
        {"hosts": "b", "users": [{"name": "root", "remove": [K1], "path": "/etc/ssh/keys/root"}]},
    )
    out = host_users(state, [["h1"], ["h1"]])
    assert out["problems"] == ["host h1, user root: a key is both wanted and removed by different entries"]
    assert out["hosts"]["h1"][0]["path"] == "/etc/ssh/keys/root"
    with pytest.raises(ValueError):
        host_users(state, [["h1"]])


def test_host_report():
    report = host_report({
        "h1": {"changed": True, "results": [
            {"changed": True, "user": "ecs-user", "added": [FP[K1]], "removed": [FP[K2]], "changed_keys": []},
            {"changed": False, "user": "root", "added": [], "removed": []}]},
        "h2": {"changed": False, "results": []},
        "h3": {},
        "h4": {"failed": True, "msg": "boom"},
        "h5": {"unreachable": True, "changed": False, "msg": "Failed to connect to the host via ssh:\nConnection refused"},
        "h6": {"failed": True, "msg": "One or more items failed", "results": [
            {"failed": True, "msg": "user nobody-here does not exist", "item": {"name": "nobody-here"}},
            {"changed": False, "user": "root"}]},
    })
    assert report["changes"] == [f"h1: authorized_keys of ecs-user: add {FP[K1]}; remove {FP[K2]}"]
    # A host that was not checked is an error, never a host without drift.
    assert report["errors"] == [
        "h3: not checked (no result: the host was not reached, or the run stopped before it)",
        "h4: the authorized_keys role failed: boom",
        "h5: unreachable, not checked: Failed to connect to the host via ssh: Connection refused",
        "h6: the authorized_keys role failed: nobody-here: user nobody-here does not exist",
    ]
    assert report["drift"]
    assert host_report({"h2": {"changed": False, "results": []}}) == {"changes": [], "errors": [], "drift": False}
    assert host_report({"h7": {"unreachable": True, "msg": "x" * 400}})["errors"][0].endswith("x...")


def test_the_documented_example_is_valid():
    # docs/examples/desired-state.yml must stay a state the playbook accepts.
    root = pathlib.Path(__file__).resolve().parents[4]
    example = root / "docs" / "examples" / "desired-state.yml"
    if not example.is_file():
        pytest.skip("docs are not part of this tree")
    state = validate_state(load_state(example.read_text()), str(example.parent))
    assert [r["region"] for r in state["regions"]] == ["cn-hangzhou", "cn-shanghai"]
    assert state["regions"][0]["key_pairs"][0]["instances"] == ["i-bp1a2b3c4d5e6f7g8h9i", "i-bp1j0k1l2m3n4o5p6q7r"]
    assert [e["hosts"] for e in state["authorized_keys"]] == ["web", "bastion"]

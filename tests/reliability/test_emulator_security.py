# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Emulator security: forged and stale requests, replays, one account reaching for another's
key pairs and instances, and the admin API without its token. Every attempt must be refused with
the documented code and change nothing: both accounts' key pairs and the fault rules are read
back after each case.

Requests are signed by the emulator tests' raw signers (emulator/tests/support.py, checked
there against the official SDKs and the published v1 test vector) or made by the official SDKs.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Tuple

import pytest

from relstate import SDKS, key_pairs_by_name, raw, run_instances, v1_call, v1_query, v3_headers

OTHER = 1  # the second account of the emulator


def v1_raw(emu: Any, query: str) -> Tuple[int, Dict[str, Any]]:
    return raw(emu.port, "POST", "/?" + query, headers={"Content-Length": "0"})


def v3_call(emu: Any, key: tuple, action: str, query: Dict[str, str], **kwargs: Any) -> Tuple[int, Dict[str, Any]]:
    host = f"127.0.0.1:{emu.port}"
    headers = v3_headers(key, action, query, host, **kwargs)
    return raw(emu.port, "POST", "/?" + urllib.parse.urlencode(query), headers=headers)


def sdk_call(emu: Any, name: str, key: tuple, action: str, **params: Any) -> Tuple[int, str]:
    from support import ApiFailure  # pylint: disable=import-outside-toplevel
    client = SDKS[name](f"127.0.0.1:{emu.port}", key)
    try:
        client.call(action, **params)
    except ApiFailure as exc:
        return exc.status or 0, exc.code
    return 200, ""


def answer(reply: Tuple[int, Any]) -> Tuple[int, str]:
    status, body = reply
    return status, (body or {}).get("Code", "") if isinstance(body, dict) else str(body)


# -- the cases: each returns the (HTTP status, code) the attempt got ------------------------------

def wrong_secret_v1(emu, ctx):
    return answer(v1_call(emu.port, (emu.key(0)[0], "not-the-secret"), ctx["create"]("forged-v1")))


def wrong_secret_v3(emu, ctx):
    return answer(v3_call(emu, (emu.key(0)[0], "not-the-secret"), "CreateKeyPair",
                          {"RegionId": emu.region, "KeyPairName": "forged-v3"}))


def wrong_secret_sdk3(emu, ctx):
    return sdk_call(emu, "sdk3", (emu.key(0)[0], "not-the-secret"), "CreateKeyPair", RegionId=emu.region,
                    KeyPairName="forged-sdk3")


def wrong_secret_sdk1(emu, ctx):
    return sdk_call(emu, "sdk1", (emu.key(0)[0], "not-the-secret"), "CreateKeyPair", RegionId=emu.region,
                    KeyPairName="forged-sdk1")


def other_accounts_secret(emu, ctx):
    """Account A's key id signed with account B's secret."""
    return answer(v1_call(emu.port, (emu.key(0)[0], emu.key(OTHER)[1]), ctx["create"]("forged-cross")))


def unknown_key_id(emu, ctx):
    return answer(v1_call(emu.port, ("LTAI5tNoSuchKeyAnywhere0", "whatever"), ctx["create"]("forged-unknown")))


def tampered_v1_name(emu, ctx):
    """A signed request whose key pair name was changed on the way."""
    query = v1_query(emu.key(0), ctx["create"]("signed-name"))
    return answer(v1_raw(emu, query.replace("KeyPairName=signed-name", "KeyPairName=tampered-name")))


def tampered_v3_query(emu, ctx):
    host = f"127.0.0.1:{emu.port}"
    headers = v3_headers(emu.key(0), "CreateKeyPair", {"RegionId": emu.region, "KeyPairName": "signed-v3"}, host)
    return answer(raw(emu.port, "POST", f"/?RegionId={emu.region}&KeyPairName=tampered-v3", headers=headers))


def v3_body_swapped(emu, ctx):
    """The body hash signs one body, another is sent."""
    host = f"127.0.0.1:{emu.port}"
    signed = urllib.parse.urlencode({"RegionId": emu.region, "KeyPairName": "body-signed"}).encode()
    headers = dict(v3_headers(emu.key(0), "CreateKeyPair", {}, host, body=signed),
                   **{"Content-Type": "application/x-www-form-urlencoded"})
    sent = urllib.parse.urlencode({"RegionId": emu.region, "KeyPairName": "body-swapped"}).encode()
    return answer(raw(emu.port, "POST", "/", body=sent, headers=headers))


def v3_action_header_swapped(emu, ctx):
    """Signed as DescribeKeyPairs, sent as DeleteKeyPairs."""
    host = f"127.0.0.1:{emu.port}"
    query = {"RegionId": emu.region, "KeyPairNames": json.dumps([ctx["victim"]])}
    headers = v3_headers(emu.key(0), "DescribeKeyPairs", query, host)
    headers["x-acs-action"] = "DeleteKeyPairs"
    return answer(raw(emu.port, "POST", "/?" + urllib.parse.urlencode(query), headers=headers))


def v1_without_signature(emu, ctx):
    query = v1_query(emu.key(0), ctx["create"]("unsigned"))
    query = "&".join(part for part in query.split("&") if not part.startswith("Signature="))
    return answer(v1_raw(emu, query))


def stale(minutes: int, scheme: str) -> Callable:
    def case(emu, ctx):
        when = datetime.now(timezone.utc) + timedelta(minutes=minutes)
        if scheme == "v1":
            return answer(v1_call(emu.port, emu.key(0), ctx["create"](f"stale-v1-{minutes + 100}"), timestamp=when))
        return answer(v3_call(emu, emu.key(0), "CreateKeyPair",
                              {"RegionId": emu.region, "KeyPairName": f"stale-v3-{minutes + 100}"}, timestamp=when))
    case.__doc__ = f"{scheme} timestamp {minutes:+d} minutes"
    return case


def replay(scheme: str) -> Callable:
    """A captured ImportKeyPair replayed after the key pair was deleted must not bring it back."""
    def case(emu, ctx):
        name = f"replay-{scheme}"
        params = {"RegionId": emu.region, "KeyPairName": name, "PublicKeyBody": ctx["public_key"]}
        host = f"127.0.0.1:{emu.port}"
        if scheme == "v1":
            query = v1_query(emu.key(0), dict(params, Action="ImportKeyPair"))

            def send():
                return v1_raw(emu, query)
        else:
            headers = v3_headers(emu.key(0), "ImportKeyPair", params, host)

            def send():
                return raw(emu.port, "POST", "/?" + urllib.parse.urlencode(params), headers=headers)
        status, body = send()
        assert status == 200, body
        status, body = v1_call(emu.port, emu.key(0), {
            "Action": "DeleteKeyPairs", "RegionId": emu.region, "KeyPairNames": json.dumps([name])})
        assert status == 200, body
        ctx["snapshot"]()  # the state to keep is the one after the genuine import and delete
        return answer(send())
    return case


def cross(action: str, params: Callable[[Dict[str, Any]], Dict[str, str]]) -> Callable:
    """Account B tries something on account A's resources."""
    def case(emu, ctx):
        return answer(v1_call(emu.port, emu.key(OTHER), dict(params(ctx), Action=action, RegionId=emu.region)))
    return case


def cross_reads(emu, ctx):
    """Account B lists everything and asks for A's key pair and instance by name and id: sees nothing."""
    status, body = v1_call(emu.port, emu.key(OTHER), {"Action": "DescribeKeyPairs", "RegionId": emu.region,
                                                      "KeyPairName": ctx["victim"]})
    assert status == 200 and body["TotalCount"] == 0, body
    theirs = key_pairs_by_name(emu, OTHER)
    assert ctx["victim"] not in theirs
    status, body = v1_call(emu.port, emu.key(OTHER), {"Action": "DescribeInstances", "RegionId": emu.region,
                                                      "InstanceIds": json.dumps(ctx["instances"])})
    assert status == 200 and body["Instances"]["Instance"] == [], body
    status, body = v1_call(emu.port, emu.key(OTHER), {"Action": "ListTagResources", "RegionId": emu.region,
                                                      "ResourceType": "keypair", "ResourceId.1": ctx["victim"]})
    tags = (body.get("TagResources") or {}).get("TagResource") or [] if status == 200 else []
    assert tags == [], body
    return (status, "nothing of account A visible")


def attach_victims_instance(emu, ctx):
    """B attaches its own key pair to A's instance: the per-instance result is a failure."""
    status, body = v1_call(emu.port, emu.key(OTHER), {
        "Action": "AttachKeyPair", "RegionId": emu.region, "KeyPairName": ctx["own"],
        "InstanceIds": json.dumps(ctx["instances"][:1])})
    if status != 200:
        return status, body.get("Code", "")
    result = body["Results"]["Result"][0]
    assert body["FailCount"] == "1" and str(result["Success"]).lower() == "false", body
    return status, result["Code"]


def admin(method: str, path: str, token: Any, body: Any = None) -> Callable:
    def case(emu, ctx):
        if token == "secret":
            value = emu.key(0)[1]
        elif token == "near":
            right = emu.doc["admin_token"]
            value = right[:-1] + ("x" if right[-1] != "x" else "y")
        else:
            value = token
        status, reply = emu.admin(method, path, body, token=value)
        return status, reply.get("Code", "")
    return case


RULE = {"faults": [{"action": "*", "kind": "internal"}], "replace": True}
SIG = ("SignatureDoesNotMatch",)
CASES: List[Tuple[str, str, Callable, Tuple[int, Tuple[str, ...]]]] = [
    ("bad signature", "v1 signed with a wrong secret", wrong_secret_v1, (400, SIG)),
    ("bad signature", "v3 signed with a wrong secret", wrong_secret_v3, (400, SIG)),
    ("bad signature", "official SDK (v3) with a wrong secret", wrong_secret_sdk3, (400, SIG)),
    # The legacy SDK renames the error when the server's string to sign equals its own.
    ("bad signature", "legacy SDK (v1) with a wrong secret", wrong_secret_sdk1, (400, SIG + ("InvalidAccessKeySecret",))),
    ("bad signature", "account A's key id, account B's secret", other_accounts_secret, (400, SIG)),
    ("bad signature", "unknown AccessKey id", unknown_key_id, (404, ("InvalidAccessKeyId.NotFound",))),
    ("bad signature", "v1 key pair name changed after signing", tampered_v1_name, (400, SIG)),
    ("bad signature", "v3 query changed after signing", tampered_v3_query, (400, SIG)),
    ("bad signature", "v3 body swapped (body hash)", v3_body_swapped, (400, SIG)),
    ("bad signature", "v3 action header changed after signing", v3_action_header_swapped, (400, SIG)),
    ("bad signature", "v1 without a signature", v1_without_signature, (400, ("MissingParameter",))),
    ("expired timestamp", "v1, 20 minutes old", stale(-20, "v1"), (400, ("InvalidTimeStamp.Expired",))),
    ("expired timestamp", "v1, 20 minutes ahead", stale(20, "v1"), (400, ("InvalidTimeStamp.Expired",))),
    ("expired timestamp", "v3, 16 minutes old", stale(-16, "v3"), (400, ("InvalidTimeStamp.Expired",))),
    ("expired timestamp", "v3, 16 minutes ahead", stale(16, "v3"), (400, ("InvalidTimeStamp.Expired",))),
    ("replayed nonce", "v1 ImportKeyPair replayed after its delete", replay("v1"), (400, ("SignatureNonceUsed",))),
    ("replayed nonce", "v3 ImportKeyPair replayed after its delete", replay("v3"), (400, ("SignatureNonceUsed",))),
    ("other account", "B lists and reads A's key pairs, instances, tags", cross_reads, (200, ("nothing of account A visible",))),
    ("other account", "B deletes A's key pair", cross("DeleteKeyPairs", lambda c: {
        "KeyPairNames": json.dumps([c["victim"]])}), (404, ("InvalidKeyPair.NotFound",))),
    ("other account", "B attaches A's key pair to B's instance", cross("AttachKeyPair", lambda c: {
        "KeyPairName": c["victim"], "InstanceIds": json.dumps(c["own_instances"])}), (400, ("InvalidKeyPairName.NotFound",))),
    ("other account", "B detaches A's key pair from A's instance", cross("DetachKeyPair", lambda c: {
        "KeyPairName": c["victim"], "InstanceIds": json.dumps(c["instances"][:1])}), (400, ("InvalidKeyPairName.NotFound",))),
    ("other account", "B attaches its key pair to A's instance", attach_victims_instance, (200, ("InvalidInstanceId.NotFound",))),
    ("other account", "B tags A's key pair", cross("TagResources", lambda c: {
        "ResourceType": "keypair", "ResourceId.1": c["victim"], "Tag.1.Key": "owner", "Tag.1.Value": "b"}),
     (404, ("InvalidResourceId.NotFound", "InvalidKeyPair.NotFound"))),
    ("other account", "B reboots A's instance", cross("RebootInstance", lambda c: {"InstanceId": c["instances"][0]}),
     (404, ("InvalidInstanceId.NotFound",))),
]
for _method, _path, _body in (("GET", "/_admin/faults", None), ("POST", "/_admin/faults", RULE),
                              ("DELETE", "/_admin/faults", None), ("POST", "/_admin/flush-log", {}),
                              ("POST", "/_admin/wait-idle", {})):
    for _token, _what in ((None, "without a token"), ("", "with an empty token"), ("wrong-token", "with a wrong token"),
                          ("near", "with the token's last character changed"), ("secret", "with an AccessKey secret")):
        CASES.append(("admin endpoint", f"{_method} {_path} {_what}", admin(_method, _path, _token, _body),
                      (403, ("Forbidden.AdminToken",))))


@pytest.fixture(scope="module")
def world(emulator, keys):
    """Account A owns a key pair and two instances that hold it; B owns a key pair and an instance."""
    public = keys("security").public
    victim, own = f"victim-{uuid.uuid4().hex[:6]}", f"own-{uuid.uuid4().hex[:6]}"
    emulator.api("ImportKeyPair", KeyPairName=victim, PublicKeyBody=public)
    emulator.api("ImportKeyPair", account=OTHER, KeyPairName=own, PublicKeyBody=public)
    instances = run_instances(emulator, 2)
    emulator.api("AttachKeyPair", KeyPairName=victim, InstanceIds=instances)
    status, body = v1_call(emulator.port, emulator.key(OTHER), {
        "Action": "RunInstances", "RegionId": emulator.region, "ImageId": "debian_12", "Amount": "1"})
    assert status == 200, body
    emulator.wait_idle()
    return {"victim": victim, "own": own, "instances": instances, "public_key": public,
            "own_instances": body["InstanceIdSets"]["InstanceIdSet"],
            "create": lambda name: {"Action": "CreateKeyPair", "RegionId": emulator.region, "KeyPairName": name}}


def state_of(emu: Any, instances: List[str]) -> Dict[str, Any]:
    """Both accounts' key pairs (with tags), A's instances' key pairs, and the fault rules."""
    status, held = v1_call(emu.port, emu.key(0), {
        "Action": "DescribeInstances", "RegionId": emu.region, "InstanceIds": json.dumps(instances)})
    assert status == 200, held
    return {"a": key_pairs_by_name(emu, 0), "b": key_pairs_by_name(emu, OTHER),
            "instances": {i["InstanceId"]: (i["KeyPairName"], i["Status"]) for i in held["Instances"]["Instance"]},
            "faults": emu.admin("GET", "/_admin/faults")[1]["Faults"]}


@pytest.mark.parametrize("category, what, attempt, expected", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_refused(category, what, attempt, expected, emulator, world, figures, request):
    section = figures.section(
        "emulator-security", title="Emulator security", order=60,
        columns=["attack", "case", "expected", "answer"],
        summary=lambda rows: (f"{len(rows)} attempts (forged signatures, stale timestamps, replays, one account "
                              f"reaching into another, the admin API without its token): "
                              f"{sum(1 for r in rows if r[-1] == 'passed')} refused with the documented answer "
                              "and nothing changed."))
    before = {"state": state_of(emulator, world["instances"])}

    def snapshot() -> None:
        before["state"] = state_of(emulator, world["instances"])

    ctx = dict(world, snapshot=snapshot)
    status, code = attempt(emulator, ctx)
    want_status, want_codes = expected
    section.add([category, what, f"{want_status} {' or '.join(want_codes)}", f"{status} {code}"], node=request.node)
    assert (status, code in want_codes) == (want_status, True), f"{what}: got {status} {code}"
    assert state_of(emulator, world["instances"]) == before["state"], f"{what} changed the state"

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ecs_keypair_attach main() against a fake ECS at the client seam: exit JSON and the calls made."""

from __future__ import annotations

import json

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils import _attach, _credentials, _ecs_client
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError, EcsClient
from ansible_collections.sshkeys.ecs.plugins.modules import ecs_keypair_attach

CHANGES = {"AttachKeyPair", "DetachKeyPair", "RebootInstance"}


def iid(n):
    return f"i-unit{n:016d}"


class Fleet(EcsClient):
    """Key pairs and instances in memory below `call`; instances reboot through Starting."""

    key_pairs: set = set()
    instances: dict = {}
    log: list = []
    # {action: [reply transform or exception, ...]} consumed one per call
    faults: dict = {}

    def __init__(self, credentials, region, endpoint=None, **kwargs):
        kwargs.pop("transport", None)
        super().__init__(credentials, region, endpoint, sleep=lambda s: None, **kwargs)

    def call(self, action, params=None, *, idempotent=True):
        params = _ecs_client.stringify(params)
        Fleet.log.append((action, params))
        pending = Fleet.faults.get(action) or []
        if pending and isinstance(pending[0], EcsApiError):
            raise pending.pop(0)
        reply = getattr(self, "_" + action)(params)
        if pending:
            reply = pending.pop(0)(reply)
        reply.setdefault("RequestId", f"rid-{len(Fleet.log)}")
        return reply

    def _DescribeKeyPairs(self, params):
        items = [{"KeyPairName": n} for n in sorted(Fleet.key_pairs) if n == params.get("KeyPairName")]
        return {"TotalCount": len(items), "KeyPairs": {"KeyPair": items}}

    def _DescribeInstances(self, params):
        ids = json.loads(params["InstanceIds"])
        assert len(ids) <= 100
        items = []
        for instance_id in ids:
            item = Fleet.instances.get(instance_id)
            if item is None:
                continue
            if item["Status"] == "Starting":
                item["Status"] = "Running"  # back at the next look
                items.append(dict(item, Status="Starting"))
            else:
                items.append(dict(item))
        size, start = int(params["MaxResults"]), int(params.get("NextToken") or 0)
        return {"TotalCount": len(items), "NextToken": str(start + size) if start + size < len(items) else "",
                "Instances": {"Instance": items[start:start + size]}}

    def _bind(self, params, attach):
        ids = json.loads(params["InstanceIds"])
        assert len(ids) <= 50
        results = []
        for instance_id in ids:
            item = Fleet.instances.get(instance_id)
            code = "200"
            if item is None:
                code = "InvalidInstanceId.NotFound"
            elif item["OSType"] == "windows":
                code = "DependencyViolation.WindowsInstance"
            elif attach:
                item["KeyPairName"] = params["KeyPairName"]
            else:
                item["KeyPairName"] = ""
            results.append({"InstanceId": instance_id, "Success": "true" if code == "200" else "false",
                            "Code": code, "Message": "successful" if code == "200" else "refused"})
        failed = sum(1 for r in results if r["Success"] == "false")
        return {"TotalCount": str(len(ids)), "FailCount": str(failed), "Results": {"Result": results}}

    def _AttachKeyPair(self, params):
        return self._bind(params, True)

    def _DetachKeyPair(self, params):
        return self._bind(params, False)

    def _RebootInstance(self, params):
        Fleet.instances[params["InstanceId"]]["Status"] = "Starting"
        return {}


@pytest.fixture()
def fleet(monkeypatch):
    Fleet.key_pairs = {"deploy", "other"}
    Fleet.instances = {}
    Fleet.log = []
    Fleet.faults = {}
    monkeypatch.setattr(_credentials, "EcsClient", Fleet)
    # The reboot wait polls without sleeping, on a clock that moves one second per look.
    ticks = iter(range(0, 100000))
    monkeypatch.setattr(_attach.time, "monotonic", lambda: float(next(ticks)))
    monkeypatch.setattr(_attach.time, "sleep", lambda s: None)
    return Fleet


def add(n, status="Running", os_type="linux", key=""):
    Fleet.instances[iid(n)] = {"InstanceId": iid(n), "InstanceName": f"vm{n}", "Status": status, "OSType": os_type,
                               "KeyPairName": key, "PublicIpAddress": {"IpAddress": [f"192.0.2.{n % 250 + 1}"]}}
    return iid(n)


def actions(log, wanted=None):
    return [a for a, _p in log if wanted is None or a in wanted]


def by_id(result):
    return {e["instance_id"]: e for e in result["instances"]}


def test_120_instances_take_three_attach_calls_and_two_describes(fleet, run_module):
    ids = [add(n) for n in range(120)]
    result, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "deploy", "instance_ids": ids})
    assert result["changed"] is True
    attach_calls = [p for a, p in fleet.log if a == "AttachKeyPair"]
    assert [len(json.loads(p["InstanceIds"])) for p in attach_calls] == [50, 50, 20]
    assert actions(fleet.log, {"DescribeInstances"}) == ["DescribeInstances"] * 2
    assert result["changed_instances"] == ids
    assert result["needs_restart"] == ids and result["restarted"] == []
    assert all(e["action"] == "attached" and e["code"] == "200" for e in result["instances"])
    assert all(i["KeyPairName"] == "deploy" for i in fleet.instances.values())

    # Second run: one look at the instances, no change at all.
    fleet.log.clear()
    again, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "deploy", "instance_ids": ids})
    assert again["changed"] is False and again["changed_instances"] == [] and again["needs_restart"] == []
    assert actions(fleet.log, CHANGES) == []
    assert {e["action"] for e in again["instances"]} == {"unchanged"}


@pytest.mark.parametrize("state, held, expected", [
    ("present", "deploy", "unchanged"),
    ("present", "", "attached"),
    ("present", "other", "attached"),
    ("absent", "deploy", "detached"),
    ("absent", "other", "unchanged"),
    ("absent", "", "unchanged"),
])
def test_idempotence_decisions(fleet, run_module, state, held, expected):
    one = add(1, key=held)
    result, _out = run_module(ecs_keypair_attach.main,
                              {"key_pair_name": "deploy", "instance_ids": [one], "state": state}, diff=True)
    entry = by_id(result)[one]
    assert entry["action"] == expected
    assert result["changed"] is (expected != "unchanged")
    assert entry["key_pair_before"] == (held or None)
    changes = actions(fleet.log, CHANGES)
    assert changes == ([] if expected == "unchanged" else ["AttachKeyPair" if state == "present" else "DetachKeyPair"])
    assert result["diff"]["before"]["instances"][one] == (held or None)
    assert result["diff"]["after"]["instances"][one] == entry["key_pair_after"]
    assert fleet.instances[one]["KeyPairName"] == (entry["key_pair_after"] or "")


def test_check_mode_changes_nothing_and_reports_the_reboots(fleet, run_module):
    running, stopped, holding = add(1), add(2, status="Stopped"), add(3, key="deploy")
    result, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "deploy", "reboot": True,
                                                        "instance_ids": [running, stopped, holding]},
                              check=True, diff=True)
    assert result["changed"] is True
    assert result["changed_instances"] == [running, stopped]
    assert result["would_restart"] == [running]
    assert result["needs_restart"] == [stopped]
    assert actions(fleet.log, CHANGES) == []
    assert fleet.instances[running]["KeyPairName"] == ""
    assert result["diff"]["after"]["instances"] == {running: "deploy", stopped: "deploy", holding: "deploy"}


def test_check_mode_plans_against_a_key_pair_an_earlier_task_would_create(fleet, run_module):
    running, stopped = add(1), add(2, status="Stopped")
    args = {"key_pair_name": "new-pair", "instance_ids": [running, stopped], "key_pair_planned": True}
    result, _out = run_module(ecs_keypair_attach.main, args, check=True, diff=True)
    assert "failed" not in result and result["changed"] is True
    assert result["changed_instances"] == [running, stopped]
    assert "key pair new-pair would be created by an earlier task" in by_id(result)[running]["message"]
    assert result["diff"]["after"]["instances"] == {running: "new-pair", stopped: "new-pair"}
    assert actions(fleet.log, CHANGES) == []
    # The other checks still run: a Windows instance is refused, planned key pair or not.
    windows = add(3, os_type="windows")
    refused, _out = run_module(ecs_keypair_attach.main, dict(args, instance_ids=[windows]), check=True)
    assert refused["failed"] is True and "Windows" in refused["msg"]


def test_without_the_flag_or_outside_check_mode_the_key_pair_must_exist(fleet, run_module):
    one = add(1)
    in_check, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "new-pair", "instance_ids": [one]},
                                check=True)
    assert in_check["failed"] is True and "key pair new-pair does not exist" in in_check["msg"]
    assert "key_pair_planned" in in_check["msg"] and "would_create" in in_check["msg"]
    real, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "new-pair", "instance_ids": [one],
                                                      "key_pair_planned": True})
    assert real["failed"] is True and "key pair new-pair does not exist" in real["msg"]
    assert "key_pair_planned" not in real["msg"]
    assert actions(fleet.log, CHANGES) == []


def test_reboot_only_running_changed_instances_and_wait(fleet, run_module):
    running, stopped, holding = add(1), add(2, status="Stopped"), add(3, key="deploy")
    args = {"key_pair_name": "deploy", "reboot": True, "force_stop": True,
            "instance_ids": [running, stopped, holding]}
    result, _out = run_module(ecs_keypair_attach.main, args)
    reboots = [p for a, p in fleet.log if a == "RebootInstance"]
    assert reboots == [{"InstanceId": running, "ForceStop": "true"}]
    entries = by_id(result)
    assert entries[running]["restarted"] is True and entries[running]["needs_restart"] is False
    assert entries[running]["status"] == "Running"
    assert entries[stopped]["restarted"] is False and entries[stopped]["needs_restart"] is True
    assert "next start" in entries[stopped]["message"]
    assert entries[holding]["action"] == "unchanged" and entries[holding]["restarted"] is False
    assert result["restarted"] == [running] and result["needs_restart"] == [stopped]
    assert entries[running]["public_ip"] == "192.0.2.2"
    # Re-run: nothing changed, so nothing is rebooted a second time.
    fleet.log.clear()
    again, _out = run_module(ecs_keypair_attach.main, args)
    assert again["changed"] is False and actions(fleet.log, CHANGES) == []


def test_wait_timeout_names_the_instances_and_rerun_does_not_reboot_again(fleet, run_module, monkeypatch):
    slow = add(1)

    def never_back(self, params):
        Fleet.instances[params["InstanceId"]]["Status"] = "Stopping"
        return {}

    monkeypatch.setattr(Fleet, "_RebootInstance", never_back)
    args = {"key_pair_name": "deploy", "reboot": True, "wait_timeout": 30, "instance_ids": [slow]}
    result, _out = run_module(ecs_keypair_attach.main, args)
    assert result["failed"] is True
    assert f"not Running again within 30 s after the reboot: {slow} (Stopping)" in result["msg"]
    assert by_id(result)[slow]["action"] == "attached" and by_id(result)[slow]["restarted"] is False
    fleet.instances[slow]["Status"] = "Running"
    fleet.log.clear()
    again, _out = run_module(ecs_keypair_attach.main, args)
    assert again["changed"] is False and actions(fleet.log, CHANGES) == []


def test_a_failing_wait_after_the_reboot_still_names_the_attach_and_the_reboot(fleet, run_module):
    """The wait's DescribeInstances fails after the attach and the reboot were done: the failure
    must report them (changed, changes), not only the API error."""
    one = add(1)
    down = EcsApiError(code="ServiceUnavailable", message="down", http_status=503, request_id="RID-W")
    fleet.faults["DescribeInstances"] = [lambda reply: reply] + [down] * 10
    args = {"key_pair_name": "deploy", "reboot": True, "instance_ids": [one], "ecs_retries": 0}
    result, _out = run_module(ecs_keypair_attach.main, args)
    assert result["failed"] is True and result["changed"] is True
    assert result["changes"] == [f"attached key pair deploy to {one}", f"rebooted {one}"]
    assert "waiting for the rebooted instances failed" in result["msg"] and "RID-W" in result["msg"]
    assert result["error"]["request_id"] == "RID-W"


def test_failcount_fails_the_task_listing_successes_and_failures(fleet, run_module):
    good, bad = add(1), add(2)

    def lose_one(reply):
        for row in reply["Results"]["Result"]:
            if row["InstanceId"] == bad:
                row.update(Success="false", Code="IncorrectInstanceStatus", Message="The instance is Pending.")
                Fleet.instances[bad]["KeyPairName"] = ""
        reply["FailCount"] = "1"
        return reply

    fleet.faults["AttachKeyPair"] = [lose_one]
    result, out = run_module(ecs_keypair_attach.main, {"key_pair_name": "deploy", "instance_ids": [good, bad]})
    assert result["failed"] is True and result["changed"] is True
    assert f"1 instance(s) failed: {bad} IncorrectInstanceStatus" in result["msg"]
    assert f"succeeded: {good}" in result["msg"]
    entries = by_id(result)
    assert entries[good]["action"] == "attached" and entries[good]["code"] == "200"
    assert entries[bad]["action"] == "failed" and entries[bad]["key_pair_after"] is None
    assert result["failed_instances"] == [bad]
    assert "unit-test-secret-value" not in out
    # The re-run changes only what is left.
    fleet.log.clear()
    again, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "deploy", "instance_ids": [good, bad]})
    assert again["changed_instances"] == [bad]
    assert [json.loads(p["InstanceIds"]) for a, p in fleet.log if a == "AttachKeyPair"] == [[bad]]


def test_failcount_without_rows_is_not_taken_for_success(fleet, run_module):
    one, two = add(1), add(2)
    fleet.faults["AttachKeyPair"] = [lambda reply: {"TotalCount": "2", "FailCount": "2", "Results": {}}]
    result, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "deploy", "instance_ids": [one, two]})
    assert result["failed"] is True
    assert {e["action"] for e in result["instances"]} == {"failed"}
    assert {e["code"] for e in result["instances"]} == {"NoResult"}


def test_windows_refused_before_any_change_or_skipped_with_a_warning(fleet, run_module):
    linux, windows = add(1), add(2, os_type="windows")
    result, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "deploy", "instance_ids": [linux, windows]})
    assert result["failed"] is True and windows in result["msg"] and linux not in result["msg"]
    assert actions(fleet.log, CHANGES) == []
    skipped, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "deploy", "skip_windows": True,
                                                         "instance_ids": [linux, windows]})
    assert skipped["changed"] is True
    assert by_id(skipped)[windows]["action"] == "skipped"
    assert by_id(skipped)[linux]["action"] == "attached"
    assert any(windows in w for w in skipped["warnings"])
    assert [json.loads(p["InstanceIds"]) for a, p in fleet.log if a == "AttachKeyPair"] == [[linux]]


def test_windows_reported_by_the_service_is_tolerated_only_when_asked(fleet, run_module):
    # The instance does not say it is Windows, the service does (FailCount 1).
    hidden = add(1, os_type="")
    Fleet.instances[hidden]["OSType"] = "windows-unknown"

    def as_windows(reply):
        reply["Results"]["Result"][0].update(Success="false", Code="DependencyViolation.WindowsInstance")
        reply["FailCount"] = "1"
        Fleet.instances[hidden]["KeyPairName"] = ""
        return reply

    fleet.faults["AttachKeyPair"] = [as_windows, as_windows]
    failed, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "deploy", "instance_ids": [hidden]})
    assert failed["failed"] is True and "DependencyViolation.WindowsInstance" in failed["msg"]
    tolerated, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "deploy", "instance_ids": [hidden],
                                                           "skip_windows": True})
    assert "failed" not in tolerated and tolerated["failed_instances"] == []
    assert by_id(tolerated)[hidden]["action"] == "skipped"
    assert any(hidden in w for w in tolerated["warnings"])


@pytest.mark.parametrize("args, message", [
    ({"instance_ids": []}, "instance_ids is empty"),
    ({"instance_ids": ["i-abc", "bogus", "i-ABC"]}, "malformed instance ids"),
    ({"instance_ids": [iid(1), iid(1), iid(2), iid(2)]}, f"more than once: {iid(1)}, {iid(2)}"),
    ({"instance_ids": [iid(1), "i-nowhere0000000000000"]}, "do not exist in this region (or this account): i-nowhere"),
    ({"instance_ids": [iid(1)], "key_pair_name": "missing"}, "key pair missing does not exist"),
    ({"instance_ids": [iid(1)], "key_pair_name": "9bad"}, "must start with a letter"),
    ({"instance_ids": [iid(1)], "reboot": True, "wait_timeout": 0}, "wait_timeout must be more than 0"),
    ({"instance_ids": [iid(3)]}, f"{iid(3)} (Starting)"),
])
def test_bad_input_fails_before_any_change(fleet, run_module, args, message):
    add(1)
    add(2)
    add(3, status="Starting")
    full = {"key_pair_name": "deploy"}
    full.update(args)
    result, _out = run_module(ecs_keypair_attach.main, full)
    assert result["failed"] is True
    assert message in result["msg"]
    if "bogus" in str(args):
        assert "'bogus'" in result["msg"] and "'i-ABC'" in result["msg"] and "'i-abc'" not in result["msg"]
    assert actions(fleet.log, CHANGES) == []


def test_detach_of_a_deleted_key_pair_needs_no_describe_of_key_pairs(fleet, run_module):
    one = add(1, key="gone")
    result, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "gone", "state": "absent",
                                                        "instance_ids": [one]})
    assert result["changed"] is True and by_id(result)[one]["action"] == "detached"
    assert "DescribeKeyPairs" not in actions(fleet.log)
    assert "password login stays off" in result["effect"]


def test_api_error_mid_job_reports_done_and_not_done(fleet, run_module):
    ids = [add(n) for n in range(60)]

    # The first batch goes through, the second gets an error the client does not retry.
    original = Fleet._AttachKeyPair
    calls = []

    def attach(self, params):
        calls.append(1)
        if len(calls) == 2:
            raise EcsApiError(code="Forbidden.RAM", message="not allowed", http_status=403, action="AttachKeyPair")
        return original(self, params)

    Fleet._AttachKeyPair = attach
    try:
        result, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "deploy", "instance_ids": ids})
    finally:
        Fleet._AttachKeyPair = original
    assert result["failed"] is True
    entries = by_id(result)
    assert [entries[i]["action"] for i in ids[:50]] == ["attached"] * 50
    assert [entries[i]["code"] for i in ids[50:]] == ["Forbidden.RAM"] * 10
    assert "10 instance(s) failed" in result["msg"]


def test_check_input_accepts_ids_and_strips_spaces():
    assert _attach.check_input("deploy", [" i-abc123 "], 5) == ["i-abc123"]


def test_failcount_larger_than_the_failed_rows_is_a_failure(fleet, run_module):
    one, two = add(1), add(2)
    fleet.faults["AttachKeyPair"] = [lambda reply: dict(reply, FailCount="1")]
    result, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "deploy", "instance_ids": [one, two]})
    assert result["failed"] is True
    assert {e["code"] for e in result["instances"]} == {"FailCountMismatch"}
    # The re-run reads the instances again: both hold the key pair, nothing left to do.
    again, _out = run_module(ecs_keypair_attach.main, {"key_pair_name": "deploy", "instance_ids": [one, two]})
    assert again["changed"] is False

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AttachKeyPair refused as a whole with DependencyViolation.WindowsInstance: the Windows
instances are found by splitting the batch, every other instance is still attached, later
batches go on, and with skip_windows only the Windows instances are reported skipped."""

from __future__ import annotations

import json

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils import _attach, _ecs_api
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError


def iid(n):
    return f"i-win{n:016d}"


class WholeCallRefusal:
    """A service that refuses any AttachKeyPair call holding a Windows instance, as a whole (403)."""

    region = "cn-hangzhou"

    def __init__(self, windows, fail_on=None):
        self.windows = set(windows)
        self.fail_on = fail_on  # an instance id whose call fails with another error
        self.calls = []
        self.attached = set()

    def call(self, action, params=None, *, idempotent=True):
        ids = json.loads(params["InstanceIds"])
        self.calls.append(ids)
        if self.windows & set(ids):
            raise EcsApiError(code="DependencyViolation.WindowsInstance", http_status=403, action=action,
                              message="The specified instance is a Windows instance.", request_id="rid-win")
        if self.fail_on in ids:
            raise EcsApiError(code="InternalError", message="boom", http_status=500, action=action)
        self.attached.update(ids)
        rows = [{"InstanceId": i, "Success": "true", "Code": "200", "Message": "successful"} for i in ids]
        return {"TotalCount": str(len(ids)), "FailCount": "0", "Results": {"Result": rows}, "RequestId": "rid"}


def test_the_windows_instances_are_found_and_the_rest_attached():
    ids = [iid(n) for n in range(120)]
    windows = {iid(10), iid(70)}
    service = WholeCallRefusal(windows)
    outcome = _ecs_api.attach_key_pair(service, "deploy", ids)
    assert service.attached == set(ids) - windows
    for instance_id in ids:
        if instance_id in windows:
            assert outcome[instance_id]["code"] == "DependencyViolation.WindowsInstance"
            assert not outcome[instance_id]["ok"] and not _ecs_api.maybe_done(outcome[instance_id])
        else:
            assert outcome[instance_id]["ok"], outcome[instance_id]
    # Each refused batch of 50 costs about 2 log2(50) calls, not one per instance.
    assert len(service.calls) < 30
    assert max(len(call) for call in service.calls) == 50


def test_with_skip_windows_only_the_windows_instances_are_skipped():
    ids = [iid(n) for n in range(60)]
    service = WholeCallRefusal({iid(3)})
    outcome = _ecs_api.attach_key_pair(service, "deploy", ids)
    entries = [{"instance_id": i, "status": "Running", "key_pair_before": "", "action": "attached"} for i in ids]
    warnings = []
    _attach.record_outcome(entries, outcome, True, warnings)
    skipped = [e["instance_id"] for e in entries if e["action"] == "skipped"]
    assert skipped == [iid(3)]
    assert all(e["action"] == "attached" for e in entries if e["instance_id"] != iid(3))
    assert warnings == [f"skipped {iid(3)}: the service says it is a Windows instance"]


def test_another_error_while_splitting_keeps_what_was_answered():
    ids = [iid(n) for n in range(50)]
    service = WholeCallRefusal({iid(1)}, fail_on=iid(40))
    outcome = _ecs_api.attach_key_pair(service, "deploy", ids)
    assert outcome[iid(1)]["code"] == "DependencyViolation.WindowsInstance"
    done = [i for i in ids if outcome[i]["ok"]]
    assert done and set(done) == service.attached
    not_done = [i for i in ids if not outcome[i]["ok"] and i != iid(1)]
    assert iid(40) in not_done and all(outcome[i]["code"] == "InternalError" for i in not_done)


@pytest.mark.parametrize("status", [None])
def test_a_windows_code_without_a_reply_is_not_split(status):
    class Lost(WholeCallRefusal):
        def call(self, action, params=None, *, idempotent=True):
            self.calls.append(params)
            raise EcsApiError(code="DependencyViolation.WindowsInstance", message="?", http_status=status)

    service = Lost(set())
    outcome = _ecs_api.attach_key_pair(service, "deploy", [iid(1), iid(2)])
    assert len(service.calls) == 1 and all(o.get("uncertain") for o in outcome.values())

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Against the emulator refusing whole AttachKeyPair calls for a Windows instance
(--windows-refuses-call): the client's batch split still attaches every Linux instance."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils import _ecs_api as api
from ansible_collections.sshkeys.ecs.plugins.module_utils import _ecs_client as ec

EMULATOR = shutil.which("ecs-emulator") or os.path.join(os.path.dirname(sys.executable), "ecs-emulator")


@pytest.fixture(scope="module")
def refusing_emulator():
    if not os.access(EMULATOR, os.X_OK):
        pytest.skip("ecs-emulator is not installed")
    work = tempfile.mkdtemp(prefix="ecs-emulator-windows-")
    ready = os.path.join(work, "ready.json")
    proc = subprocess.Popen([EMULATOR, "serve", "--listen", "127.0.0.1:0", "--state", os.path.join(work, "s.sqlite"),
                             "--ready-file", ready, "--fast", "--windows-refuses-call", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # A guard against waiting for ever, not a measure of speed: the ready file is what counts.
    for _attempt in range(1200):
        if os.path.exists(ready):
            break
        if proc.poll() is not None:
            pytest.fail(f"the emulator exited with {proc.returncode} before it was ready")
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the emulator wrote no ready file")
    with open(ready, encoding="utf-8") as handle:
        doc = json.load(handle)
    key = doc["accounts"][0]["access_keys"][0]
    client = ec.EcsClient(ec.Credentials(key["id"], key["secret"]), doc["region"], doc["endpoint"],
                          sleep=lambda s: None)
    yield client
    proc.terminate()
    proc.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)


def _run(client, image, amount):
    reply = client.call("RunInstances", {"ImageId": image, "InstanceType": "ecs.t6-c1m1.large", "Amount": amount},
                        idempotent=False)
    return reply["InstanceIdSets"]["InstanceIdSet"]


def test_the_linux_instances_are_attached_around_a_refused_windows_one(refusing_emulator):
    client = refusing_emulator
    client.call("ImportKeyPair", {"KeyPairName": "split", "PublicKeyBody":
                                  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"})
    linux = _run(client, "debian_12_x64", 5)
    windows = _run(client, "win2022_datacenter", 1)
    ids = linux[:2] + windows + linux[2:]
    with pytest.raises(ec.EcsApiError) as refused:  # the service as configured: one call, all refused
        client.call("AttachKeyPair", {"KeyPairName": "split", "InstanceIds": ec.json_list(ids)})
    assert (refused.value.code, refused.value.http_status) == ("DependencyViolation.WindowsInstance", 403)
    outcome = api.attach_key_pair(client, "split", ids)
    assert [i for i in ids if outcome[i]["ok"]] == linux
    assert outcome[windows[0]]["code"] == "DependencyViolation.WindowsInstance"
    held = {i["InstanceId"]: i["KeyPairName"] for i in api.describe_instances(client, instance_ids=ids)}
    assert held == dict({i: "split" for i in linux}, **{windows[0]: ""})

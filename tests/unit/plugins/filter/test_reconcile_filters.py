# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reconcile_* filters: registration, inputs, errors as AnsibleFilterError."""

from __future__ import annotations

import base64
import struct

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.sshkeys.ecs.plugins.filter import reconcile_host_report, reconcile_hosts, reconcile_plan
from ansible_collections.sshkeys.ecs.plugins.filter import reconcile_state


def ed25519(seed: int) -> str:
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes([seed]) * 32
    return "ssh-ed25519 " + base64.b64encode(blob).decode()


KEY = ed25519(5)
STATE = f"""
version: 1
regions:
  cn-hangzhou:
    key_pairs:
      - name: deploy
        public_key: {KEY}
        public_key_file: deploy.pub
        instances: [i-abc1]
authorized_keys:
  - hosts: web
    users:
      - name: root
        keys: ["{KEY}"]
"""


@pytest.mark.parametrize("module, name", [
    (reconcile_state, "reconcile_state"), (reconcile_plan, "reconcile_plan"),
    (reconcile_hosts, "reconcile_hosts"), (reconcile_host_report, "reconcile_host_report"),
])
def test_registered(module, name):
    assert list(module.FilterModule().filters()) == [name]


def test_state_filter_reads_files_relative_to_base_dir(tmp_path):
    (tmp_path / "deploy.pub").write_text(KEY + " from file\n")
    with pytest.raises(AnsibleFilterError) as caught:
        reconcile_state.reconcile_state(STATE, str(tmp_path), "state.yml")
    assert "state.yml: 1 problem(s) in the desired state, nothing was changed" in str(caught.value)
    assert "give exactly one of public_key and public_key_file" in str(caught.value)
    state = reconcile_state.reconcile_state(STATE.replace(f"        public_key: {KEY}\n", ""), str(tmp_path))
    assert state["regions"][0]["key_pairs"][0]["public_key"] == KEY + " from file"


def test_state_filter_needs_text():
    with pytest.raises(AnsibleFilterError, match="expects the text of the state file"):
        reconcile_state.reconcile_state({"version": 1})


def test_plan_and_hosts_filters(tmp_path):
    state = reconcile_state.reconcile_state(STATE.replace("        public_key_file: deploy.pub\n", ""), str(tmp_path))
    # The registered loop results of ecs_keypair_info are accepted as they are.
    plan = reconcile_plan.reconcile_plan(state["regions"], [{"key_pairs": [], "item": {}}])
    assert plan["regions"][0]["import"] == ["deploy"]
    assert plan["regions"][0]["attach"] == [{"name": "deploy", "instance_ids": ["i-abc1"], "imported": True}]
    hosts = reconcile_hosts.reconcile_hosts(state["authorized_keys"], [["web-1"]])
    assert hosts["hosts"] == {"web-1": [{"name": "root", "exclusive": False, "allow_empty": False, "add": [KEY], "remove": [],
                                         "entries": ["authorized_keys[0].users[0] (root)"]}]}
    with pytest.raises(AnsibleFilterError, match="unexpected input"):
        reconcile_plan.reconcile_plan(state["regions"], [])
    with pytest.raises(AnsibleFilterError, match="unexpected input"):
        reconcile_hosts.reconcile_hosts(state["authorized_keys"], [])
    with pytest.raises(AnsibleFilterError):
        reconcile_plan.reconcile_plan("x", [])
    with pytest.raises(AnsibleFilterError):
        reconcile_host_report.reconcile_host_report([])

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""key_pair.id: what CreateKeyPair answered in this task, else null (ECS reports no id anywhere else)."""

from __future__ import annotations

from ansible_collections.sshkeys.ecs.plugins.modules import ecs_keypair, ecs_keypair_info

PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def test_the_id_comes_from_create_only(fake_ecs, run_module, tmp_path):
    path = str(tmp_path / "deploy.pem")
    created, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": path})
    assert created["action"] == "created" and created["key_pair"]["id"] == "kp-1"
    again, _out = run_module(ecs_keypair.main, {"name": "deploy", "private_key_path": path})
    assert again["changed"] is False and again["key_pair"]["id"] is None
    listed, _out = run_module(ecs_keypair_info.main, {"names": ["deploy"]})
    assert [item["id"] for item in listed["key_pairs"]] == [None]


def test_an_imported_key_pair_has_no_id(fake_ecs, run_module):
    imported, _out = run_module(ecs_keypair.main, {"name": "imported", "public_key": PUBLIC})
    assert imported["action"] == "imported" and imported["key_pair"]["id"] is None

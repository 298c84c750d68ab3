# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""extensions/awx/credential_type.json and tools/awx_credential.py: the AWX credential type AWX
would accept, and the environment its injector gives a job (the artifact stage then runs
ecs_keypair_info against the emulator with exactly that environment)."""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CREDENTIAL_TYPE = ROOT / "extensions" / "awx" / "credential_type.json"


@pytest.fixture(name="tool")
def fixture_tool():
    spec = importlib.util.spec_from_file_location("awx_credential", ROOT / "tools" / "awx_credential.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(name="shipped")
def fixture_shipped(tool):
    return tool.load(str(CREDENTIAL_TYPE))


def read_by_the_collection() -> set:
    """Every environment variable name that the collection's code spells out as a string."""
    names = set()
    for path in (ROOT / "plugins").rglob("*.py"):
        names.update(re.findall(r"[\"'](ALIBABA_CLOUD_[A-Z_]+)[\"']", path.read_text(encoding="utf-8")))
    return names


def test_the_shipped_type_is_one_awx_accepts(tool, shipped):
    assert tool.check(shipped) == []
    assert shipped["kind"] == "cloud"
    assert {f["id"] for f in shipped["inputs"]["fields"] if f.get("secret")} == {"access_key_secret", "security_token"}


def test_every_injected_variable_is_one_the_collection_reads(shipped):
    injected = set(shipped["injectors"]["env"])
    assert injected == {"ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
                        "ALIBABA_CLOUD_SECURITY_TOKEN", "ALIBABA_CLOUD_REGION_ID", "ALIBABA_CLOUD_ECS_ENDPOINT"}
    assert injected <= read_by_the_collection()


def test_the_injector_renders_every_input(tool, shipped):
    env = tool.render_env(shipped, {"access_key_id": "LTAI5tExample", "access_key_secret": "s3cret",
                                    "security_token": "CAIS-token", "region_id": "cn-shanghai",
                                    "ecs_endpoint": "ecs-vpc.cn-shanghai.aliyuncs.com"})
    assert env == {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5tExample", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "s3cret",
                   "ALIBABA_CLOUD_SECURITY_TOKEN": "CAIS-token", "ALIBABA_CLOUD_REGION_ID": "cn-shanghai",
                   "ALIBABA_CLOUD_ECS_ENDPOINT": "ecs-vpc.cn-shanghai.aliyuncs.com"}


def test_empty_optional_inputs_become_empty_variables_as_in_awx(tool, shipped):
    # AWX leaves empty inputs out of the template namespace: the variable is still set, to "".
    env = tool.render_env(shipped, {"access_key_id": "AK", "access_key_secret": "SK", "region_id": "cn-hangzhou",
                                    "security_token": ""})
    assert env["ALIBABA_CLOUD_SECURITY_TOKEN"] == ""
    assert env["ALIBABA_CLOUD_ECS_ENDPOINT"] == ""
    assert env["ALIBABA_CLOUD_REGION_ID"] == "cn-hangzhou"


def test_values_are_not_templates_themselves(tool, shipped):
    env = tool.render_env(shipped, {"access_key_id": "{{ 7 * 7 }}", "access_key_secret": "x", "region_id": "r"})
    assert env["ALIBABA_CLOUD_ACCESS_KEY_ID"] == "{{ 7 * 7 }}"


@pytest.mark.parametrize("change, problem", [
    (lambda t: t["injectors"]["env"].update(ALIBABA_CLOUD_PROFILE="{{ profile }}"), "does not render"),
    (lambda t: t["injectors"]["env"].update(ANSIBLE_CONFIG="{{ region_id }}"), "does not let a credential set"),
    (lambda t: t["injectors"]["env"].update(PATH="{{ region_id }}"), "does not let a credential set"),
    (lambda t: t["injectors"]["env"].update(X="{{ ''.__class__.__mro__ }}"), "does not render"),
    (lambda t: t["inputs"]["fields"].append({"id": "tower", "label": "T"}), "reserved"),
    (lambda t: t["inputs"]["fields"].append({"id": "region_id", "label": "Again"}), "used twice"),
    (lambda t: t["inputs"]["fields"].append({"id": "2fa", "label": "2FA"}), "not a variable name"),
    (lambda t: t["inputs"]["fields"].append({"id": "flag", "label": "F", "type": "boolean", "secret": True}),
     "only for strings"),
    (lambda t: t["inputs"]["required"].append("profile"), "unknown field profile"),
    (lambda t: t.update(kind="ssh"), "kind must be"),
])
def test_check_refuses_what_awx_refuses(tool, shipped, change, problem):
    changed = copy.deepcopy(shipped)
    change(changed)
    assert any(problem in found for found in tool.check(changed))


def test_exec_passes_only_the_injected_cloud_variables(tool, shipped, tmp_path, monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "from-the-caller")
    monkeypatch.setenv("ALICLOUD_REGION", "from-the-caller")
    monkeypatch.setenv("KEEP_ME", "kept")
    seen = {}
    monkeypatch.setattr(tool.os, "execvpe", lambda file, args, env: seen.update(env=env, args=args))
    tool.main(["exec", str(CREDENTIAL_TYPE), "--input", "access_key_id=AK", "--input", "access_key_secret=SK",
               "--input", "region_id=cn-hangzhou", "--keep", "KEEP_ME", "--keep", "ALICLOUD_REGION", "--", "true"])
    env = seen["env"]
    assert seen["args"] == ["true"]
    assert env["ALIBABA_CLOUD_ACCESS_KEY_ID"] == "AK"
    assert "ALICLOUD_REGION" not in env
    assert env["KEEP_ME"] == "kept"
    assert {name for name in env if name.startswith("ALIBABA_CLOUD_")} == set(shipped["injectors"]["env"])

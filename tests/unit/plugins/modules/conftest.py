# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fake ECS at the client seam (EcsClient.call), and a runner for module main()."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.sshkeys.ecs.plugins.module_utils import _credentials, _ecs_client
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError, EcsClient

MUTATIONS = {"CreateKeyPair", "ImportKeyPair", "DeleteKeyPairs", "TagResources", "UntagResources",
             "AttachKeyPair", "DetachKeyPair"}


def token_page(items, params):
    """One DescribeInstances page as ECS answers MaxResults/NextToken (the token: the next offset)."""
    size, start = int(params["MaxResults"]), int(params.get("NextToken") or 0)
    end = start + size
    return {"TotalCount": len(items), "NextToken": str(end) if end < len(items) else "",
            "Instances": {"Instance": items[start:end]}}


def _error(code, status=400, message="fake"):
    return EcsApiError(code=code, message=message, request_id="fake-rid", http_status=status)


class FakeEcs(EcsClient):
    """Real signing/paging code above, an in-memory key pair store below `call`.

    ``failures`` holds (action, error, phase), each used once by the next call of action:
    phase "before" raises without acting, "after" acts then raises (a lost answer), "late"
    raises now and acts once the next call of any action has run (a slow request that commits
    after the client gave up), and a callable phase is run (with the client and the params)
    before the error is raised. ``refuse`` makes AttachKeyPair/DetachKeyPair fail for an
    instance id with the given code.
    """

    store: dict = {}
    instances: dict = {}
    log: list = []
    failures: list = []
    refuse: dict = {}
    late: list = []
    strict_delete = False
    seen_credentials: list = []

    def __init__(self, credentials, region, endpoint=None, **kwargs):
        kwargs.pop("transport", None)
        super().__init__(credentials, region, endpoint, sleep=lambda s: None, **kwargs)
        FakeEcs.seen_credentials.append((credentials, region, endpoint, kwargs))

    def call(self, action, params=None, *, idempotent=True):
        params = _ecs_client.stringify(params)
        self.calls += 1
        self.actions.append(action)
        FakeEcs.log.append((action, params))
        pending, FakeEcs.late = FakeEcs.late, []
        try:
            return self._answer(action, params)
        finally:
            for commit in pending:
                try:
                    commit()
                except EcsApiError:
                    pass  # the late request failed on the service (e.g. the name was taken meanwhile)

    def _answer(self, action, params):
        for index, (name, error, phase) in enumerate(FakeEcs.failures):
            if name == action:
                del FakeEcs.failures[index]
                if callable(phase):
                    phase(self, params)
                elif phase == "late":
                    FakeEcs.late.append(lambda: getattr(self, "_" + action)(params))
                elif phase == "after":
                    getattr(self, "_" + action)(params)
                raise error
        reply = getattr(self, "_" + action)(params)
        reply.setdefault("RequestId", f"rid-{len(FakeEcs.log)}")
        return reply

    # -- actions --------------------------------------------------------------------------------

    @staticmethod
    def _fingerprint(line):
        blob = base64.b64decode(line.split()[1])
        digest = hashlib.md5(blob).hexdigest()
        return ":".join(digest[i:i + 2] for i in range(0, 32, 2))

    def _new(self, params, public):
        name = params["KeyPairName"]
        # As the emulator by default: a key pair deleted while attached keeps its name taken
        # until it is detached from every instance that still shows it.
        if name in FakeEcs.store or any(i.get("KeyPairName") == name for i in FakeEcs.instances.values()):
            raise _error("KeyPair.AlreadyExist")
        tags = [{"TagKey": params[k], "TagValue": params[k[:-3] + "Value"]}
                for k in sorted(params) if k.startswith("Tag.") and k.endswith(".Key")]
        FakeEcs.store[name] = {"KeyPairName": name, "KeyPairId": f"kp-{len(FakeEcs.store) + 1}",
                               "KeyPairFingerPrint": self._fingerprint(public), "CreationTime": "2026-01-01T00:00Z",
                               "ResourceGroupId": params.get("ResourceGroupId", "rg-default"),
                               "PublicKey": " ".join(public.split()[:2]), "Tags": {"Tag": tags}}
        return FakeEcs.store[name]

    def _CreateKeyPair(self, params):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        item = self._new(params, public.decode())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
        return {"KeyPairName": item["KeyPairName"], "KeyPairId": item["KeyPairId"],
                "KeyPairFingerPrint": item["KeyPairFingerPrint"], "PrivateKeyBody": pem}

    def _ImportKeyPair(self, params):
        item = self._new(params, params["PublicKeyBody"])
        return {"KeyPairName": item["KeyPairName"], "KeyPairFingerPrint": item["KeyPairFingerPrint"]}

    def _DescribeKeyPairs(self, params):
        pattern = params.get("KeyPairName")
        items = []
        for name in sorted(FakeEcs.store):
            item = FakeEcs.store[name]
            if pattern and not (fnmatch.fnmatchcase(name, pattern) if "*" in pattern else name == pattern):
                continue
            tags = {t["TagKey"]: t["TagValue"] for t in item["Tags"]["Tag"]}
            wanted = {params[k]: params.get(k[:-3] + "Value") for k in params if k.startswith("Tag.") and k.endswith(".Key")}
            if any(tags.get(k) != v for k, v in wanted.items()):
                continue
            # As ECS: the default group's key pairs come back whatever group is asked for.
            if params.get("ResourceGroupId") and item["ResourceGroupId"] not in (params["ResourceGroupId"], "rg-default"):
                continue
            shown = json.loads(json.dumps(item))
            shown.pop("KeyPairId", None)  # DescribeKeyPairs items carry no id (the SDK's response model)
            if params.get("IncludePublicKey") != "true":
                shown.pop("PublicKey")
            items.append(shown)
        size, number = int(params["PageSize"]), int(params["PageNumber"])
        page = items[(number - 1) * size:number * size]
        return {"TotalCount": len(items), "PageNumber": number, "PageSize": size, "KeyPairs": {"KeyPair": page}}

    def _DeleteKeyPairs(self, params):
        names = json.loads(params["KeyPairNames"])
        # All or nothing, as the emulator: every name is checked before any is deleted.
        for name in names:
            if name not in FakeEcs.store:
                raise _error("InvalidKeyPair.NotFound", 404)
            if FakeEcs.strict_delete and any(i["KeyPairName"] == name for i in FakeEcs.instances.values()):
                raise _error("InvalidParameter.KeypairAlreadyAttachedInstance")
        for name in names:
            del FakeEcs.store[name]
        return {}

    def _TagResources(self, params):
        item = FakeEcs.store[params["ResourceId.1"]]
        tags = {t["TagKey"]: t["TagValue"] for t in item["Tags"]["Tag"]}
        for k in params:
            if k.startswith("Tag.") and k.endswith(".Key"):
                tags[params[k]] = params[k[:-3] + "Value"]
        item["Tags"]["Tag"] = [{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())]
        return {}

    def _UntagResources(self, params):
        item = FakeEcs.store[params["ResourceId.1"]]
        drop = {params[k] for k in params if k.startswith("TagKey.")}
        item["Tags"]["Tag"] = [t for t in item["Tags"]["Tag"] if t["TagKey"] not in drop]
        return {}

    def _DescribeInstances(self, params):
        items = [dict(i) for i in FakeEcs.instances.values()
                 if not params.get("KeyPairName") or i["KeyPairName"] == params["KeyPairName"]]
        return token_page(items, params)

    def _attach(self, params, name):
        ids = json.loads(params["InstanceIds"])
        results = []
        for instance_id in ids:
            if instance_id in FakeEcs.refuse:
                results.append({"InstanceId": instance_id, "Success": "false", "Code": FakeEcs.refuse[instance_id],
                                "Message": "refused"})
                continue
            FakeEcs.instances[instance_id]["KeyPairName"] = name
            results.append({"InstanceId": instance_id, "Success": "true", "Code": "200", "Message": "successful"})
        failed = sum(1 for r in results if r["Success"] == "false")
        return {"TotalCount": len(ids), "FailCount": failed, "Results": {"Result": results}}

    def _AttachKeyPair(self, params):
        return self._attach(params, params["KeyPairName"])

    def _DetachKeyPair(self, params):
        return self._attach(params, "")


@pytest.fixture()
def fake_ecs(monkeypatch):
    FakeEcs.store = {}
    FakeEcs.instances = {}
    FakeEcs.log = []
    FakeEcs.failures = []
    FakeEcs.refuse = {}
    FakeEcs.late = []
    FakeEcs.strict_delete = False
    FakeEcs.seen_credentials = []
    monkeypatch.setattr(_credentials, "EcsClient", FakeEcs)
    monkeypatch.setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_REGION_ID",
                 "ALIBABA_CLOUD_ECS_ENDPOINT", "ALIBABA_CLOUD_SECURITY_TOKEN", "ALICLOUD_ACCESS_KEY",
                 "ALICLOUD_SECRET_KEY", "ALICLOUD_REGION", "ALICLOUD_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return FakeEcs


CREDENTIALS = {"alicloud_access_key": "AKID", "alicloud_secret_key": "unit-test-secret-value",
               "alicloud_region": "cn-hangzhou", "ecs_endpoint": "http://127.0.0.1:9"}


@pytest.fixture()
def run_module(capsys, monkeypatch):
    """run_module(main, args, check=False, diff=False) -> (exit JSON, stdout text)."""

    # Once any test in this process has imported controller code (action or filter plugins),
    # ansible-core treats the process as the controller and sends module warnings to its display
    # instead of the result. Modules run on the target side: say so for each run.
    try:
        from ansible.module_utils import _internal
    except ImportError:  # pragma: no cover - older ansible-core
        _internal = None
    if _internal is not None and hasattr(_internal, "is_controller"):
        monkeypatch.setattr(_internal, "is_controller", False)

    def runner(main, args, check=False, diff=False, credentials=True):
        full = dict(CREDENTIALS) if credentials else {}
        full.update(args)
        if check:
            full["_ansible_check_mode"] = True
        if diff:
            full["_ansible_diff"] = True
        with patch_module_args(full):
            with pytest.raises(SystemExit):
                main()
        out = capsys.readouterr().out
        result = json.loads(out)
        # ansible-core 2.19 reports warnings as structured events; older ones as plain strings.
        if "warnings" in result:
            result["warnings"] = [w if isinstance(w, str) else w.get("event", {}).get("msg", str(w))
                                  for w in result["warnings"]]
        return result, out

    return runner


def mutations(log):
    return [action for action, _params in log if action in MUTATIONS]

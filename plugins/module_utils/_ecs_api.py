# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the ECS actions the collection uses, one function each.

Every request the collection sends is built here and nowhere else: ``grep`` an action name and
this file is where it is called. Each wrapper says what its answers mean once, for every caller:

* a read of something that does not exist answers ``None`` (never an error);
* a delete of something already gone answers ``False``;
* AttachKeyPair / DetachKeyPair go in batches of 50 ids and answer per instance, with the
  reply's ``FailCount`` checked against its rows (a partial failure inside a 200 reply is
  never lost);
* every other error rises as ``EcsApiError`` from the signed client, which has already retried
  what may be retried.

Standard library only; the client is anything with ``call``, ``paginate``, ``paginate_tokens`` and ``region`` (the
signed ``EcsClient`` or a fake at that seam in tests).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import (
    MAX_DESCRIBE_INSTANCE_IDS,
    MAX_INSTANCE_IDS,
    MAX_KEY_PAIR_NAMES,
    EcsApiError,
    chunks,
    json_list,
)

# What the service answers for a key pair name it does not know (describe and delete say the
# first, attach and detach the second).
NOT_FOUND_CODES = ("InvalidKeyPair.NotFound", "InvalidKeyPairName.NotFound")
# The delete of a key pair that instances still hold, where the service refuses it.
ATTACHED_CODE = "InvalidParameter.KeypairAlreadyAttachedInstance"
WINDOWS_CODE = "DependencyViolation.WindowsInstance"
ALREADY_EXISTS_CODE = "KeyPair.AlreadyExist"
# Batch outcomes that do not say whether the instance changed: its batch reply was lost or
# incomplete. An undo must treat these as possibly done.
UNCERTAIN_CODES = ("NoResult", "FailCountMismatch")


def is_not_found(error: EcsApiError) -> bool:
    return error.code in NOT_FOUND_CODES


def tag_params(tags: Optional[Mapping[str, Any]], prefix: str = "Tag", none_means_any: bool = False) -> dict:
    """{'k': 'v'} -> {'Tag.1.Key': 'k', 'Tag.1.Value': 'v'} in a stable order.

    A value of None is an empty value, or, for a filter (``none_means_any``), no value at all:
    the tag with any value.
    """
    params = {}
    for index, key in enumerate(sorted(tags or {}), start=1):
        params[f"{prefix}.{index}.Key"] = key
        if tags[key] is not None:
            params[f"{prefix}.{index}.Value"] = str(tags[key])
        elif not none_means_any:
            params[f"{prefix}.{index}.Value"] = ""
    return params


# ---------------------------------------------------------------------------------------------
# Key pairs.


def describe_key_pairs(client: Any, *, name: Optional[str] = None, fingerprint: Optional[str] = None,
                       resource_group_id: Optional[str] = None, tags: Optional[Mapping[str, str]] = None,
                       include_public_key: bool = True) -> List[Any]:
    """DescribeKeyPairs, every page (50 a call). A name without '*' is an exact name."""
    params: dict = {"KeyPairName": name, "KeyPairFingerPrint": fingerprint,
                    "ResourceGroupId": resource_group_id, "IncludePublicKey": include_public_key}
    params.update(tag_params(tags))
    return list(client.paginate("DescribeKeyPairs", params, ("KeyPairs", "KeyPair")))


def get_key_pair(client: Any, name: str, include_public_key: bool = True) -> Optional[Dict[str, Any]]:
    """The key pair of exactly this name, or None."""
    try:
        found = describe_key_pairs(client, name=name, include_public_key=include_public_key)
    except EcsApiError as error:
        if is_not_found(error):
            return None
        raise
    for item in found:
        if isinstance(item, dict) and item.get("KeyPairName") == name:
            return item
    return None


def create_key_pair(client: Any, name: str, tags: Optional[Mapping[str, str]],
                    resource_group_id: Optional[str]) -> Dict[str, Any]:
    """CreateKeyPair: the reply holds the only copy of the private key (PrivateKeyBody).

    Not idempotent: the client retries it only when the service surely did not act.
    """
    params = dict({"KeyPairName": name, "ResourceGroupId": resource_group_id}, **tag_params(tags))
    return client.call("CreateKeyPair", params, idempotent=False)


def create_attempts(client: Any) -> int:
    """How many CreateKeyPair requests the client has sent so far, retries included (0 when the
    client does not count)."""
    counter = getattr(client, "sends_of", None)
    return counter("CreateKeyPair") if callable(counter) else 0


def import_key_pair(client: Any, name: str, public_key_line: str, tags: Optional[Mapping[str, str]],
                    resource_group_id: Optional[str]) -> Dict[str, Any]:
    """ImportKeyPair of one public key line."""
    params = dict({"KeyPairName": name, "PublicKeyBody": public_key_line, "ResourceGroupId": resource_group_id},
                  **tag_params(tags))
    return client.call("ImportKeyPair", params)


def delete_key_pairs(client: Any, names: Sequence[str]) -> None:
    """DeleteKeyPairs for up to 100 names. All or nothing: one unknown name fails the call
    (``is_not_found``) and nothing is deleted."""
    if len(names) > MAX_KEY_PAIR_NAMES:
        raise ValueError(f"DeleteKeyPairs takes at most {MAX_KEY_PAIR_NAMES} names")
    client.call("DeleteKeyPairs", {"KeyPairNames": json_list(names)})


def delete_key_pair(client: Any, name: str) -> bool:
    """DeleteKeyPairs for one name; False when it was gone already."""
    try:
        delete_key_pairs(client, [name])
    except EcsApiError as error:
        if is_not_found(error):
            return False
        raise
    return True


def tag_key_pair(client: Any, name: str, tags: Mapping[str, str]) -> None:
    """TagResources: sets (and overwrites) these tags of the key pair."""
    client.call("TagResources", dict({"ResourceType": "keypair", "ResourceId.1": name}, **tag_params(tags)))


def untag_key_pair(client: Any, name: str, keys: Sequence[str]) -> None:
    """UntagResources: removes these tag keys from the key pair."""
    params = {"ResourceType": "keypair", "ResourceId.1": name}
    params.update({f"TagKey.{index}": key for index, key in enumerate(keys, start=1)})
    client.call("UntagResources", params)


# ---------------------------------------------------------------------------------------------
# Instances.


def describe_instances(client: Any, *, instance_ids: Optional[Sequence[str]] = None,
                       key_pair_name: Optional[str] = None, status: Optional[str] = None,
                       instance_name: Optional[str] = None,
                       tags: Optional[Mapping[str, Optional[str]]] = None) -> List[Any]:
    """DescribeInstances, every page (100 a call, paged with NextToken); instance ids go 100 to a call as well.

    ``tags`` filters on tags; a value of None matches the tag with any value.
    """
    base: dict = {"KeyPairName": key_pair_name, "Status": status, "InstanceName": instance_name}
    base.update(tag_params(tags, none_means_any=True))
    path = ("Instances", "Instance")
    if instance_ids is None:
        return list(client.paginate_tokens("DescribeInstances", base, path))
    found: List[Any] = []
    for group in chunks(instance_ids, MAX_DESCRIBE_INSTANCE_IDS):
        found.extend(client.paginate_tokens("DescribeInstances", dict(base, InstanceIds=json_list(group)), path))
    return found


def instances_holding(client: Any, key_pair_name: str) -> List[Any]:
    """The instances that show this key pair name."""
    return [item for item in describe_instances(client, key_pair_name=key_pair_name)
            if isinstance(item, dict) and item.get("KeyPairName", key_pair_name) == key_pair_name]


def reboot_instance(client: Any, instance_id: str, force_stop: bool) -> None:
    client.call("RebootInstance", {"InstanceId": instance_id, "ForceStop": force_stop})


def attach_key_pair(client: Any, name: str, instance_ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """AttachKeyPair in batches of 50: {instance id: outcome} (see ``_bind_batches``)."""
    return _bind_batches(client, "AttachKeyPair", name, instance_ids)


def detach_key_pair(client: Any, name: str, instance_ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """DetachKeyPair in batches of 50: {instance id: outcome} (see ``_bind_batches``)."""
    return _bind_batches(client, "DetachKeyPair", name, instance_ids)


def _bind_batches(client: Any, action: str, name: str, ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """{instance id: {ok, code, message[, action, request_id, error, uncertain]}}.

    An API error ends the job: the instances of that batch (``uncertain``: the reply was lost,
    the batch may have acted) and of the later ones are reported as not done, with the error.
    """
    outcome: Dict[str, Dict[str, Any]] = {}
    groups = list(chunks(list(ids), MAX_INSTANCE_IDS))
    for index, group in enumerate(groups):
        try:
            _bind_group(client, action, name, group, outcome)
        except EcsApiError as error:
            for later in groups[index:]:
                for instance_id in later:
                    if instance_id in outcome:
                        continue  # answered before the error, in a split of this batch
                    outcome[instance_id] = {"ok": False, "code": error.code, "message": f"not done: {error}",
                                            "error": error, "uncertain": later is group}
            break
    return outcome


def _bind_group(client: Any, action: str, name: str, group: Sequence[str], outcome: Dict[str, Dict[str, Any]]) -> None:
    """One batch, its answers written into outcome as they come.

    ECS may refuse a whole batch with DependencyViolation.WindowsInstance when one of its
    instances runs Windows (nothing is done then): the batch is split in halves until the
    Windows instances stand alone, so that every other instance is still attached or detached.
    """
    try:
        reply = client.call(action, {"KeyPairName": name, "InstanceIds": json_list(group)})
    except EcsApiError as error:
        if error.code != WINDOWS_CODE or not error.http_status:
            raise
        if len(group) == 1:
            outcome[group[0]] = {"ok": False, "code": WINDOWS_CODE, "message": error.message, "action": action,
                                 "request_id": error.request_id}
            return
        half = len(group) // 2
        _bind_group(client, action, name, group[:half], outcome)
        _bind_group(client, action, name, group[half:], outcome)
        return
    outcome.update(_batch_outcome(reply, group, action))


def _result_rows(reply: Mapping[str, Any]) -> Dict[str, Mapping[str, Any]]:
    results = reply.get("Results")
    rows = results.get("Result") if isinstance(results, dict) else None
    return {str(r.get("InstanceId")): r for r in rows or [] if isinstance(r, dict)}


def _succeeded(row: Optional[Mapping[str, Any]]) -> bool:
    return row is not None and str(row.get("Success")).lower() == "true"


def _batch_outcome(reply: Mapping[str, Any], group: Sequence[str], action: str) -> Dict[str, Dict[str, Any]]:
    """The outcome of one answered batch, FailCount checked against the rows: a batch that
    reports failures it does not itemise marks its instances without a failed row as failed."""
    rows = _result_rows(reply)
    try:
        fail_count = int(reply.get("FailCount") or 0)
    except (TypeError, ValueError):
        fail_count = len(group)
    unaccounted = fail_count - sum(1 for i in group if i in rows and not _succeeded(rows[i])) \
        - sum(1 for i in group if i not in rows)
    outcome: Dict[str, Dict[str, Any]] = {}
    for instance_id in group:
        row = rows.get(instance_id)
        if row is None:
            outcome[instance_id] = {"ok": False, "code": "NoResult",
                                    "message": f"the reply (FailCount {reply.get('FailCount')}) has no "
                                               "result for this instance"}
        elif not _succeeded(row):
            outcome[instance_id] = {"ok": False, "code": str(row.get("Code") or "Failed"),
                                    "message": str(row.get("Message") or ""), "action": action,
                                    "request_id": reply.get("RequestId")}
        elif unaccounted > 0:
            # FailCount says more failed than the rows show: no row of this batch can be trusted.
            outcome[instance_id] = {"ok": False, "code": "FailCountMismatch",
                                    "message": f"the reply says {fail_count} failed but its results do not "
                                               "show which; run again to check"}
        else:
            outcome[instance_id] = {"ok": True, "code": str(row.get("Code") or "200"),
                                    "message": str(row.get("Message") or "successful")}
    return outcome


def maybe_done(entry: Mapping[str, Any]) -> bool:
    """Whether an instance of a batch outcome may have changed: it did, or its answer does not say."""
    return bool(entry.get("ok") or entry.get("code") in UNCERTAIN_CODES or entry.get("uncertain"))


def first_error(outcome: Mapping[str, Mapping[str, Any]]) -> Optional[EcsApiError]:
    """The API error that stopped a batch job, else the first instance the service refused (as
    an error with its code and the request id of its batch), else None."""
    for entry in outcome.values():
        if isinstance(entry.get("error"), EcsApiError):
            return entry["error"]
    for entry in outcome.values():
        if not entry.get("ok") and entry.get("action"):
            return EcsApiError(code=entry["code"], message=entry["message"], action=entry["action"],
                               request_id=entry.get("request_id"))
    return None


def failure_lines(outcome: Mapping[str, Mapping[str, Any]], ids: Sequence[str]) -> List[str]:
    """'i-x: Code message' for each instance of ids that did not succeed."""
    return [f"{i}: {outcome[i]['code']} {outcome[i]['message']}" for i in ids if not outcome[i]["ok"]]


# --- Cloud Assistant --------------------------------------------------------------------------

def run_shell_script(client: Any, instance_id: str, content_base64: str, username: str, timeout: int) -> str:
    """RunCommand of one shell script on one instance; answers the InvokeId.

    Never retried after it may have been sent (``idempotent=False``): a lost reply could mean the
    script ran, and running it twice is the caller's decision. Throttling is retried.
    """
    reply = client.call("RunCommand", {"Type": "RunShellScript", "CommandContent": content_base64,
                                       "ContentEncoding": "Base64", "InstanceId.1": instance_id,
                                       "Username": username, "Timeout": str(timeout)}, idempotent=False)
    invoke_id = reply.get("InvokeId") if isinstance(reply, dict) else None
    if not isinstance(invoke_id, str) or not invoke_id:
        raise EcsApiError(code="MalformedResponse", message="RunCommand answered without an InvokeId",
                          action="RunCommand", request_id=reply.get("RequestId") if isinstance(reply, dict) else None)
    return invoke_id


def invocation_result(client: Any, invoke_id: str, instance_id: str) -> Optional[dict]:
    """The DescribeInvocationResults row of one invocation on one instance (Output in Base64), or None."""
    reply = client.call("DescribeInvocationResults", {"InvokeId": invoke_id, "InstanceId": instance_id,
                                                      "ContentEncoding": "Base64"})
    rows = ((reply.get("Invocation") or {}).get("InvocationResults") or {}).get("InvocationResult") or []
    for row in rows:
        if isinstance(row, dict) and row.get("InstanceId") == instance_id:
            return row
    return None


def cloud_assistant_status(client: Any, instance_ids: Sequence[str]) -> Dict[str, dict]:
    """DescribeCloudAssistantStatus: {instance id: its status record}, 50 ids a call."""
    found: Dict[str, dict] = {}
    for group in chunks(list(instance_ids), 50):
        params = {f"InstanceId.{n}": instance_id for n, instance_id in enumerate(group, start=1)}
        params["MaxResults"] = "50"
        reply = client.call("DescribeCloudAssistantStatus", params)
        items = (reply.get("InstanceCloudAssistantStatusSet") or {}).get("InstanceCloudAssistantStatus") or []
        found.update({item["InstanceId"]: item for item in items if isinstance(item, dict) and item.get("InstanceId")})
    return found


def send_file(client: Any, instance_id: str, target_dir: str, name: str, content_base64: str, owner: str,
              group: str = "root", mode: str = "0600", timeout: int = 60) -> str:
    """SendFile of one file (content in Base64) to one instance, overwriting; answers the InvokeId."""
    reply = client.call("SendFile", {"InstanceId.1": instance_id, "TargetDir": target_dir, "Name": name,
                                     "Content": content_base64, "ContentType": "Base64", "FileOwner": owner,
                                     "FileGroup": group, "FileMode": mode, "Overwrite": "true",
                                     "Timeout": str(timeout)}, idempotent=False)
    invoke_id = reply.get("InvokeId") if isinstance(reply, dict) else None
    if not isinstance(invoke_id, str) or not invoke_id:
        raise EcsApiError(code="MalformedResponse", message="SendFile answered without an InvokeId",
                          action="SendFile", request_id=reply.get("RequestId") if isinstance(reply, dict) else None)
    return invoke_id

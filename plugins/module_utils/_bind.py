# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: AttachKeyPair / DetachKeyPair in batches, per instance.

Both ecs_keypair (detach before a delete or a replacement, attach after it) and
ecs_keypair_attach need to know, instance by instance, what a batch did: a partial failure
comes back inside a 200 reply, and an error part way through a job leaves the earlier batches
done. Whoever undoes or reports a half-done job needs exactly that list.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import (
    MAX_INSTANCE_IDS,
    EcsApiError,
    chunks,
    json_list,
)

# Outcomes that do not say whether the instance changed: its batch reply was lost or
# incomplete. An undo must treat these as possibly done.
UNCERTAIN_CODES = ("NoResult", "FailCountMismatch")


def result_rows(reply: Mapping[str, Any]) -> Dict[str, Mapping[str, Any]]:
    results = reply.get("Results")
    rows = results.get("Result") if isinstance(results, dict) else None
    return {str(r.get("InstanceId")): r for r in rows or [] if isinstance(r, dict)}


def succeeded(row: Optional[Mapping[str, Any]]) -> bool:
    return row is not None and str(row.get("Success")).lower() == "true"


def _batch_outcome(reply: Mapping[str, Any], group: Sequence[str], action: str) -> Dict[str, Dict[str, Any]]:
    """{id: {ok, code, message}} of one answered batch, FailCount checked against the rows."""
    rows = result_rows(reply)
    try:
        fail_count = int(reply.get("FailCount") or 0)
    except (TypeError, ValueError):
        fail_count = len(group)
    unaccounted = fail_count - sum(1 for i in group if i in rows and not succeeded(rows[i])) \
        - sum(1 for i in group if i not in rows)
    outcome: Dict[str, Dict[str, Any]] = {}
    for instance_id in group:
        row = rows.get(instance_id)
        if row is None:
            outcome[instance_id] = {"ok": False, "code": "NoResult",
                                    "message": f"the reply (FailCount {reply.get('FailCount')}) has no "
                                               "result for this instance"}
        elif not succeeded(row):
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


def send_batches(client: Any, action: str, name: str, ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """AttachKeyPair/DetachKeyPair in batches of 50: {instance id: {ok, code, message[, error]}}.

    FailCount is checked against the rows: a batch that reports failures it does not itemise
    marks its instances without a successful row as failed. An API error ends the job: the
    instances of that batch and of later ones are reported as not done, with the error.
    """
    outcome: Dict[str, Dict[str, Any]] = {}
    groups = list(chunks(ids, MAX_INSTANCE_IDS))
    for index, group in enumerate(groups):
        try:
            reply = client.call(action, {"KeyPairName": name, "InstanceIds": json_list(group)})
        except EcsApiError as error:
            for later in groups[index:]:
                for instance_id in later:
                    outcome[instance_id] = {"ok": False, "code": error.code, "message": f"not done: {error}",
                                            "error": error, "uncertain": later is group}
            break
        outcome.update(_batch_outcome(reply, group, action))
    return outcome


def maybe_done(entry: Mapping[str, Any]) -> bool:
    """Whether the instance may have changed: it did, or its answer does not say."""
    return bool(entry.get("ok") or entry.get("code") in UNCERTAIN_CODES or entry.get("uncertain"))


def first_error(outcome: Mapping[str, Mapping[str, Any]]) -> Optional[EcsApiError]:
    """The API error that stopped a job, else the first instance the service refused (as an
    error with its code and the request id of its batch), else None."""
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

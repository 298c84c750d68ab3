# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: attach/detach key pairs on instances, with restarts."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._changes import PartialChangeError, join_ids
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_api import (
    WINDOWS_CODE,
    attach_key_pair,
    describe_instances,
    detach_key_pair,
    first_error,
    get_key_pair,
    reboot_instance,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import EcsApiError
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_shape import public_ip_addresses
from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_validate import INSTANCE_ID_PATTERN, validate_name
from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import quote_input

# Only these statuses take a key pair (the others are moments of a transition).
BINDABLE = ("Running", "Stopped")
# A reboot that the status never showed (too quick for one poll) counts as done once the
# instance is Running this long after the request.
REBOOT_SETTLE_SECONDS = 10.0

EFFECT = {
    "present": ("The key pair replaces any key pair the instance held before, and password login is "
                "switched off; both take effect when the instance restarts."),
    "absent": ("The key pair is removed from the instance at its next restart; password login stays "
               "off until the instance's password is reset."),
}


@dataclass(frozen=True)
class AttachJob:
    """What one ecs_keypair_attach task asks for: its options as named values."""

    key_pair_name: str
    instance_ids: Sequence[Any]
    state: str = "present"
    reboot: bool = False
    force_stop: bool = False
    wait_timeout: int = 600
    skip_windows: bool = False
    key_pair_planned: bool = False


class AttachError(SshKeysError):
    """Bad input or a state that makes the job impossible; raised before any change."""


class JobFailed(PartialChangeError):
    """Some instances failed after the job started; carries the result to report and the
    changes made (the instances attached or detached, and rebooted)."""

    def __init__(self, message: str, result: Dict[str, Any], error: Optional[EcsApiError] = None,
                 rebooted: Sequence[str] = ()) -> None:
        super().__init__(message, changes=changes_of(result, rebooted), error=error, result=result)


# ---------------------------------------------------------------------------------------------
# Input.


def check_input(key_pair_name: str, instance_ids: Sequence[Any], wait_timeout: int) -> List[str]:
    """The instance ids as strings, or AttachError naming every offending id."""
    validate_name(key_pair_name, "key_pair_name")
    # Spaces around an id are dropped: a list given as one string ("i-a, i-b") arrives as
    # ["i-a", " i-b"]. What is left must be an id as a whole.
    ids = [str(item).strip() for item in instance_ids or []]
    if not ids:
        raise AttachError("instance_ids is empty: give at least one instance id")
    malformed = [item for item in ids if not INSTANCE_ID_PATTERN.fullmatch(item)]
    if malformed:
        raise AttachError("malformed instance ids (expected i- and lower-case letters or digits): "
                          + ", ".join(quote_input(item) for item in malformed[:20])
                          + (f" and {len(malformed) - 20} more" if len(malformed) > 20 else ""))
    seen: Dict[str, int] = {}
    for item in ids:
        seen[item] = seen.get(item, 0) + 1
    duplicates = [item for item, count in seen.items() if count > 1]
    if duplicates:
        raise AttachError("instance ids listed more than once: " + ", ".join(duplicates))
    if wait_timeout <= 0:
        raise AttachError(f"wait_timeout must be more than 0 seconds, not {wait_timeout}")
    return ids


# ---------------------------------------------------------------------------------------------
# Reading instances and deciding.


def read_instances(client: Any, ids: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """The described instances by id: ceil(N/100) DescribeInstances calls."""
    found = {}
    for item in describe_instances(client, instance_ids=list(ids)):
        if isinstance(item, dict) and item.get("InstanceId") in ids:
            found[item["InstanceId"]] = item
    return found


def is_windows(item: Mapping[str, Any]) -> bool:
    return str(item.get("OSType") or "").lower() == "windows"


def plan_one(item: Mapping[str, Any], name: str, state: str) -> str:
    """'attach', 'detach' or 'unchanged' for one described instance."""
    held = item.get("KeyPairName") or ""
    if state == "present":
        return "unchanged" if held == name else "attach"
    return "detach" if held == name else "unchanged"


def entry(instance_id: str, item: Mapping[str, Any]) -> Dict[str, Any]:
    """The per-instance result before anything is done."""
    ips = public_ip_addresses(item)
    return {
        "instance_id": instance_id,
        "instance_name": item.get("InstanceName"),
        "action": "unchanged",
        "code": None,
        "message": None,
        "key_pair_before": item.get("KeyPairName") or None,
        "key_pair_after": item.get("KeyPairName") or None,
        "needs_restart": False,
        "restarted": False,
        "status": item.get("Status"),
        "os_type": item.get("OSType"),
        "public_ip": ips[0] if ips else None,
        "public_ip_addresses": ips,
    }


def make_plan(ids: Sequence[str], found: Mapping[str, Mapping[str, Any]], name: str, state: str,
              skip_windows: bool) -> Tuple[List[Dict[str, Any]], List[str]]:
    """(per-instance entries in the order asked, warnings); AttachError for what cannot work.

    Everything that can be known before a call is refused here: unknown ids, Windows instances
    (unless skipped), instances in a transition that need a change.
    """
    missing = [i for i in ids if i not in found]
    if missing:
        raise AttachError(f"{len(missing)} instance(s) do not exist in this region (or this account): "
                          + ", ".join(missing))
    entries, warnings, windows, busy = [], [], [], []
    for instance_id in ids:
        item = found[instance_id]
        one = entry(instance_id, item)
        decision = plan_one(item, name, state)
        if decision != "unchanged" and is_windows(item):
            if skip_windows:
                one.update(action="skipped", code=WINDOWS_CODE,
                           message="Windows instance: key pairs are for Linux instances only; skipped")
            else:
                windows.append(instance_id)
        elif decision != "unchanged" and item.get("Status") not in BINDABLE:
            busy.append(f"{instance_id} ({item.get('Status')})")
        elif decision != "unchanged":
            one["action"] = "attached" if decision == "attach" else "detached"
            one["key_pair_after"] = name if decision == "attach" else None
        entries.append(one)
    if windows:
        raise AttachError("key pairs are for Linux instances only; these are Windows instances (set "
                          "skip_windows=true to skip them with a warning): " + ", ".join(windows))
    if busy:
        raise AttachError("only Running or Stopped instances take a key pair; wait until these are, then run "
                          "again: " + ", ".join(busy))
    skipped = [e["instance_id"] for e in entries if e["action"] == "skipped"]
    if skipped:
        warnings.append("skipped Windows instance(s), key pairs are for Linux only: " + ", ".join(skipped))
    return entries, warnings


# ---------------------------------------------------------------------------------------------
# Applying.


def reboot(client: Any, ids: Sequence[str], force_stop: bool) -> Dict[str, Optional[EcsApiError]]:
    """RebootInstance for each id: {id: None or the error}."""
    errors: Dict[str, Optional[EcsApiError]] = {}
    for instance_id in ids:
        try:
            reboot_instance(client, instance_id, force_stop)
            errors[instance_id] = None
        except EcsApiError as error:
            errors[instance_id] = error
    return errors


def wait_running(client: Any, ids: Sequence[str], timeout: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, poll: float = 2.0,
                 settle: float = REBOOT_SETTLE_SECONDS) -> Tuple[Dict[str, Dict[str, Any]], List[str]]:
    """Poll DescribeInstances (100 ids a call) until every id is Running again after its reboot.

    Returns (last description by id, ids still not back). An instance counts as back when it is
    Running and it was seen in another status since the reboot, or when it is Running `settle`
    seconds after the reboot (a restart too quick for any poll to see).
    """
    started = clock()
    left = list(ids)
    seen_away: set = set()
    last: Dict[str, Dict[str, Any]] = {}
    while True:
        found = read_instances(client, left) if left else {}
        last.update(found)
        elapsed = clock() - started
        pending = []
        for instance_id in left:
            status = (found.get(instance_id) or {}).get("Status")
            if status != "Running":
                seen_away.add(instance_id)
                pending.append(instance_id)
            elif instance_id not in seen_away and elapsed < settle:
                pending.append(instance_id)
        left = pending
        if not left:
            return last, []
        if elapsed >= timeout:
            return last, left
        sleep(max(0.1, min(poll, timeout - elapsed)))


# ---------------------------------------------------------------------------------------------
# The job.


def summary(entries: Sequence[Mapping[str, Any]], name: str, state: str,
            warnings: Sequence[str] = ()) -> Dict[str, Any]:
    """The module's result (also the failure result of a job that changed something)."""
    changed_ids = [e["instance_id"] for e in entries if e["action"] in ("attached", "detached")]
    result = {
        "changed": bool(changed_ids),
        "key_pair_name": name,
        "state": state,
        "instances": list(entries),
        "changed_instances": changed_ids,
        "needs_restart": [e["instance_id"] for e in entries if e["needs_restart"]],
        "restarted": [e["instance_id"] for e in entries if e["restarted"]],
        "failed_instances": [e["instance_id"] for e in entries if e["action"] == "failed"],
        "effect": EFFECT[state],
        "diff": diff_of(entries),
    }
    if warnings:
        result["warnings"] = list(warnings)
    return result


def diff_of(entries: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """Key pair per instance before and after (None: no key pair)."""
    return {"before": {"instances": {e["instance_id"]: e["key_pair_before"] for e in entries}},
            "after": {"instances": {e["instance_id"]: e["key_pair_after"] for e in entries}}}


def plan_job(client: Any, job: AttachJob, check_mode: bool, warnings: List[str]) -> List[Dict[str, Any]]:
    """The per-instance entries of the job, decided from reads only (AttachError when impossible)."""
    name, state = job.key_pair_name, job.state
    ids = check_input(name, job.instance_ids, job.wait_timeout)
    planned_only = False
    if state == "present" and get_key_pair(client, name, include_public_key=False) is None:
        # In check mode an earlier task may only have planned the key pair; its result says so.
        planned_only = check_mode and job.key_pair_planned
        if not planned_only:
            raise AttachError(missing_key_pair(name, client.region, check_mode))
    found = read_instances(client, ids)
    entries, planned = make_plan(ids, found, name, state, job.skip_windows)
    warnings.extend(planned)
    for one in entries:
        if one["action"] not in ("attached", "detached"):
            continue
        # A running instance takes the change at a reboot (if asked for), a stopped one at its start.
        one["needs_restart"] = not (job.reboot and one["status"] == "Running")
        if check_mode:
            one["message"] = f"would be {one['action']} (check mode)" + (
                f"; key pair {name} would be created by an earlier task" if planned_only else "") + (
                "; takes effect at the next start" if one["status"] == "Stopped" else "")
    return entries


def missing_key_pair(name: str, region: str, check_mode: bool) -> str:
    message = f"key pair {name} does not exist in region {region}; create or import it first (sshkeys.ecs.ecs_keypair)"
    if check_mode:
        message += ("; if an earlier task of this check run would create it, give this task key_pair_planned: "
                    "the would_create of that task's registered result")
    return message


def run(client: Any, job: AttachJob, check_mode: bool, *,
        clock: Optional[Callable[[], float]] = None, sleep: Optional[Callable[[float], None]] = None,
        poll: float = 2.0) -> Dict[str, Any]:
    """Decide with DescribeKeyPairs/DescribeInstances, then attach or detach, then reboot.

    Raises AttachError before any change, JobFailed after a change when something failed.
    """
    name, state = job.key_pair_name, job.state
    warnings: List[str] = []
    entries = plan_job(client, job, check_mode, warnings)
    to_change = [e for e in entries if e["action"] in ("attached", "detached")]
    result = summary(entries, name, state, warnings)
    result["would_restart"] = [e["instance_id"] for e in to_change if job.reboot and e["status"] == "Running"]
    if check_mode or not to_change:
        return result

    send = attach_key_pair if state == "present" else detach_key_pair
    outcome = send(client, name, [e["instance_id"] for e in to_change])
    record_outcome(to_change, outcome, job.skip_windows, warnings)
    done = [e for e in to_change if e["action"] in ("attached", "detached")]
    # Reboot only what changed in this run and is running: a re-run finds the binding in place,
    # changes nothing and so reboots nothing a second time.
    to_reboot = [e for e in done if job.reboot and e["status"] == "Running"]
    rebooted = request_reboots(client, to_reboot, job.force_stop)
    try:
        timed_out = wait_rebooted(client, to_reboot, rebooted, job.wait_timeout, clock=clock, sleep=sleep, poll=poll)
    except EcsApiError as error:
        # The attach or detach (and the reboots) are done: a failing wait must not hide them.
        result = summary(entries, name, state, warnings)
        result["would_restart"] = []
        raise JobFailed(f"waiting for the rebooted instances failed: {error}; "
                        + failure_message(entries, result["failed_instances"], [], [], job.wait_timeout),
                        result, error, rebooted) from None
    result = summary(entries, name, state, warnings)
    result["would_restart"] = []
    failed = result["failed_instances"]
    reboot_failed = [e["instance_id"] for e in to_reboot if e.get("restart_error")]
    if failed or reboot_failed or timed_out:
        raise JobFailed(failure_message(entries, failed, reboot_failed, timed_out, job.wait_timeout), result,
                        first_error(outcome), rebooted)
    return result


def record_outcome(to_change: Sequence[Dict[str, Any]], outcome: Mapping[str, Mapping[str, Any]],
                   skip_windows: bool, warnings: List[str]) -> None:
    """Write each instance's answer into its entry: done, skipped (Windows) or failed."""
    for one in to_change:
        got = outcome[one["instance_id"]]
        one["code"], one["message"] = got["code"], got["message"]
        if got["ok"]:
            if one["status"] == "Stopped":
                one["message"] = f"{got['message']}; takes effect at the next start"
            continue
        if got["code"] == WINDOWS_CODE and skip_windows:
            one.update(action="skipped", key_pair_after=one["key_pair_before"], needs_restart=False)
            warnings.append(f"skipped {one['instance_id']}: the service says it is a Windows instance")
        else:
            one.update(action="failed", key_pair_after=one["key_pair_before"], needs_restart=False)


def request_reboots(client: Any, to_reboot: Sequence[Dict[str, Any]], force_stop: bool) -> List[str]:
    """RebootInstance for each entry; returns the ids rebooted, marks the others' entries."""
    if not to_reboot:
        return []
    errors = reboot(client, [e["instance_id"] for e in to_reboot], force_stop)
    rebooted = []
    for one in to_reboot:
        error = errors[one["instance_id"]]
        if error is None:
            rebooted.append(one["instance_id"])
        else:
            one.update(needs_restart=True, restart_error=error.as_dict(),
                       message=f"{one['message']}; the reboot failed: {error}")
    return rebooted


def wait_rebooted(client: Any, to_reboot: Sequence[Dict[str, Any]], rebooted: List[str], timeout: float, *,
                  clock: Optional[Callable[[], float]], sleep: Optional[Callable[[float], None]],
                  poll: float) -> List[str]:
    """Wait for the rebooted instances and note their status; returns the ids not back in time."""
    if not to_reboot:
        return []
    last, timed_out = wait_running(client, rebooted, timeout, clock=clock or time.monotonic,
                                   sleep=sleep or time.sleep, poll=poll)
    for one in to_reboot:
        item = last.get(one["instance_id"])
        if item is not None:
            one["status"] = item.get("Status")
        if one["instance_id"] in rebooted:
            one["restarted"] = one["instance_id"] not in timed_out
            one["needs_restart"] = False
    return timed_out


def changes_of(result: Mapping[str, Any], rebooted: Sequence[str] = ()) -> List[str]:
    """What a (partly) done job changed, for the failure result: attached/detached and rebooted."""
    name = result.get("key_pair_name")
    entries = result.get("instances") or []
    changes = []
    for action, verb in (("attached", "attached key pair {} to "), ("detached", "detached key pair {} from ")):
        ids = [e["instance_id"] for e in entries if e.get("action") == action]
        if ids:
            changes.append(verb.format(name) + join_ids(ids))
    if rebooted:
        changes.append("rebooted " + join_ids(list(rebooted)))
    return changes


def failure_message(entries: Sequence[Mapping[str, Any]], failed: Sequence[str], reboot_failed: Sequence[str],
                    timed_out: Sequence[str], timeout: float) -> str:
    by_id = {e["instance_id"]: e for e in entries}
    parts = []
    ok = [e["instance_id"] for e in entries if e["action"] in ("attached", "detached")]
    if failed:
        parts.append(f"{len(failed)} instance(s) failed: "
                     + "; ".join(f"{i} {by_id[i]['code']} {by_id[i]['message']}" for i in failed))
    if reboot_failed:
        parts.append("reboot failed for " + ", ".join(reboot_failed))
    if timed_out:
        parts.append(f"not Running again within {timeout} s after the reboot: "
                     + ", ".join(f"{i} ({by_id[i]['status']})" for i in timed_out))
    parts.append(f"succeeded: {', '.join(ok) if ok else 'none'}")
    return "; ".join(parts)

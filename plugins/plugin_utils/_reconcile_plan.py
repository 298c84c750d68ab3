# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: what the GitOps reconcile would change.

Runs on the controller only (the reconcile_plan, reconcile_hosts and reconcile_host_report
filters). ``plan_regions`` and ``host_users`` compare a checked desired state (see
``_reconcile_state``) with what the account and the inventory hold and say what would change,
in words a reviewer of a pull request can read; ``host_report`` reads the role's results back.
Plain functions of plain data: no API client, no Ansible.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_shape import tag_changes
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import quote_input


# ---------------------------------------------------------------------------------------------
# Planning: the account


def plan_regions(regions: Sequence[Mapping[str, Any]], found: Sequence[Any],
                 taken: Optional[Sequence[Mapping[str, Any]]] = None) -> Dict[str, Any]:
    """What would change in each region, given ecs_keypair_info's key_pairs for each (same order).

    ``taken``: for each region, ecs_keypair_info's taken_names (names no key pair holds that
    instances still show).
    """
    if len(found) != len(regions):
        raise ValueError(f"expected the key pairs of {len(regions)} region(s), got {len(found)}")
    taken = list(taken) if taken is not None else [{}] * len(regions)
    if len(taken) != len(regions):
        raise ValueError(f"expected the taken names of {len(regions)} region(s), got {len(taken)}")
    plans = [plan_region(region, pairs, names) for region, pairs, names in zip(regions, found, taken)]
    return {
        "regions": plans,
        "changes": [line for plan in plans for line in plan["changes"]],
        "drift": any(plan["drift"] for plan in plans),
        "jobs": plan_jobs(plans),
    }


def plan_jobs(plans: Sequence[Mapping[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    """The account changes as flat lists, one small item per module call.

    The playbook loops over these rather than over (region plan, item) pairs: Ansible puts the
    loop item into every result, a failed one included, and a whole region's plan in each failure
    would bury its message. ``label`` names the item in the run's output and in the report.
    """
    jobs: Dict[str, List[Dict[str, Any]]] = {"free": [], "keypair": [], "attach": [], "detach": [], "delete": []}
    for plan in plans:
        where = plan["region"]
        for entry in plan["free"]:
            jobs["free"].append(dict(entry, region=where,
                                     label=f"{where}: free the name {entry['name']} ({', '.join(entry['instance_ids'])})"))
        for task in plan["keypair_tasks"]:
            jobs["keypair"].append(dict(task, region=where, label=f"{where}: key pair {task['name']}"))
        for kind in ("attach", "detach"):
            for entry in plan[kind]:
                jobs[kind].append(dict(entry, region=where, reboot=plan["reboot"],
                                       label=f"{where}: {kind} {entry['name']} ({', '.join(entry['instance_ids'])})"))
        if plan["delete"]:
            names = [entry["name"] for entry in plan["delete"]]
            jobs["delete"].append({"region": where, "names": names, "label": f"{where}: delete {', '.join(names)}"})
    return jobs


def plan_region(region: Mapping[str, Any], key_pairs: Sequence[Mapping[str, Any]],
                taken: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Compare one region's desired key pairs with the key pairs (with instances) the account holds.

    ``taken``: {name: instances} of names no key pair holds that instances still show (a key
    pair deleted while attached); a desired key pair under such a name is imported only after
    its name is freed, by detaching it from those instances.
    """
    actual = {str(item["name"]): item for item in key_pairs}
    taken = taken or {}
    # Who holds what now, as the info module read it, and who should.
    holder_of: Dict[str, str] = {}
    for item in key_pairs:
        for instance in item.get("instances") or []:
            holder_of[str(instance.get("instance_id"))] = str(item["name"])
    wanted_holder = {i: pair["name"] for pair in region["key_pairs"] for i in (pair["instances"] or [])}
    plan: Dict[str, Any] = {"region": region["region"], "prune": region["prune"], "reboot": region["reboot"],
                            "free": [], "import": [], "replace": [], "retag": [], "attach": [], "detach": [],
                            "unlisted": [], "delete": [], "unmanaged": [], "keypair_tasks": [], "changes": []}
    for pair in region["key_pairs"]:
        freed = _plan_free(plan, region, pair, taken[pair["name"]]) \
            if pair["name"] not in actual and taken.get(pair["name"]) else []
        _plan_key_pair(plan, region, pair, actual.get(pair["name"]))
        if freed and pair["instances"] is None:
            # Where the key pair is attached is not managed: the instances get it back once imported.
            plan["attach"].append({"name": pair["name"], "instance_ids": freed, "imported": True})
            plan["changes"].append(f"{region['region']}: attach {pair['name']} to {', '.join(freed)} again once imported"
                                   + ("; reboot them" if region["reboot"] else "; effective at their next restart"))
        if pair["instances"] is not None:
            _plan_holders(plan, region, pair, holder_of, wanted_holder, imported=pair["name"] not in actual)
    # One ecs_keypair task for each key pair that needs one; the module decides again itself.
    touched = set(plan["import"]) | set(plan["replace"]) | {entry["name"] for entry in plan["retag"]}
    plan["keypair_tasks"] = [{"name": pair["name"], "public_key": pair["public_key"], "tags": pair["tags"]}
                             for pair in region["key_pairs"] if pair["name"] in touched]
    desired_names = {pair["name"] for pair in region["key_pairs"]}
    for name in sorted(actual):
        if name not in desired_names and not any(fnmatch.fnmatchcase(name, p) for p in region["ignore"]):
            _plan_unlisted(plan, region, name, actual[name], wanted_holder)
    plan["drift"] = bool(plan["changes"])
    return plan


def _plan_free(plan: Dict[str, Any], region: Mapping[str, Any], pair: Mapping[str, Any],
               holders: Sequence[Mapping[str, Any]]) -> List[str]:
    """Free a name that instances of a deleted key pair still hold, so that the import can take it."""
    name, where = pair["name"], region["region"]
    ids = sorted(str(item.get("instance_id")) for item in holders)
    plan["free"].append({"name": name, "instance_ids": ids})
    plan["changes"].append(f"{where}: free the name {name}: detach it from {', '.join(ids)}, which still show it"
                           " (a key pair of that name was deleted while attached; ECS keeps the name taken until then)")
    return ids


def _plan_key_pair(plan: Dict[str, Any], region: Mapping[str, Any], pair: Mapping[str, Any],
                   current: Optional[Mapping[str, Any]]) -> None:
    """Import, replace or retag one desired key pair."""
    name, where = pair["name"], region["region"]
    if current is None:
        plan["import"].append(name)
        tags = f", tags {_tags_text(pair['tags'])}" if pair["tags"] else ""
        plan["changes"].append(f"{where}: import key pair {name} ({pair['fingerprint']}){tags}")
        return
    if current.get("public_key") != pair["identity"]:
        plan["replace"].append(name)
        before = current.get("fingerprint_sha256") or "unknown public key"
        plan["changes"].append(f"{where}: replace the public key of {name} ({before} -> {pair['fingerprint']});"
                               " its instances get the new key pair at their next restart")
    retag = _retag(current.get("tags") or {}, pair["tags"])
    if retag:
        plan["retag"].append(dict(name=name, **retag))
        plan["changes"].append(f"{where}: tags of {name}: {_retag_text(retag)}")


def _plan_holders(plan: Dict[str, Any], region: Mapping[str, Any], pair: Mapping[str, Any],
                  holder_of: Mapping[str, str], wanted_holder: Mapping[str, str], imported: bool) -> None:
    """Attach one key pair where the state lists it; detach (or report) it where it does not."""
    name, where = pair["name"], region["region"]
    missing = [i for i in pair["instances"] if holder_of.get(i) != name]
    if missing:
        plan["attach"].append({"name": name, "instance_ids": missing, "imported": imported})
        was = ", ".join(f"{i} (holds {holder_of[i]})" if i in holder_of else i for i in missing)
        plan["changes"].append(f"{where}: attach {name} to {was}"
                               + ("; reboot them" if region["reboot"] else "; effective at their next restart"))
    extra = sorted(i for i, holder in holder_of.items() if holder == name and i not in wanted_holder)
    if extra:
        key = "detach" if region["prune"] else "unlisted"
        plan[key].append({"name": name, "instance_ids": extra})
        verb = "detach" if region["prune"] else "left as is (prune: true detaches)"
        plan["changes"].append(f"{where}: {', '.join(extra)} hold(s) {name} but the state file does not list them: "
                               f"{verb}")


def _plan_unlisted(plan: Dict[str, Any], region: Mapping[str, Any], name: str, item: Mapping[str, Any],
                   wanted_holder: Mapping[str, str]) -> None:
    """A key pair of the account that the state does not list: delete it (prune) or report it."""
    where, fingerprint = region["region"], item.get("fingerprint_sha256")
    held = [str(i.get("instance_id")) for i in item.get("instances") or []
            if wanted_holder.get(str(i.get("instance_id"))) is None]
    held_text = f", held by {', '.join(held)}" if held else ""
    entry = {"name": name, "fingerprint": fingerprint, "instance_ids": held}
    if region["prune"]:
        plan["delete"].append(entry)
        plan["changes"].append(f"{where}: delete key pair {name} ({fingerprint}{held_text}), not in the state file;"
                               " detached from its instances first")
    else:
        plan["unmanaged"].append(entry)
        plan["changes"].append(f"{where}: key pair {name} ({fingerprint}{held_text}) is not in the state file: left"
                               " as is (prune: true deletes it)")


def _retag(current: Mapping[str, str], desired: Optional[Mapping[str, str]]) -> Dict[str, Any]:
    """{'set': ..., 'remove': ...} to make the tags exactly the desired ones; {} when they are."""
    to_set, to_remove = tag_changes(current, desired, purge=True)
    if not to_set and not to_remove:
        return {}
    return {"set": to_set, "remove": to_remove}


def _tags_text(tags: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


def _retag_text(retag: Mapping[str, Any]) -> str:
    parts = []
    if retag["set"]:
        parts.append("set " + _tags_text(retag["set"]))
    if retag["remove"]:
        parts.append("remove " + ", ".join(retag["remove"]))
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# Planning: the hosts


# The users into whose authorized_keys ECS writes the bound key pair's public key at every boot
# (root on Linux images; ecs-user on images that log in as ecs-user).
BOOT_KEY_USERS = ("root", "ecs-user")


def host_users(entries: Sequence[Mapping[str, Any]], entry_hosts: Sequence[Sequence[str]],
               boot_key_pairs: Optional[Mapping[str, Mapping[str, Any]]] = None) -> Dict[str, Any]:
    """The authorized_keys role's users for each host, merged over every entry that names it.

    A host in several entries gets the union of their keys for a user; the user is exclusive
    when any entry says so (the stricter reading wins); entries must agree on its file.

    ``boot_key_pairs``: host to the state's key pair of its instance. ECS writes that key pair's
    public key into the boot users' files at every start, so an exclusive boot user gets it as
    an implied key: without it, every restart would bring back a key the reconcile removes.
    """
    boot_key_pairs = boot_key_pairs or {}
    if len(entries) != len(entry_hosts):
        raise ValueError(f"expected the hosts of {len(entries)} entries, got {len(entry_hosts)}")
    per_host: Dict[str, Dict[Tuple[str, str], Dict[str, Any]]] = {}
    problems: List[str] = []
    unmatched: List[str] = []
    for index, (entry, hosts) in enumerate(zip(entries, entry_hosts)):
        if not hosts:
            unmatched.append(f"authorized_keys[{index}]: hosts {quote_input(entry['hosts'])} matches no host of the inventory")
        for host in hosts:
            users = per_host.setdefault(str(host), {})
            for position, user in enumerate(entry["users"]):
                # Where the state file names this user, for messages about it (the role ignores it).
                place = f"authorized_keys[{index}].users[{position}] ({user['name']})"
                merged = users.get((user["name"], user["path"] or ""))
                if merged is None:
                    users[(user["name"], user["path"] or "")] = {
                        "name": user["name"], "path": user["path"], "exclusive": user["exclusive"],
                        "allow_empty": user["allow_empty"],
                        "add": [_role_key(k) for k in user["keys"]], "remove": list(user["remove"]),
                        "entries": [place],
                        "_seen": {(k["identity"], k.get("options")) for k in user["keys"]},
                    }
                    continue
                merged["entries"].append(place)
                merged["exclusive"] = merged["exclusive"] or user["exclusive"]
                merged["allow_empty"] = merged["allow_empty"] or user["allow_empty"]
                for key in user["keys"]:
                    ident = (key["identity"], key.get("options"))
                    if ident not in merged["_seen"]:
                        merged["_seen"].add(ident)
                        merged["add"].append(_role_key(key))
                merged["remove"].extend(k for k in user["remove"] if k not in merged["remove"])
    result: Dict[str, List[Dict[str, Any]]] = {}
    implied: List[str] = []
    for host in sorted(per_host):
        out = []
        for user in per_host[host].values():
            if _imply_boot_key(user, boot_key_pairs.get(host)):
                pair = boot_key_pairs[host]
                implied.append(f"{host}: {user['name']} keeps key pair {pair['name']} ({pair['fingerprint']}), which ECS"
                               " writes into that file at every boot")
            wanted = {ident for ident, _options in user.pop("_seen")}
            if wanted & set(user["remove"]):
                problems.append(f"host {host}, user {user['name']}: a key is both wanted and removed by different entries")
            if user["exclusive"]:
                user["remove"] = []
            if user["path"] is None:
                user.pop("path")
            out.append(user)
        result[host] = out
    return {"hosts": result, "problems": problems, "warnings": unmatched, "implied": implied}


def _imply_boot_key(user: Dict[str, Any], pair: Optional[Mapping[str, Any]]) -> bool:
    """Add the instance's key pair to an exclusive boot user that does not list it; whether it did."""
    if not pair or not user["exclusive"] or user["name"] not in BOOT_KEY_USERS or user["path"] is not None:
        return False
    if any(ident == pair["identity"] for ident, _options in user["_seen"]):
        return False
    user["_seen"].add((pair["identity"], None))
    user["add"].append(pair["public_key"])
    return True


def _role_key(key: Mapping[str, Any]) -> Any:
    """A key as the authorized_keys role (and module) takes it."""
    if "options" not in key and "comment" not in key:
        return key["key"]
    out = {"key": key["key"]}
    for field in ("options", "comment"):
        if field in key:
            out[field] = key[field]
    return out


def host_report(results: Mapping[str, Any]) -> Dict[str, Any]:
    """Drift lines from the authorized_keys role's registered results, per host.

    A host whose result is missing, unreachable or failed was not checked: it is an error, never
    "no drift" (its drift is unknown).
    """
    changes: List[str] = []
    errors: List[str] = []
    for host in sorted(results):
        result = results[host]
        if not isinstance(result, Mapping) or not result:
            errors.append(f"{host}: not checked (no result: the host was not reached, or the run stopped before it)")
            continue
        if result.get("unreachable"):
            errors.append(f"{host}: unreachable, not checked: {_one_line(result.get('msg'))}")
            continue
        if result.get("failed"):
            errors.append(f"{host}: the authorized_keys role failed: {_failure_text(result)}")
            continue
        for item in result.get("results") or []:
            if not isinstance(item, Mapping) or not item.get("changed"):
                continue
            parts = []
            for field, verb in (("added", "add"), ("removed", "remove"), ("changed_keys", "rewrite")):
                if item.get(field):
                    parts.append(f"{verb} {', '.join(item[field])}")
            user = item.get("user") or "?"
            changes.append(f"{host}: authorized_keys of {user}: {'; '.join(parts) or 'rewrite'}")
    return {"changes": changes, "errors": errors, "drift": bool(changes or errors)}


def _failure_text(result: Mapping[str, Any]) -> str:
    """The messages of a failed result; of its failed items for a loop ('user: message')."""
    items = [item for item in result.get("results") or [] if isinstance(item, Mapping) and item.get("failed")]
    if items:
        return "; ".join(f"{item.get('user') or _item_user(item)}: {_one_line(item.get('msg'))}" for item in items)
    return _one_line(result.get("msg"))


def _item_user(item: Mapping[str, Any]) -> str:
    user = item.get("item")
    if isinstance(user, Mapping):
        return str(user.get("name", "?"))
    return str(user) if user is not None else "?"


def _one_line(message: Any) -> str:
    text = " ".join(str(message or "no message").split())
    return text if len(text) <= 300 else text[:297] + "..."

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


def plan_regions(regions: Sequence[Mapping[str, Any]], found: Sequence[Any]) -> Dict[str, Any]:
    """What would change in each region, given ecs_keypair_info's key_pairs for each (same order)."""
    if len(found) != len(regions):
        raise ValueError(f"expected the key pairs of {len(regions)} region(s), got {len(found)}")
    plans = [plan_region(region, pairs) for region, pairs in zip(regions, found)]
    return {
        "regions": plans,
        "changes": [line for plan in plans for line in plan["changes"]],
        "drift": any(plan["drift"] for plan in plans),
    }


def plan_region(region: Mapping[str, Any], key_pairs: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """Compare one region's desired key pairs with the key pairs (with instances) the account holds."""
    actual = {str(item["name"]): item for item in key_pairs}
    # Who holds what now, as the info module read it, and who should.
    holder_of: Dict[str, str] = {}
    for item in key_pairs:
        for instance in item.get("instances") or []:
            holder_of[str(instance.get("instance_id"))] = str(item["name"])
    wanted_holder = {i: pair["name"] for pair in region["key_pairs"] for i in (pair["instances"] or [])}
    plan: Dict[str, Any] = {"region": region["region"], "prune": region["prune"], "reboot": region["reboot"],
                            "import": [], "replace": [], "retag": [], "attach": [], "detach": [],
                            "unlisted": [], "delete": [], "unmanaged": [], "keypair_tasks": [], "changes": []}
    for pair in region["key_pairs"]:
        _plan_key_pair(plan, region, pair, actual.get(pair["name"]))
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


def host_users(entries: Sequence[Mapping[str, Any]], entry_hosts: Sequence[Sequence[str]]) -> Dict[str, Any]:
    """The authorized_keys role's users for each host, merged over every entry that names it.

    A host in several entries gets the union of their keys for a user; the user is exclusive
    when any entry says so (the stricter reading wins); entries must agree on its file.
    """
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
            for user in entry["users"]:
                merged = users.get((user["name"], user["path"] or ""))
                if merged is None:
                    users[(user["name"], user["path"] or "")] = {
                        "name": user["name"], "path": user["path"], "exclusive": user["exclusive"],
                        "allow_empty": user["allow_empty"],
                        "add": [_role_key(k) for k in user["keys"]], "remove": list(user["remove"]),
                        "_seen": {(k["identity"], k.get("options")) for k in user["keys"]},
                    }
                    continue
                merged["exclusive"] = merged["exclusive"] or user["exclusive"]
                merged["allow_empty"] = merged["allow_empty"] or user["allow_empty"]
                for key in user["keys"]:
                    ident = (key["identity"], key.get("options"))
                    if ident not in merged["_seen"]:
                        merged["_seen"].add(ident)
                        merged["add"].append(_role_key(key))
                merged["remove"].extend(k for k in user["remove"] if k not in merged["remove"])
    result: Dict[str, List[Dict[str, Any]]] = {}
    for host in sorted(per_host):
        out = []
        for user in per_host[host].values():
            wanted = {ident for ident, _options in user.pop("_seen")}
            if wanted & set(user["remove"]):
                problems.append(f"host {host}, user {user['name']}: a key is both wanted and removed by different entries")
            if user["exclusive"]:
                user["remove"] = []
            if user["path"] is None:
                user.pop("path")
            out.append(user)
        result[host] = out
    return {"hosts": result, "problems": problems, "warnings": unmatched}


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
    """Drift lines from the authorized_keys role's registered results, per host."""
    changes: List[str] = []
    errors: List[str] = []
    for host in sorted(results):
        result = results[host]
        if not isinstance(result, Mapping) or not result:
            errors.append(f"{host}: no result (unreachable, or the role failed)")
            continue
        if result.get("failed"):
            errors.append(f"{host}: the authorized_keys role failed: {result.get('msg', 'see above')}")
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

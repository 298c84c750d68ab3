# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the GitOps desired state - schema, checks and plan.

Runs on the controller only (playbooks/reconcile.yml through the reconcile_* filters). Three
steps, each a plain function of plain data so that it can be tested without Ansible:

* ``load_state`` reads the YAML text, refusing duplicate mapping keys (a YAML loader would
  silently keep the last one, and a key pair or user would vanish from the state unnoticed);
* ``validate_state`` checks every field and returns a normalised state, collecting every
  problem before failing, so that one run lists them all and nothing has been changed;
* ``plan_regions`` and ``host_users`` compare the state with what the account and the
  inventory hold and say what would change, in words a reviewer of a pull request can read.
"""

from __future__ import annotations

import fnmatch
import os
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
from ansible_collections.sshkeys.ecs.plugins.module_utils._keypair import (
    ACCEPTED_KEY_TYPES,
    KeypairError,
    validate_name,
    validate_tags,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._keypair_shape import whitespace_problem
from ansible_collections.sshkeys.ecs.plugins.module_utils._key_material import looks_like_private_key, quote_input
from ansible_collections.sshkeys.ecs.plugins.module_utils._openssh import SSHKeyError, parse_public_key
from ansible_collections.sshkeys.ecs.plugins.module_utils._regular_file import UnsafeFileError, read_regular

SCHEMA_VERSION = 1
TOP_KEYS = ("version", "regions", "authorized_keys")
REGION_KEYS = ("key_pairs", "prune", "ignore", "reboot")
KEY_PAIR_KEYS = ("name", "public_key", "public_key_file", "tags", "instances")
ENTRY_KEYS = ("hosts", "users")
USER_KEYS = ("name", "path", "exclusive", "allow_empty", "keys", "remove")
KEY_ITEM_KEYS = ("key", "options", "comment")
# Matched against the whole value (fullmatch): with re.match, '$' also matches before a final
# newline, so 'i-abc\n' would pass.
REGION_PATTERN = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")
INSTANCE_PATTERN = re.compile(r"i-[0-9a-z]{2,62}")
# The portable POSIX user name set, plus the '$' of machine accounts.
USER_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")
MAX_KEY_FILE = 64 * 1024


class StateError(SshKeysError):
    """The desired state is not usable. ``problems`` lists every finding, one line each."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s) in the desired state, nothing was changed:\n{lines}")


# ---------------------------------------------------------------------------------------------
# Reading


class _UniqueKeyLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
    """SafeLoader that refuses a mapping key given twice."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            continue  # unhashable keys: the constructor below reports them
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is given twice in one mapping", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_state(text: Any, source: str = "desired state") -> Any:
    """The YAML document in text. A private key anywhere in it is refused without quoting it."""
    text = str(text)
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # nosec B506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        # The YAML error may quote the offending text; a pasted private key must not leak through it.
        if looks_like_private_key(text):
            problem = "not valid YAML, and it holds private key material"
        raise StateError(source, [f"not valid YAML{where}: {problem}"]) from None


# ---------------------------------------------------------------------------------------------
# Checking


class _Checker:
    """Collects problems with their place in the document ('regions.cn-hangzhou.key_pairs[0].tags')."""

    def __init__(self, base_dir: str, read_file: Callable[[str], bytes]) -> None:
        self.base_dir = base_dir
        self.read_file = read_file
        self.problems: List[str] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}" if where else message)

    def mapping(self, value: Any, where: str, allowed: Sequence[str], required: Sequence[str] = ()) -> bool:
        if not isinstance(value, dict):
            self.add(where, f"must be a mapping, not {_kind(value)}")
            return False
        for key in value:
            if key not in allowed:
                self.add(where, f"unknown key {quote_input(str(key))} (allowed: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                self.add(where, f"{key} is required")
        return True

    def boolean(self, value: Any, where: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add(where, f"must be true or false, not {_kind(value)}")
            return default
        return value

    def string_list(self, value: Any, where: str) -> List[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(where, f"must be a list, not {_kind(value)}")
            return []
        out = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                self.add(f"{where}[{index}]", f"must be a non-empty string, not {_kind(item)}")
            else:
                out.append(item)
        return out

    def public_key(self, text: Any, where: str, ecs: bool) -> Optional[Any]:
        """A parsed public key; private keys and invalid lines are problems (never quoted)."""
        if not isinstance(text, str):
            self.add(where, f"must be a public key line, not {_kind(text)}")
            return None
        if looks_like_private_key(text):
            self.add(where, "holds a PRIVATE key; only public keys belong in the desired state "
                            "(use the .pub file; and treat the pasted private key as leaked)")
            return None
        try:
            key = parse_public_key(text)
        except SSHKeyError as exc:
            self.add(where, f"not a valid public key: {exc}")
            return None
        if ecs and key.key_type not in ACCEPTED_KEY_TYPES:
            self.add(where, f"key type {key.key_type} cannot be imported into ECS")
            return None
        return key

    def key_file(self, path: Any, where: str) -> Optional[str]:
        if not isinstance(path, str) or not path:
            self.add(where, f"must be a file path, not {_kind(path)}")
            return None
        full = path if os.path.isabs(path) else os.path.join(self.base_dir, path)
        try:
            raw = self.read_file(full)
        except UnsafeFileError as exc:
            if exc.reason == "size":
                self.add(where, f"{path} is larger than 64 KiB; it is not a public key")
            elif exc.reason == "missing":
                self.add(where, f"cannot read {path}: No such file or directory")
            else:
                self.add(where, f"{path} {str(exc)[len(full) + 1:]}")
            return None
        except OSError as exc:
            self.add(where, f"cannot read {path}: {exc.strerror or type(exc).__name__}")
            return None
        if len(raw) > MAX_KEY_FILE:
            self.add(where, f"{path} is larger than 64 KiB; it is not a public key")
            return None
        text = raw.decode("utf-8", errors="replace")
        lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        if looks_like_private_key(text):
            self.add(where, f"{path} holds a PRIVATE key; point to the public key (.pub) instead")
            return None
        if len(lines) != 1:
            self.add(where, f"{path} must hold exactly one public key line, not {len(lines)}")
            return None
        return lines[0]


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _scan_private(value: Any, where: str, problems: List[str]) -> None:
    """Private key material anywhere in the document (a tag, a comment field, ...)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _scan_private(item, f"{where}.{key}" if where else str(key), problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _scan_private(item, f"{where}[{index}]", problems)
    elif isinstance(value, str) and looks_like_private_key(value):
        problems.append(f"{where}: holds a PRIVATE key; only public keys belong in the desired state "
                        "(use the .pub file; and treat the pasted private key as leaked)")


def _read_bytes(path: str) -> bytes:
    # Only a regular file is read (a FIFO would block the run forever), one byte over the limit
    # at most, so that the caller can say the file is too large.
    return read_regular(path, path, limit=MAX_KEY_FILE + 1)


def _whitespace_hint(value: str) -> str:
    problem = whitespace_problem(value)
    return f" (it {problem})" if problem else ""


def validate_state(doc: Any, base_dir: str = ".", source: str = "desired state",
                   read_file: Callable[[str], bytes] = _read_bytes) -> Dict[str, Any]:
    """The normalised desired state, or StateError listing every problem found."""
    private: List[str] = []
    _scan_private(doc, "", private)
    if private:
        # Nothing else is checked: the other messages could echo parts of the pasted key.
        raise StateError(source, private)
    check = _Checker(base_dir, read_file)
    if doc is None:
        raise StateError(source, ["the file is empty"])
    if not check.mapping(doc, "", TOP_KEYS, ("version",)):
        raise StateError(source, check.problems)
    if "version" in doc and doc["version"] != SCHEMA_VERSION:
        check.add("version", f"must be {SCHEMA_VERSION} (the only format this collection reads), not {doc['version']!r}")
    regions = _regions(check, doc.get("regions"))
    entries = _entries(check, doc.get("authorized_keys"))
    if check.problems:
        raise StateError(source, check.problems)
    return {"version": SCHEMA_VERSION, "regions": regions, "authorized_keys": entries}


def _regions(check: _Checker, value: Any) -> List[Dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        check.add("regions", f"must be a mapping of region ids, not {_kind(value)}")
        return []
    out = []
    for region, body in value.items():
        where = f"regions.{region}"
        if not isinstance(region, str) or not REGION_PATTERN.fullmatch(region):
            check.add(where, "is not a region id like cn-hangzhou")
            continue
        if body is None:
            body = {}
        if not check.mapping(body, where, REGION_KEYS):
            continue
        # Problems are listed in the order of the file's usual layout: options, then key pairs.
        prune = check.boolean(body.get("prune"), f"{where}.prune", False)
        reboot = check.boolean(body.get("reboot"), f"{where}.reboot", False)
        ignore = check.string_list(body.get("ignore"), f"{where}.ignore")
        key_pairs = _key_pairs(check, body.get("key_pairs"), where)
        for pair in key_pairs:
            if any(fnmatch.fnmatchcase(pair["name"], pattern) for pattern in ignore):
                check.add(f"{where}.ignore", f"key pair {pair['name']} is in the state file and matches an ignore pattern")
        out.append({"region": region, "prune": prune, "reboot": reboot, "ignore": ignore, "key_pairs": key_pairs})
    return out


def _key_pairs(check: _Checker, value: Any, region_where: str) -> List[Dict[str, Any]]:
    where = f"{region_where}.key_pairs"
    if value is None:
        return []
    if not isinstance(value, list):
        check.add(where, f"must be a list, not {_kind(value)}")
        return []
    out: List[Dict[str, Any]] = []
    names: Dict[str, int] = {}
    holders: Dict[str, str] = {}
    for index, item in enumerate(value):
        here = f"{where}[{index}]"
        if not check.mapping(item, here, KEY_PAIR_KEYS, ("name",)):
            continue
        name = item.get("name")
        if "name" in item:
            try:
                validate_name(name if isinstance(name, str) else "", "name")
            except KeypairError as exc:
                check.add(here, str(exc) if isinstance(name, str) else f"name must be a string, not {_kind(name)}")
                name = None
        if isinstance(name, str) and name:
            here = f"{where}[{index}] ({name})"
            if name in names:
                check.add(here, f"key pair {name} is listed twice (also item {names[name]})")
            names.setdefault(name, index)
        line = None
        if ("public_key" in item) == ("public_key_file" in item):
            check.add(here, "give exactly one of public_key and public_key_file")
        elif "public_key" in item:
            line = item["public_key"]
        else:
            line = check.key_file(item["public_key_file"], f"{here}.public_key_file")
        key = check.public_key(line, f"{here}.public_key", ecs=True) if line is not None else None
        tags = None
        if item.get("tags") is not None:
            if not isinstance(item["tags"], dict):
                check.add(f"{here}.tags", f"must be a mapping, not {_kind(item['tags'])}")
            else:
                try:
                    tags = validate_tags(item["tags"])
                except KeypairError as exc:
                    check.add(f"{here}.tags", str(exc))
        instances = None
        if "instances" in item:
            instances = check.string_list(item["instances"], f"{here}.instances")
            for instance_id in instances:
                if not INSTANCE_PATTERN.fullmatch(instance_id):
                    check.add(f"{here}.instances", f"{quote_input(instance_id)} is not an instance id like i-bp1..."
                              + _whitespace_hint(instance_id))
                elif instance_id in holders:
                    # An instance holds at most one key pair: the state would contradict itself.
                    check.add(f"{here}.instances", f"{instance_id} is also listed under key pair {holders[instance_id]}"
                                                   " (an instance holds one key pair at most)")
                else:
                    holders[instance_id] = str(name)
        if name and key is not None:
            out.append({"name": name, "public_key": key.line(), "identity": key.identity(),
                        "fingerprint": key.fingerprint("sha256"), "tags": tags, "instances": instances})
    return out


def _entries(check: _Checker, value: Any) -> List[Dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        check.add("authorized_keys", f"must be a list, not {_kind(value)}")
        return []
    out = []
    for index, entry in enumerate(value):
        where = f"authorized_keys[{index}]"
        if not check.mapping(entry, where, ENTRY_KEYS, ("hosts", "users")):
            continue
        hosts = entry.get("hosts")
        if not isinstance(hosts, str) or not hosts.strip():
            check.add(f"{where}.hosts", "must be a host pattern (a group or host name)")
        users = _users(check, entry.get("users"), where)
        out.append({"hosts": hosts, "users": users})
    return out


def _users(check: _Checker, value: Any, entry_where: str) -> List[Dict[str, Any]]:
    where = f"{entry_where}.users"
    if not isinstance(value, list) or not value:
        check.add(where, f"must be a non-empty list, not {_kind(value)}")
        return []
    out = []
    seen: Dict[Tuple[str, str], int] = {}
    for index, user in enumerate(value):
        here = f"{where}[{index}]"
        if not check.mapping(user, here, USER_KEYS, ("name",)):
            continue
        name = user.get("name")
        if not isinstance(name, str) or not USER_PATTERN.fullmatch(name):
            check.add(f"{here}.name", "must be a user name (letters, digits, '_', '.', '-')")
            continue
        here = f"{where}[{index}] ({name})"
        path = user.get("path")
        if path is not None and (not isinstance(path, str) or not path):
            check.add(f"{here}.path", "must be a file path")
            path = None
        ident = (name, path or "")
        if ident in seen:
            check.add(here, f"user {name} is listed twice for these hosts (also item {seen[ident]})")
        seen.setdefault(ident, index)
        exclusive = check.boolean(user.get("exclusive"), f"{here}.exclusive", False)
        keys = _user_keys(check, user.get("keys"), f"{here}.keys")
        remove = []
        identities = {item["identity"] for item in keys}
        for position, text in enumerate(user.get("remove") or []):
            key = check.public_key(text, f"{here}.remove[{position}]", ecs=False)
            if key is None:
                continue
            if key.identity() in identities:
                check.add(f"{here}.remove[{position}]", f"{key.fingerprint()} is also in keys")
            remove.append(key.identity())
        if user.get("remove") is not None and not isinstance(user.get("remove"), list):
            check.add(f"{here}.remove", "must be a list of public keys")
        if exclusive and remove:
            check.add(here, "remove is pointless with exclusive: true (every key not in keys is removed)")
        allow_empty = check.boolean(user.get("allow_empty"), f"{here}.allow_empty", False)
        if exclusive and not allow_empty and not user.get("keys"):
            check.add(here, "exclusive: true with no keys would remove every key from the file; set "
                            "allow_empty: true if that is meant")
        out.append({"name": name, "path": path, "exclusive": exclusive, "allow_empty": allow_empty, "keys": keys,
                    "remove": remove})
    return out


def _user_keys(check: _Checker, value: Any, where: str) -> List[Dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        check.add(where, f"must be a list, not {_kind(value)}")
        return []
    out = []
    seen: Dict[Tuple[str, Optional[str]], int] = {}
    for index, item in enumerate(value):
        here = f"{where}[{index}]"
        if isinstance(item, dict):
            if not check.mapping(item, here, KEY_ITEM_KEYS, ("key",)):
                continue
            for field in ("options", "comment"):
                if item.get(field) is not None and not isinstance(item[field], str):
                    check.add(f"{here}.{field}", "must be a string")
            text, options, comment = item.get("key"), item.get("options"), item.get("comment")
        else:
            text, options, comment = item, None, None
        key = check.public_key(text, here, ecs=False)
        if key is None:
            continue
        ident = (key.identity(), options)
        if ident in seen:
            check.add(here, f"{key.fingerprint()} is listed twice (also item {seen[ident]})")
            continue
        seen[ident] = index
        entry: Dict[str, Any] = {"key": key.line(), "identity": key.identity(), "fingerprint": key.fingerprint()}
        if isinstance(options, str):
            entry["options"] = options
        if isinstance(comment, str):
            entry["comment"] = comment
        out.append(entry)
    return out


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
    name_of_region = region["region"]
    actual = {str(item["name"]): item for item in key_pairs}
    # Who holds what now, as the info module read it.
    holder_of: Dict[str, str] = {}
    for item in key_pairs:
        for instance in item.get("instances") or []:
            holder_of[str(instance.get("instance_id"))] = str(item["name"])
    wanted_holder = {i: pair["name"] for pair in region["key_pairs"] for i in (pair["instances"] or [])}
    plan: Dict[str, Any] = {"region": name_of_region, "prune": region["prune"], "reboot": region["reboot"],
                            "import": [], "replace": [], "retag": [], "attach": [], "detach": [],
                            "unlisted": [], "delete": [], "unmanaged": [], "keypair_tasks": [], "changes": []}
    say = plan["changes"].append
    for pair in region["key_pairs"]:
        name = pair["name"]
        current = actual.get(name)
        if current is None:
            plan["import"].append(name)
            tags = f", tags {_tags_text(pair['tags'])}" if pair["tags"] else ""
            say(f"{name_of_region}: import key pair {name} ({pair['fingerprint']}){tags}")
        else:
            if current.get("public_key") != pair["identity"]:
                plan["replace"].append(name)
                before = current.get("fingerprint_sha256") or "unknown public key"
                say(f"{name_of_region}: replace the public key of {name} ({before} -> {pair['fingerprint']});"
                    " its instances get the new key pair at their next restart")
            retag = _retag(current.get("tags") or {}, pair["tags"])
            if retag:
                plan["retag"].append(dict(name=name, **retag))
                say(f"{name_of_region}: tags of {name}: {_retag_text(retag)}")
        if pair["instances"] is not None:
            missing = [i for i in pair["instances"] if holder_of.get(i) != name]
            if missing:
                plan["attach"].append({"name": name, "instance_ids": missing, "imported": current is None})
                was = ", ".join(f"{i} (holds {holder_of[i]})" if i in holder_of else i for i in missing)
                say(f"{name_of_region}: attach {name} to {was}"
                    + ("; reboot them" if region["reboot"] else "; effective at their next restart"))
            extra = sorted(i for i, holder in holder_of.items() if holder == name and i not in wanted_holder)
            if extra:
                key = "detach" if region["prune"] else "unlisted"
                plan[key].append({"name": name, "instance_ids": extra})
                verb = "detach" if region["prune"] else "left as is (prune: true detaches)"
                say(f"{name_of_region}: {', '.join(extra)} hold(s) {name} but the state file does not list them: {verb}")
    # One ecs_keypair task for each key pair that needs one; the module decides again itself.
    touched = set(plan["import"]) | set(plan["replace"]) | {entry["name"] for entry in plan["retag"]}
    plan["keypair_tasks"] = [{"name": pair["name"], "public_key": pair["public_key"], "tags": pair["tags"]}
                             for pair in region["key_pairs"] if pair["name"] in touched]
    desired_names = {pair["name"] for pair in region["key_pairs"]}
    for name in sorted(actual):
        if name in desired_names or any(fnmatch.fnmatchcase(name, p) for p in region["ignore"]):
            continue
        item = actual[name]
        held = [str(i.get("instance_id")) for i in item.get("instances") or []
                if wanted_holder.get(str(i.get("instance_id"))) is None]
        held_text = f", held by {', '.join(held)}" if held else ""
        entry = {"name": name, "fingerprint": item.get("fingerprint_sha256"), "instance_ids": held}
        if region["prune"]:
            plan["delete"].append(entry)
            say(f"{name_of_region}: delete key pair {name} ({item.get('fingerprint_sha256')}{held_text}),"
                " not in the state file; detached from its instances first")
        else:
            plan["unmanaged"].append(entry)
            say(f"{name_of_region}: key pair {name} ({item.get('fingerprint_sha256')}{held_text}) is not in the"
                " state file: left as is (prune: true deletes it)")
    plan["drift"] = bool(plan["changes"])
    return plan


def _retag(current: Mapping[str, str], desired: Optional[Mapping[str, str]]) -> Dict[str, Any]:
    if desired is None:
        return {}
    to_set = {k: v for k, v in desired.items() if current.get(k) != v}
    to_remove = sorted(k for k in current if k not in desired)
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

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Private to the sshkeys.ecs collection: the GitOps desired state - reading and checking it.

Runs on the controller only (playbooks/reconcile.yml through the reconcile_state filter), as
plain functions of plain data so that it can be tested without Ansible:

* ``load_state`` reads the YAML text, refusing duplicate mapping keys (a YAML loader would
  silently keep the last one, and a key pair or user would vanish from the state unnoticed);
* ``validate_state`` checks every field and returns a normalised state, collecting every
  problem before failing, so that one run lists them all and nothing has been changed.

The key pair checks are the modules' own (``_ecs_validate``); nothing here loads the API client.
What would change is ``_reconcile_plan``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import yaml

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_validate import (
    ACCEPTED_KEY_TYPES,
    INSTANCE_ID_PATTERN,
    REGION_PATTERN,
    KeypairError,
    validate_name,
    validate_tags,
    whitespace_problem,
)
from ansible_collections.sshkeys.ecs.plugins.module_utils._errors import SshKeysError
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

    def given(self, value: Any, where: str, kind: type = list, what: str = "a list") -> bool:
        """Whether an optional field is there with the right type (a wrong one is a problem)."""
        if value is None:
            return False
        if not isinstance(value, kind):
            self.add(where, f"must be {what}, not {_kind(value)}")
            return False
        return True

    def boolean(self, value: Any, where: str, default: bool) -> bool:
        return value if self.given(value, where, bool, "true or false") else default

    def string_list(self, value: Any, where: str) -> List[str]:
        if not self.given(value, where):
            return []
        out = []
        for index, item in enumerate(value):
            if isinstance(item, _Withheld):
                continue
            if not isinstance(item, str) or not item:
                self.add(f"{where}[{index}]", f"must be a non-empty string, not {_kind(item)}")
            else:
                out.append(item)
        return out

    def public_key(self, text: Any, where: str, ecs: bool) -> Optional[Any]:
        """A parsed public key; private keys and invalid lines are problems (never quoted)."""
        if isinstance(text, _Withheld):
            return None  # a pasted private key, reported by _scan_private
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


class _Withheld(str):
    """Stands in for a value that held a private key: already reported, never checked or quoted again."""


def _withhold_private(value: Any) -> Any:
    """A copy of the document with every string that holds a private key replaced by _Withheld()."""
    if isinstance(value, dict):
        return {key: _withhold_private(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_withhold_private(item) for item in value]
    if isinstance(value, str) and looks_like_private_key(value):
        return _Withheld()
    return value


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
    check = _Checker(base_dir, read_file)
    # Every problem goes into one failure, a pasted private key's included; the values that hold
    # one are withheld from the other checks, so that no other message can quote a part of it.
    check.problems.extend(private)
    doc = _withhold_private(doc)
    if doc is None:
        raise StateError(source, ["the file is empty"])
    if isinstance(doc, _Withheld) or not check.mapping(doc, "", TOP_KEYS, ("version",)):
        raise StateError(source, check.problems)
    if "version" in doc and doc["version"] != SCHEMA_VERSION:
        check.add("version", f"must be {SCHEMA_VERSION} (the only format this collection reads), not {doc['version']!r}")
    regions = _regions(check, doc.get("regions"))
    entries = _entries(check, doc.get("authorized_keys"))
    if check.problems:
        raise StateError(source, check.problems)
    return {"version": SCHEMA_VERSION, "regions": regions, "authorized_keys": entries}


def _regions(check: _Checker, value: Any) -> List[Dict[str, Any]]:
    if not check.given(value, "regions", dict, "a mapping of region ids"):
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
    if not check.given(value, where):
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
        instances = _instances(check, item["instances"], f"{here}.instances", name, holders) \
            if "instances" in item else None
        if name and key is not None:
            out.append({"name": name, "public_key": key.line(), "identity": key.identity(),
                        "fingerprint": key.fingerprint("sha256"), "tags": tags, "instances": instances})
    return out


def _instances(check: _Checker, value: Any, where: str, name: Any, holders: Dict[str, str]) -> List[str]:
    """The instance ids of one key pair; holders records which key pair lists each id."""
    instances = check.string_list(value, where)
    for instance_id in instances:
        if not INSTANCE_ID_PATTERN.fullmatch(instance_id):
            check.add(where, f"{quote_input(instance_id)} is not an instance id like i-bp1..."
                      + _whitespace_hint(instance_id))
        elif instance_id in holders:
            # An instance holds at most one key pair: the state would contradict itself.
            check.add(where, f"{instance_id} is also listed under key pair {holders[instance_id]}"
                             " (an instance holds one key pair at most)")
        else:
            holders[instance_id] = str(name)
    return instances


def _entries(check: _Checker, value: Any) -> List[Dict[str, Any]]:
    if not check.given(value, "authorized_keys"):
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
    if not check.given(value, where):
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

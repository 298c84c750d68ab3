# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Part B of the reliability suite (faults, crashes, emulator security, load): independent
readings of the emulator's state and a pool of raw signed clients.

Everything here talks to the emulator with the emulator tests' own raw signers
(emulator/tests/support.py: v1 and v3 signing checked against the official SDKs there) or the
official SDK, never with the collection's client: the reading that judges the modules must not
share their code.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Set

from relsupport import ROOT

sys.path.insert(0, str(ROOT / "emulator" / "tests"))

# Re-exported for the part B tests, so they all reach the emulator tests' helpers one way.
# pylint: disable=wrong-import-position,unused-import
from support import SDKS, raw, v1_call, v1_query, v3_headers  # noqa: E402,F401

# Part B owns 127.0.16.0/24: virtual instances of the fault tests take addresses from it (they bind
# nothing, but the emulator hands out one address per instance and refuses when the pool is empty).
PART_B_POOL = "127.0.16.0/24"
QUOTA = 500  # key pairs per account and region (shared/API.md)


def identity(public_line: Optional[str]) -> Optional[str]:
    """'type base64' of a public key line: what the comparison is about (no comment, no spaces)."""
    if not public_line:
        return None
    parts = public_line.split()
    return " ".join(parts[:2]) if len(parts) >= 2 else None


def public_of_private(path: Path) -> Optional[str]:
    """The public key of a private key file as ssh-keygen reads it (independent of the collection)."""
    proc = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, timeout=30)
    return identity(proc.stdout) if proc.returncode == 0 else None


def key_pairs(emu: Any, account: int = 0, region: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every key pair of the account and region, all pages, with public keys (raw v1 requests)."""
    found: List[Dict[str, Any]] = []
    page = 1
    while True:
        status, body = v1_call(emu.port, emu.key(account), {
            "Action": "DescribeKeyPairs", "RegionId": region or emu.region, "PageSize": "50",
            "PageNumber": str(page), "IncludePublicKey": "true"})
        assert status == 200, body
        found += body["KeyPairs"]["KeyPair"]
        if page * 50 >= int(body["TotalCount"]):
            return found
        page += 1


def key_pair_count(emu: Any, account: int = 0, region: Optional[str] = None) -> int:
    status, body = v1_call(emu.port, emu.key(account), {
        "Action": "DescribeKeyPairs", "RegionId": region or emu.region, "PageSize": "1"})
    assert status == 200, body
    return int(body["TotalCount"])


def key_pairs_by_name(emu: Any, account: int = 0) -> Dict[str, Dict[str, Any]]:
    """Name -> key pair; fails on a duplicated name (the API promises one per name)."""
    items = key_pairs(emu, account)
    names = [item["KeyPairName"] for item in items]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"duplicated key pairs: {duplicates}"
    return {item["KeyPairName"]: item for item in items}


def run_instances(emu: Any, amount: int) -> List[str]:
    """Virtual Linux instances, Running when this returns."""
    ids: List[str] = []
    while len(ids) < amount:
        batch = min(100, amount - len(ids))
        status, body = v1_call(emu.port, emu.key(0), {
            "Action": "RunInstances", "RegionId": emu.region, "ImageId": "debian_12", "Amount": str(batch)})
        assert status == 200, body
        ids += body["InstanceIdSets"]["InstanceIdSet"]
    emu.wait_idle()
    return ids


def instance_key_pairs(emu: Any, ids: List[str]) -> Dict[str, str]:
    """Instance id -> the key pair it holds ('' for none)."""
    out: Dict[str, str] = {}
    for start in range(0, len(ids), 100):
        status, body = v1_call(emu.port, emu.key(0), {
            "Action": "DescribeInstances", "RegionId": emu.region, "PageSize": "100",
            "InstanceIds": json.dumps(ids[start:start + 100])})
        assert status == 200, body
        for item in body["Instances"]["Instance"]:
            out[item["InstanceId"]] = item.get("KeyPairName") or ""
    return out


def log_since(emu: Any, mark: int) -> List[Dict[str, Any]]:
    return emu.entries_since(mark)


# -- a pool of raw clients creating and deleting key pairs (load and kill -9 tests) ----------------

TAGS = {"Tag.1.Key": "suite", "Tag.1.Value": "reliability", "Tag.2.Key": "part", "Tag.2.Value": "b"}
EXPECTED_TAGS = {"suite": "reliability", "part": "b"}


def tags_of(item: Dict[str, Any]) -> Dict[str, str]:
    return {tag["TagKey"]: tag["TagValue"] for tag in (item.get("Tags") or {}).get("Tag") or []}


@dataclass
class Ledger:
    """What the clients were told: acknowledged creates and deletes, and the answers they got."""

    created: Set[str] = field(default_factory=set)   # acknowledged and not deleted since
    deleted: Set[str] = field(default_factory=set)   # acknowledged deletes
    uncertain: Set[str] = field(default_factory=set)  # no answer: the request may or may not have landed
    counts: Dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n


class ClientPool:
    """N threads, each its own client (own connection per request, own names), that create key
    pairs with two tags and delete their own older ones until stop() is called.

    Each client keeps at most `hold` key pairs; the account starts from `prefill`, so the clients
    together push against the quota and some creations are refused with QuotaExceed.KeyPair.
    """

    def __init__(self, emu: Any, clients: int, hold: int, public_key: str, seed: int = 1,
                 tag: str = "ld") -> None:
        self.emu = emu
        self.clients = clients
        self.hold = hold
        self.public_key = public_key
        self.seed = seed
        self.tag = tag
        self.ledger = Ledger()
        self.stop_event = threading.Event()
        self.threads: List[threading.Thread] = []

    def start(self) -> "ClientPool":
        for n in range(self.clients):
            thread = threading.Thread(target=self._client, args=(n,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self) -> Ledger:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(120)
        return self.ledger

    def _call(self, params: Dict[str, str]) -> Optional[tuple]:
        try:
            return v1_call(self.emu.port, self.emu.key(0), dict(params, RegionId=self.emu.region))
        except (OSError, ValueError):
            return None  # no answer (connection refused or reset, a kill -9): not acknowledged

    def _client(self, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        mine: List[str] = []
        i = 0
        ledger = self.ledger
        while not self.stop_event.is_set():
            if len(mine) < self.hold and (not mine or rng.random() < 0.6):
                i += 1
                name = f"{self.tag}-{n}-{i}"
                params = dict(TAGS, Action="ImportKeyPair", KeyPairName=name, PublicKeyBody=self.public_key)
                answer = self._call(params)
                if answer is None:
                    with ledger.lock:
                        ledger.uncertain.add(name)
                    ledger.count("no answer")
                    time.sleep(0.05)
                    continue
                status, body = answer
                if status == 200:
                    with ledger.lock:
                        ledger.created.add(name)
                    mine.append(name)
                    ledger.count("creates acknowledged")
                elif body and body.get("Code") == "QuotaExceed.KeyPair":
                    ledger.count("creates refused by the quota")
                else:
                    ledger.count(f"create answered {status} {(body or {}).get('Code')}")
            else:
                name = mine.pop(rng.randrange(len(mine)))
                answer = self._call({"Action": "DeleteKeyPairs", "KeyPairNames": json.dumps([name])})
                if answer is None:
                    with ledger.lock:
                        ledger.created.discard(name)
                        ledger.uncertain.add(name)
                    ledger.count("no answer")
                    time.sleep(0.05)
                    continue
                status, body = answer
                if status == 200:
                    with ledger.lock:
                        ledger.created.discard(name)
                        ledger.deleted.add(name)
                    ledger.count("deletes acknowledged")
                else:
                    mine.append(name)
                    ledger.count(f"delete answered {status} {(body or {}).get('Code')}")


def check_ledger(emu: Any, ledger: Ledger, names: Iterable[str]) -> Dict[str, Any]:
    """Compare what the clients were told with what the emulator holds now.

    names: every key pair that exists (from key_pairs_by_name). Returns the problems found.
    """
    present = set(names)
    return {
        "acknowledged but missing": sorted(ledger.created - present),
        "deleted but present": sorted(ledger.deleted & present),
    }

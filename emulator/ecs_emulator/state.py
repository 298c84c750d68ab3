"""The emulator's state: one SQLite file, every API request one transaction.

WAL journal with synchronous=FULL: a request is acknowledged only after its transaction is on
disk, so a kill -9 at any moment loses no acknowledged request and leaves no half-applied one.
One connection guarded by one lock: the work inside a transaction is microseconds, and a single
writer makes limits such as the key pair quota exact under concurrent requests.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from typing import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keypairs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
    id TEXT NOT NULL, public_key TEXT NOT NULL, key_type TEXT NOT NULL, fingerprint TEXT NOT NULL,
    resource_group TEXT NOT NULL, created TEXT NOT NULL,
    UNIQUE (account, region, name)
);
CREATE TABLE IF NOT EXISTS keypair_tags (
    account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
    tag_key TEXT NOT NULL, tag_value TEXT NOT NULL,
    PRIMARY KEY (account, region, name, tag_key)
);
CREATE TABLE IF NOT EXISTS instances (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE, account TEXT NOT NULL, region TEXT NOT NULL,
    name TEXT NOT NULL, image_id TEXT NOT NULL, instance_type TEXT NOT NULL,
    os_type TEXT NOT NULL, status TEXT NOT NULL, address TEXT NOT NULL UNIQUE,
    key_pair_name TEXT, public_key TEXT, password TEXT, password_login INTEGER NOT NULL,
    resource_group TEXT NOT NULL, created TEXT NOT NULL, generation INTEGER NOT NULL DEFAULT 0,
    virtual INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS instances_keypair ON instances (account, region, key_pair_name);
"""


class State:
    """The SQLite file and the lock that serialises transactions on it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """A state file written before a column existed gets it, with its default."""
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(instances)")}
        if "virtual" not in columns:
            # 1: a row only, even when the backend runs containers (ecs-emulator instances create --virtual).
            self._db.execute("ALTER TABLE instances ADD COLUMN virtual INTEGER NOT NULL DEFAULT 0")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed (durably) on success, rolled back on any exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read (no write, so no fsync)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("ROLLBACK")

    def meta_get(self, key: str) -> str | None:
        with self.read() as db:
            row = db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return row["v"] if row else None

    def meta_set_default(self, key: str, value: str) -> str:
        """Stores value under key unless one is there; returns the stored value."""
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)", (key, value))
            return db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()["v"]

    def close(self) -> None:
        with self._lock:
            self._db.close()

"""Instance status transitions, carried out by workers after the API's transaction committed.

An API call moves an instance into a transient status (Pending, Starting, Stopping), bumps its
generation and queues a job. The job waits the configured transition time, calls the backend
(boot or halt) and then, if nothing newer happened to the instance meanwhile (same generation),
commits the final status. So Running is reached only after boot() returned, and API calls never
wait for containers.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .backend import BootSpec, InstanceBackend
from .state import State

log = logging.getLogger("ecs_emulator.lifecycle")


def boot_spec(row, ssh_port: int) -> BootSpec:
    return BootSpec(instance_id=row["id"], address=row["address"], ssh_port=ssh_port,
                    os_type=row["os_type"], public_key=row["public_key"], password=row["password"],
                    password_login=bool(row["password_login"]))


class Lifecycle:
    def __init__(self, state: State, backend: InstanceBackend, ssh_port: int, delay: float, workers: int = 4) -> None:
        self.state = state
        self.backend = backend
        self.ssh_port = ssh_port
        self.delay = delay
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="instance")
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._pending = 0
        self._pending_cv = threading.Condition()

    def _lock_for(self, instance_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(instance_id, threading.Lock())

    def submit(self, kind: str, instance_id: str, generation: int) -> None:
        """kind: 'boot' (-> Running), 'halt' (-> Stopped) or 'destroy'. Call after the commit."""
        with self._pending_cv:
            self._pending += 1
        self._pool.submit(self._run, kind, instance_id, generation)

    def _run(self, kind: str, instance_id: str, generation: int) -> None:
        try:
            if kind != "destroy" and self.delay > 0:
                time.sleep(self.delay)
            with self._lock_for(instance_id):
                if kind == "destroy":
                    self.backend.destroy(instance_id)
                    return
                with self.state.read() as db:
                    row = db.execute("SELECT * FROM instances WHERE id = ?", (instance_id,)).fetchone()
                if row is None or row["generation"] != generation:
                    return  # deleted or superseded by a newer transition
                final = "Running" if kind == "boot" else "Stopped"
                try:
                    # A virtual instance is a row only, whatever the backend: nothing to start or stop.
                    if kind == "boot" and not row["virtual"]:
                        self.backend.boot(boot_spec(row, self.ssh_port))
                    elif kind != "boot" and not row["virtual"]:
                        self.backend.halt(instance_id)
                except Exception as exc:  # a backend failure must not kill the worker
                    log.error("instance %s: backend %s failed: %s", instance_id, kind, exc.__class__.__name__)
                    final = "Stopped"
                with self.state.tx() as db:
                    db.execute("UPDATE instances SET status = ? WHERE id = ? AND generation = ?",
                               (final, instance_id, generation))
        finally:
            with self._pending_cv:
                self._pending -= 1
                self._pending_cv.notify_all()

    def recover(self) -> None:
        """At start: reconcile the backend with the state, then finish interrupted transitions."""
        with self.state.read() as db:
            rows = db.execute("SELECT * FROM instances").fetchall()
        running = [boot_spec(r, self.ssh_port) for r in rows if r["status"] == "Running" and not r["virtual"]]
        try:
            self.backend.reconcile(running, {r["id"] for r in rows})
        except Exception as exc:  # the API must still come up; the backend said what failed
            log.error("reconcile failed: %s", exc)
        for r in rows:
            if r["status"] in ("Pending", "Starting"):
                self.submit("boot", r["id"], r["generation"])
            elif r["status"] == "Stopping":
                self.submit("halt", r["id"], r["generation"])

    def wait_idle(self, timeout: float) -> bool:
        with self._pending_cv:
            return self._pending_cv.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

"""Real instances: each Linux instance is a podman container running sshd on its own loopback address.

The container is created from the project's instance image (tools/instance-image.sh) once, and
then only stopped and started, so what users change inside it (keys added to authorized_keys,
packages) survives reboots, as on a real instance. Its boot configuration (bound public key,
password login, password) is a per-instance directory on the host, mounted read-only at
/etc/ecs-instance; the image's boot script applies it at every start, which is what makes a key
pair attached while the instance runs take effect only at the next reboot.

Windows instances stay virtual: no container, every call is a no-op for them.

close() leaves containers as they are: a cloud's instances keep running when its API is down,
and the next start reconciles them with the state. purge() (or remove_on_close=True) removes
every container of this state, for tests and throwaway runs.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .backend import BootSpec, InstanceBackend

log = logging.getLogger("ecs_emulator.podman")

IMAGE = "localhost/sshkeys-ecs-instance:latest"
LABEL_STATE = "io.github.sshkeys-ecs.emulator.state"
LABEL_INSTANCE = "io.github.sshkeys-ecs.emulator.instance"
LABEL_ENDPOINT = "io.github.sshkeys-ecs.emulator.endpoint"
CONTAINER_PREFIX = "sshkeys-ecs-"
GUEST_CONFIG_DIR = "/etc/ecs-instance"

# The emulator lives in the project checkout (emulator/ecs_emulator/...): the image script and the
# podman settings are found relative to it.
_REPO = Path(__file__).resolve().parents[2]
IMAGE_SCRIPT = _REPO / "tools" / "instance-image.sh"
CONTAINERS_CONF = _REPO / "tools" / "containers.conf"

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PODMAN_TIMEOUT = 120.0
SSH_CLOSED_DROPIN = "/etc/ssh/sshd_config.d/00-ecs-emulator-ssh-closed.conf"
SSH_CLOSED_PORT = 2222


class PodmanError(RuntimeError):
    """A podman call failed or an instance did not come up. Messages never hold secrets."""


def _check_name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise ValueError(f"invalid {kind} {value!r}: letters, digits, '.', '_' and '-' only, at most 64")
    return value


def _check_endpoint(address: str, port: int) -> None:
    # Instances must never be reachable from outside this machine.
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"invalid instance address {address!r}") from None
    if ip.version != 4 or not ip.is_loopback:
        raise ValueError(f"instance address {address!r} is not an IPv4 loopback address (127.0.0.0/8)")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"invalid ssh port {port!r}")


def _podman_env() -> dict[str, str]:
    env = dict(os.environ)
    if not env.get("CONTAINERS_CONF") and CONTAINERS_CONF.is_file():
        env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    return env


def _default_config_root(state_id: str) -> Path:
    return Path(tempfile.gettempdir()) / f"sshkeys-ecs-emulator-{os.getuid()}" / state_id


def _private_dir(path: Path) -> None:
    """Creates path (and its parents) for our user only, refusing what someone else put there."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path) or st.st_uid != os.getuid():
        raise PodmanError(f"{path} is not a directory owned by this user")
    os.chmod(path, 0o700)


def _write_private(path: Path, text: str) -> None:
    """Writes a 0600 file atomically (the boot script never reads half a file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def sshd_banner(address: str, port: int, timeout: float = 2.0) -> bool:
    """True when an SSH server answers on address:port (its banner starts with "SSH-").

    A published port may accept TCP and then close while sshd is still starting, so only the
    banner proves that logins can begin.
    """
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            data = b""
            while len(data) < 4:
                chunk = sock.recv(4 - len(data))
                if not chunk:
                    break
                data += chunk
            return data == b"SSH-"
    except OSError:
        return False


def endpoint_in_use(address: str, port: int) -> bool:
    """True when something already listens on address:port.

    Podman holds each published port open; starting a second container on the same one fails,
    and measured here its failed start also took the first container's port forwarding down. So
    the backend asks first. Without the privilege to bind (rootless, low port) it cannot tell,
    and leaves the decision to podman.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, port))
        except PermissionError:
            return False
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


class PodmanBackend(InstanceBackend):
    """Linux instances as podman containers of the instance image, labelled with the state id."""

    name = "podman"

    def __init__(self, *, state_id: str, ssh_port: int, config_root: str | os.PathLike[str] | None = None,
                 image: str = IMAGE, boot_timeout: float = 60.0, remove_on_close: bool = False,
                 ensure_image: bool = True, ssh_closed: bool = False) -> None:
        self.ssh_closed = ssh_closed            # instances start with their SSH port closed to the controller
        self.ssh_access: dict[str, bool] = {}   # per instance, set through the admin API: open or not
        self.state_id = _check_name("state id", state_id)
        _check_endpoint("127.0.0.1", ssh_port)
        self.ssh_port = ssh_port
        self.image = image
        self.boot_timeout = boot_timeout
        self.remove_on_close = remove_on_close
        self.config_root = Path(config_root) if config_root is not None else _default_config_root(state_id)
        self._env = _podman_env()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        if shutil.which("podman") is None:
            raise PodmanError("podman is not installed: --instances podman needs it (tools/bootstrap.sh installs it)")
        _private_dir(self.config_root)
        if ensure_image:
            self.ensure_image()

    # --- podman plumbing ---------------------------------------------------------------------

    def _podman(self, *args: str, check: bool = True, timeout: float = _PODMAN_TIMEOUT) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run(["podman", *args], env=self._env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PodmanError(f"podman {args[0]} did not finish within {timeout:.0f} s") from None
        if check and proc.returncode != 0:
            detail = proc.stderr.strip().splitlines()[-1:] or ["no error output"]
            raise PodmanError(f"podman {' '.join(args[:2])} failed (exit {proc.returncode}): {detail[0]}")
        return proc

    def ensure_image(self) -> None:
        """Builds or imports the instance image through the project script, or checks it exists."""
        if self.image == IMAGE and IMAGE_SCRIPT.is_file():
            proc = subprocess.run(["bash", str(IMAGE_SCRIPT)], env=self._env, capture_output=True,
                                  text=True, timeout=1800, check=False)
            for line in proc.stderr.splitlines():
                log.info("%s", line)
            if proc.returncode != 0:
                raise PodmanError(f"{IMAGE_SCRIPT.name} failed (exit {proc.returncode}): "
                                  f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
        elif self._podman("image", "exists", self.image, check=False).returncode != 0:
            raise PodmanError(f"podman image {self.image} is missing: build it with tools/instance-image.sh")

    def _lock(self, instance_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(instance_id, threading.Lock())

    @staticmethod
    def container_name(instance_id: str) -> str:
        return CONTAINER_PREFIX + _check_name("instance id", instance_id)

    def config_dir(self, instance_id: str) -> Path:
        return self.config_root / _check_name("instance id", instance_id)

    def _inspect(self, instance_id: str) -> dict | None:
        proc = self._podman("container", "inspect", self.container_name(instance_id), check=False)
        if proc.returncode != 0:
            return None
        found = json.loads(proc.stdout or "[]")
        if not found:
            return None
        info = found[0]
        labels = info.get("Config", {}).get("Labels") or {}
        if labels.get(LABEL_STATE) != self.state_id:
            # Same name, other owner (another emulator, or someone's container): never touch it.
            raise PodmanError(f"container {self.container_name(instance_id)} exists but belongs to "
                              f"another emulator state ({labels.get(LABEL_STATE) or 'no state label'})")
        return info

    def containers(self) -> list[dict]:
        """This state's containers: [{'name', 'instance_id', 'running', 'endpoint'}]."""
        proc = self._podman("ps", "--all", "--filter", f"label={LABEL_STATE}={self.state_id}", "--format", "json")
        result = []
        for item in json.loads(proc.stdout or "[]"):
            labels = item.get("Labels") or {}
            if labels.get(LABEL_STATE) != self.state_id:
                continue
            names = item.get("Names") or []
            result.append({"name": names[0] if names else item.get("Id", ""),
                           "instance_id": labels.get(LABEL_INSTANCE, ""),
                           "running": item.get("State") == "running",
                           "endpoint": labels.get(LABEL_ENDPOINT, "")})
        return result

    # --- boot configuration -------------------------------------------------------------------

    def _write_config(self, spec: BootSpec) -> Path:
        directory = self.config_dir(spec.instance_id)
        _private_dir(directory)
        key = (spec.public_key or "").strip()
        if "\n" in key or "\r" in key:
            raise ValueError(f"instance {spec.instance_id}: the public key must be one line")
        password = spec.password or ""
        if "\n" in password or "\r" in password:
            raise ValueError(f"instance {spec.instance_id}: the password must be one line")
        _write_private(directory / "public_key", key + "\n" if key else "")
        _write_private(directory / "password_login", "yes\n" if spec.password_login else "no\n")
        _write_private(directory / "password", password + "\n" if password else "")
        return directory

    # --- the backend interface ----------------------------------------------------------------

    def boot(self, spec: BootSpec) -> None:
        if spec.os_type != "linux":
            return
        try:
            self._boot(spec)
        except (PodmanError, ValueError) as exc:
            # The caller may log only the exception's class; the reason belongs in the log too.
            log.error("instance %s: boot failed: %s", spec.instance_id, exc)
            raise

    def _boot(self, spec: BootSpec) -> None:
        _check_endpoint(spec.address, spec.ssh_port)
        name = self.container_name(spec.instance_id)
        endpoint = f"{spec.address}:{spec.ssh_port}"
        with self._lock(spec.instance_id):
            directory = self._write_config(spec)
            info = self._inspect(spec.instance_id)
            if info is not None and (info.get("Config", {}).get("Labels") or {}).get(LABEL_ENDPOINT) != endpoint:
                # The address is fixed for an instance's life; a different one means the state was
                # replaced under us. Start over rather than publish the wrong address.
                log.warning("instance %s: container published elsewhere, recreating it", spec.instance_id)
                self._podman("rm", "--force", "--time", "2", name)
                info = None
            running = info is not None and info.get("State", {}).get("Running")
            if not running and endpoint_in_use(spec.address, spec.ssh_port):
                raise PodmanError(f"instance {spec.instance_id}: {endpoint} is already in use by another "
                                  f"program or container (address already in use)")
            if info is None:
                self._podman("create", "--name", name, "--hostname", spec.instance_id,
                             "--label", f"{LABEL_STATE}={self.state_id}",
                             "--label", f"{LABEL_INSTANCE}={spec.instance_id}",
                             "--label", f"{LABEL_ENDPOINT}={endpoint}",
                             "--publish", f"{endpoint}:22",
                             "--volume", f"{directory}:{GUEST_CONFIG_DIR}:ro",
                             self.image)
                self._podman("start", name)
            elif running:
                # A reboot: stop and start the same container, so its file system persists.
                self._podman("exec", name, "rm", "-f", SSH_CLOSED_DROPIN, check=False)
                self._podman("restart", "--time", "2", name)
            else:
                self._podman("start", name)
            self._wait_for_sshd(spec.instance_id, spec.address, spec.ssh_port)
            if not self.ssh_open(spec.instance_id):
                self._apply_ssh_access(spec.instance_id, spec.address, spec.ssh_port)
        log.info("instance %s: sshd up on %s", spec.instance_id, endpoint)

    def _wait_for_sshd(self, instance_id: str, address: str, port: int) -> None:
        deadline = time.monotonic() + self.boot_timeout
        next_check = time.monotonic() + 1.0
        while True:
            if sshd_banner(address, port):
                return
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 1.0
                info = self._inspect(instance_id)
                if info is None or not info.get("State", {}).get("Running"):
                    raise PodmanError(f"instance {instance_id}: container stopped during boot: "
                                      f"{self._log_tail(instance_id)}")
            if now >= deadline:
                raise PodmanError(f"instance {instance_id}: sshd did not answer on {address}:{port} within "
                                  f"{self.boot_timeout:.0f} s: {self._log_tail(instance_id)}")
            time.sleep(0.1)

    def _log_tail(self, instance_id: str) -> str:
        # The boot script logs no secrets (it says "bound"/"none", never the key or password).
        proc = self._podman("logs", "--tail", "5", self.container_name(instance_id), check=False)
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        return " | ".join(lines[-5:]) or "no container log"

    # --- Cloud Assistant: the agent's way in, and the SSH port closed to the controller --------

    def exec_in(self, instance_id: str, user: str, argv: list[str], *, stdin: bytes,
                timeout: float) -> subprocess.CompletedProcess[bytes]:
        """Runs argv inside the instance as user (the Cloud Assistant agent's work); returncode None on timeout."""
        name = self.container_name(instance_id)
        try:
            return subprocess.run(["podman", "exec", "-i", "--user", user, name, *argv], input=stdin,
                                  env=self._env, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, None, exc.stdout or b"", exc.stderr or b"")  # type: ignore[arg-type]

    def ssh_open(self, instance_id: str) -> bool:
        return self.ssh_access.get(instance_id, not self.ssh_closed)

    def set_ssh_access(self, instance_id: str, address: str, port: int, open_: bool) -> None:
        """Opens or closes the instance's SSH port to the controller, like a security group rule.

        Closed, sshd inside listens on another port only (a drop-in and SIGHUP, which sshd answers
        by re-reading its configuration), so a connection to the published port is refused; the
        halt removes the drop-in, so every boot starts open and is closed again once sshd is up.
        """
        with self._lock(instance_id):
            self.ssh_access[instance_id] = open_
            self._apply_ssh_access(instance_id, address, port)

    def _apply_ssh_access(self, instance_id: str, address: str, port: int) -> None:
        info = self._inspect(instance_id)
        if info is None or not info.get("State", {}).get("Running"):
            return
        name = self.container_name(instance_id)
        if self.ssh_open(instance_id):
            self._podman("exec", name, "sh", "-c", f"rm -f {SSH_CLOSED_DROPIN} && kill -HUP 1")
            self._wait_for_sshd(instance_id, address, port)
            return
        self._podman("exec", name, "sh", "-c", f"printf 'Port {SSH_CLOSED_PORT}\\n' > {SSH_CLOSED_DROPIN} && kill -HUP 1")
        deadline = time.monotonic() + 10
        while sshd_banner(address, port, timeout=0.5):
            if time.monotonic() > deadline:
                raise PodmanError(f"instance {instance_id}: sshd still answers on {address}:{port} after closing")
            time.sleep(0.1)

    def halt(self, instance_id: str) -> None:
        with self._lock(instance_id):
            info = self._inspect(instance_id)
            if info is not None:
                if info.get("State", {}).get("Running"):
                    # Every boot starts with sshd on its port (the boot waits for its banner).
                    self._podman("exec", self.container_name(instance_id), "rm", "-f", SSH_CLOSED_DROPIN, check=False)
                self._podman("stop", "--time", "2", self.container_name(instance_id))

    def destroy(self, instance_id: str) -> None:
        with self._lock(instance_id):
            if self._inspect(instance_id) is not None:
                self._podman("rm", "--force", "--time", "2", self.container_name(instance_id))
            shutil.rmtree(self.config_dir(instance_id), ignore_errors=True)

    def reconcile(self, running: list[BootSpec], known_ids: set[str]) -> None:
        should_run = {spec.instance_id: spec for spec in running if spec.os_type == "linux"}
        present = self.containers()
        for item in present:
            instance_id = item["instance_id"]
            if instance_id not in known_ids:
                log.info("reconcile: removing container %s of an unknown instance", item["name"])
                self._podman("rm", "--force", "--time", "2", item["name"])
                if _NAME_RE.fullmatch(instance_id):
                    shutil.rmtree(self.config_dir(instance_id), ignore_errors=True)
            elif item["running"] and instance_id not in should_run:
                log.info("reconcile: stopping %s, which the state says is not running", item["name"])
                self.halt(instance_id)
        up = {item["instance_id"] for item in present if item["running"]}
        # A container that kept running while the emulator was down has not rebooted: leave it be.
        to_boot = [spec for instance_id, spec in should_run.items() if instance_id not in up]
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="reconcile") as pool:
            failures = [exc for exc in pool.map(self._boot_quietly, to_boot) if exc is not None]
        # Config directories without an instance are leftovers of deleted instances.
        if self.config_root.is_dir():
            for entry in self.config_root.iterdir():
                if entry.is_dir() and entry.name not in known_ids:
                    shutil.rmtree(entry, ignore_errors=True)
        if failures:
            raise PodmanError(f"reconcile: {len(failures)} instance(s) failed to boot; first: {failures[0]}")

    def _boot_quietly(self, spec: BootSpec) -> Exception | None:
        try:
            self.boot(spec)
        except Exception as exc:  # collected, so that one bad instance does not stop the others
            log.error("reconcile: %s", exc)
            return exc
        return None

    def purge(self) -> None:
        """Removes every container of this state and the boot configuration directory."""
        for item in self.containers():
            self._podman("rm", "--force", "--time", "2", item["name"])
        shutil.rmtree(self.config_root, ignore_errors=True)

    def close(self) -> None:
        if self.remove_on_close:
            self.purge()


def purge_state(state_id: str, config_root: str | os.PathLike[str] | None = None) -> int:
    """Removes the containers and boot configuration of one emulator state; returns how many containers."""
    backend = PodmanBackend(state_id=state_id, ssh_port=22, config_root=config_root, ensure_image=False)
    count = len(backend.containers())
    backend.purge()
    return count


def main(argv: list[str] | None = None) -> int:
    """`python -m ecs_emulator.podman_backend purge STATE_ID`: clean up after an emulator run."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ecs_emulator.podman_backend",
                                     description="Housekeeping for the emulator's podman instances.")
    sub = parser.add_subparsers(dest="command", required=True)
    purge = sub.add_parser("purge", help="remove every container (and boot configuration) of one state")
    purge.add_argument("state_id", help="the state id (in the emulator's ready file, key state_id)")
    purge.add_argument("--config-root", help="boot configuration directory, if not the default")
    args = parser.parse_args(argv)
    try:
        count = purge_state(args.state_id, args.config_root)
    except (PodmanError, ValueError) as exc:
        print(f"ecs-emulator purge: {exc}", file=sys.stderr)
        return 1
    print(f"removed {count} container(s) of state {args.state_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the benchmarks share: paths, subprocesses, peers, keys, the emulator, containers, timing.

Nothing here measures; it only sets the stage so that every figure in one run is taken the same way.
"""

from __future__ import annotations

import base64
import glob
import http.client
import importlib
import json
import os
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Optional

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
COLLECTIONS = ROOT / ".cache" / "collections"
PEERS = ROOT / ".cache" / "peers"
# The benchmarks' own address range (docs/development.md): nothing else uses 127.0.17.0/24.
NETWORK = "127.0.17."
SSH_OPTIONS = "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o IdentitiesOnly=yes"
ANSIBLE_CFG = ("[defaults]\nforks = 10\nhost_key_checking = False\ngathering = explicit\n"
               "[ssh_connection]\npipelining = True\n")
PEER_COLLECTIONS = ("ansible/posix", "amazon/aws")


def run(args: list, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, raise on failure (unless check is false), keep its output."""
    return subprocess.run([str(a) for a in args], text=True, capture_output=True, check=check, **kwargs)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def timed(action: Callable[[], object]) -> float:
    """Seconds one call takes (monotonic clock)."""
    started = time.monotonic()
    action()
    return time.monotonic() - started


def module_utils(name: str):
    """One of the collection's module_utils, imported from this checkout (they are standard library only)."""
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    return importlib.import_module(f"ansible_collections.sshkeys.ecs.plugins.module_utils.{name}")


def ensure_peers() -> Path:
    """.cache/peers/collections holding the peer collections, taken from the PyPI `ansible` wheel.

    Galaxy is not reachable on the build machines; the wheel is, and only the few folders needed
    are extracted from it (well under a second).
    """
    target = PEERS / "collections"
    missing = [name for name in PEER_COLLECTIONS
               if not (target / "ansible_collections" / name / "plugins").is_dir()]
    if not missing:
        return target
    wheels = sorted(glob.glob(str(PEERS / "wheel" / "ansible-*.whl")))
    if not wheels:
        run([VENV_BIN / "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "ansible",
             "-d", PEERS / "wheel"])
        wheels = sorted(glob.glob(str(PEERS / "wheel" / "ansible-*.whl")))
    prefixes = tuple(f"ansible_collections/{name}/" for name in missing)
    with zipfile.ZipFile(wheels[-1]) as wheel:
        for member in wheel.namelist():
            if member.startswith(prefixes):
                wheel.extract(member, target)
    return target


def collections_path() -> str:
    return f"{COLLECTIONS}:{ensure_peers()}"


def ansible_env(config: Optional[Path] = None, **extra: str) -> dict:
    """The environment of every ansible-playbook run: this checkout and the peers, no colour."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_path(), ANSIBLE_NOCOLOR="1",
               PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}")
    if config is not None:
        env["ANSIBLE_CONFIG"] = str(config)
    env.update(extra)
    return env


def playbook(inventory: Path, path: Path, env: dict) -> float:
    """Seconds one ansible-playbook run takes; a failed run stops the benchmark (its numbers would lie)."""
    started = time.monotonic()
    done = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(path)],
                          env=env, text=True, capture_output=True, check=False, cwd=path.parent)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{path.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def random_key(rng: random.Random, comment: str) -> str:
    """A well-formed ssh-ed25519 public key line with random bytes (fast: no key generation)."""
    def string(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data
    blob = string(b"ssh-ed25519") + string(rng.randbytes(32))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def ssh_keygen(path: Path, kind: str = "ed25519", comment: str = "bench") -> Path:
    """A new key pair at path (no passphrase); returns the private key's path."""
    extra = ["-b", "2048"] if kind == "rsa" else []
    run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", comment, "-f", path])
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not come up within {seconds:g} s")


class Emulator:
    """An ecs-emulator on a free port with a fresh state, stopped on exit; request log on or off."""

    def __init__(self, *options: str, log: bool = True) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="sshkeys-bench-emu."))
        ready = self.work / "ready.json"
        self.log = self.work / "requests.log" if log else None
        logging = ["--log-file", str(self.log)] if log else ["--quiet"]
        self.proc = subprocess.Popen([str(VENV_BIN / "ecs-emulator"), "serve", "--listen", "127.0.0.1:0",
                                      "--state", str(self.work / "state.sqlite"), "--ready-file", str(ready),
                                      "--fast", *logging, *options],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(ready.exists, "the emulator")
        time.sleep(0.05)  # the ready file is written in one go, but give the writer its close
        self.doc = json.loads(ready.read_text(encoding="utf-8"))
        key = self.doc["accounts"][0]["access_keys"][0]
        self.key = (key["id"], key["secret"])
        self.port = int(self.doc["port"])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.region = self.doc.get("region", "cn-hangzhou")

    def env(self) -> dict:
        return {"ALIBABA_CLOUD_ACCESS_KEY_ID": self.key[0], "ALIBABA_CLOUD_ACCESS_KEY_SECRET": self.key[1],
                "ALIBABA_CLOUD_REGION_ID": self.region, "ALIBABA_CLOUD_ECS_ENDPOINT": self.endpoint,
                "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true"}

    def client(self):
        """The collection's own API client (the code the modules run), pointed at this emulator."""
        api = module_utils("_ecs_client")
        return api.EcsClient(api.Credentials(*self.key), self.region, self.endpoint)

    def actions(self) -> list:
        """Every action in the request log so far (flushed first through the admin API)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", "/_admin/flush-log", body=b"",
                               headers={"X-Admin-Token": self.doc["admin_token"]})
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                raise SystemExit(f"the emulator refused to flush its request log ({answer.status})")
        finally:
            connection.close()
        with open(self.log, encoding="utf-8") as handle:
            actions = [json.loads(line).get("action") for line in handle if line.strip()]
        return [action for action in actions if action]  # admin requests (the flush itself) have none

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "tools" / "containers.conf"))
    return run(["podman", *args], check=check)


class Hosts:
    """SSH hosts from the project's instance image on 127.0.17.x, removed on exit."""

    def __init__(self, prefix: str, first_octet: int, count: int, admin_pub: Path) -> None:
        self.hosts: list = []
        try:
            for index in range(count):
                name, address = f"{prefix}{index}", f"{NETWORK}{first_octet + index}"
                podman("rm", "--force", "--ignore", name)
                run([ROOT / "tools" / "instance-run.sh", name, address, admin_pub])
                self.hosts.append((name, address))
        except BaseException:
            self.remove()
            raise

    def inventory(self, path: Path, admin_key: Path, variables: Optional[dict] = None) -> Path:
        lines = ["all:", "  vars:", "    ansible_user: root", f"    ansible_ssh_private_key_file: {admin_key}",
                 f"    ansible_ssh_common_args: {SSH_OPTIONS}", "    ansible_python_interpreter: /usr/bin/python3"]
        lines += [f"    {name}: {json.dumps(value)}" for name, value in (variables or {}).items()]
        lines += ["  hosts:"] + [f"    {name}: {{ansible_host: {address}}}" for name, address in self.hosts]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def remove(self) -> None:
        for name, _address in self.hosts:
            podman("rm", "--force", "--ignore", name, check=False)
        self.hosts = []

    def __enter__(self) -> "Hosts":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.remove()


def log(message: str) -> None:
    print(message, flush=True)

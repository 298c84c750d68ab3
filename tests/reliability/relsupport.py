# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the reliability suite; the fixtures built on them are in conftest.py (read it first)."""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PYTHON = sys.executable
COLLECTIONS = ROOT / ".cache" / "collections"
FIGURES_DIR = Path(os.environ.get("RELIABILITY_FIGURES") or ROOT / "tests" / "output" / "reliability")
CONTAINERS_CONF = os.environ.get("CONTAINERS_CONF") or str(ROOT / "tools" / "containers.conf")
# Part A of the suite (bad input, secrets, lockout) owns 127.0.15.0/24; part B 127.0.16.0/24.
# Within it, hosts of tools/instance-run.sh take .1-.126 and emulators' podman instances the
# upper half, so the two never ask for the same address.
DEFAULT_POOL = "127.0.15.0/24"
HOSTS_POOL = "127.0.15.0/25"
EMULATOR_POOL = "127.0.15.128/25"

# Actions that change state on the emulator (everything else only reads).
WRITE_ACTIONS = frozenset({
    "CreateKeyPair", "ImportKeyPair", "DeleteKeyPairs", "AttachKeyPair", "DetachKeyPair",
    "TagResources", "UntagResources", "RunInstances", "StartInstance", "StartInstances",
    "StopInstance", "StopInstances", "RebootInstance", "RebootInstances", "DeleteInstance",
    "DeleteInstances", "ModifyInstanceAttribute",
})

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
os.environ.setdefault("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")


# -- the emulator ------------------------------------------------------------------------------

def _emulator_command() -> str:
    for candidate in (BIN / "ecs-emulator", ROOT / ".venv" / "bin" / "ecs-emulator"):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("ecs-emulator")
    if not found:
        raise RuntimeError("ecs-emulator is not installed (make bootstrap)")
    return found


class Emulator:
    """One `ecs-emulator serve` process with its own state directory."""

    def __init__(self, *serve_args: str, fast: bool = True, pool: str = EMULATOR_POOL) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sshkeys-rel-emu-"))
        self.state = self.dir / "state.sqlite"
        self.log = self.dir / "requests.log"
        self.ready = self.dir / "ready.json"
        self.args = list(serve_args)
        if fast and "--fast" not in self.args:
            self.args.append("--fast")
        if "--address-pool" not in self.args:
            self.args += ["--address-pool", pool]
        self.proc: Optional[subprocess.Popen] = None
        self.doc: Dict[str, Any] = {}
        self.port = 0

    # life cycle
    def start(self, port: int = 0, timeout: float = 180) -> "Emulator":
        if self.ready.exists():
            self.ready.unlink()
        env = dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)
        with open(self.dir / "stderr.log", "ab") as err:
            self.proc = subprocess.Popen(
                [_emulator_command(), "serve", "--listen", f"127.0.0.1:{port}", "--state", str(self.state),
                 "--ready-file", str(self.ready), "--log-file", str(self.log), *self.args],
                stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.ready.exists() or not self.ready.stat().st_size:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the emulator exited with {self.proc.returncode}: "
                                   + (self.dir / "stderr.log").read_text(errors="replace")[-2000:])
            if time.monotonic() > deadline:
                self.kill9()
                raise RuntimeError("the emulator did not get ready")
            time.sleep(0.05)
        self.doc = json.loads(self.ready.read_text())
        self.port = int(self.doc["port"])
        return self

    def stop(self) -> Optional[int]:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> "Emulator":
        """Stop and start again on the same port and state (the SDK endpoint stays valid)."""
        port = self.port
        self.stop()
        return self.start(port)

    def purge_containers(self) -> None:
        state_id = self.doc.get("state_id")
        if state_id and shutil.which("podman"):
            subprocess.run([PYTHON, "-m", "ecs_emulator.podman_backend", "purge", state_id],
                           env=dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    def close(self) -> None:
        self.stop()
        self.purge_containers()
        shutil.rmtree(self.dir, ignore_errors=True)

    # what clients need
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def region(self) -> str:
        return self.doc.get("region", "cn-hangzhou")

    def key(self, account: int = 0) -> tuple:
        first = self.doc["accounts"][account]["access_keys"][0]
        return first["id"], first["secret"]

    @property
    def secret(self) -> str:
        return self.key(0)[1]

    def secrets(self) -> List[str]:
        """Every AccessKey secret and the admin token: none may ever show in output or logs."""
        found = [self.doc.get("admin_token", "")]
        for account in self.doc.get("accounts", []):
            for key in account.get("access_keys", []):
                found += [key.get("secret", ""), key.get("security_token") or ""]
        return [value for value in found if value]

    def env(self, account: int = 0) -> Dict[str, str]:
        key_id, secret = self.key(account)
        return {
            "ALIBABA_CLOUD_ECS_ENDPOINT": self.endpoint,
            "ALIBABA_CLOUD_REGION_ID": self.region,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
        }

    # admin API and the request log
    def admin(self, method: str, path: str, body: Optional[dict] = None,
              token: Optional[str] = "default", timeout: float = 90) -> tuple:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Content-Type": "application/json"}
        if token == "default":
            token = self.doc["admin_token"]
        if token is not None:
            headers["X-Admin-Token"] = token
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"raw": raw.decode(errors="replace")}
        return resp.status, data

    def set_faults(self, rules: List[dict], replace: bool = True) -> None:
        status, body = self.admin("POST", "/_admin/faults", {"faults": rules, "replace": replace})
        assert status == 200, body

    def clear_faults(self) -> None:
        self.admin("DELETE", "/_admin/faults")

    def wait_idle(self) -> None:
        status, body = self.admin("POST", "/_admin/wait-idle")
        assert status == 200 and body.get("Idle") is True, body

    def log_text(self) -> str:
        """The raw request log so far (flushed first when the emulator runs)."""
        if self.proc and self.proc.poll() is None:
            status, body = self.admin("POST", "/_admin/flush-log")
            assert status == 200, body
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def log_entries(self) -> List[Dict[str, Any]]:
        entries = []
        for line in self.log_text().splitlines():
            line = line.strip()
            if line:
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    entries.append({"unparsed": line})
        return entries

    def mark(self) -> int:
        """A position in the request log; pass it to entries_since/writes_since.

        The emulator writes a request's line after it has sent the answer, so a request the
        caller just got its answer to may not be logged yet: the count is taken once it holds
        still, or an earlier request would show up as one made after the mark."""
        count = len(self.log_entries())
        for _attempt in range(20):
            time.sleep(0.05)
            again = len(self.log_entries())
            if again == count:
                break
            count = again
        return count

    def entries_since(self, mark: int) -> List[Dict[str, Any]]:
        return self.log_entries()[mark:]

    def writes_between(self, started: float, ended: float) -> List[Dict[str, Any]]:
        """Write requests logged between two epoch times (the log's ISO times are UTC)."""
        from datetime import datetime  # pylint: disable=import-outside-toplevel
        found = []
        for entry in self.log_entries():
            if entry.get("action") not in WRITE_ACTIONS or not entry.get("time"):
                continue
            when = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
            if started - 0.5 <= when <= ended + 0.5:
                found.append(entry)
        return found

    def writes_since(self, mark: int) -> List[Dict[str, Any]]:
        """Requests since mark whose action changes state, whatever their answer."""
        return [entry for entry in self.entries_since(mark) if entry.get("action") in WRITE_ACTIONS]

    # the API, through the legacy official SDK (independent of the collection's client)
    def api(self, action: str, account: int = 0, **params: Any) -> Dict[str, Any]:
        from aliyunsdkcore.client import AcsClient  # pylint: disable=import-outside-toplevel
        from aliyunsdkcore.request import CommonRequest  # pylint: disable=import-outside-toplevel
        key_id, secret = self.key(account)
        client = AcsClient(key_id, secret, self.region, auto_retry=False, timeout=60)
        request = CommonRequest(domain=f"127.0.0.1:{self.port}", version="2014-05-26", action_name=action)
        request.set_protocol_type("http")
        request.set_method("POST")
        request.add_query_param("RegionId", self.region)
        for name, value in params.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (list, dict)):
                value = json.dumps(value)
            request.add_query_param(name, str(value))
        return json.loads(client.do_action_with_exception(request))


# -- running Ansible ---------------------------------------------------------------------------

@dataclass
class Run:
    """One ansible-playbook run."""

    argv: List[str]
    rc: int
    stdout: str
    stderr: str
    log: str
    result: Dict[str, Any]
    workdir: Path
    results: List[Dict[str, Any]] = field(default_factory=list)

    def task(self, name: str) -> Dict[str, Any]:
        """The record (task, host, status, started, ended, result) of the task called name."""
        for record in self.results:
            if record["task"] == name:
                return record
        raise KeyError(f"no result for task {name!r}")

    def task_output(self, name: str, text: Optional[str] = None) -> str:
        """One task's part of stdout (or of text, e.g. the log): its TASK header to the next one."""
        text = self.stdout if text is None else text
        start = text.find(f"TASK [{name}]")
        if start < 0:
            return ""
        ends = [pos for pos in (text.find("TASK [", start + 1), text.find("PLAY RECAP", start + 1)) if pos >= 0]
        return text[start:min(ends)] if ends else text[start:]

    @property
    def output(self) -> str:
        """Everything the run showed or logged: stdout, stderr and the ANSIBLE_LOG_PATH file."""
        return "\n".join((self.stdout, self.stderr, self.log))

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed")) or self.rc != 0

    @property
    def msg(self) -> str:
        return str(self.result.get("msg", ""))

    def leaks(self, secrets: Iterable[str]) -> List[str]:
        """Those of secrets (or their significant parts) found anywhere in the output."""
        return find_secrets(self.output, secrets)


def secret_fragments(secret: str) -> List[str]:
    """What would give a secret away: the whole text and each long line or base64 run of it.

    A private key is a block of base64 lines; finding any one of its body lines in output is a
    leak even when the armour lines are missing, and the body joined without newlines counts too.
    """
    secret = secret.strip()
    if not secret:
        return []
    pieces = {secret}
    lines = [line.strip() for line in secret.splitlines()]
    body = [line for line in lines if line and not line.startswith("-----") and ":" not in line]
    for line in body:
        if len(line) >= 24:
            pieces.add(line)
    if len(body) > 1:
        pieces.add("".join(body))
    return sorted(pieces, key=len, reverse=True)


def find_secrets(text: str, secrets: Iterable[str]) -> List[str]:
    """Short labels (never the secret itself) of the secrets found in text."""
    found = []
    escaped = text.replace("\\n", "\n")
    for secret in secrets:
        for piece in secret_fragments(secret):
            if piece in text or piece in escaped:
                found.append(f"{len(secret)}-char secret starting {secret[:4]!r}...")
                break
    return found


class AnsibleRunner:
    """Builds one-play playbooks and runs them with ansible-playbook; one work directory each."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.count = 0

    def base_env(self, home: Optional[Path] = None) -> Dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("ALIBABA_CLOUD_", "ALICLOUD_", "ANSIBLE_"))}
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_HOST_KEY_CHECKING": "false",
            "ANSIBLE_PYTHON_INTERPRETER": PYTHON,
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.base / "cp"),
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
            "CONTAINERS_CONF": CONTAINERS_CONF,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        })
        if home is not None:
            env["HOME"] = str(home)
        return env

    def run_playbook(self, plays: Union[str, List[dict]], *, env: Optional[Dict[str, str]] = None,
                     home: Optional[Path] = None, inventory: Optional[str] = None, verbosity: int = 0,
                     check: bool = False, diff: bool = False, extra_args: Sequence[str] = (),
                     timeout: float = 300, on_start: Optional[Callable[[subprocess.Popen, Path], None]] = None) -> Run:
        """Run plays (YAML text or a list of plays); the tree callback keeps each host's last result.

        on_start(proc, workdir), when given, is called right after the process starts (for tests
        that interrupt a run); the call returns once the process has ended.
        """
        self.count += 1
        work = self.base / f"run-{self.count:04d}"
        work.mkdir(parents=True)
        (work / "cp").mkdir()
        playbook = work / "playbook.yml"
        playbook.write_text(plays if isinstance(plays, str) else json.dumps(plays, indent=1))
        inv = work / "inventory"
        inv.write_text(inventory if inventory is not None else
                       f"localhost ansible_connection=local ansible_python_interpreter={PYTHON}\n")
        log_path = work / "ansible.log"
        run_env = self.base_env(home)
        run_env.update({
            "ANSIBLE_LOG_PATH": str(log_path),
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.tree,case_results",
            "ANSIBLE_CALLBACK_PLUGINS": str(Path(__file__).resolve().parent / "callback_plugins"),
            "CASE_RESULTS_FILE": str(work / "results.jsonl"),
            "ANSIBLE_CALLBACK_TREE_DIR": str(work / "tree"),
            "ANSIBLE_LOCAL_TEMP": str(work / "tmp"),
            "ANSIBLE_REMOTE_TEMP": str(work / "remote-tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp"),
        })
        run_env.update(env or {})
        argv = [str(BIN / "ansible-playbook"), "-i", str(inv), str(playbook)]
        if verbosity:
            argv.append("-" + "v" * verbosity)
        if check:
            argv.append("--check")
        if diff:
            argv.append("--diff")
        argv += list(extra_args)
        with open(work / "stdout", "wb") as out, open(work / "stderr", "wb") as err:
            proc = subprocess.Popen(argv, cwd=work, env=run_env, stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            if on_start is not None:
                on_start(proc, work)
            try:
                rc = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = -9
        result: Dict[str, Any] = {}
        tree = work / "tree"
        if tree.is_dir():
            for host_file in sorted(tree.iterdir()):
                try:
                    result = json.loads(host_file.read_text())
                except ValueError:
                    result = {"unparsed": host_file.read_text(errors="replace")}
                break
        records = []
        if (work / "results.jsonl").exists():
            records = [json.loads(line) for line in (work / "results.jsonl").read_text().splitlines() if line.strip()]
        return Run(argv=argv, rc=rc, stdout=(work / "stdout").read_text(errors="replace"),
                   stderr=(work / "stderr").read_text(errors="replace"),
                   log=log_path.read_text(errors="replace") if log_path.exists() else "",
                   result=result, workdir=work, results=records)

    def run_task(self, module: str, args: Dict[str, Any], *, hosts: str = "localhost",
                 task_extra: Optional[Dict[str, Any]] = None, play_extra: Optional[Dict[str, Any]] = None,
                 **kwargs: Any) -> Run:
        """One task of module with args (a dict, passed as-is: no templating of its values)."""
        task: Dict[str, Any] = {"name": f"run {module}", module: args}
        task.update(task_extra or {})
        play: Dict[str, Any] = {"hosts": hosts, "gather_facts": False, "tasks": [task]}
        play.update(play_extra or {})
        return self.run_playbook([play], **kwargs)


def unique(prefix: str = "rel") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- files -------------------------------------------------------------------------------------

def file_state(paths: Iterable[Union[str, Path]]) -> Dict[str, Any]:
    """For each path: kind, mode, owner, size, sha256 and link target (lstat: links not followed).

    A directory lists its entries recursively, so a file created or changed inside it shows.
    """
    state: Dict[str, Any] = {}

    def one(path: Path) -> None:
        try:
            info = path.lstat()
        except FileNotFoundError:
            state[str(path)] = None
            return
        entry: Dict[str, Any] = {"mode": stat.S_IMODE(info.st_mode), "uid": info.st_uid}
        if stat.S_ISLNK(info.st_mode):
            entry.update(kind="link", target=os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            entry["kind"] = "dir"
            state[str(path)] = entry
            for child in sorted(path.iterdir()):
                one(child)
            return
        else:
            entry.update(kind="file", size=info.st_size,
                         sha256=hashlib.sha256(path.read_bytes()).hexdigest() if info.st_size < 50_000_000 else None)
        state[str(path)] = entry

    for item in paths:
        one(Path(item))
    return state


# -- key material ------------------------------------------------------------------------------

@dataclass
class KeyPair:
    """A key made by ssh-keygen: private key file, public key line."""

    path: Path
    public: str
    private: str

    @property
    def public_body(self) -> str:
        return self.public.split()[1]


def make_key(directory: Path, name: str, key_type: str = "ed25519", comment: Optional[str] = None,
             bits: Optional[int] = None) -> KeyPair:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    argv = ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", comment or name, "-f", str(path)]
    if bits:
        argv[4:4] = ["-b", str(bits)]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return KeyPair(path=path, public=(directory / f"{name}.pub").read_text().strip(), private=path.read_text())


# -- real SSH hosts ----------------------------------------------------------------------------

def podman_available() -> bool:
    if not shutil.which("podman"):
        return False
    return subprocess.run(["podman", "info"], env=dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0


def address_free(address: str, port: int = 22) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((address, port)) != 0


@dataclass
class SshHost:
    name: str
    address: str
    port: int = 22

    def exec(self, command: str, check: bool = True, user: str = "root") -> subprocess.CompletedProcess:
        """A shell command inside the container (podman exec, not SSH)."""
        return subprocess.run(["podman", "exec", "--user", user, self.name, "sh", "-c", command],
                              env=dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF), capture_output=True,
                              text=True, check=check, timeout=120)

    def read(self, path: str) -> str:
        return self.exec(f"cat {path}").stdout

    def inventory_line(self, key: KeyPair, user: str = "root") -> str:
        return (f"{self.name} ansible_host={self.address} ansible_port={self.port} ansible_user={user} "
                f"ansible_ssh_private_key_file={key.path} ansible_python_interpreter=/usr/bin/python3 ansible_pipelining=true "
                "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                "-o IdentitiesOnly=yes'\n")


class SshHosts:
    """Containers from the instance image, started by tools/instance-run.sh on addresses of a pool."""

    def __init__(self, pool: str = HOSTS_POOL) -> None:
        self.pool = ipaddress.ip_network(pool)
        self.started: List[SshHost] = []
        self.tag = uuid.uuid4().hex[:6]
        self.used: set = set()

    def _address(self) -> str:
        for host in self.pool.hosts():
            address = str(host)
            if address not in self.used and address_free(address):
                self.used.add(address)
                return address
        raise RuntimeError(f"no free address left in {self.pool}")

    def start(self, authorized: KeyPair, label: str = "host") -> SshHost:
        address = self._address()
        name = f"sshkeys-rel-{self.tag}-{label}-{len(self.started)}"
        with tempfile.NamedTemporaryFile("w", suffix=".pub", delete=False) as handle:
            handle.write(authorized.public + "\n")
        try:
            proc = subprocess.run([str(ROOT / "tools" / "instance-run.sh"), name, address, handle.name],
                                  env=dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF), capture_output=True,
                                  text=True, check=False, timeout=600)
        finally:
            os.unlink(handle.name)
        if proc.returncode != 0:
            subprocess.run([str(ROOT / "tools" / "instance-rm.sh"), name], capture_output=True, check=False)
            raise RuntimeError(f"instance-run.sh failed: {proc.stderr[-2000:]}")
        host = SshHost(name=name, address=address)
        self.started.append(host)
        return host

    def close(self) -> None:
        names = [host.name for host in self.started]
        if names:
            subprocess.run([str(ROOT / "tools" / "instance-rm.sh"), *names],
                           env=dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF), capture_output=True, check=False)


def ssh_login(host: SshHost, key: KeyPair, user: str = "ecs-user", command: str = "true",
              timeout: int = 10) -> subprocess.CompletedProcess:
    """A fresh ssh process that offers this key only (no agent, no connection reuse)."""
    argv = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
            "-o", "ControlPath=none", "-o", "ControlMaster=no", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "PasswordAuthentication=no",
            "-o", "KbdInteractiveAuthentication=no", "-o", f"ConnectTimeout={timeout}", "-o", "LogLevel=ERROR",
            "-i", str(key.path), "-p", str(host.port), f"{user}@{host.address}", command]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout * 3,
                          stdin=subprocess.DEVNULL)


def logs_in(host: SshHost, key: KeyPair, user: str = "ecs-user") -> bool:
    return ssh_login(host, key, user).returncode == 0


# -- figures -----------------------------------------------------------------------------------

OUTCOMES: Dict[str, str] = {}


@dataclass
class Section:
    """One section of docs/reliability.md: a table of rows and a one-sentence summary."""

    name: str
    title: str
    order: int
    columns: List[str]
    summary: Union[str, Callable[[List[list]], str]] = ""
    outcome_column: Optional[str] = "result"
    rows: List[list] = field(default_factory=list)
    nodes: List[Optional[str]] = field(default_factory=list)

    def add(self, row: Sequence[Any], node: Any = None) -> None:
        """Add a row; with node (request.node) the test's outcome is appended as the last column."""
        self.rows.append([value if isinstance(value, (int, str)) else str(value) for value in row])
        self.nodes.append(getattr(node, "nodeid", node))

    def final_rows(self) -> List[list]:
        rows = []
        for row, node in zip(self.rows, self.nodes):
            row = list(row)
            if self.outcome_column:
                row.append(OUTCOMES.get(node, "not run") if node else "")
            rows.append(row)
        return rows

    def document(self) -> Dict[str, Any]:
        rows = self.final_rows()
        columns = list(self.columns) + ([self.outcome_column] if self.outcome_column else [])
        summary = self.summary(rows) if callable(self.summary) else self.summary
        return {"title": self.title, "order": self.order, "summary": summary, "columns": columns, "rows": rows}

    def write(self, directory: Path = FIGURES_DIR) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.document(), indent=1, ensure_ascii=False) + "\n")
        tmp.replace(path)
        return path


class Figures:
    def __init__(self) -> None:
        self.sections: Dict[str, Section] = {}

    def section(self, name: str, **kwargs: Any) -> Section:
        """The section called name (created on first use with title, order, columns, summary, ...)."""
        if name not in self.sections:
            self.sections[name] = Section(name=name, **kwargs)
        return self.sections[name]

    def write(self) -> List[Path]:
        return [section.write() for section in self.sections.values() if section.rows]


def count_outcomes(rows: List[list]) -> Dict[str, int]:
    """{'passed': n, 'failed': n, ...} over the last column of rows."""
    counts: Dict[str, int] = {}
    for row in rows:
        counts[str(row[-1])] = counts.get(str(row[-1]), 0) + 1
    return counts


def promise_sections(figures: "Figures", promises: Dict[str, tuple], *, prefix: str, title: str, first_order: int,
                     columns: List[str]) -> Dict[str, Section]:
    """One section per class of attack: its title from the promise's name, its summary the
    promise itself and how many attacks held. ``promises`` maps a class to (name, promise)."""
    def summary_of(name: str) -> Callable[[List[list]], str]:
        def summary(rows: List[list]) -> str:
            counts = count_outcomes(rows)
            return (f"Promise: {promises[name][1]} {len(rows)} attacks: {counts.get('passed', 0)} held, "
                    f"{counts.get('failed', 0)} broke it, {counts.get('skipped', 0)} could not be tried here.")
        return summary

    return {name: figures.section(f"{prefix}_{name}", title=f"{title}: {promises[name][0]}", order=order,
                                  summary=summary_of(name), columns=columns)
            for order, name in enumerate(promises, start=first_order)}

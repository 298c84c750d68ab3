"""Real instances: the instance image and the podman backend, proved with real SSH logins.

Every test here starts containers (marker `podman`); the session fixture builds or imports the
image through tools/instance-image.sh, so this runs on a fresh machine after tools/bootstrap.sh.
Containers publish sshd on 127.0.40.0/24 (the range for tests of the image itself) and are
removed at the end of each test, whatever happened.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ecs_emulator.backend import BootSpec
from ecs_emulator.podman_backend import CONTAINER_PREFIX, PodmanBackend, PodmanError, sshd_banner

pytestmark = pytest.mark.podman

REPO = Path(__file__).resolve().parents[2]

BASE_SSH_OPTIONS = [
    "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "ControlPath=none", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
]


# --- helpers, shared with test_podman_sdk.py through the fixtures below ---------------------------

def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(REPO / "tools" / "containers.conf"))
    return env


def podman(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True,
                          timeout=120, check=False)


def new_key(directory: Path, name: str, key_type: str = "ed25519") -> tuple[Path, str]:
    """A fresh key pair: (private key path, public key line)."""
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", name, "-f", str(path)],
                   check=True, capture_output=True)
    return path, (directory / f"{name}.pub").read_text().strip()


def ssh(key: Path, user: str, address: str, command: str, port: int = 22) -> subprocess.CompletedProcess[str]:
    """One fresh SSH login with exactly this key (no agent, no connection reuse, no prompts)."""
    return subprocess.run(["ssh", *BASE_SSH_OPTIONS, "-o", "BatchMode=yes", "-i", str(key), "-p", str(port),
                           f"{user}@{address}", command],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)


def can_login(key: Path, user: str, address: str, port: int = 22) -> bool:
    """True if the key logs in as user; False if the server refuses it; any other failure fails."""
    proc = ssh(key, user, address, "id -un", port)
    if proc.returncode == 0:
        assert proc.stdout.strip() == user
        return True
    assert "Permission denied" in proc.stderr, f"login failed for another reason: {proc.stderr}"
    return False


def password_login(workdir: Path, user: str, address: str, password: str,
                   port: int = 22) -> subprocess.CompletedProcess[str]:
    """Logs in with a password only; ssh reads it from an askpass helper, so no terminal is needed."""
    askpass = workdir / "askpass.sh"
    if not askpass.exists():
        askpass.write_text('#!/bin/sh\nprintf \'%s\\n\' "$ECS_TEST_PASSWORD"\n')
        askpass.chmod(0o700)
    env = dict(os.environ, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", ECS_TEST_PASSWORD=password)
    return subprocess.run(["ssh", *BASE_SSH_OPTIONS, "-o", "PreferredAuthentications=password",
                           "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
                           "-p", str(port), f"{user}@{address}", "id -un"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
                          start_new_session=True, check=False)


def host_key(address: str, port: int = 22) -> str:
    proc = subprocess.run(["ssh-keyscan", "-T", "10", "-t", "ed25519", "-p", str(port), address],
                          capture_output=True, text=True, timeout=30, check=False)
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("#")]
    assert lines, f"no host key from {address}: {proc.stderr}"
    return lines[0].split()[-1]


def in_instance(instance_id: str, command: str) -> str:
    proc = podman("exec", CONTAINER_PREFIX + instance_id, "sh", "-c", command)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# --- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def instance_image() -> str:
    """Builds or imports localhost/sshkeys-ecs-instance:latest (seconds when cached)."""
    assert shutil.which("podman"), "podman is missing: run tools/bootstrap.sh, or deselect with -m 'not podman'"
    proc = subprocess.run(["bash", str(REPO / "tools" / "instance-image.sh")], env=podman_env(),
                          capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, f"tools/instance-image.sh failed:\n{proc.stderr}"
    return "localhost/sshkeys-ecs-instance:latest"


@pytest.fixture
def backend(instance_image, tmp_path):
    state_id = f"pytest-{uuid.uuid4().hex[:12]}"
    instances = PodmanBackend(state_id=state_id, ssh_port=22, config_root=tmp_path / "instances",
                              ensure_image=False, boot_timeout=60)
    try:
        yield instances
    finally:
        instances.purge()


def spec(instance_id: str, address: str, public_key: str | None, *, password: str | None = None,
         password_login: bool = False, os_type: str = "linux") -> BootSpec:
    return BootSpec(instance_id=instance_id, address=address, ssh_port=22, os_type=os_type,
                    public_key=public_key, password=password, password_login=password_login)


# --- the tests --------------------------------------------------------------------------------------

def test_image_boots_and_accepts_the_injected_key_for_root_and_ecs_user(backend, tmp_path):
    key, public = new_key(tmp_path, "bound")
    other = new_key(tmp_path, "stranger")[0]
    backend.boot(spec("i-img1", "127.0.40.11", public))

    assert sshd_banner("127.0.40.11", 22)
    assert can_login(key, "root", "127.0.40.11")
    assert can_login(key, "ecs-user", "127.0.40.11")
    assert not can_login(other, "root", "127.0.40.11")
    # ecs-user has passwordless sudo, and the image has the Python that Ansible needs.
    proc = ssh(key, "ecs-user", "127.0.40.11", "sudo -n id -un && python3 -c 'import sys; print(sys.version_info[0])'")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["root", "3"]
    # Files and directories as sshd's StrictModes wants them, owned by each user.
    listing = in_instance("i-img1", "stat -c '%U %a %n' /root/.ssh /root/.ssh/authorized_keys "
                                    "/home/ecs-user/.ssh /home/ecs-user/.ssh/authorized_keys")
    assert listing.split("\n")[:4] == [
        "root 700 /root/.ssh", "root 600 /root/.ssh/authorized_keys",
        "ecs-user 700 /home/ecs-user/.ssh", "ecs-user 600 /home/ecs-user/.ssh/authorized_keys",
    ]


def test_each_instance_makes_its_own_host_keys(backend, tmp_path):
    public = new_key(tmp_path, "bound")[1]
    backend.boot(spec("i-hk1", "127.0.40.12", public))
    backend.boot(spec("i-hk2", "127.0.40.13", public))
    first = host_key("127.0.40.12")
    assert first != host_key("127.0.40.13")
    # ...and keeps them across reboots, as a real host does.
    backend.boot(spec("i-hk1", "127.0.40.12", public))
    assert host_key("127.0.40.12") == first


def test_reboot_replaces_the_injected_key_and_keeps_lines_users_added(backend, tmp_path):
    first, first_public = new_key(tmp_path, "first")
    second, second_public = new_key(tmp_path, "second", "rsa")
    mine, mine_public = new_key(tmp_path, "added-by-user")
    backend.boot(spec("i-rot1", "127.0.40.14", first_public))

    # A user adds a key with a comment line around it, and leaves no newline at the end.
    added = f"# added by hand\\n{mine_public}"
    for user in ("root", "ecs-user"):
        proc = ssh(first, user, "127.0.40.14", f"printf '\\n{added}' >> ~/.ssh/authorized_keys")
        assert proc.returncode == 0, proc.stderr

    # The next boot with another key pair bound swaps the injected line, nothing else.
    backend.boot(spec("i-rot1", "127.0.40.14", second_public))
    for user in ("root", "ecs-user"):
        assert not can_login(first, user, "127.0.40.14")
        assert can_login(second, user, "127.0.40.14")
        assert can_login(mine, user, "127.0.40.14")
        proc = ssh(second, user, "127.0.40.14", "cat ~/.ssh/authorized_keys")
        assert proc.stdout.splitlines() == ["", "# added by hand", mine_public, second_public]

    # A boot with no key pair bound removes the injected line only.
    backend.boot(spec("i-rot1", "127.0.40.14", None))
    assert not can_login(second, "root", "127.0.40.14")
    assert can_login(mine, "root", "127.0.40.14")
    assert in_instance("i-rot1", "cat /root/.ssh/authorized_keys").splitlines() == ["", "# added by hand", mine_public]


def test_the_file_system_persists_across_stop_and_start(backend, tmp_path):
    key, public = new_key(tmp_path, "bound")
    backend.boot(spec("i-fs1", "127.0.40.15", public))
    assert ssh(key, "root", "127.0.40.15", "echo kept > /root/marker").returncode == 0
    backend.halt("i-fs1")
    assert not sshd_banner("127.0.40.15", 22)
    backend.boot(spec("i-fs1", "127.0.40.15", public))
    assert ssh(key, "root", "127.0.40.15", "cat /root/marker").stdout == "kept\n"


def test_password_login_is_off_while_a_key_is_bound_and_on_after_a_reset(backend, tmp_path):
    public = new_key(tmp_path, "bound")[1]
    password = "Pa55:word with spaces"
    backend.boot(spec("i-pw1", "127.0.40.16", public, password=password, password_login=False))
    refused = password_login(tmp_path, "root", "127.0.40.16", password)
    assert refused.returncode != 0
    # sshd lists what it would accept: only keys.
    assert "Permission denied (publickey)" in refused.stderr

    backend.boot(spec("i-pw1", "127.0.40.16", public, password=password, password_login=True))
    accepted = password_login(tmp_path, "root", "127.0.40.16", password)
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip() == "root"
    wrong = password_login(tmp_path, "root", "127.0.40.16", "not the password")
    assert wrong.returncode != 0
    assert "Permission denied" in wrong.stderr

    # A new password replaces the old one at the next boot.
    backend.boot(spec("i-pw1", "127.0.40.16", public, password="An0ther-one", password_login=True))
    assert password_login(tmp_path, "root", "127.0.40.16", "An0ther-one").returncode == 0
    assert password_login(tmp_path, "root", "127.0.40.16", password).returncode != 0


def test_the_password_stays_in_a_private_file(backend, tmp_path):
    public = new_key(tmp_path, "bound")[1]
    backend.boot(spec("i-pw2", "127.0.40.17", public, password="S3cret-value", password_login=True))
    directory = backend.config_dir("i-pw2")
    assert directory.stat().st_mode & 0o777 == 0o700
    assert (directory / "password").stat().st_mode & 0o777 == 0o600
    assert "S3cret-value" not in podman("logs", CONTAINER_PREFIX + "i-pw2").stderr


def test_reconcile_removes_unknown_starts_running_and_stops_the_rest(backend, tmp_path):
    key, public = new_key(tmp_path, "bound")
    keep = spec("i-rec1", "127.0.40.18", public)
    stop = spec("i-rec2", "127.0.40.19", public)
    gone = spec("i-rec3", "127.0.40.20", public)
    for item in (keep, stop, gone):
        backend.boot(item)
    backend.halt("i-rec1")  # stopped while the emulator was down; the state says Running

    backend.reconcile([keep], {"i-rec1", "i-rec2"})
    by_id = {c["instance_id"]: c for c in backend.containers()}
    assert set(by_id) == {"i-rec1", "i-rec2"}
    assert by_id["i-rec1"]["running"] and not by_id["i-rec2"]["running"]
    assert can_login(key, "root", "127.0.40.18")
    assert not sshd_banner("127.0.40.19", 22)
    assert not sshd_banner("127.0.40.20", 22)
    assert not backend.config_dir("i-rec3").exists()


def test_destroy_removes_the_container_and_its_configuration(backend, tmp_path):
    public = new_key(tmp_path, "bound")[1]
    backend.boot(spec("i-del1", "127.0.40.21", public))
    backend.destroy("i-del1")
    assert podman("container", "exists", CONTAINER_PREFIX + "i-del1").returncode == 1
    assert not backend.config_dir("i-del1").exists()
    backend.destroy("i-del1")  # deleting twice is harmless


def test_windows_instances_are_virtual(backend):
    backend.boot(spec("i-win1", "127.0.40.22", None, password="x", password_login=True, os_type="windows"))
    backend.halt("i-win1")
    assert backend.containers() == []


@pytest.mark.parametrize("address", ["10.88.0.5", "192.168.1.1", "::1", "localhost", "127.0.40.300"])
def test_non_loopback_addresses_are_refused_before_anything_starts(backend, address):
    with pytest.raises(ValueError, match="address"):
        backend.boot(spec("i-bad1", address, None))
    assert backend.containers() == []


def test_a_container_of_another_state_is_never_touched(backend, instance_image, tmp_path):
    other = PodmanBackend(state_id=backend.state_id + "-other", ssh_port=22,
                          config_root=tmp_path / "other", ensure_image=False)
    try:
        public = new_key(tmp_path, "bound")[1]
        other.boot(spec("i-own1", "127.0.40.23", public))
        with pytest.raises(PodmanError, match="another emulator state"):
            backend.boot(spec("i-own1", "127.0.40.23", public))
        backend.reconcile([], set())
        assert [c["instance_id"] for c in other.containers()] == ["i-own1"]
    finally:
        other.purge()


def test_an_address_in_use_is_a_clear_error(backend, instance_image, tmp_path):
    other = PodmanBackend(state_id=backend.state_id + "-busy", ssh_port=22,
                          config_root=tmp_path / "busy", ensure_image=False)
    try:
        key, public = new_key(tmp_path, "bound")
        other.boot(spec("i-busy1", "127.0.40.24", public))
        with pytest.raises(PodmanError, match="127.0.40.24:22.*address already in use"):
            backend.boot(spec("i-busy2", "127.0.40.24", public))
        # The instance that holds the address is unharmed.
        assert can_login(key, "root", "127.0.40.24")
    finally:
        other.purge()


def test_an_instance_that_dies_at_boot_is_a_clear_error(instance_image, tmp_path):
    # An image whose boot fails at once, made on top of the instance image (no registry needed).
    broken = f"localhost/sshkeys-ecs-instance-broken-{uuid.uuid4().hex[:8]}"
    (tmp_path / "Containerfile").write_text(
        f"FROM {instance_image}\nCMD [\"/bin/sh\", \"-c\", \"echo boot script failed >&2; exit 3\"]\n")
    built = podman("build", "--network=none", "--quiet", "-t", broken, str(tmp_path))
    assert built.returncode == 0, built.stderr
    backend = PodmanBackend(state_id=f"pytest-{uuid.uuid4().hex[:12]}", ssh_port=22,
                            config_root=tmp_path / "instances", image=broken, ensure_image=False)
    try:
        with pytest.raises(PodmanError, match="stopped during boot.*boot script failed"):
            backend.boot(spec("i-dead1", "127.0.40.25", None))
    finally:
        backend.purge()
        podman("rmi", "--force", broken)


# --- through the emulator and the official SDK ----------------------------------------------------
#
# The emulator runs as its own process with --instances podman. Each test gets its own small
# address pool at the top of the emulator's range (127.0.10.192/27), away from the addresses other
# emulator tests get first, so that tests running in parallel never publish the same address.

EMULATOR_POOLS = {
    "headline": "127.0.10.192/29",
    "password": "127.0.10.200/29",
    "restart": "127.0.10.208/29",
}


class EmulatorProcess:
    """`ecs-emulator serve --instances podman` on a state file, restartable on the same state."""

    def __init__(self, workdir: Path, pool: str) -> None:
        self.workdir = workdir
        self.pool = pool
        self.state = workdir / "state.sqlite"
        self.proc: subprocess.Popen | None = None
        self.ready: dict = {}

    def start(self, timeout: float = 300.0) -> None:
        ready_file = self.workdir / "ready.json"
        ready_file.unlink(missing_ok=True)
        self.stderr = open(self.workdir / "emulator.err", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ecs_emulator.cli", "serve", "--listen", "127.0.0.1:0", "--state", str(self.state),
             "--instances", "podman", "--fast", "--address-pool", self.pool, "--quiet",
             "--ready-file", str(ready_file)],
            stdout=subprocess.DEVNULL, stderr=self.stderr, env=podman_env())
        deadline = time.monotonic() + timeout
        while not ready_file.exists() or not ready_file.stat().st_size:
            assert self.proc.poll() is None, f"the emulator exited: {self.log_tail()}"
            assert time.monotonic() < deadline, f"the emulator was not ready in time: {self.log_tail()}"
            time.sleep(0.1)
        self.ready = json.loads(ready_file.read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "stderr", None):
            self.stderr.close()

    def log_tail(self) -> str:
        path = self.workdir / "emulator.err"
        return "\n".join(path.read_text(errors="replace").splitlines()[-20:]) if path.exists() else ""

    def client(self):
        from alibabacloud_ecs20140526.client import Client
        from alibabacloud_tea_openapi import models as open_api_models

        key = self.ready["accounts"][0]["access_keys"][0]
        return Client(open_api_models.Config(
            access_key_id=key["id"], access_key_secret=key["secret"],
            endpoint=self.ready["endpoint"].removeprefix("http://"), protocol="http",
            region_id=self.ready["region"]))


@pytest.fixture
def emulator(request, instance_image, tmp_path, monkeypatch):
    """Parametrized indirectly with the name of the test's address pool."""
    # The SDK's credential chain would otherwise probe the ECS metadata address.
    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    monkeypatch.setenv("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
    process = EmulatorProcess(tmp_path, EMULATOR_POOLS[request.param])
    process.start()
    state_id = process.ready["state_id"]
    try:
        yield process
    finally:
        process.stop()
        # The emulator leaves instances running when it stops (as a cloud would); tests do not.
        PodmanBackend(state_id=state_id, ssh_port=22, ensure_image=False).purge()


def save_private_key(path: Path, material: str) -> Path:
    """Stores a private key the API returned, readable by its owner only from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(material.rstrip("\n") + "\n")
    return path


def instance(client, region: str, instance_id: str):
    from alibabacloud_ecs20140526 import models

    body = client.describe_instances(models.DescribeInstancesRequest(
        region_id=region, instance_ids=json.dumps([instance_id]))).body
    assert body.total_count == 1
    return body.instances.instance[0]


def wait_status(client, region: str, instance_id: str, status: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while True:
        item = instance(client, region, instance_id)
        if item.status == status:
            return item
        assert time.monotonic() < deadline, f"{instance_id} stayed {item.status}, expected {status}"
        time.sleep(0.2)


def run_instance(client, region: str, **kwargs) -> str:
    from alibabacloud_ecs20140526 import models

    body = client.run_instances(models.RunInstancesRequest(
        region_id=region, image_id="debian_12_x64_20G_alibase_20250101.vhd", instance_type="ecs.t6-c1m1.large",
        amount=1, **kwargs)).body
    ids = body.instance_id_sets.instance_id_set
    assert len(ids) == 1
    return ids[0]


@pytest.mark.parametrize("emulator", ["headline"], indirect=True)
def test_sdk_create_key_pair_run_instance_log_in_attach_second_reboot(emulator, tmp_path):
    """The issue's headline: what the API says about keys is what sshd does, boot by boot."""
    from alibabacloud_ecs20140526 import models

    client, region = emulator.client(), emulator.ready["region"]
    first = client.create_key_pair(models.CreateKeyPairRequest(region_id=region, key_pair_name="first-pair")).body
    first_key = save_private_key(tmp_path / "first-pair.pem", first.private_key_body)

    instance_id = run_instance(client, region, key_pair_name="first-pair", instance_name="headline")
    item = wait_status(client, region, instance_id, "Running")
    address = item.public_ip_address.ip_address[0]
    assert ipaddress.ip_address(address) in ipaddress.IPv4Network(EMULATOR_POOLS["headline"])
    assert item.key_pair_name == "first-pair"
    for user in ("root", "ecs-user"):
        assert can_login(first_key, user, address)

    second = client.create_key_pair(models.CreateKeyPairRequest(region_id=region, key_pair_name="second-pair")).body
    second_key = save_private_key(tmp_path / "second-pair.pem", second.private_key_body)
    result = client.attach_key_pair(models.AttachKeyPairRequest(
        region_id=region, key_pair_name="second-pair", instance_ids=json.dumps([instance_id]))).body
    # The SDK models both counts as strings, as ECS sends them.
    assert (int(result.total_count), int(result.fail_count)) == (1, 0)
    assert instance(client, region, instance_id).key_pair_name == "second-pair"

    # Attached while running: nothing changes inside until the instance restarts.
    for user in ("root", "ecs-user"):
        assert can_login(first_key, user, address)
        assert not can_login(second_key, user, address)

    client.reboot_instance(models.RebootInstanceRequest(instance_id=instance_id))
    wait_status(client, region, instance_id, "Running")
    for user in ("root", "ecs-user"):
        assert can_login(second_key, user, address)
        assert not can_login(first_key, user, address)


@pytest.mark.parametrize("emulator", ["password"], indirect=True)
def test_sdk_password_login_off_with_a_key_pair_and_on_after_a_password_reset(emulator, tmp_path):
    from alibabacloud_ecs20140526 import models

    client, region = emulator.client(), emulator.ready["region"]
    client.create_key_pair(models.CreateKeyPairRequest(region_id=region, key_pair_name="pw-pair"))
    instance_id = run_instance(client, region, key_pair_name="pw-pair", password="Initial-Pass1")
    address = wait_status(client, region, instance_id, "Running").public_ip_address.ip_address[0]
    refused = password_login(tmp_path, "root", address, "Initial-Pass1")
    assert refused.returncode != 0 and "Permission denied (publickey)" in refused.stderr

    client.modify_instance_attribute(models.ModifyInstanceAttributeRequest(instance_id=instance_id,
                                                                           password="Reset-Pass2"))
    client.reboot_instance(models.RebootInstanceRequest(instance_id=instance_id))
    wait_status(client, region, instance_id, "Running")
    accepted = password_login(tmp_path, "root", address, "Reset-Pass2")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip() == "root"


@pytest.mark.parametrize("emulator", ["restart"], indirect=True)
def test_emulator_restart_reconciles_containers_with_its_state(emulator, tmp_path):
    from alibabacloud_ecs20140526 import models

    client, region = emulator.client(), emulator.ready["region"]
    state_id = emulator.ready["state_id"]
    pair = client.create_key_pair(models.CreateKeyPairRequest(region_id=region, key_pair_name="rec-pair")).body
    key = save_private_key(tmp_path / "rec-pair.pem", pair.private_key_body)
    up_id = run_instance(client, region, key_pair_name="rec-pair")
    down_id = run_instance(client, region, key_pair_name="rec-pair")
    up_address = wait_status(client, region, up_id, "Running").public_ip_address.ip_address[0]
    down_address = wait_status(client, region, down_id, "Running").public_ip_address.ip_address[0]
    client.stop_instance(models.StopInstanceRequest(instance_id=down_id))
    wait_status(client, region, down_id, "Stopped")
    assert ssh(key, "root", up_address, "echo kept > /root/marker").returncode == 0

    # While the emulator is down, reality drifts from its state in every way it can.
    emulator.stop()
    assert podman("stop", "--time", "2", CONTAINER_PREFIX + up_id).returncode == 0
    assert podman("start", CONTAINER_PREFIX + down_id).returncode == 0
    orphan = podman("create", "--name", f"{CONTAINER_PREFIX}i-{state_id}-orphan",
                    "--label", f"io.github.sshkeys-ecs.emulator.state={state_id}",
                    "--label", f"io.github.sshkeys-ecs.emulator.instance=i-{state_id}-orphan",
                    "localhost/sshkeys-ecs-instance:latest")
    assert orphan.returncode == 0, orphan.stderr

    emulator.start()
    assert emulator.ready["state_id"] == state_id
    containers = {c["instance_id"]: c["running"]
                  for c in PodmanBackend(state_id=state_id, ssh_port=22, ensure_image=False).containers()}
    assert containers == {up_id: True, down_id: False}
    # The same container came back (its file system too), not a new one.
    assert ssh(key, "root", up_address, "cat /root/marker").stdout == "kept\n"
    assert not sshd_banner(down_address, 22)
    client = emulator.client()
    assert instance(client, region, up_id).status == "Running"
    assert instance(client, region, down_id).status == "Stopped"

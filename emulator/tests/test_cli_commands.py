"""The commands a test author runs against a running emulator: env, instances create|list, reset,
fault add|list|clear, and what `serve` prints at start.

Each command runs as the installed `ecs-emulator` program; what it did is read back through the
official SDK (DescribeInstances, DescribeKeyPairs) or the admin API, never from its own output alone.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time

import pytest

from support import EMULATOR, REGION, SDKS, ApiFailure, EmulatorProcess
# The fixture that builds or imports the instance image, for the podman test at the end.
from test_podman_instances import instance_image  # noqa: F401 pylint: disable=unused-import


@pytest.fixture
def running(tmp_path):
    proc = EmulatorProcess().start()
    yield proc
    proc.stop()


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ECS_EMULATOR_", "ALIBABA_CLOUD_ECS_ENDPOINT"))}
    return subprocess.run([EMULATOR, *args], capture_output=True, text=True, timeout=120, check=False,
                          env={**clean, **(env or {})})


def ok(*args: str, env: dict | None = None) -> str:
    proc = cli(*args, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def ready(emu: EmulatorProcess) -> str:
    return os.path.join(emu.dir, "ready.json")


def described(emu: EmulatorProcess, region: str = REGION) -> dict:
    """InstanceId -> the instance as DescribeInstances returns it to the first account."""
    client = SDKS["sdk1"](emu.endpoint, emu.key(0))
    return {i["InstanceId"]: i for i in client.call("DescribeInstances", RegionId=region, PageSize=100)["Instances"]["Instance"]}


def test_env_exports_what_the_collection_and_the_commands_read(running):
    lines = ok("env", "--ready-file", ready(running)).splitlines()
    values = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in lines)
    key_id, secret = running.key(0)
    assert values == {
        "ALIBABA_CLOUD_ECS_ENDPOINT": running.doc["endpoint"], "ALIBABA_CLOUD_REGION_ID": REGION,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
        "ECS_EMULATOR_ADMIN_TOKEN": running.doc["admin_token"], "ECS_EMULATOR_READY_FILE": ready(running)}
    second = ok("env", "--ready-file", ready(running), "--account", "second")
    assert f"ALIBABA_CLOUD_ACCESS_KEY_ID={running.key(1)[0]}" in second
    refused = cli("env", "--ready-file", ready(running), "--account", "nobody")
    assert refused.returncode == 1 and "no account 'nobody'" in refused.stderr and "default, second" in refused.stderr


def test_instances_create_linux_and_windows_and_list_them(running):
    out = ok("instances", "create", "--count", "2", "--name", "web", "--ready-file", ready(running))
    assert out.count(" Running ") == 2 and "2 instance(s), backend virtual" in out
    ok("instances", "create", "--os", "windows", "--name", "win", "--ready-file", ready(running))
    ok("instances", "create", "--region", "cn-beijing", "--account", "second", "--ready-file", ready(running))
    found = described(running)
    assert sorted((i["InstanceName"], i["OSType"], i["Status"]) for i in found.values()) == [
        ("web", "linux", "Running"), ("web", "linux", "Running"), ("win", "windows", "Running")]
    # The other account's instance is in its own account and region only.
    other = SDKS["sdk1"](running.endpoint, running.key(1)).call("DescribeInstances", RegionId="cn-beijing")
    assert other["TotalCount"] == 1
    listing = ok("instances", "list", "--ready-file", ready(running))
    assert "4 instance(s)" in listing and all(iid in listing for iid in found)
    assert "second" in listing and "cn-beijing" in listing


def test_instances_create_binds_a_key_pair_and_refuses_what_run_instances_refuses(running):
    SDKS["sdk1"](running.endpoint, running.key(0)).call("CreateKeyPair", RegionId=REGION, KeyPairName="cli-pair")
    ok("instances", "create", "--key-pair", "cli-pair", "--ready-file", ready(running))
    assert [i["KeyPairName"] for i in described(running).values()] == ["cli-pair"]
    for args, message in ((("--key-pair", "missing-pair"), "InvalidKeyPairName.NotFound"),
                          (("--os", "windows", "--key-pair", "cli-pair"), "DependencyViolation.WindowsInstance"),
                          (("--count", "0"), "Amount"),
                          (("--region", "mars-1"), "InvalidRegionId.NotFound"),
                          (("--account", "nobody"), "No account 'nobody'")):
        proc = cli("instances", "create", *args, "--ready-file", ready(running))
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
    assert len(described(running)) == 1


def test_reset_removes_instances_key_pairs_and_faults_and_keeps_the_accounts(running):
    client = SDKS["sdk1"](running.endpoint, running.key(0))
    client.call("CreateKeyPair", RegionId=REGION, KeyPairName="to-go")
    ok("instances", "create", "--count", "3", "--ready-file", ready(running))
    ok("fault", "add", "DescribeRegions=internal", "--ready-file", ready(running))
    assert "deleted 3 instance(s) and 1 key pair(s)" in ok("reset", "--ready-file", ready(running))
    assert described(running) == {}
    assert client.call("DescribeKeyPairs", RegionId=REGION)["TotalCount"] == 0
    assert running.admin("GET", "/_admin/faults")[1]["Faults"] == []
    # The same AccessKey still works, and new instances start again from the first address.
    ok("instances", "create", "--ready-file", ready(running))
    assert [i["PublicIpAddress"]["IpAddress"] for i in described(running).values()] == [["127.0.90.1"]]


def test_fault_add_list_clear(running):
    client = SDKS["sdk1"](running.endpoint, running.key(0))
    assert ok("fault", "add", "DescribeKeyPairs=throttling,count=1", "--ready-file", ready(running)).split() == [
        "DescribeKeyPairs=throttling,count=1"]
    with pytest.raises(ApiFailure) as info:
        client.call("DescribeKeyPairs", RegionId=REGION)
    assert info.value.code == "Throttling"
    client.call("DescribeKeyPairs", RegionId=REGION)  # the count is used up
    ok("fault", "add", "*=unavailable,probability=0.5", "--ready-file", ready(running))
    assert ok("fault", "list", "--ready-file", ready(running)).split() == ["*=unavailable,probability=0.5"]
    assert ok("fault", "clear", "--ready-file", ready(running)).strip() == "no faults"
    assert running.admin("GET", "/_admin/faults")[1]["Faults"] == []
    bad = cli("fault", "add", "DescribeKeyPairs=melt", "--ready-file", ready(running))
    assert bad.returncode == 1 and "unknown fault kind 'melt'" in bad.stderr


def test_the_emulator_is_found_from_the_environment_and_errors_say_what_is_missing(running):
    env = {"ALIBABA_CLOUD_ECS_ENDPOINT": running.doc["endpoint"], "ECS_EMULATOR_ADMIN_TOKEN": running.doc["admin_token"]}
    assert "0 instance(s)" in ok("instances", "list", env=env)
    # An endpoint without a scheme is the emulator's plain HTTP too.
    assert "0 instance(s)" in ok("instances", "list", "--endpoint", running.endpoint, env=env)
    wrong = cli("instances", "list", env={**env, "ECS_EMULATOR_ADMIN_TOKEN": "wrong"})
    assert wrong.returncode == 1 and "refused the admin token" in wrong.stderr and running.doc["admin_token"] not in wrong.stderr
    nothing = cli("reset")
    assert nothing.returncode == 1 and "--ready-file" in nothing.stderr
    no_token = cli("reset", env={"ALIBABA_CLOUD_ECS_ENDPOINT": running.doc["endpoint"]})
    assert no_token.returncode == 1 and "no admin token" in no_token.stderr
    missing = cli("instances", "list", "--ready-file", os.path.join(running.dir, "nope.json"))
    assert missing.returncode == 1 and "start `ecs-emulator serve --ready-file" in missing.stderr
    closed = cli("instances", "list", "--endpoint", "http://127.0.0.1:1", "--admin-token", "x")
    assert closed.returncode == 1 and "cannot reach the emulator at http://127.0.0.1:1" in closed.stderr


def test_serve_prints_what_a_user_needs(tmp_path):
    ready_file = tmp_path / "ready.json"
    proc = subprocess.Popen([EMULATOR, "serve", "--listen", "127.0.0.1:0", "--state", str(tmp_path / "s.sqlite"),
                             "--ready-file", str(ready_file), "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _line in range(5)]
        deadline = time.monotonic() + 30
        while not ready_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        env = ok("env", "--ready-file", str(ready_file))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
    printed = "".join(lines)
    for line in env.splitlines():
        if "READY_FILE" not in line:
            assert line.removeprefix("export ") in printed, line
    assert f'eval "$(ecs-emulator env --ready-file {ready_file})"' in printed
    assert "instances virtual on 127.0.90.0/24" in printed


def test_virtual_instances_have_addresses_of_their_own():
    """Containers publish sshd on 127.0.10.0/24; a virtual instance there could lead a ping or a
    login to another emulator's container, so virtual instances take 127.0.90.0/24 by default."""
    from ecs_emulator.cli import build_parser, default_pool

    assert str(default_pool("podman")) == "127.0.10.0/24"
    assert str(default_pool("virtual")) == "127.0.90.0/24"
    assert not default_pool("podman").overlaps(default_pool("virtual"))
    args = build_parser().parse_args(["serve", "--state", "s.sqlite", "--address-pool", "127.0.16.0/23"])
    assert str(args.address_pool) == "127.0.16.0/23"  # given explicitly, it applies to either backend


def test_env_waits_for_an_emulator_that_is_starting(tmp_path):
    ready_file = tmp_path / "ready.json"
    proc = subprocess.Popen([EMULATOR, "serve", "--listen", "127.0.0.1:0", "--state", str(tmp_path / "s.sqlite"),
                             "--ready-file", str(ready_file), "--quiet"], stdout=subprocess.DEVNULL)
    try:
        out = ok("env", "--ready-file", str(ready_file), "--wait", "30")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    assert "ALIBABA_CLOUD_ECS_ENDPOINT=http://127.0.0.1:" in out


def test_virtual_flag_on_a_virtual_emulator_changes_nothing_and_bad_values_are_refused(running):
    out = ok("instances", "create", "--virtual", "--ready-file", ready(running))
    assert " virtual 127.0.90.1 " in out
    status, body = running.admin("POST", "/_admin/instances", {"virtual": "yes"})
    assert (status, body["Code"]) == (400, "InvalidParameter.Virtual")


def test_a_state_file_from_before_the_virtual_column_gets_it(tmp_path):
    import sqlite3

    from ecs_emulator.state import State

    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE instances (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
                "account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL, image_id TEXT NOT NULL, "
                "instance_type TEXT NOT NULL, os_type TEXT NOT NULL, status TEXT NOT NULL, address TEXT NOT NULL UNIQUE, "
                "key_pair_name TEXT, public_key TEXT, password TEXT, password_login INTEGER NOT NULL, "
                "resource_group TEXT NOT NULL, created TEXT NOT NULL, generation INTEGER NOT NULL DEFAULT 0)")
    old.execute("INSERT INTO instances (id, account, region, name, image_id, instance_type, os_type, status, address, "
                "password_login, resource_group, created) VALUES ('i-old', 'default', 'cn-hangzhou', 'old', 'img', "
                "'t', 'linux', 'Running', '127.0.10.9', 1, 'rg', 'now')")
    old.commit()
    old.close()
    state = State(str(path))
    with state.read() as db:
        row = db.execute("SELECT virtual FROM instances WHERE id = 'i-old'").fetchone()
    state.close()
    assert row["virtual"] == 0  # what it was: an instance of the backend


def test_help_names_every_command():
    out = ok("--help")
    for command in ("serve", "env", "instances", "reset", "fault"):
        assert command in out


# --- real SSH hosts: the same commands on an emulator with --instances podman ----------------------

# The address pool of this test, next to those of test_podman_instances.py (127.0.10.192/27).
PODMAN_POOL = "127.0.10.216/29"


@pytest.mark.podman
def test_podman_instances_from_the_command_line_log_in_and_reset_removes_them(instance_image, tmp_path, monkeypatch):
    from test_podman_instances import EmulatorProcess as PodmanEmulator, can_login, new_key, podman

    monkeypatch.setenv("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
    emulator = PodmanEmulator(tmp_path, PODMAN_POOL)
    emulator.start()
    ready_file = str(tmp_path / "ready.json")
    try:
        key, public = new_key(tmp_path, "cli-key")
        endpoint = emulator.ready["endpoint"].removeprefix("http://")
        client = SDKS["sdk1"](endpoint, tuple(emulator.ready["accounts"][0]["access_keys"][0][k] for k in ("id", "secret")))
        client.call("ImportKeyPair", RegionId=REGION, KeyPairName="cli-key", PublicKeyBody=public)
        out = ok("instances", "create", "--key-pair", "cli-key", "--json", "--ready-file", ready_file)
        created = json.loads(out)
        assert created["Backend"] == "podman"
        (instance,) = created["Instances"]
        assert instance["Status"] == "Running" and instance["Address"].startswith("127.0.10.2")
        assert can_login(key, "ecs-user", instance["Address"])
        name = f"sshkeys-ecs-{instance['InstanceId']}"
        assert podman("container", "exists", name).returncode == 0
        # Beside it, a virtual Linux instance and a Windows one: rows only, on the range where
        # nothing listens, and no container.
        extra = json.loads(ok("instances", "create", "--virtual", "--json", "--ready-file", ready_file))["Instances"]
        extra += json.loads(ok("instances", "create", "--os", "windows", "--json", "--ready-file", ready_file))["Instances"]
        for item in extra:
            assert item["Kind"] == "virtual" and item["Status"] == "Running" and item["Address"].startswith("127.0.90.")
            assert podman("container", "exists", f"sshkeys-ecs-{item['InstanceId']}").returncode == 1
        listed = ok("instances", "list", "--ready-file", ready_file)
        assert f"{instance['InstanceId']:24} Running  linux   podman " in listed
        # A virtual instance stops through the API like any other, still without a container.
        client.call("StopInstance", InstanceId=extra[0]["InstanceId"])
        deadline = time.monotonic() + 30
        while client.call("DescribeInstances", RegionId=REGION, InstanceIds=json.dumps([extra[0]["InstanceId"]]))[
                "Instances"]["Instance"][0]["Status"] != "Stopped":
            assert time.monotonic() < deadline, "the virtual instance did not stop"
            time.sleep(0.1)
        assert podman("container", "exists", f"sshkeys-ecs-{extra[0]['InstanceId']}").returncode == 1
        ok("reset", "--ready-file", ready_file)
        assert podman("container", "exists", name).returncode == 1
    finally:
        emulator.stop()
        from ecs_emulator.podman_backend import PodmanBackend
        PodmanBackend(state_id=emulator.ready["state_id"], ssh_port=22, ensure_image=False).purge()

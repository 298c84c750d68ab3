"""A small ECS "account" on this machine for the demo and the lifecycle Molecule scenario.

    fleet.py up DIR --address-pool CIDR [--listen HOST:PORT] [--accounts FILE] [--prefix NAME]
                    [--linux N] [--windows N] [--launch-key-pair NAME] [--login-key PATH]
    fleet.py down DIR
    fleet.py show DIR

`up` starts an ECS emulator whose Linux instances are podman containers running sshd (in its
own session, so it outlives this command and a Ctrl-C in the terminal does not reach it), runs
RunInstances for N Linux and N Windows instances (the Linux ones with the key pair
--launch-key-pair, imported first from a new local key DIR/NAME), waits until they are Running
and writes into DIR (mode 0700):
    emulator.pid, ready.json, state.sqlite, requests.log, emulator.log   the emulator
    env.sh          the ALIBABA_CLOUD_* variables, for `source` (contains the test AccessKey)
    instances.json  id, name, os, address, status of each instance (DescribeInstances)
    inventory/fleet.ecs.yml   an inventory of the instances through the sshkeys.ecs.ecs plugin
                    (hosts named by instance name; groups os_linux, keypair_<name>, ...), and
                    inventory/group_vars/os_linux.yml: log in as root with --login-key
`down` stops that emulator, removes every container of its state and deletes DIR. It does
nothing (and succeeds) when nothing is up, so it is safe to call from every exit path.
`show` prints the instances again.

The API calls go through the collection's own signed client (plugins/module_utils/_ecs_client.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
LINUX_IMAGE = "debian_12_x64_20G_alibase.vhd"
WINDOWS_IMAGE = "win2022_datacenter_x64_dtc_en-us_40G_alibase.vhd"
READY_TIMEOUT = 180  # the first start may build or import the instance image
RUNNING_TIMEOUT = 180


class FleetError(Exception):
    """A step of up/down failed; the message says which and why."""


def client_for(ready: dict):
    """The collection's EcsClient for the emulator's first account."""
    sys.path.insert(0, str(ROOT / ".cache" / "collections"))
    from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_client import Credentials, EcsClient

    key = ready["accounts"][0]["access_keys"][0]
    credentials = Credentials(key["id"], key["secret"], key.get("security_token"))
    return EcsClient(credentials, ready["region"], ready["endpoint"], retries=3)


def emulator_command(directory: Path, args: argparse.Namespace) -> list[str]:
    program = VENV_BIN / "ecs-emulator"
    command = [str(program) if program.exists() else "ecs-emulator", "serve",
               "--instances", "podman", "--address-pool", args.address_pool,
               "--listen", args.listen, "--state", str(directory / "state.sqlite"),
               "--ready-file", str(directory / "ready.json"), "--log-file", str(directory / "requests.log"),
               # Status changes take no extra time; boots and reboots are still real container starts.
               "--fast"]
    if args.accounts:
        command += ["--accounts", args.accounts]
    return command


def start_emulator(directory: Path, args: argparse.Namespace) -> dict:
    env = dict(os.environ, CONTAINERS_CONF=os.environ.get("CONTAINERS_CONF", str(ROOT / "tools" / "containers.conf")))
    with open(directory / "emulator.log", "ab") as log:
        # A session of its own: the emulator must outlive this command (Molecule runs create and
        # destroy as separate playbooks), and a Ctrl-C in the terminal must reach only the demo,
        # whose cleanup then stops the emulator in order (`down`).
        process = subprocess.Popen(emulator_command(directory, args), stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=log, env=env, start_new_session=True)
    (directory / "emulator.pid").write_text(f"{process.pid}\n", encoding="ascii")
    ready_file = directory / "ready.json"
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FleetError(f"the emulator exited ({process.returncode}) before it was ready:\n"
                             + tail(directory / "emulator.log"))
        if ready_file.exists() and ready_file.stat().st_size:
            return json.loads(ready_file.read_text(encoding="utf-8"))
        time.sleep(0.1)
    raise FleetError(f"the emulator was not ready within {READY_TIMEOUT} s:\n" + tail(directory / "emulator.log"))


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, without the credentials the emulator prints when it starts."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join([line for line in text if "SECRET" not in line and "ACCESS_KEY" not in line][-lines:])
    except OSError:
        return "(no log)"


def describe_instances(client, **filters) -> list:
    """DescribeInstances, every page, through the collection's API layer (after client_for)."""
    from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_api import describe_instances as describe

    return describe(client, **filters)


def import_launch_key(client, directory: Path, name: str) -> None:
    """A new local ed25519 key DIR/NAME, imported as key pair NAME."""
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    client.call("ImportKeyPair", {"KeyPairName": name,
                                  "PublicKeyBody": key.with_suffix(".pub").read_text(encoding="ascii").strip()},
                idempotent=False)


def run_instances(client, prefix: str, linux: int, windows: int, key_pair: str | None) -> list[str]:
    """One RunInstances per instance, so each gets its own name."""
    wanted = [(f"{prefix}-linux-{n}", LINUX_IMAGE, key_pair) for n in range(1, linux + 1)]
    wanted += [(f"{prefix}-windows-{n}", WINDOWS_IMAGE, None) for n in range(1, windows + 1)]
    ids = []
    for name, image, launch_key in wanted:
        params = {"ImageId": image, "InstanceName": name, "Amount": 1, "InstanceType": "ecs.t6-c1m1.large"}
        if launch_key:
            params["KeyPairName"] = launch_key
        reply = client.call("RunInstances", params, idempotent=False)
        ids.extend(reply["InstanceIdSets"]["InstanceIdSet"])
    return ids


def wait_running(client, ids: list[str], boot_retries: int = 2) -> list[dict]:
    """Waits until every instance is Running. A boot that fails leaves an instance Stopped (the
    emulator gives sshd 60 s, which a very busy machine can miss): it is started again, twice at
    most, as an operator would."""
    deadline = time.monotonic() + RUNNING_TIMEOUT
    retries = {i: boot_retries for i in ids}
    while True:
        found = describe_instances(client, instance_ids=ids)
        statuses = {item["InstanceId"]: item["Status"] for item in found}
        if all(statuses.get(i) == "Running" for i in ids):
            return found
        for iid in [i for i in ids if statuses.get(i) == "Stopped"]:
            if not retries[iid]:
                raise FleetError(f"instance {iid} did not boot: {statuses}")
            retries[iid] -= 1
            print(f"fleet: instance {iid} did not boot in time, starting it again", file=sys.stderr)
            client.call("StartInstance", {"InstanceId": iid})
            deadline = max(deadline, time.monotonic() + 90)
        if time.monotonic() > deadline:
            raise FleetError(f"instances did not reach Running: {statuses}")
        time.sleep(0.5)


def describe(found: list[dict]) -> list[dict]:
    rows = []
    for item in found:
        addresses = item.get("PublicIpAddress", {}).get("IpAddress", []) or \
            item.get("InnerIpAddress", {}).get("IpAddress", [])
        rows.append({"id": item["InstanceId"], "name": item["InstanceName"], "os": item["OSType"],
                     "address": addresses[0] if addresses else "", "status": item["Status"],
                     "key_pair": item.get("KeyPairName", "")})
    return sorted(rows, key=lambda row: row["name"])


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_outputs(directory: Path, ready: dict, rows: list[dict], login_key: str | None) -> None:
    key = ready["accounts"][0]["access_keys"][0]
    env = {"ALIBABA_CLOUD_ECS_ENDPOINT": ready["endpoint"], "ALIBABA_CLOUD_REGION_ID": ready["region"],
           "ALIBABA_CLOUD_ACCESS_KEY_ID": key["id"], "ALIBABA_CLOUD_ACCESS_KEY_SECRET": key["secret"],
           "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true", "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}
    write_private(directory / "env.sh", "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))
    (directory / "instances.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    # The endpoint and the credentials come from the environment (env.sh); JSON is YAML.
    inventory = directory / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    plugin = {"plugin": "sshkeys.ecs.ecs", "hostnames": ["instance_name", "instance_id"]}
    (inventory / "fleet.ecs.yml").write_text(json.dumps(plugin, indent=2) + "\n", encoding="utf-8")
    login = {"ansible_user": "root", "ansible_python_interpreter": "/usr/bin/python3",
             # Every instance makes new host keys: nothing to remember between runs.
             "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}
    if login_key:
        login["ansible_ssh_private_key_file"] = str(Path(login_key).resolve())
    (inventory / "group_vars" / "os_linux.yml").write_text(json.dumps(login, indent=2) + "\n", encoding="utf-8")


def print_table(rows: list[dict]) -> None:
    for row in rows:
        address = row["address"] if row["os"] == "linux" else "(no SSH: Windows)"
        key_pair = row["key_pair"] or "-"
        print(f"  {row['id']}  {row['name']:<18} {row['os']:<8} {address:<18} {row['status']:<8} key pair: {key_pair}")


def up(args: argparse.Namespace) -> int:
    directory = Path(args.directory).resolve()
    if pid_alive(directory):
        raise FleetError(f"an emulator of {directory} is running already: run `fleet.py down` first")
    if directory.exists():
        down_directory(directory)
    directory.mkdir(mode=0o700, parents=True)
    image = subprocess.run([str(ROOT / "tools" / "instance-image.sh")], check=False)
    if image.returncode:
        raise FleetError("the instance image could not be built or loaded (tools/instance-image.sh)")
    try:
        ready = start_emulator(directory, args)
        client = client_for(ready)
        if args.launch_key_pair:
            import_launch_key(client, directory, args.launch_key_pair)
        ids = run_instances(client, args.prefix, args.linux, args.windows, args.launch_key_pair)
        try:
            rows = describe(wait_running(client, ids))
        except FleetError as exc:
            raise FleetError(f"{exc}\nthe emulator's log ends with:\n{tail(directory / 'emulator.log')}") from None
        write_outputs(directory, ready, rows, args.login_key)
    except BaseException:
        # Half a fleet is no use to anyone: leave nothing running behind a failed start.
        down_directory(directory)
        raise
    print(f"ECS emulator at {ready['endpoint']} (region {ready['region']}), "
          f"{args.linux} Linux and {args.windows} Windows instances Running:")
    print_table(rows)
    return 0


def pid_alive(directory: Path) -> int | None:
    """The emulator's pid when that process still runs this directory's state, else None."""
    try:
        pid = int((directory / "emulator.pid").read_text(encoding="ascii").strip())
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    # A pid can be reused by another program: only stop it if it serves our state file.
    return pid if str(directory / "state.sqlite") in cmdline else None


def state_id_of(directory: Path) -> str | None:
    try:
        return json.loads((directory / "ready.json").read_text(encoding="utf-8"))["state_id"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        with sqlite3.connect(f"file:{directory / 'state.sqlite'}?mode=ro", uri=True) as db:
            row = db.execute("SELECT v FROM meta WHERE k = 'state_id'").fetchone()
        return row[0] if row else None
    except sqlite3.Error:
        return None


def stop_emulator(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    for _attempt in range(100):
        if not Path(f"/proc/{pid}").exists() or zombie(pid):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


STATE_LABEL = "io.github.sshkeys-ecs.emulator.state"


def podman_env() -> dict:
    return dict(os.environ, CONTAINERS_CONF=os.environ.get("CONTAINERS_CONF", str(ROOT / "tools" / "containers.conf")))


def containers_of(state_id: str) -> list[str]:
    """Names of the containers the emulator made for this state (its documented label)."""
    listed = subprocess.run(["podman", "ps", "--all", "--filter", f"label={STATE_LABEL}={state_id}",
                             "--format", "{{.Names}}"], env=podman_env(), capture_output=True, text=True, check=False)
    return listed.stdout.split()


def purge(state_id: str) -> None:
    """Every container of the state goes, and the emulator's boot configuration of it."""
    python = VENV_BIN / "python"
    # The emulator's own purge also removes the boot configuration directory; a podman rm by
    # label follows, so that a broken or missing emulator package cannot leave containers behind.
    subprocess.run([str(python) if python.exists() else sys.executable, "-m", "ecs_emulator.podman_backend",
                    "purge", state_id], env=podman_env(), check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Twice: a container whose `podman run` was under way when the emulator stopped may appear
    # only after the first pass.
    for attempt in range(2):
        names = containers_of(state_id)
        if names:
            subprocess.run(["podman", "rm", "--force", "--time", "2", *names], env=podman_env(), check=False,
                           stdout=subprocess.DEVNULL)
        if attempt == 0:
            time.sleep(1)
    left = containers_of(state_id)
    if left:
        raise FleetError(f"could not remove the containers {', '.join(left)} (state {state_id})")


def down_directory(directory: Path) -> None:
    pid = pid_alive(directory)
    if pid:
        stop_emulator(pid)
    state_id = state_id_of(directory)
    if state_id:
        purge(state_id)  # raises, keeping DIR (and so the state id) for another try
    shutil.rmtree(directory, ignore_errors=True)


def down(args: argparse.Namespace) -> int:
    directory = Path(args.directory).resolve()
    if directory.exists():
        down_directory(directory)
    return 0


def show(args: argparse.Namespace) -> int:
    directory = Path(args.directory).resolve()
    ready = json.loads((directory / "ready.json").read_text(encoding="utf-8"))
    found = describe_instances(client_for(ready))
    print_table(describe(found))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fleet.py", description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the emulator and the instances")
    p_up.add_argument("directory")
    p_up.add_argument("--address-pool", required=True, help="loopback addresses of the instances (CIDR)")
    p_up.add_argument("--listen", default="127.0.0.1:0", help="where the emulator listens (default: a free port)")
    p_up.add_argument("--accounts", help="accounts file of the emulator (default: generated keys)")
    p_up.add_argument("--prefix", default="demo", help="instance name prefix")
    p_up.add_argument("--linux", type=int, default=3)
    p_up.add_argument("--windows", type=int, default=1)
    p_up.add_argument("--launch-key-pair", help="key pair the Linux instances are launched with (made here)")
    p_up.add_argument("--login-key", help="private key Ansible logs in with as root (inventory/group_vars)")
    p_up.set_defaults(func=up)
    for name, func in (("down", down), ("show", show)):
        p = sub.add_parser(name)
        p.add_argument("directory")
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except FleetError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

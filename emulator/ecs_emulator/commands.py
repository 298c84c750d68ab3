"""The commands that talk to a running emulator: `env`, `instances create|list`, `reset` and
`fault add|list|clear`.

They find the emulator in this order: the command line (--endpoint, --admin-token), the ready
file that `serve --ready-file` wrote (--ready-file or $ECS_EMULATOR_READY_FILE), then the
environment that `serve` prints and `env` exports ($ALIBABA_CLOUD_ECS_ENDPOINT,
$ECS_EMULATOR_ADMIN_TOKEN). Everything but `env` goes through the token-protected admin API.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shlex
import sys
import time
from dataclasses import asdict
from urllib.parse import urlsplit

from .faults import Fault, FaultError, parse_spec


class CommandError(Exception):
    """What went wrong, said to the user; the command exits 1."""


def add_commands(sub) -> None:
    """The client commands, next to `serve` (cli.py)."""
    where = argparse.ArgumentParser(add_help=False)
    group = where.add_argument_group("which emulator")
    group.add_argument("--ready-file", default=os.environ.get("ECS_EMULATOR_READY_FILE"), metavar="FILE",
                       help="the file `serve --ready-file` wrote (default $ECS_EMULATOR_READY_FILE)")
    group.add_argument("--endpoint", metavar="URL",
                       help="the emulator's endpoint, e.g. http://127.0.0.1:18080 (default: from the ready file, "
                            "else $ALIBABA_CLOUD_ECS_ENDPOINT)")
    group.add_argument("--admin-token", metavar="TOKEN",
                       help="the admin token (default: from the ready file, else $ECS_EMULATOR_ADMIN_TOKEN)")

    env = sub.add_parser("env", parents=[where], help="print export lines for a shell: endpoint, region, AccessKey, admin token",
                         description="Print `export NAME=value` lines for the collection (ALIBABA_CLOUD_*) and for these "
                                     "commands (ECS_EMULATOR_*), read from the ready file: eval \"$(ecs-emulator env "
                                     "--ready-file FILE)\".")
    env.add_argument("--account", default=None, metavar="NAME", help="whose AccessKey (default: the first account)")
    env.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                     help="wait up to SECONDS for the ready file to appear (an emulator just started)")
    env.set_defaults(run=run_env)

    instances_parser = sub.add_parser("instances", help="create or list instances")
    instances = instances_parser.add_subparsers(dest="instances_command", required=True)
    create = instances.add_parser("create", parents=[where], help="create instances (RunInstances) and wait until they run",
                                  description="Create instances through RunInstances in any account and region. With "
                                              "--instances podman, Linux instances are containers with sshd unless "
                                              "--virtual; with --instances virtual, and for Windows, they are rows only.")
    create.add_argument("--os", choices=("linux", "windows"), default="linux", help="default linux")
    create.add_argument("--count", type=int, default=1, help="how many (1 to 100, default 1)")
    create.add_argument("--name", default="", help="InstanceName (default: the instance id)")
    create.add_argument("--key-pair", default="", metavar="NAME", help="a key pair to bind at the first boot (Linux only)")
    create.add_argument("--image", default="", metavar="ID",
                        help="ImageId (default: a Debian or Windows image id; an id starting with 'win' makes a "
                             "Windows instance)")
    create.add_argument("--account", default="", metavar="NAME", help="account (default: the first one)")
    create.add_argument("--region", default="", help="region (default: the first one served)")
    create.add_argument("--virtual", action="store_true",
                        help="with an emulator that runs podman instances: rows only, no container, addresses from "
                             "127.0.90.0/24 (Windows instances always are)")
    create.add_argument("--no-wait", action="store_true", help="return while they are still Pending")
    create.add_argument("--json", action="store_true", help="print the answer as JSON")
    create.set_defaults(run=run_create)
    listing = instances.add_parser("list", parents=[where], help="list the instances of every account and region")
    listing.add_argument("--json", action="store_true", help="print the answer as JSON")
    listing.set_defaults(run=run_list)

    reset = sub.add_parser("reset", parents=[where], help="delete every instance, key pair, tag and fault; accounts stay",
                           description="Back to an empty account: every instance (and its container), key pair, tag and "
                                       "fault goes; the accounts and their AccessKeys stay.")
    reset.set_defaults(run=run_reset)

    fault = sub.add_parser("fault", help="inject, list or clear faults").add_subparsers(dest="fault_command", required=True)
    add = fault.add_parser("add", parents=[where], help="inject faults (the same SPEC as serve --fault)",
                           description="Inject faults into the running emulator. SPEC: ACTION=KIND[,probability=P]"
                                       "[,count=N][,latency_ms=MS][,phase=before|after][,status=S][,code=C]; KIND is "
                                       "throttling, throttling-user, internal, unavailable, latency or drop; ACTION may "
                                       "be '*'.")
    add.add_argument("specs", nargs="+", metavar="SPEC")
    add.add_argument("--replace", action="store_true", help="drop the faults in place first")
    add.set_defaults(run=run_fault_add)
    fault_list = fault.add_parser("list", parents=[where], help="the faults in place")
    fault_list.set_defaults(run=run_fault_list)
    clear = fault.add_parser("clear", parents=[where], help="remove every fault")
    clear.set_defaults(run=run_fault_clear)


def run(args: argparse.Namespace) -> int:
    try:
        return args.run(args)
    except CommandError as exc:
        print(f"ecs-emulator: {exc}", file=sys.stderr)
        return 1


# --- finding the emulator -----------------------------------------------------------------------

def _ready_doc(path: str | None, wait: float = 0) -> dict:
    if not path:
        return {}
    deadline = time.monotonic() + wait
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise CommandError(f"no ready file {path}: start `ecs-emulator serve --ready-file {path}` first") from None
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read the ready file {path}: {exc.__class__.__name__}") from None
    if not isinstance(doc, dict) or "endpoint" not in doc:
        raise CommandError(f"{path} is not a ready file of ecs-emulator serve")
    return doc


def _target(args: argparse.Namespace) -> tuple[str, int, str]:
    """(host, port, admin token) of the emulator the command talks to."""
    doc = _ready_doc(args.ready_file)
    endpoint = args.endpoint or doc.get("endpoint") or os.environ.get("ALIBABA_CLOUD_ECS_ENDPOINT")
    token = args.admin_token or doc.get("admin_token") or os.environ.get("ECS_EMULATOR_ADMIN_TOKEN")
    if not endpoint:
        raise CommandError("which emulator? give --ready-file, or --endpoint, or set ALIBABA_CLOUD_ECS_ENDPOINT "
                           "(eval \"$(ecs-emulator env --ready-file FILE)\" sets it)")
    if not token:
        raise CommandError("no admin token: give --ready-file or --admin-token, or set ECS_EMULATOR_ADMIN_TOKEN "
                           "(`serve` prints it)")
    # The emulator serves plain HTTP; an endpoint without a scheme means it too.
    url = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if url.scheme != "http" or not url.hostname:
        raise CommandError(f"endpoint {endpoint!r}: the emulator serves http://HOST:PORT")
    return url.hostname, url.port or 80, token


def _admin(args: argparse.Namespace, method: str, path: str, body: dict | None = None) -> dict:
    host, port, token = _target(args)
    conn = http.client.HTTPConnection(host, port, timeout=120)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json", "X-Admin-Token": token})
        resp = conn.getresponse()
        raw = resp.read()
    except OSError as exc:
        raise CommandError(f"cannot reach the emulator at http://{host}:{port}: {exc.strerror or exc}") from None
    finally:
        conn.close()
    try:
        answer = json.loads(raw)
    except ValueError:
        raise CommandError(f"http://{host}:{port} answered HTTP {resp.status} without JSON: is it an ecs-emulator?") from None
    if answer.get("Code") == "Forbidden.AdminToken":
        raise CommandError("the emulator refused the admin token (it is in the ready file and printed by `serve`)")
    if resp.status != 200:
        raise CommandError(f"{answer.get('Code', resp.status)}: {answer.get('Message', '')}")
    return answer


# --- the commands -------------------------------------------------------------------------------

def run_env(args: argparse.Namespace) -> int:
    if not args.ready_file:
        raise CommandError("env reads the ready file: give --ready-file FILE (the file `serve --ready-file` writes)")
    doc = _ready_doc(args.ready_file, args.wait)
    accounts = doc.get("accounts") or []
    chosen = [a for a in accounts if args.account in (None, a.get("name"))][:1]
    if not chosen:
        names = ", ".join(a.get("name", "?") for a in accounts)
        raise CommandError(f"no account {args.account!r} in {args.ready_file} (accounts: {names})")
    key = chosen[0]["access_keys"][0]
    values = {
        "ALIBABA_CLOUD_ECS_ENDPOINT": doc["endpoint"],
        "ALIBABA_CLOUD_REGION_ID": doc.get("region", ""),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": key["id"],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": key["secret"],
        "ECS_EMULATOR_ADMIN_TOKEN": doc.get("admin_token", ""),
        "ECS_EMULATOR_READY_FILE": os.path.abspath(args.ready_file),
    }
    if key.get("security_token"):
        values["ALIBABA_CLOUD_SECURITY_TOKEN"] = key["security_token"]
    for name, value in values.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _print_instances(backend: str, instances: list[dict]) -> None:
    print(f"{'INSTANCE ID':24} {'STATUS':8} {'OS':7} {'KIND':7} {'ADDRESS':15} {'ACCOUNT':10} {'REGION':14} "
          f"{'KEY PAIR':16} NAME")
    for i in instances:
        print(f"{i['InstanceId']:24} {i['Status']:8} {i['OSType']:7} {i['Kind']:7} {i['Address']:15} {i['Account']:10} "
              f"{i['RegionId']:14} {i['KeyPairName'] or '-':16} {i['InstanceName']}")
    print(f"{len(instances)} instance(s), backend {backend}")


def run_create(args: argparse.Namespace) -> int:
    body = {"os": args.os, "count": args.count, "virtual": args.virtual}
    for field in ("name", "key_pair", "image", "account", "region"):
        if getattr(args, field):
            body[field] = getattr(args, field)
    answer = _admin(args, "POST", "/_admin/instances", body)
    created = {i["InstanceId"] for i in answer["Instances"]}
    if not args.no_wait:
        # Status moves to Running once the backend booted the instance (sshd answers).
        if not _admin(args, "POST", "/_admin/wait-idle").get("Idle"):
            raise CommandError("the instances did not finish booting within 60 s; see `ecs-emulator instances list`")
        answer["Instances"] = [i for i in _admin(args, "GET", "/_admin/instances")["Instances"] if i["InstanceId"] in created]
    return _show_instances(args, answer)


def run_list(args: argparse.Namespace) -> int:
    return _show_instances(args, _admin(args, "GET", "/_admin/instances"))


def _show_instances(args: argparse.Namespace, answer: dict) -> int:
    """The admin API's answer about instances, as JSON (--json) or as a table."""
    answer.pop("RequestId", None)
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        _print_instances(answer["Backend"], answer["Instances"])
    return 0


def run_reset(args: argparse.Namespace) -> int:
    answer = _admin(args, "POST", "/_admin/reset")
    print(f"deleted {answer['DeletedInstances']} instance(s) and {answer['DeletedKeyPairs']} key pair(s); faults cleared")
    return 0


def run_fault_add(args: argparse.Namespace) -> int:
    try:
        faults = [parse_spec(spec) for spec in args.specs]
    except FaultError as exc:
        raise CommandError(str(exc)) from None
    body = {"faults": [asdict(f) for f in faults], "replace": args.replace}
    _print_faults(_admin(args, "POST", "/_admin/faults", body)["Faults"])
    return 0


def run_fault_list(args: argparse.Namespace) -> int:
    _print_faults(_admin(args, "GET", "/_admin/faults")["Faults"])
    return 0


def run_fault_clear(args: argparse.Namespace) -> int:
    _admin(args, "DELETE", "/_admin/faults")
    print("no faults")
    return 0


def _print_faults(faults: list[dict]) -> None:
    defaults = asdict(Fault())
    for f in faults:
        extras = [f"{k}={v}" for k, v in f.items() if k not in ("action", "kind") and v != defaults.get(k)]
        print(f"{f['action']}={f['kind']}" + "".join(f",{e}" for e in extras))
    if not faults:
        print("no faults")

"""Command line: `ecs-emulator serve ...`, and the commands for a running emulator (commands.py)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import secrets
import signal
import sys
import threading

from . import __version__
from .accounts import AccountsError, default_accounts, load_file, to_public_dict
from .actions import DEFAULT_REGIONS, Config
from .backend import CONTAINER_POOL, VIRTUAL_POOL, InstanceBackend
from .commands import add_commands, run as run_command
from .faults import FaultError, Faults, parse_spec
from .lifecycle import Lifecycle
from .metadata import InstanceMetadata, make_metadata_server
from .server import Emulator, RequestLog, make_server
from .state import State


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError("expected HOST:PORT, for example 127.0.0.1:18080 (port 0 picks a free one)")
    return host or "127.0.0.1", int(port)


def _pool(value: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not net.is_loopback:
        raise argparse.ArgumentTypeError("the address pool must be inside 127.0.0.0/8 (instances only ever listen on loopback)")
    return net


def _fault(value: str):
    try:
        return parse_spec(value)
    except FaultError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecs-emulator", description="A local endpoint for the ECS key pair and instance API.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the endpoint in the foreground (SIGINT/SIGTERM stop it)",
                           description="Serve the ECS API on HTTP until SIGINT or SIGTERM.")
    serve.add_argument("--listen", type=_listen, default=("127.0.0.1", 18080), metavar="HOST:PORT",
                       help="address to listen on (default 127.0.0.1:18080; port 0 picks a free port)")
    serve.add_argument("--state", required=True, metavar="FILE.sqlite",
                       help="SQLite state file, created if missing; survives restarts")
    serve.add_argument("--instances", choices=("virtual", "podman"), default="virtual",
                       help="instance backend: virtual (rows only, default) or podman (real sshd containers)")
    serve.add_argument("--accounts", metavar="FILE.json",
                       help="accounts and AccessKey pairs (see the README); default: two generated accounts "
                            "'default' and 'second', kept in the state file")
    serve.add_argument("--regions", default=",".join(DEFAULT_REGIONS), metavar="R1,R2,...",
                       help="region ids served (default: %(default)s)")
    serve.add_argument("--legacy-delete", dest="strict_delete", action="store_false",
                       help="delete a key pair still attached to an instance, the name staying taken until it is "
                            "detached (Alibaba's key pair guide); default: refuse it "
                            "(InvalidParameter.KeypairAlreadyAttachedInstance), as ECS does today")
    serve.add_argument("--strict-delete", dest="strict_delete", action="store_true",
                       help="the default (kept for scripts that name it)")
    serve.add_argument("--windows-refuses-call", action="store_true",
                       help="AttachKeyPair/DetachKeyPair with a Windows instance among the ids fail as a whole "
                            "(403 DependencyViolation.WindowsInstance) instead of for that instance only")
    serve.add_argument("--ed25519", choices=("accept", "reject"), default="accept",
                       help="whether ImportKeyPair accepts ssh-ed25519 keys (not on the published list; default accept)")
    serve.add_argument("--fault", type=_fault, action="append", default=[], metavar="SPEC",
                       help="inject a fault: ACTION=KIND[,probability=P][,count=N][,latency_ms=MS][,phase=before|after]"
                            "[,status=S][,code=C][,retry_after_ms=MS]; KIND is throttling, throttling-user, internal, unavailable, latency "
                            "or drop; ACTION may be '*'. Repeatable.")
    serve.add_argument("--fault-seed", type=int, default=None, help="random seed for probabilistic faults")
    serve.add_argument("--admin-token", default=os.environ.get("ECS_EMULATOR_ADMIN_TOKEN"),
                       help="token for the admin API (header X-Admin-Token); default $ECS_EMULATOR_ADMIN_TOKEN, "
                            "else a random one, written to the ready file")
    serve.add_argument("--address-pool", type=_pool, default=None, metavar="CIDR",
                       help=f"loopback addresses for instances (default {CONTAINER_POOL} with --instances podman, "
                            f"{VIRTUAL_POOL} with --instances virtual: a range where nothing listens)")
    serve.add_argument("--ssh-port", type=int, default=22, help="sshd port of instances (default 22)")
    serve.add_argument("--ssh-closed", action="store_true",
                       help="podman instances start with their SSH port closed to the controller (only Cloud "
                            "Assistant reaches them); POST /_admin/ssh-access opens or closes one")
    serve.add_argument("--transition-seconds", type=float, default=1.5, metavar="S",
                       help="how long Pending/Starting/Stopping last before the backend is called (default 1.5)")
    serve.add_argument("--fast", action="store_true", help="test mode: status transitions take no extra time")
    serve.add_argument("--ready-file", metavar="FILE",
                       help="once listening, write a JSON file (mode 0600) with the endpoint, the admin token and "
                            "the accounts' keys")
    serve.add_argument("--metadata-listen", type=_listen, metavar="HOST:PORT",
                       help="also serve the instance metadata of one instance (its RAM role's credentials) here")
    serve.add_argument("--metadata-role", default="ecs-instance-role", metavar="NAME",
                       help="the RAM role of that instance (default %(default)s), of the first account")
    serve.add_argument("--metadata-hardened", action="store_true",
                       help="metadata requests need a token (PUT /latest/api/token), as in hardened mode")
    serve.add_argument("--log-file", metavar="FILE", help="request log (JSON lines) to FILE instead of stderr")
    serve.add_argument("--quiet", action="store_true", help="no request log")
    add_commands(sub)
    return parser


def default_pool(kind: str) -> ipaddress.IPv4Network:
    """Where instances get their addresses when --address-pool is not given. Virtual instances
    have a range of their own: in the containers' range, a ping or a login meant for a virtual
    instance could reach the container of another emulator that holds the same address."""
    return CONTAINER_POOL if kind == "podman" else VIRTUAL_POOL


def make_backend(kind: str, state_id: str, ssh_port: int, ssh_closed: bool = False) -> InstanceBackend:
    if kind == "virtual":
        return InstanceBackend()
    # Imported lazily: the podman backend and its needs are optional.
    from .podman_backend import PodmanBackend
    return PodmanBackend(state_id=state_id, ssh_port=ssh_port, ssh_closed=ssh_closed)


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def _request_log(args: argparse.Namespace) -> RequestLog | None:
    if args.quiet:
        return None
    # Line-buffered append: lines from a previous run of the same file are kept.
    stream = open(args.log_file, "a", encoding="utf-8") if args.log_file else sys.stderr
    return RequestLog(stream)


def _write_ready(path: str, doc: dict) -> None:
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2)
    os.replace(tmp, path)


def _metadata_server(args: argparse.Namespace, account, emulator: Emulator):
    """(server, endpoint) of the instance metadata service when --metadata-listen asks for one."""
    if not args.metadata_listen:
        return None, None
    host, port = args.metadata_listen
    metadata = InstanceMetadata(account, args.metadata_role, emulator.temporary_keys, args.metadata_hardened)
    try:
        server = make_metadata_server(host, port, metadata)
    except OSError as exc:
        print(f"ecs-emulator: cannot listen on {host}:{port} for the metadata service: {exc.strerror}", file=sys.stderr)
        return None, None
    return server, f"http://{host}:{server.server_address[1]}"


def serve(args: argparse.Namespace) -> int:
    _setup_logging()
    # One thread per connection: hand the GIL over sooner than the default 5 ms, so that one
    # busy request does not add its whole slice to the latency of all the others.
    sys.setswitchinterval(0.0005)
    state = State(args.state)
    try:
        accounts = load_file(args.accounts) if args.accounts else default_accounts(state)
    except AccountsError as exc:
        print(f"ecs-emulator: {exc}", file=sys.stderr)
        return 2
    state_id = state.meta_set_default("state_id", secrets.token_hex(6))
    regions = tuple(r.strip() for r in args.regions.split(",") if r.strip())
    pool = args.address_pool or default_pool(args.instances)
    config = Config(regions=regions, strict_delete=args.strict_delete, windows_refuses_call=args.windows_refuses_call,
                    accept_ed25519=args.ed25519 == "accept",
                    address_pool=pool, ssh_port=args.ssh_port)
    backend = make_backend(args.instances, state_id, args.ssh_port, args.ssh_closed)
    lifecycle = Lifecycle(state, backend, args.ssh_port, 0.0 if args.fast else args.transition_seconds)
    lifecycle.recover()
    faults = Faults(seed=args.fault_seed)
    faults.add(args.fault)
    admin_token = args.admin_token or secrets.token_urlsafe(18)
    emulator = Emulator(state, lifecycle, config, accounts, faults, admin_token)
    emulator.request_log = _request_log(args)
    host, port = args.listen
    try:
        server = make_server(host, port, emulator)
    except OSError as exc:
        print(f"ecs-emulator: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 2
    port = server.server_address[1]
    endpoint = f"http://{host}:{port}"
    metadata_server, metadata_endpoint = _metadata_server(args, accounts[0], emulator)
    if args.metadata_listen and metadata_server is None:
        server.server_close()
        return 2
    first = accounts[0].access_keys[0]
    print(f"ecs-emulator {__version__} serving {endpoint} (state {args.state}, instances {args.instances} on {pool})",
          flush=True)
    # What a user needs next: the collection's settings for the first account, and the admin
    # token the instances, reset and fault commands send (also in the ready file).
    print(f"  export ALIBABA_CLOUD_ECS_ENDPOINT={endpoint} ALIBABA_CLOUD_REGION_ID={regions[0]}\n"
          f"  export ALIBABA_CLOUD_ACCESS_KEY_ID={first.id} ALIBABA_CLOUD_ACCESS_KEY_SECRET={first.secret}\n"
          f"  export ECS_EMULATOR_ADMIN_TOKEN={admin_token}", flush=True)
    if args.ready_file:
        print(f"  the same in {args.ready_file}: eval \"$(ecs-emulator env --ready-file {args.ready_file})\"", flush=True)
    if args.ready_file:
        _write_ready(args.ready_file, {"endpoint": endpoint, "port": port, "region": regions[0],
                                       "admin_token": admin_token, "state_id": state_id, "pid": os.getpid(),
                                       "accounts": to_public_dict(accounts), "metadata_endpoint": metadata_endpoint})

    stop = threading.Event()

    def _stop(signum, frame) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if metadata_server is not None:
        threading.Thread(target=metadata_server.serve_forever, name="metadata", daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if metadata_server is not None:
            metadata_server.shutdown()
            metadata_server.server_close()
        lifecycle.close()
        backend.close()
        if emulator.request_log is not None:
            emulator.request_log.close()
        state.close()
        print("ecs-emulator stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())

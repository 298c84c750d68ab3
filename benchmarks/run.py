"""The benchmark runner behind `make bench`: every figure side by side in one run, one report.

Runs the sections in one process on one machine, one after the other (so they do not compete
with each other for the CPUs), keeps the raw samples in results.json and renders RESULTS.md and
the PNG plots from them (benchmarks/report.py). A section that fails is reported as failed and
the others still run. Nothing here is a test: no figure can fail the run.

    .venv-bench/bin/python benchmarks/run.py [--quick] [--only emulator,api,tasks,authorized_keys,rotation,payload,cloud_assistant]
                                             [--out DIR] [--from-json FILE]

--quick is a smoke run (a minute or two): fewer rounds, smaller sizes, written to
tests/output/bench/ unless --out says otherwise, so the committed results stay those of a full run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import authorized_keys_bulk
import cloud_assistant
import ecs_keypair_task
import emulator_load
import payload
import report
import rotate_fleet
from benchlib import PEERS, ROOT, VENV_BIN, ensure_peers, log

SECTIONS = {
    "emulator": emulator_load.measure,
    "api": ecs_keypair_task.measure_api,
    "tasks": ecs_keypair_task.measure_tasks,
    "authorized_keys": authorized_keys_bulk.measure,
    "rotation": rotate_fleet.measure,
    "payload": payload.measure,
    "cloud_assistant": cloud_assistant.measure,
}


def _first_line(args: list) -> str:
    try:
        return subprocess.run(args, text=True, capture_output=True, check=False).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _collection_version(namespace: str, name: str) -> str:
    manifest = PEERS / "collections" / "ansible_collections" / namespace / name / "MANIFEST.json"
    try:
        return json.loads(manifest.read_text(encoding="utf-8"))["collection_info"]["version"]
    except (OSError, KeyError, ValueError):
        return "unknown"


def _package_version(name: str) -> str:
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict:
    ensure_peers()
    return {
        "cpus": os.cpu_count(), "cpu_model": _cpu_model(), "memory": _memory(),
        "system": f"{platform.system()} {platform.release()}",
        "python": _first_line([VENV_BIN / "python", "--version"]).replace("Python ", ""),
        "bench_python": platform.python_version(),
        "ansible_core": _first_line([VENV_BIN / "ansible", "--version"]),
        "peers": {"ansible.posix": _collection_version("ansible", "posix"),
                  "amazon.aws": _collection_version("amazon", "aws"),
                  "moto": _package_version("moto"), "boto3": _package_version("boto3"),
                  "botocore": _package_version("botocore")},
        "load_before": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer rounds and smaller sizes")
    parser.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    parser.add_argument("--out", type=Path, help="where results.json, RESULTS.md and the plots go")
    parser.add_argument("--from-json", type=Path, help="only render the report from an earlier results.json")
    args = parser.parse_args()
    out = args.out or (ROOT / "tests" / "output" / "bench" if args.quick else ROOT / "benchmarks")
    out.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        results = json.loads(args.from_json.read_text(encoding="utf-8"))
    else:
        wanted = args.only.split(",") if args.only else list(SECTIONS)
        unknown = [name for name in wanted if name not in SECTIONS]
        if unknown:
            parser.error(f"unknown sections: {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
        results = {"quick": args.quick, "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                   "machine": machine(), "sections": {}, "seconds": {}}
        for name in wanted:
            log(f"== {name}")
            results.setdefault("load", {})[name] = os.getloadavg()[0]
            started = time.monotonic()
            try:
                results["sections"][name] = SECTIONS[name](args.quick)
            except (Exception, SystemExit) as exc:  # report it, run the rest
                traceback.print_exc()
                results["sections"][name] = {"error": str(exc)[-2000:] or type(exc).__name__}
            results["seconds"][name] = time.monotonic() - started
            log(f"   {name}: {results['seconds'][name]:.0f} s")
        results["machine"]["load_after"] = os.getloadavg()
        (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    summary = report.write(results, out)
    log(f"wrote {out / 'RESULTS.md'} and its plots\n\n{summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

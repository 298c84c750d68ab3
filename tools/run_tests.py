"""Runs the test stages in order and ends with one line: "N passed, N failed".

Each stage is a script in tools/stages/, run with bash from the repository root. A stage that
runs pytest writes JUnit XML into $STAGE_RESULTS, and its test cases are counted one by one; a
stage that writes no XML counts as one test that passed or failed by its exit code. Arguments
pick stages by name (for example `units sanity`); with none, every stage runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = ROOT / "tools" / "stages"
RESULTS = ROOT / ".test-results"


def stage_name(script: Path) -> str:
    """'20-units.sh' -> 'units'."""
    return script.stem.split("-", 1)[1]


def count_junit(directory: Path) -> tuple[int, int, int] | None:
    """(passed, failed, skipped) over every JUnit file in directory, or None if there is none."""
    files = sorted(directory.glob("*.xml"))
    if not files:
        return None
    passed = failed = skipped = 0
    for path in files:
        root = ET.parse(path).getroot()
        for case in root.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
            elif case.find("skipped") is not None:
                skipped += 1
            else:
                passed += 1
    return passed, failed, skipped


def run_stage(script: Path) -> tuple[int, int, int]:
    name = stage_name(script)
    results = RESULTS / name
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    print(f"\n=== stage {name}: {script.relative_to(ROOT)}", flush=True)
    started = time.monotonic()
    env = dict(os.environ, STAGE_RESULTS=str(results))
    code = subprocess.call(["bash", str(script)], cwd=ROOT, env=env)
    counted = count_junit(results)
    if counted is None:
        counted = (1, 0, 0) if code == 0 else (0, 1, 0)
    elif code != 0 and counted[1] == 0:
        # The stage failed outside its test cases (a setup step, a crash): that is a failure too.
        counted = (counted[0], counted[1] + 1, counted[2])
    passed, failed, skipped = counted
    took = time.monotonic() - started
    verdict = "ok" if failed == 0 else "FAILED"
    print(f"=== stage {name}: {verdict}, {passed} passed, {failed} failed, {skipped} skipped, {took:.0f} s",
          flush=True)
    return counted


def main(argv: list[str]) -> int:
    scripts = sorted(STAGES.glob("[0-9][0-9]-*.sh"))
    known = {stage_name(s) for s in scripts}
    unknown = [a for a in argv if a not in known]
    if unknown:
        print(f"unknown stage(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}", file=sys.stderr)
        return 2
    if argv:
        scripts = [s for s in scripts if stage_name(s) in argv]
    totals = [0, 0, 0]
    failed_stages = []
    for script in scripts:
        counted = run_stage(script)
        totals = [t + c for t, c in zip(totals, counted)]
        if counted[1]:
            failed_stages.append(stage_name(script))
    print()
    if failed_stages:
        print(f"failed stages: {', '.join(failed_stages)}")
    print(f"{totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    return 1 if totals[1] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

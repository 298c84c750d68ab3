"""tools/with-emulator.sh: environment for the command, its exit code, the emulator stopped after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "with-emulator.sh"

PROBE = """
import json, os, sys, http.client
sys.path.insert(0, {tests!r})
from support import v1_call
port = int(os.environ["ALIBABA_CLOUD_ECS_ENDPOINT"].rsplit(":", 1)[1])
first = (os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"])
second = (os.environ["ECS_EMULATOR_SECOND_ACCESS_KEY_ID"], os.environ["ECS_EMULATOR_SECOND_ACCESS_KEY_SECRET"])
results = {{}}
for label, key in (("first", first), ("second", second)):
    status, body = v1_call(port, key, {{"Action": "DescribeKeyPairs", "RegionId": os.environ["ALIBABA_CLOUD_REGION_ID"]}})
    results[label] = status
conn = http.client.HTTPConnection("127.0.0.1", port)
conn.request("GET", "/_admin/faults", headers={{"X-Admin-Token": os.environ["ECS_EMULATOR_ADMIN_TOKEN"]}})
results["admin"] = conn.getresponse().status
results["pid"] = int(os.environ["ECS_EMULATOR_PID"])
results["strict"] = "--strict-delete" in open("/proc/%d/cmdline" % results["pid"]).read().replace("\\0", " ")
print(json.dumps(results))
sys.exit(7)
"""


def test_runs_command_with_environment_and_stops():
    env = dict(os.environ)
    env.pop("ALIBABA_CLOUD_SECURITY_TOKEN", None)
    code = PROBE.format(tests=str(Path(__file__).parent))
    proc = subprocess.run(["bash", str(SCRIPT), "--strict-delete", "--", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 7, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results["first"] == 200 and results["second"] == 200 and results["admin"] == 200
    assert results["strict"] is True
    assert not Path(f"/proc/{results['pid']}").exists()  # the emulator is gone


def test_usage_error():
    proc = subprocess.run(["bash", str(SCRIPT), "--fast"], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2 and "usage" in proc.stderr

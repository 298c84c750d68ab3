"""Runs docs/getting-started.md exactly as written, outside the checkout.

usage: walkthrough.py PAGE TARBALL EMULATOR_WHEEL [--python PYTHON] [--keep]

The page's fenced blocks, in order, become one bash script: a ```sh block is run as it stands,
a ```yaml file=NAME block is written to NAME first (as a reader saves it). The script runs with
`set -euo pipefail` in an empty directory that holds only the two release files, with a fresh
HOME (no ~/.ansible of this machine), a clean environment (nothing of the checkout's virtual
environments or ANSIBLE_* settings) and `python3` being PYTHON: the newest Python here, so that
`pip install ansible-core` takes the newest ansible-core. Then what the page promises is checked
in its output and its files. Exit 0 when all holds; otherwise the reasons and the log's tail.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

FENCE = re.compile(r"^```(\S*)([^\n]*)\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


def script_of(page: str) -> str:
    """The page's runnable blocks as one script."""
    parts = ["set -euo pipefail"]
    for language, info, body in FENCE.findall(page):
        target = re.search(r"\bfile=(\S+)", info)
        if target:
            # A quoted here-document: the block is written byte for byte, no expansion.
            parts.append(f"cat > {target.group(1)} <<'WALKTHROUGH_EOF'\n{body}WALKTHROUGH_EOF")
        elif language == "sh":
            parts.append(body)
    return "\n".join(parts) + "\n"


def recaps(log: str) -> list[dict]:
    """changed=/failed= of each PLAY RECAP for localhost, in order."""
    return [dict(changed=int(m.group(1)), failed=int(m.group(2)))
            for m in re.finditer(r"^localhost\s+:.*?changed=(\d+).*?failed=(\d+)", log, re.MULTILINE)]


def check(work: Path, log: str) -> list[str]:
    """What the page promises, against what the run printed and left behind."""
    problems = []
    runs = recaps(log)
    if [r["changed"] for r in runs] != [2, 2, 0] or any(r["failed"] for r in runs):
        problems.append(f"expected the plan and the first run to change 2 tasks and the second none, got {runs}")
    said = re.findall(r'"msg": "key pair first-key (\w+), attached to (\d) more', log)
    if said != [("created", "2"), ("created", "2"), ("unchanged", "0")]:
        problems.append(f"the playbook's own report differs from the page's: {said}")
    key = work / "first-key.pem"
    if not key.is_file() or stat.S_IMODE(key.stat().st_mode) != 0o600:
        problems.append("first-key.pem is missing or not mode 0600")
    graph = log.rsplit("@keypair_first_key:", 1)
    if len(graph) != 2 or len(re.findall(r"\|--i-", graph[1])) != 2:
        problems.append("the inventory does not show the two Linux instances in keypair_first_key")
    if "sshkeys.ecs" not in log or "0.1.0" not in log:
        problems.append("ansible-galaxy collection list did not show the installed collection")
    if key.is_file() and key.read_text().strip().splitlines()[1] in log:
        problems.append("the private key shows in the output")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page")
    parser.add_argument("tarball")
    parser.add_argument("wheel")
    parser.add_argument("--python", default=shutil.which("python3"), help="the python3 of the page (default: python3)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    page = Path(args.page).read_text(encoding="utf-8")
    work = Path(tempfile.mkdtemp(prefix="sshkeys-walkthrough-"))
    try:
        home, bin_dir, run_dir = work / "home", work / "bin", work / "run"
        for directory in (home, bin_dir, run_dir):
            directory.mkdir()
        for release in (args.tarball, args.wheel):
            shutil.copy(release, run_dir)
        (bin_dir / "python3").symlink_to(args.python)
        script = work / "page.sh"
        script.write_text(script_of(page), encoding="utf-8")
        env = {
            "HOME": str(home), "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
            # The machine's pip cache (under the real HOME) keeps the install to seconds.
            "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR") or os.path.expanduser("~/.cache/pip"),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
        }
        for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST"):
            if os.environ.get(name):
                env[name] = os.environ[name]
        proc = subprocess.run(["bash", str(script)], cwd=run_dir, env=env, capture_output=True, text=True,
                              timeout=900, check=False)
        log = proc.stdout + proc.stderr
        (work / "page.log").write_text(log, encoding="utf-8")
        problems = [f"the page's commands failed (exit {proc.returncode})"] if proc.returncode else check(run_dir, log)
        if problems:
            print("walkthrough: " + "; ".join(problems))
            print("--- the end of its output:")
            print("\n".join(log.splitlines()[-40:]))
            return 1
        version = re.search(r"ansible \[core (\d+\.\d+\.\d+)\]", log)
        print(f"walkthrough: every command of {args.page} ran as written, and the page's promises hold"
              + (f" (ansible-core {version.group(1)})" if version else ""))
        return 0
    finally:
        # The page stops its emulator; a failure half way may not have: stop it by its pid.
        ready = work / "run" / "ecs-ready.json"
        if ready.is_file():
            try:
                os.kill(int(json.loads(ready.read_text())["pid"]), 15)
            except (OSError, ValueError, KeyError):
                pass
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

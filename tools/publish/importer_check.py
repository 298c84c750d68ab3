"""Judges one galaxy-importer run (the galaxy stage) and writes its JUnit cases.

  python tools/publish/importer_check.py LOG RESULT.json EXIT_CODE PEP8_IGNORE OUT.xml

LOG is what `python -m galaxy_importer.main TARBALL` printed, RESULT.json the importer_result.json
it wrote, EXIT_CODE its exit code. PEP8_IGNORE is ansible-test's list of the pycodestyle codes its
pep8 sanity test ignores on purpose (ansible_test/_util/controller/sanity/pep8/current-ignore.txt).
Four cases:
  import         exit code 0, "Importer processing completed successfully", no ERROR line;
  warnings       every WARNING line explained: only flake8 findings whose code ansible-test's
                 pep8 test ignores (W503 and W504 contradict each other, so one of them is always
                 reported; the sanity test Galaxy also runs takes neither); anything else fails;
  documentation  ansible-doc gave Galaxy the documentation of every module, inventory and
                 filter plugin, the role has its README, and the collection README rendered;
  metadata       the tags Automation Hub requires, an SPDX licence, requires_ansible.
Prints one line per case and the accepted warnings counted by code.
"""

from __future__ import annotations

import collections
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from junit import Case, write_suite  # noqa: E402  (tools/junit.py, found through the path above)

SUITE = "galaxy"
# flake8 as galaxy-importer runs it: "WARNING: path:line:col: CODE message".
FLAKE8 = re.compile(r"^WARNING: (?P<path>[^:]+):\d+:\d+: (?P<code>[A-Z]\d+) ")
DOCUMENTED = ("module", "inventory", "filter")


def pep8_ignored(path: str) -> set[str]:
    codes = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            codes.add(line)
    return codes


def judge(log: str, result: dict | None, exit_code: int, ignored: set[str]) -> list[Case]:
    lines = log.splitlines()
    cases = []

    problems = []
    if exit_code != 0:
        problems.append(f"galaxy-importer exited with {exit_code}")
    if "Importer processing completed successfully" not in lines:
        problems.append("galaxy-importer did not report a completed import")
    errors = [line for line in lines if line.startswith("ERROR")]
    problems.extend(errors[:10])
    cases.append(Case(SUITE, "galaxy-importer: import", failure="; ".join(problems) or None,
                      text="\n".join(errors) or None))

    accepted: collections.Counter = collections.Counter()
    unexplained = []
    for line in lines:
        if not line.startswith("WARNING"):
            continue
        match = FLAKE8.match(line)
        if match and match.group("code") in ignored:
            accepted[match.group("code")] += 1
        else:
            unexplained.append(line)
    failure = f"{len(unexplained)} warning(s) not explained: {unexplained[0]}" if unexplained else None
    cases.append(Case(SUITE, "galaxy-importer: warnings", failure=failure, text="\n".join(unexplained) or None))
    if accepted:
        print("accepted flake8 warnings (codes ansible-test's pep8 test ignores): "
              + ", ".join(f"{code} x{count}" for code, count in sorted(accepted.items())))

    problems = []
    if result is None:
        problems.append("no importer_result.json")
    else:
        blob = result.get("docs_blob") or {}
        contents = blob.get("contents") or []
        documented = [c for c in contents if c.get("content_type") in DOCUMENTED]
        if not documented:
            problems.append("no module, inventory or filter plugin in the result")
        for content in documented:
            if not (content.get("doc_strings") or {}).get("doc"):
                problems.append(f"no documentation for {content['content_type']} {content['content_name']}")
        for content in contents:
            if content.get("content_type") == "role" and not content.get("readme_html"):
                problems.append(f"role {content['content_name']} has no rendered README")
        if not ((blob.get("collection_readme") or {}).get("html")):
            problems.append("the collection README did not render")
    cases.append(Case(SUITE, "galaxy-importer: documentation", failure="; ".join(problems) or None))

    problems = []
    if result is not None:
        metadata = result.get("metadata") or {}
        if not metadata.get("license"):
            problems.append("no SPDX licence in galaxy.yml")
        if result.get("custom_license"):
            problems.append("the licence is a custom licence file, not SPDX")
        if not result.get("requires_ansible"):
            problems.append("meta/runtime.yml declares no requires_ansible")
        if not metadata.get("tags"):
            problems.append("no tags")
    else:
        problems.append("no importer_result.json")
    cases.append(Case(SUITE, "galaxy-importer: metadata", failure="; ".join(problems) or None))
    return cases


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    log_path, result_path, exit_code, ignore_path, out = argv
    log = Path(log_path).read_text(encoding="utf-8", errors="replace")
    try:
        result = json.loads(Path(result_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        result = None
    cases = judge(log, result, int(exit_code), pep8_ignored(ignore_path))
    for case in cases:
        print(f"--- {case.name}: {'FAILED: ' + case.failure if case.failure else 'passed'}")
    return 1 if write_suite(out, SUITE, cases) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""JUnit XML for the test stages that do not get theirs from pytest: the one writer they share.

tools/run_tests.py counts the <testcase> elements of every XML file a stage leaves in
$STAGE_RESULTS. Python tools import this module (`from junit import Case, write_suite`); shell
stages record their cases in a tab-separated file (junit_case in tools/stages/common.sh) and
turn it into XML with the command line:

  python tools/junit.py cases SUITE CASES.tsv OUT.xml
      one line a case: classname, name, status (0 passes), seconds (may be empty), failure
      message, log file (may be empty: its end becomes the failure's text)
  python tools/junit.py sanity LABEL LOG OUT.xml
      one case per test that `ansible-test sanity` ran (its log), failed where it found issues;
      ansible-test's own --junit option records failures only, and the passes count too
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

# How much of a failed case's log goes into the XML: the end, where the error is.
LOG_TAIL = 4000
# Colour codes, and the characters XML 1.0 does not allow (tab, newline and return are allowed).
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass
class Case:
    """One test case; it failed when failure (the message) is set."""

    classname: str
    name: str
    seconds: Optional[float] = None
    failure: Optional[str] = None
    text: Optional[str] = None


def clean(text: str) -> str:
    """Text as XML can hold it: no colour codes, no control characters."""
    return _NOT_XML.sub("", _ANSI.sub("", text))


def write_suite(path: Path | str, suite: str, cases: Iterable[Case]) -> int:
    """Writes one <testsuite> of cases to path; returns how many failed."""
    root = ET.Element("testsuite", name=suite)
    failures = 0
    for case in cases:
        element = ET.SubElement(root, "testcase", classname=case.classname, name=clean(case.name))
        if case.seconds is not None:
            element.set("time", f"{case.seconds:.2f}")
        if case.failure is not None:
            failures += 1
            failure = ET.SubElement(element, "failure", message=clean(case.failure))
            if case.text:
                failure.text = clean(case.text)
    root.set("tests", str(len(root)))
    root.set("failures", str(failures))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return failures


def log_tail(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-LOG_TAIL:]
    except OSError as exc:
        return f"(no log: {exc.strerror})"


def read_cases(tsv: str) -> list[Case]:
    """The cases a shell stage recorded (see the module's description for the columns)."""
    cases = []
    with open(tsv, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            classname, name, status, seconds, message, log = (line.rstrip("\n").split("\t") + [""] * 6)[:6]
            case = Case(classname, name, float(seconds) if seconds else None)
            if status != "0":
                case.failure = message or f"exit status {status}"
                case.text = log_tail(log) if log else None
            cases.append(case)
    return cases


def sanity_cases(label: str, log_path: str) -> list[Case]:
    """One case per sanity test the log shows: `Running sanity test "NAME"`, and for each
    test that failed `ERROR: Found N NAME issue(s)`."""
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        log = handle.read()
    ran = re.findall(r'^Running sanity test "([^"]+)"', log, re.MULTILINE)
    failed = set(re.findall(r"^ERROR: Found \d+ (\S+) issue", log, re.MULTILINE))
    return [Case(f"sanity.{label}", name, failure=f"{name} found issues (see the log above)" if name in failed else None)
            for name in ran]


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "cases":
        suite, tsv, out = argv[1:]
        write_suite(out, suite, read_cases(tsv))
        return 0
    if len(argv) == 4 and argv[0] == "sanity":
        label, log, out = argv[1:]
        write_suite(out, f"sanity-{label}", sanity_cases(label, log))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

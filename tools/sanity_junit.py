"""Turns the output of `ansible-test sanity` into JUnit XML: one test case per sanity test.

ansible-test prints `Running sanity test "NAME"` for each test and `ERROR: Found N NAME
issue(s)` for each that fails; its own --junit option records failures only, and the test
runner wants to count the passes as well.
Usage: python sanity_junit.py LABEL LOG OUT.xml
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET


def main(label: str, log_path: str, out_path: str) -> None:
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        log = handle.read()
    ran = re.findall(r'^Running sanity test "([^"]+)"', log, re.MULTILINE)
    failed = set(re.findall(r"^ERROR: Found \d+ (\S+) issue", log, re.MULTILINE))
    suite = ET.Element("testsuite", name=f"sanity-{label}")
    for name in ran:
        case = ET.SubElement(suite, "testcase", classname=f"sanity.{label}", name=name)
        if name in failed:
            ET.SubElement(case, "failure", message=f"{name} found issues (see the log above)")
    ET.ElementTree(suite).write(out_path, encoding="utf-8", xml_declaration=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])

"""Renders the reliability suite's figures into docs/reliability.md.

  python tools/reliability_report.py [--figures DIR] [--output FILE]

The reliability stage renders its page into tests/output/reliability/reliability.md after every
run; `make reliability-report` renders docs/reliability.md (the default output) from the
figures of the last run.

Each test module of tests/reliability writes one JSON file per section into $RELIABILITY_FIGURES
(default tests/output/reliability/):
  {"title": str, "order": int, "summary": str, "columns": [str], "rows": [[str|int, ...]]}
Sections appear by order (then title). The page names no date and no commit, so that it only
changes when the figures do; it names the machine the suite ran on. A file that does not follow
the schema is an error (exit 1), not a silently missing section.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIGURES = Path(os.environ.get("RELIABILITY_FIGURES") or ROOT / "tests" / "output" / "reliability")
DEFAULT_OUTPUT = ROOT / "docs" / "reliability.md"

INTRO = """\
# Reliability and security figures

This page shows the figures each part of the reliability suite (`tests/reliability`, stage
`80-reliability`: `make reliability`) records while its tests run, as `make reliability-report`
renders them after a whole run. Every row is a test case that ran; its last column is that
test's outcome.
"""


class SchemaError(ValueError):
    pass


def load_section(path: Path) -> Dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SchemaError(f"{path.name}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise SchemaError(f"{path.name}: not a JSON object")
    for name, kind in (("title", str), ("order", int), ("summary", str), ("columns", list), ("rows", list)):
        if not isinstance(doc.get(name), kind) or (kind is int and isinstance(doc.get(name), bool)):
            raise SchemaError(f"{path.name}: '{name}' must be a {kind.__name__}")
    width = len(doc["columns"])
    for number, row in enumerate(doc["rows"], 1):
        if not isinstance(row, list) or len(row) != width:
            raise SchemaError(f"{path.name}: row {number} must be a list of {width} cells")
        if not all(isinstance(cell, (str, int, float)) and not isinstance(cell, bool) for cell in row):
            raise SchemaError(f"{path.name}: row {number} holds a cell that is not a string or a number")
    return doc


# The temporary directories a run used say nothing about the collection: shown as $TMPDIR/.
_RUN_TEMP = re.compile(r"/tmp/(?:pytest-of-[^/\s]+/pytest-\d+/)?")


def cell(value: Any) -> str:
    """A table cell: one line, pipes escaped, the run's temporary paths shortened, long text cut."""
    text = _RUN_TEMP.sub("$TMPDIR/", str(value))
    text = text.replace("\r", " ").replace("\n", " ").replace("|", "\\|").strip()
    if len(text) > 160:
        text = text[:157] + "..."
    return text or " "


def table(columns: List[str], rows: List[List[Any]]) -> str:
    lines = ["| " + " | ".join(cell(c) for c in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    try:
        from ansible.release import __version__ as ansible_version  # pylint: disable=import-outside-toplevel
    except ImportError:
        ansible_version = "not installed"
    system = platform.system()
    try:
        pretty = dict(
            line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
        ).get("PRETTY_NAME", "").strip('"')
    except OSError:
        pretty = ""
    memory = ""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages * page_size / 2**30:.0f} GiB memory"
    except (ValueError, OSError, AttributeError):
        pass
    return (f"{pretty or system} on {platform.machine()}, {os.cpu_count()} CPU cores{memory}; "
            f"Python {platform.python_version()}, ansible-core {ansible_version}")


def render(sections: List[Dict[str, Any]]) -> str:
    parts = [INTRO, f"Machine: {machine()}.\n"]
    if not sections:
        parts.append("No figures were recorded: the suite has not run.\n")
    for doc in sorted(sections, key=lambda d: (d["order"], d["title"])):
        parts.append(f"## {doc['title']}\n\n{doc['summary'].strip()}\n\n{table(doc['columns'], doc['rows'])}\n")
    return "\n".join(parts)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figures", type=Path, default=DEFAULT_FIGURES, help="directory of the JSON files")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the Markdown file to write")
    args = parser.parse_args(argv)
    files = sorted(args.figures.glob("*.json")) if args.figures.is_dir() else []
    try:
        sections = [load_section(path) for path in files]
    except SchemaError as exc:
        print(f"reliability_report: {exc}", file=sys.stderr)
        return 1
    text = render(sections)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.output)
    print(f"reliability_report: {len(sections)} section(s) from {len(files)} file(s) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

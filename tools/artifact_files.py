"""Checks the files of the collection tarball against the list in docs/development.md.

The list sits between the markers `<!-- artifact files start -->` and `<!-- artifact files end -->`
in a fenced block, one line a path, or a pattern where `*` stands for any name within one
directory (`plugins/modules/*.py`). Every file of the tarball must match a line, and every line
must match a file of the tarball: a new file, a file gone or a file that build_ignore no longer
keeps out shows as a difference.

  python tools/artifact_files.py TARBALL [LIST.md]     prints the differences, exit 1 if any
  python tools/artifact_files.py --print TARBALL       prints the tarball's files, one a line
"""

from __future__ import annotations

import re
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LIST = ROOT / "docs" / "development.md"
START = "<!-- artifact files start -->"
END = "<!-- artifact files end -->"


def tarball_files(path: str | Path) -> list[str]:
    """The regular files of the tarball (directories left out), sorted."""
    with tarfile.open(path, "r:gz") as tar:
        return sorted(member.name for member in tar.getmembers() if member.isfile())


def listed_lines(markdown: str) -> list[str]:
    """The lines of the fenced block between the markers (no fences, no blank lines)."""
    if START not in markdown or END not in markdown:
        raise ValueError(f"the markers {START} and {END} are missing")
    block = markdown.split(START, 1)[1].split(END, 1)[0]
    return [line.strip() for line in block.splitlines()
            if line.strip() and not line.strip().startswith("```")]


def pattern(line: str) -> re.Pattern:
    """`*` matches within one path segment; everything else literally."""
    return re.compile("[^/]*".join(re.escape(part) for part in line.split("*")) + r"\Z")


def differences(files: list[str], lines: list[str]) -> list[str]:
    """What does not agree, one sentence each; empty when the list and the tarball agree."""
    compiled = [(line, pattern(line)) for line in lines]
    problems = []
    for name in files:
        if not any(regex.match(name) for regex in dict(compiled).values()):
            problems.append(f"in the tarball, not in the list: {name}")
    for line, regex in compiled:
        if not any(regex.match(name) for name in files):
            problems.append(f"in the list, not in the tarball: {line}")
    duplicates = sorted({line for line in lines if lines.count(line) > 1})
    problems.extend(f"listed twice: {line}" for line in duplicates)
    return problems


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--print":
        print("\n".join(tarball_files(argv[1])))
        return 0
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    list_path = Path(argv[1]) if len(argv) == 2 else DEFAULT_LIST
    problems = differences(tarball_files(argv[0]), listed_lines(list_path.read_text(encoding="utf-8")))
    for problem in problems:
        print(problem)
    if not problems:
        print(f"the tarball holds exactly the files listed in {list_path.name}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

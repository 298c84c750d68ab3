"""Checks the files of the collection tarball against the list in docs/development.md.

The list sits between the markers `<!-- artifact files start -->` and `<!-- artifact files end -->`
in a fenced block, one line a path, or a pattern where `*` stands for any name within one
directory (`plugins/modules/*.py`). Every file of the tarball must match a line, and every line
must match a file of the tarball: a new file, a file gone or a file that build_ignore no longer
keeps out shows as a difference.

  python tools/artifact_files.py TARBALL [LIST.md]     prints the differences, exit 1 if any
  python tools/artifact_files.py --print TARBALL       prints the tarball's files, one a line
  python tools/artifact_files.py --links TARBALL       prints the links of the tarball's Markdown
                                                       files that are dead once installed, exit 1
                                                       if any

On Galaxy and in an installed collection, a relative link from a shipped page works only when the
tarball holds its target; a file the tarball leaves out is linked in the repository instead
(`<repository of galaxy.yml>/blob/main/<path>`, tools/docs_links.py checks that the path exists),
and a file it holds is linked relatively.
"""

from __future__ import annotations

import posixpath
import re
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_links import is_relative, repository_blob, targets  # noqa: E402  (tools/docs_links.py)

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


def markdown_pages(path: str | Path) -> dict[str, str]:
    """The Markdown files of the tarball and their text."""
    with tarfile.open(path, "r:gz") as tar:
        return {member.name: tar.extractfile(member).read().decode("utf-8")
                for member in tar.getmembers() if member.isfile() and member.name.endswith(".md")}


def dead_links(pages: dict[str, str], files: list[str], blob: str) -> list[str]:
    """The links of the shipped pages that do not work once installed, one sentence each."""
    shipped = set(files)
    # A link may name a directory of the tarball (docs/reference/): any file under it will do.
    directories = {posixpath.dirname(name) for name in files}
    directories |= {parent for name in directories for parent in _parents(name)}
    problems = []
    for page, text in sorted(pages.items()):
        for target in targets(text):
            path = target.split("#", 1)[0]
            if target.startswith(blob):
                if path[len(blob):] in shipped:
                    problems.append(f"{page}: {target}: the tarball holds {path[len(blob):]}, link to it relatively")
            elif is_relative(target):
                local = posixpath.normpath(posixpath.join(posixpath.dirname(page), path))
                if local not in shipped and local.rstrip("/") not in directories:
                    problems.append(f"{page}: {target}: the tarball leaves {local} out, link to {blob}{local}"
                                    + (f"#{target.split('#', 1)[1]}" if "#" in target else ""))
    return problems


def _parents(directory: str) -> list[str]:
    parents = []
    while directory:
        directory = posixpath.dirname(directory)
        parents.append(directory)
    return parents


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--print":
        print("\n".join(tarball_files(argv[1])))
        return 0
    if len(argv) == 2 and argv[0] == "--links":
        problems = dead_links(markdown_pages(argv[1]), tarball_files(argv[1]), repository_blob())
        for problem in problems:
            print(problem)
        if not problems:
            print("every relative link of the tarball's Markdown files names a file the tarball holds")
        return 1 if problems else 0
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

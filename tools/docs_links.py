"""Checks that the links of the Markdown documentation point at files that exist.

    python tools/docs_links.py [--junit FILE]   # exit 1 when a link is broken

Covers README.md, docs/**/*.md, roles/*/README.md, benchmarks/README.md and emulator/README.md
(whichever exist). A relative link must name a file of the checkout; so must a link into the
repository itself (`<repository of galaxy.yml>/blob/main/<path>`), which the pages the tarball
ships use for files it leaves out (tools/artifact_files.py --links checks that). Other web links
and links within a page (#...) are not followed. One JUnit test case per file.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from junit import Case, write_suite  # noqa: E402  (tools/junit.py)

ROOT = Path(__file__).resolve().parent.parent
PATTERNS = ["README.md", "docs/**/*.md", "roles/*/README.md", "benchmarks/README.md", "emulator/README.md"]
# [text](target) and [text]: target, outside code spans and fenced blocks.
INLINE = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")
REPOSITORY = re.compile(r"^repository:\s*(\S+)\s*$", re.MULTILINE)


def repository_blob(root: Path = ROOT) -> str:
    """The address prefix of a file of the repository's main branch, from galaxy.yml."""
    found = REPOSITORY.search((root / "galaxy.yml").read_text(encoding="utf-8"))
    if not found:
        raise ValueError("galaxy.yml names no repository")
    return found.group(1).rstrip("/") + "/blob/main/"


def targets(text: str) -> list[str]:
    text = CODE.sub("", FENCE.sub("", text))
    return INLINE.findall(text) + REFERENCE.findall(text)


def is_relative(target: str) -> bool:
    """Not a web or mail link, nor an anchor on the same page."""
    return not (re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"))


def broken_links(path: Path, root: Path = ROOT, blob: str | None = None) -> list[str]:
    blob = blob or repository_blob(root)
    broken = []
    for target in targets(path.read_text(encoding="utf-8")):
        if target.startswith(blob):
            # A link into this repository: the file must be in the checkout, so it cannot rot.
            local = root / target[len(blob):].split("#", 1)[0]
        elif is_relative(target):
            local = path.parent / target.split("#", 1)[0]
        else:
            continue
        if not local.exists():
            broken.append(target)
    return broken


def files() -> list[Path]:
    found: set[Path] = set()
    for pattern in PATTERNS:
        found.update(p for p in ROOT.glob(pattern) if p.is_file())
    return sorted(found)


def main(argv: list[str]) -> int:
    junit = Path(argv[argv.index("--junit") + 1]) if "--junit" in argv else None
    cases = []
    blob = repository_blob()
    for path in files():
        name = str(path.relative_to(ROOT))
        broken = broken_links(path, blob=blob)
        message = f"{name}: broken links: {', '.join(broken)}" if broken else None
        cases.append(Case("docs.links", name, failure=message, text=message))
        if message:
            print(message)
    failures = sum(1 for case in cases if case.failure)
    if junit:
        write_suite(junit, "docs-links", cases)
    print(f"docs links: {len(cases) - failures} of {len(cases)} files without broken links")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every variable a playbook lists in its header is in its guide (a table row or a list item), and
no playbook sends a user to "the top of this playbook", which sits deep in the collections folder.

The guide of each playbook is the one README.md's playbook table links; `ansible-doc` does not
show playbooks, so the guides (which ship in the collection) are where users read variables.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = sorted((ROOT / "playbooks").glob("*.yml"))


def header_variables(playbook: Path) -> list[str]:
    """The names listed under '# Variables' in the comment block that opens the playbook."""
    names, listing = [], False
    for line in playbook.read_text(encoding="utf-8").splitlines():
        if line == "---":
            continue
        if not line.startswith("#"):
            break
        if re.match(r"#\s*Variables\b", line):
            listing = True
        elif listing and re.match(r"#   [a-z][a-z0-9_]+ ", line):
            names.append(line.split()[1])
    return names


def guides() -> dict[str, Path]:
    """Playbook name -> the guide README.md links for it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"^\| `sshkeys\.ecs\.(\w+)` \|.*\(\[guide\]\(([^)#]+)", readme, re.MULTILINE)
    return {name: ROOT / target for name, target in found}


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.stem)
def test_every_variable_of_the_header_is_in_the_guide(playbook):
    guide = guides().get(playbook.stem)
    assert guide is not None, f"README.md's playbook table links no guide for {playbook.stem}"
    names = header_variables(playbook)
    assert names, f"{playbook.name} lists no variables under '# Variables'"
    text = guide.read_text(encoding="utf-8")
    # A table row "| `name` |" or a list item "- `name`" of the guide.
    rows = set(re.findall(r"^(?:\| |- )`(\w+)`", text, re.MULTILINE))
    missing = [name for name in names if name not in rows]
    assert not missing, f"{guide.relative_to(ROOT)} has no row or item for {', '.join(missing)} ({playbook.name})"


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.stem)
def test_messages_name_the_guide_not_the_top_of_the_playbook(playbook):
    text = playbook.read_text(encoding="utf-8")
    assert "top of this playbook" not in text.lower()
    # A message that sends the user on names a guide that exists in the collection.
    for target in re.findall(r"docs/[\w/]+\.md", text):
        assert (ROOT / target).is_file(), f"{playbook.name} names {target}, which does not exist"

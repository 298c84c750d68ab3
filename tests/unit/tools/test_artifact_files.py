# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/artifact_files.py --links: which links of the tarball's pages are dead once installed."""

from __future__ import annotations

import importlib.util
import io
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BLOB = "https://example.org/acme/coll/blob/main/"


@pytest.fixture(name="tool")
def fixture_tool():
    spec = importlib.util.spec_from_file_location("artifact_files", ROOT / "tools" / "artifact_files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tarball(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode("utf-8")
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return path


def test_relative_links_to_files_the_tarball_leaves_out_are_dead(tool, tmp_path):
    built = tarball(tmp_path / "coll.tar.gz", {
        "README.md": "[shipped](docs/a.md#x) [dir](docs/reference/) [left out](docs/dev.md#tests) [web](https://example.org/)\n",
        "docs/a.md": "[up](../README.md) [sibling](b.yml) [out](../emulator/README.md) `[code](x.md)` [here](#top)\n",
        "docs/b.yml": "x: 1\n",
        "docs/reference/m.md": "[back](../a.md)\n",
    })
    problems = tool.dead_links(tool.markdown_pages(built), tool.tarball_files(built), BLOB)
    assert problems == [
        f"README.md: docs/dev.md#tests: the tarball leaves docs/dev.md out, link to {BLOB}docs/dev.md#tests",
        f"docs/a.md: ../emulator/README.md: the tarball leaves emulator/README.md out, link to {BLOB}emulator/README.md",
    ]


def test_repository_links_to_shipped_files_should_be_relative(tool):
    files = ["README.md", "docs/a.md"]
    pages = {"README.md": f"[a]({BLOB}docs/a.md#x) [dev]({BLOB}docs/dev.md)\n", "docs/a.md": ""}
    assert tool.dead_links(pages, files, BLOB) == [
        f"README.md: {BLOB}docs/a.md#x: the tarball holds docs/a.md, link to it relatively",
    ]


def test_the_command_line_fails_on_a_dead_link(tool, tmp_path, capsys):
    good = tarball(tmp_path / "good.tar.gz", {"README.md": "[a](docs/a.md)\n", "docs/a.md": "x\n"})
    bad = tarball(tmp_path / "bad.tar.gz", {"README.md": "[a](docs/gone.md)\n"})
    assert tool.main(["--links", str(good)]) == 0
    assert tool.main(["--links", str(bad)]) == 1
    assert "the tarball leaves docs/gone.md out" in capsys.readouterr().out

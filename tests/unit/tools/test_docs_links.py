# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/docs_links.py: which links are followed, and which are broken."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(name="tool")
def fixture_tool():
    spec = importlib.util.spec_from_file_location("docs_links", ROOT / "tools" / "docs_links.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_relative_links_outside_code_are_checked(tool, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "there.md").write_text("x\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](sub/there.md) [ok with anchor](sub/there.md#part) [web](https://example.org/missing.md)\n"
        "[same page](#top) [mail](mailto:someone@example.org) [gone](sub/gone.md#x)\n"
        "`[in code](code.md)`\n"
        "```\n[in a fence](fence.md)\n```\n"
        "[ref]: missing-ref.md\n"
    )
    assert tool.broken_links(page) == ["sub/gone.md#x", "missing-ref.md"]


def test_the_repository_readme_is_among_the_checked_files(tool):
    assert ROOT / "README.md" in tool.files()


BLOB = "https://example.org/acme/coll/blob/main/"


def test_links_into_the_repository_must_name_files_of_the_checkout(tool, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "kept.md").write_text("x\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        f"[there]({BLOB}docs/kept.md#part) [gone]({BLOB}docs/gone.md#part) [elsewhere](https://example.org/other/blob/main/x.md)\n"
    )
    assert tool.broken_links(page, root=tmp_path, blob=BLOB) == [f"{BLOB}docs/gone.md#part"]


def test_the_repository_address_comes_from_galaxy_yml(tool, tmp_path):
    (tmp_path / "galaxy.yml").write_text("namespace: acme\nrepository: https://example.org/acme/coll/\nissues: x\n")
    assert tool.repository_blob(tmp_path) == BLOB
    (tmp_path / "galaxy.yml").write_text("namespace: acme\n")
    with pytest.raises(ValueError):
        tool.repository_blob(tmp_path)


def test_the_checkout_links_into_the_repository_are_checked(tool):
    # The pages of this checkout do link into the repository (for files the tarball leaves out).
    blob = tool.repository_blob()
    linked = [target for page in tool.files() for target in tool.targets(page.read_text(encoding="utf-8"))
              if target.startswith(blob)]
    assert linked
    assert all(not tool.broken_links(page) for page in tool.files())

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/docs_reference.py: Ansible markup to Markdown, pages of a plugin and a role, and the check
that finds missing, stale and left-over pages."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("antsibull_docs_parser")  # a test requirement of .venv only

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(name="tool")
def fixture_tool():
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "tools" / "docs_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MODULE = {
    "doc": {
        "short_description": "Do a thing",
        "description": ["Uses O(name) and O(sshkeys.ecs.other#module:flag=true); see M(sshkeys.ecs.other).",
                        "Pipes C(a|b) and E(HOME), V(x), U(https://example.org/x), RV(result.id)."],
        "options": {
            "name": {"description": "The name.", "required": True, "type": "str", "aliases": ["n"]},
            "mode": {"description": ["How."], "type": "str", "choices": ["one", "two"], "default": "two"},
            "items": {"description": "Items.", "type": "list", "elements": "dict", "default": [],
                      "suboptions": {"key": {"description": "The key.", "type": "str", "required": True}}},
        },
        "attributes": {"check_mode": {"support": "full", "description": "Computed."}},
        "notes": ["Runs on the controller."],
        "seealso": [{"module": "ansible.builtin.copy"}, {"plugin": "sshkeys.ecs.other", "plugin_type": "module"}],
        "author": ["someone (@someone)"],
    },
    "examples": "\n- name: Example\n  sshkeys.ecs.thing:\n    name: x\n",
    "return": {"result": {"description": "What came out.", "returned": "always", "type": "dict",
                          "sample": {"id": "k-1"},
                          "contains": {"id": {"description": "Its id.", "type": "str"}}}},
}
ROLE = {
    "entry_points": {
        "main": {"short_description": "Role things", "description": ["Uses O(role_var)."],
                 "options": {"role_var": {"description": "A variable.", "type": "bool", "default": False}},
                 "author": ["someone"]},
        "other": {"description": "Second entry point.", "options": {}},
    }
}
KNOWN = {("module", "sshkeys.ecs.thing"), ("module", "sshkeys.ecs.other"), ("role", "sshkeys.ecs.tasks")}


def test_code_spans_survive_pipes_and_backticks(tool):
    assert tool.code("a|b") == "`a\\|b`"
    assert tool.code("say `hi`") == "`` say `hi` ``"
    assert tool.escape("a_b*c<d>") == "a\\_b\\*c\\<d\\>"


def test_module_page(tool):
    page = tool.Renderer(KNOWN).plugin_page("module", "sshkeys.ecs.thing", MODULE)
    assert page.startswith("# sshkeys.ecs.thing (module)\n")
    assert "Do a thing." in page
    # Options of the same page link to their anchors; other pages of the collection relatively.
    assert "[`name`](#option-name)" in page
    assert "[`flag=true`](other_module.md#option-flag)" in page
    assert "[`sshkeys.ecs.other`](other_module.md)" in page
    assert "`a\\|b`" in page and "`HOME`" in page and "<https://example.org/x>" in page
    assert "[`result.id`](#return-result.id)" in page
    # One row per option, nested ones under their parent's name.
    assert '| <a id="option-name"></a>`name`<br>aliases: `n`<br>**required** | str | The name. |' in page
    assert "Choices: `one`, `two` (default)" in page
    assert '<a id="option-items.key"></a>`items.key`' in page and "| list of dict |" in page
    assert "| `check_mode` | full | Computed. |" in page
    assert "- [`ansible.builtin.copy`](https://docs.ansible.com/ansible/latest/collections/ansible/builtin/copy_module.html)" in page
    assert "```yaml\n- name: Example\n  sshkeys.ecs.thing:\n    name: x\n```" in page
    assert 'Returned: always<br><br>Sample: `{"id": "k-1"}`' in page
    assert '<a id="return-result.id"></a>`result.id`' in page
    assert "/work/" not in page and "filename" not in page


def test_role_page_has_every_entry_point(tool):
    page = tool.Renderer(KNOWN).role_page("sshkeys.ecs.tasks", ROLE)
    assert page.startswith("# sshkeys.ecs.tasks (role)\n")
    assert page.index("## Entry point `main`") < page.index("## Entry point `other`")
    assert "| Variable | Type | Description |" in page
    assert '<a id="main-option-role_var"></a>`role_var`' in page
    assert "[`role_var`](#main-option-role_var)" in page
    assert "Default: `false`" in page


def test_broken_markup_is_an_error_of_that_page(tool):
    entries = {("module", "sshkeys.ecs.thing"): MODULE,
               ("module", "sshkeys.ecs.bad"): {"doc": {"short_description": "Bad", "description": "O(unclosed"}},
               ("filter", "sshkeys.ecs.gone"): {"error": "could not parse"}}
    pages, errors = tool.render_all(entries)
    assert set(errors) == {"bad_module.md", "gone_filter.md"}
    assert "thing_module.md" in pages and "README.md" in pages
    assert "thing_module.md" in pages["README.md"] and "bad_module.md" in pages["README.md"]


def test_check_finds_missing_stale_and_left_over_pages(tool, tmp_path, monkeypatch):
    monkeypatch.setattr(tool, "OUT", tmp_path)
    pages = {"README.md": "index\n", "a_module.md": "a\n", "b_module.md": "b\n"}
    (tmp_path / "README.md").write_text("index\n")
    (tmp_path / "a_module.md").write_text("old a\n")
    (tmp_path / "old_module.md").write_text("x\n")
    results = dict(tool.check(pages, {"c_filter.md": "cannot be rendered"}))
    assert results["README.md"] is None
    assert "out of date" in results["a_module.md"]
    assert "missing" in results["b_module.md"]
    assert "belongs to no plugin" in results["old_module.md"]
    assert results["c_filter.md"] == "cannot be rendered"
    junit = tmp_path / "docs.xml"
    tool.write_junit(junit, list(results.items()))
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "5" and suite.get("failures") == "4"
    assert len(suite.findall("testcase/failure")) == 4


def test_write_removes_left_over_pages(tool, tmp_path, monkeypatch):
    monkeypatch.setattr(tool, "OUT", tmp_path / "reference")
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "old_module.md").write_text("x\n")
    tool.write({"README.md": "index\n"})
    assert sorted(p.name for p in (tmp_path / "reference").iterdir()) == ["README.md"]
    assert tool.check({"README.md": "index\n"}, {}) == [("README.md", None)]


def test_readme_must_name_every_plugin_role_and_playbook(tool, tmp_path, monkeypatch):
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "create_keypair.yml").write_text("---\n")
    (tmp_path / "playbooks" / "reconcile.yml").write_text("---\n")
    (tmp_path / "README.md").write_text("| `sshkeys.ecs.thing` | x |\n| `sshkeys.ecs.create_keypair` | y |\n| `reconcile` | z |\n")
    entries = {("module", "sshkeys.ecs.thing"): MODULE, ("filter", "sshkeys.ecs.other"): MODULE}
    assert tool.readme_gaps(entries) == "README.md does not name sshkeys.ecs.other"
    (tmp_path / "README.md").write_text("`sshkeys.ecs.thing` `other` `create_keypair` `reconcile`\n")
    assert tool.readme_gaps(entries) is None

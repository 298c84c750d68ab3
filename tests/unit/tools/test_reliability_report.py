# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tools/reliability_report.py: what a table cell of the rendered page may hold."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _tool():
    spec = importlib.util.spec_from_file_location("reliability_report", ROOT / "tools" / "reliability_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_cell_shows_no_temporary_path_of_the_run():
    cell = _tool().cell
    assert cell("rc 2: /tmp/pytest-of-root/pytest-296/test_x0/key is a FIFO") == "rc 2: $TMPDIR/test_x0/key is a FIFO"
    assert cell("written to /tmp/ansible.abc/report.json") == "written to $TMPDIR/ansible.abc/report.json"


def test_a_cell_is_one_line_with_pipes_escaped_and_long_text_cut():
    cell = _tool().cell
    assert cell("a|b\nc") == "a\\|b c"
    assert cell("x" * 200).endswith("...") and len(cell("x" * 200)) == 160
    assert cell("") == " "

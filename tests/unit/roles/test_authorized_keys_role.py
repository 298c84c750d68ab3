# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role's README table is the one made from meta/argument_specs.yml, and the defaults match."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "authorized_keys"


def load_generator():
    spec = importlib.util.spec_from_file_location("role_readme", ROOT / "tools" / "role_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_is_made_from_the_argument_spec():
    generator = load_generator()
    readme = (ROLE / "README.md").read_text()
    current = readme.split(generator.START, 1)[1].split(generator.END, 1)[0].strip()
    assert current == generator.table(ROLE)


def test_defaults_match_the_argument_spec():
    options = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert set(defaults) == set(options)
    for name, option in options.items():
        assert name.startswith("authorized_keys_")
        if not option.get("required"):
            assert defaults[name] == option["default"], name

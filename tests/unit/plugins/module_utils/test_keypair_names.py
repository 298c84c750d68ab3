# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Key pair names (the rule of ECS: Unicode letters, Chinese names included) and tags, checked locally."""

from __future__ import annotations

import pytest

from ansible_collections.sshkeys.ecs.plugins.module_utils._ecs_validate import (
    KeypairError,
    validate_name,
    validate_pattern,
    validate_tags,
)


@pytest.mark.parametrize("name", ["部署密钥", "部署密钥-2026", "Ключ_1", "clé.prod", "鍵:web", "ab٣", "密钥",
                                  "密" * 128, "ab", "a" * 128, "a.b:c_d-e", "http:notaurl"])
def test_names_ecs_takes_are_taken(name):
    validate_name(name)
    validate_pattern(name)


@pytest.mark.parametrize("name, message", [
    ("密", "2 to 128 characters"),
    ("密" * 129, "2 to 128 characters"),
    ("٣abc", "must start with a letter"),
    ("_密钥", "must start with a letter"),
    ("9lives", "must start with a letter"),
    ("密钥 一", "may hold only letters, digits"),
    ("密钥/一", "may hold only letters, digits"),
    ("a½b", "may hold only letters, digits"),
    ("key😀x", "may hold only letters, digits"),
    ("https://密钥", "must not start with http:// or https://"),
    ("HTTP://ab", "must not start with http:// or https://"),
    ("密钥\n", "ends with a newline"),
])
def test_names_outside_the_rule_are_refused_saying_why(name, message):
    with pytest.raises(KeypairError, match=message):
        validate_name(name)


@pytest.mark.parametrize("pattern", ["部署*", "*密钥*", "Ключ_*", "*"])
def test_unicode_patterns_are_taken(pattern):
    validate_pattern(pattern)


@pytest.mark.parametrize("pattern", ["部署 *", "部署/*", "a½*", "*" * 129])
def test_bad_patterns_are_refused(pattern):
    with pytest.raises(KeypairError, match="may hold only"):
        validate_pattern(pattern)


# ---------------------------------------------------------------------------------------------
# Tags (checked here too, as the names are: before any request).


@pytest.mark.parametrize("value", ["acs:team", "ACS:team"])
def test_a_tag_value_starting_with_acs_is_refused(value):
    with pytest.raises(KeypairError, match="tag value of 'owner' must not start with 'acs:'"):
        validate_tags({"owner": value})


@pytest.mark.parametrize("value", ["", "team-acs:1", "ac:s", "密钥"])
def test_other_tag_values_are_taken(value):
    assert validate_tags({"owner": value}) == {"owner": value}

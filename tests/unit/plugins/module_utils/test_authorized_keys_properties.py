# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Properties of the authorized_keys model, checked with hypothesis:

* parse then render is the identity, for any text at all;
* an edit touches only the keys it names: every other line stays, byte for byte, in order;
* applying the same change twice equals applying it once;
* the quick check of a line's key data (prefix and a set lookup, no decoding) says a blob
  holds the stated type exactly when decoding it would.
"""

from __future__ import annotations

import base64
import struct
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings, strategies as st

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import AuthorizedKeys, _check_key_data
from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys_apply import (
    KeysInputError,
    normalise_keys,
    plan,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "authorized_keys"
KEY_NAMES = ["ed25519", "ed25519b", "rsa2048", "rsa1024", "ecdsa256", "ecdsa521", "ca", "ed25519-cert"]
KEYS = {name: " ".join((FIXTURES / "keys" / f"{name}.pub").read_text().split()[:2]) for name in KEY_NAMES}
OPTIONS = ["restrict", "no-pty", 'from="10.0.0.0/8,192.168.0.1"', 'command="echo \\"hi, you\\"",no-pty',
           "cert-authority", 'environment="A=b c"']
COMMENTS = ["alice", "bob@host", "with  two spaces", "tab\there", "x"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def key_lines(draw):
    lead = draw(st.sampled_from(["", " ", "\t", "  "]))
    options = draw(st.one_of(st.none(), st.sampled_from(OPTIONS)))
    key_type, data = KEYS[draw(st.sampled_from(KEY_NAMES))].split()
    sep = draw(st.sampled_from([" ", "\t", "  "]))
    comment = draw(st.one_of(st.none(), st.sampled_from(COMMENTS)))
    parts = ([options] if options else []) + [key_type, data] + ([comment] if comment else [])
    return lead + sep.join(parts) + draw(st.sampled_from(["", " "]))


free_text = st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=40)
other_lines = st.one_of(
    st.just(""),
    st.sampled_from(["#", "# comment", "  # indented", "   "]),
    free_text,
    st.sampled_from(['from="broken ssh-ed25519 AAAA', "ssh-rsa AAAA", "2048 35 1234 ssh1"]),
)


@st.composite
def files(draw):
    lines = draw(st.lists(st.one_of(key_lines(), other_lines), max_size=12))
    eols = draw(st.lists(st.sampled_from(["\n", "\r\n"]), min_size=len(lines), max_size=len(lines)))
    text = "".join(line + eol for line, eol in zip(lines, eols))
    if lines and draw(st.booleans()):
        text = text[: -len(eols[-1])]  # no final newline
    return text


@st.composite
def entries(draw):
    items = []
    for _index in range(draw(st.integers(min_value=0, max_value=5))):
        item = {"key": KEYS[draw(st.sampled_from(KEY_NAMES))]}
        if draw(st.booleans()):
            item["options"] = draw(st.sampled_from(OPTIONS + [""]))
        if draw(st.booleans()):
            item["comment"] = draw(st.sampled_from(COMMENTS))
        if draw(st.integers(0, 4)) == 0:
            item["state"] = "absent"
        elif draw(st.integers(0, 4)) == 0:
            item["replaces"] = KEYS[draw(st.sampled_from(KEY_NAMES))]
        items.append(item)
    return items


def normalised(items):
    try:
        return normalise_keys(items)
    except KeysInputError:
        assume(False)


@SETTINGS
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_any_text_round_trips(text):
    assert AuthorizedKeys.parse(text).render() == text


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_round_trip(data):
    text = data.decode("utf-8", "surrogateescape")
    assert AuthorizedKeys.parse(text).render().encode("utf-8", "surrogateescape") == data


@SETTINGS
@given(files())
def test_structured_files_round_trip(text):
    assert AuthorizedKeys.parse(text).render() == text


def named_identities(wanted):
    names = set()
    for entry in wanted:
        names.add(entry.identity)
        if entry.replaces is not None:
            names.add(entry.replaces.identity())
    return names


@SETTINGS
@given(files(), entries())
def test_edits_touch_only_the_keys_they_name(text, items):
    wanted = normalised(items)
    before = AuthorizedKeys.parse(text)
    result = plan(before, wanted, replace_missing="add")
    names = named_identities(wanted)

    def untouched(model):
        return [(line.raw, line.eol) for line in model.lines if line.identity() not in names]

    kept_before = untouched(before)
    kept_after = untouched(result.model)
    # The one allowed difference: a last line without newline gets one when a line follows it.
    if kept_before and kept_before[-1][1] == "" and len(kept_after) == len(kept_before):
        kept_after[-1] = (kept_after[-1][0], "")
    assert kept_after == kept_before
    assert before.render() == text  # planning never changes the model it was given


@SETTINGS
@given(files(), entries(), st.booleans())
def test_applying_twice_equals_applying_once(text, items, exclusive):
    wanted = normalised(items)
    once = plan(AuthorizedKeys.parse(text), wanted, exclusive=exclusive, replace_missing="add")
    twice = plan(once.model, wanted, exclusive=exclusive, replace_missing="add")
    assert not twice.has_changes, (twice.added, twice.removed, twice.changed)
    assert twice.model.render() == once.model.render()
    reparsed = plan(AuthorizedKeys.parse(once.model.render()), wanted, exclusive=exclusive, replace_missing="add")
    assert not reparsed.has_changes


@SETTINGS
@given(files(), entries())
def test_present_keys_are_there_and_absent_ones_are_gone(text, items):
    wanted = normalised(items)
    result = plan(AuthorizedKeys.parse(text), wanted, replace_missing="add")
    for entry in wanted:
        lines = result.model.find(entry.identity)
        if entry.state == "absent":
            assert lines == []
        else:
            assert lines, entry.index
            if entry.options is not None:
                assert any((line.options or "") == entry.options for line in lines)
        if entry.replaces is not None:
            assert result.model.find(entry.replaces.identity()) == []


@SETTINGS
@given(files(), entries())
def test_exclusive_leaves_only_listed_keys(text, items):
    wanted = normalised(items)
    result = plan(AuthorizedKeys.parse(text), wanted, exclusive=True, replace_missing="add")
    listed = {e.identity for e in wanted if e.state == "present"}
    assert {line.identity() for line in result.model.keys()} == listed
    assert result.model.invalid() == []


type_names = st.one_of(
    st.sampled_from(["ssh-rsa", "ssh-ed25519", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp521",
                     "sk-ssh-ed25519@openssh.com", "ssh-ed25519-cert-v01@openssh.com"]),
    st.from_regex(r"[a-z0-9][a-z0-9@._+]{0,24}-[a-z0-9@._+-]{0,12}", fullmatch=True),
)


@SETTINGS
@given(type_names, type_names, st.binary(max_size=48), st.booleans())
def test_the_quick_check_of_key_data_agrees_with_decoding_it(stated, held, tail, same):
    # The blob holds `held` (or the stated type itself, half the time) and then any bytes.
    inside = (stated if same else held).encode("ascii")
    blob = struct.pack(">I", len(inside)) + inside + tail
    for cut in (len(blob), max(0, len(blob) - len(tail) - 1)):  # whole, and truncated inside the head
        data = base64.b64encode(blob[:cut]).decode("ascii")
        if not data:
            continue
        head = struct.pack(">I", len(stated)) + stated.encode("ascii")
        ident, problem = _check_key_data(stated, data)
        assert (ident is not None) == blob[:cut].startswith(head), (stated, data, problem)
        if ident is not None:
            assert ident == f"{stated} {data}"

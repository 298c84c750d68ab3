# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input: malformed names, keys, paths and option mixes through every module.

Each row of CASES is one ansible-playbook run of one task, at -vvv, against a fresh emulator and
a scratch directory holding an authorized_keys file, a private key and a public key. Every case
must fail with a message that names the problem (checked by regular expression), send no write
to the API (the emulator's request log), change no file in the scratch directory (checksums,
modes, link targets), and show no key material or secret key anywhere in its output or log.
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

from relsupport import KeyPair, count_outcomes, file_state, find_secrets, make_key

SECTION = dict(
    title="Bad input",
    order=10,
    columns=["case", "module", "input", "error shown", "API writes", "files changed", "secrets shown"],
)


def _summary(rows: List[list]) -> str:
    counts = count_outcomes(rows)
    modules = len({row[1] for row in rows})
    writes = sum(int(row[4]) for row in rows if str(row[4]).isdigit())
    changed = sum(1 for row in rows if row[5] not in ("none", 0, "0"))
    leaked = sum(1 for row in rows if row[6] not in ("none", 0, "0"))
    return (f"{len(rows)} malformed inputs through {modules} modules: {counts.get('passed', 0)} refused with a clear "
            f"error before any change, {counts.get('failed', 0)} failed the test; {writes} API writes, "
            f"{changed} cases with a changed file and {leaked} with a secret in the output.")


@dataclass
class Ctx:
    """What a case can refer to: the scratch directory and its files."""

    dir: Path
    user_key: KeyPair     # its public line is in authorized_keys; its private key is secret
    other_key: KeyPair    # a second key, not in the file
    rsa_key: KeyPair

    @property
    def ak(self) -> str:
        return str(self.dir / "ssh" / "authorized_keys")

    @property
    def user(self) -> str:
        import pwd  # pylint: disable=import-outside-toplevel
        return pwd.getpwuid(os.getuid()).pw_name


def _blob(*fields: bytes) -> str:
    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


def _small_rsa() -> str:
    # A 768-bit modulus: below what sshd and ECS accept.
    modulus = (1 << 767) | 0xF1
    return "ssh-rsa " + _blob(b"ssh-rsa", b"\x01\x00\x01", b"\x00" + modulus.to_bytes(96, "big")) + " small"


def _mismatched_type(ctx: Ctx) -> str:
    return "ssh-rsa " + ctx.user_key.public_body + " wrong-type"


def _truncated(ctx: Ctx) -> str:
    raw = base64.b64decode(ctx.user_key.public_body)[:-7]
    return "ssh-ed25519 " + base64.b64encode(raw).decode()


@dataclass
class Case:
    id: str
    module: str
    args: Callable[[Ctx], Dict[str, Any]]
    expect: str                                   # regular expression the message must match
    setup: Optional[Callable[[Ctx], None]] = None
    note: str = ""


def _link_ak(ctx: Ctx) -> None:
    target = ctx.dir / "elsewhere"
    target.write_text(ctx.user_key.public + "\n")
    os.unlink(ctx.ak)
    os.symlink(target, ctx.ak)


def _link_dir(ctx: Ctx) -> None:
    real = ctx.dir / "real-ssh"
    (ctx.dir / "ssh").rename(real)
    os.symlink(real, ctx.dir / "ssh")


def _existing_key_file(ctx: Ctx) -> None:
    (ctx.dir / "existing.pem").write_text("not overwritten\n")


KP = "sshkeys.ecs.ecs_keypair"
INFO = "sshkeys.ecs.ecs_keypair_info"
ATT = "sshkeys.ecs.ecs_keypair_attach"
AK = "sshkeys.ecs.authorized_keys"
AKI = "sshkeys.ecs.authorized_keys_info"
ROT = "sshkeys.ecs.authorized_key_rotate"


def _rot(ctx: Ctx, **extra: Any) -> Dict[str, Any]:
    args = {"user": ctx.user, "path": ctx.ak, "old_key": [ctx.user_key.public], "new_key": ctx.other_key.public,
            "new_private_key_path": str(ctx.other_key.path), "verify_host": "127.0.0.1", "verify_port": 9}
    args.update(extra)
    return args


CASES = [
    # --- ecs_keypair: names
    Case("name-empty", KP, lambda c: {"name": ""}, r"name"),
    Case("name-one-char", KP, lambda c: {"name": "a"}, r"2 to 128 characters"),
    Case("name-too-long", KP, lambda c: {"name": "k" * 129}, r"2 to 128 characters"),
    Case("name-digit-first", KP, lambda c: {"name": "1key"}, r"must start with a letter"),
    Case("name-space", KP, lambda c: {"name": "my key"}, r"may hold only"),
    Case("name-slash", KP, lambda c: {"name": "team/key"}, r"may hold only"),
    Case("name-url", KP, lambda c: {"name": "http://key"}, r"must not start with http"),
    Case("name-newline", KP, lambda c: {"name": "key\nname"}, r"may hold only"),
    Case("name-unicode-symbol", KP, lambda c: {"name": "ключ½1"}, r"may hold only"),
    Case("name-wildcard", KP, lambda c: {"name": "key*"}, r"may hold only"),
    Case("names-wildcard", KP, lambda c: {"names": ["kp-a", "kp-*"], "state": "absent"}, r"may hold only"),
    Case("names-with-present", KP, lambda c: {"names": ["kp-a"], "public_key": c.user_key.public},
         r"names is for state=absent only"),
    Case("names-and-name", KP, lambda c: {"names": ["kp-a"], "name": "kp-a", "state": "absent"},
         r"mutually exclusive"),
    # --- ecs_keypair: public keys
    Case("pubkey-garbage", KP, lambda c: {"name": "kp-a", "public_key": "hello world"}, r"not a valid public key"),
    Case("pubkey-private-text", KP, lambda c: {"name": "kp-a", "public_key": c.user_key.private},
         r"private key", note="the private key must not be echoed"),
    Case("pubkey-bad-base64", KP, lambda c: {"name": "kp-a", "public_key": "ssh-ed25519 AAAA!!!!"},
         r"not a valid public key"),
    Case("pubkey-type-mismatch", KP, lambda c: {"name": "kp-a", "public_key": _mismatched_type(c)},
         r"not a valid public key"),
    Case("pubkey-truncated", KP, lambda c: {"name": "kp-a", "public_key": _truncated(c)}, r"truncated|not a valid"),
    Case("pubkey-two-lines", KP, lambda c: {"name": "kp-a", "public_key": c.user_key.public + "\n" + c.other_key.public},
         r"more than one line"),
    Case("pubkey-rsa-768", KP, lambda c: {"name": "kp-a", "public_key": _small_rsa()}, r"shorter than|bits"),
    Case("pubkey-and-path", KP, lambda c: {"name": "kp-a", "public_key": c.user_key.public,
                                           "public_key_path": str(c.user_key.path) + ".pub"}, r"mutually exclusive"),
    Case("pubkey-path-missing", KP, lambda c: {"name": "kp-a", "public_key_path": str(c.dir / "nope.pub")},
         r"cannot read public_key_path"),
    Case("pubkey-path-private", KP, lambda c: {"name": "kp-a", "public_key_path": str(c.user_key.path)},
         r"private key"),
    Case("pubkey-path-dir", KP, lambda c: {"name": "kp-a", "public_key_path": str(c.dir)}, r"public_key_path"),
    Case("pubkey-empty", KP, lambda c: {"name": "kp-a", "public_key": "   "}, r"empty|public key"),
    # --- ecs_keypair: local generation and the private key file
    Case("local-rsa-1024", KP, lambda c: {"name": "kp-a", "generate": "local", "key_type": "rsa", "key_size": 1024,
                                          "private_key_path": str(c.dir / "new.pem")}, r"key_size for rsa"),
    Case("local-ecdsa-300", KP, lambda c: {"name": "kp-a", "generate": "local", "key_type": "ecdsa", "key_size": 300,
                                           "private_key_path": str(c.dir / "new.pem")}, r"key_size for ecdsa"),
    Case("local-ed25519-size", KP, lambda c: {"name": "kp-a", "generate": "local", "key_type": "ed25519",
                                              "key_size": 256, "private_key_path": str(c.dir / "new.pem")},
         r"does not apply"),
    Case("keytype-with-cloud", KP, lambda c: {"name": "kp-a", "generate": "cloud", "key_type": "rsa"}, r"key_type"),
    Case("keypath-exists", KP, lambda c: {"name": "kp-a", "private_key_path": str(c.dir / "existing.pem")},
         r"exists|overwrite", setup=_existing_key_file),
    Case("keypath-no-dir", KP, lambda c: {"name": "kp-a", "private_key_path": str(c.dir / "missing" / "k.pem")},
         r"does not exist"),
    Case("keypath-is-dir", KP, lambda c: {"name": "kp-a", "private_key_path": str(c.dir / "ssh")}, r"is a directory"),
    Case("keypath-symlink", KP, lambda c: {"name": "kp-a", "private_key_path": str(c.dir / "ssh" / "authorized_keys")},
         r"symbolic link", setup=_link_ak),
    Case("generate-and-pubkey", KP, lambda c: {"name": "kp-a", "generate": "local",
                                               "public_key": c.user_key.public}, r"generate|public_key"),
    Case("return-key-with-import", KP, lambda c: {"name": "kp-a", "public_key": c.user_key.public,
                                                  "return_private_key": True}, r"return_private_key"),
    # --- ecs_keypair: tags and other options
    Case("tag-aliyun", KP, lambda c: {"name": "kp-a", "tags": {"aliyun:x": "1"}, "public_key": c.user_key.public}, r"must not start with 'aliyun'"),
    Case("tag-acs", KP, lambda c: {"name": "kp-a", "tags": {"acs:team": "1"}, "public_key": c.user_key.public}, r"must not start with"),
    Case("tags-21", KP, lambda c: {"name": "kp-a", "tags": {f"t{i}": "v" for i in range(21)}, "public_key": c.user_key.public}, r"at most 20 tags"),
    Case("tag-value-url", KP, lambda c: {"name": "kp-a", "tags": {"site": "https://example.org"}, "public_key": c.user_key.public}, r"http"),
    Case("on-mismatch-choice", KP, lambda c: {"name": "kp-a", "on_mismatch": "maybe"}, r"on_mismatch"),
    Case("state-choice", KP, lambda c: {"name": "kp-a", "state": "gone"}, r"state"),
    Case("endpoint-not-url", KP, lambda c: {"name": "kp-a", "ecs_endpoint": "not a url", "public_key": c.user_key.public}, r"ecs_endpoint"),
    Case("unknown-option", KP, lambda c: {"name": "kp-a", "public_keys": "x"}, r"[Uu]nsupported parameters"),
    # --- ecs_keypair_info
    Case("info-name-bad", INFO, lambda c: {"names": ["bad name!"]}, r"may hold only"),
    Case("info-name-empty", INFO, lambda c: {"names": [""]}, r"name"),
    Case("info-tag-acs", INFO, lambda c: {"tags": {"acs:x": "1"}}, r"must not start with"),
    # --- ecs_keypair_attach
    Case("attach-no-instances", ATT, lambda c: {"key_pair_name": "kp-a", "instance_ids": []}, r"instance_ids"),
    Case("attach-duplicate-ids", ATT, lambda c: {"key_pair_name": "kp-a", "instance_ids": ["i-abc", "i-abc"]},
         r"more than once|duplicate|once"),
    Case("attach-bad-id", ATT, lambda c: {"key_pair_name": "kp-a", "instance_ids": ["not an id"]}, r"instance"),
    Case("attach-bad-name", ATT, lambda c: {"key_pair_name": "bad name", "instance_ids": ["i-abc"]}, r"may hold only"),
    Case("attach-timeout-negative", ATT, lambda c: {"key_pair_name": "kp-a", "instance_ids": ["i-abc"],
                                                    "reboot": True, "wait_timeout": -5}, r"wait_timeout"),
    Case("attach-unknown-keypair", ATT, lambda c: {"key_pair_name": "kp-nowhere", "instance_ids": ["i-abc"]},
         r"kp-nowhere does not exist"),
    # --- authorized_keys
    Case("ak-garbage-line", AK, lambda c: {"user": c.user, "path": c.ak, "keys": ["not a key"]}, r"key"),
    Case("ak-private-key", AK, lambda c: {"user": c.user, "path": c.ak, "keys": [c.other_key.private]},
         r"private key"),
    Case("ak-bad-options", AK, lambda c: {"user": c.user, "path": c.ak,
                                          "keys": ['command="unterminated ' + c.other_key.public]}, r"option|quote"),
    Case("ak-no-such-user", AK, lambda c: {"user": "no-such-user-4711", "keys": [c.other_key.public]},
         r"no-such-user-4711"),
    Case("ak-relative-path", AK, lambda c: {"user": c.user, "path": "relative/authorized_keys",
                                            "keys": [c.other_key.public]}, r"absolute|relative"),
    Case("ak-path-is-dir", AK, lambda c: {"user": c.user, "path": str(c.dir / "ssh"), "keys": [c.other_key.public]},
         r"not a regular file"),
    Case("ak-parent-is-file", AK, lambda c: {"user": c.user, "path": c.ak + "/x", "keys": [c.other_key.public]},
         r"directory|not a"),
    Case("ak-symlink-file", AK, lambda c: {"user": c.user, "path": c.ak, "keys": [c.other_key.public]},
         r"symbolic link", setup=_link_ak),
    Case("ak-symlink-dir", AK, lambda c: {"user": c.user, "path": c.ak, "keys": [c.other_key.public]},
         r"symbolic link", setup=_link_dir),
    Case("ak-no-dir-manage-off", AK, lambda c: {"user": c.user, "path": str(c.dir / "none" / "authorized_keys"),
                                                "manage_dir": False, "keys": [c.other_key.public]}, r"director"),
    Case("ak-unknown-entry-field", AK, lambda c: {"user": c.user, "path": c.ak,
                                                  "keys": [{"key": c.other_key.public, "colour": "red"}]}, r"colour"),
    Case("ak-replaces-garbage", AK, lambda c: {"user": c.user, "path": c.ak,
                                               "keys": [{"key": c.other_key.public, "replaces": "garbage"}]},
         r"replaces"),
    Case("ak-replace-missing", AK, lambda c: {"user": c.user, "path": c.ak,
                                              "keys": [{"key": c.other_key.public, "replaces": c.rsa_key.public}]},
         r"neither|replace_missing"),
    # --- authorized_keys_info
    Case("info-ak-symlink", AKI, lambda c: {"user": c.user, "path": c.ak}, r"symbolic link", setup=_link_ak),
    Case("info-ak-dir", AKI, lambda c: {"user": c.user, "path": str(c.dir / "ssh")}, r"not a regular file"),
    Case("info-ak-no-user", AKI, lambda c: {"user": "no-such-user-4711"}, r"no-such-user-4711"),
    # --- authorized_key_rotate (the action plugin checks before the host is touched)
    Case("rotate-same-key", ROT, lambda c: _rot(c, new_key=c.user_key.public,
                                                new_private_key_path=str(c.user_key.path)), r"differ|same"),
    Case("rotate-new-key-garbage", ROT, lambda c: _rot(c, new_key="ssh-ed25519 nope"), r"new_key"),
    Case("rotate-new-key-private", ROT, lambda c: _rot(c, new_key=c.other_key.private), r"private key"),
    Case("rotate-wrong-private", ROT, lambda c: _rot(c, new_private_key_path=str(c.rsa_key.path)),
         r"holds the private key of"),
    Case("rotate-private-missing", ROT, lambda c: _rot(c, new_private_key_path=str(c.dir / "nope")),
         r"new_private_key_path"),
    Case("rotate-private-is-public", ROT, lambda c: _rot(c, new_private_key_path=str(c.other_key.path) + ".pub"),
         r"new_private_key_path"),
    Case("rotate-no-private", ROT, lambda c: {k: v for k, v in _rot(c).items() if k != "new_private_key_path"},
         r"new_private_key_path is required"),
    Case("rotate-unverified", ROT, lambda c: _rot(c, verify=False), r"accept_lockout_risk"),
    Case("rotate-internal-phase", ROT, lambda c: _rot(c, _phase="remove_old"), r"internal"),
    Case("rotate-timeout-zero", ROT, lambda c: _rot(c, verify_timeout=0), r"verify_timeout"),
    Case("rotate-old-fingerprint-bad", ROT, lambda c: _rot(c, old_key=["SHA256:not-a-fingerprint!"]), r"old_key"),
    Case("rotate-ssh-args-not-option", ROT, lambda c: _rot(c, verify_ssh_args=["-o BatchMode=yes evil.example"]),
         r"is not an option"),
    Case("rotate-ssh-args-unbalanced", ROT, lambda c: _rot(c, verify_ssh_args=["-o 'unterminated"]),
         r"cannot be split"),
    Case("rotate-old-private-mismatch", ROT, lambda c: _rot(c, verify_old_key_rejected=True,
                                                            old_private_key_path=str(c.rsa_key.path)),
         r"none of old_key"),
]


def _secrets(ctx: Ctx, emulator) -> List[str]:
    return [ctx.user_key.private, ctx.other_key.private, ctx.rsa_key.private] + emulator.secrets()


@pytest.fixture(scope="module")
def section(figures):
    return figures.section("bad_input", summary=_summary, **SECTION)


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bad-input-keys")
    return {name: make_key(directory, name, key_type, bits=bits)
            for name, key_type, bits in (("user", "ed25519", None), ("other", "ed25519", None), ("rsa", "rsa", 3072))}


def _input_label(args: Dict[str, Any], secrets: List[str]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in args.items() if k not in ("user",))
    for secret in secrets:
        text = text.replace(repr(secret.strip())[1:-1], "<private key>").replace(secret.strip(), "<private key>")
    return _scrub(text)


def _scrub(text: str) -> str:
    """Directories of this run (temporary paths) shortened to '…/': the page stays the same from run to run."""
    return re.sub(r"/[^ ',:]*/", "…/", text)


@pytest.fixture(scope="module")
def batch(emulator, ansible, tmp_path_factory, key_dir):
    """All cases as the tasks of one playbook (ignore_errors), each in its own scratch directory.

    One ansible-playbook run instead of one per case keeps the suite within its time on a busy
    2-core machine; each task is still judged on its own: its result, its part of the output,
    its scratch directory and the API requests logged while it ran.
    """
    base = tmp_path_factory.mktemp("bad-input")
    contexts: Dict[str, Ctx] = {}
    tasks = []
    for case in CASES:
        ctx = Ctx(dir=base / case.id, user_key=key_dir["user"], other_key=key_dir["other"], rsa_key=key_dir["rsa"])
        (ctx.dir / "ssh").mkdir(parents=True)
        Path(ctx.ak).write_text(ctx.user_key.public + "\n")
        os.chmod(ctx.ak, 0o600)
        if case.setup:
            case.setup(ctx)
        contexts[case.id] = ctx
        tasks.append({"name": case.id, case.module: case.args(ctx), "ignore_errors": True,
                      "environment": {"HOME": str(ctx.dir)}})
    before = {case_id: file_state([ctx.dir]) for case_id, ctx in contexts.items()}
    keys_before = file_state([key_dir["user"].path.parent])
    mark = emulator.mark()
    run = ansible.run_playbook([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                               env=emulator.env(), verbosity=3, timeout=900)
    return {"run": run, "contexts": contexts, "before": before, "keys_before": keys_before, "mark": mark,
            "keys_dir": key_dir["user"].path.parent}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case: Case, emulator, batch, section, request):
    run = batch["run"]
    ctx = batch["contexts"][case.id]
    args = case.args(ctx)
    record = run.task(case.id)
    msg = str(record["result"].get("msg", ""))
    writes = emulator.writes_between(record["started"], record["ended"])
    after = file_state([ctx.dir])
    before = batch["before"][case.id]
    changed = sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
    if file_state([batch["keys_dir"]]) != batch["keys_before"]:
        changed.append("the key directory")
    secrets = _secrets(ctx, emulator)
    # This task's part of stdout and of the log file, its result, and warnings on stderr.
    shown = "\n".join((run.task_output(case.id), run.task_output(case.id, run.log), json.dumps(record["result"]),
                       run.stderr))
    leaks = find_secrets(shown, secrets)
    section.add([case.id, case.module.rsplit(".", 1)[1], _input_label(args, secrets), _scrub(msg)[:150] or record["status"],
                 len(writes), ", ".join(changed) or "none", len(leaks) or "none"], node=request.node)

    assert record["status"] == "failed", f"the task did not fail: {record['result']}"
    assert "fatal:" in run.task_output(case.id)
    assert re.search(case.expect, msg), f"message {msg!r} does not match {case.expect!r}"
    assert not writes, f"API writes happened: {writes}"
    assert not changed, f"files changed: {changed}"
    assert not leaks, f"secrets in the output: {leaks}"


def test_no_write_in_the_whole_run(emulator, batch):
    """Over the whole playbook, the request log holds no write at all (not just per task)."""
    assert emulator.writes_since(batch["mark"]) == []

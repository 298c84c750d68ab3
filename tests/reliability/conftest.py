# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the reliability suite (tests/reliability, stage 80-reliability).

What the test files get:

- ``emulator``: a fresh ECS emulator for the test module (virtual instances, --fast);
  ``start_emulator(*serve_args, pool=...)`` starts more (faults, podman instances, ...), each
  stopped (and its containers removed) at the end of the session. An ``Emulator`` has ``env()``
  (the variables the modules read), ``admin()``, ``api()`` (an official SDK call, for seeding
  and independent readings), ``log_entries()`` / ``mark()`` / ``writes_since(mark)`` (the
  request log: proof that no API write happened), ``kill9()`` and ``restart()``.
- ``ansible``: runs a task or a playbook through ``ansible-playbook`` (``run_task``,
  ``run_playbook``) with verbosity, ``--check``, ``--diff``, and returns a ``Run`` holding exit
  code, stdout, stderr, the ANSIBLE_LOG_PATH file and the task's result (tree callback).
- ``home``: a temporary HOME for the task, with ``.ssh`` (0700).
- ``figures``: ``figures.section(name, title=..., order=..., columns=[...], summary=fn)``; a
  test adds rows with ``section.add(row, node=request.node)``: rows given a node get the test's
  outcome (passed / failed / skipped) as their last column. Every section is written at the end
  of the session as $RELIABILITY_FIGURES/<name>.json (default tests/output/reliability/) in the
  schema of the team brief: title, order, summary, columns, rows. A section belongs to one test
  module (with pytest-xdist use ``--dist loadfile``).
- ``ssh_hosts``: real sshd containers from the instance image (tools/instance-run.sh) on
  loopback addresses of a pool, removed at the end of the session; plus ``ssh_login``, a fresh
  ``ssh`` (no connection reuse, only the given key) that says whether a key logs in.
- ``file_state(paths)``: checksums, modes and link targets of files, to prove nothing changed.

Everything runs on the controller's own Python (the .venv pytest runs in); nothing here talks to
a non-loopback address.
"""

from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional

import pytest

# Test files import the helpers as `from relsupport import ...` (pytest runs in importlib mode).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from relsupport import (  # noqa: E402  pylint: disable=wrong-import-position
    EMULATOR_POOL,
    OUTCOMES,
    AnsibleRunner,
    Emulator,
    Figures,
    KeyPair,
    SshHosts,
    make_key,
    podman_available,
)

FIGURES = Figures()


@pytest.fixture(scope="session")
def start_emulator():
    """Factory: start_emulator(*serve_args, fast=True, pool=...) -> a running Emulator."""
    started: List[Emulator] = []

    def _start(*serve_args: str, fast: bool = True, pool: str = EMULATOR_POOL) -> Emulator:
        emu = Emulator(*serve_args, fast=fast, pool=pool)
        started.append(emu)
        return emu.start()

    yield _start
    for emu in started:
        emu.close()


@pytest.fixture(scope="module")
def emulator():
    """A fresh emulator (virtual instances) for the test module."""
    emu = Emulator().start()
    yield emu
    emu.close()


@pytest.fixture(scope="session")
def ansible(tmp_path_factory):
    """AnsibleRunner: run_task(module, args, env=..., verbosity=3, check=..., diff=...)."""
    return AnsibleRunner(tmp_path_factory.mktemp("ansible-runs"))


@pytest.fixture
def home(tmp_path):
    """A temporary home directory with an empty .ssh (0700)."""
    path = tmp_path / "home"
    (path / ".ssh").mkdir(parents=True)
    path.chmod(0o755)
    (path / ".ssh").chmod(0o700)
    return path


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    """Session keys: keys('name', key_type) makes (once) and returns a KeyPair."""
    directory = tmp_path_factory.mktemp("keys")
    made: Dict[tuple, KeyPair] = {}

    def _key(name: str, key_type: str = "ed25519", bits: Optional[int] = None) -> KeyPair:
        if (name, key_type) not in made:
            made[(name, key_type)] = make_key(directory, f"{name}-{key_type}", key_type, bits=bits)
        return made[(name, key_type)]

    return _key


@pytest.fixture(scope="session")
def ssh_hosts():
    """SshHosts on 127.0.15.0/25 (part B: make its own SshHosts("127.0.16.0/25")); skips the test when podman cannot run containers."""
    if not podman_available():
        pytest.skip("podman is not available")
    hosts = SshHosts()
    yield hosts
    hosts.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # The call phase decides; a failing setup or teardown also marks the case failed.
    if report.when == "call" or report.outcome != "passed":
        if report.skipped:
            OUTCOMES[item.nodeid] = "skipped"
        elif report.failed:
            OUTCOMES[item.nodeid] = "failed"
        elif report.when == "call":
            OUTCOMES.setdefault(item.nodeid, "passed")


@pytest.fixture(scope="session")
def figures():
    """The session's Figures; every section with rows is written when the session ends."""
    yield FIGURES
    FIGURES.write()


def pytest_sessionfinish(session, exitstatus):  # pylint: disable=unused-argument
    # Outcomes of the last tests arrive after the fixture teardown: write once more at the end.
    FIGURES.write()

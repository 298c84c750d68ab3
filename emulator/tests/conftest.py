"""Fixtures: one shared emulator for the API tests, SDK clients for both signature schemes."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from support import SDKS, EmulatorProcess  # noqa: E402


@pytest.fixture(scope="session")
def emu():
    proc = EmulatorProcess().start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session", params=sorted(SDKS))
def sdk(request, emu):
    """The default account through each official SDK in turn."""
    return SDKS[request.param](emu.endpoint, emu.key(0))


@pytest.fixture(scope="session")
def sdk3(emu):
    return SDKS["sdk3"](emu.endpoint, emu.key(0))


@pytest.fixture(scope="session")
def sdk1(emu):
    return SDKS["sdk1"](emu.endpoint, emu.key(0))

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by every unit test."""

from __future__ import annotations

import signal

import pytest

NO_HANG_SECONDS = 20


@pytest.fixture
def no_hang():
    """Fails the test instead of hanging it (a FIFO opened the blocking way never returns)."""

    def expired(_signum, _frame):
        raise AssertionError(f"the test did not finish within {NO_HANG_SECONDS} s: something blocked")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(NO_HANG_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)

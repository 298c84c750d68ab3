# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test material shared by the test suites (unit, reliability), none of which imports another.

Imported as ansible_collections.sshkeys.ecs.tests.support.ssh_keys.
"""

from __future__ import annotations

import base64
import random
import struct


def random_key(seed: int) -> str:
    """A well-formed ssh-ed25519 public key line, the same for the same seed, comment key-SEED."""
    rng = random.Random(seed)

    def string(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    blob = string(b"ssh-ed25519") + string(rng.randbytes(32))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} key-{seed}"

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The writer against real processes: concurrent runs lose no key, and a writer killed with
SIGKILL at any moment leaves the old file or the new one, never a mix or a partial file."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys import AuthorizedKeys
from ansible_collections.sshkeys.ecs.tests.support.ssh_keys import random_key

# The child processes import the collection the same way the tests do.
CHILD_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


ADDER = textwrap.dedent(
    """
    import os
    import sys
    from ansible_collections.sshkeys.ecs.plugins.module_utils._authorized_keys_apply import apply, normalise_keys
    from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_target import Target
    path, keys = sys.argv[1], sys.argv[2:]
    target = Target(user="t", uid=os.getuid(), gid=os.getgid(), home="", path=path)
    for key in keys:  # one read-modify-write per key: as many chances to lose one as possible
        apply(target, normalise_keys([key]))
    """
)


def test_concurrent_runs_lose_no_key(tmp_path):
    path = tmp_path / ".ssh" / "authorized_keys"
    per_process, processes = 25, 4
    batches = [[random_key(p * 1000 + i) for i in range(per_process)] for p in range(processes)]
    children = [subprocess.Popen([sys.executable, "-c", ADDER, str(path), *batch], env=CHILD_ENV)
                for batch in batches]
    for child in children:
        assert child.wait(timeout=300) == 0
    model = AuthorizedKeys.parse(path.read_text())
    wanted = {" ".join(key.split()[:2]) for batch in batches for key in batch}
    assert {line.identity() for line in model.keys()} == wanted
    assert len(model.keys()) == per_process * processes


WRITER = textwrap.dedent(
    """
    import sys
    from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file import KeysFile
    path, start = sys.argv[1], int(sys.argv[2])
    versions = [open(name).read() for name in sys.argv[3:]]
    n = start
    print("ready", flush=True)
    while True:
        with KeysFile(path) as handle:
            handle.read_state()  # bytes only: the loop should spend its time writing
            handle.write(versions[n % len(versions)], backup=(n % 7 == 0))
        n += 1
    """
)


def test_writer_killed_at_any_moment_leaves_a_whole_file(tmp_path):
    ssh = tmp_path / "ssh"
    ssh.mkdir()
    path = ssh / "authorized_keys"
    # Big versions (about 1 MB) so that a kill lands inside a write often.
    versions = []
    for v in range(3):
        text = "".join(random_key(v * 100000 + i) + "\n" for i in range(9000))
        version_file = tmp_path / f"version{v}"
        version_file.write_text(text)
        versions.append(text)
    path.write_text(versions[0])
    rng = random.Random(1)
    seen = set()
    interrupted = 0
    for round_ in range(25):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(round_)] +
                                 [str(tmp_path / f"version{v}") for v in range(3)],
                                 env=CHILD_ENV, stdout=subprocess.PIPE)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        content = path.read_text()
        assert content in versions, "the keys file is partial or mixed after a kill"
        seen.add(versions.index(content))
        # A temporary file left behind means this kill landed in the middle of a write.
        leftovers = [p.name for p in ssh.iterdir() if ".tmp." in p.name]
        assert len(leftovers) <= 1  # each write removes those of earlier killed writers
        interrupted += bool(leftovers)
    # The kills landed at different points: inside writes, and between them.
    assert interrupted > 0
    assert len(seen) > 1
    from ansible_collections.sshkeys.ecs.plugins.module_utils._keys_file import KeysFile
    with KeysFile(str(path)) as handle:
        handle.read()
        handle.write(versions[0])
    assert [p.name for p in ssh.iterdir() if ".tmp." in p.name] == []
    for backup in ssh.glob("authorized_keys.*~"):
        assert backup.read_text() in versions, "a backup is partial"

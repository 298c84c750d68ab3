"""What each host module ships to a managed host and what starting it costs there.

For sshkeys.ecs.authorized_keys, authorized_keys_info and authorized_key_rotate (the modules
that run on every managed host): the AnsiballZ payload Ansible builds and sends for one run
(ansible-core's own module_common, with its default ZIP_DEFLATED compression), the collection's files in
it, and the time a fresh Python takes to import the module, with ansible's module_utils.basic
imported first so that only the collection's own share is left. Medians of repeated runs. A
measurement, not a test.

    .venv-bench/bin/python benchmarks/payload.py
"""

from __future__ import annotations

import json
import subprocess
import sys

from benchlib import COLLECTIONS, VENV_BIN, log, median

HOST_MODULES = ("authorized_keys", "authorized_keys_info", "authorized_key_rotate")
IMPORT_ROUNDS = 7

_PAYLOAD = r"""
import json, os, sys, zipfile, io, base64, re
from ansible.executor import module_common
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, module_loader
from ansible.template import Templar
init_plugin_loader([sys.argv[1]])
out = {}
for name in sys.argv[2:]:
    path = module_loader.find_plugin(f"sshkeys.ecs.{name}")
    built = module_common.modify_module(module_name=f"sshkeys.ecs.{name}", module_path=path, module_args={},
                                        templar=Templar(loader=DataLoader()),
                                        task_vars={"ansible_python_interpreter": "/usr/bin/python3"},
                                        module_compression="ZIP_DEFLATED")
    data = built.b_module_data
    # The zip travels as the last long base64 string of the wrapper.
    zipped = base64.b64decode(max(re.findall(rb"'([A-Za-z0-9+/=]{1000,})'", data), key=len))
    names = zipfile.ZipFile(io.BytesIO(zipped)).namelist()
    ours = [n for n in names if n.startswith("ansible_collections/sshkeys/ecs/plugins/") and n.endswith(".py")]
    out[name] = {"payload_bytes": len(data), "files": len(names), "collection_files": len(ours),
                 "collection_modules": sorted(n.rsplit("/", 1)[-1][:-3] for n in ours)}
print(json.dumps(out))
"""

_IMPORT = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import ansible.module_utils.basic  # what every module imports; not the collection's share
started = time.perf_counter()
__import__(f"ansible_collections.sshkeys.ecs.plugins.modules.{sys.argv[2]}")
print(time.perf_counter() - started)
"""


def payloads() -> dict:
    done = subprocess.run([str(VENV_BIN / "python"), "-c", _PAYLOAD, str(COLLECTIONS), *HOST_MODULES],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def import_seconds(name: str) -> float:
    samples = []
    for _round in range(IMPORT_ROUNDS):
        done = subprocess.run([str(VENV_BIN / "python"), "-I", "-c", _IMPORT, str(COLLECTIONS), name],
                              capture_output=True, text=True, check=True)
        samples.append(float(done.stdout.strip()))
    return median(samples)


def measure(quick: bool) -> dict:
    del quick  # a few seconds either way
    found = payloads()
    for name in HOST_MODULES:
        found[name]["import_s"] = import_seconds(name)
        log(f"  {name:22s} payload {found[name]['payload_bytes']:7d} bytes, {found[name]['collection_files']:2d} "
            f"collection files, import {found[name]['import_s'] * 1000:5.1f} ms")
    return found


def main() -> None:
    print(json.dumps(measure(False), indent=2))


if __name__ == "__main__":
    sys.exit(main())

# -*- coding: utf-8 -*-
# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The layers of docs/development.md hold: who may import what, and where requests are built.

The runtime checks import a plugin in a fresh interpreter and look at what it loaded; the
static checks read the imports of every file (and of the files they import) without running
them, so that a forbidden import is named with the file that makes it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PLUGINS = ROOT / "plugins"
PACKAGE = "ansible_collections.sshkeys.ecs"
CLIENT = f"{PACKAGE}.plugins.module_utils._ecs_client"
BASIC = "ansible.module_utils.basic"
MODULE_BASE = (f"{PACKAGE}.plugins.module_utils._ecs_module", f"{PACKAGE}.plugins.module_utils._masking")
FILTERS = sorted(p.stem for p in (PLUGINS / "filter").glob("*.py") if p.stem != "__init__")


def _python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          check=False)


# ---------------------------------------------------------------------------------------------
# At run time.

LOADED = """
import importlib, json, sys
importlib.import_module({name!r})
print(json.dumps(sorted(sys.modules)))
"""

# Ansible's own inventory base loads ansible.module_utils.basic itself; what matters is that
# the plugin does not. Ansible's modules are loaded first, then basic is blocked for the rest.
BLOCKED = """
import importlib, sys
for core in ("ansible.errors", "ansible.plugins.inventory", "ansible.utils.vars"):
    importlib.import_module(core)
sys.modules[{blocked!r}] = None
importlib.import_module({name!r})
print("imported")
"""


@pytest.mark.parametrize("name", FILTERS)
def test_a_filter_loads_neither_the_http_client_nor_ansible_module(name):
    done = _python(LOADED.format(name=f"{PACKAGE}.plugins.filter.{name}"))
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert CLIENT not in loaded, f"filter {name} loads the HTTP client"
    assert BASIC not in loaded, f"filter {name} loads {BASIC}"


def test_the_inventory_loads_neither_ansible_module_nor_the_module_base():
    done = _python(BLOCKED.format(blocked=BASIC, name=f"{PACKAGE}.plugins.inventory.ecs"))
    assert done.returncode == 0 and "imported" in done.stdout, \
        f"the inventory (or a file it imports) imports {BASIC}:\n{done.stderr}"
    done = _python(LOADED.format(name=f"{PACKAGE}.plugins.inventory.ecs"))
    assert done.returncode == 0, done.stderr
    assert not set(MODULE_BASE) & set(json.loads(done.stdout)), "the inventory loads the module base"


# ---------------------------------------------------------------------------------------------
# In the source.


def _file_of(module: str) -> Path:
    return ROOT / Path(*module[len(PACKAGE) + 1:].split(".")).with_suffix(".py")


def _imports(path: Path) -> set:
    """Every module path.py imports (a module's own module, for 'from package import module')."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module.startswith(PACKAGE):
                found.update(f"{node.module}.{alias.name}" for alias in node.names
                             if _file_of(f"{node.module}.{alias.name}").is_file())
    return found


def _closure(module: str) -> dict:
    """{module: what it imports} for module and every collection module it imports, transitively."""
    seen: dict = {}
    todo = [module]
    while todo:
        current = todo.pop()
        if current in seen or not _file_of(current).is_file():
            continue
        seen[current] = _imports(_file_of(current))
        todo.extend(name for name in seen[current] if name.startswith(PACKAGE))
    return seen


def _importers(closure: dict, forbidden: str) -> list:
    return sorted(module for module, names in closure.items() if forbidden in names)


def _module_utils(name: str) -> str:
    return f"{PACKAGE}.plugins.module_utils.{name}"


# What the lower layers may import of the collection, all the way down (docs/development.md).
ALLOWED = {
    "_errors": set(),
    "_endpoints": set(),
    "_ecs_client": {"_errors", "_key_material", "_endpoints"},
    "_ecs_api": {"_ecs_client", "_errors", "_key_material", "_endpoints"},
    # Checks and shapes are shared with the filters: no client below them.
    "_ecs_validate": {"_errors", "_key_material"},
    "_ecs_shape": {"_errors", "_openssh", "_key_material"},
    # Credentials serve the inventory too: no AnsibleModule, no module base below them.
    "_credentials": {"_ecs_client", "_ecs_validate", "_errors", "_key_material", "_regular_file", "_file_kinds",
                     "_endpoints", "_sts", "_metadata"},
    # Temporary credentials: the signer below them, nothing of the credentials chain above.
    "_sts": {"_ecs_client", "_errors", "_key_material", "_endpoints"},
    "_metadata": {"_sts", "_ecs_client", "_errors", "_key_material", "_endpoints"},
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_lower_layers_import_only_what_lies_below(name):
    closure = _closure(_module_utils(name))
    reached = {module.rsplit(".", 1)[1] for module in closure if module != _module_utils(name)}
    assert reached <= ALLOWED[name], f"{name} reaches {', '.join(sorted(reached - ALLOWED[name]))}"
    assert not _importers(closure, BASIC), f"{name} reaches {BASIC} through {_importers(closure, BASIC)}"


@pytest.mark.parametrize("plugin", [f"filter.{name}" for name in FILTERS] + ["inventory.ecs", "connection.cloud_assistant"])
def test_plugins_reach_no_module_base_in_the_source(plugin):
    closure = _closure(f"{PACKAGE}.plugins.{plugin}")
    assert not _importers(closure, BASIC), f"{plugin} reaches {BASIC}"
    assert not set(MODULE_BASE) & set(closure), f"{plugin} reaches the module base"
    if plugin.startswith("filter."):
        assert CLIENT not in closure, f"{plugin} reaches the HTTP client through {_importers(closure, CLIENT)}"


def test_the_cloud_assistant_transport_reaches_only_the_api_layer_and_below():
    """The connection's logic talks to the API through _ecs_api, and to nothing of the modules."""
    closure = _closure(f"{PACKAGE}.plugins.plugin_utils._cloud_assistant")
    reached = {module.rsplit(".", 1)[1] for module in closure if module.startswith(PACKAGE)} - {"_cloud_assistant"}
    assert reached <= {"_ecs_api"} | ALLOWED["_ecs_api"], f"_cloud_assistant reaches {sorted(reached)}"
    connection = _closure(f"{PACKAGE}.plugins.connection.cloud_assistant")
    assert _module_utils("_credentials") in connection, "the connection must resolve credentials as the modules do"


def test_requests_are_built_only_in_the_api_layer():
    """Only _ecs_api (and the client's own paging) calls client.call or client.paginate."""
    allowed = {PLUGINS / "module_utils" / "_ecs_api.py", PLUGINS / "module_utils" / "_ecs_client.py"}
    offenders = []
    for path in sorted(PLUGINS.rglob("*.py")):
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("call", "paginate")):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, "requests built outside _ecs_api: " + ", ".join(offenders)

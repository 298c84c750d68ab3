"""An AWX credential type file: its rules, and the environment its injector gives a job.

AWX (and Automation Platform's controller) keeps a custom credential type as `inputs` (fields a
user fills in) and `injectors`; when a job starts, it renders every `env` injector as a Jinja
template over the credential's inputs, in Jinja's immutable sandbox, and sets the result in the
job's environment. Inputs left empty are not defined, so they render as an empty string.
extensions/awx/credential_type.json is such a file; this tool checks it against the rules AWX
applies when the type is created, and renders its injector the same way AWX does at launch, so
that the tests (tests/unit/tools/test_awx_credential.py, the artifact stage) and `make ee` can
give the collection exactly the environment an AWX job would have.

  python tools/awx_credential.py check FILE
  python tools/awx_credential.py env FILE [--input ID=VALUE]... [--input-env ID=VARIABLE]...
      prints the rendered environment as JSON (also valid as ansible-runner's env/envvars)
  python tools/awx_credential.py exec FILE [inputs as above] [--keep VARIABLE]... -- CMD [ARG]...
      runs CMD with only the rendered environment, plus PATH, HOME, LANG, LC_ALL and TMPDIR
      and the variables named with --keep (never an Alibaba Cloud variable of the caller's)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any, Mapping

from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# What AWX accepts in a custom credential type (its inputs and injectors schemas, and the
# environment variables it refuses to let a credential set).
KINDS = ("cloud", "net")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
FIELD_KEYS = {"id", "label", "help_text", "type", "format", "choices", "secret", "multiline", "default",
              "ask_at_runtime"}
STRING_ONLY = ("choices", "multiline", "format", "secret")
BLOCKED_ENV = frozenset((
    "VIRTUAL_ENV", "PATH", "PYTHONPATH", "JOB_ID", "INVENTORY_ID", "INVENTORY_SOURCE_ID",
    "INVENTORY_UPDATE_ID", "AD_HOC_COMMAND_ID", "REST_API_URL", "REST_API_TOKEN", "MAX_EVENT_RES",
    "CALLBACK_QUEUE", "CALLBACK_CONNECTION", "CACHE", "JOB_CALLBACK_DEBUG", "INVENTORY_HOSTVARS",
    "AWX_HOST", "PROJECT_REVISION", "SUPERVISOR_CONFIG_PATH",
))
# What `exec` passes on from the caller: enough for a process to run, nothing that configures it.
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
# Never passed on from the caller: the point is that these come from the injector only.
CLOUD_PREFIXES = ("ALIBABA_CLOUD_", "ALICLOUD_", "ALIBABACLOUD_")


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def fields(credential_type: Mapping[str, Any]) -> list:
    return list((credential_type.get("inputs") or {}).get("fields") or [])


def check(credential_type: Mapping[str, Any]) -> list[str]:
    """Why AWX would refuse this credential type; empty when it would take it."""
    problems = []
    if not credential_type.get("name"):
        problems.append("no name")
    if credential_type.get("kind") not in KINDS:
        problems.append(f"kind must be one of {', '.join(KINDS)} for a custom credential type")
    inputs = credential_type.get("inputs") or {}
    problems.extend(f"inputs: unknown key {key}" for key in sorted(set(inputs) - {"fields", "required"}))
    ids = []
    for field in fields(credential_type):
        field_id = field.get("id", "")
        if not NAME.match(str(field_id)):
            problems.append(f"field id {field_id!r} is not a variable name")
        if field_id == "tower":
            problems.append("field id 'tower' is reserved")
        if field_id in ids:
            problems.append(f"field id {field_id} is used twice")
        ids.append(field_id)
        if not field.get("label"):
            problems.append(f"field {field_id} has no label")
        problems.extend(f"field {field_id}: unknown key {key}" for key in sorted(set(field) - FIELD_KEYS))
        kind = field.get("type", "string")
        if kind not in ("string", "boolean"):
            problems.append(f"field {field_id}: type must be string or boolean")
        problems.extend(f"field {field_id}: {key} is only for strings"
                        for key in STRING_ONLY if key in field and kind != "string")
        if field.get("ask_at_runtime"):
            problems.append(f"field {field_id}: ask_at_runtime is not for custom credential types")
        if "default" in field and not isinstance(field["default"], bool if kind == "boolean" else str):
            problems.append(f"field {field_id}: the default is not a {kind}")
    problems.extend(f"required names an unknown field {name}"
                    for name in inputs.get("required") or [] if name not in ids)

    injectors = credential_type.get("injectors") or {}
    problems.extend(f"injectors: unknown key {key}" for key in sorted(set(injectors) - {"env", "extra_vars", "file"}))
    example = {field_id: "EXAMPLE" for field_id in ids}
    sandbox = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    for name, template in (injectors.get("env") or {}).items():
        if not NAME.match(name):
            problems.append(f"env: {name!r} is not a variable name")
        if name.startswith("ANSIBLE_") or name in BLOCKED_ENV:
            problems.append(f"env: AWX does not let a credential set {name}")
        if not isinstance(template, str) or not template.isascii():
            problems.append(f"env: the value of {name} must be an ASCII string")
            continue
        try:
            sandbox.from_string(template).render(example)
        except (UndefinedError, SecurityError, TemplateSyntaxError) as exc:
            problems.append(f"env: {name} does not render: {exc}")
    return problems


def render_env(credential_type: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict[str, str]:
    """The environment a job gets from a credential of this type with these inputs."""
    namespace: dict[str, Any] = {}
    for field in fields(credential_type):
        field_id = field["id"]
        value = inputs.get(field_id)
        if field.get("type", "string") == "boolean":
            namespace[field_id] = bool(value)
        elif value:
            namespace[field_id] = value
    sandbox = ImmutableSandboxedEnvironment()
    env_injectors = (credential_type.get("injectors") or {}).get("env") or {}
    return {name: sandbox.from_string(template).render(**namespace) for name, template in env_injectors.items()}


def _inputs(args: argparse.Namespace) -> dict[str, str]:
    inputs = {}
    for item in args.input:
        key, value = item.split("=", 1) if "=" in item else (item, "")
        inputs[key] = value
    for item in args.input_env:
        key, variable = item.split("=", 1) if "=" in item else (item, item)
        inputs[key] = os.environ.get(variable, "")
    return inputs


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("action", choices=("check", "env", "exec"))
    parser.add_argument("file")
    parser.add_argument("--input", action="append", default=[], metavar="ID=VALUE")
    parser.add_argument("--input-env", action="append", default=[], metavar="ID=VARIABLE")
    parser.add_argument("--keep", action="append", default=[], metavar="VARIABLE")
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    credential_type = load(args.file)
    problems = check(credential_type)
    if problems:
        for problem in problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        return 1
    if args.action == "check":
        print(f"{args.file}: a valid AWX credential type ({len(fields(credential_type))} fields)")
        return 0
    env = render_env(credential_type, _inputs(args))
    if args.action == "env":
        print(json.dumps(env, indent=2, sort_keys=True))
        return 0
    if not command:
        parser.error("exec needs a command after --")
    kept = {name: os.environ[name] for name in (*BASE_ENV, *args.keep)
            if name in os.environ and not name.startswith(CLOUD_PREFIXES)}
    os.execvpe(command[0], command, {**kept, **env})
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Writes tests/integration/integration_config.yml for the emulator that runs now.

    python tools/integration_config.py [OUTPUT]

Run it where tools/with-emulator.sh has exported the emulator's variables (inside the command
it runs). ansible-test hands the file's variables to every integration target:

  ecs_endpoint, alicloud_region, alicloud_access_key, alicloud_secret_key
  (alicloud_security_token for an STS key)
                               what the targets give the modules of the action group
                               `group/sshkeys.ecs.ecs` in module_defaults
  ecs_emulator_admin_token     the emulator's admin API (fault injection)
  ecs_emulator_environment     the ALIBABA_CLOUD_* and ECS_EMULATOR_* variables, for the helper
                               scripts (official SDK) and the playbooks of script targets;
                               ansible-test does not pass the caller's environment on

OUTPUT defaults to tests/integration/integration_config.yml of the collection this script
belongs to. The file is git-ignored: it holds the credentials of a throw-away emulator.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "integration" / "integration_config.yml"
# What tools/with-emulator.sh exports, and what the SDK helpers need to stay offline.
PASSED_ON = (
    "ALIBABA_CLOUD_ECS_ENDPOINT", "ALIBABA_CLOUD_REGION_ID", "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ECS_EMULATOR_SECOND_ACCESS_KEY_ID", "ECS_EMULATOR_SECOND_ACCESS_KEY_SECRET", "ECS_EMULATOR_ADMIN_TOKEN",
    "ECS_EMULATOR_READY_FILE", "ECS_EMULATOR_STATE", "ECS_EMULATOR_LOG", "ECS_EMULATOR_PID",
)
# Each variable of the file, and the environment variable it comes from.
VARIABLES = {
    "ecs_endpoint": "ALIBABA_CLOUD_ECS_ENDPOINT",
    "alicloud_region": "ALIBABA_CLOUD_REGION_ID",
    "alicloud_access_key": "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "alicloud_secret_key": "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "alicloud_security_token": "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ecs_emulator_admin_token": "ECS_EMULATOR_ADMIN_TOKEN",
}
REQUIRED = ("ALIBABA_CLOUD_ECS_ENDPOINT", "ALIBABA_CLOUD_REGION_ID", "ALIBABA_CLOUD_ACCESS_KEY_ID",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ECS_EMULATOR_ADMIN_TOKEN")
OFFLINE = {"ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true"}

HEADER = """\
# Written by tools/integration_config.py for one run of the ECS emulator (tools/with-emulator.sh);
# not tracked by git. ansible-test passes these variables to every integration target.
"""


def config(environ: dict[str, str]) -> dict:
    doc = {key: environ[name] for key, name in VARIABLES.items() if environ.get(name)}
    doc["ecs_emulator_environment"] = {name: environ[name] for name in PASSED_ON if environ.get(name)}
    doc["ecs_emulator_environment"].update(OFFLINE)
    return doc


def render(doc: dict) -> str:
    """YAML that is also JSON, one key a line: no YAML library needed, every value quoted."""
    lines = [HEADER.rstrip("\n")]
    for key, value in doc.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {name}: {json.dumps(item)}" for name, item in value.items()]
        else:
            lines.append(f"{key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]) or len(argv) > 1:
        print(__doc__, file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        print(f"integration_config: {', '.join(missing)} not set: run this inside tools/with-emulator.sh",
              file=sys.stderr)
        return 2
    output = Path(argv[0]) if argv else DEFAULT_OUTPUT
    output.parent.mkdir(parents=True, exist_ok=True)
    # The file holds credentials (of a throw-away emulator, but still): owner only.
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(render(config(dict(os.environ))))
    print(f"integration_config: {output} -> {os.environ['ALIBABA_CLOUD_ECS_ENDPOINT']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

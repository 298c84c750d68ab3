# Copyright: contributors to the sshkeys.ecs collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulator's variables for a script target (runme.sh), as shell `export` lines.

usage: emulator_env.py CONFIG   (tests/integration/integration_config.yml)

ansible-test runs a script target with an environment of its own, without the caller's
ALIBABA_CLOUD_* variables; what they were is in integration_config.yml
(ecs_emulator_environment), which tools/integration_config.py writes. A runme.sh takes them with

    eval "$("$ANSIBLE_TEST_PYTHON_INTERPRETER" ../setup_ecs_sdk/files/emulator_env.py ../../integration_config.yml)"
"""

from __future__ import annotations

import shlex
import sys

import yaml


def main(argv: list) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as handle:
            environment = (yaml.safe_load(handle) or {}).get("ecs_emulator_environment")
    except OSError as exc:
        print(f"emulator_env: cannot read {argv[1]} ({exc.strerror}): write it with tools/integration_config.py",
              file=sys.stderr)
        return 2
    if not isinstance(environment, dict) or not environment:
        print(f"emulator_env: {argv[1]} has no ecs_emulator_environment", file=sys.stderr)
        return 2
    for name, value in environment.items():
        print(f"export {name}={shlex.quote(str(value))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

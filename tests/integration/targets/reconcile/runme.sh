#!/usr/bin/env bash
# The GitOps reconcile playbook (sshkeys.ecs.reconcile) end to end against the emulator with real
# instances: plan, apply, re-apply, prune, out-of-band drift, the drift gate, a bad state file.
# Run by ansible-test (`ansible-test integration reconcile`) against the emulator of
# tests/integration/integration_config.yml, started with the options of emulator_options.
set -euo pipefail
cd "$(dirname "$0")"
# ansible-test gives scripts an environment of their own: the emulator's variables come from the
# config file, the controller's Python from ansible-test.
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-python3}
eval "$("$python" ../setup_ecs_sdk/files/emulator_env.py ../../integration_config.yml)"
export ANSIBLE_PYTHON_INTERPRETER=$python
exec ansible-playbook -i localhost, -c local runme.yml "$@"

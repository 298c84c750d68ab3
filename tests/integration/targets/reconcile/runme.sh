#!/usr/bin/env bash
# The GitOps reconcile playbook (sshkeys.ecs.reconcile) end to end against the emulator with real
# instances: plan, apply, re-apply, prune, out-of-band drift, the drift gate, a bad state file.
# tools/stages/50-integration.sh runs it inside tools/with-emulator.sh (emulator_options).
set -euo pipefail
cd "$(dirname "$0")"
exec ansible-playbook -i localhost, -c local runme.yml "$@"

#!/usr/bin/env bash
# ansible-lint (production profile, .ansible-lint) on the roles and playbooks.
set -uo pipefail
source "$(dirname "$0")/common.sh"
targets=()
for dir in roles playbooks; do
  if compgen -G "$ROOT/$dir/*" >/dev/null; then targets+=("$dir"); fi
done
if [ "${#targets[@]}" -eq 0 ]; then echo "no roles or playbooks yet: nothing to lint"; exit 0; fi
cd "$ROOT" && "$VENV/bin/ansible-lint" --offline "${targets[@]}"

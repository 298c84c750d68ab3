#!/usr/bin/env bash
# Integration targets (tests/integration/targets/*) with `ansible-test integration`, one JUnit
# test case per target. All run in one copy of the collection at
# .../ansible_collections/sshkeys/ecs (ansible-test's layout), each against a fresh ECS emulator:
# tools/with-emulator.sh starts it (with the serve options of the target's `emulator_options`
# file, one per line, if it has one), tools/integration_config.py writes
# tests/integration/integration_config.yml for it, and `ansible-test integration --local TARGET`
# runs the target (a role, or its runme.sh) with those variables. These are the commands
# docs/development.md gives for running a target by hand. Targets named setup_* only hold files
# for the others; ansible-test never runs them on their own.
#   bash tools/stages/50-integration.sh [TARGET...]   (default: every target)
set -uo pipefail
source "$(dirname "$0")/common.sh"
export PATH=$VENV/bin:$PATH

dest=$(copy_collection)
trap 'rm -rf "${dest%/ansible_collections/sshkeys/ecs}"' EXIT
cases=$STAGE_RESULTS/integration.tsv
: >"$cases"

targets=()
for dir in "$dest"/tests/integration/targets/*/; do
  name=$(basename "$dir")
  case $name in setup_*) continue ;; esac
  targets+=("$name")
done
if [ $# -gt 0 ]; then
  for name in "$@"; do
    [[ " ${targets[*]} " == *" $name "* ]] || { echo "integration: no target $name (targets: ${targets[*]})" >&2; exit 2; }
  done
  targets=("$@")
fi

status=0
for name in "${targets[@]}"; do
  log=$STAGE_RESULTS/integration-$name.log
  options=()
  if [ -f "$dest/tests/integration/targets/$name/emulator_options" ]; then
    mapfile -t options < <(grep -v '^\s*\(#\|$\)' "$dest/tests/integration/targets/$name/emulator_options")
  fi
  echo "--- integration target $name${options[*]:+ (emulator ${options[*]})}"
  started=$(date +%s.%N)
  # shellcheck disable=SC2016  # expanded by the inner bash, once the emulator runs
  (cd "$dest" && "$ROOT/tools/with-emulator.sh" "${options[@]}" -- bash -c \
    'python tools/integration_config.py && ansible-test integration --local --color no "$0"' "$name") >"$log" 2>&1
  code=$?
  took=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  if [ "$code" -eq 0 ]; then
    # A role target ends with its play recap, a script target with its own last words.
    summary=$(grep -E '^[a-z0-9_.-]+ +: ok=' "$log" | tail -1 | tr -s ' ')
    [ -n "$summary" ] || summary=$(grep -v -e '^WARNING' -e '^\s*$' "$log" | tail -1)
    echo "passed in $took s: $summary"
  else
    status=1
    echo "FAILED ($code) in $took s; the end of $log:"
    grep -E 'fatal:|FAILED|FAIL:|ERROR' "$log" | tail -15
  fi
  junit_case "$cases" integration "$name" "$code" "$took" "exit status $code" "$log"
done

junit_write integration "$cases" "$STAGE_RESULTS/integration.xml" || status=1
exit $status

#!/usr/bin/env bash
# Molecule: every scenario under roles/*/molecule/* and extensions/molecule/*, each with
# `molecule test` (its own create, check, converge, idempotence, verify, destroy) on containers
# from the instance image, reached over real SSH on loopback addresses. One JUnit test case per
# scenario in $STAGE_RESULTS/molecule.xml; each scenario's full log next to it.
set -uo pipefail
source "$(dirname "$0")/common.sh"
export PATH=$VENV/bin:$PATH
export ANSIBLE_FORCE_COLOR=false PY_COLORS=0 NO_COLOR=1 ANSIBLE_NOCOLOR=1

if ! "$ROOT/tools/instance-image.sh"; then
  echo "molecule: the instance image could not be built" >&2
  exit 1
fi

# (project directory, scenario name) for each scenario. A role's scenarios run from the role's
# directory (which holds molecule/); extensions/molecule/* run from the collection root, where
# Molecule looks for them.
scenarios=()
for config in "$ROOT"/roles/*/molecule/*/molecule.yml "$ROOT"/extensions/molecule/*/molecule.yml; do
  [ -f "$config" ] || continue
  scenario_dir=$(dirname "$config")
  project=$(dirname "$(dirname "$scenario_dir")")
  if [ "$project" = "$ROOT/extensions" ]; then project=$ROOT; fi
  scenarios+=("$project|$(basename "$scenario_dir")")
done
if [ "${#scenarios[@]}" -eq 0 ]; then echo "no Molecule scenarios found"; exit 0; fi

cases=$STAGE_RESULTS/molecule.tsv
: >"$cases"
status=0
for entry in "${scenarios[@]}"; do
  project=${entry%|*} name=${entry#*|}
  if [ "$project" = "$ROOT" ]; then label=extensions/molecule/$name; else label=${project#"$ROOT"/}/molecule/$name; fi
  log=$STAGE_RESULTS/$(echo "$label" | tr '/' '_').log
  echo "--- molecule test: $label"
  started=$(date +%s)
  (cd "$project" && timeout 1800 molecule test --scenario-name "$name") >"$log" 2>&1
  code=$?
  took=$(( $(date +%s) - started ))
  tail -n 15 "$log"
  if [ "$code" -eq 0 ]; then
    echo "--- $label: passed in ${took} s"
  else
    echo "--- $label: FAILED (exit $code, log: $log)"
    status=1
  fi
  junit_case "$cases" molecule "$label" "$code" "$took" "molecule test exited with $code" "$log"
done

junit_write molecule "$cases" "$STAGE_RESULTS/molecule.xml" || status=1
exit $status

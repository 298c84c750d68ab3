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

cases=()
status=0
failures=0
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
  label_xml=$(printf '%s' "$label" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/"/\&quot;/g')
  if [ "$code" -eq 0 ]; then
    echo "--- $label: passed in ${took} s"
    cases+=("  <testcase classname=\"molecule\" name=\"$label_xml\" time=\"$took\"/>")
  else
    echo "--- $label: FAILED (exit $code, log: $log)"
    status=1
    failures=$((failures + 1))
    # Colour codes and other control characters are not allowed in XML.
    detail=$(tail -n 40 "$log" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' | tr -d '\000-\010\013\014\016-\037' |
      sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g')
    cases+=("  <testcase classname=\"molecule\" name=\"$label_xml\" time=\"$took\"><failure message=\"molecule test exited with $code\">$detail</failure></testcase>")
  fi
done

{
  echo '<?xml version="1.0" encoding="utf-8"?>'
  echo "<testsuite name=\"molecule\" tests=\"${#scenarios[@]}\" failures=\"$failures\">"
  printf '%s\n' "${cases[@]}"
  echo '</testsuite>'
} >"$STAGE_RESULTS/molecule.xml"
exit $status

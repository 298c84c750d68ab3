#!/usr/bin/env bash
# Unit tests (tests/unit) with pytest, under ansible-core 2.19 and under the newest ansible-core
# (with TEST_QUICK set, as `make check` does, under 2.19 only).
# The collection is imported through .cache/collections/ansible_collections/sshkeys/ecs, a link
# to this checkout made by tools/bootstrap.sh.
set -uo pipefail
source "$(dirname "$0")/common.sh"
status=0
run_units() {
  local label=$1 env_dir=$2
  if [ ! -x "$env_dir/bin/pytest" ]; then echo "units $label: $env_dir is missing, skipped"; return 0; fi
  echo "--- unit tests with $("$env_dir/bin/ansible" --version | sed -n 1p)"
  (cd "$COLLECTION" && PYTHONPATH=$ANSIBLE_COLLECTIONS_PATH "$env_dir/bin/pytest" tests/unit -q -p no:cacheprovider \
    -n 2 --junitxml="$STAGE_RESULTS/units-$label.xml" -o junit_suite_name="units-$label") || status=1
}
run_units 2.19 "$VENV"
[ -n "${TEST_QUICK:-}" ] && exit $status
run_units 2.21 "$VENV_NEW"
exit $status

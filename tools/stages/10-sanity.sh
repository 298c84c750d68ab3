#!/usr/bin/env bash
# ansible-test sanity, every test, on the oldest (2.19, Python 3.11) and newest (2.21, Python
# 3.13) ansible-core we support; with TEST_QUICK set (make check), on 2.19 only. tests/sanity/
# holds no ignore entries. One JUnit test case per sanity test (tools/junit.py sanity).
set -uo pipefail
source "$(dirname "$0")/common.sh"
status=0
run_sanity() {
  local label=$1 env_dir=$2 python=$3 dest log
  if [ ! -x "$env_dir/bin/ansible-test" ]; then
    echo "sanity $label: $env_dir is missing, skipped"; return 0
  fi
  dest=$(copy_collection)
  log=$STAGE_RESULTS/sanity-$label.log
  echo "--- ansible-test sanity with $("$env_dir/bin/ansible" --version | sed -n 1p), Python $python"
  (cd "$dest" && "$env_dir/bin/ansible-test" sanity --local --python "$python" --color no 2>&1) |
    grep -v 'is ignored: it is neither' | tee "$log" | grep -E '^(Running sanity test|ERROR|WARNING: Skipping|[^ ]+\.(py|yml|yaml|sh|md):)' 
  local code=${PIPESTATUS[0]}
  "$VENV/bin/python" "$ROOT/tools/junit.py" sanity "$label" "$log" "$STAGE_RESULTS/sanity-$label.xml"
  rm -rf "${dest%/ansible_collections/sshkeys/ecs}"
  [ "$code" -eq 0 ] || status=1
}
run_sanity 2.19 "$VENV" 3.11
[ -n "${TEST_QUICK:-}" ] && exit $status
run_sanity 2.21 "$VENV_NEW" "$("$VENV_NEW/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)"
exit $status

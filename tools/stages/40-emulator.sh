#!/usr/bin/env bash
# The emulator's own tests (emulator/tests): the API through both official SDKs, signatures,
# faults, persistence, kill -9, fuzzing; then the tests marked `podman` (real sshd containers
# from the instance image), which run one at a time; with TEST_QUICK set (make check), not those.
set -uo pipefail
source "$(dirname "$0")/common.sh"
status=0
if ! "$VENV/bin/python" -c 'import ecs_emulator' 2>/dev/null; then
  "$VENV/bin/python" -m pip -q --disable-pip-version-check install --no-deps -e "$ROOT/emulator" || exit 1
fi
cd "$ROOT/emulator" || exit 1
"$VENV/bin/pytest" tests -q -p no:cacheprovider -n 2 -m "not podman" \
  --junitxml="$STAGE_RESULTS/emulator.xml" -o junit_suite_name=emulator || status=1
[ -n "${TEST_QUICK:-}" ] && exit $status
"$VENV/bin/pytest" tests -q -p no:cacheprovider -m podman \
  --junitxml="$STAGE_RESULTS/emulator-podman.xml" -o junit_suite_name=emulator-podman
rc=$?
# 5: nothing collected (no podman tests yet) is not a failure
if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then status=1; fi
exit $status

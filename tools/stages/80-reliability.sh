#!/usr/bin/env bash
# The reliability and security suite (tests/reliability): bad input, secrets, lockout, faults,
# crashes, emulator security and load, against fresh emulators and real sshd containers from
# the instance image (loopback addresses 127.0.15.0/24 and 127.0.16.0/24). JUnit XML into
# $STAGE_RESULTS; then the figures the tests recorded (tests/output/reliability/*.json) are
# rendered into tests/output/reliability/reliability.md. The tracked docs/reliability.md is
# rendered from the same figures by `make reliability-report`, after a whole run, never here.
# Arguments are passed to pytest (for example a test file or -k EXPR).
set -uo pipefail
source "$(dirname "$0")/common.sh"
export PATH=$VENV/bin:$PATH
export RELIABILITY_FIGURES=${RELIABILITY_FIGURES:-$ROOT/tests/output/reliability}

if ! "$VENV/bin/python" -c 'import ecs_emulator' 2>/dev/null; then
  "$VENV/bin/python" -m pip -q --disable-pip-version-check install --no-deps -e "$ROOT/emulator" || exit 1
fi
# The lockout and crash tests log in over real SSH; without the image they would be skipped.
if command -v podman >/dev/null 2>&1; then
  "$ROOT/tools/instance-image.sh" || { echo "reliability: the instance image could not be built" >&2; exit 1; }
fi

args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  # The whole suite: figures of an earlier run must not mix with this one's. (A partial run
  # keeps the other sections' figures, so the page stays whole.)
  rm -rf "$RELIABILITY_FIGURES"
  args=(tests/reliability)
fi
mkdir -p "$RELIABILITY_FIGURES"
cd "$ROOT" || exit 1
timeout 1500 "$VENV/bin/pytest" "${args[@]}" -q -p no:cacheprovider -rfEs \
  --junitxml="$STAGE_RESULTS/reliability.xml" -o junit_suite_name=reliability
status=$?
# 5: nothing collected
if [ "$status" -eq 5 ]; then status=0; fi
"$VENV/bin/python" "$ROOT/tools/reliability_report.py" --figures "$RELIABILITY_FIGURES" \
  --output "$RELIABILITY_FIGURES/reliability.md" || status=1
exit $status

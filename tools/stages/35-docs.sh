#!/usr/bin/env bash
# The reference in docs/reference/ matches the documentation of every module, plugin and role
# (tools/docs_reference.py --check): one JUnit test case per page, a failure for a page that is
# missing, out of date or belongs to nothing. `make docs-write` rewrites the pages.
set -uo pipefail
source "$(dirname "$0")/common.sh"
"$VENV/bin/python" "$ROOT/tools/docs_reference.py" --check --junit "$STAGE_RESULTS/docs.xml"

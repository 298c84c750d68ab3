#!/usr/bin/env bash
# The documentation is current:
#   - docs/reference/ matches the documentation of every module, plugin and role
#     (tools/docs_reference.py --check): one JUnit test case per page, a failure for a page that
#     is missing, out of date or belongs to nothing; `make docs-write` rewrites the pages;
#   - the relative links of README.md, docs/ and the other READMEs lead to files that exist
#     (tools/docs_links.py): one JUnit test case per file.
set -uo pipefail
source "$(dirname "$0")/common.sh"
status=0
"$VENV/bin/python" "$ROOT/tools/docs_reference.py" --check --junit "$STAGE_RESULTS/docs-reference.xml" || status=1
"$VENV/bin/python" "$ROOT/tools/docs_links.py" --junit "$STAGE_RESULTS/docs-links.xml" || status=1
exit $status

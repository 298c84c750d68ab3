#!/usr/bin/env bash
# Galaxy's and Automation Hub's import checks on the tarball that `ansible-galaxy collection
# build` makes, as they would run on upload:
#   1. galaxy-importer (from PyPI, pinned in tools/publish/requirements.txt, in .venv-publish)
#      with tools/publish/galaxy-importer.cfg: metadata and file rules, ansible-doc over every
#      plugin, ansible-lint (production profile), flake8, the changelog and the tags Automation
#      Hub requires. It must import without an error, and every warning must be explained
#      (tools/publish/importer_check.py; docs/development.md lists what is accepted and why);
#   2. ansible-test sanity on the tarball's own files, extracted as the importer extracts them:
#      `--local` where Galaxy uses `--docker` (no container image can be pulled here).
# JUnit: galaxy.xml (the importer's cases) and sanity-tarball.xml (one case per sanity test).
set -uo pipefail
source "$(dirname "$0")/common.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/sshkeys-galaxy.XXXXXX")
src=$(copy_collection)
trap 'rm -rf "$work" "${src%/ansible_collections/sshkeys/ecs}"' EXIT

started=$SECONDS
if ! bash "$ROOT/tools/publish/venv.sh"; then
  echo "galaxy: could not create .venv-publish" >&2
  exit 1
fi
publish=$ROOT/.venv-publish
echo "galaxy: .venv-publish ready ($((SECONDS - started)) s)"
# Only the tarball counts: nothing of the checkout or of the test environment may leak in.
unset ANSIBLE_COLLECTIONS_PATH
export PATH=$publish/bin:$PATH

if ! "$publish/bin/ansible-galaxy" collection build "$src" --output-path "$work" >"$STAGE_RESULTS/build.log" 2>&1; then
  echo "galaxy: ansible-galaxy collection build failed: $(tail -n 5 "$STAGE_RESULTS/build.log")" >&2
  exit 1
fi
tarball=$(ls "$work"/sshkeys-ecs-*.tar.gz)
echo "galaxy: built $(basename "$tarball")"

# --- 1. galaxy-importer ----------------------------------------------------------------------
mkdir -p "$work/importer"
started=$SECONDS
(cd "$work/importer" && GALAXY_IMPORTER_CONFIG=$ROOT/tools/publish/galaxy-importer.cfg \
  "$publish/bin/python" -m galaxy_importer.main "$tarball") >"$STAGE_RESULTS/galaxy-importer.log" 2>&1
code=$?
cp "$work/importer/importer_result.json" "$STAGE_RESULTS/" 2>/dev/null
echo "galaxy: galaxy-importer $("$publish/bin/python" -c 'from importlib.metadata import version; print(version("galaxy-importer"))') took $((SECONDS - started)) s (log: $STAGE_RESULTS/galaxy-importer.log)"
pep8_ignore=$("$publish/bin/python" -c 'import ansible_test, os; print(os.path.join(os.path.dirname(ansible_test.__file__), "_util/controller/sanity/pep8/current-ignore.txt"))')
"$VENV/bin/python" "$ROOT/tools/publish/importer_check.py" "$STAGE_RESULTS/galaxy-importer.log" \
  "$STAGE_RESULTS/importer_result.json" "$code" "$pep8_ignore" "$STAGE_RESULTS/galaxy.xml"
status=$?

# --- 2. ansible-test sanity on the tarball's files ------------------------------------------
extracted=$work/sanity/ansible_collections/sshkeys/ecs
mkdir -p "$extracted"
tar -xzf "$tarball" -C "$extracted"
log=$STAGE_RESULTS/sanity-tarball.log
started=$SECONDS
echo "galaxy: ansible-test sanity --local on the extracted tarball, $("$publish/bin/ansible" --version | sed -n 1p)"
(cd "$extracted" && "$publish/bin/ansible-test" sanity --local --python 3.11 --color no 2>&1) |
  grep -v 'is ignored: it is neither' >"$log"
code=${PIPESTATUS[0]}
grep -E '^(ERROR|[^ ]+\.(py|yml|yaml|sh|md):)' "$log"
"$VENV/bin/python" "$ROOT/tools/junit.py" sanity tarball "$log" "$STAGE_RESULTS/sanity-tarball.xml"
echo "galaxy: sanity took $((SECONDS - started)) s, exit $code (log: $log)"
[ "$code" -eq 0 ] || status=1
exit $status

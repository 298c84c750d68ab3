#!/usr/bin/env bash
# The shipped artifact: `ansible-galaxy collection build` of a clean copy, checked to hold the
# collection and nothing of the emulator, benchmarks, CI or tooling; then installed into an
# empty path, where ansible-doc must find every module and filter of the checkout.
set -uo pipefail
source "$(dirname "$0")/common.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/sshkeys-artifact.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$(copy_collection)
trap 'rm -rf "$work" "${src%/ansible_collections/sshkeys/ecs}"' EXIT

"$VENV/bin/ansible-galaxy" collection build "$src" --output-path "$work" >/dev/null || exit 1
tarball=$(ls "$work"/sshkeys-ecs-*.tar.gz)
echo "built $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"

status=0
members=$(tar -tzf "$tarball")
forbidden=$(printf '%s\n' "$members" | grep -E '^(emulator|benchmarks|tools|\.ci|\.cache|\.venv[^/]*|tests/output|\.test-results|\.github)/|__pycache__|(^|/)Makefile$|(^|/)pytest\.ini$' || true)
if [ -n "$forbidden" ]; then
  echo "the artifact holds files that are not part of the collection:"; echo "$forbidden" | head -20
  status=1
fi
for required in galaxy.yml MANIFEST.json FILES.json meta/runtime.yml README.md; do
  if ! printf '%s\n' "$members" | grep -x "$required" >/dev/null; then
    [ "$required" = galaxy.yml ] && continue  # the build turns galaxy.yml into MANIFEST.json
    echo "the artifact lacks $required"; status=1
  fi
done

export ANSIBLE_COLLECTIONS_PATH=$work/installed
"$VENV/bin/ansible-galaxy" collection install "$tarball" -p "$work/installed" >/dev/null || exit 1
for kind_dir in modules:module inventory:inventory; do
  dir=${kind_dir%%:*} kind=${kind_dir##*:}
  for plugin in "$ROOT"/plugins/"$dir"/*.py; do
    [ -e "$plugin" ] || continue
    name=$(basename "$plugin" .py)
    if "$VENV/bin/ansible-doc" -t "$kind" "sshkeys.ecs.$name" >/dev/null 2>&1; then
      echo "installed artifact documents $kind sshkeys.ecs.$name"
    else
      echo "ansible-doc cannot render $kind sshkeys.ecs.$name from the installed artifact"; status=1
    fi
  done
done
# A filter file may define several filters: ask ansible-doc for the documented ones.
for filter in $("$VENV/bin/ansible-doc" -t filter -l sshkeys.ecs 2>/dev/null | awk '{print $1}'); do
  if "$VENV/bin/ansible-doc" -t filter "$filter" >/dev/null 2>&1; then
    echo "installed artifact documents filter $filter"
  else
    echo "ansible-doc cannot render filter $filter from the installed artifact"; status=1
  fi
done
exit $status

#!/usr/bin/env bash
# Shared by the stage scripts: paths and environment. Sourced, not run.
export ROOT; ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CONTAINERS_CONF=$ROOT/tools/containers.conf
export ANSIBLE_COLLECTIONS_PATH=$ROOT/.cache/collections
export ALIBABA_CLOUD_ECS_METADATA_DISABLED=true
export ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true
export COLLECTION=$ANSIBLE_COLLECTIONS_PATH/ansible_collections/sshkeys/ecs
export VENV=$ROOT/.venv
export VENV_NEW=$ROOT/.venv-2.21
: "${STAGE_RESULTS:=$ROOT/.test-results/manual}"
mkdir -p "$STAGE_RESULTS"

# Copies the files git knows (tracked, or new and not ignored) into a fresh
# ansible_collections/sshkeys/ecs tree outside the checkout and prints its path: ansible-test
# wants the collection there, and inside a git work tree it would only see what git tracks.
# Each call gets its own directory, so that runs in parallel do not disturb each other.
copy_collection() {
  local top dest
  top=$(mktemp -d "${TMPDIR:-/tmp}/sshkeys-ecs.XXXXXX")
  dest=$top/ansible_collections/sshkeys/ecs
  mkdir -p "$dest"
  (cd "$ROOT" && git ls-files -co --exclude-standard -z | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$dest"
  echo "$dest"
}

# JUnit test cases of a shell stage, one line each in a tab-separated file that
# `tools/junit.py cases` turns into XML (junit_write).
# junit_case FILE CLASSNAME NAME STATUS [SECONDS] [MESSAGE] [LOG]: STATUS 0 passes; the end of
# LOG becomes the text of a failure.
junit_case() {
  local file=$1 classname=$2 name=$3 status=$4 seconds=${5:-} message=${6:-} log=${7:-}
  message=${message//$'\t'/ } message=${message//$'\n'/ }
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$classname" "$name" "$status" "$seconds" "$message" "$log" >>"$file"
}
# junit_write SUITE FILE OUT.xml
junit_write() {
  "$VENV/bin/python" "$ROOT/tools/junit.py" cases "$@"
}

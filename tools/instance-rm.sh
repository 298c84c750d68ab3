#!/usr/bin/env bash
# Removes hosts started by tools/instance-run.sh, with their boot configuration.
#   tools/instance-rm.sh NAME...
# Containers that instance-run.sh did not start are left alone.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/tools/containers.conf}
LABEL=io.github.sshkeys-ecs.instance-run

[ $# -ge 1 ] || { echo "usage: $0 NAME..." >&2; exit 1; }
status=0
for name in "$@"; do
  if [[ ! $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]]; then
    echo "instance-rm: invalid container name '$name'" >&2; status=1; continue
  fi
  if podman container exists "$name"; then
    if [ "$(podman container inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$name")" != true ]; then
      echo "instance-rm: '$name' was not started by instance-run.sh, left alone" >&2; status=1; continue
    fi
    podman rm --force --time 2 "$name" >/dev/null
  fi
  rm -rf "$ROOT/.cache/instances/$name"
done
exit $status

#!/usr/bin/env bash
# Builds the base image of the local execution environment build, localhost/sshkeys-ecs-ee-base:
# bookworm, from Debian packages (no registry needed): Debian bookworm minbase with Python 3.11,
# pip (python3-pip: Debian's Python refuses `ensurepip`), the ssh client and the CA certificates.
# `make ee` builds execution-environment.yml on it in place of the default base image, which
# would come from a registry (docs/execution-environment.md).
#
# The root file system is cached as .cache/ee-base-image.tar.zst, keyed by a hash of this script
# and its customize hook (ee-base-customize.sh), and the image carries that key as a label, like
# the instance image (tools/instance-image.sh):
#   image present with the current key  -> nothing to do (well under a second)
#   cache present with the current key  -> podman import only (seconds)
#   otherwise                           -> mmdebstrap (about 40 s), cache, import
# Usage: tools/publish/ee-base-image.sh [--rebuild] [--print-key] [--print-image]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/tools/containers.conf}

IMAGE=localhost/sshkeys-ecs-ee-base:bookworm
LABEL=io.github.sshkeys-ecs.ee-base-image.key
SUITE=bookworm
# Everything the execution environment needs from the system, so that its build installs no
# system package: bindep finds the ssh client (bindep.txt) already there.
PACKAGES=python3,python3-pip,openssh-client,ca-certificates
CACHE_DIR=$ROOT/.cache
CACHE=$CACHE_DIR/ee-base-image.tar.zst

log() { printf '[ee-base-image] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

rebuild=false
for arg in "$@"; do
  case "$arg" in
    --rebuild) rebuild=true ;;
    --print-key) print_key=true ;;
    --print-image) echo "$IMAGE"; exit 0 ;;
    -h | --help) sed -n '2,14s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (try --help)" ;;
  esac
done

KEY=$(cd "$ROOT" && sha256sum tools/publish/ee-base-image.sh tools/publish/ee-base-customize.sh | sha256sum | cut -c1-16)
if [ "${print_key:-false}" = true ]; then echo "$KEY"; exit 0; fi

for tool in podman mmdebstrap zstd flock; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: run tools/bootstrap.sh (make bootstrap)"
done

image_key() {
  podman image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true
}

build_rootfs() {
  local work
  work=$(mktemp -d "$CACHE_DIR/ee-base-image.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  log "building the root file system with mmdebstrap ($SUITE, minbase + $PACKAGES)"
  # No manuals, documentation or translations, and no package lists: the image is a base for
  # one build, which installs nothing from Debian.
  mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook="$ROOT/tools/publish/ee-base-customize.sh" \
    "$SUITE" "$work/rootfs.tar"
  zstd -q -T0 -6 "$work/rootfs.tar" -o "$work/rootfs.tar.zst"
  rm -f "$CACHE" "$CACHE.key"
  echo "$KEY" > "$CACHE.key"
  mv "$work/rootfs.tar.zst" "$CACHE"
  rm -rf "$work"
  trap - EXIT
}

import_image() {
  local old_id
  old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
  log "importing $IMAGE from $CACHE"
  zstd -dc "$CACHE" | podman import --quiet \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL $LABEL=$KEY" \
    --message "sshkeys.ecs execution environment base ($SUITE, inputs $KEY)" \
    - "$IMAGE" >/dev/null
  [ "$(image_key)" = "$KEY" ] || die "podman import did not produce $IMAGE with key $KEY"
  if [ -n "$old_id" ]; then podman rmi "$old_id" >/dev/null 2>&1 || true; fi
}

mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/ee-base-image.lock"
flock 9

if [ "$rebuild" = false ] && [ "$(image_key)" = "$KEY" ]; then
  log "$IMAGE is up to date (key $KEY)"
  exit 0
fi
if [ "$rebuild" = true ] || [ ! -f "$CACHE" ] || [ "$(cat "$CACHE.key" 2>/dev/null)" != "$KEY" ]; then
  build_rootfs
fi
import_image
log "$IMAGE ready (key $KEY)"

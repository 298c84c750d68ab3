#!/usr/bin/env bash
# Builds the podman image of the test instances, localhost/sshkeys-ecs-instance:latest, from
# Debian packages (no registry needed): Debian bookworm minbase with openssh-server, python3
# and sudo, the user ecs-user with passwordless sudo, no host keys (each container makes its
# own), and /usr/local/sbin/ecs-instance-boot (tools/instance/boot.sh) as its command.
#
# The root file system is cached as .cache/instance-image.tar.zst, keyed by a hash of this
# script and tools/instance/*, and the image carries that key as a label, so:
#   image present with the current key  -> nothing to do (well under a second)
#   cache present with the current key  -> podman import only (seconds)
#   otherwise                           -> mmdebstrap (about a minute), cache, import
# Usage: tools/instance-image.sh [--rebuild] [--print-key]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/tools/containers.conf}

IMAGE=localhost/sshkeys-ecs-instance:latest
LABEL=io.github.sshkeys-ecs.instance-image.key
SUITE=bookworm
PACKAGES=openssh-server,python3,sudo
CACHE_DIR=$ROOT/.cache
CACHE=$CACHE_DIR/instance-image.tar.zst

log() { printf '[instance-image] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

rebuild=false
for arg in "$@"; do
  case "$arg" in
    --rebuild) rebuild=true ;;
    --print-key) print_key=true ;;
    -h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (try --help)" ;;
  esac
done

# Everything that decides the image's content: this script (suite, packages, options) and the
# files it bakes in.
input_key() {
  (cd "$ROOT" && sha256sum tools/instance-image.sh tools/instance/*) | sha256sum | cut -c1-16
}
KEY=$(input_key)
if [ "${print_key:-false}" = true ]; then echo "$KEY"; exit 0; fi

for tool in podman mmdebstrap zstd flock; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: run tools/bootstrap.sh (make bootstrap)"
done

image_key() {
  podman image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true
}

build_rootfs() {
  local work
  work=$(mktemp -d "$CACHE_DIR/instance-image.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  log "building the root file system with mmdebstrap ($SUITE, minbase + $PACKAGES)"
  # Documentation, manuals and translations are left out: nobody reads them in a test host.
  mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook="$ROOT/tools/instance/customize.sh" \
    "$SUITE" "$work/rootfs.tar"
  zstd -q -T0 -6 "$work/rootfs.tar" -o "$work/rootfs.tar.zst"
  # Key file first, archive last: an archive is only trusted next to a matching key file, and a
  # rename is atomic, so an interrupted run never leaves a wrong archive behind a right key.
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
    --change 'CMD ["/usr/local/sbin/ecs-instance-boot"]' \
    --change 'EXPOSE 22' \
    --change "LABEL $LABEL=$KEY" \
    --message "sshkeys.ecs test instance ($SUITE, inputs $KEY)" \
    - "$IMAGE" >/dev/null
  [ "$(image_key)" = "$KEY" ] || die "podman import did not produce $IMAGE with key $KEY"
  # The image it replaces is now untagged; drop it unless containers still use it.
  if [ -n "$old_id" ]; then podman rmi "$old_id" >/dev/null 2>&1 || true; fi
}

mkdir -p "$CACHE_DIR"
# Parallel stages may call this at the same time: one builds, the others wait and then find
# the image in place.
exec 9>"$CACHE_DIR/instance-image.lock"
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

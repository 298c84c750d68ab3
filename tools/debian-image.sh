#!/usr/bin/env bash
# Shared by tools/instance-image.sh and tools/publish/ee-base-image.sh (sourced, not run): builds
# a podman image from Debian packages with mmdebstrap (no registry needed), caches its root file
# system as .cache/NAME.tar.zst keyed by a hash of its inputs, and carries that key as a label:
#   image in place with the current key -> nothing to do (about 0.1 s)
#   cached archive with the current key -> podman import (seconds)
#   otherwise                           -> mmdebstrap, cache, import
# The caller sets, then runs `debian_image_main "$@"`:
#   ROOT NAME IMAGE LABEL SUITE PACKAGES CUSTOMIZE MESSAGE HELP_LINES
#   KEY_FILES (array, paths relative to ROOT: everything that decides the image's content)
#   IMPORT_CHANGES (array of `podman import --change` values)
# Options: --rebuild, --print-key, --print-image, --help.

debian_image_log() { printf '[%s] %s\n' "$NAME" "$*" >&2; }
debian_image_die() { debian_image_log "error: $*"; exit 1; }

debian_image_key() {
  (cd "$ROOT" && sha256sum tools/debian-image.sh "${KEY_FILES[@]}") | sha256sum | cut -c1-16
}

debian_image_label() {
  podman image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null || true
}

debian_image_build_rootfs() {
  local work
  work=$(mktemp -d "$CACHE_DIR/$NAME.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  debian_image_log "building the root file system with mmdebstrap ($SUITE, minbase + $PACKAGES)"
  # Documentation, manuals and translations are left out: nobody reads them in these images.
  mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook="$CUSTOMIZE" \
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

debian_image_import() {
  local old_id change args=()
  old_id=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
  debian_image_log "importing $IMAGE from $CACHE"
  for change in "${IMPORT_CHANGES[@]}" "LABEL $LABEL=$KEY"; do args+=(--change "$change"); done
  zstd -dc "$CACHE" | podman import --quiet "${args[@]}" --message "$MESSAGE ($SUITE, inputs $KEY)" \
    - "$IMAGE" >/dev/null
  [ "$(debian_image_label)" = "$KEY" ] || debian_image_die "podman import did not produce $IMAGE with key $KEY"
  # The image it replaces is now untagged; drop it unless containers still use it.
  if [ -n "$old_id" ]; then podman rmi "$old_id" >/dev/null 2>&1 || true; fi
}

debian_image_main() {
  local rebuild=false arg tool
  export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/tools/containers.conf}
  CACHE_DIR=$ROOT/.cache
  CACHE=$CACHE_DIR/$NAME.tar.zst
  KEY=$(debian_image_key)
  for arg in "$@"; do
    case "$arg" in
      --rebuild) rebuild=true ;;
      --print-key) echo "$KEY"; exit 0 ;;
      --print-image) echo "$IMAGE"; exit 0 ;;
      -h | --help) printf '%s\n' "$HELP_LINES"; exit 0 ;;
      *) debian_image_die "unknown argument '$arg' (try --help)" ;;
    esac
  done
  for tool in podman mmdebstrap zstd flock; do
    command -v "$tool" >/dev/null 2>&1 || debian_image_die "$tool is missing: run tools/bootstrap.sh (make bootstrap)"
  done
  mkdir -p "$CACHE_DIR"
  # Parallel stages may call this at the same time: one builds, the others wait and then find
  # the image in place.
  exec 9>"$CACHE_DIR/$NAME.lock"
  flock 9
  if [ "$rebuild" = false ] && [ "$(debian_image_label)" = "$KEY" ]; then
    debian_image_log "$IMAGE is up to date (key $KEY)"
    exit 0
  fi
  if [ "$rebuild" = true ] || [ ! -f "$CACHE" ] || [ "$(cat "$CACHE.key" 2>/dev/null)" != "$KEY" ]; then
    debian_image_build_rootfs
  fi
  debian_image_import
  debian_image_log "$IMAGE ready (key $KEY)"
}
